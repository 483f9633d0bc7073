//! Payments: creation (pricing + policy at commit), the transitions out of `pending`,
//! holds (`authorized`: capture, release), refunds and expiry. Each transition is a
//! conditional UPDATE (`WHERE status = 'pending' AND expires_at > now`, `WHERE status =
//! 'authorized' AND capture_before > now`), so it holds even with several writers.

use super::Outcome;
use super::events::{self, Subject, emit};
use super::risk::{self, Risk};
use super::{Db, catalog, codes, cursor_seq, devices, ledger, stored_currency};
use crate::ids::new_id;
use crate::model::{Page, PageRequest, Refund};
use crate::sql::{Conn, Optional, Row, params};
use crate::{NewPayment, PaymentOwner};
use pocket_core::error::internal;
use pocket_core::hold::{self, CAPTURE_EXPIRED, Capture, Settlement};
use pocket_core::ledger::{AccountKind, Transfer, TransferKind};
use pocket_core::payment::{self, CaptureMethod, Decision, Payment, Status};
use pocket_core::policy::{Authentication, Policy};
use pocket_core::pricing::{PricedItem, price_cart};
use pocket_core::{Error, ErrorKind, code};
use std::collections::BTreeMap;

const COLS: &str = "id, merchant_id, merchant_name, customer_id, status, amount, currency, items, description,
    metadata, tier, window_seconds, authentication, created_at, expires_at, completed_at, amount_refunded, failure_code,
    qr_payload, capture, capture_within, capture_before, amount_captured, policy_rule,
    (SELECT c.name FROM customers c WHERE c.id = payments.customer_id
        AND payments.status IN ('authorized', 'succeeded', 'declined')),
    (SELECT c.phone FROM customers c WHERE c.id = payments.customer_id)";

/// A payment row as stored, before its text columns are decoded.
struct RawPayment {
    id: String,
    merchant: String,
    merchant_name: String,
    customer: Option<String>,
    status: String,
    amount: i64,
    currency: String,
    items: String,
    description: Option<String>,
    metadata: String,
    tier: String,
    window_seconds: i64,
    authentication: String,
    created_at: i64,
    expires_at: i64,
    completed_at: Option<i64>,
    amount_refunded: i64,
    failure_code: Option<String>,
    qr_payload: String,
    capture: String,
    capture_within: Option<i64>,
    capture_before: Option<i64>,
    amount_captured: Option<i64>,
    policy_rule: Option<String>,
    customer_name: Option<String>,
    customer_phone: Option<String>,
}

fn raw(r: &Row<'_>) -> crate::sql::Result<RawPayment> {
    Ok(RawPayment {
        id: r.get(0)?,
        merchant: r.get(1)?,
        merchant_name: r.get(2)?,
        customer: r.get(3)?,
        status: r.get(4)?,
        amount: r.get(5)?,
        currency: r.get(6)?,
        items: r.get(7)?,
        description: r.get(8)?,
        metadata: r.get(9)?,
        tier: r.get(10)?,
        window_seconds: r.get(11)?,
        authentication: r.get(12)?,
        created_at: r.get(13)?,
        expires_at: r.get(14)?,
        completed_at: r.get(15)?,
        amount_refunded: r.get(16)?,
        failure_code: r.get(17)?,
        qr_payload: r.get(18)?,
        capture: r.get(19)?,
        capture_within: r.get(20)?,
        capture_before: r.get(21)?,
        amount_captured: r.get(22)?,
        policy_rule: r.get(23)?,
        customer_name: r.get(24)?,
        customer_phone: r.get(25)?,
    })
}

