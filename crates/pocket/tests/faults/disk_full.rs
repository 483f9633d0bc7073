//! Storage that refuses writes: on SQLite a full disk, made real with a file-size
//! limit on the running server (what a full filesystem does to its writes); on
//! PostgreSQL the database turned read-only under the server, every connection cut
//! (what a failover onto a standby that is not yet promoted looks like). Every write
//! is answered `503` with `Retry-After` and changes nothing, a wrong PIN that cannot
//! be counted is not checked, reads go on, the sweeper backs off instead of
//! spinning, the log stays small, and once writes are possible again everything
//! resumes with nothing corrupted.

use crate::common::{Options, Server};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// Sets the server's soft limit on the size of files it writes (`None`: no limit).
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing (the old-limit pointer is null).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Makes the server's storage refuse writes (`true`) or take them again.
fn refuse_writes(s: &Server, refuse: bool) {
    match &s.database {
        Some(db) => {
            let out = std::process::Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
                .arg(format!("{}/postgres", pocket_store::testing::pg_base_url()))
                .args(["-c", &format!(
                    "ALTER DATABASE {0} SET default_transaction_read_only = {1}",
                    db.name,
                    if refuse { "on" } else { "off" }
                )])
                .args(["-c", &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{}'",
                    db.name
                )])
                .output()
                .expect("run psql");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => limit_file_size(s.pid(), refuse.then_some(16 * 1024)),
    }
}

/// CPU seconds the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_gets_503_changes_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut s = Server::start_options(Options {
        args: vec!["--sandbox".into()],
        log_file: Some(log.clone()),
        ..Options::default()
    })
    .await;
    let pid = s.pid();
    let (_, sk) = s.merchant("M").await;
    let phone = "+8613800003001";
    let (cus, token) = s.customer(phone, 1_000_000).await;
    // Payments that fall due while the disk is full.
    let mut due = Vec::new();
    for _ in 0..3 {
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 100, "customer": cus, "expires_in": 1}),
            )
            .await;
        due.push(p["id"].as_str().unwrap().to_string());
    }
    let before = s.snapshot(&sk, &token).await;
    let log_lines_before = lines(&log);

    refuse_writes(&s, true);
    let full_since = Instant::now();
    let cpu_before = cpu_seconds(pid);
    // Writes: 503 with Retry-After, never 500, never a success.
    for i in 0..20 {
        let r = s
            .call(
                Method::POST,
                "/v1/payments",
                Some(&sk),
                Some(json!({"currency": "CNY", "amount": 100 + i, "customer": cus})),
                None,
            )
            .await;
        r.assert_error(503, "storage_unavailable");
        assert_eq!(r.headers["retry-after"], "1");
    }
    s.post(
        "/v1/admin/topups",
        crate::common::ADMIN_KEY,
        json!({"customer": cus, "amount": 5, "currency": "CNY"}),
    )
    .await
    .assert_error(503, "storage_unavailable");
    // A wrong PIN whose failure cannot be recorded is not checked: 503, not 401.
    for pin in ["000000", "111111", "123456"] {
        let r = s
            .call(
                Method::POST,
                "/v1/wallet/sessions",
                None,
                Some(json!({"phone": phone, "pin": pin})),
                None,
            )
            .await;
        r.assert_error(503, "storage_unavailable");
    }
    // Reads go on.
    assert_eq!(s.get("/v1/wallet/me", &token).await.status, 200);
    assert_eq!(s.get("/v1/payments?limit=5", &sk).await.status, 200);
    // The sweeper meets the full disk on the overdue payments; it must back off.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    let full_for = full_since.elapsed();
    let new_lines = lines(&log) - log_lines_before;
    eprintln!("disk full for {full_for:?}: server CPU {cpu:.2} s, {new_lines} log lines");
    assert!(
        new_lines <= 20,
        "the log grew by {new_lines} lines:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(
        s.snapshot(&sk, &token).await,
        before,
        "a refused write changed something"
    );

    // Room again: everything resumes.
    refuse_writes(&s, false);
    let r = s
        .post(
            "/v1/payments",
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": cus}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The wrong PINs above were not counted: five more are allowed before the lock.
    for _ in 0..4 {
        let r = s
            .call(
                Method::POST,
                "/v1/wallet/sessions",
                None,
                Some(json!({"phone": phone, "pin": "000000"})),
                None,
            )
            .await;
        r.assert_error(401, "incorrect_pin");
    }
    let started = Instant::now();
    for id in &due {
        loop {
            let p = s.get(&format!("/v1/payments/{id}"), &sk).await;
            if p.body["status"] == "expired" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{id} never expired"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "overdue payments expired {:?} after the disk had room",
        started.elapsed()
    );
    s.assert_balanced().await;
    s.stop();
    let (ok, out) = s.pocket(&["verify"]);
    assert!(ok, "{out}");
}
