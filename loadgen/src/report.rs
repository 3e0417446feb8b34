//! Results: the JSON summary, HdrHistogram files (`.hgrm` percentile text, `.hdr` V2 encoded
//! so runs can be merged and plotted), the end-of-run table, and `compare`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use crate::sys::{Machine, ProcSample};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a loadgen summary: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: not an encoded histogram: {msg}")]
    Histogram { path: PathBuf, msg: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Percentiles of a histogram, in µs.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub clients: u64,
    pub connected: u64,
    pub connect_failures: BTreeMap<String, u64>,
    pub sent: u64,
    pub not_sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    pub out_of_order: u64,
    pub foreign: u64,
    pub server_closes: BTreeMap<u16, u64>,
    /// Protocol mode: error replies to publish commands, by error code.
    #[serde(default)]
    pub reply_errors: BTreeMap<u32, u64>,
    /// Reads that found loadgen's receive buffer ring empty and stalled (raise --recv-buffers
    /// when this is not 0: those stalls are in the latency).
    #[serde(default)]
    pub recv_ring_empty: u64,
    /// Messages that arrived compressed (permessage-deflate, with --compression).
    #[serde(default)]
    pub compressed: u64,
}

/// Everything a run reports; `summary.json` in `--out`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub name: String,
    pub mode: String,
    pub command: String,
    pub params: serde_json::Value,
    pub versions: BTreeMap<String, String>,
    pub machine: Machine,
    pub started_unix: u64,
    /// Unix time in ms at which the measured window (and the first step of
    /// `latency_by_step_us`) began; 0 when nothing was sent. To line the timeline up with
    /// samples taken beside the run.
    #[serde(default)]
    pub measured_from_unix_ms: u64,
    pub measured_s: f64,
    pub counts: Counts,
    /// Delivered messages per second in the measured window.
    pub throughput: f64,
    pub latency_us: Percentiles,
    /// `latency_us` by the step of the measured window (`params.timeline_step_s`) the messages
    /// were planned in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_by_step_us: Vec<Percentiles>,
    /// The spread of the receivers' mean latencies: a wide one means some connections are
    /// served late every time.
    #[serde(default)]
    pub receiver_mean_latency_us: Percentiles,
    pub schedule_lag_us: Percentiles,
    pub handshake_us: Percentiles,
    pub connect_wall_s: f64,
    pub handshakes_per_s: f64,
    pub loadgen: ProcDelta,
    pub server: Option<ProcDelta>,
    /// `idle` with `--server-pid`: the server's memory per connection from a tenth of the
    /// clients connected to all of them, without what the server allocates once however many
    /// connect (its RSS before the first connection moves from run to run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_marginal: Option<IdleMarginal>,
}

/// The server's RSS growth per connection between two points of an `idle` run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct IdleMarginal {
    /// Connections open at the first sample (a tenth of the clients).
    pub from_connected: u64,
    pub rss_from_kib: u64,
    /// (RSS at the end − RSS at the first sample) ÷ the connections opened in between.
    pub bytes_per_connection: f64,
}

/// CPU used and memory between two samples.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcDelta {
    pub cpu_s: f64,
    /// The user-space part of `cpu_s`.
    #[serde(default)]
    pub user_s: f64,
    /// CPU µs per delivered message (0 when nothing was delivered).
    pub cpu_us_per_delivered: f64,
    /// The user-space part of `cpu_us_per_delivered` (the rest is the kernel's: TCP, io_uring).
    #[serde(default)]
    pub user_us_per_delivered: f64,
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub hwm_kib: u64,
}

impl ProcDelta {
    pub fn between(a: ProcSample, b: ProcSample, delivered: u64) -> Self {
        let cpu = (b.cpu_s - a.cpu_s).max(0.0);
        let user = (b.user_s - a.user_s).clamp(0.0, cpu);
        let per_delivered = |s: f64| {
            if delivered > 0 {
                s * 1e6 / delivered as f64
            } else {
                0.0
            }
        };
        Self {
            cpu_s: cpu,
            user_s: user,
            cpu_us_per_delivered: per_delivered(cpu),
            user_us_per_delivered: per_delivered(user),
            rss_start_kib: a.rss_kib,
            rss_end_kib: b.rss_kib,
            hwm_kib: b.hwm_kib,
        }
    }

    /// "8.26 µs per delivered message: 2.10 user space + 6.16 kernel", or the split in seconds
    /// when nothing was delivered (connect, idle).
    fn per_message(&self) -> String {
        if self.cpu_us_per_delivered > 0.0 {
            format!(
                "{:.2} µs per delivered message: {:.2} user space + {:.2} kernel",
                self.cpu_us_per_delivered,
                self.user_us_per_delivered,
                self.cpu_us_per_delivered - self.user_us_per_delivered
            )
        } else {
            format!(
                "{:.2} s user space + {:.2} s kernel",
                self.user_s,
                self.cpu_s - self.user_s
            )
        }
    }
}

