//! Listening sockets: one per worker, all bound to the same address with SO_REUSEPORT so the
//! kernel spreads new connections across workers. Port 0 is resolved by the first bind.
//!
//! SO_REUSEPORT would also let a *second* server process of the same user join the port and
//! silently take half the connections (possibly with another certificate). So a fixed port is
//! first probed with a plain bind: if anything listens there, start-up fails with "address in use".

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

fn bind(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// How long a taken port is retried before start-up fails: a server that just exited may hold
/// its listening socket a few milliseconds longer while the kernel tears its io_uring down.
const PROBE_RETRY: Duration = Duration::from_secs(2);

/// Fails with `AddrInUse` if something listens on `addr` (even a SO_REUSEPORT group) for
/// longer than [`PROBE_RETRY`].
fn probe_free(addr: SocketAddr) -> io::Result<()> {
    let deadline = Instant::now() + PROBE_RETRY;
    loop {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // SO_REUSEADDR so sockets in TIME_WAIT from a previous run do not count as "in use".
        socket.set_reuse_address(true)?;
        match socket.bind(&addr.into()) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// `n` listeners on `addr`; with port 0 they all share the port the first one got.
pub fn bind_all(addr: SocketAddr, n: usize, backlog: i32) -> io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        probe_free(addr)?;
    }
    let first = bind(addr, backlog)?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind(actual, backlog)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_is_shared_by_all_listeners() {
        let ls = bind_all("127.0.0.1:0".parse().unwrap(), 3, 16).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(ls.iter().all(|l| l.local_addr().unwrap().port() == port));
        // A second group on the same port is refused, not merged.
        let again = bind_all(ls[0].local_addr().unwrap(), 2, 16).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
    }
}
