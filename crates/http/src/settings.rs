//! What the HTTP layer needs to know from configuration, already validated.

use crate::limits::Rate;
use pocket_core::emv::QrPlace;
use pocket_core::policy::PolicyBook;
use pocket_store::QrContext;
use std::sync::Arc;

/// Argon2id cost of PIN hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinHashing {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PinHashing {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        PinHashing {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub policy: Arc<PolicyBook>,
    /// Sandbox mode: wallets may top themselves up; every response says so.
    pub sandbox: bool,
    /// SHA-256 of the operator's admin key.
    pub admin_key_digest: [u8; 32],
    /// Server-side key (never in the database) for deriving idempotent secrets.
    pub server_key: [u8; 32],
    pub pin_hashing: PinHashing,
    pub session_ttl_seconds: i64,
    pub pin_max_failures: i64,
    pub pin_lock_seconds: i64,
    /// Webhook targets on loopback and private networks are allowed (tests, internal use).
    pub allow_private_webhooks: bool,
    /// Most wallet event streams open at once; more get `503`.
    pub max_streams: usize,
    pub rate_per_ip: Rate,
    pub rate_per_credential: Rate,
    /// Base URL of payment pages and the merchant's place, for QR codes.
    pub qr: Arc<QrContext>,
}

impl Settings {
    /// Contract defaults around the given keys.
    pub fn new(admin_key_digest: [u8; 32], server_key: [u8; 32]) -> Settings {
        Settings {
            policy: Arc::new(PolicyBook::default()),
            sandbox: false,
            admin_key_digest,
            server_key,
            pin_hashing: PinHashing::default(),
            session_ttl_seconds: 30 * 24 * 3600,
            pin_max_failures: 5,
            pin_lock_seconds: 15 * 60,
            allow_private_webhooks: false,
            max_streams: 10_000,
            rate_per_ip: Rate {
                per_second: 1_000,
                burst: 2_000,
            },
            rate_per_credential: Rate {
                per_second: 500,
                burst: 1_000,
            },
            qr: Arc::new(QrContext {
                base_url: "http://127.0.0.1:8080".into(),
                place: QrPlace {
                    country: "CN".into(),
                    city: "Shanghai".into(),
                },
            }),
        }
    }
}