/// HdrHistogram's percentile-distribution text (as `outputPercentileDistribution`), values in µs.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut s = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 {
                format!("{:14.2}", 1.0 / (1.0 - q))
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "{:12.3} {:14.12} {:10} {}",
                v.value_iterated_to() as f64,
                q,
                v.count_since_last_iteration(),
                inv
            )
            .map(|_| ());
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean(),
        h.stdev()
    );
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    s
}

pub fn write_histogram(path: &Path, h: &Histogram<u64>) -> Result<(), ReportError> {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| ReportError::Histogram {
            path: path.to_path_buf(),
            msg: format!("{e:?}"),
        })?;
    std::fs::write(path, buf).map_err(io_err(path))
}

pub fn read_histogram(path: &Path) -> Result<Histogram<u64>, ReportError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| ReportError::Histogram {
            path: path.to_path_buf(),
            msg: format!("{e:?}"),
        })
}

/// Writes summary.json, latency.hgrm/.hdr (and handshake.* for connect storms) into `dir`.
pub fn write_outputs(
    dir: &Path,
    s: &Summary,
    latency: &Histogram<u64>,
    handshake: &Histogram<u64>,
) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let json = serde_json::to_string_pretty(s).expect("summary serialises");
    let p = dir.join("summary.json");
    std::fs::write(&p, json + "\n").map_err(io_err(&p))?;
    for (name, h) in [("latency", latency), ("handshake", handshake)] {
        if h.is_empty() {
            continue;
        }
        let p = dir.join(format!("{name}.hgrm"));
        std::fs::write(&p, hgrm(h)).map_err(io_err(&p))?;
        write_histogram(&dir.join(format!("{name}.hdr")), h)?;
    }
    Ok(())
}

/// Reads `summary.json` from a run directory (or the file itself).
pub fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    let p = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json { path: p, source })
}

fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

/// The end-of-run table.
pub fn table(s: &Summary) -> String {
    let mut t = String::new();
    let c = &s.counts;
    let _ = writeln!(t, "\n== {} ({}) ==", s.name, s.mode);
    let _ = writeln!(
        t,
        "clients      {} connected of {}{}",
        c.connected,
        c.clients,
        failures(&c.connect_failures)
    );
    if s.handshake_us.count > 0 {
        let h = &s.handshake_us;
        let _ = writeln!(
            t,
            "handshakes   {:.0}/s, all done in {:.2} s; TCP→101 p50 {} p99 {} max {}",
            s.handshakes_per_s,
            s.connect_wall_s,
            us(h.p50),
            us(h.p99),
            us(h.max)
        );
    }
    if s.mode == "broadcast" || s.mode == "echo" {
        let _ = writeln!(
            t,
            "messages     sent {}  expected {}  delivered {}  lost {}  duplicated {}  corrupted {}  out-of-order {}{}",
            c.sent,
            c.expected,
            c.delivered,
            c.lost,
            c.duplicated,
            c.corrupted,
            c.out_of_order,
            if c.not_sent > 0 {
                format!("  NOT SENT (client queue full) {}", c.not_sent)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            t,
            "throughput   {:.0} deliveries/s over {:.1} s measured",
            s.throughput, s.measured_s
        );
        let l = &s.latency_us;
        let _ = writeln!(
            t,
            "latency      p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  (n={})",
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p99_9),
            us(l.p99_99),
            us(l.max),
            l.count
        );
        if s.latency_by_step_us.len() > 1 {
            let p99s: Vec<String> = s.latency_by_step_us.iter().map(|p| us(p.p99)).collect();
            let _ = writeln!(t, "  p99 by step    {}", p99s.join(" "));
        }
        let m = &s.receiver_mean_latency_us;
        if m.count > 0 {
            let _ = writeln!(
                t,
                "  receivers' mean latency  p50 {}  p90 {}  p99 {}  max {}  (n={})",
                us(m.p50),
                us(m.p90),
                us(m.p99),
                us(m.max),
                m.count
            );
        }
        let g = &s.schedule_lag_us;
        let _ = writeln!(
            t,
            "behind plan  p50 {}  p99 {}  max {}  (how late loadgen sent; large = loadgen saturated)",
            us(g.p50),
            us(g.p99),
            us(g.max)
        );
    }
    let _ = writeln!(
        t,
        "loadgen CPU  {:.2} s ({})",
        s.loadgen.cpu_s,
        s.loadgen.per_message()
    );
    if let Some(sv) = &s.server {
        let _ = writeln!(
            t,
            "server       CPU {:.2} s ({}), RSS {} → {} KiB (peak {} KiB)",
            sv.cpu_s,
            sv.per_message(),
            sv.rss_start_kib,
            sv.rss_end_kib,
            sv.hwm_kib
        );
    }
    if !c.reply_errors.is_empty() {
        let _ = writeln!(
            t,
            "publish commands refused by the server (error code: count): {:?}",
            c.reply_errors
        );
    }
    if !c.server_closes.is_empty() {
        let _ = writeln!(
            t,
            "server Close codes seen (answers within {} ms of loadgen's Close): {:?}",
            crate::run::CLOSE_GRACE.as_millis(),
            c.server_closes
        );
    }
    if c.compressed > 0 {
        let _ = writeln!(
            t,
            "compressed   {} of the messages received were permessage-deflate frames",
            c.compressed
        );
    }
    if c.recv_ring_empty > 0 {
        let _ = writeln!(
            t,
            "WARNING      loadgen's receive buffer ring ran empty {} times: each stalled one \
             client's reads (up to 1 ms), which is in the latency above (raise --recv-buffers)",
            c.recv_ring_empty
        );
    }
    t
}