fn decode(r: RawPayment) -> Result<Payment, Error> {
    let corrupt = |what: &str| {
        tracing::error!(payment = %r.id, what, "undecodable payment row");
        Error::internal()
    };
    let items: Vec<PricedItem> = serde_json::from_str(&r.items).map_err(|_| corrupt("items"))?;
    let metadata: BTreeMap<String, String> =
        serde_json::from_str(&r.metadata).map_err(|_| corrupt("metadata"))?;
    let status = Status::parse(&r.status).ok_or_else(|| corrupt("status"))?;
    let authentication =
        Authentication::parse(&r.authentication).ok_or_else(|| corrupt("authentication"))?;
    let capture = CaptureMethod::parse(&r.capture).ok_or_else(|| corrupt("capture"))?;
    // An automatic payment's captured amount is its amount, once it succeeded.
    let amount_captured = r.amount_captured.unwrap_or(match status {
        Status::Succeeded => r.amount,
        _ => 0,
    });
    Ok(Payment {
        object: "payment",
        merchant: r.merchant,
        merchant_name: r.merchant_name,
        customer: r.customer,
        customer_name: r.customer_name,
        customer_phone: r.customer_phone,
        status,
        amount: r.amount,
        currency: stored_currency(&r.currency)?,
        items,
        description: r.description,
        metadata,
        policy: Policy {
            tier: r.tier,
            window_seconds: r.window_seconds,
            authentication,
            rule: r.policy_rule,
        },
        created_at: r.created_at,
        expires_at: r.expires_at,
        completed_at: r.completed_at,
        amount_refunded: r.amount_refunded,
        failure_code: r.failure_code,
        qr_payload: r.qr_payload,
        capture,
        capture_before: r.capture_before,
        amount_captured,
        capture_within_seconds: r.capture_within,
        id: r.id,
    })
}

pub(crate) fn get(conn: &Conn, id: &str) -> Result<Option<Payment>, Error> {
    let sql = format!("SELECT {COLS} FROM payments WHERE id = ?1");
    conn.prepare_cached(&sql)
        .db()?
        .query_row([id], raw)
        .optional()
        .db()?
        .map(decode)
        .transpose()
}

fn must_get(conn: &Conn, id: &str) -> Result<Payment, Error> {
    get(conn, id)?.ok_or_else(|| Error::not_found("payment", id))
}

/// Who a payment is addressed to: the customer's id and phone.
struct Addressee {
    id: String,
    phone: String,
}

/// The merchant's name and the customer a new payment names (by id or phone), in
/// one statement.
fn merchant_and_customer(
    conn: &Conn,
    new: &NewPayment,
) -> Result<(String, Option<Addressee>), Error> {
    let Some(wanted) = &new.customer else {
        let name = conn
            .prepare_cached("SELECT name FROM merchants WHERE id = ?1")
            .db()?
            .query_row([&new.merchant_id], |r| r.get(0))
            .db()?;
        return Ok((name, None));
    };
    let column = super::customer_column(wanted);
    let sql = format!(
        "SELECT m.name, c.id, c.phone FROM merchants m
         LEFT JOIN customers c ON c.{column} = ?2 WHERE m.id = ?1"
    );
    type Found = (String, Option<String>, Option<String>);
    let (name, id, phone): Found = conn
        .prepare_cached(&sql)
        .db()?
        .query_row(params![new.merchant_id, wanted], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .db()?;
    match (id, phone) {
        (Some(id), Some(phone)) => Ok((name, Some(Addressee { id, phone }))),
        _ => Err(Error::not_found("customer", wanted).with_param("customer")),
    }
}

/// A customer's phone, by id.
fn addressee(conn: &Conn, id: String) -> Result<Addressee, Error> {
    let phone = conn
        .prepare_cached("SELECT phone FROM customers WHERE id = ?1")
        .db()?
        .query_row([&id], |r| r.get(0))
        .db()?;
    Ok(Addressee { id, phone })
}

fn amount_mismatch(total: i64) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "amount_mismatch",
        format!("`amount` differs from the cart's total of {total} computed from your catalog."),
    )
    .with_param("amount")
}

