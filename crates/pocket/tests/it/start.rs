//! Starting the binary as a newcomer does: a busy port leaves nothing behind,
//! `--listen localhost:PORT` works, and `--demo` prints a working merchant key on every
//! start (keys are stored as digests only, so each start issues a fresh one).
//! These run the embedded default (no `--database`): they are about the command line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ADMIN_KEY: &str = "adm_start_test_0123456789abcdef";

fn pocket(data: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pocket"));
    cmd.arg("serve")
        .arg("--data")
        .arg(data)
        .args(args)
        .env("POCKET_ADMIN_KEY", ADMIN_KEY)
        .env("POCKET_PIN_HASH_MEMORY_KIB", "1024")
        .env("POCKET_PIN_HASH_ITERATIONS", "1")
        .env("POCKET_LOG", "warn")
        .env_remove("POCKET_DATABASE_URL");
    cmd
}

/// Starts `pocket serve`, returns it with the lines it printed up to "Pocket listening on".
fn start(data: &std::path::Path, args: &[&str]) -> (Child, Vec<String>) {
    let mut child = pocket(data, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pocket");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.push(line.clone());
            if line.starts_with("Pocket listening on ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(lines.clone());
            }
        }
    });
    let lines = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server printed its address");
    (child, lines)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    // Bounded: a server that does not stop fails this test instead of hanging the suite.
    crate::common::wait_at_most(&mut child, crate::common::STOP_WAIT);
}

fn url_of(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("Pocket listening on "))
        .expect("address line")
        .trim()
        .to_string()
}

fn demo_key(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("Demo merchant \"Tea House\" ")
                .and_then(|rest| rest.split("secret key ").nth(1))
                .map(|k| k.split_whitespace().next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("no demo key printed in {lines:?}"))
}

async fn balance_status(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}/v1/balance"))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[test]
fn a_start_on_a_busy_port_leaves_no_data_directory() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = pocket(&data, &["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .expect("run pocket");
    assert!(!out.status.success(), "the start must fail on a busy port");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot listen"),
        "the error says why: {stderr}"
    );
    assert!(!data.exists(), "a failed start created {}", data.display());
}

#[tokio::test]
async fn listen_takes_a_host_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, lines) = start(&dir.path().join("data"), &["--listen", "localhost:0"]);
    let url = url_of(&lines);
    let health = reqwest::get(format!("{url}/healthz"))
        .await
        .expect("healthz");
    stop(child);
    assert_eq!(health.status(), 200, "{url}");
}

#[tokio::test]
async fn demo_prints_a_working_merchant_key_on_every_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The README's tour makes a "Tea House" of its own before anyone runs the demo: a
    // demo start must never roll that one's key.
    let (child, lines) = start(&data, &["--listen", "127.0.0.1:0"]);
    let url = url_of(&lines);
    let client = reqwest::Client::new();
    let tour: serde_json::Value = client
        .post(format!("{url}/v1/admin/merchants"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"name": "Tea House"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let tour_key = tour["secret_key"].as_str().expect("key").to_string();
    client
        .post(format!("{url}/v1/products"))
        .bearer_auth(&tour_key)
        .json(&serde_json::json!({"sku": "green-tea", "name": "Green tea", "unit_amount": 1299, "currency": "CNY"}))
        .send()
        .await
        .expect("product");
    stop(child);

    let (child, lines) = start(&data, &["--demo", "--listen", "127.0.0.1:0"]);
    let first = demo_key(&lines);
    let url = url_of(&lines);
    assert_eq!(balance_status(&url, &first).await, 200);
    stop(child);

    let (child, lines) = start(&data, &["--demo", "--listen", "127.0.0.1:0"]);
    let second = demo_key(&lines);
    let url = url_of(&lines);
    let (first_status, second_status, tour_status) = (
        balance_status(&url, &first).await,
        balance_status(&url, &second).await,
        balance_status(&url, &tour_key).await,
    );
    // The operator can find the merchant again too.
    let merchants: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/v1/admin/merchants"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    stop(child);
    assert_ne!(first, second, "each start issues a fresh key");
    assert_eq!(second_status, 200, "the key printed at this start works");
    assert_eq!(first_status, 401, "the previous one was replaced");
    assert_eq!(tour_status, 200, "the other Tea House was left alone");
    let names: Vec<&str> = merchants["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["Tea House", "Tea House"]);
    assert!(
        merchants["data"][0].get("secret_key").is_none(),
        "keys are never listed"
    );
}

/// A second process writing the embedded database would change keys and sessions
/// behind the server's memory of them: `demo-data` (which rolls the demo key) is
/// refused while the server runs, and works once it stopped.
#[test]
fn a_second_writer_of_the_embedded_database_is_refused_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo_data = || {
        let out = Command::new(env!("CARGO_BIN_EXE_pocket"))
            .arg("demo-data")
            .arg("--data")
            .arg(&data)
            .env("POCKET_ADMIN_KEY", ADMIN_KEY)
            .env("POCKET_LOG", "warn")
            .env_remove("POCKET_DATABASE_URL")
            .output()
            .expect("run pocket demo-data");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (server, _) = start(&data, &["--listen", "127.0.0.1:0"]);
    let (ok, out) = demo_data();
    assert!(!ok, "{out}");
    assert!(out.contains("in use by another Pocket process"), "{out}");
    stop(server);
    let (ok, out) = demo_data();
    assert!(ok, "{out}");
}
