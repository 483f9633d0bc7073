//! Runs the browser tests (`e2e/`, Playwright driving Debian's Chromium) against this
//! build of `pocket`. They need Node.js, `npm ci --prefix e2e` and `/usr/bin/chromium`;
//! `.ci/run` installs them. Without them the test says so and, under CI, fails.

use std::path::Path;
use std::process::Command;

#[test]
fn browser_tests_pass() {
    if pocket_store::testing::on_postgres() {
        // The apps see the same HTTP contract on either engine: one pass is enough.
        eprintln!("SKIPPED on PostgreSQL: the browser tests run in the SQLite pass");
        return;
    }
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = e2e.join("node_modules/playwright-core").is_dir()
        && Path::new(&chromium).exists()
        && Command::new("node").arg("--version").output().is_ok();
    if !ready {
        let why = "browser tests need Node.js, `npm ci --prefix e2e` and Chromium (apt-get install chromium)";
        assert!(std::env::var("CI").is_err(), "{why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    // Every run's screenshots, and only this run's.
    let _ = std::fs::remove_dir_all(e2e.join("screenshots"));
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/"])
        .current_dir(&e2e)
        .env("POCKET_BIN", env!("CARGO_BIN_EXE_pocket"))
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("# ") || l.starts_with("not ok"))
        .collect();
    eprintln!("{}", summary.join("\n"));
    assert!(
        out.status.success(),
        "browser tests failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every test in the files ran and passed (none skipped, none lost).
    let written: usize = std::fs::read_dir(e2e.join("tests"))
        .expect("e2e/tests")
        .filter_map(Result::ok)
        .filter(|f| f.file_name().to_string_lossy().ends_with(".test.mjs"))
        .map(|f| {
            let text = std::fs::read_to_string(f.path()).expect("a test file");
            text.lines().filter(|l| l.starts_with("test(")).count()
        })
        .sum();
    assert!(
        stdout.contains(&format!("# pass {written}\n")),
        "expected {written} passing browser tests:\n{stdout}"
    );
}
