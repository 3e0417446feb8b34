//! The route's answers, table by table, over a real temporary directory.

use std::collections::HashMap;

use super::*;
use crate::files::path::resolve;
use crate::files::sign::sign;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const NOW: u64 = 1_800_000_000;

struct Fixture {
    cfg: FilesConfig,
    key: SigningKey,
}

fn fixture() -> Fixture {
    // One directory per fixture: the tests run in parallel.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("ringcast-route-{}-{n}", std::process::id()));
    let root = base.join("root");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::write(root.join("song.ogg"), vec![7u8; 1000]).unwrap();
    std::fs::write(root.join("empty.txt"), "").unwrap();
    std::fs::write(base.join("secret.txt"), "secret").unwrap();
    let _ = std::fs::remove_file(root.join("escape.txt"));
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape.txt")).unwrap();
    let key = SigningKey::parse(KEY, None).unwrap();
    Fixture {
        cfg: FilesConfig {
            root: root.canonicalize().unwrap(),
            keys: vec![key.clone()],
            cache_control: Some("private, max-age=60".into()),
            cors_origins: vec!["https://app.example".into()],
        },
        key,
    }
}

impl Fixture {
    fn link(&self, path: &str) -> String {
        format!(
            "expires={}&sig={}",
            NOW + 60,
            sign(&self.key, path, NOW + 60)
        )
    }

