//! Free text from people and tools: error messages, reasons, notes, metadata.
//!
//! Policy (documented in the README): text is stored verbatim — quotes, SQL keywords and
//! non-ASCII are data, never syntax, because every store binds parameters. Control
//! characters other than newline and tab (NUL, ESC, BEL, …) are replaced with a visible
//! `\u{..}` escape so that stored text cannot corrupt terminals, C-string consumers or
//! log viewers. Text over a field's limit keeps its head and its tail — the end of a
//! failing tool's output is where the error is — with a marker saying how much was cut.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("metadata key `{0}` is not valid: use 1-128 characters from a-z A-Z 0-9 . _ - : /")]
    BadKey(String),
    #[error(
        "metadata value for `{key}` is {len} bytes once control characters are escaped; the limit is {max} bytes (strip colour codes, or store the text as an artifact)"
    )]
    ValueTooLong { key: String, len: usize, max: usize },
    #[error("details must be a JSON object, for example '{{\"task\": \"install agent\"}}': {0}")]
    BadDetails(String),
    #[error("details are {len} bytes of JSON; the limit is {max} bytes")]
    DetailsTooLarge { len: usize, max: usize },
}

/// Largest accepted `details` JSON document, serialized.
pub const MAX_DETAILS_BYTES: usize = 256 * 1024;
/// Largest metadata value.
pub const MAX_META_VALUE_BYTES: usize = 4 * 1024;

