//! API tokens: who may read and change a store through `buildstate serve`.
//!
//! A token is shown once, when it is created: `bst_<id>_<secret>`. The store keeps the
//! public `id` (12 lowercase hex digits, what `token list` shows and a request is looked
//! up by) and the SHA-256 of the secret (64 hex digits of a 256-bit random value) —
//! never the secret — so a request costs one lookup by id and one constant-time
//! comparison, not one slow hash per stored token. A secret this long needs no slow
//! hash: it cannot be guessed, only stolen, and the hash makes a stolen store useless
//! for signing in.
//!
//! Pure data: the caller draws the random bytes and hashes (the store crate does both).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The prefix of every token's text, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "bst_";
/// Hex digits of a token's public id.
pub const TOKEN_ID_LEN: usize = 12;
/// Hex digits of a token's secret (256 bits).
pub const TOKEN_SECRET_LEN: usize = 64;

/// What a token may do. Each scope includes the ones before it: `write` can read,
/// `admin` can write (and manage tokens, webhooks and the catalog's removals).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope that is not `read`, `write` or `admin`, or an empty list of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown scope `{0}`: use read, write or admin (comma-separated)")]
    UnknownScope(String),
    #[error("a token needs at least one scope: read, write or admin")]
    NoScope,
    #[error("not a buildstate token: expected bst_ followed by 12 and 64 hex digits")]
    Malformed,
    #[error("not a token id: expected 12 lowercase hex digits")]
    BadId,
}

impl FromStr for Scope {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Scope::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| TokenError::UnknownScope(crate::text::shorten(s, 20)))
    }
}

/// The scopes of a token: a non-empty set, stored as `read,write`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Result<Scopes, TokenError> {
        let set: BTreeSet<Scope> = scopes.into_iter().collect();
        if set.is_empty() { Err(TokenError::NoScope) } else { Ok(Scopes(set)) }
    }

    /// Whether these scopes allow what `needed` allows: the highest one held is at
    /// least `needed`.
    pub fn allow(&self, needed: Scope) -> bool {
        self.0.last().is_some_and(|top| *top >= needed)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl FromStr for Scopes {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed: Result<Vec<Scope>, _> =
            s.split(',').filter(|p| !p.trim().is_empty()).map(str::parse).collect();
        Scopes::new(parsed?)
    }
}

impl TryFrom<String> for Scopes {
    type Error = TokenError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scopes> for String {
    fn from(s: Scopes) -> String {
        s.to_string()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&words.join(","))
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A token's public id: 12 lowercase hex digits.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
// The API document's pattern: the constructor's check, for clients and fuzzers.
#[schemars(extend("pattern" = r"^[0-9a-f]{12}$"))]
pub struct TokenId(String);

impl TokenId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of 6 random bytes.
    pub fn from_bytes(bytes: [u8; TOKEN_ID_LEN / 2]) -> TokenId {
        TokenId(hex(&bytes))
    }
}

impl FromStr for TokenId {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_hex(s, TOKEN_ID_LEN) { Ok(TokenId(s.to_owned())) } else { Err(TokenError::BadId) }
    }
}

impl TryFrom<String> for TokenId {
    type Error = TokenError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TokenId> for String {
    fn from(id: TokenId) -> String {
        id.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A token's text as a client presents it, split into its id and secret. Its `Debug`
/// hides the secret, so that it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret {
    pub id: TokenId,
    secret: String,
}

impl TokenSecret {
    /// From 6 random bytes for the id and 32 for the secret.
    pub fn from_bytes(id: [u8; TOKEN_ID_LEN / 2], secret: [u8; TOKEN_SECRET_LEN / 2]) -> TokenSecret {
        TokenSecret { id: TokenId::from_bytes(id), secret: hex(&secret) }
    }

    /// The secret part, to hash.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The whole text, to show once.
    pub fn reveal(&self) -> String {
        format!("{TOKEN_PREFIX}{}_{}", self.id, self.secret)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSecret({TOKEN_PREFIX}{}_…)", self.id)
    }
}

impl FromStr for TokenSecret {
    type Err = TokenError;
    /// `bst_<id>_<secret>`, surrounding whitespace ignored (a token pasted from a file).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.trim().strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
        if !is_hex(id, TOKEN_ID_LEN) || !is_hex(secret, TOKEN_SECRET_LEN) {
            return Err(TokenError::Malformed);
        }
        Ok(TokenSecret { id: TokenId(id.to_owned()), secret: secret.to_owned() })
    }
}

/// A token as stored: everything but the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenRecord {
    pub id: TokenId,
    /// Who or what it is for (`ci-aws`): unique among the store's tokens.
    pub name: crate::Name,
    pub scopes: Scopes,
    /// SHA-256 of the secret, lowercase hex.
    pub secret_sha256: String,
    pub created_at: Timestamp,
    /// After this, the token is refused; `None`: never.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked; it is refused from then on.
    pub revoked_at: Option<Timestamp>,
}

impl TokenRecord {
    /// Whether the token may be used at `now`.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    /// `active`, `expired` or `revoked`, as `token list` shows it.
    pub fn standing(&self, now: Timestamp) -> &'static str {
        match (self.revoked_at, self.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(e)) if now >= e => "expired",
            _ => "active",
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths, so that how
/// long a refusal takes says nothing about how much of a hash matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_include_the_lower_ones() {
        let write: Scopes = "write".parse().expect("scopes");
        assert!(write.allow(Scope::Read) && write.allow(Scope::Write) && !write.allow(Scope::Admin));
        let read: Scopes = " read , READ ".parse().expect("scopes");
        assert_eq!(read.to_string(), "read");
        assert!(!read.allow(Scope::Write));
        assert_eq!("".parse::<Scopes>(), Err(TokenError::NoScope));
        assert!(matches!("read,wrte".parse::<Scopes>(), Err(TokenError::UnknownScope(s)) if s == "wrte"));
    }

    #[test]
    fn token_text_round_trips_and_hides_its_secret() {
        let t = TokenSecret::from_bytes([0xab; 6], [0x01; 32]);
        let text = t.reveal();
        assert!(text.starts_with("bst_abababababab_0101"));
        assert_eq!(text.parse::<TokenSecret>().expect("parse"), t);
        assert_eq!(format!(" {text}\n").parse::<TokenSecret>().expect("trimmed"), t);
        assert!(!format!("{t:?}").contains("0101"));
        for bad in [
            "",
            "bst_",
            "bst_abababababab",
            "xyz_abababababab_01",
            &text.to_uppercase(),
            &text[..text.len() - 1],
        ] {
            assert_eq!(bad.parse::<TokenSecret>(), Err(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn expired_and_revoked_tokens_are_unusable() {
        let now = Timestamp::from_second(1_000_000).expect("time");
        let mut r = TokenRecord {
            id: "0123456789ab".parse().expect("id"),
            name: crate::Name::new("ci").expect("name"),
            scopes: "read".parse().expect("scopes"),
            secret_sha256: "00".repeat(32),
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        assert!(r.usable(now));
        r.expires_at = Some(now);
        assert!(!r.usable(now));
        assert_eq!(r.standing(now), "expired");
        r.revoked_at = Some(now);
        assert_eq!(r.standing(now), "revoked");
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
