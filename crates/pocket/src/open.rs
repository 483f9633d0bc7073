//! Opening a data directory: its keys, its store (SQLite in it, or the PostgreSQL
//! database `storage.url` names) and the HTTP settings, for `serve` and `demo-data`.

use crate::config::Config;
use crate::keys;
use pocket_http::{PinHashing, Settings};
use pocket_store::SqlStore;
use pocket_store::clock::SystemClock;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// An opened data directory: the store, the HTTP settings, and the admin key when it
/// was generated just now (to print once).
pub struct Opened {
    pub store: Arc<SqlStore>,
    pub settings: Settings,
    pub new_admin_key: Option<String>,
}

/// Opens the database `storage.url` names (PostgreSQL), else the embedded one in the
/// data directory.
/// `key_checks`: what a PostgreSQL database must remember of this node's keys (see
/// [`keys::checks`]); every node of one database must have the same keys.
pub fn open_store(
    config: &Config,
    key_checks: Vec<(&'static str, String)>,
) -> Result<pocket_store::SqlStore, String> {
    let storage = &config.storage;
    match &storage.url {
        Some(url) => {
            let mut options = pocket_store::postgres::PostgresOptions::new(url);
            options.key_checks = key_checks;
            options.queue_depth = storage.queue_depth;
            options.read_connections = storage.read_connections;
            options.write_connections = storage.write_connections;
            pocket_store::postgres::open(&options, Arc::new(SystemClock))
                .map(|s| s.with_daily_limits(config.limits.customer_daily_spend.clone()))
        }
        None => {
            let mut options = pocket_store::sqlite::SqliteOptions::in_dir(&config.server.data);
            options.queue_depth = storage.queue_depth;
            options.read_connections = storage.read_connections;
            pocket_store::sqlite::open(&options, Arc::new(SystemClock))
                .map(|s| s.with_daily_limits(config.limits.customer_daily_spend.clone()))
        }
    }
}

/// Opens the data directory: creates it, the keys and the database.
pub fn open(config: &Config) -> Result<Opened, String> {
    let data = &config.server.data;
    std::fs::create_dir_all(data)
        .map_err(|e| format!("cannot create data directory {}: {e}", data.display()))?;
    let (admin_key, admin_key_new) = keys::admin_key(data)?;
    let server_key = keys::server_key(data)?;
    let admin_digest: [u8; 32] = Sha256::digest(admin_key.as_bytes()).into();
    let store: Arc<SqlStore> = Arc::new(open_store(
        config,
        keys::checks(&server_key, &admin_digest),
    )?);
    Ok(Opened {
        store,
        settings: settings(config, admin_digest, server_key)?,
        new_admin_key: admin_key_new.then_some(admin_key),
    })
}

/// The HTTP layer's settings, from the configuration and the data directory's keys.
fn settings(
    config: &Config,
    admin_digest: [u8; 32],
    server_key: [u8; 32],
) -> Result<Settings, String> {
    let mut settings = Settings::new(admin_digest, server_key);
    let sec = &config.security;
    settings.policy = Arc::new(config.policy());
    settings.sandbox = config.server.sandbox;
    settings.pin_hashing = PinHashing {
        memory_kib: sec.pin_hash_memory_kib,
        iterations: sec.pin_hash_iterations,
        parallelism: 1,
    };
    settings.pin_lock = pocket_core::lockout::LockRule {
        max_failures: sec.pin_max_failures as u32,
        lock_ms: sec.pin_lock_seconds * 1000,
        ..pocket_core::lockout::LockRule::default()
    };
    settings.pin_queue_depth = sec.pin_queue_depth;
    settings.pin_budget_per_ip = pocket_http::settings::Budget {
        per_minute: sec.pin_per_ip_per_minute,
        burst: sec.pin_per_ip_burst,
    };
    settings.pin_budget_per_phone = pocket_http::settings::Budget {
        per_minute: sec.pin_per_phone_per_minute,
        burst: sec.pin_per_phone_burst,
    };
    settings.session_ttl_seconds = sec.session_ttl_days * 24 * 3600;
    settings.allow_private_webhooks = config.webhooks.allow_private;
    settings.trusted_proxies = config.trusted_proxies().map_err(|e| e.to_string())?;
    let l = &config.limits;
    settings.rate_per_ip = pocket_http::limits::Rate {
        per_second: l.per_ip_per_second,
        burst: l.per_ip_burst,
    };
    settings.rate_per_credential = pocket_http::limits::Rate {
        per_second: l.per_credential_per_second,
        burst: l.per_credential_burst,
    };
    settings.max_streams = l.max_event_streams;
    settings.code_failures_per_minute = l.code_failures_per_minute;
    settings.metrics_public = config.metrics.public;
    settings.body_read_timeout = Duration::from_secs(l.body_read_timeout_seconds);
    Ok(settings)
}
