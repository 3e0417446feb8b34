//! Command line: subcommands and flags (`loadgen --help`, `loadgen broadcast --help`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ringcast::config::units::{parse_duration, parse_size};

/// Open-loop wss load generator for ringcast: latency from the planned send time (no
/// coordinated omission), loss/duplicate/corruption counts, HdrHistogram output.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// N clients in one room (or R rooms); S of them send RATE messages/s in total; everyone records every message.
    Broadcast(Broadcast),
    /// N clients, each in a room of its own, each sending RATE messages/s and timing its own echo.
    Echo(Echo),
    /// Connection storm: open N wss connections (at --connect-rate or as fast as allowed), report handshakes/s.
    Connect(Conn),
    /// Open N connections and hold them (memory per connection with --server-pid).
    Idle(Idle),
    /// Side-by-side percentile table of runs (directories with summary.json), ratios against the first.
    Compare { runs: Vec<PathBuf> },
    /// Latency percentile curves of runs in one PNG.
    Plot {
        runs: Vec<PathBuf>,
        #[arg(short, long, default_value = "latency.png")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Server URL; the path names the room (ws:// or wss://).
    #[arg(long, default_value = "wss://127.0.0.1:8443/bench")]
    pub url: String,
    /// More servers (other nodes sharing a Redis engine), same path as --url: client i
    /// connects to the (i mod n)-th of --url and these, so senders and receivers spread over
    /// the nodes. Repeat the flag per node.
    #[arg(long = "also-url")]
    pub also_urls: Vec<String>,
    /// `raw`: the URL's path is a raw room; `centrifuge`: the Centrifugo client protocol, clients
    /// connect to /connection/websocket, subscribe to the channel named by the URL's path and
    /// publish through the protocol (server: raise --command-rate-limit for fast senders).
    #[arg(long, value_enum, default_value = "raw")]
    pub protocol: crate::run::Protocol,
    /// Mint each client an HS256 connection token (user loadgen-<i>) with this secret: sent in
    /// `connect` (--protocol centrifuge) or as `Authorization: Bearer` (raw rooms). Without it
    /// clients connect anonymously (try-it-out servers).
    #[arg(long, env = "LOADGEN_TOKEN_HMAC_SECRET", hide_env_values = true)]
    pub token_hmac_secret: Option<String>,
    /// Clients to connect.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Trust this PEM certificate (e.g. the server's certs/dev-cert.pem).
    #[arg(long, conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Offer permessage-deflate, as browsers do (the server needs --compression); compressed
    /// messages are inflated before they are timed, and counted in the report.
    #[arg(long)]
    pub compression: bool,
    /// Loopback source addresses to spread clients over, e.g. 127.0.0.2-127.0.0.9 (about 28k ports each).
    #[arg(long, value_parser = parse_ip_range)]
    pub source_ips: Option<SourceIps>,
    /// Worker threads [default: available cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// New connections per second in total [default: as fast as --connect-concurrency allows].
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// Handshakes in flight per worker.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Receive buffers in each worker's io_uring buffer ring (a power of two, at most 32768;
    /// allocated up front) [default: four per client of a worker, rounded up, 1024–16384]. When
    /// the ring runs empty a client's reads stall (counted, and the end table warns).
    #[arg(long, value_parser = parse_ring_size)]
    pub recv_buffers: Option<u16>,
    /// Size of each receive buffer, 512 B to 1 MiB (a large message just takes several).
    #[arg(long, default_value = "4KiB", value_parser = parse_recv_buffer_size)]
    pub recv_buffer_size: usize,
    /// Write summary.json, latency.hgrm and latency.hdr here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Server process to sample (CPU seconds, RSS) during the run; repeat it for several
    /// nodes: their figures are summed.
    #[arg(long)]
    pub server_pid: Vec<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct Traffic {
    /// Message size in bytes (at least 32: sender, sequence, timestamp, checksum).
    #[arg(long, default_value = "100", value_parser = parse_size)]
    pub size: u64,
    /// What fills each message after its 32-byte header: `ramp` (counting bytes) or `json`
    /// (chat-feed JSON text, for --compression runs).
    #[arg(long, value_enum, default_value = "ramp")]
    pub filler: crate::payload::Filler,
    /// Measured time after the warm-up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Sending before measuring (not recorded).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// After the last send, how long to wait for deliveries still in flight.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Width of a step of the latency timeline (`latency_by_step_us` in summary.json: each
    /// step's percentiles, by when the messages were planned; the report prints each step's p99).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeline_step: Duration,
    /// Fault injection for testing the loss counter: every Nth message is counted as sent but
    /// never sent. 0: off.
    #[arg(long, default_value_t = 0, hide = true)]
    pub fault_skip_every: u64,
}

#[derive(Debug, Clone, Args)]
pub struct Broadcast {
    #[command(flatten)]
    pub conn: Conn,
    #[command(flatten)]
    pub traffic: Traffic,
    /// Clients that send (the first S clients).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Rooms to spread clients (and senders) over: client i joins room i mod R.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Publish through the server API at this URL (http://127.0.0.1:8000/api) instead of the
    /// senders' WebSockets (--protocol centrifuge); requests pipelined on one keep-alive
    /// connection per loadgen worker.
    #[arg(long)]
    pub publish_api: Option<String>,
    /// The server API's key (sent as X-API-Key).
    #[arg(long, env = "LOADGEN_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct Echo {
    #[command(flatten)]
    pub conn: Conn,
    #[command(flatten)]
    pub traffic: Traffic,
    /// Messages per second per client.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
}

#[derive(Debug, Clone, Args)]
pub struct Idle {
    #[command(flatten)]
    pub conn: Conn,
    /// How long to hold the connections once all are open.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub hold: Duration,
}

/// Source addresses for client sockets (one flag value is a whole range, hence the newtype:
/// clap reads a bare `Vec` as "the flag given several times").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIps(pub Vec<IpAddr>);

/// `127.0.0.2-127.0.0.9` or `127.0.0.2` (IPv4 ranges only).
pub fn parse_ip_range(s: &str) -> Result<SourceIps, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: std::net::Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
    let b: std::net::Ipv4Addr = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not an IPv4 address"))?;
    let (a, b) = (u32::from(a), u32::from(b));
    if b < a || b - a > 4096 {
        return Err(format!(
            "{s:?}: give a range of at most 4096 addresses, low-high"
        ));
    }
    Ok(SourceIps(
        (a..=b)
            .map(|x| IpAddr::from(std::net::Ipv4Addr::from(x)))
            .collect(),
    ))
}

