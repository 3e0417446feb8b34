//! The door: decisions taken at the upgrade request, before a connection gets a session or a
//! room. Browser origin allowlist, per-IP connect rate, where the token comes from, and the
//! per-user connection count shared by every worker. No I/O; time is an argument.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use tracing::warn;

use super::rate::TokenBucket;
use crate::proto::handshake::Request;

/// Whether a browser page from `origin` may open a connection to `host`. No Origin header: not
/// a browser, allowed. An empty allowlist allows same-origin pages only; `*` allows any.
pub fn origin_allowed(origin: Option<&str>, host: &str, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    if allowed.is_empty() {
        // Same origin: the Origin's host[:port] is the Host header.
        let after_scheme = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        return after_scheme.eq_ignore_ascii_case(host);
    }
    false
}

/// Where a connection's token came from at the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Header,
    Cookie,
    Query,
}

/// The token an upgrade request carries: `Authorization: Bearer`, then the cookie named
/// `cookie`, then `?token=` (accepted, with a warning: URLs end up in logs).
pub fn upgrade_token(req: &Request<'_>, cookie: &str) -> Option<(String, TokenSource)> {
    if let Some(auth) = req.authorization
        && let Some((scheme, token)) = auth.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && !token.trim().is_empty()
    {
        return Some((token.trim().to_owned(), TokenSource::Header));
    }
    if !cookie.is_empty()
        && let Some(cookies) = req.cookie
    {
        for c in cookies.split(';') {
            if let Some((k, v)) = c.trim().split_once('=')
                && k == cookie
                && !v.is_empty()
            {
                return Some((v.to_owned(), TokenSource::Cookie));
            }
        }
    }
    query_param(req.query, "token").map(|t| (t, TokenSource::Query))
}

/// A query parameter's value, percent-decoded once.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
        .filter(|v| !v.is_empty())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Most IPs tracked by the connect rate limit; when full, idle entries are dropped first and
/// then, if none is idle, new IPs are not limited (logged): memory stays bounded.
const MAX_TRACKED_IPS: usize = 65_536;

