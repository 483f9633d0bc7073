//! A short-lived in-memory cache of credential look-ups (merchant keys and wallet
//! sessions), so the hot path needs no database round trip to know who is calling.
//!
//! Bound: an entry lives [`CREDENTIAL_CACHE_TTL`]; a key revoked or rolled on any node,
//! or a session signed out on another node, stops working everywhere within that
//! time (on this node, sign-out removes the entry at once). Only successful look-ups
//! are cached; the map is cleared when it reaches its size limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached credential is trusted without asking the database.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most entries kept.
const MAX_ENTRIES: usize = 100_000;

pub struct AuthCache<V> {
    map: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> Default for AuthCache<V> {
    fn default() -> Self {
        AuthCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> AuthCache<V> {
    pub fn get(&self, digest: &str) -> Option<V> {
        let map = self.map.lock().ok()?;
        match map.get(digest) {
            Some((v, at)) if at.elapsed() < CREDENTIAL_CACHE_TTL => Some(v.clone()),
            _ => None,
        }
    }

    pub fn put(&self, digest: String, value: V) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(digest, (value, Instant::now()));
        }
    }

    pub fn remove(&self, digest: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(digest);
        }
    }
}