/// A buffer ring size: a power of two from 1 to 32768 (io_uring's limits).
fn parse_ring_size(s: &str) -> Result<u16, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n == 0 || n > 32768 || !n.is_power_of_two() {
        return Err(format!(
            "{n} is not a power of two from 1 to 32768 (io_uring buffer rings need one)"
        ));
    }
    Ok(n as u16)
}

/// A receive buffer size from 512 B to 1 MiB.
fn parse_recv_buffer_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if !(512..=1 << 20).contains(&n) {
        return Err(format!("{n} bytes: give 512 B to 1 MiB"));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        assert_eq!(parse_ip_range("127.0.0.2-127.0.0.4").unwrap().0.len(), 3);
        assert_eq!(parse_ip_range("127.0.0.2").unwrap().0.len(), 1);
        assert!(parse_ip_range("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_ip_range("nope").is_err());
    }

    #[test]
    fn ring_sizes_are_powers_of_two_up_to_32768() {
        assert_eq!(parse_ring_size("1"), Ok(1));
        assert_eq!(parse_ring_size("32768"), Ok(32768));
        for bad in ["0", "3", "1000", "65536", "x"] {
            assert!(parse_ring_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn receive_buffer_sizes_are_512_bytes_to_1_mib() {
        assert_eq!(parse_recv_buffer_size("4KiB"), Ok(4096));
        assert_eq!(parse_recv_buffer_size("512"), Ok(512));
        assert_eq!(parse_recv_buffer_size("1MiB"), Ok(1 << 20));
        for bad in ["511", "2MiB", "x"] {
            assert!(parse_recv_buffer_size(bad).is_err(), "{bad}");
        }
    }
}
