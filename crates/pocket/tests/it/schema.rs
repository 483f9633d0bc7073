//! Real responses of every endpoint validated against the server's own OpenAPI
//! document by schemathesis (`scripts/schemathesis.sh`): a few hundred generated
//! requests per caller, no `5xx`, no response the document does not describe. Needs
//! `pip install schemathesis`; `.ci/run` installs it. Without it the test says so
//! and, under CI, fails.

use std::path::Path;
use std::process::Command;

#[test]
fn every_response_matches_the_openapi_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if Command::new("st").arg("--version").output().is_err() {
        let why = "the schema test needs schemathesis (pip install schemathesis)";
        assert!(std::env::var("CI").is_err(), "{why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let out = Command::new("scripts/schemathesis.sh")
        .arg(env!("CARGO_BIN_EXE_pocket"))
        .arg("30")
        .current_dir(&root)
        .output()
        .expect("run scripts/schemathesis.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("== ") || l.contains(" generated, ") || l.contains("failures"))
        .collect();
    eprintln!("{}", figures.join("\n"));
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
