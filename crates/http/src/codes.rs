//! Customer-presented payment codes, before the store: which active device shows a code
//! now (the code directory), and how many wrong codes one merchant may try (the bound on
//! guessing). The store then charges the code at commit: its window, its device still
//! active, single use (`pocket_store` `ops::codes`).
//!
//! A code carries no device number (`pocket_core::code`), so the directory computes the
//! codes every active device shows in the accepted steps — the previous, the current and
//! the next — and finds a code by a hash look-up. It is per node and rebuilt from the
//! database at every step (30 s), which also drops revoked devices; a code it does not
//! know makes it read the devices registered since its last read (on any node) first.
//! Cost: three HMACs per active device per step, and about 100 bytes per device.
//! Two devices showing the same 16 digits in the window (about 3·N²/10¹⁶) are both
//! refused, never charged to the wrong one.

use crate::error::ApiError;
use pocket_core::code::{self, PaymentCode, SKEW_STEPS, step_of};
use pocket_core::{Error, ErrorKind};
use pocket_store::{CodeCharge, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Devices read per query while rebuilding.
const PAGE: usize = 10_000;
/// A look-up that misses re-reads this many registrations before the newest it has:
/// on PostgreSQL, registrations on other nodes may commit out of their `seq` order.
const REREAD_SEQS: i64 = 256;

/// Which device shows which code, around one step.
pub struct CodeDirectory {
    server_key: [u8; 32],
    inner: tokio::sync::Mutex<Codes>,
}

#[derive(Default)]
struct Codes {
    /// The step the codes were computed around; `None` before the first look-up.
    step: Option<i64>,
    /// The devices whose codes are in `by_digits`.
    known: HashSet<String>,
    /// The highest `seq` read.
    newest_seq: i64,
    /// A code's 16 digits → its device and step; `None` when two devices share them.
    by_digits: HashMap<u64, Option<CodeCharge>>,
}

impl Codes {
    fn add(&mut self, server_key: &[u8; 32], device_id: String) {
        let Some(step) = self.step else { return };
        if !self.known.insert(device_id.clone()) {
            return;
        }
        let secret = code::device_secret(server_key, &device_id);
        for s in step - SKEW_STEPS..=step + SKEW_STEPS {
            let digits = code::digits_of(&code::code_at(&secret, s));
            let charge = CodeCharge {
                device_id: device_id.clone(),
                step: s,
            };
            self.by_digits
                .entry(digits)
                .and_modify(|shared| *shared = None)
                .or_insert(Some(charge));
        }
    }

    fn find(&self, code: &PaymentCode) -> Option<CodeCharge> {
        self.by_digits
            .get(&code::digits_of(code))
            .cloned()
            .flatten()
    }
}

impl CodeDirectory {
    pub fn new(server_key: [u8; 32]) -> CodeDirectory {
        CodeDirectory {
            server_key,
            inner: tokio::sync::Mutex::new(Codes::default()),
        }
    }

    /// The device showing `code` at `now_ms` and the step it was made for; `None` for
    /// any code no active device shows in the window.
    pub async fn find(
        &self,
        store: &dyn Store,
        code: &PaymentCode,
        now_ms: i64,
    ) -> Result<Option<CodeCharge>, Error> {
        let step = step_of(now_ms);
        let mut codes = self.inner.lock().await;
        if codes.step != Some(step) {
            *codes = Codes {
                step: Some(step),
                ..Codes::default()
            };
            self.read_since(store, &mut codes, i64::MIN).await?;
        }
        if let Some(hit) = codes.find(code) {
            return Ok(Some(hit));
        }
        let since = codes.newest_seq.saturating_sub(REREAD_SEQS);
        self.read_since(store, &mut codes, since).await?;
        Ok(codes.find(code))
    }

    async fn read_since(
        &self,
        store: &dyn Store,
        codes: &mut Codes,
        mut after_seq: i64,
    ) -> Result<(), Error> {
        loop {
            let page = store.active_devices_since(after_seq, PAGE).await?;
            let full = page.len() == PAGE;
            for (seq, id) in page {
                after_seq = seq;
                codes.newest_seq = codes.newest_seq.max(seq);
                codes.add(&self.server_key, id);
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// Wrong payment codes one merchant may try per minute (`0`: no bound). With N active
/// devices a guess hits one with odds of about 3·N/10¹⁶.
pub struct CodeGuesses {
    per_minute: u32,
    /// Merchant → (minute, wrong codes in it).
    wrong: Mutex<HashMap<String, (i64, u32)>>,
}

/// Merchants whose counts are kept at once (older minutes are dropped first).
const MAX_COUNTED_MERCHANTS: usize = 100_000;

impl CodeGuesses {
    pub fn new(per_minute: u32) -> CodeGuesses {
        CodeGuesses {
            per_minute,
            wrong: Mutex::new(HashMap::new()),
        }
    }

    /// `429 rate_limited` while the merchant has used up this minute's wrong codes:
    /// then every code it sends is refused unread, right or wrong.
    pub fn check(&self, merchant_id: &str, now_ms: i64) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now_ms.div_euclid(60_000);
        let wrong = self.wrong.lock().unwrap_or_else(|p| p.into_inner());
        match wrong.get(merchant_id) {
            Some((m, n)) if *m == minute && *n >= self.per_minute => {
                let wait_s = (minute + 1) * 60 - now_ms.div_euclid(1_000);
                Err(ApiError(
                    Error::new(
                        ErrorKind::RateLimited,
                        "rate_limited",
                        "Too many wrong payment codes from this merchant; retry after the time in Retry-After.",
                    )
                    .with_retry_after(wait_s.max(1) as u64),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong code.
    pub fn wrong(&self, merchant_id: &str, now_ms: i64) {
        if self.per_minute == 0 {
            return;
        }
        let minute = now_ms.div_euclid(60_000);
        let mut wrong = self.wrong.lock().unwrap_or_else(|p| p.into_inner());
        if wrong.len() >= MAX_COUNTED_MERCHANTS && !wrong.contains_key(merchant_id) {
            wrong.retain(|_, (m, _)| *m == minute);
            if wrong.len() >= MAX_COUNTED_MERCHANTS {
                return;
            }
        }
        let entry = wrong.entry(merchant_id.to_string()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merchant_is_stopped_after_its_wrong_codes_until_the_minute_ends() {
        let g = CodeGuesses::new(3);
        let t = 1_800_000_000_000;
        for _ in 0..3 {
            assert!(g.check("m", t).is_ok());
            g.wrong("m", t);
        }
        let refused = g.check("m", t + 1).unwrap_err();
        assert_eq!(refused.0.code, "rate_limited");
        assert!(
            refused
                .0
                .retry_after_seconds
                .is_some_and(|s| (1..=60).contains(&s))
        );
        assert!(
            g.check("other", t).is_ok(),
            "another merchant is not stopped"
        );
        assert!(
            g.check("m", t + 60_000).is_ok(),
            "a new minute starts afresh"
        );
        assert!(CodeGuesses::new(0).check("m", t).is_ok());
    }

    #[test]
    fn two_devices_sharing_digits_are_both_refused() {
        let mut codes = Codes {
            step: Some(10),
            ..Codes::default()
        };
        codes.add(&[1u8; 32], "dev_a".into());
        let secret = code::device_secret(&[1u8; 32], "dev_a");
        let shown = code::code_at(&secret, 11);
        assert_eq!(
            codes.find(&shown),
            Some(CodeCharge {
                device_id: "dev_a".into(),
                step: 11
            })
        );
        assert_eq!(
            codes.find(&code::code_at(&secret, 12)),
            None,
            "outside the window"
        );
        codes.by_digits.insert(code::digits_of(&shown), None);
        assert_eq!(codes.find(&shown), None);
    }
}
