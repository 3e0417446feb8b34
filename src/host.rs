//! Facts about and settings of the host process: the kernel's version, the fd limit. Used by the
//! server, `ringcast check` and loadgen.

/// (major, minor) of the running kernel.
pub fn kernel_version() -> Option<(u32, u32)> {
    let uname = rustix::system::uname();
    parse_kernel_version(uname.release().to_str().ok()?)
}

fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns (soft, hard) afterwards.
pub fn raise_nofile_limit() -> (Option<u64>, Option<u64>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
    let now = getrlimit(Resource::Nofile);
    (now.current, now.maximum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v445"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.19.0"), Some((5, 19)));
        assert_eq!(parse_kernel_version("garbage"), None);
    }
}
