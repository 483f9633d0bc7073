//! Pocket's money rules, as pure Rust: no I/O, no clock, no randomness.
//!
//! Everything here takes the current time and the current state as arguments and
//! returns a decision. The storage and HTTP shells (`pocket-store`, `pocket-http`)
//! read state, call these functions, and write what they decide. That keeps every
//! rule testable deterministically, with any clock a test wants.
//!
//! - [`activity`]: a wallet's history as a person reads it, from its events.
//! - [`card`]: card numbers (Luhn, brand), expiry and CVC checks.
//! - [`code`]: customer-presented payment codes (18 digits, a new one every 30 s).
//! - [`csv`]: CSV cells quoted and safe from formula injection.
//! - [`money`]: currencies (ISO 4217) and amounts in minor units.
//! - [`policy`]: amount tiers → time window and required authentication.
//! - [`pricing`]: pricing a cart from a merchant's catalog.
//! - [`payment`]: the payment object and its state machine.
//! - [`hold`]: manual capture: holds, captures and their deadline.
//! - [`ledger`]: double-entry postings and the conservation check.
//! - [`risk`]: operator risk rules (CEL) and daily spending limits.
//! - [`lockout`]: how many wrong PINs may be verified before a PIN locks.
//! - [`retry`]: the webhook retry schedule.
//! - [`scope`]: what restricted keys and staff roles may do, endpoint by endpoint.
//! - [`emv`]: the EMVCo QR payload of a payment.
//! - [`error`]: the contract's error shape and its stable codes.
//! - [`time`]: the wire format of timestamps.

pub mod activity;
pub mod card;
pub mod code;
pub mod csv;
pub mod emv;
pub mod error;
pub mod hold;
pub mod id;
pub mod ledger;
pub mod lockout;
pub mod money;
pub mod payment;
pub mod phone;
pub mod policy;
pub mod pricing;
pub mod retry;
pub mod risk;
pub mod scope;
pub mod time;

pub use error::{Error, ErrorKind};
pub use money::Currency;

/// Architecture invariant, checked: the core does no I/O, reads no clock and makes no
/// randomness — its dependencies are pure libraries and its source names none of it.
#[cfg(test)]
mod architecture {

    #[test]
    fn the_core_depends_on_no_io_and_reads_no_clock() {
        let manifest = include_str!("../Cargo.toml");
        let dependencies = manifest
            .split("[dependencies]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap_or_default();
        for io in [
            "tokio",
            "rusqlite",
            "postgres",
            "reqwest",
            "axum",
            "hyper",
            "rand",
            "getrandom",
        ] {
            assert!(
                !dependencies.lines().any(|l| l.trim_start().starts_with(io)),
                "pocket-core depends on {io}"
            );
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut files = vec![];
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 10, "{files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for banned in [
                "std::fs",
                "std::net",
                "SystemTime::now",
                "Instant::now",
                "Utc::now",
                "thread_rng",
                "rand::",
            ] {
                // As a path of its own (`Brand::` is not `rand::`).
                let used = code.match_indices(banned).any(|(at, _)| {
                    !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                assert!(!used, "{} uses {banned}", f.display());
            }
        }
    }
}