    fn ask(&self, method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> Answer {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        let header = |name: &str| map.get(name).map(String::as_str);
        let req = FileRequest {
            method,
            path,
            query: Some(query),
            header: &header,
        };
        let root = self.cfg.root.clone();
        let open = move |rel: &Path| -> Result<Stat, PathError> {
            let p = resolve(&root, rel)?;
            let m = std::fs::metadata(&p).map_err(|_| PathError::NotFound)?;
            Ok(Stat {
                path: p,
                size: m.len(),
                modified: m.modified().unwrap(),
            })
        };
        self.cfg.answer(&req, NOW, &open)
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.ask("GET", path, &self.link(path), headers)
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_signed_link_serves_the_file_with_validators() {
    let f = fixture();
    let a = f.get("/files/song.ogg", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.length, 1000);
    assert_eq!(header(&a, "content-type"), Some("audio/ogg"));
    assert_eq!(header(&a, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&a, "cache-control"), Some("private, max-age=60"));
    assert!(header(&a, "etag").unwrap().starts_with('"'));
    assert!(header(&a, "last-modified").unwrap().ends_with("GMT"));
    assert!(matches!(
        a.body,
        Body::File {
            start: 0,
            len: 1000,
            ..
        }
    ));
    let head = f.ask("HEAD", "/files/song.ogg", &f.link("/files/song.ogg"), &[]);
    assert_eq!(
        (head.status, head.length, head.body),
        (200, 1000, Body::None)
    );
    let text = String::from_utf8(a.encode(true, SystemTime::UNIX_EPOCH)).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("Content-Length: 1000\r\n"));
    assert!(text.ends_with("Connection: keep-alive\r\n\r\n"), "{text}");
}

#[test]
fn ranges_and_conditionals() {
    let f = fixture();
    let p = "/files/song.ogg";
    let a = f.get(p, &[("Range", "bytes=100-199")]);
    assert_eq!(a.status, 206);
    assert_eq!(header(&a, "content-range"), Some("bytes 100-199/1000"));
    assert!(matches!(
        a.body,
        Body::File {
            start: 100,
            len: 100,
            ..
        }
    ));
    let a = f.get(p, &[("Range", "bytes=-10")]);
    assert_eq!(header(&a, "content-range"), Some("bytes 990-999/1000"));
    for bad in ["bytes=5-1", "bytes=-0", "bytes=1000-"] {
        let a = f.get(p, &[("Range", bad)]);
        assert_eq!(a.status, 416, "{bad}");
        assert_eq!(header(&a, "content-range"), Some("bytes */1000"), "{bad}");
    }
    let etag = header(&f.get(p, &[]), "etag").unwrap().to_owned();
    let lm = header(&f.get(p, &[]), "last-modified").unwrap().to_owned();
    assert_eq!(f.get(p, &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(f.get(p, &[("If-Modified-Since", &lm)]).status, 304);
    assert_eq!(f.get(p, &[("If-None-Match", "\"other\"")]).status, 200);
    assert_eq!(
        f.get(p, &[("Range", "bytes=0-9"), ("If-Range", &etag)])
            .status,
        206
    );
    assert_eq!(
        f.get(p, &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")])
            .status,
        200,
        "a changed file: the whole of it"
    );
    assert_eq!(
        f.get(p, &[("Range", "bytes=0-9"), ("If-Range", &lm)])
            .status,
        206
    );
    let empty = f.get("/files/empty.txt", &[]);
    assert_eq!(
        (empty.status, empty.length, empty.body),
        (200, 0, Body::None)
    );
}

#[test]
fn hostile_requests_table() {
    let f = fixture();
    let good = "/files/song.ogg";
    let sig_for_good = f.link(good);
    let expired = format!("expires={}&sig={}", NOW - 1, sign(&f.key, good, NOW - 1));
    let changed_expiry = sig_for_good.replace(&(NOW + 60).to_string(), &(NOW + 6000).to_string());
    let upper = sig_for_good.replace(
        sig_for_good.split("sig=").nth(1).unwrap(),
        &sig_for_good.split("sig=").nth(1).unwrap().to_uppercase(),
    );
    let thousand = format!(
        "bytes={}",
        (0..1000)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    type Row<'a> = (&'a str, &'a str, String, Vec<(&'a str, &'a str)>, u16);
    let rows: Vec<Row<'_>> = vec![
        ("GET", good, sig_for_good.clone(), vec![], 200),
        ("GET", good, upper, vec![], 200),
        ("GET", good, String::new(), vec![], 403),
        ("GET", good, expired, vec![], 403),
        ("GET", good, changed_expiry, vec![], 403),
        ("GET", "/files/other.ogg", sig_for_good.clone(), vec![], 403),
        (
            "GET",
            good,
            format!("expires=99999999999999999999999&sig={}", "0".repeat(64)),
            vec![],
            403,
        ),
        (
            "GET",
            "/files/..%2fsecret.txt",
            f.link("/files/..%2fsecret.txt"),
            vec![],
            400,
        ),
        (
            "GET",
            "/files/%2e%2e/secret.txt",
            f.link("/files/%2e%2e/secret.txt"),
            vec![],
            400,
        ),
        (
            "GET",
            "/files/%252e%252e/secret.txt",
            f.link("/files/%252e%252e/secret.txt"),
            vec![],
            404,
        ),
        (
            "GET",
            "/files/escape.txt",
            f.link("/files/escape.txt"),
            vec![],
            404,
        ),
        ("GET", "/files/dir", f.link("/files/dir"), vec![], 404),
        (
            "GET",
            "/files/missing",
            f.link("/files/missing"),
            vec![],
            404,
        ),
        (
            "GET",
            good,
            sig_for_good.clone(),
            vec![("Range", "bytes=5-1")],
            416,
        ),
        (
            "GET",
            good,
            sig_for_good.clone(),
            vec![("Range", "bytes=-0")],
            416,
        ),
        (
            "GET",
            good,
            sig_for_good.clone(),
            vec![("Range", thousand.as_str())],
            200,
        ),
        (
            "GET",
            good,
            sig_for_good.clone(),
            vec![("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            400,
        ),
        ("POST", good, sig_for_good.clone(), vec![], 405),
        ("DELETE", good, sig_for_good.clone(), vec![], 405),
    ];
    for (method, path, query, headers, want) in rows {
        let a = f.ask(method, path, &query, &headers);
        assert_eq!(
            a.status, want,
            "{method} {path}?{query} {headers:?}: {:?}",
            a.body
        );
    }
    // The refusals say only what they must.
    let a = f.ask("GET", good, "", &[]);
    assert_eq!(a.body, Body::Text("bad signature\n".into()));
    let expired = format!("expires={}&sig={}", NOW - 1, sign(&f.key, good, NOW - 1));
    assert_eq!(
        f.ask("GET", good, &expired, &[]).body,
        Body::Text("link expired\n".into())
    );
}

#[test]
fn cors() {
    let f = fixture();
    let p = "/files/song.ogg";
    let a = f.get(p, &[("Origin", "https://app.example")]);
    assert_eq!(
        header(&a, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        header(&a, "access-control-expose-headers")
            .unwrap()
            .contains("Content-Range")
    );
    let a = f.get(p, &[("Origin", "https://evil.example")]);
    assert_eq!(header(&a, "access-control-allow-origin"), None);
    let pre = f.ask("OPTIONS", p, "", &[("Origin", "https://app.example")]);
    assert_eq!(pre.status, 204);
    assert!(
        header(&pre, "access-control-allow-headers")
            .unwrap()
            .contains("Range")
    );
    let pre = f.ask("OPTIONS", p, "", &[("Origin", "https://evil.example")]);
    assert_eq!(header(&pre, "access-control-allow-origin"), None);
}
