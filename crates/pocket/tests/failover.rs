//! A database failover without loss. The test builds its own PostgreSQL primary and
//! synchronous standby (initdb, streaming replication, `synchronous_commit = on`) in
//! a temporary directory, runs three nodes on a multi-host URL
//! (`target_session_attrs=read-write`), kills the primary with `kill -9` in the middle
//! of a load, promotes the standby, and shows: the nodes reconnect by themselves,
//! every acknowledged payment is there exactly once with the state it was
//! acknowledged in, the ledger is balanced, and requests caught by the switch got
//! `503` with `Retry-After`, never another answer.
//!
//! PostgreSQL pass only (`POCKET_TEST_ENGINE=postgres`); it needs PostgreSQL's server
//! binaries (`pg_config --bindir`), and runs them as the `postgres` user when the
//! test runs as root.

mod common;

use common::{Options, Server};
use reqwest::Method;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs one of PostgreSQL's programs, as `postgres` when we are root.
fn pg(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(program);
    if unsafe { libc::geteuid() } == 0 {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&exe)
            .args(args)
            .output()
    } else {
        Command::new(&exe).args(args).output()
    }
    .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

fn must(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn psql(port: u16, db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &port.to_string(), "-d", db, "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    primary: u16,
    standby: u16,
}

impl Cluster {
    fn data(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn build() -> Cluster {
        let bin = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("pg_config");
        let bin = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
        let dir = tempfile::Builder::new()
            .prefix("pocket-failover")
            .tempdir()
            .unwrap();
        // The server runs as `postgres`: it must own its directories.
        Command::new("chmod")
            .arg("755")
            .arg(dir.path())
            .status()
            .unwrap();
        if unsafe { libc::geteuid() } == 0 {
            Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let c = Cluster {
            bin,
            primary: common::free_port(),
            standby: common::free_port(),
            dir,
        };
        let primary = c.data("primary");
        must(
            pg(
                &c.bin,
                "initdb",
                &["-D", &primary, "-U", "postgres", "--auth=trust", "-N"],
            ),
            "initdb",
        );
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 4\nsynchronous_commit = on\n\
             synchronous_standby_names = 'standby1'\nfsync = on\n",
            c.primary,
            c.dir.path().display()
        );
        append(&Path::new(&primary).join("postgresql.conf"), &conf);
        c.start("primary");
        let standby = c.data("standby");
        must(
            pg(
                &c.bin,
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &c.primary.to_string(),
                    "-U",
                    "postgres",
                    "-D",
                    &standby,
                    "-X",
                    "stream",
                    "-R",
                ],
            ),
            "pg_basebackup",
        );
        append(
            &Path::new(&standby).join("postgresql.auto.conf"),
            &format!(
                "port = {}\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name=standby1'\n\
                 synchronous_standby_names = ''\n",
                c.standby, c.primary
            ),
        );
        // (Once promoted it has no standby of its own: it must not wait for one, or every
        // commit would hang. An HA manager such as Patroni does this when it promotes.)
        c.start("standby");
        // Commits wait for the standby from here on.
        let started = Instant::now();
        while psql(
            c.primary,
            "postgres",
            "SELECT sync_state FROM pg_stat_replication",
        ) != "sync"
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the standby never became synchronous"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        psql(c.primary, "postgres", "CREATE DATABASE pocket");
        c
    }

    fn start(&self, name: &str) {
        let data = self.data(name);
        let log = self.data(&format!("{name}.log"));
        must(
            pg(
                &self.bin,
                "pg_ctl",
                &["-D", &data, "-l", &log, "-w", "start"],
            ),
            name,
        );
    }

    fn kill9_primary(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("primary/postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim();
        Command::new("kill").args(["-9", pid]).status().unwrap();
        // Its backends notice their postmaster's death and go too.
    }

    fn promote_standby(&self) {
        must(
            pg(
                &self.bin,
                "pg_ctl",
                &["-D", &self.data("standby"), "-w", "promote"],
            ),
            "promote",
        );
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/pocket?target_session_attrs=read-write&connect_timeout=2",
            self.primary, self.standby
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for name in ["standby", "primary"] {
            let _ = pg(
                &self.bin,
                "pg_ctl",
                &["-D", &self.data(name), "-m", "immediate", "stop"],
            );
        }
    }
}

fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).unwrap_or_default();
    s.push_str(text);
    // Written as root: hand it back to `postgres` (same mode).
    std::fs::write(path, s).unwrap();
}

/// One acknowledged payment: what the client was told, with the idempotency keys it
/// used (retried on 503 until a definite answer).
#[derive(Clone, Debug)]
struct Acked {
    id: String,
    succeeded: bool,
}

#[derive(Default)]
struct Tally {
    acked: Vec<Acked>,
    answers: HashMap<u16, usize>,
    /// The codes of the 503s.
    unavailable: HashMap<String, usize>,
    unavailable_without_retry_after: usize,
    /// Answers that were neither the contract's success nor a 503.
    wrong: Vec<String>,
}

