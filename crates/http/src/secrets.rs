//! Secrets Pocket hands out (merchant keys, session tokens) and PINs.
//!
//! - A secret is random, except when its request carries an `Idempotency-Key`: then it
//!   is derived by HMAC from the server key and the idempotency record, so a replayed
//!   response can carry the same secret without the secret ever being stored.
//! - Secrets are stored only as keyed digests: HMAC-SHA256 under the server key, which
//!   lives in the data directory, never in the database. A stolen database alone
//!   cannot be used to check guesses, and look-ups stay O(1) by digest.
//! - PINs are hashed with Argon2id (salted, PHC string) with the server key as pepper,
//!   on tokio's blocking threads.

use crate::settings::PinHashing;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use pocket_core::Error;
use pocket_store::KeyDigest;
use pocket_store::ids;
use pocket_store::model::Idem;
use rand::RngCore;
use sha2::Sha256;

/// A new secret `prefix_…`; deterministic for a given idempotency record.
pub fn issue_secret(server_key: &[u8; 32], prefix: &str, idem: Option<&Idem>) -> String {
    let Some(idem) = idem else {
        return ids::new_secret(prefix);
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(server_key) else {
        return ids::new_secret(prefix);
    };
    for part in [
        "pocket-idempotent-secret:v1",
        prefix,
        &idem.caller,
        &idem.key,
        &idem.fingerprint,
    ] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    format!("{prefix}_{}", ids::base62_of(&mac.finalize().into_bytes()))
}

/// The keyed digest under which a secret is stored and looked up (hex).
pub fn digest(server_key: &[u8; 32], secret: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(server_key) {
        Ok(mut mac) => {
            mac.update(b"pocket-secret-digest:v1\0");
            mac.update(secret.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => String::new(),
    }
}

/// Characters of a secret kept for display (`sk_AbCd`).
pub const DISPLAY_PREFIX_CHARS: usize = 7;

/// What the store keeps of a secret: its keyed digest and a display prefix.
pub fn key_digest(server_key: &[u8; 32], secret: &str) -> KeyDigest {
    KeyDigest {
        digest: digest(server_key, secret),
        prefix: secret.chars().take(DISPLAY_PREFIX_CHARS).collect(),
    }
}

/// `pin` must be exactly six ASCII digits.
pub fn check_pin_format(pin: &str) -> Result<(), Error> {
    if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid("pin", "`pin` must be exactly 6 digits."))
    }
}

fn argon2<'k>(p: &PinHashing, pepper: &'k [u8; 32]) -> Result<Argon2<'k>, Error> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
        .map_err(|_| Error::internal())?;
    Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params)
        .map_err(|_| Error::internal())
}

/// PIN hashing runs on a few dedicated threads (one per core), never on tokio's
/// blocking pool: each Argon2id hash takes `memory_kib` of memory, and the allocator
/// keeps per-thread arenas, so a bounded set of threads bounds the memory they keep.
struct PinWorkers {
    jobs: std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
}

fn pin_workers() -> &'static PinWorkers {
    static WORKERS: std::sync::OnceLock<PinWorkers> = std::sync::OnceLock::new();
    WORKERS.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        // Queue depth: a limit on everything; a full queue waits (back-pressure).
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(1024);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("pocket-pin-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
        }
        PinWorkers { jobs }
    })
}

/// Runs `f` on a PIN worker and waits for it without blocking the async threads.
async fn on_pin_worker<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = tx.send(f());
    });
    let workers = pin_workers();
    // `send` blocks only when 1024 hashes are already queued.
    tokio::task::block_in_place(|| workers.jobs.send(job)).map_err(|_| Error::internal())?;
    rx.await.map_err(|_| Error::internal())?
}

/// Hashes a PIN (slow on purpose) off the async threads.
pub async fn hash_pin(params: PinHashing, pepper: [u8; 32], pin: String) -> Result<String, Error> {
    on_pin_worker(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|_| Error::internal())?;
        let hash = argon2(&params, &pepper)?
            .hash_password(pin.as_bytes(), &salt)
            .map_err(|_| Error::internal())?;
        Ok(hash.to_string())
    })
    .await
}

/// Checks a PIN against its stored hash (the hash carries its own cost parameters;
/// the pepper is the server key).
pub async fn verify_pin(pepper: [u8; 32], stored_hash: String, pin: String) -> Result<bool, Error> {
    on_pin_worker(move || {
        let parsed = PasswordHash::new(&stored_hash).map_err(|_| Error::internal())?;
        let hasher = Argon2::new_with_secret(
            &pepper,
            Algorithm::Argon2id,
            Version::V0x13,
            Params::default(),
        )
        .map_err(|_| Error::internal())?;
        Ok(hasher.verify_password(pin.as_bytes(), &parsed).is_ok())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idem(key: &str) -> Idem {
        Idem {
            caller: "admin".into(),
            key: key.into(),
            fingerprint: "f".into(),
            status: 201,
        }
    }

    #[test]
    fn idempotent_secrets_are_stable_and_distinct() {
        let k = [7u8; 32];
        let a = issue_secret(&k, "sk", Some(&idem("a")));
        assert_eq!(a, issue_secret(&k, "sk", Some(&idem("a"))));
        assert_ne!(a, issue_secret(&k, "sk", Some(&idem("b"))));
        assert_ne!(a, issue_secret(&[8u8; 32], "sk", Some(&idem("a"))));
        assert!(a.starts_with("sk_") && a.len() == 35);
        assert_ne!(issue_secret(&k, "sk", None), issue_secret(&k, "sk", None));
    }

    #[test]
    fn digests_are_keyed() {
        let d = digest(&[1u8; 32], "sk_abc");
        assert_eq!(d.len(), 64);
        assert_eq!(d, digest(&[1u8; 32], "sk_abc"));
        assert_ne!(d, digest(&[2u8; 32], "sk_abc"));
        assert_eq!(key_digest(&[1u8; 32], "sk_AbCdEfGh").prefix, "sk_AbCd");
    }

    #[test]
    fn pin_format() {
        assert!(check_pin_format("012345").is_ok());
        for bad in ["12345", "1234567", "12345a", "", "１２３４５６"] {
            assert!(check_pin_format(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pins_hash_and_verify() {
        let p = PinHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
        let pepper = [3u8; 32];
        let h = hash_pin(p, pepper, "123456".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(
            verify_pin(pepper, h.clone(), "123456".into())
                .await
                .unwrap()
        );
        assert!(
            !verify_pin(pepper, h.clone(), "654321".into())
                .await
                .unwrap()
        );
        assert!(
            !verify_pin([4u8; 32], h, "123456".into()).await.unwrap(),
            "the pepper matters"
        );
    }
}
