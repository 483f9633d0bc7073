//! The workload mix: shares of each kind of iteration, and a small deterministic RNG.

/// One iteration's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create from items (small tier) and confirm: the default.
    Pay,
    /// Pay, then refund part of it.
    Refund,
    /// Create, then the customer declines.
    Decline,
    /// Create with `expires_in: 1` and leave it to expire.
    Expire,
    /// A customer with no money confirms: `402`.
    Insufficient,
    /// Create twice with one Idempotency-Key (a replay), then confirm.
    Retry,
    /// A medium-tier payment confirmed with the PIN (bounded by the PIN hash).
    Pin,
}

/// Shares in per mille of each non-default op; the rest is `Pay`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Mix {
    pub refund: u32,
    pub decline: u32,
    pub expire: u32,
    pub insufficient: u32,
    pub retry: u32,
    pub pin: u32,
}

impl Mix {
    /// Parses `refund=0.05,decline=0.02,…` (fractions of all iterations).
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut m = Mix::default();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--mix: expected name=fraction, got {part:?}"))?;
            let f: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("--mix: {v:?} is not a fraction"))?;
            if !(0.0..=1.0).contains(&f) {
                return Err(format!("--mix: {k} must be between 0 and 1"));
            }
            let per_mille = (f * 1000.0).round() as u32;
            match k.trim() {
                "refund" => m.refund = per_mille,
                "decline" => m.decline = per_mille,
                "expire" => m.expire = per_mille,
                "insufficient" => m.insufficient = per_mille,
                "retry" => m.retry = per_mille,
                "pin" => m.pin = per_mille,
                other => {
                    return Err(format!(
                        "--mix: unknown kind {other:?} (refund, decline, expire, insufficient, retry, pin)"
                    ));
                }
            }
        }
        if m.total() > 1000 {
            return Err("--mix: the shares add up to more than 1".into());
        }
        Ok(m)
    }

    fn total(&self) -> u32 {
        self.refund + self.decline + self.expire + self.insufficient + self.retry + self.pin
    }

    pub fn pick(&self, rng: &mut Rng) -> Op {
        let mut x = rng.below(1000) as u32;
        for (share, op) in [
            (self.refund, Op::Refund),
            (self.decline, Op::Decline),
            (self.expire, Op::Expire),
            (self.insufficient, Op::Insufficient),
            (self.retry, Op::Retry),
            (self.pin, Op::Pin),
        ] {
            if x < share {
                return op;
            }
            x -= share;
        }
        Op::Pay
    }
}

/// xorshift64*: fast, deterministic per client, good enough for choosing ops.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_picks_by_share() {
        let m = Mix::parse("refund=0.1,pin=0.05").unwrap();
        assert_eq!((m.refund, m.pin), (100, 50));
        let mut rng = Rng::new(1);
        let picks: Vec<Op> = (0..10_000).map(|_| m.pick(&mut rng)).collect();
        let refunds = picks.iter().filter(|o| **o == Op::Refund).count();
        assert!((800..1200).contains(&refunds), "{refunds}");
        assert!(Mix::parse("bogus=0.1").is_err());
        assert!(Mix::parse("refund=0.7,decline=0.7").is_err());
        assert_eq!(Mix::parse("").unwrap(), Mix::default());
    }
}
