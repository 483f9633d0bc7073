//! The Pocket Connector Protocol, version 2: what Pocket and an out-of-process
//! connector say to each other over HTTPS (`docs/CONNECTORS.md` is its reference).
//!
//! Every message is signed with the connector's shared secret, in the header
//! [`HEADER`]. A **request** (Pocket's calls, and the connector's notifications) signs
//! its time, a nonce of the sender's, its method and path and its body:
//!
//! `t=<unix s>,n=<nonce>,v2=<hex HMAC-SHA256(secret, "v2.<t>.<n>.<METHOD> <path>\n<body>")>`
//!
//! A **response** signs its time, its status code and body, *and the request it
//! answers*: that request's nonce, method, path and the SHA-256 of its body:
//!
//! `t=<unix s>,v2=<hex HMAC-SHA256(secret, "v2.<t>.<n>.<status>.<METHOD> <path>.<hex SHA-256(request body)>\n<body>")>`
//!
//! Each of Pocket's requests has a fresh random nonce, so a signed answer is good for
//! the one request it was made for: replayed to another request (another charge on
//! the same path, the same charge later) it does not verify. Times are checked within
//! [`TOLERANCE_SECONDS`] of the receiver's clock.
//!
//! Version 1 signed a response over its request's method and path only: every charge
//! shares `/v1/charges`, so one signed "succeeded" answered any charge for 300 s.

use crate::{OpAnswer, OpKind, OpStatus};
use hmac::{Hmac, Mac};
use pocket_core::Currency;
use pocket_core::money::MAX_AMOUNT_MINOR;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header carrying the signature.
pub const HEADER: &str = "pocket-connector-signature";
/// How far a signature's time may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 300;
/// A nonce is 16 to 64 characters of `[A-Za-z0-9_-]`.
const NONCE_CHARS: std::ops::RangeInclusive<usize> = 16..=64;

/// The request a message is, or answers: what a response's signature is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub nonce: &'a str,
    pub method: &'a str,
    /// The path with its query.
    pub path: &'a str,
    pub body: &'a [u8],
}

fn mac(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut m = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return Vec::new(),
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn request_mac(secret: &str, t: i64, r: &Request<'_>) -> Vec<u8> {
    let head = format!("v2.{t}.{}.{} {}\n", r.nonce, r.method, r.path);
    mac(secret, &[head.as_bytes(), r.body])
}

fn response_mac(secret: &str, t: i64, to: &Request<'_>, status: u16, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "v2.{t}.{}.{status}.{} {}.{}\n",
        to.nonce,
        to.method,
        to.path,
        hex::encode(Sha256::digest(to.body))
    );
    mac(secret, &[head.as_bytes(), body])
}

/// A fresh nonce for a request: 128 random bits, hex.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The header value signing request `r` at `unix_seconds`.
pub fn sign_request(secret: &str, unix_seconds: i64, r: &Request<'_>) -> String {
    format!(
        "t={unix_seconds},n={},v2={}",
        r.nonce,
        hex::encode(request_mac(secret, unix_seconds, r))
    )
}

/// The header value signing a response (`status`, `body`) to request `to`.
pub fn sign_response(
    secret: &str,
    unix_seconds: i64,
    to: &Request<'_>,
    status: u16,
    body: &[u8],
) -> String {
    format!(
        "t={unix_seconds},v2={}",
        hex::encode(response_mac(secret, unix_seconds, to, status, body))
    )
}

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Malformed,
    Stale,
    Mismatch,
}

/// A signature header, parsed: its time, its nonce (requests only) and its MACs.
struct Parsed<'a> {
    t: i64,
    nonce: Option<&'a str>,
    given: Vec<Vec<u8>>,
}

