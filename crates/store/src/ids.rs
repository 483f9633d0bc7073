//! Identifiers and secrets.
//!
//! Ids are a type prefix and 24 random base62 characters (~143 bits): never
//! sequential, so they cannot be enumerated. Secrets (merchant keys, session tokens)
//! are 32 random base62 characters; the store only ever sees their keyed digests.

use rand::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters after an id's prefix.
pub const ID_RANDOM_CHARS: usize = 24;

fn random_base62(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// A new id such as `pay_3kTMd…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_base62(ID_RANDOM_CHARS))
}

/// Is `id` well-formed for `prefix`? (Cheap check before any look-up.)
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.len() == prefix.len() + 1 + ID_RANDOM_CHARS
        && id.starts_with(prefix)
        && id.as_bytes()[prefix.len()] == b'_'
        && id[prefix.len() + 1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// A new random secret such as `sk_…` or `pst_…`.
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}_{}", random_base62(32))
}

/// Base62 of arbitrary bytes' first 32 symbols, for secrets derived by HMAC.
pub fn base62_of(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| BASE62[(*b as usize) % BASE62.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_checkable() {
        let id = new_id("pay");
        assert!(is_id(&id, "pay"));
        assert!(!is_id(&id, "cus"));
        assert!(!is_id("pay_short", "pay"));
        assert!(!is_id(&format!("{}!", &id[..id.len() - 1]), "pay"));
        assert_ne!(new_id("pay"), new_id("pay"));
    }
}
