//! A server with `--files` over a temporary directory holding `audio/track one.ogg` (100,000
//! bytes of a known pattern), and the key its links are signed with.

use std::path::PathBuf;
use std::process::Command;

use ringcast::files::sign::{SigningKey, file_url_path, signed_url};

pub const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

pub fn start() -> Files {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringcast-files-it-{}-{n}", std::process::id()));
    std::fs::create_dir_all(dir.join("audio")).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("audio/track one.ogg"), &data).unwrap();
    let d = dir.to_str().unwrap().to_owned();
    let server = super::start(&[
        "--files",
        &d,
        "--url-signing-key",
        KEY,
        "--cors-origins",
        "https://app.example",
        "--files-cache-control",
        "private, max-age=60",
    ]);
    Files {
        server,
        dir,
        key: SigningKey::parse(KEY, None).unwrap(),
    }
}

pub struct Files {
    pub server: super::TestServer,
    pub dir: PathBuf,
    pub key: SigningKey,
}

impl Files {
    pub fn url(&self, rel: &str) -> String {
        let expires = ringcast::session::Now::system().unix + 600;
        format!(
            "https://localhost:{}{}",
            self.server.port,
            signed_url(&self.key, &file_url_path(rel), expires)
        )
    }

    pub fn curl(&self, args: &[&str]) -> (String, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(self.server.cert_path())
            .args(["-D", "-", "-o"])
            .arg(self.dir.join("body.out"))
            .args(args)
            .output()
            .expect("curl runs (apt-get install curl)");
        let head = String::from_utf8_lossy(&out.stdout).into_owned();
        let body = std::fs::read(self.dir.join("body.out")).unwrap_or_default();
        (head, body)
    }
}
