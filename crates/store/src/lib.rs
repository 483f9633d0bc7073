//! Pocket's durable state behind one concrete handle, [`SqlStore`], over either engine:
//! SQLite embedded ([`sqlite::open`], the default) or PostgreSQL ([`postgres::open`],
//! for several nodes). Its methods are grouped by area (`engine/store/`); the SQL of
//! every operation is written once (`ops`), against one small connection surface
//! (`sql`).
//! Every write method runs in one database transaction that also writes the ledger
//! transfers and the events the change causes, and (when given an [`model::Idem`]) the
//! idempotency record of the response.
//!
//! What this crate must not do: decide money rules itself (they come from
//! `pocket-core`), know about HTTP, or keep secrets in clear (it sees only digests).
//!
//! Architecture invariant, checked (`architecture` below): this crate depends on no
//! HTTP crate, and its test support is not in the shipped library.

pub mod clock;
mod engine;
pub mod ids;
pub mod model;
mod ops;
pub mod postgres;
mod sql;
pub mod sqlite;
pub mod sweeper;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod throttle;

pub use engine::{MAX_BATCH, SqlStore};
pub use ops::wallet::{MAX_RESET_GUESSES, reset_code_invalid};

use pocket_core::Currency;
use pocket_core::policy::PolicyBook;
use pocket_core::pricing::CartLine;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A payment to create. Pricing (from `items`) and the tier policy are applied inside
/// the creating transaction, against the catalog as it is at that moment.
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub merchant_id: String,
    pub currency: Currency,
    pub items: Option<Vec<CartLine>>,
    /// With `items`: a check against the computed total. Without: the amount.
    pub amount: Option<i64>,
    /// A `cus_` id or an E.164 phone number.
    pub customer: Option<String>,
    /// Instead of `customer`: the payment code the customer showed, as the code
    /// directory resolved it; charged (window, device, single use) inside the creating
    /// transaction, after every other check, so that no answer tells a known code from
    /// an unknown one.
    pub code: Option<ShownCode>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub expires_in_seconds: Option<i64>,
    /// `manual`: confirming holds the money until the merchant captures it.
    pub capture: pocket_core::payment::CaptureMethod,
    /// How long a hold lasts (manual capture only; checked by `pocket_core::hold`).
    pub capture_within_seconds: Option<i64>,
    pub policy: Arc<PolicyBook>,
    /// Where payment pages live (`<base>/pay/<id>`) and where the merchant is, for the QR.
    pub qr: Arc<QrContext>,
}

/// A payment code resolved to the device that shows it, and the step it was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeCharge {
    pub device_id: String,
    pub step: i64,
}

/// A payment code sent by a merchant: shown by a device, or by none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShownCode {
    Device(CodeCharge),
    Unknown,
}

#[derive(Clone, Debug)]
pub struct QrContext {
    pub base_url: String,
    pub place: pocket_core::emv::QrPlace,
}

#[derive(Clone, Debug, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub unit_amount: Option<i64>,
    pub active: Option<bool>,
}

/// Whose payments a list shows.
#[derive(Clone, Debug)]
pub enum PaymentOwner {
    Merchant(String),
    Customer(String),
    /// The merchant's payments of one customer, named by `cus_` id or E.164 phone (one
    /// no wallet has: none).
    MerchantCustomer {
        merchant: String,
        customer: String,
    },
}

/// A right PIN-reset code, and what it does (see [`SqlStore::redeem_pin_reset`]).
#[derive(Clone, Debug)]
pub struct PinReset {
    pub customer_id: String,
    pub code_digest: String,
    pub pin_hash: String,
    /// The PIN guards (subjects) a forgotten PIN may have locked, cleared.
    pub guards: Vec<String>,
    /// The new session: its token's digest and expiry.
    pub session: (String, i64),
}

/// A PIN hash made at an older cost and its replacement.
#[derive(Clone, Debug)]
pub struct PinRehash {
    pub old_hash: String,
    pub new_hash: String,
}

/// A secret as the store sees it: its keyed digest and a short prefix for display.
#[derive(Clone, Debug)]
pub struct KeyDigest {
    pub digest: String,
    pub prefix: String,
}

#[cfg(test)]
mod architecture {
    /// The store knows nothing of HTTP: none of the HTTP crates is a dependency.
    #[test]
    fn the_store_depends_on_no_http_crate() {
        let manifest = include_str!("../Cargo.toml");
        let dependencies = manifest
            .split("[dependencies]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap_or("");
        for http in ["axum", "hyper", "reqwest", "tower", "pocket-http"] {
            assert!(
                !dependencies
                    .lines()
                    .any(|l| l.trim_start().starts_with(http)),
                "pocket-store depends on {http}"
            );
        }
    }

    /// Test support is behind the `testing` feature, off in the shipped library.
    #[test]
    fn test_support_is_behind_a_feature() {
        let lib = include_str!("lib.rs");
        assert!(lib.contains("#[cfg(any(test, feature = \"testing\"))]\npub mod testing;"));
        let manifest = include_str!("../Cargo.toml");
        assert!(!manifest.contains("default = [\"testing\"]"));
    }
}
