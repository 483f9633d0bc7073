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

use crate::common::{Options, Server};
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
    pg_with(bin, program, args, &[])
}

/// [`pg`] with these variables in the program's environment (and so its children's).
fn pg_with(bin: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let exe = bin.join(program);
    if unsafe { libc::geteuid() } == 0 {
        // Through `env`, so they reach the program and not only runuser.
        let vars = env.iter().map(|(k, v)| format!("{k}={v}"));
        Command::new("runuser")
            .args(["-u", "postgres", "--", "env"])
            .args(vars)
            .arg(&exe)
            .args(args)
            .output()
    } else {
        Command::new(&exe)
            .envs(env.iter().copied())
            .args(args)
            .output()
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

    /// An empty directory for the clusters of one test, owned by `postgres`.
    fn empty() -> Cluster {
        let bin = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("pg_config");
        let bin = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
        let dir = tempfile::Builder::new()
            .prefix("pocket-cluster")
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
        Cluster {
            bin,
            primary: crate::common::free_port(),
            standby: crate::common::free_port(),
            dir,
        }
    }

    /// `initdb` of the primary, listening on its port.
    fn init_primary(&self, conf: &str) {
        let primary = self.data("primary");
        must(
            pg(
                &self.bin,
                "initdb",
                &["-D", &primary, "-U", "postgres", "--auth=trust", "-N"],
            ),
            "initdb",
        );
        let listen = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n{conf}",
            self.primary,
            self.dir.path().display()
        );
        append(&Path::new(&primary).join("postgresql.conf"), &listen);
    }

    fn build() -> Cluster {
        let c = Cluster::empty();
        c.init_primary(
            "wal_level = replica\nmax_wal_senders = 4\nsynchronous_commit = on\n\
             synchronous_standby_names = 'standby1'\nfsync = on\n",
        );
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
        self.start_with(name, &[]);
    }

    fn start_with(&self, name: &str, env: &[(&str, &str)]) {
        let data = self.data(name);
        let log = self.data(&format!("{name}.log"));
        must(
            pg_with(
                &self.bin,
                "pg_ctl",
                &["-D", &data, "-l", &log, "-w", "start"],
                env,
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
) -> crate::common::Reply {
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
        crate::common::SERVER_KEY.to_string(),
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

/// libfaketime's preload library (Debian's `faketime` package), if installed.
fn libfaketime() -> Option<String> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .map(String::from)
}

const TWO_HOURS_MS: i64 = 2 * 3_600_000;

/// One clock: a database whose clock runs two hours ahead of this machine's (a private
/// cluster started under libfaketime; Pocket's own clock cannot be moved, as
/// jemalloc's start-up deadlocks under it) decides every time Pocket writes or checks:
/// `created_at`, `expires_at`, a hold's `capture_before`, the `Date` of every answer,
/// and the payment code's step — a code computed on this machine's clock is refused,
/// the one for the time the `Date` says is accepted. Each figure here would be two
/// hours off if a node decided on its own clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_databases_clock_decides_every_time() {
    if !pocket_store::testing::on_postgres() {
        eprintln!("SKIPPED on SQLite: it keeps the process's clock");
        return;
    }
    let Some(lib) = libfaketime() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "libfaketime is missing (apt install faketime)"
        );
        eprintln!("SKIPPED: libfaketime is not installed (apt install faketime)");
        return;
    };
    let cluster = Cluster::empty();
    cluster.init_primary("fsync = off\n");
    cluster.start_with(
        "primary",
        &[
            ("LD_PRELOAD", &lib),
            ("FAKETIME", "+2h"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    psql(cluster.primary, "postgres", "CREATE DATABASE pocket");
    let db_ms: i64 = psql(
        cluster.primary,
        "postgres",
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
    )
    .parse()
    .unwrap();
    let ahead_ms = db_ms - crate::common::now_ms();
    assert!(
        (ahead_ms - TWO_HOURS_MS).abs() < 60_000,
        "the cluster's clock is {ahead_ms} ms ahead, not two hours"
    );
    let s = Server::start_on(
        Options {
            args: vec!["--sandbox".into()],
            database_url: Some(format!(
                "postgres://postgres@127.0.0.1:{}/pocket",
                cluster.primary
            )),
            ..Options::default()
        },
        None,
    )
    .await;
    assert_two_hours_ahead(&s).await;
}

/// An instant two hours ahead of this machine's clock (within a minute).
fn two_hours_ahead(what: &str, at_ms: i64) {
    let ahead_ms = at_ms - crate::common::now_ms();
    assert!(
        (ahead_ms - TWO_HOURS_MS).abs() < 60_000,
        "{what} is {ahead_ms} ms ahead of this machine, not two hours"
    );
}

async fn assert_two_hours_ahead(s: &Server) {
    use pocket_core::code::{code_at, step_of};
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800020001", 100_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": cus, "expires_in": 60}),
        )
        .await;
    let created = at_ms(&p["created_at"]);
    two_hours_ahead("created_at", created);
    assert_eq!(at_ms(&p["expires_at"]) - created, 60_000, "{p}");

    let hold = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": cus,
                   "capture": "manual", "capture_within": 600}),
        )
        .await;
    let id = hold["id"].as_str().unwrap();
    let r = s.confirm(&token, id, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    two_hours_ahead("capture_before", at_ms(&r.body["capture_before"]) - 600_000);

    let answer = s.get("/v1/wallet/me", &token).await;
    two_hours_ahead("the Date header", date_ms(&answer));

    // A code for this machine's time is two hours stale; the Date's time is the one.
    let (_, secret) = s.register_device(&token).await;
    let local = code_at(&secret, step_of(crate::common::now_ms()));
    let r = s.charge_code(&sk, local.as_str(), 100).await;
    assert_eq!(
        r.status.as_u16() / 100,
        4,
        "a stale code was taken: {}",
        r.text
    );
    let now = code_at(
        &secret,
        step_of(crate::common::now_ms() + ahead_of(s).await),
    );
    let r = s.charge_code(&sk, now.as_str(), 100).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "succeeded", "{}", r.text);
}

/// How far ahead the server's `Date` is, in milliseconds (to the second).
async fn ahead_of(s: &Server) -> i64 {
    let r = s.call(Method::GET, "/healthz", None, None, None).await;
    date_ms(&r) - crate::common::now_ms()
}

/// A contract timestamp (RFC 3339) in epoch milliseconds.
fn at_ms(v: &serde_json::Value) -> i64 {
    let text = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_millis()
}

/// An answer's `Date` header in epoch milliseconds.
fn date_ms(r: &crate::common::Reply) -> i64 {
    let text = r.headers["date"].to_str().unwrap();
    chrono::DateTime::parse_from_rfc2822(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_millis()
}
