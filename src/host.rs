//! Facts about and settings of the host process: the kernel's version, the fd limit, a thread's
//! CPU time. Used by the server, `ringcast check` and loadgen.

use std::time::Duration;

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

/// The calling thread's kernel id (what [`thread_cpu_time`] takes).
pub fn current_thread_id() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// Time a thread of this process has spent on a CPU, user and system (the first field of
/// `/proc/self/task/TID/schedstat`, in ns); `None` when there is no such thread or no `/proc`.
pub fn thread_cpu_time(thread_id: i32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{thread_id}/schedstat")).ok()?;
    parse_schedstat(&text)
}

fn parse_schedstat(text: &str) -> Option<Duration> {
    Some(Duration::from_nanos(
        text.split_whitespace().next()?.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_lines() {
        assert_eq!(
            parse_schedstat("1234567890 55 7\n"),
            Some(Duration::from_nanos(1_234_567_890))
        );
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    #[test]
    fn a_busy_thread_has_cpu_time_and_a_gone_one_none() {
        let me = current_thread_id();
        let before = thread_cpu_time(me).expect("this thread's schedstat");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = thread_cpu_time(me).expect("this thread's schedstat");
        assert!(after > before, "{before:?} → {after:?}");
        // A joined thread's entry goes a moment after the join returns.
        let gone = std::thread::spawn(current_thread_id)
            .join()
            .expect("joined");
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while thread_cpu_time(gone).is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(thread_cpu_time(gone), None);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v445"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.19.0"), Some((5, 19)));
        assert_eq!(parse_kernel_version("garbage"), None);
    }
}
