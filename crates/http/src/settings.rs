//! What the HTTP layer needs to know from configuration, already validated.

use crate::limits::Rate;
use pocket_core::emv::QrPlace;
use pocket_core::lockout::LockRule;
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
    /// 1 MiB, 1 pass, 1 lane: ~1 ms per check, so a 2-core server confirms over 1,000
    /// PIN payments a second. Why this is enough for a peppered 6-digit secret (and
    /// OWASP's 19 MiB × 2 would add little but queueing) is in docs/PINS.md.
    fn default() -> Self {
        PinHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }
}

/// PIN verifications allowed per minute, with a burst; `per_minute = 0` is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub per_minute: u32,
    pub burst: u32,
}

/// PIN hashes waiting or running at once: at ~20 ms each on 2 cores, a full queue
/// is answered within about half a second.
pub const DEFAULT_PIN_QUEUE_DEPTH: usize = 64;
/// One client IP may have a PIN verified about once a second (bursts of 30): a
/// few percent of what 2 cores can verify, plenty for the people behind one address.
pub const DEFAULT_PIN_BUDGET_PER_IP: Budget = Budget {
    per_minute: 60,
    burst: 30,
};
/// One wallet's PIN (sign-ins, confirms, device keys together) about once every 3 s,
/// in bursts of 10.
pub const DEFAULT_PIN_BUDGET_PER_PHONE: Budget = Budget {
    per_minute: 20,
    burst: 10,
};

/// Codes no device shows, per merchant per minute: a till sees a few (a phone's clock
/// far off, a code shown too long); a guesser is held to 86,400 a day, each with odds of
/// 3 × active devices / 10¹⁶ (with 10⁶ devices: one hit in about 38,600 days).
pub const DEFAULT_CODE_FAILURES_PER_MINUTE: u32 = 60;

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
    /// Wrong PINs before a lock, and how long it lasts (one guard for sign-ins, one
    /// for the signed-in holder).
    pub pin_lock: LockRule,
    /// Most PIN hashes waiting or running; more get `503`.
    pub pin_queue_depth: usize,
    /// PIN verifications per client IP and per target phone.
    pub pin_budget_per_ip: Budget,
    pub pin_budget_per_phone: Budget,
    /// Webhook targets on loopback and private networks are allowed (tests, internal use).
    pub allow_private_webhooks: bool,
    /// `GET /metrics` without the admin key.
    pub metrics_public: bool,
    /// A request body that takes longer than this to arrive gets `408`.
    pub body_read_timeout: std::time::Duration,
    /// Most wallet event streams open at once; more get `503`.
    pub max_streams: usize,
    pub rate_per_ip: Rate,
    pub rate_per_credential: Rate,
    /// Wrong payment codes one merchant may send per minute (0: no bound).
    pub code_failures_per_minute: u32,
    /// Load balancers whose `X-Forwarded-For` names the client (for per-IP limits
    /// and budgets); from anyone else the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
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
            pin_lock: LockRule::default(),
            pin_queue_depth: DEFAULT_PIN_QUEUE_DEPTH,
            pin_budget_per_ip: DEFAULT_PIN_BUDGET_PER_IP,
            pin_budget_per_phone: DEFAULT_PIN_BUDGET_PER_PHONE,
            allow_private_webhooks: false,
            max_streams: 10_000,
            body_read_timeout: crate::extract::BODY_READ_TIMEOUT,
            metrics_public: false,
            rate_per_ip: Rate {
                per_second: 1_000,
                burst: 2_000,
            },
            rate_per_credential: Rate {
                per_second: 500,
                burst: 1_000,
            },
            code_failures_per_minute: DEFAULT_CODE_FAILURES_PER_MINUTE,
            trusted_proxies: Vec::new(),
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
