//! The README's curl tour, run as written against a fresh server.

use crate::common::{ADMIN_KEY, Server};

fn tour_script() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- tour:start -->")
        .expect("tour start marker");
    let end = readme.find("<!-- tour:end -->").expect("tour end marker");
    let block = &readme[start..end];
    let code_start = block.find("```bash\n").expect("bash block") + "```bash\n".len();
    let code_end = block[code_start..].find("```").expect("block end") + code_start;
    block[code_start..code_end].to_string()
}

#[tokio::test]
async fn the_readme_tour_works_as_written() {
    // As the README starts it: with the demo shop (and so the sandbox bank).
    let s = Server::start_with(&["--demo"]).await;
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(tour_script())
        .env("POCKET", &s.url)
        .env("ADMIN", ADMIN_KEY)
        .output()
        .await
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tour failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "\"status\":\"succeeded\"",
        "\"code\":\"pin_required\"",
        "\"object\":\"refund\"",
        "expired",
        "\"code\":\"payment_expired\"",
        "\"type\":\"payment.expired\"",
        "\"balanced\":true",
    ] {
        assert!(
            stdout.contains(expected),
            "tour output lacks {expected}:\n{stdout}"
        );
    }
    // The customer had 1,000.00 and 100.00 from the card, paid 25.98 + 688.00 and got
    // 5.00 back.
    assert!(stdout.contains("\"available\":39102"), "{stdout}");
}
