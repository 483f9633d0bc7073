//! Device keys: parsing the public JWK a browser's WebCrypto exports, and verifying
//! the raw `r‖s` ECDSA P-256 / SHA-256 signatures it makes over a payment's
//! confirmation message (`pocket_core::payment::confirm_message`).

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use p256::PublicKey;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use pocket_core::error::internal;
use pocket_core::{Error, ErrorKind};
use serde_json::Value;

/// Largest JWK text accepted.
const MAX_JWK_BYTES: usize = 1024;

fn bad_key(why: &str) -> Error {
    Error::invalid("public_key", format!("`public_key` {why}"))
}

/// Checks that `jwk` is an ECDSA P-256 public key and returns its canonical JWK.
pub fn parse_public_key(jwk: &Value) -> Result<String, Error> {
    let Some(o) = jwk.as_object() else {
        return Err(bad_key(
            "must be a JWK object such as WebCrypto's exportKey(\"jwk\") gives.",
        ));
    };
    if o.get("kty").and_then(Value::as_str) != Some("EC")
        || o.get("crv").and_then(Value::as_str) != Some("P-256")
    {
        return Err(bad_key(
            "must be an EC key on curve P-256 (kty \"EC\", crv \"P-256\").",
        ));
    }
    if o.contains_key("d") {
        return Err(bad_key(
            "contains a private key (\"d\"); send only the public key.",
        ));
    }
    let text = jwk.to_string();
    if text.len() > MAX_JWK_BYTES {
        return Err(bad_key("is too large."));
    }
    let key =
        PublicKey::from_jwk_str(&text).map_err(|_| bad_key("is not a valid P-256 public key."))?;
    Ok(key.to_jwk_string())
}

pub fn invalid_signature(why: &str) -> Error {
    Error::new(ErrorKind::Authentication, "invalid_signature", why).with_param("signature")
}

/// Verifies `signature` (base64url of the 64-byte `r‖s`) by `public_key_jwk` over `message`.
pub fn verify(public_key_jwk: &str, message: &[u8], signature: &str) -> Result<(), Error> {
    let raw = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(signature))
        .map_err(|_| {
            invalid_signature("`signature` must be base64url of the raw 64-byte r‖s signature.")
        })?;
    let sig = Signature::from_slice(&raw).map_err(|_| {
        invalid_signature("`signature` must be base64url of the raw 64-byte r‖s signature.")
    })?;
    let key = PublicKey::from_jwk_str(public_key_jwk).map_err(internal("a stored device key"))?;
    VerifyingKey::from(&key)
        .verify(message, &sig)
        .map_err(|_| invalid_signature("The device signature does not match this payment."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    fn jwk(k: &SigningKey) -> Value {
        serde_json::from_str(&PublicKey::from(k.verifying_key()).to_jwk_string()).unwrap()
    }

    fn sign(k: &SigningKey, msg: &str) -> String {
        let s: Signature = k.sign(msg.as_bytes());
        URL_SAFE_NO_PAD.encode(s.to_bytes())
    }

    #[test]
    fn verifies_only_the_signed_message_by_the_registered_key() {
        let k = key(7);
        let public = parse_public_key(&jwk(&k)).unwrap();
        let sig = sign(&k, "pocket-confirm:v1:pay_a:100:CNY:mer_a:x");
        assert!(verify(&public, b"pocket-confirm:v1:pay_a:100:CNY:mer_a:x", &sig).is_ok());
        assert!(verify(&public, b"pocket-confirm:v1:pay_a:101:CNY:mer_a:x", &sig).is_err());
        assert!(verify(&public, b"pocket-confirm:v1:pay_b:100:CNY:mer_a:x", &sig).is_err());
        let other = sign(&key(8), "pocket-confirm:v1:pay_a:100:CNY:mer_a:x");
        assert_eq!(
            verify(&public, b"pocket-confirm:v1:pay_a:100:CNY:mer_a:x", &other)
                .unwrap_err()
                .code,
            "invalid_signature"
        );
        for bad in ["", "not base64!", "AAAA", &"A".repeat(86)] {
            assert_eq!(
                verify(&public, b"m", bad).unwrap_err().code,
                "invalid_signature",
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_keys_that_are_not_p256_public_keys() {
        let good = jwk(&key(7));
        let mut private = good.clone();
        private["d"] = Value::String("AAAA".into());
        let mut other_curve = good.clone();
        other_curve["crv"] = Value::String("P-384".into());
        let mut off_curve = good.clone();
        off_curve["y"] = off_curve["x"].clone();
        let rsa = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        for bad in [
            private,
            other_curve,
            off_curve,
            rsa,
            Value::String("x".into()),
            serde_json::json!({"kty": "EC", "crv": "P-256"}),
        ] {
            assert_eq!(
                parse_public_key(&bad).unwrap_err().param.as_deref(),
                Some("public_key"),
                "{bad}"
            );
        }
    }
}
