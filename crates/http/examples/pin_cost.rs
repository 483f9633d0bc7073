//! Measures what a PIN verification costs with the default Argon2id parameters, and
//! so how many PIN confirms per second a core can do.
//!
//! `cargo run --release -p pocket-http --example pin_cost`

use pocket_http::PinHashing;
use pocket_http::pins::{hash_pin_now, verify_pin_now};
use std::time::Instant;

fn main() {
    let params = PinHashing::default();
    let pepper = [7u8; 32];
    let hash = hash_pin_now(params, &pepper, "123456").expect("hash");
    const N: u32 = 50;
    let started = Instant::now();
    for _ in 0..N {
        assert!(verify_pin_now(&pepper, &hash, "123456").expect("verify"));
    }
    let per = started.elapsed() / N;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "Argon2id m={} KiB t={} p={}: {:.1} ms per verification, {:.0}/s per core, ~{:.0}/s on {cores} cores",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        per.as_secs_f64() * 1000.0,
        1.0 / per.as_secs_f64(),
        cores as f64 / per.as_secs_f64()
    );
}