pub(crate) fn create(
    conn: &Conn,
    now: i64,
    new: NewPayment,
    risk: &Risk,
) -> Result<Payment, Error> {
    let (merchant_name, mut customer) = merchant_and_customer(conn, &new)?;
    let (items, amount) = priced(conn, &new)?;
    let policy = new.policy.decide(amount, new.currency, "amount")?;
    let capture_within_seconds = hold::capture_within(new.capture, new.capture_within_seconds)?;
    let expires_at = payment::deadline_ms(now, &policy, new.expires_in_seconds)?;
    let id = new_id("pay");
    if let Some(charge) = &new.code {
        customer = Some(addressee(conn, codes::claim(conn, now, charge, &id)?)?);
    }
    let qr_payload = qr_payload(&new, &id, amount, &merchant_name);
    let mut p = Payment {
        id,
        object: "payment",
        merchant: new.merchant_id,
        merchant_name,
        // The name shows once the customer has acted (paid, held, declined): a phone
        // typed at a till tells the merchant no name.
        customer_name: None,
        customer_phone: customer.as_ref().map(|c| c.phone.clone()),
        customer: customer.map(|c| c.id),
        status: Status::Pending,
        amount,
        currency: new.currency,
        items,
        description: new.description,
        metadata: new.metadata,
        policy,
        created_at: now,
        expires_at,
        completed_at: None,
        amount_refunded: 0,
        failure_code: None,
        qr_payload,
        capture: new.capture,
        capture_before: None,
        amount_captured: 0,
        capture_within_seconds,
    };
    // The rules that read only the payment apply now; all of them, and the daily
    // limit, again when it is confirmed. A payer who showed a payment code is known
    // now: every rule and the limit apply at once, so the stored policy (and the
    // `payment.created` event) already asks for the proof the rules want.
    let raised = match (&new.code, &p.customer) {
        (Some(_), Some(payer)) => risk.screen(conn, now, &p, payer)?,
        _ => risk.screen_new(conn, &p)?,
    };
    raise(&mut p, raised);
    insert(conn, &p)?;
    emit_for(conn, now, &p)?;
    // A code in the `small` tier (after the screening above, which is the confirm's
    // own) is paid now, as the wallet's confirm pays: a refusal (funds) refuses the
    // charge and writes nothing.
    match p.customer.clone() {
        Some(payer) if new.code.is_some() && code::pays_at_once(p.policy.authentication) => {
            pay(conn, now, p, &payer)
        }
        _ => Ok(p),
    }
}

/// The payment's lines and amount: its cart priced from the catalog as it is in this
/// transaction (and checked against `amount` when both are given), or its amount.
fn priced(conn: &Conn, new: &NewPayment) -> Result<(Vec<PricedItem>, i64), Error> {
    match (&new.items, new.amount) {
        (Some(lines), check) => {
            let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
            let products = catalog::get_many(conn, &new.merchant_id, &skus)?;
            let (items, total) = price_cart(lines, new.currency, |sku| products.get(sku))?;
            if check.is_some_and(|a| a != total) {
                return Err(amount_mismatch(total));
            }
            Ok((items, total))
        }
        (None, Some(amount)) => Ok((Vec::new(), amount)),
        (None, None) => Err(Error::missing("amount").with_param("amount")),
    }
}

/// The EMVCo QR payload of payment `id`: its page, amount and merchant.
fn qr_payload(new: &NewPayment, id: &str, amount: i64, merchant_name: &str) -> String {
    pocket_core::emv::payload(
        &format!("{}/pay/{id}", new.qr.base_url),
        amount,
        new.currency,
        merchant_name,
        &new.qr.place,
    )
}

/// The new payment's row.
fn insert(conn: &Conn, p: &Payment) -> Result<(), Error> {
    let items_json = serde_json::to_string(&p.items).map_err(internal("payment items as JSON"))?;
    let metadata_json =
        serde_json::to_string(&p.metadata).map_err(internal("payment metadata as JSON"))?;
    conn.prepare_cached(
        "INSERT INTO payments (id, merchant_id, merchant_name, customer_id, status, amount, currency, items,
             description, metadata, tier, window_seconds, authentication, created_at, expires_at, qr_payload,
             capture, capture_within, policy_rule)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )
    .db()?
    .execute(params![
        p.id,
        p.merchant,
        p.merchant_name,
        p.customer,
        p.amount,
        p.currency.code(),
        items_json,
        p.description,
        metadata_json,
        p.policy.tier,
        p.policy.window_seconds,
        p.policy.authentication.as_str(),
        p.created_at,
        p.expires_at,
        p.qr_payload,
        p.capture.as_str(),
        p.capture_within_seconds,
        p.policy.rule
    ])
    .db()?;
    Ok(())
}

