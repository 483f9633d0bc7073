//! PIN checks: hashing and verification on a bounded pool of threads, work budgets
//! per client IP and per target phone, and the lockout guard around every guess.
//!
//! A guess goes: budget (`429`) → admission to the PIN queue (`503` when full) →
//! reservation of an attempt under its guard, in the writer (`423` when refused) →
//! Argon2id verification → settlement: a wrong PIN is counted at once; a right one is
//! settled by the write it authorises, which checks the lock as it commits
//! (`pocket_core::lockout` has the rule). So at most the configured number of wrong
//! guesses is ever verified per lock period, whatever the concurrency, and a guess
//! whose reservation cannot be written (a full disk) is never verified.
//!
//! Sign-in guards are keyed by a digest of the phone number, known or not: an unknown
//! number locks, answers and takes as long as a known one, but costs no hash (it
//! waits for the typical duration of a real check instead).

use crate::error::ApiError;
use crate::settings::{Budget, PinHashing};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use pocket_core::error::internal;
use pocket_core::lockout::LockRule;
use pocket_core::{Error, ErrorKind};
use pocket_store::SqlStore;
use pocket_store::model::PinAttempt;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
        .map_err(internal("argon2 parameters"))?;
    Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params)
        .map_err(internal("argon2 with the pepper"))
}

/// Hashes a PIN (slow on purpose) on the calling thread.
pub fn hash_pin_now(params: PinHashing, pepper: &[u8; 32], pin: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(internal("PIN salt"))?;
    let hash = argon2(&params, pepper)?
        .hash_password(pin.as_bytes(), &salt)
        .map_err(internal("PIN hash"))?;
    Ok(hash.to_string())
}

/// Checks a PIN against its stored hash on the calling thread (the hash carries its
/// own cost parameters; the pepper is the server key).
pub fn verify_pin_now(pepper: &[u8; 32], stored_hash: &str, pin: &str) -> Result<bool, Error> {
    let parsed = PasswordHash::new(stored_hash).map_err(internal("stored PIN hash"))?;
    let hasher = Argon2::new_with_secret(
        pepper,
        Algorithm::Argon2id,
        Version::V0x13,
        Params::default(),
    )
    .map_err(internal("PIN verification"))?;
    Ok(hasher.verify_password(pin.as_bytes(), &parsed).is_ok())
}

/// Was `stored_hash` made with other costs than `params` (an older setting)? A right
/// PIN is then hashed again at today's cost, in the sign-in's own transaction.
pub fn needs_rehash(stored_hash: &str, params: PinHashing) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return false;
    };
    let get = |name: &str| parsed.params.get_decimal(name);
    get("m") != Some(params.memory_kib)
        || get("t") != Some(params.iterations)
        || get("p") != Some(params.parallelism)
}

type Job = Box<dyn FnOnce() + Send>;

/// A few dedicated threads (one per core) for PIN hashes, never tokio's blocking pool:
/// each Argon2id hash takes `memory_kib` of memory, and the allocator keeps per-thread
/// arenas, so a bounded set of threads bounds the memory they keep. Admission is
/// bounded too: at most `depth` hashes wait or run; more are refused at once.
pub struct PinWorkers {
    jobs: std::sync::mpsc::SyncSender<Job>,
    admission: Arc<Semaphore>,
    /// Moving average, in µs, of admission-to-answer time of real verifications.
    typical_us: Arc<AtomicU64>,
}

/// What an Argon2id check of the default cost takes on this kind of machine, until
/// real checks have been measured.
const INITIAL_TYPICAL_US: u64 = 20_000;

impl PinWorkers {
    pub fn start(depth: usize) -> PinWorkers {
        let depth = depth.max(1);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        // Never full: admission lets at most `depth` jobs in.
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(depth);
        let rx = Arc::new(std::sync::Mutex::new(rx));
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
        PinWorkers {
            jobs,
            admission: Arc::new(Semaphore::new(depth)),
            typical_us: Arc::new(AtomicU64::new(INITIAL_TYPICAL_US)),
        }
    }

