//! Country calling codes, so a wallet can take a number typed the local way
//! (`138 0000 0001` in China) and send it as E.164 (`+8613800000001`).

/// ISO 3166-1 alpha-2 → the country's calling code (digits after `+`); the countries
/// Pocket is configured for most often. `None` for any other: the wallet then asks for
/// the `+` form.
pub fn calling_code(country: &str) -> Option<&'static str> {
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
    let country = country.to_ascii_uppercase();
    CODES
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, code)| *code)
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
    use super::{calling_code, to_e164};

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
    fn known_and_unknown_countries() {
        assert_eq!(calling_code("CN"), Some("86"));
        assert_eq!(calling_code("cn"), Some("86"));
        assert_eq!(calling_code("US"), Some("1"));
        assert_eq!(calling_code("XX"), None);
    }
}