fn parse(header: Option<&str>, now_unix_seconds: i64) -> Result<Parsed<'_>, Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let (mut t, mut nonce, mut given) = (None, None, Vec::new());
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("n", v)) => nonce = Some(v),
            Some(("v2", v)) => given.push(hex::decode(v).map_err(|_| Refused::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(Refused::Malformed)?;
    if given.is_empty() {
        return Err(Refused::Malformed);
    }
    if (now_unix_seconds - t).abs() > TOLERANCE_SECONDS {
        return Err(Refused::Stale);
    }
    Ok(Parsed { t, nonce, given })
}

fn any_equal(given: &[Vec<u8>], expected: &[u8]) -> Result<(), Refused> {
    if given
        .iter()
        .any(|g| bool::from(g.as_slice().ct_eq(expected)))
    {
        Ok(())
    } else {
        Err(Refused::Mismatch)
    }
}

fn nonce_ok(n: &str) -> bool {
    NONCE_CHARS.contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a request's signature (a connector checking Pocket's call, Pocket checking
/// a notification), in constant time; returns the request's nonce, which its answer
/// must sign.
pub fn verify_request<'h>(
    secret: &str,
    header: Option<&'h str>,
    now_unix_seconds: i64,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<&'h str, Refused> {
    let p = parse(header, now_unix_seconds)?;
    let nonce = p.nonce.filter(|n| nonce_ok(n)).ok_or(Refused::Malformed)?;
    let r = Request {
        nonce,
        method,
        path,
        body,
    };
    any_equal(&p.given, &request_mac(secret, p.t, &r))?;
    Ok(nonce)
}

/// Checks a response's signature: made for request `to`, with this status and body.
pub fn verify_response(
    secret: &str,
    header: Option<&str>,
    now_unix_seconds: i64,
    to: &Request<'_>,
    status: u16,
    body: &[u8],
) -> Result<(), Refused> {
    let p = parse(header, now_unix_seconds)?;
    any_equal(&p.given, &response_mac(secret, p.t, to, status, body))
}

/// Longest operation id, decline code or card token field Pocket reads.
const MAX_ID_CHARS: usize = 64;

fn id_ok(s: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A decline code Pocket keeps and shows: `[a-z0-9_]{1,64}`.
pub(crate) fn decline_code_ok(s: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn kind_name(k: OpKind) -> &'static str {
    match k {
        OpKind::Charge => "charge",
        OpKind::Payout => "payout",
    }
}

/// An operation's answer as the protocol writes it: `operation_id`, `kind`, `amount`,
/// `currency`, `status`, `decline_code`.
pub fn answer_json(a: &OpAnswer) -> Value {
    let (status, decline_code) = match &a.status {
        OpStatus::Pending => ("pending", None),
        OpStatus::Succeeded => ("succeeded", None),
        OpStatus::Failed { decline_code } => ("failed", Some(decline_code.as_str())),
    };
    json!({
        "operation_id": a.operation_id, "kind": kind_name(a.kind), "amount": a.amount,
        "currency": a.currency, "status": status, "decline_code": decline_code,
    })
}

/// Reads an operation's answer, checking every field it asserts: an id of
/// `[A-Za-z0-9_-]{1,64}`, a kind, an amount of `1..=MAX_AMOUNT_MINOR`, an ISO 4217
/// currency, a status, and for `failed` a decline code of `[a-z0-9_]{1,64}`. The error
/// says which field is wrong.
pub fn read_answer(v: &Value) -> Result<OpAnswer, String> {
    let text = |f: &str| v.get(f).and_then(Value::as_str);
    let operation_id = text("operation_id")
        .filter(|s| id_ok(s))
        .ok_or("`operation_id` is missing or not [A-Za-z0-9_-]{1,64}")?;
    let kind = match text("kind") {
        Some("charge") => OpKind::Charge,
        Some("payout") => OpKind::Payout,
        _ => return Err("`kind` must be charge or payout".into()),
    };
    let amount = v
        .get("amount")
        .and_then(Value::as_i64)
        .filter(|a| (1..=MAX_AMOUNT_MINOR).contains(a))
        .ok_or("`amount` must be a positive integer of minor units")?;
    let currency = text("currency")
        .and_then(|c| Currency::parse(c, "currency").ok())
        .ok_or("`currency` is not an ISO 4217 code")?;
    let status = match (text("status"), v.get("decline_code")) {
        (Some("pending"), _) => OpStatus::Pending,
        (Some("succeeded"), _) => OpStatus::Succeeded,
        (Some("failed"), code) => {
            let code = match code {
                None | Some(Value::Null) => "declined",
                Some(c) => c
                    .as_str()
                    .filter(|c| decline_code_ok(c))
                    .ok_or("`decline_code` is not [a-z0-9_]{1,64}")?,
            };
            OpStatus::Failed {
                decline_code: code.to_string(),
            }
        }
        _ => return Err("`status` must be pending, succeeded or failed".into()),
    };
    Ok(OpAnswer {
        operation_id: operation_id.to_string(),
        kind,
        amount,
        currency: currency.code().to_string(),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "0123456789abcdef0123456789abcdef";

    fn charge(body: &'static [u8]) -> Request<'static> {
        Request {
            nonce: NONCE,
            method: "POST",
            path: "/v1/charges",
            body,
        }
    }

    #[test]
    fn a_request_signature_binds_time_nonce_method_path_and_body() {
        let r = charge(b"{\"a\":1}");
        let h = sign_request("s3cret", 1_700_000_000, &r);
        let check = |secret, now, method, path, body: &[u8]| {
            verify_request(secret, Some(&h), now, method, path, body)
        };
        assert_eq!(
            check("s3cret", 1_700_000_100, "POST", "/v1/charges", b"{\"a\":1}"),
            Ok(NONCE)
        );
        for (secret, method, path, body) in [
            ("s3cret", "POST", "/v1/charges", &b"{\"a\":2}"[..]),
            ("s3cret", "POST", "/v1/payouts", b"{\"a\":1}"),
            ("s3cret", "GET", "/v1/charges", b"{\"a\":1}"),
            ("other", "POST", "/v1/charges", b"{\"a\":1}"),
        ] {
            assert_eq!(
                check(secret, 1_700_000_100, method, path, body),
                Err(Refused::Mismatch)
            );
        }
        assert_eq!(
            check("s3cret", 1_700_000_301, "POST", "/v1/charges", b"{\"a\":1}"),
            Err(Refused::Stale)
        );
        // Another nonce under the same MAC does not verify.
        let swapped = h.replace(NONCE, "ffffffffffffffffffffffffffffffff");
        assert_eq!(
            verify_request(
                "s3cret",
                Some(&swapped),
                1_700_000_000,
                "POST",
                "/v1/charges",
                b"{\"a\":1}"
            ),
            Err(Refused::Mismatch)
        );
        for bad in [
            "t=1,v2=zz",
            "v2=00",
            "t=1,v2=00",
            "t=1,n=short,v2=00",
            "t=1,n=0123456789abcdef0123456789abcde!,v2=00",
        ] {
            assert_eq!(
                verify_request("s3cret", Some(bad), 1, "GET", "/", b""),
                Err(Refused::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify_request("s3cret", None, 0, "GET", "/", b""),
            Err(Refused::Missing)
        );
    }

    #[test]
    fn an_answer_verifies_only_for_the_request_it_answers() {
        let asked = charge(b"{\"operation_id\":\"op_1\"}");
        let body = b"{\"status\":\"succeeded\"}";
        let h = sign_response("s3cret", 1_700_000_000, &asked, 200, body);
        let check = |to: &Request<'_>, status, body: &[u8]| {
            verify_response("s3cret", Some(&h), 1_700_000_010, to, status, body)
        };
        assert_eq!(check(&asked, 200, body), Ok(()));
        // The same answer replayed to another charge: another nonce, another body.
        let other_nonce = Request {
            nonce: "ffffffffffffffffffffffffffffffff",
            ..asked.clone()
        };
        let other_body = charge(b"{\"operation_id\":\"op_2\"}");
        let other_path = Request {
            path: "/v1/payouts",
            ..asked.clone()
        };
        for to in [&other_nonce, &other_body, &other_path] {
            assert_eq!(check(to, 200, body), Err(Refused::Mismatch));
        }
        assert_eq!(check(&asked, 404, body), Err(Refused::Mismatch));
        assert_eq!(
            check(&asked, 200, b"{\"status\":\"failed\"}"),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify_response("s3cret", Some(&h), 1_700_000_301, &asked, 200, body),
            Err(Refused::Stale)
        );
    }

    #[test]
    fn the_construction_is_plain_hmac_sha256() {
        // By Python's hmac and hashlib (docs/CONNECTORS.md):
        // hmac.new(b"s3cret", b"v2.1700000000.0123456789abcdef0123456789abcdef.GET /v1/operations/op_1\n", sha256)
        let r = Request {
            nonce: NONCE,
            method: "GET",
            path: "/v1/operations/op_1",
            body: b"",
        };
        assert_eq!(
            sign_request("s3cret", 1_700_000_000, &r),
            format!("t=1700000000,n={NONCE},v2={}", REQUEST_VECTOR)
        );
        // hmac.new(b"s3cret", b"v2.1700000001.<nonce>.200.GET /v1/operations/op_1.<sha256 of b''>\n{}", sha256)
        assert_eq!(
            sign_response("s3cret", 1_700_000_001, &r, 200, b"{}"),
            format!("t=1700000001,v2={}", RESPONSE_VECTOR)
        );
    }

    #[test]
    fn an_answer_is_read_only_when_every_field_is_sane() {
        let good = json!({"operation_id": "top_1", "kind": "charge", "amount": 100,
                          "currency": "CNY", "status": "failed", "decline_code": "card_declined"});
        let a = read_answer(&good).unwrap();
        assert_eq!(answer_json(&a), good);
        let with = |field: &str, value: Value| {
            let mut v = good.clone();
            v[field] = value;
            read_answer(&v)
        };
        for (field, value) in [
            ("operation_id", json!("=HYPERLINK(\"x\")")),
            ("operation_id", json!("a".repeat(65))),
            ("operation_id", json!(7)),
            ("kind", json!("refund")),
            ("amount", json!(0)),
            ("amount", json!(-5)),
            ("amount", json!(1.5)),
            ("amount", json!(MAX_AMOUNT_MINOR + 1)),
            ("currency", json!("XXY")),
            ("currency", json!("cny\u{0}")),
            ("status", json!("maybe")),
            ("decline_code", json!("<img src=x>")),
        ] {
            assert!(with(field, value.clone()).is_err(), "{field} = {value}");
        }
        assert_eq!(
            with("decline_code", Value::Null).unwrap().status,
            OpStatus::Failed {
                decline_code: "declined".into()
            }
        );
    }

    const REQUEST_VECTOR: &str = "00d323f875b73e187d41ba395d9340215486ad27e04b61aa02e33877d61d2154";
    const RESPONSE_VECTOR: &str =
        "444628353d95f5f472c1f4011e28aa8d579606129f357068f61a3e5998ab058d";
}