/// POSTs one request until it gets a definite answer, retrying 503s (honouring
/// `Retry-After`, at most 60 tries) with the same idempotency key.
async fn until_definite(
    nodes: &[Server],
    mut node: usize,
    path: &str,
    auth: &str,
    body: serde_json::Value,
    key: &str,
    tally: &Mutex<Tally>,
) -> common::Reply {
    for _ in 0..60 {
        let r = nodes[node % nodes.len()]
            .call(
                Method::POST,
                path,
                Some(auth),
                Some(body.clone()),
                Some(key),
            )
            .await;
        let status = r.status.as_u16();
        {
            let mut t = tally.lock().unwrap();
            *t.answers.entry(status).or_default() += 1;
            if status == 503 {
                *t.unavailable.entry(r.code().to_string()).or_default() += 1;
                if !r.headers.contains_key("retry-after") {
                    t.unavailable_without_retry_after += 1;
                }
            }
        }
        if status == 503 {
            node += 1; // a load balancer would try another node too
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        return r;
    }
    panic!("{path} never got a definite answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_in_the_middle_of_a_load_loses_nothing() {
    if !pocket_store::testing::on_postgres() {
        eprintln!("SKIPPED on SQLite: the failover is PostgreSQL's");
        return;
    }
    let cluster = Cluster::build();
    let mut env = vec![(
        "POCKET_SERVER_KEY".to_string(),
        common::SERVER_KEY.to_string(),
    )];
    env.push(("POCKET_LOG".into(), "error".into()));
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            Server::start_on(
                Options {
                    args: vec!["--sandbox".into()],
                    env: env.clone(),
                    database_url: Some(cluster.url()),
                    ..Options::default()
                },
                None,
            )
            .await,
        );
    }
    let nodes = Arc::new(nodes);
    let (_, sk) = nodes[0].merchant("M").await;
    let mut customers = Vec::new();
    for i in 0..4 {
        customers.push(
            nodes[i % 3]
                .customer(&format!("+86138000200{i:02}"), 10_000_000)
                .await,
        );
    }
    let customers = Arc::new(customers);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));

    // Eight clients: create a payment, then confirm every second one.
    let mut clients = Vec::new();
    for c in 0..8usize {
        let (nodes, customers, tally, stop, sk) = (
            nodes.clone(),
            customers.clone(),
            tally.clone(),
            stop.clone(),
            sk.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (cus, token) = &customers[c % customers.len()];
                let created = until_definite(
                    &nodes,
                    c + n,
                    "/v1/payments",
                    &sk,
                    json!({"currency": "CNY", "amount": 100, "customer": cus}),
                    &format!("create-{c}-{n}"),
                    &tally,
                )
                .await;
                if created.status != 201 {
                    tally
                        .lock()
                        .unwrap()
                        .wrong
                        .push(format!("create: {} {}", created.status, created.text));
                    continue;
                }
                let id = created.body["id"].as_str().unwrap().to_string();
                let mut acked = Acked {
                    id: id.clone(),
                    succeeded: false,
                };
                if n.is_multiple_of(2) {
                    let r = until_definite(
                        &nodes,
                        c + n + 1,
                        &format!("/v1/wallet/payments/{id}/confirm"),
                        token,
                        json!({}),
                        &format!("confirm-{c}-{n}"),
                        &tally,
                    )
                    .await;
                    if r.status == 200 && r.body["status"] == "succeeded" {
                        acked.succeeded = true;
                    } else {
                        tally
                            .lock()
                            .unwrap()
                            .wrong
                            .push(format!("confirm: {} {}", r.status, r.text));
                    }
                }
                tally.lock().unwrap().acked.push(acked);
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = tally.lock().unwrap().acked.len();
    let killed_at = Instant::now();
    cluster.kill9_primary();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.promote_standby();
    let promoted_after = killed_at.elapsed();
    // Load goes on until the nodes are back and a little longer.
    let recovered = loop {
        let r = nodes[1].get("/v1/balance", &sk).await;
        if r.status == 200 {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "the nodes never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let t = std::mem::take(&mut *tally.lock().unwrap());

    // Every acknowledged payment is there once, in the state it was acknowledged in.
    let mut seen = std::collections::HashSet::new();
    for a in &t.acked {
        assert!(seen.insert(a.id.clone()), "{} acknowledged twice", a.id);
        let p = nodes[2].get(&format!("/v1/payments/{}", a.id), &sk).await;
        assert_eq!(p.status, 200, "{} lost: {}", a.id, p.text);
        let want = if a.succeeded { "succeeded" } else { "pending" };
        assert_eq!(p.body["status"], want, "{}", a.id);
    }
    let stored = psql(cluster.standby, "pocket", "SELECT COUNT(*) FROM payments");
    let stored: usize = stored.parse().unwrap();
    // A create whose first answer was lost in the switch was retried with its key: one row.
    assert_eq!(stored, t.acked.len(), "payments stored vs acknowledged");
    for s in nodes.iter() {
        s.assert_balanced().await;
    }
    let (ok, out) = nodes[0].pocket(&["verify"]);
    assert!(ok, "{out}");
    eprintln!(
        "failover: {} payments acknowledged ({} before the kill), {} stored, 0 lost, 0 doubled; \
         answers {:?} (503s: {:?}); standby promoted {:?} after the kill, nodes serving again {:?} after it",
        t.acked.len(),
        before,
        stored,
        t.answers,
        t.unavailable,
        promoted_after,
        recovered
    );
    assert!(t.wrong.is_empty(), "wrong answers: {:?}", t.wrong);
    assert_eq!(
        t.unavailable_without_retry_after, 0,
        "503s without Retry-After"
    );
    assert!(
        t.answers.keys().all(|s| [200, 201, 503].contains(s)),
        "answers: {:?}",
        t.answers
    );
}
