//! The resident-registration-number guard.
//!
//! A Korean resident registration number (주민등록번호) names a person outright. Senders are
//! supposed to pseudonymize before they send, but mistakes happen, most often in free text such
//! as a council report's `note`. SPEC §1: a string that looks like one (6 digits, an optional
//! `-`, then 7 digits whose first is 1–8) rejects the whole record, and the dead-letter copy
//! carries the number masked.
//!
//! "Looks like" is read with digit boundaries: the 13 (or 6+7) digits must not be part of a
//! longer run of digits. Without that, every 20-digit account or message number would be
//! rejected, and those are not personal identifiers.

/// The character that replaces each digit of a masked number.
pub const MASK: char = '*';

/// Where one match sits in a string, as byte offsets.
fn find_at(bytes: &[u8], start: usize) -> Option<(usize, usize)> {
    let n = bytes.len();
    let mut i = start;
    while i + 13 <= n {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // Six leading digits.
        if !bytes[i..i + 6].iter().all(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        let mut j = i + 6;
        if j < n && bytes[j] == b'-' {
            j += 1;
        }
        if j + 7 <= n
            && bytes[j..j + 7].iter().all(u8::is_ascii_digit)
            && (b'1'..=b'8').contains(&bytes[j])
            && (j + 7 == n || !bytes[j + 7].is_ascii_digit())
        {
            return Some((i, j + 7));
        }
        i += 1;
    }
    None
}

/// True when `s` holds something that looks like a resident registration number.
pub fn contains_rrn(s: &str) -> bool {
    find_at(s.as_bytes(), 0).is_some()
}

/// `s` with every look-alike number's digits replaced by [`MASK`] (the `-` is kept, so a reader
/// sees what kind of thing was there). Text without one is returned unchanged.
///
/// ```
/// use lantern_contract::contract::rrn::mask_rrn;
/// assert_eq!(mask_rrn("주민번호 900101-1234567"), "주민번호 ******-*******");
/// // Phone numbers and longer digit runs are not identifiers and stay as they are.
/// assert_eq!(mask_rrn("010-1234-5678"), "010-1234-5678");
/// ```
pub fn mask_rrn(s: &str) -> std::borrow::Cow<'_, str> {
    let bytes = s.as_bytes();
    let Some(first) = find_at(bytes, 0) else {
        return std::borrow::Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut next = Some(first);
    while let Some((a, b)) = next {
        out.push_str(&s[last..a]);
        for &c in &bytes[a..b] {
            out.push(if c == b'-' { '-' } else { MASK });
        }
        last = b;
        next = find_at(bytes, b);
    }
    out.push_str(&s[last..]);
    std::borrow::Cow::Owned(out)
}

/// Masks look-alike numbers in bytes that may not even be UTF-8 (a dead-letter payload is kept
/// whatever it is). Invalid UTF-8 is replaced lossily first: a payload that cannot be decoded
/// cannot be shown faithfully anyway, and a hidden identifier in it must still be masked.
pub fn mask_rrn_bytes(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    mask_rrn(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_numbers_with_and_without_hyphen() {
        assert!(contains_rrn("900101-1234567"));
        assert!(contains_rrn("9001011234567"));
        assert!(contains_rrn("주민번호 850505-2345678 입니다"));
    }

    #[test]
    fn seventh_digit_must_be_one_to_eight() {
        assert!(!contains_rrn("900101-0234567"));
        assert!(!contains_rrn("900101-9234567"));
        for d in 1..=8 {
            assert!(contains_rrn(&format!("900101-{d}234567")), "digit {d}");
        }
    }

    #[test]
    fn longer_digit_runs_are_not_identifiers() {
        assert!(!contains_rrn("19001011234567"));
        assert!(!contains_rrn("90010112345678"));
        assert!(!contains_rrn("900101-12345678"));
        assert!(!contains_rrn("1234567890")); // a dong code
    }

    #[test]
    fn masking_hides_every_digit_and_keeps_the_rest() {
        assert_eq!(
            mask_rrn("call 900101-1234567 or 8501012345678."),
            "call ******-******* or *************."
        );
        assert_eq!(mask_rrn("nothing here"), "nothing here");
    }

    #[test]
    fn masking_bytes_survives_invalid_utf8() {
        let mut raw = b"\xff\xfe 900101-1234567".to_vec();
        raw.push(0xff);
        let masked = mask_rrn_bytes(&raw);
        assert!(masked.contains("******-*******"));
        assert!(!masked.contains("1234567"));
    }
}
