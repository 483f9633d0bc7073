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

#[cfg(test)]
mod tests {
    use super::calling_code;

    #[test]
    fn known_and_unknown_countries() {
        assert_eq!(calling_code("CN"), Some("86"));
        assert_eq!(calling_code("cn"), Some("86"));
        assert_eq!(calling_code("US"), Some("1"));
        assert_eq!(calling_code("XX"), None);
    }
}