/// Applies what the risk rules raised (a stronger proof, and the rule that asked for it).
fn raise(p: &mut Payment, raised: Option<(Authentication, String)>) {
    if let Some((authentication, rule)) = raised {
        p.policy.authentication = authentication;
        p.policy.rule = Some(rule);
    }
}

/// Writes the event of the payment's current status.
fn emit_for(conn: &Conn, now: i64, p: &Payment) -> Result<(), Error> {
    emit_for_with(conn, now, p, None)
}

/// [`emit_for`], with more writes in the event's statement (see [`events::emit_with`]).
fn emit_for_with(
    conn: &Conn,
    now: i64,
    p: &Payment,
    also: Option<events::Also<'_>>,
) -> Result<(), Error> {
    events::emit_with(
        conn,
        now,
        p.status.event_type(),
        Subject {
            merchant_id: &p.merchant,
            customer_id: p.customer.as_deref(),
            payment_id: Some(&p.id),
        },
        p,
        also,
    )
}

/// Moves a pending payment to a final status (not `succeeded`: see [`confirm`]).
/// Returns `false` when it was no longer pending.
fn finish(conn: &Conn, now: i64, p: &mut Payment, to: Status) -> Result<bool, Error> {
    debug_assert!(to != Status::Pending && to != Status::Succeeded);
    let changed = conn
        .prepare_cached("UPDATE payments SET status = ?2, completed_at = ?3 WHERE id = ?1 AND status = 'pending'")
        .db()?
        .execute(params![p.id, to.as_str(), now])
        .db()?;
    if changed == 0 {
        return Ok(false);
    }
    p.status = to;
    p.completed_at = Some(now);
    emit_for(conn, now, p)?;
    Ok(true)
}

/// Expires `p` (committed) and answers `409 payment_expired`.
fn expire_and_refuse(conn: &Conn, now: i64, mut p: Payment) -> Result<Outcome<Payment>, Error> {
    finish(conn, now, &mut p, Status::Expired)?;
    Ok(Outcome::Refused(payment::payment_expired()))
}

fn not_pending() -> Error {
    Error::conflict("payment_not_pending", "This payment is no longer pending.")
}

/// A confirm as the wallet sent it: which payment, by whom, with what proof (and with
/// which device key, when it signed).
#[derive(Clone, Copy)]
pub(crate) struct Confirm<'a> {
    pub payment_id: &'a str,
    pub customer_id: &'a str,
    pub proof: payment::Proof,
    pub device_id: Option<&'a str>,
}

pub(crate) fn confirm(
    conn: &Conn,
    now: i64,
    confirm: &Confirm<'_>,
    risk: &Risk,
) -> Result<Outcome<Payment>, Error> {
    let Confirm {
        payment_id,
        customer_id,
        proof,
        device_id,
    } = *confirm;
    let mut p = must_get(conn, payment_id)?;
    if payment::decide_confirm(&p, customer_id, now)? == Decision::Expire {
        return expire_and_refuse(conn, now, p);
    }
    // The rules and limits as they are now, in this transaction, for this customer: a
    // rule added while the payment was pending applies; a block, a limit or a missing
    // proof leaves it pending and changes nothing (the wallet asks for the proof the
    // error names and sends it with the retry). A raise that is satisfied is recorded
    // on the payment with its success.
    let raised = risk.screen(conn, now, &p, customer_id)?;
    let raised_now = raised.is_some();
    raise(&mut p, raised);
    payment::check_proof(&p, proof)?;
    if raised_now {
        conn.prepare_cached(
            "UPDATE payments SET authentication = ?2, policy_rule = ?3 WHERE id = ?1",
        )
        .db()?
        .execute(params![
            p.id,
            p.policy.authentication.as_str(),
            p.policy.rule
        ])
        .db()?;
    }
    // A device key revoked after the signature was checked still loses: revocation
    // is read here, in the committing transaction.
    if let Some(device) = device_id
        && !devices::is_active(conn, customer_id, device)?
    {
        return Err(Error::new(
            ErrorKind::Authentication,
            "invalid_signature",
            "This device key is not active; register the device again.",
        ));
    }
    pay(conn, now, p, customer_id).map(Outcome::Done)
}

