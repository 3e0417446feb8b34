//! Test-only key pairs (RSA 2048, EC P-256, Ed25519), made at run time with `openssl genpkey`
//! into `target/test-keys/` (ignored by git), never committed. The project's tests and benches
//! call [`dir`]; nothing else may use these keys.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const FILES: [(&str, &[&str]); 3] = [
    (
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ),
    (
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ),
    ("ed", &["-algorithm", "ed25519"]),
];

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the tests need the openssl command to make their keys");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make(dest: &Path) {
    let parent = dest.parent().expect("a parent");
    std::fs::create_dir_all(parent).expect("target dir");
    // Made beside, then renamed into place: test binaries running at once never see a half set.
    let tmp = parent.join(format!("test-keys.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("temp key dir");
    for (name, params) in FILES {
        let key = tmp.join(format!("{name}.key"));
        let public = tmp.join(format!("{name}.pub"));
        let mut args = vec!["genpkey"];
        args.extend_from_slice(params);
        args.extend(["-out", key.to_str().expect("UTF-8 path")]);
        openssl(&args);
        openssl(&[
            "pkey",
            "-in",
            key.to_str().expect("UTF-8 path"),
            "-pubout",
            "-out",
            public.to_str().expect("UTF-8 path"),
        ]);
    }
    if std::fs::rename(&tmp, dest).is_err() {
        // Another process won the race: its set is as good.
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// The directory holding `rsa.key`/`rsa.pub`, `ec.key`/`ec.pub`, `ed.key`/`ed.pub`.
pub fn dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        let dest = target.join("test-keys");
        if !dest.join("ed.pub").exists() {
            make(&dest);
        }
        dest
    })
    .clone()
}
