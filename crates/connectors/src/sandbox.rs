//! The sandbox bank: a fake bank that behaves exactly as the contract's sandbox card
//! table says, for `serve --demo` / `--sandbox`, the tests, and (behind the protocol)
//! `pocket sandbox-bank`. It keeps its operations in memory, by Pocket's operation id,
//! so a repeated id is the same operation; the behaviour of a card travels in its
//! token, so a token stays meaningful after a restart.
//!
//! | number | behaviour |
//! |---|---|
//! | 4242424242424242, 5555555555554444, 6200000000000005 (and any other valid number) | everything succeeds at once |
//! | 4000000000000002 | binds; every charge declined `card_declined` |
//! | 4000000000009995 | binds; every charge declined `insufficient_funds` |
//! | 4000000000000069 | binding refused `expired_card` |
//! | 4000000000000119 | the first 2 attempts of each operation fail (no answer), then it succeeds |
//! | 4000000000003220 | charges are `pending`; they succeed `async_delay` later (status, notification) |
//! | 4000000000000259 | a charge is never answered in time; a later status query says it succeeded |
//! | 4000000000000341 | binds and charges; payouts to it fail `account_closed` |
//! | bank account numbers ending in 0000 | payouts fail `account_closed` |

use crate::{
    CardDetails, Connector, ConnectorError, Destination, OpAnswer, OpKind, OpStatus, Operation,
    Result,
};
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a card behaves, carried in its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Ok,
    Declined,
    Insufficient,
    Flaky,
    Async,
    Late,
    Closed,
}

impl Behaviour {
    fn code(self) -> &'static str {
        match self {
            Behaviour::Ok => "ok",
            Behaviour::Declined => "dec",
            Behaviour::Insufficient => "nsf",
            Behaviour::Flaky => "flk",
            Behaviour::Async => "asy",
            Behaviour::Late => "lat",
            Behaviour::Closed => "cls",
        }
    }

    fn of_code(code: &str) -> Option<Behaviour> {
        [
            Behaviour::Ok,
            Behaviour::Declined,
            Behaviour::Insufficient,
            Behaviour::Flaky,
            Behaviour::Async,
            Behaviour::Late,
            Behaviour::Closed,
        ]
        .into_iter()
        .find(|b| b.code() == code)
    }

    fn of_number(digits: &str) -> std::result::Result<Behaviour, &'static str> {
        Ok(match digits {
            "4000000000000002" => Behaviour::Declined,
            "4000000000009995" => Behaviour::Insufficient,
            "4000000000000069" => return Err("expired_card"),
            "4000000000000119" => Behaviour::Flaky,
            "4000000000003220" => Behaviour::Async,
            "4000000000000259" => Behaviour::Late,
            "4000000000000341" => Behaviour::Closed,
            _ => Behaviour::Ok,
        })
    }
}

/// What the bank remembers of one operation.
#[derive(Clone, Debug)]
struct Record {
    kind: OpKind,
    op: Operation,
    behaviour: Behaviour,
    /// Requests seen for it (the flaky card fails the first two).
    attempts: u32,
    created_ms: i64,
    status: OpStatus,
}

impl Record {
    /// The record as one line of the state file.
    fn line(&self) -> String {
        let a = OpAnswer::of(self.kind, &self.op, self.status.clone());
        let mut v = crate::protocol::answer_json(&a);
        v["behaviour"] = self.behaviour.code().into();
        v["created_ms"] = self.created_ms.into();
        v.to_string()
    }

    fn of_line(line: &str) -> Option<Record> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let a = crate::protocol::read_answer(&v).ok()?;
        Some(Record {
            kind: a.kind,
            op: Operation {
                operation_id: a.operation_id,
                amount: a.amount,
                currency: a.currency,
            },
            behaviour: Behaviour::of_code(v["behaviour"].as_str()?)?,
            attempts: 0,
            created_ms: v["created_ms"].as_i64()?,
            status: a.status,
        })
    }
}