/// Cleans free text for storage: escapes control characters and bounds the length to
/// `max_bytes` (at a character boundary), keeping head and tail around a marker.
pub fn clean_text(raw: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_bytes.saturating_add(64)));
    for ch in raw.chars() {
        if ch.is_control() && ch != '\n' && ch != '\t' {
            out.push_str(&format!("\\u{{{:x}}}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    if out.len() <= max_bytes {
        return out;
    }
    let cut = out.len() - max_bytes;
    // The count is of the escaped text; a runner's step keeps its whole output in its
    // attempt log, but text given by hand (`state fail --error @FILE`) has none.
    let marker = format!("\n… [{cut} bytes cut by buildstate] …\n");
    // Keep an eighth for the head (what was being run) and the rest for the tail.
    let budget = max_bytes.saturating_sub(marker.len());
    let head_len = floor_boundary(&out, budget / 8);
    let tail_start = ceil_boundary(&out, out.len() - (budget - head_len));
    let mut bounded = String::with_capacity(max_bytes);
    bounded.push_str(&out[..head_len]);
    bounded.push_str(&marker);
    bounded.push_str(&out[tail_start..]);
    bounded
}

/// A short, single-line rendering of untrusted text for error messages.
pub(crate) fn shorten(raw: &str, max_chars: usize) -> String {
    let cleaned: String =
        raw.chars().map(|c| if c.is_control() { '?' } else { c }).take(max_chars + 1).collect();
    if cleaned.chars().count() > max_chars {
        let mut s: String = cleaned.chars().take(max_chars).collect();
        s.push('…');
        s
    } else {
        cleaned
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// A metadata key: short, printable, safe to use in URLs and file names.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
// The API document's pattern: the constructor's check, for clients and fuzzers.
#[schemars(extend("pattern" = r"^[A-Za-z0-9._:/-]{1,128}$"))]
pub struct MetaKey(String);

impl MetaKey {
    pub fn new(raw: &str) -> Result<Self, TextError> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
        if ok { Ok(MetaKey(raw.to_owned())) } else { Err(TextError::BadKey(shorten(raw, 40))) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MetaKey {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MetaKey::new(&s)
    }
}

impl From<MetaKey> for String {
    fn from(k: MetaKey) -> String {
        k.0
    }
}

impl fmt::Display for MetaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A metadata value: cleaned text, refused (not truncated) when too long, because a
/// cut-off image id or URL would be silently wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct MetaValue(String);

/// Values read from documents pass the same checks as values typed by people.
impl TryFrom<String> for MetaValue {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MetaValue::new(&MetaKey("value".to_owned()), &s)
    }
}

impl From<MetaValue> for String {
    fn from(v: MetaValue) -> String {
        v.0
    }
}

impl MetaValue {
    /// The limit applies to the value as stored, after control characters are escaped:
    /// checking the raw text let 4,000 bytes of coloured tool output (each ESC becomes
    /// `\u{1b}`, six bytes) be stored at 6 KiB, and then every read of the build failed
    /// this same check.
    pub fn new(key: &MetaKey, raw: &str) -> Result<Self, TextError> {
        // Bounded before cleaning too, so a huge input is refused without copying it.
        let cleaned = (raw.len() <= MAX_META_VALUE_BYTES).then(|| clean_text(raw, usize::MAX));
        match cleaned {
            Some(value) if value.len() <= MAX_META_VALUE_BYTES => Ok(MetaValue(value)),
            _ => Err(TextError::ValueTooLong {
                key: key.0.clone(),
                len: cleaned.map_or(raw.len(), |v| v.len()),
                max: MAX_META_VALUE_BYTES,
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses failure details: a JSON object of bounded size.
pub fn details_object(raw: &str) -> Result<BTreeMap<String, serde_json::Value>, TextError> {
    if raw.len() > MAX_DETAILS_BYTES {
        return Err(TextError::DetailsTooLarge { len: raw.len(), max: MAX_DETAILS_BYTES });
    }
    serde_json::from_str(raw).map_err(|e| TextError::BadDetails(e.to_string()))
}

/// The words that store errors carry as `&'static str` (a kind of record). A client of
/// the HTTP API reads them back into the same type; a word that is not one of these (a
/// newer server's) reads as `record`, so that a message stays a sentence.
pub fn static_word(word: &str) -> &'static str {
    const WORDS: &[&str] = &["build", "build number", "record", "token", "token id", "webhook"];
    WORDS.iter().copied().find(|w| *w == word).unwrap_or("record")
}

/// One path component made of `raw`: only `a-z 0-9 . _ -` (anything else becomes `_`),
/// never empty, never starting with `.` — what the runner names a build's log directory
/// and files with, and the server finds them by, so that no stored name can make a path
/// leave the logs directory.
pub fn path_component(raw: &str) -> String {
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') { c } else { '_' }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') { format!("_{safe}") } else { safe }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_quotes_and_sql_verbatim_and_escapes_controls() {
        let raw = "it's \"quoted\"; DROP TABLE builds; --\0\x1b[31mred\x07\n\tok";
        assert_eq!(
            clean_text(raw, 1024),
            "it's \"quoted\"; DROP TABLE builds; --\\u{0}\\u{1b}[31mred\\u{7}\n\tok"
        );
    }

    #[test]
    fn bounds_huge_text_keeping_head_and_tail() {
        let raw = format!("HEAD{}TAIL", "é".repeat(600 * 1024));
        let out = clean_text(&raw, 64 * 1024);
        assert!(out.len() <= 64 * 1024, "{} bytes", out.len());
        assert!(out.starts_with("HEAD"));
        assert!(out.ends_with("TAIL"));
        assert!(out.contains("bytes cut by buildstate"));
    }

    #[test]
    fn meta_values_are_bounded_as_stored_and_read_back() {
        let key = MetaKey::new("tool_output").expect("key");
        // 3,000 bytes raw, ~9,500 once every ESC is escaped: refused, not stored.
        let coloured = "\x1b[31mred\x1b[0m".repeat(250);
        assert!(coloured.len() < MAX_META_VALUE_BYTES);
        assert!(matches!(MetaValue::new(&key, &coloured), Err(TextError::ValueTooLong { .. })));
        // Whatever is accepted reads back through the same check.
        let fits = "\x1b[1m".repeat(MAX_META_VALUE_BYTES / 10);
        let value = MetaValue::new(&key, &fits).expect("fits once escaped");
        assert!(value.as_str().len() <= MAX_META_VALUE_BYTES);
        let again = MetaValue::try_from(value.as_str().to_owned()).expect("reads back");
        assert_eq!(again, value);
    }

    #[test]
    fn meta_keys_and_values() {
        assert!(MetaKey::new("ami/us-east-1").is_ok());
        assert!(MetaKey::new("").is_err());
        assert!(MetaKey::new("a b").is_err());
        assert!(MetaKey::new("x'; DROP").is_err());
        let k = MetaKey::new("k").expect("valid key");
        assert!(MetaValue::new(&k, &"x".repeat(5000)).is_err());
        assert_eq!(MetaValue::new(&k, "a\0b").map(|v| v.0), Ok("a\\u{0}b".to_owned()));
    }

    #[test]
    fn details_must_be_an_object() {
        assert!(details_object(r#"{"task":"x"}"#).is_ok());
        assert!(details_object("[1]").is_err());
        assert!(details_object("{").is_err());
    }
}
