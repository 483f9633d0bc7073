//! Risk rules and limits in the store: the rules (compiled once per change, checked
//! against a version row inside every transaction that applies them, so a rule added on
//! any node applies to the next commit), the customer figures they read, kept exact by
//! the transactions that change them (a row per customer, currency and UTC day; a row per
//! customer and minute), and the screening of a payment at creation and at confirm.

use super::{Db, events};
use crate::ids::new_id;
use crate::model::RiskRule;
use crate::sql::{Conn, Optional, params};
use pocket_core::Error;
use pocket_core::payment::Payment;
use pocket_core::policy::Authentication;
use pocket_core::risk::{
    Action, CustomerFacts, Facts, MAX_RULES, Rule, Verdict, check_daily_limit, day_of, minute_of,
    payment_blocked,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The compiled rules of one version of the rule table.
struct RuleSet {
    version: i64,
    rules: Arc<Vec<Rule>>,
}

/// What a store knows of risk: its compiled rules (refreshed when the version row moves)
/// and the daily limits from configuration (minor units per currency code).
pub(crate) struct Risk {
    current: Mutex<RuleSet>,
    daily_limits: BTreeMap<String, i64>,
    /// Customers' sign-up times (never change once written), so a screening need not
    /// read them again; bounded: emptied when full.
    signed_up: Mutex<std::collections::HashMap<String, i64>>,
}

/// Most sign-up times remembered.
const MAX_SIGNED_UP: usize = 100_000;

impl Risk {
    pub(crate) fn new(daily_limits: BTreeMap<String, i64>) -> Risk {
        Risk {
            // No version: the first screening loads the rules, whatever the row says
            // (a copied database keeps its rules under a fresh version row).
            current: Mutex::new(RuleSet {
                version: i64::MIN,
                rules: Arc::new(Vec::new()),
            }),
            daily_limits,
            signed_up: Mutex::default(),
        }
    }

    /// The rules as the transaction on `conn` sees them.
    fn rules(&self, conn: &Conn) -> Result<Arc<Vec<Rule>>, Error> {
        let version: i64 = match conn.batch_rules_version() {
            Some(v) => v,
            None => conn
                .prepare_cached("SELECT version FROM risk_rules_version")
                .db()?
                .query_row([], |r| r.get(0))
                .db()?,
        };
        {
            let current = self.current.lock().expect("rules lock");
            if current.version == version {
                return Ok(current.rules.clone());
            }
        }
        let rules = Arc::new(
            stored(conn)?
                .into_iter()
                .map(|r| {
                    let action = Action::parse(&r.action).ok_or_else(Error::internal)?;
                    Rule::compile(&r.id, &r.name, &r.when, action).map_err(|e| {
                        tracing::error!(rule = %r.id, code = e.code, "a stored rule no longer compiles");
                        Error::internal()
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?,
        );
        let mut current = self.current.lock().expect("rules lock");
        *current = RuleSet {
            version,
            rules: rules.clone(),
        };
        Ok(rules)
    }

    /// Screens a new payment with the rules that read nothing but the payment: `402
    /// payment_blocked`, or the proof a rule raises it to. Rules that read the customer
    /// or the device, and the daily limit, wait for the confirm: answering them at
    /// creation would let a merchant probe what a customer spent today.
    pub(crate) fn screen_new(
        &self,
        conn: &Conn,
        p: &Payment,
    ) -> Result<Option<(Authentication, String)>, Error> {
        let rules = self.rules(conn)?;
        if rules.iter().all(|r| r.reads_customer) {
            return Ok(None);
        }
        let facts = facts_of(p, CustomerFacts::default());
        let payment_only = rules.iter().filter(|r| !r.reads_customer);
        verdict(pocket_core::risk::decide(
            payment_only,
            &facts,
            p.policy.authentication,
        ))
    }

    /// Screens `p` for the confirming `customer` at `now`, with every rule and the
    /// daily limit: `402 payment_blocked` or `402 limit_exceeded`, or the proof a rule
    /// raises it to (with the rule's name) when that is stronger than what its policy
    /// asks already.
    pub(crate) fn screen(
        &self,
        conn: &Conn,
        now: i64,
        p: &Payment,
        customer: &str,
    ) -> Result<Option<(Authentication, String)>, Error> {
        let currency = p.currency.code();
        let rules = self.rules(conn)?;
        let limit = self.daily_limits.get(currency).copied();
        // No rules and no limit: nothing more to read.
        if rules.is_empty() && limit.is_none() {
            return Ok(None);
        }
        let figures = if limit.is_some() || rules.iter().any(|r| r.reads_customer) {
            self.figures(conn, now, customer, currency)?
        } else {
            CustomerFacts::default()
        };
        check_daily_limit(limit, figures.spent_today, p.amount)?;
        let facts = facts_of(p, figures);
        verdict(pocket_core::risk::decide(
            rules.iter(),
            &facts,
            p.policy.authentication,
        ))
    }

    /// A customer's figures at `now`, in `currency`: one statement of three indexed
    /// reads (the last hour is this minute and the 60 before it, whole minutes: at most
    /// 61 rows), and the sign-up time, read once per customer.
    fn figures(
        &self,
        conn: &Conn,
        now: i64,
        customer: &str,
        currency: &str,
    ) -> Result<CustomerFacts, Error> {
        // Several writers: the customer's row is locked before the figures are read,
        // and held to the commit that adds this payment to them, so two confirms of
        // one customer (on any nodes) read one after the other (see `lock_payer`).
        let signed_up = match lock_payer(conn, customer)? {
            Some(at) => at,
            None => self.signed_up(conn, customer)?,
        };
        let minute = minute_of(now);
        let (spent_today, payments_last_hour, device_registered): (Option<i64>, i64, bool) = conn
            .prepare_cached(
                "SELECT (SELECT spent FROM customer_days WHERE customer_id = ?1 AND currency = ?2 AND day = ?3),
                        (SELECT COALESCE(SUM(payments), 0) FROM customer_minutes
                          WHERE customer_id = ?1 AND minute >= ?4 AND minute <= ?5),
                        EXISTS (SELECT 1 FROM devices WHERE customer_id = ?1 AND revoked_at IS NULL)",
            )
            .db()?
            .query_row(
                params![customer, currency, day_of(now), minute - 60, minute],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .db()?;
        Ok(CustomerFacts {
            age_days: (now - signed_up).max(0) / pocket_core::risk::MS_PER_DAY,
            payments_last_hour,
            spent_today: spent_today.unwrap_or(0),
            device_registered,
        })
    }

    fn signed_up(&self, conn: &Conn, customer: &str) -> Result<i64, Error> {
        if let Some(at) = self.signed_up.lock().expect("sign-up times").get(customer) {
            return Ok(*at);
        }
        let at: i64 = conn
            .prepare_cached("SELECT created_at FROM customers WHERE id = ?1")
            .db()?
            .query_row([customer], |r| r.get(0))
            .db()?;
        let mut known = self.signed_up.lock().expect("sign-up times");
        if known.len() >= MAX_SIGNED_UP {
            known.clear();
        }
        known.insert(customer.to_string(), at);
        Ok(at)
    }
}

/// On PostgreSQL, locks the paying customer's row until the commit and reads when
/// they signed up; SQLite's one writer needs no lock (`None`). Every job that reads
/// a customer's figures to decide takes this lock before it, and before any account
/// (see `ops::ledger::LOCK_ORDER`).
pub(crate) fn lock_payer(conn: &Conn, customer: &str) -> Result<Option<i64>, Error> {
    if !conn.is_postgres() {
        return Ok(None);
    }
    conn.prepare_cached("SELECT created_at FROM customers WHERE id = ?1 FOR NO KEY UPDATE")
        .db()?
        .query_row([customer], |r| r.get(0))
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("customer", customer))
        .map(Some)
}

/// What the rules see of `p`, with `customer`'s figures.
fn facts_of(p: &Payment, customer: CustomerFacts) -> Facts<'_> {
    Facts {
        amount: p.amount,
        currency: p.currency.code(),
        merchant: &p.merchant,
        tier: &p.policy.tier,
        customer,
    }
}

fn verdict(v: Verdict) -> Result<Option<(Authentication, String)>, Error> {
    match v {
        Verdict::Allow => Ok(None),
        Verdict::Block { rule } => Err(payment_blocked(&rule)),
        Verdict::Raise {
            authentication,
            rule,
        } => Ok(Some((authentication, rule))),
    }
}

/// One confirm in this many prunes its customer's old figures.
const PRUNE_EVERY: i64 = 16;

/// Counts a payment the customer confirmed at `now` (paid, or held for capture) in the
/// figures the rules and limits read, in the confirming transaction.
pub(crate) fn record(
    conn: &Conn,
    now: i64,
    customer: &str,
    currency: &str,
    amount: i64,
) -> Result<(), Error> {
    let figures = params![customer, currency, day_of(now), amount, minute_of(now)];
    if conn.is_postgres() {
        // Both figures in one round trip.
        conn.prepare_cached(
            "WITH day AS (INSERT INTO customer_days (customer_id, currency, day, spent) VALUES (?1, ?2, ?3, ?4)
                          ON CONFLICT (customer_id, currency, day) DO UPDATE
                          SET spent = customer_days.spent + excluded.spent)
             INSERT INTO customer_minutes (customer_id, minute, payments) VALUES (?1, ?5, 1)
             ON CONFLICT (customer_id, minute) DO UPDATE SET payments = customer_minutes.payments + 1",
        )
        .db()?
        .execute(figures)
        .db()?;
    } else {
        conn.prepare_cached(
            "INSERT INTO customer_days (customer_id, currency, day, spent) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (customer_id, currency, day) DO UPDATE
             SET spent = customer_days.spent + excluded.spent",
        )
        .db()?
        .execute(&figures[..4])
        .db()?;
        conn.prepare_cached(
            "INSERT INTO customer_minutes (customer_id, minute, payments) VALUES (?1, ?2, 1)
             ON CONFLICT (customer_id, minute) DO UPDATE SET payments = customer_minutes.payments + 1",
        )
        .db()?
        .execute(params![customer, minute_of(now)])
        .db()?;
    }
    prune(conn, now, customer, currency)
}

/// The figures' two upserts as CTEs for [`events::emit_with`]: `?9` the customer,
/// `?10` the currency, `?11` the day, `?12` the amount, `?13` the minute.
const FIGURES_CTES: &str = "day AS (INSERT INTO customer_days (customer_id, currency, day, spent)
                   VALUES (?9, ?10, ?11, ?12)
                   ON CONFLICT (customer_id, currency, day) DO UPDATE
                   SET spent = customer_days.spent + excluded.spent),
     minute AS (INSERT INTO customer_minutes (customer_id, minute, payments) VALUES (?9, ?13, 1)
                ON CONFLICT (customer_id, minute) DO UPDATE
                SET payments = customer_minutes.payments + 1), ";

/// [`record`], then `emit` the event of the confirm: on PostgreSQL both in the event's
/// statement (one round trip), on SQLite one after the other.
pub(crate) fn record_then_emit(
    conn: &Conn,
    now: i64,
    customer: &str,
    money: (&str, i64),
    emit: impl FnOnce(Option<events::Also<'_>>) -> Result<(), Error>,
) -> Result<(), Error> {
    let (currency, amount) = money;
    if !conn.is_postgres() {
        record(conn, now, customer, currency, amount)?;
        return emit(None);
    }
    let figures = params![customer, currency, day_of(now), amount, minute_of(now)];
    emit(Some((FIGURES_CTES, figures)))?;
    prune(conn, now, customer, currency)
}

/// What no rule reads any more goes, now and then (one confirm in `PRUNE_EVERY`, by
/// the time's last digits): two statements less per confirm, and a customer keeps a
/// few more rows than the 61 minutes and 2 days the rules read.
fn prune(conn: &Conn, now: i64, customer: &str, currency: &str) -> Result<(), Error> {
    if now.rem_euclid(PRUNE_EVERY) != 0 {
        return Ok(());
    }
    conn.prepare_cached("DELETE FROM customer_minutes WHERE customer_id = ?1 AND minute < ?2")
        .db()?
        .execute(params![customer, minute_of(now) - 60])
        .db()?;
    conn.prepare_cached(
        "DELETE FROM customer_days WHERE customer_id = ?1 AND currency = ?2 AND day < ?3",
    )
    .db()?
    .execute(params![customer, currency, day_of(now) - 1])
    .db()?;
    Ok(())
}

struct StoredRule {
    id: String,
    name: String,
    when: String,
    action: String,
    created_at: i64,
}

fn stored(conn: &Conn) -> Result<Vec<StoredRule>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, expression, action, created_at FROM risk_rules ORDER BY seq",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok(StoredRule {
                id: r.get(0)?,
                name: r.get(1)?,
                when: r.get(2)?,
                action: r.get(3)?,
                created_at: r.get(4)?,
            })
        })
        .db()?;
    rows.collect::<crate::sql::Result<Vec<_>>>().db()
}

