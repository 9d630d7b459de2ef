//! Issuing and checking API tokens: the random secret, its hash, and the one lookup and
//! constant-time comparison a request costs ([`buildstate_core::TokenSecret`]).

use buildstate_core::{Name, Scopes, TokenRecord, TokenSecret, constant_time_eq, hex};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::{Store, StoreError, StoreResult};

/// SHA-256 of a token's secret, lowercase hex: what the store keeps.
pub fn secret_sha256(secret: &TokenSecret) -> String {
    hex(&Sha256::digest(secret.secret().as_bytes()))
}

/// A new token: its record for the store and its secret, to show once. The id and the
/// secret come from the operating system's random source.
pub fn issue(
    name: Name,
    scopes: Scopes,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> StoreResult<(TokenRecord, TokenSecret)> {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    fill_random(&mut id)?;
    fill_random(&mut secret)?;
    let token = TokenSecret::from_bytes(id, secret);
    let record = TokenRecord {
        id: token.id.clone(),
        name,
        scopes,
        secret_sha256: secret_sha256(&token),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    Ok((record, token))
}

fn fill_random(buf: &mut [u8]) -> StoreResult<()> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new().fill(buf).map_err(|_| StoreError::Backend {
        context: "draw random bytes for a token",
        source: "the system's random source failed".into(),
    })
}

/// Why a presented token was refused. Callers answer every one alike (an unknown
/// token and a wrong secret must look the same from outside); the reason is for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Unknown,
    WrongSecret,
    Expired,
    Revoked,
}

/// The token a request presents, if it is one of the store's, its secret matches and it
/// is usable at `now`.
pub async fn authenticate(
    store: &dyn Store,
    presented: &str,
    now: Timestamp,
) -> StoreResult<Result<TokenRecord, Refusal>> {
    let Ok(token) = presented.parse::<TokenSecret>() else { return Ok(Err(Refusal::Malformed)) };
    let Some(record) = store.token(&token.id).await? else { return Ok(Err(Refusal::Unknown)) };
    if !constant_time_eq(secret_sha256(&token).as_bytes(), record.secret_sha256.as_bytes()) {
        return Ok(Err(Refusal::WrongSecret));
    }
    Ok(match record.standing(now) {
        "revoked" => Err(Refusal::Revoked),
        "expired" => Err(Refusal::Expired),
        _ => Ok(record),
    })
}

/// A record the store can keep and read back: a 64-hex-digit hash.
pub(crate) fn check_record(record: &TokenRecord) -> StoreResult<()> {
    let h = &record.secret_sha256;
    if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(StoreError::InvalidInput(
            "a token's secret_sha256 must be 64 lowercase hex digits".into(),
        ));
    }
    Ok(())
}

/// A reference as a message shows it: short, without control characters.
pub(crate) fn shown(reference: &str) -> String {
    let clean: String = reference.chars().filter(|c| !c.is_control()).take(64).collect();
    clean
}
