//! The EMVCo merchant-presented-mode QR payload of a payment: what any EMV QR parser
//! reads, and what the wallet opens. Fields are `ID LEN VALUE` with two-digit IDs and
//! lengths; the last, `63`, is a CRC-16/CCITT-FALSE over everything before it
//! including "6304".

use crate::money::Currency;
use crc::{CRC_16_IBM_3740, Crc};

/// The globally unique identifier of template 26 (reverse domain name).
pub const GUID: &str = "com.pocket.pay";
/// Merchant category code sent in tag 52 ("miscellaneous retail").
pub const DEFAULT_MCC: &str = "5999";

/// Where the merchant is, for tags 58 and 60.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrPlace {
    /// ISO 3166-1 alpha-2, e.g. "CN".
    pub country: String,
    pub city: String,
}

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

fn field(out: &mut String, id: &str, value: &str) {
    debug_assert!(value.len() <= 99, "EMV field {id} too long");
    out.push_str(id);
    out.push_str(&format!("{:02}", value.len()));
    out.push_str(value);
}

/// Printable ASCII only (EMV's alphanumeric special set), at most `max` characters.
fn ans(text: &str, max: usize, fallback: &str) -> String {
    let s: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(max)
        .collect();
    let s = s.trim().to_string();
    if s.is_empty() {
        fallback.to_string()
    } else {
        s
    }
}

/// The payload of a dynamic QR for one payment whose page is `url`.
pub fn payload(
    url: &str,
    amount_minor: i64,
    currency: Currency,
    merchant_name: &str,
    place: &QrPlace,
) -> String {
    let mut template = String::new();
    field(&mut template, "00", GUID);
    field(&mut template, "01", url);
    let mut out = String::new();
    field(&mut out, "00", "01");
    field(&mut out, "01", "12");
    field(&mut out, "26", &template);
    field(&mut out, "52", DEFAULT_MCC);
    field(&mut out, "53", &format!("{:03}", currency.numeric()));
    field(&mut out, "54", &currency.format_major(amount_minor));
    field(&mut out, "58", &ans(&place.country, 2, "CN"));
    field(&mut out, "59", &ans(merchant_name, 25, "Merchant"));
    field(&mut out, "60", &ans(&place.city, 15, "City"));
    out.push_str("6304");
    let crc = CRC16.checksum(out.as_bytes());
    out.push_str(&format!("{crc:04X}"));
    out
}

/// Longest payment URL that still fits template 26.
pub const MAX_URL_LEN: usize = 99 - 4 - GUID.len() - 4;

#[cfg(test)]
mod tests {
    use super::*;

    /// A small EMV TLV parser written for the test.
    fn parse(p: &str) -> Vec<(String, String)> {
        let mut out = vec![];
        let mut i = 0;
        while i < p.len() {
            let id = &p[i..i + 2];
            let len: usize = p[i + 2..i + 4].parse().unwrap();
            out.push((id.to_string(), p[i + 4..i + 4 + len].to_string()));
            i += 4 + len;
        }
        out
    }

    #[test]
    fn crc_is_ccitt_false() {
        assert_eq!(CRC16.checksum(b"123456789"), 0x29B1);
    }

    #[test]
    fn payload_has_the_contract_tags_and_a_valid_crc() {
        let cny = Currency::parse("CNY", "c").unwrap();
        let place = QrPlace {
            country: "CN".into(),
            city: "Shanghai".into(),
        };
        let p = payload(
            "http://127.0.0.1:8080/pay/pay_abc",
            2598,
            cny,
            "Tea House 茶馆",
            &place,
        );
        let fields = parse(&p);
        let get = |id: &str| {
            fields
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("00"), "01");
        assert_eq!(get("01"), "12");
        assert_eq!(get("53"), "156");
        assert_eq!(get("54"), "25.98");
        assert_eq!(get("58"), "CN");
        assert_eq!(get("59"), "Tea House");
        assert_eq!(get("60"), "Shanghai");
        let t = parse(&get("26"));
        assert_eq!(t[0], ("00".into(), GUID.into()));
        assert_eq!(t[1].1, "http://127.0.0.1:8080/pay/pay_abc");
        let (body, crc) = p.split_at(p.len() - 4);
        assert!(body.ends_with("6304"));
        assert_eq!(crc, format!("{:04X}", CRC16.checksum(body.as_bytes())));
        let jpy = Currency::parse("JPY", "c").unwrap();
        assert!(payload("u", 500, jpy, "M", &place).contains("5303392540350"));
    }
}