fn failures(f: &BTreeMap<String, u64>) -> String {
    if f.is_empty() {
        String::new()
    } else {
        format!(
            " (failures: {})",
            f.iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Side-by-side percentiles of several runs with ratios against the first.
pub fn compare(runs: &[Summary]) -> String {
    let mut t = String::new();
    let base = &runs[0];
    let _ = write!(t, "| metric |");
    for r in runs {
        let _ = write!(t, " {} |", r.name);
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "|---|{}", "---|".repeat(runs.len()));
    type Get = fn(&Summary) -> f64;
    let rows: [(&str, Get); 11] = [
        ("throughput (msg/s)", |s| s.throughput),
        ("p50 µs", |s| s.latency_us.p50 as f64),
        ("p90 µs", |s| s.latency_us.p90 as f64),
        ("p99 µs", |s| s.latency_us.p99 as f64),
        ("p99.9 µs", |s| s.latency_us.p99_9 as f64),
        ("p99.99 µs", |s| s.latency_us.p99_99 as f64),
        ("max µs", |s| s.latency_us.max as f64),
        ("lost", |s| s.counts.lost as f64),
        ("loadgen CPU µs/msg", |s| s.loadgen.cpu_us_per_delivered),
        ("server CPU µs/msg", |s| {
            s.server.map_or(f64::NAN, |v| v.cpu_us_per_delivered)
        }),
        ("server RSS end KiB", |s| {
            s.server.map_or(f64::NAN, |v| v.rss_end_kib as f64)
        }),
    ];
    for (name, get) in rows {
        let _ = write!(t, "| {name} |");
        let b = get(base);
        for (i, r) in runs.iter().enumerate() {
            let v = get(r);
            if v.is_nan() {
                let _ = write!(t, " – |");
            } else if i == 0 || b == 0.0 || b.is_nan() {
                let _ = write!(t, " {} |", fmt_num(v));
            } else {
                let _ = write!(t, " {} (×{:.2}) |", fmt_num(v), v / b);
            }
        }
        let _ = writeln!(t);
    }
    t
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_hist() -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        h
    }

    #[test]
    fn histogram_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("loadgen-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let h = sample_hist();
        let p = dir.join("x.hdr");
        write_histogram(&p, &h).unwrap();
        let back = read_histogram(&p).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
        assert_eq!(back.max(), h.max());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hgrm_text_has_the_hdrhistogram_shape() {
        let text = hgrm(&sample_hist());
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(text.contains("#[Max     ="));
        assert!(text.contains("Total count    =        10000]"));
        let last_data = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap();
        assert!(last_data.contains("1.000000000000"), "{last_data}");
    }

    #[test]
    fn percentiles_and_compare_ratios() {
        let p = Percentiles::of(&sample_hist());
        assert_eq!(p.count, 10_000);
        assert!((p.p50 as i64 - 50_000).abs() <= 50);
        let mk = |name: &str, p50: u64| Summary {
            name: name.into(),
            mode: "broadcast".into(),
            command: String::new(),
            params: serde_json::Value::Null,
            versions: BTreeMap::new(),
            machine: crate::sys::machine(),
            started_unix: 0,
            measured_from_unix_ms: 0,
            measured_s: 1.0,
            counts: Counts::default(),
            throughput: 1000.0,
            latency_us: Percentiles {
                p50,
                ..Percentiles::default()
            },
            latency_by_step_us: Vec::new(),
            receiver_mean_latency_us: Percentiles::default(),
            schedule_lag_us: Percentiles::default(),
            handshake_us: Percentiles::default(),
            connect_wall_s: 0.0,
            handshakes_per_s: 0.0,
            loadgen: ProcDelta::default(),
            server: None,
            idle_marginal: None,
        };
        let t = compare(&[mk("a", 100), mk("b", 250)]);
        assert!(t.contains("| p50 µs | 100 | 250 (×2.50) |"), "{t}");
    }
}
