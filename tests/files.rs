//! Signed-URL file streaming against the real server over TLS, judged by curl (Range, If-Range,
//! HEAD, keep-alive), plus what no client sends: pipelined requests. (The slow reader of a large
//! file is `tests/files_slow_reader.rs`, alone in its process so its memory figure is its own.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::files::start;
use ringcast::files::sign::{file_url_path, signed_url};

fn status(head: &str) -> u16 {
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn curl_gets_ranges_heads_and_conditionals() {
    let f = start();
    let data = std::fs::read(f.dir.join("audio/track one.ogg")).unwrap();
    let url = f.url("audio/track one.ogg");
    let (head, body) = f.curl(&[&url]);
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(body, data);
    assert_eq!(header(&head, "content-type"), Some("audio/ogg"));
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&head, "cache-control"), Some("private, max-age=60"));
    let etag = header(&head, "etag").unwrap().to_owned();

    let (head, body) = f.curl(&["-r", "1000-1999", &url]);
    assert_eq!(status(&head), 206, "{head}");
    assert_eq!(
        header(&head, "content-range"),
        Some("bytes 1000-1999/100000")
    );
    assert_eq!(body, &data[1000..2000]);

    let (head, body) = f.curl(&["-r", "-100", &url]);
    assert_eq!(body, &data[99_900..], "{head}");

    let (head, body) = f.curl(&["-I", &url]);
    assert_eq!(status(&head), 200);
    assert_eq!(header(&head, "content-length"), Some("100000"));
    assert!(body.len() < 1000, "HEAD sends the head only");

    let ir = format!("If-Range: {etag}");
    let (head, _) = f.curl(&["-r", "0-9", "-H", &ir, &url]);
    assert_eq!(status(&head), 206);
    let (head, body) = f.curl(&["-r", "0-9", "-H", "If-Range: \"stale\"", &url]);
    assert_eq!(
        (status(&head), body.len()),
        (200, 100_000),
        "a changed file: all of it"
    );
    let inm = format!("If-None-Match: {etag}");
    let (head, _) = f.curl(&["-H", &inm, &url]);
    assert_eq!(status(&head), 304);

    let (head, _) = f.curl(&["-r", "200000-", &url]);
    assert_eq!(status(&head), 416);
    assert_eq!(header(&head, "content-range"), Some("bytes */100000"));

    let (head, _) = f.curl(&["-H", "Origin: https://app.example", &url]);
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some("https://app.example")
    );

    // A tampered link and an expired one.
    let (head, _) = f.curl(&[&url.replace("sig=", "sig=0")]);
    assert_eq!(status(&head), 403);
    let old = format!(
        "https://localhost:{}{}",
        f.server.port,
        signed_url(&f.key, &file_url_path("audio/track one.ogg"), 1_000)
    );
    let (head, _) = f.curl(&[&old]);
    assert_eq!(status(&head), 403);
    assert_eq!(
        std::fs::read_to_string(f.dir.join("body.out")).unwrap(),
        "link expired\n"
    );
}

#[test]
fn curl_keeps_the_connection_alive_across_requests() {
    let f = start();
    let url = f.url("audio/track one.ogg");
    let out = Command::new("curl")
        .args(["-sS", "-v", "--cacert"])
        .arg(f.server.cert_path())
        .args([
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-r",
            "0-99",
            &url,
            &url,
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Re-using existing connection") || log.contains("Reusing existing"),
        "one connection for both: {log}"
    );
}

/// Two requests in one write: answered in order on one connection; a HEAD in between.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = start();
    let link = signed_url(
        &f.key,
        &file_url_path("audio/track one.ogg"),
        ringcast::session::Now::system().unix + 600,
    );
    let mut raw = f.server.raw().await;
    let req = |method: &str, range: &str| {
        format!("{method} {link} HTTP/1.1\r\nHost: localhost\r\nRange: bytes={range}\r\n\r\n")
    };
    let both = format!(
        "{}{}{}",
        req("GET", "0-4"),
        req("HEAD", "0-4"),
        req("GET", "10-14")
    );
    raw.tls.write_all(both.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while all.windows(12).filter(|w| w == b"HTTP/1.1 206").count() < 3
        || !all.ends_with(&[10, 11, 12, 13, 14])
    {
        let n = tokio::time::timeout(Duration::from_secs(5), raw.tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        all.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&all);
    assert_eq!(
        text.matches("Content-Range: bytes 0-4/100000").count(),
        2,
        "{text}"
    );
    assert!(text.contains("Content-Range: bytes 10-14/100000"), "{text}");
}

/// ffprobe (Debian ffmpeg) reads a signed Ogg link over TLS: to find the duration it seeks to
/// the end with a Range request, which the server answers 206.
#[test]
fn ffprobe_reads_a_signed_audio_link_seeking_with_ranges() {
    if Command::new("ffprobe").arg("-version").output().is_err() {
        let required = std::env::var("RINGCAST_REQUIRE_FFMPEG").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "ffprobe is required (RINGCAST_REQUIRE_FFMPEG=1): apt-get install ffmpeg"
        );
        eprintln!("ffprobe not installed: skipped (apt-get install ffmpeg)");
        return;
    }
    let f = start();
    let tone = f.dir.join("audio/tone.ogg");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=20",
        ])
        .args(["-c:a", "libvorbis", "-q:a", "2"])
        .arg(&tone)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg made the test file");
    let url = f.url("audio/tone.ogg");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-tls_verify", "1", "-ca_file"])
        .arg(f.server.cert_path())
        .args(["-show_entries", "format=duration", "-of", "csv=p=0", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duration: f64 = text.trim().parse().unwrap();
    assert!((duration - 20.0).abs() < 0.1, "duration {duration}");
    let api = f.server.handle().api_addr.unwrap();
    let metrics = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(common::http_get(api, "/metrics"));
    let partial = metrics
        .lines()
        .find(|l| l.starts_with("ringcast_file_answers_total{status=\"206\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(
        partial >= 1,
        "ffprobe seeked with a Range request: {metrics}"
    );
}
