//! Spawning a server for `--spawn`, and sampling a server's memory from /proc.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Spawned {
    child: Child,
    pub url: String,
    pub admin_key: String,
    pub pid: u32,
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// `nodes` × `pocket serve` on free ports and temporary data dirs (on `database`
    /// when given, sharing their keys), rate limits off.
    pub async fn start(
        exe: &std::path::Path,
        database: Option<&str>,
        nodes: usize,
    ) -> Result<Vec<Spawned>, String> {
        let admin_key = format!("adm_bench_{:016x}", rand::random::<u64>());
        let server_key: String = (0..4)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect();
        let mut out = Vec::with_capacity(nodes);
        for _ in 0..nodes {
            out.push(Self::one(exe, database, &admin_key, &server_key).await?);
        }
        Ok(out)
    }

    async fn one(
        exe: &std::path::Path,
        database: Option<&str>,
        admin_key: &str,
        server_key: &str,
    ) -> Result<Spawned, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temporary dir: {e}"))?;
        let admin_key = admin_key.to_string();
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path());
        if let Some(url) = database {
            cmd.args(["--database", url])
                .env("POCKET_SERVER_KEY", server_key);
        }
        let mut child = cmd
            .env("POCKET_ADMIN_KEY", &admin_key)
            .env("POCKET_RATE_PER_IP", "0")
            .env("POCKET_RATE_PER_CREDENTIAL", "0")
            .env("POCKET_PIN_PER_IP_PER_MINUTE", "0")
            .env("POCKET_PIN_PER_PHONE_PER_MINUTE", "0")
            .env("POCKET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Pocket listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the spawned server did not start".to_string())?;
        let pid = child.id();
        Ok(Spawned {
            child,
            url,
            admin_key,
            pid,
            _dir: dir,
        })
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples RSS once a second while the run lasts.
pub struct MemorySampler {
    pid: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Vec<u64>>,
}

/// What memory did during the run (MiB).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Memory {
    pub peak_rss_mib: f64,
    pub samples_mib: Vec<f64>,
}

impl MemorySampler {
    pub fn start(pid: u32) -> MemorySampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS:") {
                    samples.push(kib);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            samples
        });
        MemorySampler { pid, stop, handle }
    }

    pub fn stop(self) -> Memory {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let samples = self.handle.join().unwrap_or_default();
        let peak = status_kib(self.pid, "VmHWM:")
            .or_else(|| samples.iter().copied().max())
            .unwrap_or(0);
        Memory {
            peak_rss_mib: peak as f64 / 1024.0,
            samples_mib: samples.iter().map(|k| *k as f64 / 1024.0).collect(),
        }
    }
}
