//! Identifiers and secrets.
//!
//! Ids are a type prefix and 24 base62 characters: 8 for the creation time in
//! milliseconds, then 16 random (~95 bits). The random tail makes them impossible to
//! enumerate; the time head makes new ids sort after older ones, so inserting one lands
//! on the last page of its unique index instead of a random page — one page per commit
//! rather than one per row, which is most of what a commit writes (issue 12 measured
//! ~19 pages per payment with fully random ids). Secrets (merchant keys, session
//! tokens) are 32 random base62 characters; the store only ever sees their keyed digests.

use rand::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters after an id's prefix.
pub const ID_RANDOM_CHARS: usize = pocket_core::id::ID_TAIL_CHARS;
/// Of those, the leading ones that hold the creation time (ms; 62^8 ms ≈ 6,900 years).
const ID_TIME_CHARS: usize = 8;

fn random_base62(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// A new id such as `pay_0Kx3vQ2m…`: the time now, then randomness.
pub fn new_id(prefix: &str) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    id_at(prefix, now_ms)
}

/// The id for `prefix` made at `at_ms` (base62 is in ASCII order, so later sorts after).
fn id_at(prefix: &str, at_ms: u64) -> String {
    let mut time = [b'0'; ID_TIME_CHARS];
    let mut t = at_ms;
    for slot in time.iter_mut().rev() {
        *slot = BASE62[(t % 62) as usize];
        t /= 62;
    }
    let head = std::str::from_utf8(&time).unwrap_or("00000000");
    format!(
        "{prefix}_{head}{}",
        random_base62(ID_RANDOM_CHARS - ID_TIME_CHARS)
    )
}

/// Is `id` well-formed for `prefix`? (Cheap check before any look-up.)
pub use pocket_core::id::is_id;

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

    #[test]
    fn later_ids_sort_after_earlier_ones_and_keep_a_random_tail() {
        let a = id_at("pay", 1_795_000_000_000);
        let b = id_at("pay", 1_795_000_000_001);
        let c = id_at("pay", 1_795_000_100_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(is_id(&a, "pay"));
        // Same millisecond: equal heads, different tails.
        let (x, y) = (id_at("evt", 42), id_at("evt", 42));
        assert_eq!(x[..4 + ID_TIME_CHARS], y[..4 + ID_TIME_CHARS]);
        assert_ne!(x, y);
        assert!(id_at("pay", 0) < id_at("pay", 61) && id_at("pay", 61) < id_at("pay", 62));
    }
}
