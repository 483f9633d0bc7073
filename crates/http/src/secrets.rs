//! Secrets Pocket hands out (merchant keys, session tokens) and PINs.
//!
//! - A secret is random, except when its request carries an `Idempotency-Key`: then it
//!   is derived by HMAC from the server key and the idempotency record, so a replayed
//!   response can carry the same secret without the secret ever being stored.
//! - Secrets are stored only as keyed digests: HMAC-SHA256 under the server key, which
//!   lives in the data directory, never in the database. A stolen database alone
//!   cannot be used to check guesses, and look-ups stay O(1) by digest.
//!
//! PINs are not secrets of this kind: see [`crate::pins`].

use hmac::{Hmac, Mac};
use pocket_store::KeyDigest;
use pocket_store::ids;
use pocket_store::model::Idem;
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
}