/// Milliseconds since the Unix epoch; tests pass a manual one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct SandboxBank {
    name: String,
    ops: Mutex<HashMap<String, Record>>,
    async_delay_ms: i64,
    /// Share of requests answered with a failure before anything is done.
    fail_rate: f64,
    clock: Clock,
    /// The currencies it moves (any ISO 4217 one when `None`).
    currencies: Option<Vec<String>>,
    /// Where every new operation is written before it is answered (`--state`).
    journal: Option<Mutex<std::fs::File>>,
}

/// Most operations the sandbox remembers (a limit on everything).
const MAX_OPERATIONS: usize = 1_000_000;

impl SandboxBank {
    pub fn new(name: &str, async_delay_ms: i64, fail_rate: f64, clock: Clock) -> SandboxBank {
        SandboxBank {
            name: name.to_string(),
            ops: Mutex::default(),
            async_delay_ms,
            fail_rate,
            clock,
            currencies: None,
            journal: None,
        }
    }

    /// Moves only these currencies; others are declined `currency_unsupported`.
    pub fn accepting(mut self, currencies: Vec<String>) -> SandboxBank {
        self.currencies = Some(currencies);
        self
    }

    /// Keeps its operations in the file at `path` (JSON lines, one per operation,
    /// appended and synced before the operation is answered) and reads back those
    /// already there, so a restarted bank answers a re-sent operation as before.
    pub fn keeping_state(
        mut self,
        path: &std::path::Path,
    ) -> std::result::Result<SandboxBank, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut ops = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let r = Record::of_line(line)
                .ok_or_else(|| format!("{} line {}: not an operation", path.display(), i + 1))?;
            ops.insert(r.op.operation_id.clone(), r);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        self.ops = Mutex::new(ops);
        self.journal = Some(Mutex::new(file));
        Ok(self)
    }

    fn journal(&self, r: &Record) -> Result<()> {
        use std::io::Write;
        let Some(file) = &self.journal else {
            return Ok(());
        };
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(file, "{}", r.line())
            .and_then(|_| file.sync_data())
            .map_err(|e| Self::unavailable(&format!("cannot keep the operation: {e}")))
    }

    /// What any bank checks before it moves money: a positive amount in a currency it
    /// moves.
    fn check(&self, op: &Operation) -> Result<()> {
        let declined = |code: &str| ConnectorError::Declined {
            decline_code: code.to_string(),
        };
        if !(1..=pocket_core::money::MAX_AMOUNT_MINOR).contains(&op.amount) {
            return Err(declined("invalid_amount"));
        }
        let known = pocket_core::Currency::parse(&op.currency, "currency").is_ok();
        let moved = self
            .currencies
            .as_ref()
            .is_none_or(|list| list.contains(&op.currency));
        if !known || !moved {
            return Err(declined("currency_unsupported"));
        }
        Ok(())
    }

    fn unavailable(why: &str) -> ConnectorError {
        ConnectorError::Unavailable {
            why: why.to_string(),
        }
    }

    fn maybe_fail(&self) -> Result<()> {
        if self.fail_rate > 0.0 && rand::rng().random_bool(self.fail_rate.min(1.0)) {
            return Err(Self::unavailable(
                "the sandbox bank failed this request on purpose",
            ));
        }
        Ok(())
    }

    fn behaviour_of(token: &str) -> Option<Behaviour> {
        let rest = token.strip_prefix("tok_sbx_")?;
        Behaviour::of_code(rest.split('_').next()?)
    }

    /// The status as time has left it (an async charge succeeds after its delay).
    fn settle(&self, r: &mut Record, now: i64) {
        if r.status == OpStatus::Pending
            && r.behaviour == Behaviour::Async
            && now >= r.created_ms + self.async_delay_ms
        {
            r.status = OpStatus::Succeeded;
        }
    }

    /// Runs an operation once per id: a repeat sees the same operation.
    fn operate(
        &self,
        kind: OpKind,
        op: &Operation,
        behaviour: Behaviour,
        decide: impl FnOnce() -> OpStatus,
    ) -> Result<OpAnswer> {
        self.maybe_fail()?;
        self.check(op)?;
        let now = (self.clock)();
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        if !ops.contains_key(&op.operation_id) {
            if ops.len() >= MAX_OPERATIONS {
                return Err(Self::unavailable("the sandbox bank is full"));
            }
            let r = Record {
                kind,
                op: op.clone(),
                behaviour,
                attempts: 0,
                created_ms: now,
                status: decide(),
            };
            // Kept before it is answered: a re-sent operation after a restart is
            // answered, never done twice.
            self.journal(&r)?;
            ops.insert(op.operation_id.clone(), r);
        }
        let Some(r) = ops.get_mut(&op.operation_id) else {
            return Err(Self::unavailable("the operation vanished"));
        };
        if r.kind != kind || r.op != *op {
            // Same id, another operation: a bank refuses rather than guess.
            let reused = OpStatus::Failed {
                decline_code: "operation_id_reused".into(),
            };
            return Ok(OpAnswer::of(kind, op, reused));
        }
        r.attempts += 1;
        if r.behaviour == Behaviour::Flaky && r.attempts <= 2 {
            return Err(Self::unavailable(
                "HTTP 500 from the sandbox bank (flaky card)",
            ));
        }
        if r.behaviour == Behaviour::Late && kind == OpKind::Charge {
            return Err(Self::unavailable("no answer in time (late card)"));
        }
        self.settle(r, now);
        Ok(OpAnswer::of(kind, op, r.status.clone()))
    }

    /// Operations whose final answer is due to be notified: async charges past their
    /// delay (for `pocket sandbox-bank`, which posts them to Pocket).
    pub fn due_notifications(&self) -> Vec<OpAnswer> {
        let now = (self.clock)();
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = Vec::new();
        for r in ops.values_mut() {
            if r.status == OpStatus::Pending {
                self.settle(r, now);
                if r.status.is_final() {
                    due.push(OpAnswer::of(r.kind, &r.op, r.status.clone()));
                }
            }
        }
        due
    }
}

