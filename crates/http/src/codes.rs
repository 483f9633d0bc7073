//! Customer-presented payment codes, before the store: which active device shows a code
//! now (the code directory), and how many unknown codes one merchant may try (the bound
//! on guessing). The store then charges the code at commit: its window, its device still
//! active, single use (`pocket_store` `ops::codes`).
//!
//! A code carries no device number (`pocket_core::code`), so the directory computes the
//! codes every active device shows in the accepted steps — the previous, the current and
//! the next — and finds a code by a hash look-up. It is per node. When a step begins it
//! computes that step's next codes only (one HMAC per device, on a blocking thread: about
//! 0.23 s per million devices, `cargo bench -p pocket-core -- code:`); every
//! [`FULL_READ_STEPS`] steps it reads the active devices again (dropping revoked ones);
//! a code it does not know makes it read the devices registered since (on any node)
//! first. About 200 bytes per active device.
//!
//! Two devices showing the same 16 digits in the window (odds about 3·N²/10¹⁶ among N
//! devices) are both refused. A device registered since the last read whose code equals
//! a known device's would be found as the known one (odds about 3·N/10¹⁶ per new device);
//! the commit then charges the known device's customer, as if that customer's code had
//! been scanned.

use crate::error::ApiError;
use pocket_core::code::{self, PaymentCode, SKEW_STEPS, step_of};
use pocket_core::error::internal;
use pocket_core::{Error, ErrorKind};
use pocket_store::{CodeCharge, SqlStore};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Devices read per query.
const PAGE: usize = 10_000;
/// A look-up that misses re-reads this many registrations before the newest it has (a
/// margin for registrations committed out of their `seq` order).
const REREAD_SEQS: i64 = 256;
/// Steps between full reads of the active devices (5 minutes).
const FULL_READ_STEPS: i64 = 10;

/// Which device shows which code, around one step.
pub struct CodeDirectory {
    server_key: [u8; 32],
    inner: tokio::sync::Mutex<Codes>,
}

/// One step's codes: 16 digits → index into `devices`; `None` when shared.
type StepCodes = HashMap<u64, Option<u32>>;

#[derive(Default)]
struct Codes {
    /// The newest step computed; `None` before the first look-up.
    step: Option<i64>,
    /// The step of the last full read.
    full_read_step: i64,
    /// Active devices as read: id and code secret.
    devices: Arc<Vec<(String, [u8; 32])>>,
    known: HashSet<String>,
    /// The highest `seq` read.
    newest_seq: i64,
    by_step: BTreeMap<i64, StepCodes>,
}

fn step_codes(devices: &[(String, [u8; 32])], step: i64) -> StepCodes {
    let mut codes = StepCodes::with_capacity(devices.len());
    for (i, (_, secret)) in devices.iter().enumerate() {
        let digits = code::digits_of(&code::code_at(secret, step));
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        codes
            .entry(digits)
            .and_modify(|shared| *shared = None)
            .or_insert(Some(i));
    }
    codes
}

impl Codes {
    /// Adds a device (read since the last full read) to every computed step.
    fn add(&mut self, server_key: &[u8; 32], device_id: String) {
        if !self.known.insert(device_id.clone()) {
            return;
        }
        let secret = code::device_secret(server_key, &device_id);
        let devices = Arc::make_mut(&mut self.devices);
        let i = u32::try_from(devices.len()).unwrap_or(u32::MAX);
        devices.push((device_id, secret));
        for (step, codes) in &mut self.by_step {
            let digits = code::digits_of(&code::code_at(&secret, *step));
            codes
                .entry(digits)
                .and_modify(|shared| *shared = None)
                .or_insert(Some(i));
        }
    }

    /// The one device showing `code` in the window around `step`.
    fn find(&self, code: &PaymentCode, step: i64) -> Option<CodeCharge> {
        let digits = code::digits_of(code);
        let mut found = None;
        for s in step - SKEW_STEPS..=step + SKEW_STEPS {
            match self.by_step.get(&s).and_then(|c| c.get(&digits)) {
                None => {}
                Some(None) => return None,
                Some(Some(_)) if found.is_some() => return None,
                Some(Some(i)) => found = Some((*i, s)),
            }
        }
        let (i, step) = found?;
        let (device_id, _) = self.devices.get(i as usize)?;
        Some(CodeCharge {
            device_id: device_id.clone(),
            step,
        })
    }
}

