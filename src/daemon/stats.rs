//! Counters the stages update and the daemon reports (status line, bench).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Stats {
    pub captured: AtomicU64,
    pub capture_errors: AtomicU64,
    pub corrupt_frames: AtomicU64,
    pub camera_reopens: AtomicU64,
    pub inferred: AtomicU64,
    pub inference_errors: AtomicU64,
    pub inference_restarts: AtomicU64,
    pub displayed: AtomicU64,
    pub display_errors: AtomicU64,
    /// Current network size, packed as h << 32 | w.
    pub size: AtomicU64,
    /// Capture -> shown, in microseconds (last few thousand).
    latencies: Mutex<Vec<u32>>,
    infer_times: Mutex<Vec<u32>>,
}

const KEEP: usize = 4096;

fn push(v: &Mutex<Vec<u32>>, d: Duration) {
    let mut g = v.lock().unwrap_or_else(|p| p.into_inner());
    if g.len() >= KEEP {
        g.drain(..KEEP / 2);
    }
    g.push(d.as_micros().min(u32::MAX as u128) as u32);
}

/// The p-th percentile (0..=100) of microsecond samples, in milliseconds.
pub fn percentile(samples: &[u32], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    Some(s[i] as f64 / 1000.0)
}

impl Stats {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    pub fn latency(&self, d: Duration) {
        push(&self.latencies, d);
    }

    pub fn infer_time(&self, d: Duration) {
        push(&self.infer_times, d);
    }

    pub fn latency_ms(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies.lock().unwrap_or_else(|e| e.into_inner()), p)
    }

    pub fn infer_ms(&self, p: f64) -> Option<f64> {
        percentile(
            &self.infer_times.lock().unwrap_or_else(|e| e.into_inner()),
            p,
        )
    }

    pub fn set_size(&self, h: usize, w: usize) {
        self.size.store(((h as u64) << 32) | w as u64, Relaxed);
    }

    pub fn size(&self) -> (usize, usize) {
        let v = self.size.load(Relaxed);
        ((v >> 32) as usize, (v & 0xffff_ffff) as usize)
    }
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    proc_status_kib("VmHWM:").map(|k| k as f64 / 1024.0)
}

/// Current resident memory (VmRSS), in MiB.
pub fn rss_mib() -> Option<f64> {
    proc_status_kib("VmRSS:").map(|k| k as f64 / 1024.0)
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) this process used so far.
pub fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// Open file descriptors of this process (soak tests watch it for leaks).
pub fn fd_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_samples() {
        let s: Vec<u32> = (1..=100).map(|v| v * 1000).collect();
        assert_eq!(percentile(&s, 50.0), Some(51.0));
        assert_eq!(percentile(&s, 95.0), Some(95.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn process_readings_are_available_on_linux() {
        assert!(peak_rss_mib().unwrap() > 0.0);
        assert!(fd_count().unwrap() >= 3);
        assert!(cpu_time().is_some());
    }
}
