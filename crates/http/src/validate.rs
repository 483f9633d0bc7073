//! Field checks shared by the endpoints. Each names the parameter it refuses.

use pocket_core::Error;
use pocket_store::ids;
use std::collections::BTreeMap;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_METADATA_KEYS: usize = 20;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
pub const MAX_REASON_CHARS: usize = 500;

/// E.164: `+`, then 8 to 15 digits, the first not 0.
pub fn phone(value: &str, param: &str) -> Result<(), Error> {
    let digits = value.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            format!("`{param}` must be an E.164 phone number such as +8613800138000."),
        ))
    }
}

/// Non-blank text of at most `max_chars` characters, without control characters.
/// Characters no name may hold: controls, and the invisible ones that change how the
/// text around them reads — bidirectional overrides, embeddings and isolates (U+202E
/// shows "Tea House" as "esuoH aeT"), marks, zero-width space and the BOM. (The
/// zero-width joiner stays: emoji sequences need it.)
fn hides_or_reorders(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

pub fn text(value: &str, param: &str, max_chars: usize) -> Result<(), Error> {
    let n = value.chars().count();
    if value.trim().is_empty() || n > max_chars || value.chars().any(hides_or_reorders) {
        return Err(Error::invalid(
            param,
            format!("`{param}` must be 1 to {max_chars} characters of text."),
        ));
    }
    Ok(())
}

pub fn optional_text(value: Option<&str>, param: &str, max_chars: usize) -> Result<(), Error> {
    match value {
        Some(v) if v.chars().count() > max_chars => Err(Error::invalid(
            param,
            format!("`{param}` may be at most {max_chars} characters."),
        )),
        _ => Ok(()),
    }
}

pub fn metadata(m: &BTreeMap<String, String>) -> Result<(), Error> {
    if m.len() > MAX_METADATA_KEYS {
        return Err(Error::invalid(
            "metadata",
            format!("`metadata` may have at most {MAX_METADATA_KEYS} keys."),
        ));
    }
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(Error::invalid(
                "metadata",
                format!("`metadata` keys must be 1 to {MAX_METADATA_KEY_CHARS} characters."),
            ));
        }
        if v.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(Error::invalid(
                &format!("metadata.{k}"),
                format!("`metadata` values may be at most {MAX_METADATA_VALUE_CHARS} characters."),
            ));
        }
    }
    Ok(())
}

/// A `cus_` id or an E.164 phone.
pub fn customer_ref(value: &str, param: &str, country: &str) -> Result<String, Error> {
    if ids::is_id(value, "cus") {
        return Ok(value.to_string());
    }
    typed_phone(value, param, country).map_err(|_| {
        Error::invalid(
            param,
            format!(
                "`{param}` must be a customer id (cus_…) or a phone number: +8613800138000, or as typed locally (138 0013 8000)."
            ),
        )
    })
}

/// A phone number as a person types it in the server's `country` (see
/// [`pocket_core::phone::to_e164`]): its E.164 form.
pub fn typed_phone(value: &str, param: &str, country: &str) -> Result<String, Error> {
    let code = pocket_core::phone::calling_code(country);
    pocket_core::phone::to_e164(value, code).ok_or_else(|| {
        Error::invalid(
            param,
            format!("`{param}` must be a phone number: +8613800138000, or as typed locally (138 0013 8000)."),
        )
    })
}

/// An RFC 3339 timestamp given as `param`, as epoch milliseconds.
pub fn timestamp(text: &str, param: &str) -> Result<i64, Error> {
    pocket_core::time::parse_rfc3339_ms(text).ok_or_else(|| {
        Error::invalid(
            param,
            format!("`{param}` must be an RFC 3339 timestamp, such as 2026-12-03T00:00:00+08:00."),
        )
    })
}

/// Refuses URLs that are malformed or (unless allowed) point inside the network.
pub(crate) fn check_webhook_url(
    state: &crate::AppState,
    url: &str,
    param: &str,
) -> Result<(), Error> {
    pocket_webhooks::ssrf::check_url(url, state.settings.allow_private_webhooks)
        .map(|_| ())
        .map_err(|why| Error::invalid(param, format!("`{param}` {why}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_controls_and_bidirectional_overrides() {
        for bad in [
            "Tea\u{202E}esuoH",
            "\u{2066}Tea\u{2069}",
            "Tea\u{200F}",
            "Tea\u{200B}House",
            "\u{FEFF}Tea",
            "Tea\nHouse",
            "Tea\u{0}",
        ] {
            assert!(text(bad, "name", 80).is_err(), "{bad:?}");
        }
        for good in ["Tea House", "茶馆", "Café 👩\u{200D}🍳", "O'Brien & Sons"] {
            assert!(text(good, "name", 80).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn phones() {
        assert!(phone("+8613800138000", "p").is_ok());
        assert!(phone("+12345678", "p").is_ok());
        for bad in [
            "8613800138000",
            "+1234567",
            "+1234567890123456",
            "+0123456789",
            "+12a4567890",
            "+",
        ] {
            assert!(phone(bad, "p").is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_limits() {
        let mut m: BTreeMap<String, String> =
            (0..20).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(metadata(&m).is_ok());
        m.insert("k20".into(), "v".into());
        assert!(metadata(&m).is_err());
        let long: BTreeMap<_, _> = [("a".repeat(41), String::new())].into();
        assert!(metadata(&long).is_err());
    }
}
