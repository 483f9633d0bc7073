//! `pocket bench --spawn` runs end to end (briefly) and its report holds together.

#[test]
fn bench_spawns_a_server_runs_a_mix_and_checks_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args([
            "bench",
            "--spawn",
            "--clients",
            "4",
            "--count",
            "120",
            "--merchants",
            "2",
        ])
        .args([
            "--mix",
            "refund=0.1,decline=0.1,expire=0.05,insufficient=0.1,retry=0.1,pin=0.05",
        ])
        .arg("--json")
        .arg(&json)
        .env("POCKET_PIN_HASH_MEMORY_KIB", "1024")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK"));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["ledger"]["balanced"], true);
    assert_eq!(r["ledger"]["payment_transfer_mismatches"], 0);
    assert_eq!(r["ledger"]["refund_transfer_mismatches"], 0);
    assert!(r["payments"].as_u64().unwrap() > 0);
    assert!(
        r["endpoints"]["POST /v1/payments"]["count"]
            .as_u64()
            .unwrap()
            >= 120
    );
    assert!(r["expected_errors"]["insufficient_funds"].as_u64().unwrap() > 0);
    assert!(r["memory"]["peak_rss_mib"].as_f64().unwrap() > 1.0);
    assert!(r["unexpected_errors"].as_object().unwrap().is_empty());
}