/// What a claim of a payment returns: its payer's name and phone.
const PAYER: &str = "(SELECT c.name FROM customers c WHERE c.id = ?2),
    (SELECT c.phone FROM customers c WHERE c.id = ?2)";

fn payer(r: &Row<'_>) -> crate::sql::Result<(String, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

/// Moves a pending payment whose proof and rules were checked to `customer_id`: held
/// for a manual capture, else paid (claimed, its transfer, the customer's figures and
/// its event).
fn pay(conn: &Conn, now: i64, mut p: Payment, customer_id: &str) -> Result<Payment, Error> {
    if p.capture == CaptureMethod::Manual {
        let held = authorize(conn, now, p, customer_id)?;
        risk::record(conn, now, customer_id, held.currency.code(), held.amount)?;
        return Ok(held);
    }
    // Claim the payment: only one confirm can move it out of pending, and only
    // before its deadline, whatever else runs concurrently.
    let claimed = conn
        .prepare_cached(&format!(
            "UPDATE payments SET status = 'succeeded', customer_id = ?2, completed_at = ?3
             WHERE id = ?1 AND status = 'pending' AND expires_at > ?3
               AND (customer_id IS NULL OR customer_id = ?2)
             RETURNING {PAYER}"
        ))
        .db()?
        .query_row(params![p.id, customer_id, now], payer)
        .optional()
        .db()?;
    let Some((name, phone)) = claimed else {
        return Err(not_pending());
    };
    (p.customer_name, p.customer_phone) = (Some(name), Some(phone));
    ledger::transfer(
        conn,
        now,
        &Transfer::new(
            (AccountKind::Wallet, customer_id),
            (AccountKind::Merchant, &p.merchant),
            p.amount,
            p.currency,
            TransferKind::Payment,
            &p.id,
        )?,
    )?;
    p.status = Status::Succeeded;
    p.customer = Some(customer_id.to_string());
    p.completed_at = Some(now);
    let money = (p.currency.code(), p.amount);
    risk::record_then_emit(conn, now, customer_id, money, |also| {
        emit_for_with(conn, now, &p, also)
    })?;
    Ok(p)
}

/// A confirm of a manual-capture payment: the amount is reserved in the wallet
/// (`402 insufficient_funds` when not available) and the payment `authorized` until
/// its capture deadline.
fn authorize(conn: &Conn, now: i64, mut p: Payment, customer_id: &str) -> Result<Payment, Error> {
    let capture_before = hold::capture_deadline(&p, now);
    let claimed = conn
        .prepare_cached(&format!(
            "UPDATE payments SET status = 'authorized', customer_id = ?2, authorized_at = ?3,
                 capture_before = ?4
             WHERE id = ?1 AND status = 'pending' AND expires_at > ?3
               AND (customer_id IS NULL OR customer_id = ?2)
             RETURNING {PAYER}"
        ))
        .db()?
        .query_row(params![p.id, customer_id, now, capture_before], payer)
        .optional()
        .db()?;
    let Some((name, phone)) = claimed else {
        return Err(not_pending());
    };
    (p.customer_name, p.customer_phone) = (Some(name), Some(phone));
    ledger::reserve(
        conn,
        (AccountKind::Wallet, customer_id),
        p.amount,
        p.currency,
    )?;
    p.status = Status::Authorized;
    p.customer = Some(customer_id.to_string());
    p.capture_before = Some(capture_before);
    emit_for(conn, now, &p)?;
    Ok(p)
}

/// Ends a hold without moving money: the reservation is released and the payment
/// `canceled` (`failure_code` says why when it was the deadline). `false` when it was no
/// longer authorized (or, unless `expired`, its deadline had passed).
fn release(
    conn: &Conn,
    now: i64,
    p: &mut Payment,
    failure_code: Option<&str>,
) -> Result<bool, Error> {
    let customer = p.customer.clone().ok_or_else(Error::internal)?;
    // A cancel releases only before the deadline; the deadline's own release after it.
    let sql = match failure_code {
        None => {
            "UPDATE payments SET status = 'canceled', completed_at = ?2
             WHERE id = ?1 AND status = 'authorized' AND capture_before > ?2"
        }
        Some(_) => {
            "UPDATE payments SET status = 'canceled', completed_at = ?2, failure_code = ?3
             WHERE id = ?1 AND status = 'authorized' AND capture_before <= ?2"
        }
    };
    let changed = match failure_code {
        None => conn.prepare_cached(sql).db()?.execute(params![p.id, now]),
        Some(code) => conn
            .prepare_cached(sql)
            .db()?
            .execute(params![p.id, now, code]),
    }
    .db()?;
    if changed == 0 {
        return Ok(false);
    }
    ledger::void_reserved(conn, (AccountKind::Wallet, &customer), p.amount, p.currency)?;
    p.status = Status::Canceled;
    p.completed_at = Some(now);
    p.failure_code = failure_code.map(String::from);
    emit_for(conn, now, p)?;
    Ok(true)
}

/// Releases an overdue hold (committed) and answers `409 capture_expired`.
fn release_and_refuse(conn: &Conn, now: i64, mut p: Payment) -> Result<Outcome<Payment>, Error> {
    release(conn, now, &mut p, Some(CAPTURE_EXPIRED))?;
    Ok(Outcome::Refused(hold::capture_expired()))
}

/// A capture of all or part of a hold by its merchant: the captured part moves to the
/// merchant as one transfer, the rest returns to the wallet's `available`.
pub(crate) fn capture(
    conn: &Conn,
    now: i64,
    payment_id: &str,
    merchant_id: &str,
    requested: Option<i64>,
) -> Result<Outcome<Payment>, Error> {
    let mut p = must_get(conn, payment_id)?;
    if p.merchant != merchant_id {
        return Err(Error::not_found("payment", payment_id));
    }
    let settlement: Settlement = match hold::decide_capture(&p, requested, now)? {
        Capture::Expire => return release_and_refuse(conn, now, p),
        Capture::Settle(s) => s,
    };
    let customer = p.customer.clone().ok_or_else(Error::internal)?;
    let claimed = conn
        .prepare_cached(
            "UPDATE payments SET status = 'succeeded', amount_captured = ?2, completed_at = ?3
             WHERE id = ?1 AND status = 'authorized' AND capture_before > ?3",
        )
        .db()?
        .execute(params![p.id, settlement.captured, now])
        .db()?;
    if claimed != 1 {
        return Err(Error::conflict(
            "payment_not_authorized",
            "This payment is no longer authorized.",
        ));
    }
    let captured = Transfer::new(
        (AccountKind::Wallet, &customer),
        (AccountKind::Merchant, &p.merchant),
        settlement.captured,
        p.currency,
        TransferKind::Payment,
        &p.id,
    )?;
    ledger::settle_reserved(conn, now, &captured, settlement.released)?;
    p.status = Status::Succeeded;
    p.amount_captured = settlement.captured;
    p.completed_at = Some(now);
    emit_for(conn, now, &p)?;
    Ok(Outcome::Done(p))
}

pub(crate) fn decline(
    conn: &Conn,
    now: i64,
    payment_id: &str,
    customer_id: &str,
) -> Result<Outcome<Payment>, Error> {
    let mut p = must_get(conn, payment_id)?;
    if payment::decide_decline(&p, customer_id, now)? == Decision::Expire {
        return expire_and_refuse(conn, now, p);
    }
    if !finish(conn, now, &mut p, Status::Declined)? {
        return Err(not_pending());
    }
    Ok(Outcome::Done(p))
}

pub(crate) fn cancel(
    conn: &Conn,
    now: i64,
    payment_id: &str,
    merchant_id: &str,
) -> Result<Outcome<Payment>, Error> {
    let mut p = must_get(conn, payment_id)?;
    if p.merchant != merchant_id {
        return Err(Error::not_found("payment", payment_id));
    }
    if p.status == Status::Authorized {
        if hold::decide_release(&p, now)? == Decision::Expire {
            return release_and_refuse(conn, now, p);
        }
        if !release(conn, now, &mut p, None)? {
            return Err(not_pending());
        }
        return Ok(Outcome::Done(p));
    }
    if payment::decide_cancel(&p, now)? == Decision::Expire {
        return expire_and_refuse(conn, now, p);
    }
    if !finish(conn, now, &mut p, Status::Canceled)? {
        return Err(not_pending());
    }
    Ok(Outcome::Done(p))
}

/// Sends a pending request to its customer's wallet again (`payment.reminded`: the
/// wallet opens it again), at most `MAX_REMINDERS` times: counted by the update that
/// claims the sending, so reminders at once never send more.
pub(crate) fn remind(
    conn: &Conn,
    now: i64,
    payment_id: &str,
    merchant_id: &str,
) -> Result<Outcome<Payment>, Error> {
    let p = must_get(conn, payment_id)?;
    if p.merchant != merchant_id {
        return Err(Error::not_found("payment", payment_id));
    }
    let sent: i64 = conn
        .prepare_cached("SELECT reminders FROM payments WHERE id = ?1")
        .db()?
        .query_row([payment_id], |r| r.get(0))
        .db()?;
    if payment::decide_remind(&p, sent, now)? == Decision::Expire {
        return expire_and_refuse(conn, now, p);
    }
    let claimed = conn
        .prepare_cached(
            "UPDATE payments SET reminders = reminders + 1
             WHERE id = ?1 AND status = 'pending' AND expires_at > ?2 AND reminders < ?3",
        )
        .db()?
        .execute(params![payment_id, now, payment::MAX_REMINDERS])
        .db()?;
    if claimed != 1 {
        // Another reminder (or the payment's end) committed first: decide on what is now.
        let p = must_get(conn, payment_id)?;
        payment::decide_remind(&p, payment::MAX_REMINDERS, now)?;
        return Err(not_pending());
    }
    events::emit(
        conn,
        now,
        "payment.reminded",
        Subject {
            merchant_id: &p.merchant,
            customer_id: p.customer.as_deref(),
            payment_id: Some(&p.id),
        },
        &p,
    )?;
    Ok(Outcome::Done(p))
}

/// Adds `amount` to the payment's refunded amount, if it stays within what was paid.
/// This condition and the `CHECK (amount_refunded <= amount)` both stop over-refunds,
/// under any concurrency: a second refund re-reads the row the first committed.
fn count_refunded(conn: &Conn, payment_id: &str, amount: i64) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE payments SET amount_refunded = amount_refunded + ?2
             WHERE id = ?1 AND status = 'succeeded'
               AND amount_refunded + ?2 <= COALESCE(amount_captured, amount)",
        )
        .db()?
        .execute(params![payment_id, amount])
        .db()?;
    if changed != 1 {
        return Err(Error::conflict(
            "refund_exceeds_payment",
            "Refunds may not exceed what was paid.",
        )
        .with_param("amount"));
    }
    Ok(())
}

