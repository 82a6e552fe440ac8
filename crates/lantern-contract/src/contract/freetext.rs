//! Masking free text (a council report's `note`) before anything is written: what a neighbour
//! writes about a household can carry a phone number, an e-mail address, a card or account
//! number, or a number that looks like a resident registration number without being one the
//! guard refuses. Each becomes stars (digits) or a placeholder, so the note keeps its sense
//! ("전화 010-****-**** 안 받음") without the identifier.

/// Digits in one run (separated at most by `-`, `.`, space or `/`) from which the run is masked:
/// phone numbers (9–11 digits), card (16) and account numbers (10–14) and RRN look-alikes (13).
/// Shorter runs (dates, amounts, ages, house numbers) stay.
const MASK_FROM_DIGITS: usize = 7;

/// The text with e-mail addresses replaced by `[이메일]` and every long digit run (see
/// [`MASK_FROM_DIGITS`]) starred, separators kept.
///
/// ```
/// use lantern_contract::contract::freetext::mask_free_text;
/// assert_eq!(mask_free_text("전화 010-1234-5678 안 받음"), "전화 ***-****-**** 안 받음");
/// assert_eq!(mask_free_text("kim@example.com 으로 연락"), "[이메일] 으로 연락");
/// assert_eq!(mask_free_text("3개월째 연체, 2026.10.01 방문"), "3개월째 연체, 2026.10.01 방문");
/// ```
pub fn mask_free_text(text: &str) -> String {
    let words: Vec<String> = text
        .split_inclusive(char::is_whitespace)
        .map(|w| {
            let core = w.trim_end();
            let at = core.find('@');
            if at.is_some_and(|i| i > 0 && core[i + 1..].contains('.')) {
                format!("[이메일]{}", &w[core.len()..])
            } else {
                w.to_string()
            }
        })
        .collect();
    mask_digit_runs(&words.concat())
}

fn mask_digit_runs(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let is_sep = |c: char| matches!(c, '-' | '.' | ' ' | '/');
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A run: digits, with single separators between digits.
        let start = i;
        let mut end = i;
        let mut digits = 0;
        let mut j = i;
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                digits += 1;
                end = j + 1;
                j += 1;
            } else if is_sep(chars[j]) && j + 1 < chars.len() && chars[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        if digits >= MASK_FROM_DIGITS && !looks_like_date(&chars[start..end]) {
            for c in out.iter_mut().take(end).skip(start) {
                if c.is_ascii_digit() {
                    *c = '*';
                }
            }
        }
        i = end.max(i + 1);
    }
    out.into_iter().collect()
}

/// `2026.10.01`, `2026-10-01`, `2026/10/01`: eight digits in 4-2-2 groups are a date.
fn looks_like_date(run: &[char]) -> bool {
    let s: String = run.iter().collect();
    let groups: Vec<&str> = s.split(['-', '.', '/', ' ']).collect();
    groups.len() == 3
        && groups[0].len() == 4
        && groups[1].len() <= 2
        && groups[2].len() <= 2
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13.3: phone numbers, e-mail addresses, card and account numbers and RRN
    /// look-alikes are masked; dates, amounts and short numbers stay.
    #[test]
    fn identifiers_in_a_note_are_masked_and_ordinary_numbers_kept() {
        for (input, want) in [
            ("010-1234-5678로 연락", "***-****-****로 연락"),
            ("집전화 02 123 4567", "집전화 ** *** ****"),
            (
                "카드 1234-5678-9012-3456 분실",
                "카드 ****-****-****-**** 분실",
            ),
            ("계좌 110-123-456789", "계좌 ***-***-******"),
            ("번호 9001011234567?", "번호 *************?"),
            ("메일 a.kim@mail.co.kr 확인", "메일 [이메일] 확인"),
            (
                "5만원 연체, 3층 302호, 2026-10-01",
                "5만원 연체, 3층 302호, 2026-10-01",
            ),
        ] {
            assert_eq!(mask_free_text(input), want, "{input}");
        }
    }
}