    /// Measures a real check at the configured cost, in the background, so that the
    /// wait of unknown phones matches real checks from the first request on.
    pub fn calibrate(&self, params: PinHashing) {
        let typical = self.typical_us.clone();
        let job: Job = Box::new(move || {
            let pepper = [0u8; 32];
            if let Ok(hash) = hash_pin_now(params, &pepper, "000000") {
                let started = Instant::now();
                let _ = verify_pin_now(&pepper, &hash, "000001");
                typical.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        });
        // The queue is empty at start; a full one only means no calibration.
        let _ = self.jobs.try_send(job);
    }

    /// A place in the PIN queue, or `503 server_busy` when it is full.
    pub fn admit(&self) -> Result<Admitted, Error> {
        match self.admission.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admitted {
                _permit: permit,
                since: Instant::now(),
            }),
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                "server_busy",
                "PIN checks are at capacity; retry after a moment.",
            )),
        }
    }

    /// Runs `f` on a PIN thread in the admitted place; resolves when it is done. The
    /// place travels with the job and is given back only when the job has run, even
    /// if the caller stopped waiting (a client that hung up): the queue's bound holds.
    pub async fn run<T: Send + 'static>(
        &self,
        admitted: Admitted,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let typical = self.typical_us.clone();
        let job: Job = Box::new(move || {
            let result = f();
            let took_us = admitted.since.elapsed().as_micros() as u64;
            // Moving average over ~16 checks.
            let old = typical.load(Ordering::Relaxed);
            typical.store(old - old / 16 + took_us / 16, Ordering::Relaxed);
            drop(admitted);
            let _ = tx.send(result);
        });
        self.jobs
            .try_send(job)
            .map_err(internal("PIN work queue"))?;
        rx.await.map_err(internal("PIN worker"))?
    }

    /// How long a real check takes at the moment (queue wait included).
    pub fn typical(&self) -> Duration {
        Duration::from_micros(self.typical_us.load(Ordering::Relaxed))
    }

    /// Hashes a new PIN off the async threads.
    pub async fn hash(
        &self,
        params: PinHashing,
        pepper: [u8; 32],
        pin: String,
    ) -> Result<String, Error> {
        let admitted = self.admit()?;
        self.run(admitted, move || hash_pin_now(params, &pepper, &pin))
            .await
    }
}

/// A place in the PIN queue, held until the check is done.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    since: Instant,
}

fn budget_limiter<K: std::hash::Hash + Eq + Clone>(
    b: Budget,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let per_minute = NonZeroU32::new(b.per_minute)?;
    let burst = NonZeroU32::new(b.burst).unwrap_or(per_minute);
    Some(RateLimiter::keyed(
        Quota::per_minute(per_minute).allow_burst(burst),
    ))
}

/// Everything a PIN guess goes through.
pub struct PinGate {
    pub workers: PinWorkers,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_phone: Option<DefaultKeyedRateLimiter<[u8; 16]>>,
    pub rule: LockRule,
    /// Made once: making a clock calibrates it, too slow per request.
    clock: governor::clock::DefaultClock,
}

/// Whose PIN is guessed, and where the guess comes from.
pub struct Guess<'a> {
    /// The guard: `signin:…` or `holder:…` (see [`signin_subject`], [`holder_subject`]).
    pub subject: String,
    pub ip: Option<IpAddr>,
    /// The stored hash; `None` for a phone number without a wallet.
    pub pin_hash: Option<String>,
    pub pin: &'a str,
}

fn phone_digest(server_key: &[u8; 32], phone: &str) -> String {
    crate::secrets::digest(server_key, &format!("phone:{phone}"))
}

/// The sign-in guard of a phone number, by its keyed digest (numbers never stored).
pub fn signin_subject(server_key: &[u8; 32], phone: &str) -> String {
    format!("signin:{}", phone_digest(server_key, phone))
}

/// Whose idempotency keys sign-up and sign-in use: the phone number's (by digest), so
/// two people never share a key space before they have a credential.
pub fn phone_scope(server_key: &[u8; 32], phone: &str) -> String {
    format!("phone:{}", phone_digest(server_key, phone))
}

/// The guard of a signed-in holder's confirms and device registrations.
pub fn holder_subject(customer_id: &str) -> String {
    format!("holder:{customer_id}")
}

impl PinGate {
    pub fn new(
        depth: usize,
        hashing: PinHashing,
        per_ip: Budget,
        per_phone: Budget,
        rule: LockRule,
    ) -> PinGate {
        let workers = PinWorkers::start(depth);
        workers.calibrate(hashing);
        PinGate {
            workers,
            per_ip: budget_limiter(per_ip),
            per_phone: budget_limiter(per_phone),
            rule,
            clock: governor::clock::DefaultClock::default(),
        }
    }