pub(crate) fn refund(
    conn: &Conn,
    now: i64,
    payment_id: &str,
    merchant_id: &str,
    requested: Option<i64>,
    reason: Option<String>,
) -> Result<Refund, Error> {
    let p = must_get(conn, payment_id)?;
    if p.merchant != merchant_id {
        return Err(Error::not_found("payment", payment_id));
    }
    let amount = payment::decide_refund(&p, requested)?;
    let customer = p.customer.clone().ok_or_else(Error::internal)?;
    count_refunded(conn, &p.id, amount)?;
    let refund = Refund {
        id: new_id("re"),
        object: "refund",
        payment: p.id.clone(),
        amount,
        currency: p.currency,
        reason,
        status: "succeeded",
        created_at: now,
    };
    conn.prepare_cached(
        "INSERT INTO refunds (id, payment_id, amount, currency, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![refund.id, p.id, amount, p.currency.code(), refund.reason, now])
    .db()?;
    ledger::transfer(
        conn,
        now,
        &Transfer::new(
            (AccountKind::Merchant, merchant_id),
            (AccountKind::Wallet, &customer),
            amount,
            p.currency,
            TransferKind::Refund,
            &refund.id,
        )?,
    )?;
    emit(
        conn,
        now,
        "refund.succeeded",
        Subject {
            merchant_id,
            customer_id: Some(&customer),
            payment_id: Some(&p.id),
        },
        &refund,
    )?;
    Ok(refund)
}

pub(crate) fn list(
    conn: &Conn,
    owner: &PaymentOwner,
    status: Option<Status>,
    page: &PageRequest,
) -> Result<Page<Payment>, Error> {
    let (column, owner_id, customer) = match owner {
        PaymentOwner::Merchant(id) => ("merchant_id", id.as_str(), None),
        PaymentOwner::Customer(id) => ("customer_id", id.as_str(), None),
        PaymentOwner::MerchantCustomer { merchant, customer } => {
            ("merchant_id", merchant.as_str(), Some(customer.as_str()))
        }
    };
    let before = cursor_seq(
        conn,
        &format!("SELECT seq FROM payments WHERE id = ?1 AND {column} = ?2"),
        page.starting_after.as_deref(),
        owner_id,
    )?;
    let status_filter = if status.is_some() {
        "AND status = ?4"
    } else {
        "AND CAST(?4 AS TEXT) IS NULL"
    };
    let customer_filter = match customer {
        None => "AND CAST(?5 AS TEXT) IS NULL",
        Some(c) if super::customer_column(c) == "phone" => {
            "AND customer_id = (SELECT id FROM customers WHERE phone = ?5)"
        }
        Some(_) => "AND customer_id = ?5",
    };
    let sql = format!(
        "SELECT {COLS} FROM payments WHERE {column} = ?1 AND seq < ?2 {status_filter} {customer_filter}
         ORDER BY seq DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(
            params![
                owner_id,
                before,
                (page.limit + 1) as i64,
                status.map(|s| s.as_str()),
                customer
            ],
            raw,
        )
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(row.db()?)?);
    }
    Ok(Page::new(out, page.limit))
}

