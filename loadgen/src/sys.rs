//! Facts about processes and the machine: CPU time and memory from /proc, and the machine
//! description that goes into every result file.

use std::time::Duration;

/// Linux reports /proc CPU times in clock ticks of 1/100 s (USER_HZ on every architecture).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system, and the user-space part alone) and memory of a process.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub user_s: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Samples `pid` ("self" for this process); None if it does not exist.
pub fn sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that ends the command name: state is field 3; utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = f.get(11)?.parse().ok()?;
    let system: f64 = f.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_s: (user + system) / TICKS_PER_SEC,
        user_s: user / TICKS_PER_SEC,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// The sum of `pids`' samples; None without pids or when one of them is gone.
pub fn sample_sum(pids: &[String]) -> Option<ProcSample> {
    pids.iter().try_fold(None, |sum: Option<ProcSample>, pid| {
        let s = sample(pid)?;
        Some(Some(sum.map_or(s, |t| ProcSample {
            cpu_s: t.cpu_s + s.cpu_s,
            user_s: t.user_s + s.user_s,
            rss_kib: t.rss_kib + s.rss_kib,
            hwm_kib: t.hwm_kib + s.hwm_kib,
        })))
    })?
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        kernel: rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned(),
    }
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = sample("self").unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(sample("999999999").is_none());
    }

    #[test]
    fn several_processes_are_summed() {
        let me = || "self".to_owned();
        let one = sample_sum(&[me()]).unwrap();
        let two = sample_sum(&[me(), me()]).unwrap();
        assert!(two.rss_kib >= one.rss_kib * 2 - 1024, "{one:?} {two:?}");
        assert!(sample_sum(&[]).is_none());
        assert!(sample_sum(&[me(), "999999999".into()]).is_none());
    }
}
