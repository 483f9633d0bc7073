//! Merchant keys and wallet sessions remembered in memory, so that authenticating a
//! request does not cost a read (a hop to the blocking pool and a query) each time.
//!
//! Only what a read found valid is remembered, with the expiry it had: a key or
//! session that stops by time stops here at the same instant (by the store's clock).
//! What stops it earlier — a key rolled, a session signed out — is a write of this
//! store, which forgets the merchant's keys or the session after its commit and before
//! it answers: a request that starts after the answer never finds it here. A look-up
//! that read the database before such a write could otherwise put the old answer back;
//! every forgetting moves a generation on, and a look-up remembers what it read only if
//! the generation did not move while it read.
//!
//! What this must not do: remember anything on an engine where another process can
//! change credentials (PostgreSQL's nodes): there it is [`Credentials::off`], and every
//! look-up reads the database. (A cache there would trust `NOTIFY` reaching every node
//! before their next request, which nothing guarantees.) Nor remember refusals: a key
//! or session created a moment ago must work at once.

use crate::model::{Customer, KeyGrant, MerchantAuth, SessionGrant};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most keys and most sessions remembered; past that the map starts over (a bound,
/// not an eviction policy: a million active sessions re-read once each).
pub const MAX_REMEMBERED: usize = 100_000;

/// What is remembered of one kind of credential: who holds it, and until when.
pub(crate) trait Grant: Clone + Sized {
    /// Who the credential belongs to, as authentication answers it.
    type Holder;
    fn holder(self) -> Self::Holder;
    fn valid_at(&self, now: i64) -> bool;
    /// Where this kind is remembered.
    fn memory(c: &Credentials) -> &Mutex<HashMap<String, Self>>;
}

impl Grant for KeyGrant {
    type Holder = MerchantAuth;
    fn holder(self) -> MerchantAuth {
        self.auth
    }
    fn valid_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
    fn memory(c: &Credentials) -> &Mutex<HashMap<String, KeyGrant>> {
        &c.keys
    }
}

impl Grant for SessionGrant {
    type Holder = Customer;
    fn holder(self) -> Customer {
        self.customer
    }
    fn valid_at(&self, now: i64) -> bool {
        self.expires_at > now
    }
    fn memory(c: &Credentials) -> &Mutex<HashMap<String, SessionGrant>> {
        &c.sessions
    }
}

pub(crate) struct Credentials {
    on: bool,
    generation: AtomicU64,
    keys: Mutex<HashMap<String, KeyGrant>>,
    sessions: Mutex<HashMap<String, SessionGrant>>,
}

/// What a look-up found in memory.
pub(crate) enum Remembered<T> {
    /// Valid now.
    Valid(T),
    /// Known, but its time is over (expiries only ever move earlier).
    Over,
    /// Not here: read the database, then [`Credentials::remember`] with this generation.
    Unknown(u64),
}

impl Credentials {
    /// Remembers (one process owns the database).
    pub(crate) fn exact() -> Credentials {
        Credentials::new(true)
    }

    /// Remembers nothing (other processes change the database too).
    pub(crate) fn off() -> Credentials {
        Credentials::new(false)
    }

    fn new(on: bool) -> Credentials {
        Credentials {
            on,
            generation: AtomicU64::new(0),
            keys: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn look<G: Grant>(&self, digest: &str, now: i64) -> Remembered<G::Holder> {
        // Read before the map: a forgetting that lands after this is seen by the
        // generation check when the answer is remembered.
        let generation = self.generation.load(Ordering::Acquire);
        if !self.on {
            return Remembered::Unknown(generation);
        }
        let found = G::memory(self)
            .lock()
            .ok()
            .and_then(|m| m.get(digest).cloned());
        match found {
            Some(g) if g.valid_at(now) => Remembered::Valid(g.holder()),
            Some(_) => Remembered::Over,
            None => Remembered::Unknown(generation),
        }
    }

    /// Remembers what a read found, unless a forgetting happened since `generation`.
    pub(crate) fn remember<G: Grant>(&self, digest: String, grant: G, generation: u64) {
        if !self.on {
            return;
        }
        let Ok(mut map) = G::memory(self).lock() else {
            return;
        };
        // Checked under the lock: a forgetting bumps the generation before it takes the
        // lock, so either it is seen here or it runs after this insert and removes it.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
        map.insert(digest, grant);
    }

    /// After a commit that changed `merchant_id`'s keys, before answering it.
    pub(crate) fn forget_merchant(&self, merchant_id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, g| g.auth.merchant_id != merchant_id);
        }
    }

    /// After a commit that ended sessions of `customer_id` — their wallet sessions and
    /// the staff console sessions they held (keys of any merchant: all are forgotten,
    /// a rare event) — before answering it.
    pub(crate) fn forget_customer(&self, customer_id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, g| g.customer.id != customer_id);
        }
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, g| g.auth.staff_id.is_none());
        }
    }

    /// After a commit that ended the session `digest`, before answering it.
    pub(crate) fn forget_session(&self, digest: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(merchant: &str, expires_at: Option<i64>) -> KeyGrant {
        KeyGrant {
            auth: MerchantAuth {
                merchant_id: merchant.into(),
                name: "Tea".into(),
                scopes: None,
                role: None,
                staff_id: None,
            },
            expires_at,
        }
    }

    fn generation_of(r: Remembered<MerchantAuth>) -> u64 {
        match r {
            Remembered::Unknown(g) => g,
            _ => panic!("expected a miss"),
        }
    }

    #[test]
    fn a_remembered_key_works_until_its_expiry_and_not_at_it() {
        let c = Credentials::exact();
        let g = generation_of(c.look::<KeyGrant>("d", 0));
        c.remember("d".into(), grant("mer_1", Some(100)), g);
        assert!(matches!(c.look::<KeyGrant>("d", 99), Remembered::Valid(_)));
        assert!(matches!(c.look::<KeyGrant>("d", 100), Remembered::Over));
    }

    #[test]
    fn a_read_that_raced_a_forgetting_is_not_remembered() {
        let c = Credentials::exact();
        let g = generation_of(c.look::<KeyGrant>("d", 0));
        // The key is rolled between the read and the remembering.
        c.forget_merchant("mer_1");
        c.remember("d".into(), grant("mer_1", None), g);
        assert!(matches!(c.look::<KeyGrant>("d", 0), Remembered::Unknown(_)));
    }

    #[test]
    fn forgetting_a_merchant_forgets_only_its_keys() {
        let c = Credentials::exact();
        let g = generation_of(c.look::<KeyGrant>("a", 0));
        c.remember("a".into(), grant("mer_1", None), g);
        c.remember("b".into(), grant("mer_2", None), g);
        c.forget_merchant("mer_1");
        assert!(matches!(c.look::<KeyGrant>("a", 0), Remembered::Unknown(_)));
        assert!(matches!(c.look::<KeyGrant>("b", 0), Remembered::Valid(_)));
    }

    #[test]
    fn a_forgotten_session_is_read_again_and_off_remembers_nothing() {
        let c = Credentials::exact();
        let customer = Customer {
            id: "cus_1".into(),
            phone: "+8613900000000".into(),
            name: "Li".into(),
        };
        let g = match c.look::<SessionGrant>("s", 0) {
            Remembered::Unknown(g) => g,
            _ => panic!(),
        };
        let grant = SessionGrant {
            customer,
            expires_at: 10,
        };
        c.remember("s".into(), grant.clone(), g);
        assert!(matches!(
            c.look::<SessionGrant>("s", 5),
            Remembered::Valid(_)
        ));
        c.forget_session("s");
        assert!(matches!(
            c.look::<SessionGrant>("s", 5),
            Remembered::Unknown(_)
        ));

        let off = Credentials::off();
        off.remember("s".into(), grant, 0);
        assert!(matches!(
            off.look::<SessionGrant>("s", 5),
            Remembered::Unknown(_)
        ));
    }

    #[test]
    fn the_map_is_bounded() {
        let c = Credentials::exact();
        for i in 0..MAX_REMEMBERED + 5 {
            c.remember(format!("k{i}"), grant("mer_1", None), 0);
        }
        assert!(c.keys.lock().unwrap().len() <= MAX_REMEMBERED);
    }
}
