//! The Pocket Connector Protocol, version 1: what Pocket and an out-of-process
//! connector say to each other over HTTP(S) (`docs/CONNECTORS.md` is its reference).
//!
//! Every request, every response and every notification is signed with the
//! connector's shared secret:
//!
//! `Pocket-Connector-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<METHOD> <path>\n<body>")>`
//!
//! (the path with its query, the body exactly as sent, empty for a GET). The method
//! and path are signed so a signed body cannot be replayed to another operation;
//! the time so it cannot be replayed later: a receiver refuses a signature older or
//! newer than [`TOLERANCE_SECONDS`]. Responses sign the request's method and path.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the signature.
pub const HEADER: &str = "pocket-connector-signature";
/// How far a signature's time may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 300;

fn mac(secret: &str, t: i64, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut m = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return Vec::new(),
    };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(method.as_bytes());
    m.update(b" ");
    m.update(path.as_bytes());
    m.update(b"\n");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// The header value signing `body` of `method path` at `unix_seconds`.
pub fn sign(secret: &str, unix_seconds: i64, method: &str, path: &str, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac(secret, unix_seconds, method, path, body))
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

/// Checks a signature header against the message, in constant time.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    now_unix_seconds: i64,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let mut t = None;
    let mut given = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => given.push(hex::decode(v).map_err(|_| Refused::Malformed)?),
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
    let expected = mac(secret, t, method, path, body);
    if given
        .iter()
        .any(|g| bool::from(g.as_slice().ct_eq(&expected)))
    {
        Ok(())
    } else {
        Err(Refused::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_the_time_the_operation_and_the_body() {
        let h = sign("s3cret", 1_700_000_000, "POST", "/v1/charges", b"{\"a\":1}");
        let ok = |secret, h: &str, now, method, path, body: &[u8]| {
            verify(secret, Some(h), now, method, path, body)
        };
        assert_eq!(
            ok(
                "s3cret",
                &h,
                1_700_000_100,
                "POST",
                "/v1/charges",
                b"{\"a\":1}"
            ),
            Ok(())
        );
        assert_eq!(
            ok(
                "s3cret",
                &h,
                1_700_000_100,
                "POST",
                "/v1/charges",
                b"{\"a\":2}"
            ),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            ok(
                "s3cret",
                &h,
                1_700_000_100,
                "POST",
                "/v1/payouts",
                b"{\"a\":1}"
            ),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            ok(
                "other",
                &h,
                1_700_000_100,
                "POST",
                "/v1/charges",
                b"{\"a\":1}"
            ),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            ok(
                "s3cret",
                &h,
                1_700_000_301,
                "POST",
                "/v1/charges",
                b"{\"a\":1}"
            ),
            Err(Refused::Stale)
        );
        assert_eq!(
            verify("s3cret", None, 0, "GET", "/", b""),
            Err(Refused::Missing)
        );
        assert_eq!(
            verify("s3cret", Some("t=1,v1=zz"), 1, "GET", "/", b""),
            Err(Refused::Malformed)
        );
        assert_eq!(
            verify("s3cret", Some("v1=00"), 1, "GET", "/", b""),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn the_construction_is_plain_hmac_sha256() {
        // HMAC-SHA256("s3cret", "1700000000.GET /v1/operations/op_1\n"), by Python's hmac.
        assert_eq!(
            sign("s3cret", 1_700_000_000, "GET", "/v1/operations/op_1", b""),
            format!(
                "t=1700000000,v1={}",
                "8e44f3085b4494298c55d7c3f3b7bf715371192ad21a31c3e84ec4d6d4e7d5a1"
            )
        );
    }
}