#[async_trait::async_trait]
impl Connector for SandboxBank {
    fn name(&self) -> &str {
        &self.name
    }

    async fn bind_card(&self, _operation_id: &str, card: &CardDetails) -> Result<String> {
        self.maybe_fail()?;
        let behaviour = Behaviour::of_number(&card.number.digits()).map_err(|code| {
            ConnectorError::Declined {
                decline_code: code.to_string(),
            }
        })?;
        let mut tail = [0u8; 12];
        rand::rng().fill(&mut tail);
        Ok(format!(
            "tok_sbx_{}_{}",
            behaviour.code(),
            hex::encode(tail)
        ))
    }

    async fn charge(&self, op: &Operation, card_token: &str) -> Result<OpAnswer> {
        let behaviour = Self::behaviour_of(card_token).ok_or(ConnectorError::Declined {
            decline_code: "card_unknown".into(),
        })?;
        self.operate(OpKind::Charge, op, behaviour, || match behaviour {
            Behaviour::Declined => OpStatus::Failed {
                decline_code: "card_declined".into(),
            },
            Behaviour::Insufficient => OpStatus::Failed {
                decline_code: "insufficient_funds".into(),
            },
            Behaviour::Async => OpStatus::Pending,
            _ => OpStatus::Succeeded,
        })
    }

    async fn payout(&self, op: &Operation, to: &Destination) -> Result<OpAnswer> {
        let (behaviour, closed) = match to {
            Destination::Card { token } => {
                let b = Self::behaviour_of(token).ok_or(ConnectorError::Declined {
                    decline_code: "card_unknown".into(),
                })?;
                (b, b == Behaviour::Closed)
            }
            Destination::BankAccount { account_number, .. } => {
                (Behaviour::Ok, account_number.ends_with("0000"))
            }
        };
        self.operate(OpKind::Payout, op, behaviour, || {
            if closed {
                OpStatus::Failed {
                    decline_code: "account_closed".into(),
                }
            } else {
                OpStatus::Succeeded
            }
        })
    }

