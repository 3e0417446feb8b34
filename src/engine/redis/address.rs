//! `engine.redis.address`: where Redis is and how to log in, parsed once; shown everywhere
//! (logs, errors, metrics) without the password. Sans-io.
//!
//! Form: `redis://[[user]:password@]host[:port][/db]` (or `host[:port]`), `rediss://…` for
//! TLS; user and password percent-encoded as in any URL. Not supported: unix sockets.

/// Why an address was refused (the message never repeats the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error(
        "{0}: expected redis://[[user]:password@]host[:port][/db] or rediss://… (unix sockets are not supported)"
    )]
    Form(String),
    #[error("{0}: the database after the last / must be a number")]
    Db(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAddress {
    /// `host:port` (port 6379 when not given).
    pub host_port: String,
    /// `rediss://`: TLS.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

/// `s` with whatever stands between `://` and the last `@` replaced by `***`.
pub fn redact(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(i), Some(at)) if at > i => format!("{}***{}", &s[..i + 3], &s[at..]),
        (None, Some(at)) => format!("***{}", &s[at..]),
        _ => s.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl RedisAddress {
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let form = || AddressError::Form(redact(s));
        let (tls, rest) = match s.split_once("://") {
            Some(("redis", rest)) => (false, rest),
            Some(("rediss", rest)) => (true, rest),
            Some(_) => return Err(form()),
            None => (false, s),
        };
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (hostport, db) = match hostpart.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, db)) => (h, db.parse().map_err(|_| AddressError::Db(redact(s)))?),
            None => (hostpart, 0),
        };
        let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
        let port_ok = hostport
            .rsplit_once(':')
            .is_none_or(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
        if host.is_empty() || !port_ok || host.contains(['/', '@', '?', '#']) {
            return Err(form());
        }
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = u.split_once(':').ok_or_else(form)?;
                let user = percent_decode(user).ok_or_else(form)?;
                let pass = percent_decode(pass).ok_or_else(form)?;
                ((!user.is_empty()).then_some(user), Some(pass))
            }
        };
        Ok(Self {
            host_port: if hostport.contains(':') {
                hostport.to_owned()
            } else {
                format!("{hostport}:6379")
            },
            tls,
            username,
            password,
            db,
        })
    }

    /// As shown in logs and errors: `redis://user:***@host:port/db`.
    pub fn shown(&self) -> String {
        let login = match (&self.username, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_owned(),
            _ => String::new(),
        };
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{login}{}/{}", self.host_port, self.db)
    }

    /// The host name (or address) the certificate must be for.
    pub fn host(&self) -> &str {
        let host = self
            .host_port
            .rsplit_once(':')
            .map_or(self.host_port.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// `AUTH [user] password`, when there is a password.
    pub fn auth(&self) -> Option<Vec<Vec<u8>>> {
        let p = self.password.as_ref()?;
        let mut cmd = vec![b"AUTH".to_vec()];
        if let Some(u) = &self.username {
            cmd.push(u.as_bytes().to_vec());
        }
        cmd.push(p.as_bytes().to_vec());
        Some(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = RedisAddress::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(
            (a.host_port.as_str(), a.db, a.password),
            ("127.0.0.1:6379", 0, None)
        );
        let a = RedisAddress::parse("redis://localhost/2").unwrap();
        assert_eq!((a.host_port.as_str(), a.db), ("localhost:6379", 2));
        let a = RedisAddress::parse("10.0.0.1:7000").unwrap();
        assert_eq!(a.host_port, "10.0.0.1:7000");
        let a = RedisAddress::parse("redis://:s%40cret%3A1@h:1").unwrap();
        assert_eq!(
            (a.username, a.password.as_deref()),
            (None, Some("s@cret:1"))
        );
        let a = RedisAddress::parse("redis://ringcast:pw@h:1/3").unwrap();
        assert_eq!(a.username.as_deref(), Some("ringcast"));
        assert_eq!(a.shown(), "redis://ringcast:***@h:1/3");
        assert_eq!(
            a.auth().unwrap(),
            [b"AUTH".to_vec(), b"ringcast".to_vec(), b"pw".to_vec()]
        );
        let odd = RedisAddress::parse("redis://:p%2Fw%20x@h:1").unwrap();
        assert_eq!(odd.password.as_deref(), Some("p/w x"));
        assert_eq!(odd.shown(), "redis://:***@h:1/0");
    }

    #[test]
    fn refusals_never_show_the_password() {
        let t = RedisAddress::parse("rediss://:pw@redis.example:6380").unwrap();
        assert!(t.tls);
        assert_eq!(t.host(), "redis.example");
        assert_eq!(t.shown(), "rediss://:***@redis.example:6380/0");
        for bad in [
            "http://:topsecret@h:1",
            "redis://",
            "redis://:topsecret@",
            "redis://:topsecret@h:0",
            "redis://:topsecret@h:port",
            "unix:///tmp/redis.sock",
            "redis://topsecret@h:1",
            "redis://:topsecret@h:1/x",
            "redis://:%zz@h:1",
        ] {
            let e = RedisAddress::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("topsecret"), "{e}");
        }
        assert_eq!(redact("redis://u:topsecret@h:1"), "redis://***@h:1");
    }
}
