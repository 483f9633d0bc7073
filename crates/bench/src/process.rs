//! What each process spent during the run, read from `/proc` before and after: CPU
//! (user + system, all threads) and what it wrote (`wchar`: bytes handed to `write`
//! and friends; `syscw`: how many such calls; `write_bytes`: what reached the block
//! layer). For the server (spawned, or `--pid`) and for this load generator, so a
//! report says which of the two was the bottleneck.

use serde::Serialize;

/// One process's counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu_ticks: u64,
    pub wchar: u64,
    pub syscw: u64,
    pub write_bytes: u64,
}

impl Usage {
    /// The counters of `pid` (`None` for "self"), or `None` when `/proc` cannot tell.
    pub fn read(pid: Option<u32>) -> Option<Usage> {
        let who = pid.map_or("self".to_string(), |p| p.to_string());
        let stat = std::fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
        // The command name (field 2) may hold spaces: fields are counted after its ')'.
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let io = std::fs::read_to_string(format!("/proc/{who}/io")).unwrap_or_default();
        let field = |name: &str| {
            io.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        Some(Usage {
            cpu_ticks: utime + stime,
            wchar: field("wchar:"),
            syscw: field("syscw:"),
            write_bytes: field("write_bytes:"),
        })
    }

    /// The sum of several processes' counters (the nodes of one run).
    pub fn sum(pids: &[u32]) -> Option<Usage> {
        let mut total = Usage::default();
        for pid in pids {
            let u = Usage::read(Some(*pid))?;
            total.cpu_ticks += u.cpu_ticks;
            total.wchar += u.wchar;
            total.syscw += u.syscw;
            total.write_bytes += u.write_bytes;
        }
        Some(total)
    }

    fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_ticks: self.cpu_ticks.saturating_sub(before.cpu_ticks),
            wchar: self.wchar.saturating_sub(before.wchar),
            syscw: self.syscw.saturating_sub(before.syscw),
            write_bytes: self.write_bytes.saturating_sub(before.write_bytes),
        }
    }
}

/// Clock ticks per second of `/proc/*/stat`'s CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// The run's cost, per process and per unit of work.
#[derive(Serialize, Clone, Debug)]
pub struct Costs {
    pub server_cpu_s: f64,
    pub server_cpu_us_per_request: f64,
    pub bench_cpu_s: f64,
    pub bench_cpu_us_per_request: f64,
    /// What the server handed to `write` (and `pwrite`, …), per payment.
    pub server_written_bytes_per_payment: f64,
    pub server_write_calls_per_request: f64,
    /// What reached the block layer from the server, per payment.
    pub server_disk_bytes_per_payment: f64,
}

/// Counters taken when the run starts; `finish` turns them into [`Costs`].
pub struct Meter {
    server_pids: Vec<u32>,
    server: Option<Usage>,
    bench: Option<Usage>,
}

impl Meter {
    pub fn start(server_pids: Vec<u32>) -> Meter {
        Meter {
            server: Usage::sum(&server_pids),
            bench: Usage::read(None),
            server_pids,
        }
    }

    pub fn finish(self, requests: u64, payments: u64) -> Option<Costs> {
        let server = Usage::sum(&self.server_pids)?.since(self.server?);
        let bench = Usage::read(None)?.since(self.bench?);
        let hz = ticks_per_second();
        let per = |n: f64, d: u64| n / (d.max(1) as f64);
        let server_cpu_s = server.cpu_ticks as f64 / hz;
        let bench_cpu_s = bench.cpu_ticks as f64 / hz;
        Some(Costs {
            server_cpu_s,
            server_cpu_us_per_request: per(server_cpu_s * 1e6, requests),
            bench_cpu_s,
            bench_cpu_us_per_request: per(bench_cpu_s * 1e6, requests),
            server_written_bytes_per_payment: per(server.wchar as f64, payments),
            server_write_calls_per_request: per(server.syscw as f64, requests),
            server_disk_bytes_per_payment: per(server.write_bytes as f64, payments),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let before = Usage::read(None).expect("/proc/self");
        // Burn a little CPU and write a little.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), vec![7u8; 100_000]).expect("write");
        let after = Usage::read(None).expect("/proc/self");
        let d = after.since(before);
        assert!(d.wchar >= 100_000, "{d:?}");
        assert!(d.syscw >= 1, "{d:?}");
    }
}
