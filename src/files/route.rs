//! One request for `/files/…` → one answer: a status, headers, and what body to send (none, a
//! short text, or a byte range of a file). Sans-io: the file system is reached through the
//! `open` argument, time is an argument.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::conditional::{Validators, not_modified, range_applies};
use super::path::{PathError, relative};
use super::range::{Ranged, decide};
use super::sign::{SigningKey, verify};

/// `--files` and its companions.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Canonical.
    pub root: PathBuf,
    pub keys: Vec<SigningKey>,
    /// `Cache-Control` on file answers (None: not sent).
    pub cache_control: Option<String>,
    /// Origins allowed to read files cross-origin (`*` = any).
    pub cors_origins: Vec<String>,
}

/// The parts of a request the route looks at.
pub struct FileRequest<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}

/// What to send after the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    None,
    Text(String),
    /// `len` bytes of `path` from `start`.
    File {
        path: PathBuf,
        start: u64,
        len: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The `Content-Length` (for HEAD: of what GET would send).
    pub length: u64,
    pub body: Body,
}

/// A file as the file system reports it.
#[derive(Debug, Clone)]
pub struct Stat {
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
}

fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A short plain-text answer (errors, refusals).
pub fn text(status: u16, msg: &str) -> Answer {
    let body = format!("{msg}\n");
    Answer {
        status,
        headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
        length: body.len() as u64,
        body: Body::Text(body),
    }
}

impl FilesConfig {
    fn allowed_origin(&self, origin: Option<&str>) -> Option<String> {
        let o = origin?;
        if self.cors_origins.iter().any(|a| a == "*") {
            return Some("*".into());
        }
        self.cors_origins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(o))
            .then(|| o.to_owned())
    }

    fn cors(&self, origin: Option<&str>, headers: &mut Vec<(&'static str, String)>) {
        if let Some(o) = self.allowed_origin(origin) {
            if o != "*" {
                headers.push(("Vary", "Origin".into()));
            }
            headers.push(("Access-Control-Allow-Origin", o));
            headers.push((
                "Access-Control-Expose-Headers",
                "Content-Range, Accept-Ranges, Content-Length, ETag".into(),
            ));
        }
    }

    /// Answers one request. `open` resolves a checked relative path to a file's facts.
    /// A HEAD gets the same status and headers as the GET would, and no body.
    pub fn answer(
        &self,
        req: &FileRequest<'_>,
        now_unix: u64,
        open: &dyn Fn(&Path) -> Result<Stat, PathError>,
    ) -> Answer {
        let mut a = self.answer_get(req, now_unix, open);
        if req.method == "HEAD" {
            a.body = Body::None;
        }
        a
    }

    fn answer_get(
        &self,
        req: &FileRequest<'_>,
        now_unix: u64,
        open: &dyn Fn(&Path) -> Result<Stat, PathError>,
    ) -> Answer {
        let h = req.header;
        let origin = h("origin");
        if req.method == "OPTIONS" {
            let mut a = Answer {
                status: 204,
                headers: vec![("Allow", "GET, HEAD, OPTIONS".into())],
                length: 0,
                body: Body::None,
            };
            if self.allowed_origin(origin).is_some() {
                self.cors(origin, &mut a.headers);
                a.headers.extend([
                    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS".into()),
                    (
                        "Access-Control-Allow-Headers",
                        "Range, If-Range, If-None-Match, If-Modified-Since".into(),
                    ),
                    ("Access-Control-Max-Age", "600".into()),
                ]);
            }
            return a;
        }
        if req.method != "GET" && req.method != "HEAD" {
            let mut a = text(405, "method not allowed: GET, HEAD, OPTIONS");
            a.headers.push(("Allow", "GET, HEAD, OPTIONS".into()));
            return a;
        }
        if h("transfer-encoding").is_some() || h("content-length").is_some_and(|l| l.trim() != "0")
        {
            return text(400, "bad request: request bodies are refused");
        }
        if let Err(denied) = verify(
            &self.keys,
            req.path,
            query_value(req.query, "expires"),
            query_value(req.query, "sig"),
            now_unix,
        ) {
            return text(403, &denied.to_string());
        }
        let stat = match relative(req.path).and_then(|rel| open(&rel)) {
            Ok(s) => s,
            Err(e @ PathError::Bad(_)) => return text(400, &e.to_string()),
            Err(PathError::NotFound) => return text(404, "not found"),
        };
        let v = Validators::new(stat.modified, stat.size);
        let mut headers = vec![
            ("Accept-Ranges", "bytes".into()),
            ("ETag", v.etag.clone()),
            ("Last-Modified", v.last_modified()),
            ("X-Content-Type-Options", "nosniff".into()),
        ];
        if let Some(cc) = &self.cache_control {
            headers.push(("Cache-Control", cc.clone()));
        }
        self.cors(origin, &mut headers);
        if not_modified(h("if-none-match"), h("if-modified-since"), &v) {
            return Answer {
                status: 304,
                headers,
                length: 0,
                body: Body::None,
            };
        }
        let ranged = if range_applies(h("if-range"), &v) {
            decide(h("range"), stat.size)
        } else {
            Ranged::Full
        };
        let (status, start, len) = match ranged {
            Ranged::Full => (200, 0, stat.size),
            Ranged::Part { start, end } => {
                headers.push((
                    "Content-Range",
                    format!("bytes {start}-{end}/{}", stat.size),
                ));
                (206, start, end - start + 1)
            }
            Ranged::Unsatisfiable => {
                let mut a = text(416, "range not satisfiable");
                a.headers.extend(headers);
                a.headers
                    .push(("Content-Range", format!("bytes */{}", stat.size)));
                return a;
            }
        };
        headers.push(("Content-Type", super::mime::content_type(&stat.path).into()));
        let body = if len == 0 {
            Body::None
        } else {
            Body::File {
                path: stat.path,
                start,
                len,
            }
        };
        Answer {
            status,
            headers,
            length: len,
            body,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

impl Answer {
    /// The response head (and a text body, if any), ready to send.
    pub fn encode(&self, keep_alive: bool, now: SystemTime) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        out.push_str(&format!("Date: {}\r\n", httpdate::fmt_http_date(now)));
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if self.status != 304 && self.status != 204 {
            out.push_str(&format!("Content-Length: {}\r\n", self.length));
        }
        out.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        let mut out = out.into_bytes();
        if let Body::Text(t) = &self.body {
            out.extend_from_slice(t.as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests;
