//! Pseudonymization at the door: source-side identifiers become keyed HMACs before anything is
//! written anywhere, the lake and the dead-letter sink included.
//!
//! An agency that cannot pseudonymize before sending (it only has its own customer number) names
//! the field in `pseudonymization.fields`; Lantern replaces the value with
//! `px_` + 24 letters of HMAC-SHA-256(key, value). The same value always maps to the same token
//! under the same key, so households still link across agencies that use the same identifier,
//! and nobody without the key can go back. Tokens are letters only, so they satisfy the
//! `household_id` pattern and can never look like a resident registration number.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::contract::{letters, JsonObject};

/// Replaces configured fields with keyed pseudonyms.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: Vec<u8>,
    fields: Vec<String>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Pseudonymizer")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl Pseudonymizer {
    pub fn new(key: Vec<u8>, fields: Vec<String>) -> Pseudonymizer {
        Pseudonymizer { key, fields }
    }

    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The token for one raw value.
    pub fn token(&self, raw: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(raw.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        format!("px_{}", letters(u128::from_be_bytes(bytes), 24))
    }

    /// Replaces every configured top-level field that holds a string or a number. Returns how
    /// many values were replaced.
    pub fn apply(&self, obj: &mut JsonObject) -> usize {
        let mut n = 0;
        for f in &self.fields {
            let raw = match obj.get(f) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(x)) => x.to_string(),
                _ => continue,
            };
            obj.insert(f.clone(), Value::String(self.token(&raw)));
            n += 1;
        }
        n
    }

    /// Pseudonymizes configured fields inside raw text that could not be parsed as JSON (a
    /// dead-letter payload), by finding `"field"` `:` value and replacing the value. Unparseable
    /// text cannot be read with certainty, so the rule is conservative: if a configured field's
    /// name occurs anywhere more often than values were replaced for it, the whole text is
    /// withheld. Keeping a raw identifier is worse than losing an unreadable payload.
    pub fn apply_to_text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for f in &self.fields {
            let occurrences = text.matches(f.as_str()).count();
            if occurrences == 0 {
                continue;
            }
            let needle = format!("\"{f}\"");
            let mut replaced = 0;
            let mut from = 0;
            while let Some(pos) = out[from..].find(&needle) {
                let after = from + pos + needle.len();
                let Some(colon_rest) = out[after..].trim_start().strip_prefix(':') else {
                    from = after;
                    continue;
                };
                let value_text = colon_rest.trim_start();
                let value_start = out.len() - value_text.len();
                let Some(end) = raw_value_end(value_text) else {
                    break;
                };
                let raw = value_text[..end].trim_matches('"').to_string();
                let token = format!("\"{}\"", self.token(&raw));
                out.replace_range(value_start..value_start + end, &token);
                replaced += 1;
                from = value_start + token.len();
            }
            if replaced < occurrences {
                return format!(
                    "<withheld: unparseable record naming the pseudonymized field `{f}`>"
                );
            }
        }
        out
    }
}

/// The length of a JSON string or bare scalar at the start of `s`, if it ends in `s`.
fn raw_value_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() == Some(&b'"') {
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
        None
    } else {
        let end = s
            .find(|c: char| c == ',' || c == '}' || c == ']' || c.is_whitespace())
            .unwrap_or(s.len());
        (end > 0).then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p() -> Pseudonymizer {
        Pseudonymizer::new(
            b"0123456789abcdef-test".to_vec(),
            vec!["household_id".into(), "customer_no".into()],
        )
    }

    #[test]
    fn tokens_are_stable_keyed_and_digit_free() {
        let a = p().token("C-100234");
        assert_eq!(a, p().token("C-100234"));
        assert_ne!(a, p().token("C-100235"));
        let other = Pseudonymizer::new(b"another-key-0123456".to_vec(), vec![]);
        assert_ne!(a, other.token("C-100234"));
        assert!(a.starts_with("px_") && a.len() == 27);
        assert!(!a.bytes().any(|b| b.is_ascii_digit()));
    }

    #[test]
    fn apply_replaces_configured_fields_only() {
        let mut o = json!({"household_id": "C-100234", "customer_no": 5512, "source": "kepco"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(p().apply(&mut o), 2);
        assert_eq!(o["household_id"], json!(p().token("C-100234")));
        assert_eq!(o["customer_no"], json!(p().token("5512")));
        assert_eq!(o["source"], json!("kepco"));
    }

    #[test]
    fn raw_identifiers_never_survive_in_unparseable_text() {
        let text = r#"{"household_id": "C-100234", "customer_no": 5512, "x": "#;
        let out = p().apply_to_text(text);
        assert!(!out.contains("C-100234") && !out.contains("5512"), "{out}");
        assert!(out.contains(&p().token("C-100234")));
        let cut = r#"{"customer_no": "C-10023"#;
        let out = p().apply_to_text(cut);
        assert!(!out.contains("C-10023"), "{out}");
    }
}