fn wire(r: StoredRule) -> Result<RiskRule, Error> {
    Ok(RiskRule {
        id: r.id,
        object: "rule",
        name: r.name,
        when: r.when,
        action: Action::parse(&r.action).ok_or_else(Error::internal)?,
        created_at: r.created_at,
    })
}

/// Marks the rules changed. The new version is random, not the old one plus one: a
/// store that compiled a change whose batch then rolled back must not take a later,
/// different change for the one it has.
fn bump_version(conn: &Conn) -> Result<(), Error> {
    let version: i64 = rand::random();
    conn.forget_batch_rules_version();
    conn.prepare_cached("UPDATE risk_rules_version SET version = ?1")
        .db()?
        .execute([version])
        .db()?;
    Ok(())
}

/// Adds a rule (compiled first: `400 rule_invalid` with the parser's message).
pub(crate) fn add(
    conn: &Conn,
    now: i64,
    name: &str,
    when: &str,
    action: Action,
) -> Result<RiskRule, Error> {
    let id = new_id("rule");
    Rule::compile(&id, name, when, action)?;
    // The version row first: it locks, so two nodes adding rules at once count one
    // after the other (the cap holds).
    bump_version(conn)?;
    let (count, total_chars): (i64, i64) = conn
        .prepare_cached("SELECT COUNT(*), COALESCE(SUM(LENGTH(expression)), 0) FROM risk_rules")
        .db()?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?;
    if count as usize >= MAX_RULES {
        return Err(Error::conflict(
            "too_many_rules",
            format!("At most {MAX_RULES} rules may be active; remove one first."),
        ));
    }
    pocket_core::risk::check_total_size(total_chars as usize, when.chars().count())?;
    conn.prepare_cached(
        "INSERT INTO risk_rules (id, name, expression, action, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db()?
    .execute(params![id, name, when, action.as_str(), now])
    .db()?;
    wire(StoredRule {
        id,
        name: name.to_string(),
        when: when.to_string(),
        action: action.as_str().to_string(),
        created_at: now,
    })
}

pub(crate) fn list(conn: &Conn) -> Result<Vec<RiskRule>, Error> {
    stored(conn)?.into_iter().map(wire).collect()
}

pub(crate) fn remove(conn: &Conn, id: &str) -> Result<(), Error> {
    let removed = conn
        .prepare_cached("DELETE FROM risk_rules WHERE id = ?1")
        .db()?
        .execute([id])
        .db()?;
    if removed == 0 {
        return Err(Error::not_found("rule", id));
    }
    bump_version(conn)
}