impl CodeDirectory {
    pub fn new(server_key: [u8; 32]) -> CodeDirectory {
        CodeDirectory {
            server_key,
            inner: tokio::sync::Mutex::new(Codes::default()),
        }
    }

    /// The device showing `code` now and the step it was made for; `None` for any code
    /// no active device shows in the window.
    pub async fn find(
        &self,
        store: &SqlStore,
        code: &PaymentCode,
    ) -> Result<Option<CodeCharge>, Error> {
        let mut codes = self.inner.lock().await;
        // Read after the lock: a look-up that waited never sends the directory back.
        let step = step_of(store.now_ms());
        if codes.step.is_none_or(|s| step > s) {
            self.advance(store, &mut codes, step).await?;
        }
        if let Some(hit) = codes.find(code, step) {
            return Ok(Some(hit));
        }
        let since = codes.newest_seq.saturating_sub(REREAD_SEQS);
        self.read_since(store, &mut codes, since).await?;
        Ok(codes.find(code, step))
    }

    /// Moves the window to `step`: the steps it lacks are computed (all three after a
    /// full read, one as time goes on), the ones it left are dropped.
    async fn advance(&self, store: &SqlStore, codes: &mut Codes, step: i64) -> Result<(), Error> {
        if codes.step.is_none() || step - codes.full_read_step >= FULL_READ_STEPS {
            *codes = Codes {
                full_read_step: step,
                ..Codes::default()
            };
            let ids = self
                .read_ids(store, i64::MIN, &mut codes.newest_seq)
                .await?;
            let key = self.server_key;
            let devices = tokio::task::spawn_blocking(move || {
                ids.into_iter()
                    .map(|id| {
                        let secret = code::device_secret(&key, &id);
                        (id, secret)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(internal("reading device code secrets"))?;
            codes.known = devices.iter().map(|(id, _)| id.clone()).collect();
            codes.devices = Arc::new(devices);
        }
        codes.step = Some(step);
        codes
            .by_step
            .retain(|s, _| (step - SKEW_STEPS..=step + SKEW_STEPS).contains(s));
        for s in step - SKEW_STEPS..=step + SKEW_STEPS {
            if codes.by_step.contains_key(&s) {
                continue;
            }
            let devices = codes.devices.clone();
            let computed = tokio::task::spawn_blocking(move || step_codes(&devices, s))
                .await
                .map_err(internal("computing a step of payment codes"))?;
            codes.by_step.insert(s, computed);
        }
        Ok(())
    }

    async fn read_ids(
        &self,
        store: &SqlStore,
        mut after_seq: i64,
        newest_seq: &mut i64,
    ) -> Result<Vec<String>, Error> {
        let mut ids = Vec::new();
        loop {
            let page = store.active_devices_since(after_seq, PAGE).await?;
            let full = page.len() == PAGE;
            for (seq, id) in page {
                after_seq = seq;
                *newest_seq = (*newest_seq).max(seq);
                ids.push(id);
            }
            if !full {
                return Ok(ids);
            }
        }
    }

    async fn read_since(
        &self,
        store: &SqlStore,
        codes: &mut Codes,
        after_seq: i64,
    ) -> Result<(), Error> {
        let mut newest = codes.newest_seq;
        for id in self.read_ids(store, after_seq, &mut newest).await? {
            codes.add(&self.server_key, id);
        }
        codes.newest_seq = newest;
        Ok(())
    }
}

/// Codes no device shows that one merchant may send per minute, counted per node (`0`:
/// no bound). With N active devices a guess hits one with odds of about 3·N/10¹⁶.
/// A count per minute rather than `governor`'s buckets (`limits`, `pins`): a code is
/// counted before its look-up and given back when found, which a bucket cannot do.
pub struct CodeGuesses {
    per_minute: u32,
    /// Merchant → (minute, codes counted in it).
    counted: Mutex<HashMap<String, (i64, u32)>>,
}

/// Merchants whose counts are kept at once (older minutes are dropped first; beyond,
/// codes are refused).
const MAX_COUNTED_MERCHANTS: usize = 100_000;

impl CodeGuesses {
    pub fn new(per_minute: u32) -> CodeGuesses {
        CodeGuesses {
            per_minute,
            counted: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a code about to be looked up, before it is: parallel look-ups cannot
    /// all pass a count that none of them has raised yet. Over the bound, `429
    /// rate_limited` until the minute ends, for every code, right or wrong. A code found
    /// is given back by [`CodeGuesses::found`].
    pub fn begin(&self, merchant_id: &str, now_ms: i64) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now_ms.div_euclid(60_000);
        let over = || {
            let wait_s = (minute + 1) * 60 - now_ms.div_euclid(1_000);
            ApiError(
                Error::new(
                    ErrorKind::RateLimited,
                    "rate_limited",
                    "Too many unknown payment codes from this merchant; retry after the time in Retry-After.",
                )
                .with_retry_after(wait_s.max(1) as u64),
            )
        };
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        if counted.len() >= MAX_COUNTED_MERCHANTS && !counted.contains_key(merchant_id) {
            counted.retain(|_, (m, _)| *m == minute);
            if counted.len() >= MAX_COUNTED_MERCHANTS {
                return Err(over());
            }
        }
        let entry = counted
            .entry(merchant_id.to_string())
            .or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(over());
        }
        entry.1 += 1;
        Ok(())
    }

    /// A code [`CodeGuesses::begin`] counted was found: it does not count.
    pub fn found(&self, merchant_id: &str, now_ms: i64) {
        if self.per_minute == 0 {
            return;
        }
        let minute = now_ms.div_euclid(60_000);
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((m, n)) = counted.get_mut(merchant_id)
            && *m == minute
        {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merchant_is_stopped_after_its_unknown_codes_until_the_minute_ends() {
        let g = CodeGuesses::new(3);
        let t = 1_800_000_000_000;
        for _ in 0..3 {
            assert!(g.begin("m", t).is_ok());
        }
        let refused = g.begin("m", t + 1).unwrap_err();
        assert_eq!(refused.0.code, "rate_limited");
        assert!(
            refused
                .0
                .retry_after_seconds
                .is_some_and(|s| (1..=60).contains(&s))
        );
        assert!(
            g.begin("other", t).is_ok(),
            "another merchant is not stopped"
        );
        // A found code is given back.
        g.found("m", t);
        assert!(g.begin("m", t).is_ok());
        assert!(g.begin("m", t).is_err());
        assert!(
            g.begin("m", t + 60_000).is_ok(),
            "a new minute starts afresh"
        );
        assert!(CodeGuesses::new(0).begin("m", t).is_ok());
    }

    fn directory(ids: &[&str], step: i64) -> Codes {
        let mut codes = Codes {
            step: Some(step),
            ..Codes::default()
        };
        for s in step - 1..=step + 1 {
            codes.by_step.insert(s, StepCodes::new());
        }
        for id in ids {
            codes.add(&[1u8; 32], id.to_string());
        }
        codes
    }

    #[test]
    fn a_code_is_found_in_its_window_and_only_there() {
        let codes = directory(&["dev_a", "dev_b"], 10);
        let secret = code::device_secret(&[1u8; 32], "dev_b");
        for s in 9..=11 {
            assert_eq!(
                codes.find(&code::code_at(&secret, s), 10),
                Some(CodeCharge {
                    device_id: "dev_b".into(),
                    step: s
                })
            );
        }
        assert_eq!(codes.find(&code::code_at(&secret, 12), 10), None);
        assert_eq!(codes.find(&code::code_at(&secret, 8), 10), None);
        // The same devices computed in bulk give the same answers.
        let bulk = step_codes(&codes.devices, 11);
        assert_eq!(bulk, codes.by_step[&11]);
    }

    #[test]
    fn digits_two_devices_share_are_refused_for_both() {
        let mut codes = directory(&["dev_a"], 10);
        let secret = code::device_secret(&[1u8; 32], "dev_a");
        let shown = code::code_at(&secret, 11);
        codes
            .by_step
            .get_mut(&11)
            .unwrap()
            .insert(code::digits_of(&shown), None);
        assert_eq!(codes.find(&shown, 10), None);
        // The same digits in two steps (two devices) are refused too.
        let mut codes = directory(&["dev_a"], 10);
        let digits = code::digits_of(&shown);
        codes.by_step.get_mut(&9).unwrap().insert(digits, Some(0));
        assert_eq!(codes.find(&shown, 10), None);
    }
}