    /// Drops the budgets of clients that have been idle (call periodically).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_phone {
            l.retain_recent();
        }
    }

    /// Spends one unit of PIN work from the client IP's budget and from the budget of
    /// `whose` (a guard's subject: a stranger's sign-ins spend the sign-in guard's,
    /// never the signed-in holder's). Over either: `429` with the real wait.
    pub fn spend_budget(&self, ip: Option<IpAddr>, whose: &str) -> Result<(), ApiError> {
        let over = |wait: Duration| {
            ApiError(
                Error::new(
                    ErrorKind::RateLimited,
                    "rate_limited",
                    "Too many PIN attempts from here or for this wallet; retry after the time in Retry-After.",
                )
                .with_retry_after(wait.as_secs() + 1),
            )
        };
        let now = || governor::clock::Clock::now(&self.clock);
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            l.check_key(&ip)
                .map_err(|n| over(n.wait_time_from(now())))?;
        }
        if let Some(l) = &self.per_phone {
            let d = Sha256::digest(whose.as_bytes());
            let mut key = [0u8; 16];
            key.copy_from_slice(&d[..16]);
            l.check_key(&key)
                .map_err(|n| over(n.wait_time_from(now())))?;
        }
        Ok(())
    }

    /// Checks a guess. `Ok` means the PIN is right: the returned attempt is reserved
    /// and must be handed to the write it authorises, which settles it as it commits.
    /// Every refusal has already been settled (counted, or released uncounted).
    pub async fn check(
        &self,
        store: &SqlStore,
        pepper: [u8; 32],
        guess: Guess<'_>,
    ) -> Result<PinAttempt, ApiError> {
        self.spend_budget(guess.ip, &guess.subject)?;
        check_pin_format(guess.pin)
            .map_err(|_| ApiError(pocket_core::lockout::incorrect_pin(0)))?;
        let admitted = self.workers.admit()?;
        let attempt = PinAttempt {
            subject: guess.subject,
            rule: self.rule,
        };
        store.reserve_pin(attempt.clone()).await?;
        let correct = match guess.pin_hash {
            Some(hash) => {
                let pin = guess.pin.to_string();
                self.workers
                    .run(admitted, move || verify_pin_now(&pepper, &hash, &pin))
                    .await
            }
            None => {
                // As long as a real check, without the work: the place in the queue
                // is given back at once.
                drop(admitted);
                tokio::time::sleep(self.workers.typical()).await;
                Ok(false)
            }
        };
        let result = match correct {
            Ok(true) => "right",
            Ok(false) => "wrong",
            Err(_) => "not_checked",
        };
        metrics::counter!("pocket_pin_checks_total", "result" => result).increment(1);
        match correct {
            Ok(true) => Ok(attempt),
            Ok(false) => Err(ApiError(store.settle_wrong_pin(attempt).await?)),
            Err(e) => {
                // Not verified: the attempt is not counted.
                let _ = store.abandon_pin(attempt).await;
                Err(ApiError(e))
            }
        }
    }
}

/// The idempotency pre-check of a request that carries a PIN. Its fingerprint covers
/// the PIN, so telling a replay (same body) from a reused key (another body) would
/// tell whether a guessed PIN is the one first sent: with a known key, a PIN oracle
/// outside every guard. So when a record exists, the comparison is a guarded guess
/// under `subject`: budgeted, judged and counted in one transaction (a mismatch is a
/// wrong PIN: the answer stays `409 idempotency_key_reused`, or `423` once it locks).
pub async fn guarded_precheck(
    state: &crate::AppState,
    ip: crate::limits::ClientIp,
    subject: String,
    idem: Option<&pocket_store::model::Idem>,
) -> Result<Option<pocket_store::model::StoredResponse>, ApiError> {
    let Some(idem) = idem else { return Ok(None) };
    // Most requests are not replays: a read first, no write for them.
    if state
        .store
        .find_idempotent(idem.caller.clone(), idem.key.clone())
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let gate = &state.pins;
    gate.spend_budget(ip.0, &subject)?;
    let attempt = PinAttempt {
        subject,
        rule: gate.rule,
    };
    // Compared and counted in one transaction, without a reservation: a crashed
    // process's reservations never make a replay of an acknowledged request wait.
    use pocket_store::model::ReplayJudged;
    match state.store.judge_pin_replay(attempt, idem.clone()).await? {
        ReplayJudged::Fresh => Ok(None),
        ReplayJudged::Replay(stored) => Ok(Some(stored)),
        ReplayJudged::Refused { error, counted } => {
            if counted {
                metrics::counter!("pocket_pin_checks_total", "result" => "wrong").increment(1);
            }
            Err(ApiError(error))
        }
    }
}