    async fn status(&self, operation_id: &str) -> Result<OpAnswer> {
        self.maybe_fail()?;
        let now = (self.clock)();
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let r = ops
            .get_mut(operation_id)
            .ok_or(ConnectorError::UnknownOperation)?;
        self.settle(r, now);
        Ok(OpAnswer::of(r.kind, &r.op, r.status.clone()))
    }

    async fn statement(&self, date: &str) -> Result<Vec<OpAnswer>> {
        self.maybe_fail()?;
        let now = (self.clock)();
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines: Vec<OpAnswer> = ops
            .values_mut()
            .filter(|r| pocket_core::time::utc_date(r.created_ms) == date)
            .map(|r| {
                self.settle(r, now);
                OpAnswer::of(r.kind, &r.op, r.status.clone())
            })
            .collect();
        lines.sort_by(|a, b| a.operation_id.cmp(&b.operation_id));
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn bank() -> (SandboxBank, Arc<AtomicI64>) {
        let now = Arc::new(AtomicI64::new(1_764_000_000_000));
        let clock = now.clone();
        let bank = SandboxBank::new(
            "sandbox",
            5_000,
            0.0,
            Arc::new(move || clock.load(Ordering::SeqCst)),
        );
        (bank, now)
    }

    fn st(r: Result<OpAnswer>) -> Result<OpStatus> {
        r.map(|a| a.status)
    }

    fn card(number: &str) -> CardDetails {
        CardDetails {
            number: pocket_core::card::parse_number(number).unwrap(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
            holder_name: None,
        }
    }

    fn op(id: &str) -> Operation {
        Operation {
            operation_id: id.into(),
            amount: 10_000,
            currency: "CNY".into(),
        }
    }

    #[tokio::test]
    async fn every_card_of_the_table_behaves_as_written() {
        let (bank, now) = bank();
        let bind = |n: &'static str| {
            let bank = &bank;
            async move { bank.bind_card("op", &card(n)).await }
        };
        for n in ["4242424242424242", "5555555555554444", "6200000000000005"] {
            let t = bind(n).await.unwrap();
            assert_eq!(
                st(bank.charge(&op(&format!("c{n}")), &t).await),
                Ok(OpStatus::Succeeded)
            );
            let to = Destination::Card { token: t };
            assert_eq!(
                st(bank.payout(&op(&format!("p{n}")), &to).await),
                Ok(OpStatus::Succeeded)
            );
        }
        let t = bind("4000000000000002").await.unwrap();
        assert_eq!(
            st(bank.charge(&op("d"), &t).await),
            Ok(OpStatus::Failed {
                decline_code: "card_declined".into()
            })
        );
        let t = bind("4000000000009995").await.unwrap();
        assert_eq!(
            st(bank.charge(&op("n"), &t).await),
            Ok(OpStatus::Failed {
                decline_code: "insufficient_funds".into()
            })
        );
        assert_eq!(
            bind("4000000000000069").await,
            Err(ConnectorError::Declined {
                decline_code: "expired_card".into()
            })
        );
        let t = bind("4000000000000119").await.unwrap();
        for _ in 0..2 {
            assert!(matches!(
                st(bank.charge(&op("f"), &t).await),
                Err(ConnectorError::Unavailable { .. })
            ));
        }
        assert_eq!(st(bank.charge(&op("f"), &t).await), Ok(OpStatus::Succeeded));
        let t = bind("4000000000003220").await.unwrap();
        assert_eq!(st(bank.charge(&op("a"), &t).await), Ok(OpStatus::Pending));
        assert!(bank.due_notifications().is_empty());
        now.fetch_add(5_000, Ordering::SeqCst);
        assert_eq!(bank.due_notifications().len(), 1);
        assert_eq!(bank.status("a").await.unwrap().status, OpStatus::Succeeded);
        let t = bind("4000000000000259").await.unwrap();
        assert!(matches!(
            st(bank.charge(&op("l"), &t).await),
            Err(ConnectorError::Unavailable { .. })
        ));
        assert_eq!(bank.status("l").await.unwrap().status, OpStatus::Succeeded);
        let t = bind("4000000000000341").await.unwrap();
        assert_eq!(st(bank.charge(&op("x"), &t).await), Ok(OpStatus::Succeeded));
        assert_eq!(
            st(bank.payout(&op("y"), &Destination::Card { token: t }).await),
            Ok(OpStatus::Failed {
                decline_code: "account_closed".into()
            })
        );
        let account = |n: &str| Destination::BankAccount {
            account_number: n.into(),
            bank_code: "ICBC".into(),
            holder_name: "Tea House".into(),
        };
        assert_eq!(
            st(bank.payout(&op("b0"), &account("6222020000000000")).await),
            Ok(OpStatus::Failed {
                decline_code: "account_closed".into()
            })
        );
        assert_eq!(
            st(bank.payout(&op("b1"), &account("6222020000001234")).await),
            Ok(OpStatus::Succeeded)
        );
        assert_eq!(
            bank.status("nope").await,
            Err(ConnectorError::UnknownOperation)
        );
    }

    #[tokio::test]
    async fn an_operation_id_is_one_operation() {
        let (bank, _) = bank();
        let t = bank
            .bind_card("op", &card("4242424242424242"))
            .await
            .unwrap();
        for _ in 0..3 {
            assert_eq!(
                st(bank.charge(&op("same"), &t).await),
                Ok(OpStatus::Succeeded)
            );
        }
        let other = Operation {
            amount: 1,
            ..op("same")
        };
        assert_eq!(
            st(bank.charge(&other, &t).await),
            Ok(OpStatus::Failed {
                decline_code: "operation_id_reused".into()
            })
        );
        let lines = bank
            .statement(&pocket_core::time::utc_date(1_764_000_000_000))
            .await
            .unwrap();
        assert_eq!(lines.len(), 1, "charged once");
        assert_eq!(bank.statement("2000-01-01").await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn it_refuses_what_a_bank_refuses_and_keeps_its_operations_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.jsonl");
        let (bank, now) = bank();
        let clock = now.clone();
        let bank = bank
            .accepting(vec!["CNY".into()])
            .keeping_state(&path)
            .unwrap();
        let token = bank
            .bind_card("op", &card("4242424242424242"))
            .await
            .unwrap();
        for (amount, currency, code) in [
            (-5, "CNY", "invalid_amount"),
            (0, "CNY", "invalid_amount"),
            (100, "USD", "currency_unsupported"),
            (100, "XYZ", "currency_unsupported"),
        ] {
            let op = Operation {
                operation_id: format!("bad{amount}{currency}"),
                amount,
                currency: currency.into(),
            };
            assert_eq!(
                bank.charge(&op, &token).await,
                Err(ConnectorError::Declined {
                    decline_code: code.into()
                }),
                "{amount} {currency}"
            );
        }
        let slow = bank
            .bind_card("op", &card("4000000000003220"))
            .await
            .unwrap();
        assert_eq!(
            st(bank.charge(&op("paid"), &token).await),
            Ok(OpStatus::Succeeded)
        );
        assert_eq!(
            st(bank.charge(&op("later"), &slow).await),
            Ok(OpStatus::Pending)
        );
        drop(bank);
        // Restarted: a re-sent operation is answered as before, never done again, and
        // the pending one still settles on time.
        let again = SandboxBank::new(
            "sandbox",
            5_000,
            0.0,
            Arc::new(move || clock.load(Ordering::SeqCst)),
        )
        .keeping_state(&path)
        .unwrap();
        let reused = Operation {
            amount: 1,
            ..op("paid")
        };
        assert_eq!(
            st(again.charge(&reused, &token).await),
            Ok(OpStatus::Failed {
                decline_code: "operation_id_reused".into()
            }),
            "the bank remembers operation 'paid'"
        );
        assert_eq!(
            st(again.charge(&op("paid"), &token).await),
            Ok(OpStatus::Succeeded)
        );
        now.fetch_add(5_000, Ordering::SeqCst);
        assert_eq!(
            again.status("later").await.unwrap().status,
            OpStatus::Succeeded
        );
        let day = pocket_core::time::utc_date(1_764_000_000_000);
        assert_eq!(
            again.statement(&day).await.unwrap().len(),
            2,
            "charged once each"
        );
    }
}