/// The earliest deadline the sweeper must act on: a pending payment's or a hold's.
pub(crate) fn next_deadline(conn: &Conn) -> Result<Option<i64>, Error> {
    let first = |sql: &str| -> Result<Option<i64>, Error> {
        conn.prepare_cached(sql)
            .db()?
            .query_row([], |r| r.get(0))
            .optional()
            .db()
    };
    let pending = first(
        "SELECT expires_at FROM payments WHERE status = 'pending' ORDER BY expires_at LIMIT 1",
    )?;
    let hold = first(
        "SELECT capture_before FROM payments WHERE status = 'authorized' ORDER BY capture_before LIMIT 1",
    )?;
    Ok(pending.into_iter().chain(hold).min())
}

pub(crate) fn expire_due(conn: &Conn, now: i64, limit: usize) -> Result<usize, Error> {
    // One statement claims the batch (each row still only from `pending`), and hands the
    // rows back as they now are, for their events.
    let sql = format!(
        "UPDATE payments SET status = 'expired', completed_at = ?1
         WHERE status = 'pending' AND id IN (SELECT id FROM payments
             WHERE status = 'pending' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2)
         RETURNING {COLS}"
    );
    let expired: Vec<RawPayment> = {
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let rows = stmt.query_map(params![now, limit as i64], raw).db()?;
        rows.collect::<crate::sql::Result<_>>().db()?
    };
    let mut count = expired.len();
    for r in expired {
        debug_assert!(r.status == Status::Expired.as_str());
        emit_for(conn, now, &decode(r)?)?;
    }
    // Holds get what the pending payments left, and at least a tenth of every batch:
    // a flash sale of expiries does not keep overdue holds reserved.
    count += release_due(conn, now, (limit - count).max(limit / 10).max(1))?;
    Ok(count)
}

/// Releases holds whose capture deadline has passed (`canceled`, `capture_expired`).
fn release_due(conn: &Conn, now: i64, limit: usize) -> Result<usize, Error> {
    let sql = format!(
        "SELECT {COLS} FROM payments WHERE status = 'authorized' AND capture_before <= ?1
         ORDER BY capture_before LIMIT ?2"
    );
    let due: Vec<RawPayment> = {
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let rows = stmt.query_map(params![now, limit as i64], raw).db()?;
        rows.collect::<crate::sql::Result<_>>().db()?
    };
    let mut released = 0;
    for r in due {
        let mut p = decode(r)?;
        if release(conn, now, &mut p, Some(CAPTURE_EXPIRED))? {
            released += 1;
        }
    }
    Ok(released)
}