/// New connections per second per client IP.
pub struct ConnectLimiter {
    per_sec: u32,
    ips: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl ConnectLimiter {
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            ips: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` to let the connection in, `Err(seconds)` to refuse it (Retry-After).
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_sec == 0 {
            return Ok(());
        }
        let rate = self.per_sec as f64;
        let mut ips = self.ips.lock().expect("connect limiter poisoned");
        if !ips.contains_key(&ip) && ips.len() >= MAX_TRACKED_IPS {
            ips.retain(|_, b| b.wait_secs(now) == 0.0 && b.is_full(now));
            if ips.len() >= MAX_TRACKED_IPS {
                warn!("connect rate limit tracks {MAX_TRACKED_IPS} IPs: {ip} not limited");
                return Ok(());
            }
        }
        let b = ips
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(rate, rate, now));
        if b.try_take(now) {
            Ok(())
        } else {
            Err(b.wait_secs(now).ceil().max(1.0) as u64)
        }
    }
}

/// Connections per user across all workers, for `client.user_connection_limit`. Touched at
/// connect and disconnect only.
pub struct UserConnections {
    limit: usize,
    users: Mutex<HashMap<String, usize>>,
}

impl UserConnections {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a connection of `user`; false (not counted) when the user is at the limit.
    /// Anonymous connections (user "") are not limited.
    pub fn add(&self, user: &str) -> bool {
        if user.is_empty() {
            return true;
        }
        let mut users = self.users.lock().expect("user connections poisoned");
        let n = users.entry(user.to_owned()).or_default();
        if self.limit > 0 && *n >= self.limit {
            return false;
        }
        *n += 1;
        true
    }

    /// Distinct registered users with a connection.
    pub fn len(&self) -> usize {
        self.users.lock().expect("user connections poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn remove(&self, user: &str) {
        if user.is_empty() {
            return;
        }
        let mut users = self.users.lock().expect("user connections poisoned");
        if let Some(n) = users.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                users.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::handshake::parse_request;
    use std::time::Duration;

    #[test]
    fn origins() {
        let list = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(None, "h", &list), "not a browser");
        assert!(origin_allowed(Some("https://app.example"), "h", &list));
        assert!(!origin_allowed(Some("https://evil.example"), "h", &list));
        assert!(
            origin_allowed(Some("https://h:8443"), "h:8443", &[]),
            "same origin"
        );
        assert!(!origin_allowed(Some("https://evil.example"), "h:8443", &[]));
        assert!(origin_allowed(Some("https://x"), "h", &["*".to_owned()]));
    }

    #[test]
    fn tokens_from_header_cookie_query() {
        let req = |extra: &str, path: &str| {
            format!(
                "GET {path} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
            )
        };
        let r = req(
            "Authorization: Bearer abc\r\nCookie: tok=def\r\n",
            "/x?token=ghi",
        );
        let (p, _) = parse_request(r.as_bytes()).unwrap().unwrap();
        assert_eq!(
            upgrade_token(&p, "tok"),
            Some(("abc".into(), TokenSource::Header))
        );
        let r = req("Cookie: a=1; tok=def\r\n", "/x?token=ghi");
        let (p, _) = parse_request(r.as_bytes()).unwrap().unwrap();
        assert_eq!(
            upgrade_token(&p, "tok"),
            Some(("def".into(), TokenSource::Cookie))
        );
        assert_eq!(
            upgrade_token(&p, ""),
            Some(("ghi".into(), TokenSource::Query))
        );
        let r = req("", "/x?a=1&token=a%2Eb");
        let (p, _) = parse_request(r.as_bytes()).unwrap().unwrap();
        assert_eq!(
            upgrade_token(&p, ""),
            Some(("a.b".into(), TokenSource::Query))
        );
    }

    #[test]
    fn connect_rate_per_ip() {
        let l = ConnectLimiter::new(2);
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a, now).is_ok());
        assert!(l.check(a, now).is_ok());
        assert_eq!(l.check(a, now), Err(1));
        assert!(l.check(b, now).is_ok(), "per IP");
        assert!(l.check(a, now + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn user_cap() {
        let u = UserConnections::new(2);
        assert!(u.add("a") && u.add("a"));
        assert!(!u.add("a"));
        u.remove("a");
        assert!(u.add("a"));
        assert!(u.add("") && u.add("") && u.add(""), "anonymous not limited");
    }
}

/// A network: an address and a prefix length (`10.0.0.0/8`, `::1/128`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an address or network such as 10.0.0.0/8 or ::1");
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) if self.addr.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            ip => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, then the rightmost
/// address in `X-Forwarded-For` that is not a trusted proxy (what a client cannot forge: every
/// hop to its left was written by someone we do not trust). Unparsable entries end the walk.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    let mut last = peer;
    for entry in list.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => last = ip,
            Ok(ip) => return ip,
            Err(_) => break,
        }
    }
    last
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        let n: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.1.2.3")) && !n.contains(ip("11.0.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(one.contains(ip("::ffff:127.0.0.1")), "v4-mapped peers");
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxies: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let p = ip("127.0.0.1");
        assert_eq!(
            client_ip(ip("8.8.8.8"), Some("1.2.3.4"), &proxies),
            ip("8.8.8.8"),
            "untrusted peer: header ignored"
        );
        assert_eq!(client_ip(p, Some("1.2.3.4"), &proxies), ip("1.2.3.4"));
        assert_eq!(client_ip(p, None, &proxies), p);
        assert_eq!(
            client_ip(p, Some("6.6.6.6, 1.2.3.4, 10.0.0.5"), &proxies),
            ip("1.2.3.4"),
            "a forged left part is not believed"
        );
        assert_eq!(
            client_ip(p, Some("garbage, 10.0.0.5"), &proxies),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_ip(p, Some("1.2.3.4"), &[]),
            p,
            "no trusted proxies: never"
        );
    }
}
