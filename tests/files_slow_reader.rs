//! A 1 GiB (sparse) file read by a client at a few KiB/s: the server holds one chunk, not the
//! file (measured: this process's RSS, with the server in it and nothing else running).

mod common;

use std::time::Duration;

use ringcast::files::sign::{file_url_path, signed_url};

/// A 1 GiB (sparse) file read at a few KiB/s: the server holds one chunk, not the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_a_large_file_keeps_server_memory_flat() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = common::files::start();
    let big = f.dir.join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let path = file_url_path("big.bin");
    let link = signed_url(&f.key, &path, ringcast::session::Now::system().unix + 600);
    let rss = || -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    let mut raw = f.server.raw().await;
    let before = rss();
    raw.tls
        .write_all(format!("GET {link} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = 0usize;
    let mut buf = [0u8; 1024];
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        let n = raw.tls.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got += n;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grew = rss().saturating_sub(before);
    assert!(got > 0 && got < 10 << 20, "read slowly: {got} bytes");
    eprintln!("read {got} bytes slowly; server RSS grew {grew} KiB");
    assert!(
        grew < 2048,
        "server memory grew {grew} KiB reading a 1 GiB file slowly"
    );
}
