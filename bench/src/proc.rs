//! What a server process costs, read from `/proc/<pid>`: CPU time and resident memory.
//!
//! A [`Sampler`] polls the processes under test four times a second during a run, keeping the
//! peak RSS; CPU is the difference of `utime + stime` between the start and the end of the
//! measured window, so it counts every thread of the process and nothing else on the machine.

use anyhow::Context;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU seconds (user + system, all threads) a process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("a /proc stat line")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .context("a short /proc stat line")?
            .parse::<f64>()
            .context("a number in /proc stat")
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// Resident memory of a process now, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .context("no VmRSS in /proc status")
}

/// What the processes under test used during a measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Usage {
    /// Length of the window.
    pub wall_secs: f64,
    /// CPU seconds used in it, all processes together.
    pub cpu_secs: f64,
    /// `cpu_secs / wall_secs`: 1.0 is one core busy all the time.
    pub cores: f64,
    /// Resident memory at the end of the window, all processes together.
    pub rss_end_bytes: u64,
    /// Highest resident memory seen during the window (sampled every 250 ms).
    pub rss_peak_bytes: u64,
}

/// Measures processes from [`Sampler::start`] until [`Sampler::finish`].
#[derive(Debug)]
pub struct Sampler {
    pids: Vec<u32>,
    started: Instant,
    cpu_start: f64,
    peak: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

fn total_rss(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| rss_bytes(*p).ok()).sum()
}

fn total_cpu(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|p| cpu_seconds(*p)).sum()
}

impl Sampler {
    /// Starts measuring `pids` (the server processes: nodes, and Redis when it is part of the
    /// system under test).
    pub fn start(pids: Vec<u32>) -> anyhow::Result<Self> {
        let cpu_start = total_cpu(&pids)?;
        let peak = Arc::new(Mutex::new(total_rss(&pids)));
        let task = tokio::spawn({
            let pids = pids.clone();
            let peak = peak.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_millis(250));
                loop {
                    every.tick().await;
                    let now = total_rss(&pids);
                    let mut p = peak.lock().unwrap_or_else(|e| e.into_inner());
                    *p = (*p).max(now);
                }
            }
        });
        Ok(Self {
            pids,
            started: Instant::now(),
            cpu_start,
            peak,
            task,
        })
    }

    /// Ends the window.
    pub fn finish(self) -> anyhow::Result<Usage> {
        self.task.abort();
        let wall_secs = self.started.elapsed().as_secs_f64();
        let cpu_secs = total_cpu(&self.pids)? - self.cpu_start;
        let rss_end_bytes = total_rss(&self.pids);
        let peak = *self.peak.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Usage {
            wall_secs,
            cpu_secs,
            cores: if wall_secs > 0.0 {
                cpu_secs / wall_secs
            } else {
                0.0
            },
            rss_end_bytes,
            rss_peak_bytes: peak.max(rss_end_bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        // Burn CPU until the kernel's clock-tick count moves (bounded), whatever the build's
        // optimisation does to a fixed loop.
        let start = cpu_seconds(me).expect("readable");
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        while cpu_seconds(me).expect("readable") <= start && std::time::Instant::now() < until {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        assert!(
            cpu_seconds(me).expect("readable") > start,
            "the CPU this test burnt shows in /proc"
        );
        let rss = rss_bytes(me).expect("readable");
        assert!(
            rss > 1024 * 1024,
            "a running test binary uses over 1 MiB: {rss}"
        );
    }
}
