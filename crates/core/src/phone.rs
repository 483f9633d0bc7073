//! Country calling codes, so a wallet can take a number typed the local way
//! (`138 0000 0001` in China) and send it as E.164 (`+8613800000001`).

/// ISO 3166-1 alpha-2 → the country's calling code (digits after `+`); the countries
/// Pocket is configured for most often. `None` for any other: the wallet then asks for
/// the `+` form.
pub fn calling_code(country: &str) -> Option<&'static str> {
    let country = country.to_ascii_uppercase();
    CODES
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, code)| *code)
}

/// The countries [`calling_code`] knows, with their calling codes.
const CODES: [(&str, &str); 22] = [
    ("AU", "61"),
    ("CA", "1"),
    ("CN", "86"),
    ("DE", "49"),
    ("FR", "33"),
    ("GB", "44"),
    ("HK", "852"),
    ("ID", "62"),
    ("IN", "91"),
    ("JP", "81"),
    ("KR", "82"),
    ("MO", "853"),
    ("MY", "60"),
    ("NZ", "64"),
    ("PH", "63"),
    ("SG", "65"),
    ("TH", "66"),
    ("TW", "886"),
    ("US", "1"),
    ("VN", "84"),
    ("AE", "971"),
    ("SA", "966"),
];

/// An E.164 number as someone other than its owner may see it: the calling code, then
/// the national number with its middle hidden — `+86 138****0001`. At most the first 3
/// and always the last 4 digits show, and at least 3 stay hidden; a number whose calling
/// code is not one [`calling_code`] knows shows only its last 4 (`+****0001`). The
/// apps drop the `+86 ` of their own country (`138****0001`).
pub fn masked(e164: &str) -> String {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    let code = CODES
        .iter()
        .map(|(_, code)| *code)
        .filter(|code| digits.starts_with(code))
        .max_by_key(|code| code.len());
    let (prefix, national) = match code {
        Some(code) => (format!("+{code} "), &digits[code.len()..]),
        None => ("+".to_string(), ""),
    };
    let n = national.chars().count();
    let shown_front = match n {
        11.. => 3,
        9..=10 => 2,
        _ => 0,
    };
    let last4: String = digits
        .chars()
        .skip(digits.chars().count().saturating_sub(4))
        .collect();
    let front: String = national.chars().take(shown_front).collect();
    let least_hidden = if shown_front > 0 { 3 } else { 4 };
    let hidden = n.saturating_sub(shown_front + 4).max(least_hidden);
    format!("{prefix}{front}{}{last4}", "*".repeat(hidden))
}

/// [`masked`] as a person of the country whose `calling_code` is given reads it: without
/// their own calling code (`138****0001`), with anyone else's.
pub fn masked_locally(e164: &str, calling_code: Option<&str>) -> String {
    let shown = masked(e164);
    match calling_code.and_then(|code| shown.strip_prefix(&format!("+{code} "))) {
        Some(national) => national.to_string(),
        None => shown,
    }
}

/// serde helper: an optional E.164 number, [`masked`].
pub fn ser_masked<S: serde::Serializer>(e164: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match e164 {
        Some(number) => s.serialize_str(&masked(number)),
        None => s.serialize_none(),
    }
}

/// Most characters of a typed phone number looked at.
const MAX_TYPED_CHARS: usize = 64;

/// What a person types between digits: spaces, brackets, dots and dashes.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '.' | '-')
}

/// A phone number as a person types it — `+86 138 0000 0001`, `0086 …`, or the local
/// way, `138 0000 0001`, in the country whose `calling_code` (digits only) is given —
/// as E.164, or `None` when it is not one (`+`, then 8 to 15 digits, the first not 0).
/// A local number's one trunk `0` goes (`020 7946 0000` in GB → `+442079460000`).
/// The one parser: the wallet's, the console's and the operator's numbers all go
/// through it on the server.
pub fn to_e164(typed: &str, calling_code: Option<&str>) -> Option<String> {
    if typed.chars().count() > MAX_TYPED_CHARS {
        return None;
    }
    let raw: String = typed.chars().filter(|c| !is_separator(*c)).collect();
    let digits = if let Some(rest) = raw.strip_prefix('+') {
        rest.to_string()
    } else if let Some(rest) = raw.strip_prefix("00") {
        rest.to_string()
    } else {
        let local = raw.strip_prefix('0').unwrap_or(&raw);
        format!("{}{local}", calling_code?)
    };
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::{calling_code, masked, masked_locally, to_e164};

    #[test]
    fn numbers_typed_every_way_become_e164() {
        let cn = Some("86");
        for typed in [
            "138 0000 0001",
            "13800000001",
            "138-0000-0001",
            "(138) 0000.0001",
            "+86 138 0000 0001",
            "0086 138 0000 0001",
            "+8613800000001",
        ] {
            assert_eq!(
                to_e164(typed, cn).as_deref(),
                Some("+8613800000001"),
                "{typed}"
            );
        }
        assert_eq!(
            to_e164("020 7946 0000", Some("44")).as_deref(),
            Some("+442079460000")
        );
        // Without a country, only the international forms.
        assert_eq!(to_e164("138 0000 0001", None), None);
        assert_eq!(
            to_e164("+1 415 555 0100", None).as_deref(),
            Some("+14155550100")
        );
        for bad in [
            "",
            "+",
            "+0123456789",
            "138 0000 000a",
            "+1234567",
            "1",
            "+86 138 0000 0001 2345 6",
        ] {
            assert_eq!(to_e164(bad, cn), None, "{bad}");
        }
        assert_eq!(to_e164(&"1".repeat(65), cn), None);
    }

    #[test]
    fn masked_numbers_hide_the_middle() {
        assert_eq!(masked("+8613800000001"), "+86 138****0001");
        assert_eq!(masked("+14155550100"), "+1 41****0100");
        assert_eq!(masked("+85291234567"), "+852 ****4567");
        assert_eq!(masked("+442079460000"), "+44 20****0000");
        assert_eq!(masked("+3725551234"), "+****1234");
        assert_eq!(masked_locally("+8613800000001", Some("86")), "138****0001");
        assert_eq!(masked_locally("+14155550100", Some("86")), "+1 41****0100");
        // However long, never more than 3 + 4 digits of it.
        let long = masked("+861380000000123");
        assert_eq!(long.chars().filter(|c| c.is_ascii_digit()).count(), 2 + 7);
    }

    #[test]
    fn known_and_unknown_countries() {
        assert_eq!(calling_code("CN"), Some("86"));
        assert_eq!(calling_code("cn"), Some("86"));
        assert_eq!(calling_code("US"), Some("1"));
        assert_eq!(calling_code("XX"), None);
    }
}