/// Runs a request that checks a PIN to its end even if its client goes away: every
/// attempt it reserves is settled at once, not left to hold its place until it goes stale.
pub async fn to_completion<F>(request: F) -> Result<axum::response::Response, ApiError>
where
    F: std::future::Future<Output = Result<axum::response::Response, ApiError>> + Send + 'static,
{
    tokio::spawn(request)
        .await
        .unwrap_or_else(|_| Err(ApiError(Error::internal())))
}

/// Checks a sign-in's PIN (the wallet's, a staff member's) under the phone's sign-in
/// guard: known and unknown numbers go through the same guard, budgets and wait, and
/// answer alike; only a known one costs a hash. The wallet it opens, as read, and the
/// attempt the write it authorises must settle.
pub(crate) async fn check_signin_pin(
    state: &crate::AppState,
    ip: crate::limits::ClientIp,
    phone: &str,
    pin: &str,
) -> Result<(pocket_store::model::PinState, PinAttempt), ApiError> {
    let server_key = state.settings.server_key;
    let who = state.store.pin_state_by_phone(phone.to_string()).await?;
    let guess = Guess {
        subject: signin_subject(&server_key, phone),
        ip: ip.0,
        pin_hash: who.as_ref().map(|w| w.pin_hash.clone()),
        pin,
    };
    let attempt = state
        .pins
        .check(state.store.as_ref(), server_key, guess)
        .await?;
    // A PIN never matches a wallet that does not exist.
    let who = who.ok_or_else(|| ApiError(Error::internal()))?;
    Ok((who, attempt))
}

/// Checks the PIN of the signed-in holder (confirms, device keys) under the holder's
/// guard; the attempt returned must go to the write it authorises.
pub(crate) async fn check_holder_pin(
    state: &crate::AppState,
    ip: crate::limits::ClientIp,
    customer: &pocket_store::model::Customer,
    pin: &str,
) -> Result<PinAttempt, ApiError> {
    let who = state
        .store
        .pin_state(customer.id.clone())
        .await?
        .ok_or_else(|| Error::not_found("customer", &customer.id))?;
    let guess = Guess {
        subject: holder_subject(&customer.id),
        ip: ip.0,
        pin_hash: Some(who.pin_hash),
        pin,
    };
    state
        .pins
        .check(state.store.as_ref(), state.settings.server_key, guess)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_format() {
        assert!(check_pin_format("012345").is_ok());
        for bad in ["12345", "1234567", "12345a", "", "１２３４５６"] {
            assert!(check_pin_format(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pins_hash_and_verify() {
        let p = PinHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
        let pepper = [3u8; 32];
        let h = hash_pin_now(p, &pepper, "123456").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(verify_pin_now(&pepper, &h, "123456").unwrap());
        assert!(!needs_rehash(&h, p));
        let older = PinHashing {
            memory_kib: 2048,
            ..p
        };
        assert!(needs_rehash(&h, older));
        assert!(!verify_pin_now(&pepper, &h, "654321").unwrap());
        assert!(
            !verify_pin_now(&[4u8; 32], &h, "123456").unwrap(),
            "the pepper matters"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_pin_queue_refuses_at_once() {
        let workers = PinWorkers::start(2);
        let a = workers.admit().unwrap();
        let _b = workers.admit().unwrap();
        let refused = workers.admit().err().expect("full");
        assert_eq!((refused.http_status(), refused.code), (503, "server_busy"));
        assert_eq!(workers.run(a, || Ok(7)).await.unwrap(), 7);
        assert!(workers.admit().is_ok(), "a finished check frees its place");
    }

    #[test]
    fn signin_subjects_are_keyed_digests_of_the_phone() {
        let a = signin_subject(&[1u8; 32], "+8613800000001");
        assert!(a.starts_with("signin:") && !a.contains("138"));
        assert_ne!(a, signin_subject(&[2u8; 32], "+8613800000001"));
        assert_ne!(a, signin_subject(&[1u8; 32], "+8613800000002"));
    }
}
