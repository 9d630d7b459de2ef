//! API tokens (`buildstate token`, `buildstate serve`): names unique, the secret never
//! stored (only its SHA-256, [`crate::tokens`]), revocation by the store's clock.

use buildstate_core::{TokenId, TokenRecord};

use super::Tx;
use crate::{StoreError, StoreResult};

/// Stores the record created now by the store's clock, its expiry at whole microseconds
/// (what every backend keeps), and returns it as stored.
pub(crate) async fn create(tx: &mut dyn Tx, record: &TokenRecord) -> StoreResult<TokenRecord> {
    crate::tokens::check_record(record)?;
    let micros = |t: jiff::Timestamp| jiff::Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t);
    let record = &TokenRecord {
        created_at: tx.now().await?,
        expires_at: record.expires_at.map(micros),
        ..record.clone()
    };
    let all = tx.tokens().await?;
    if all.iter().any(|t| t.name == record.name) {
        return Err(StoreError::AlreadyExists { what: "token", key: record.name.to_string() });
    }
    if all.iter().any(|t| t.id == record.id) {
        return Err(StoreError::AlreadyExists { what: "token id", key: record.id.to_string() });
    }
    tx.put_token(record).await?;
    Ok(record.clone())
}

pub(crate) async fn list(tx: &mut dyn Tx) -> StoreResult<Vec<TokenRecord>> {
    let mut all = tx.tokens().await?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

pub(crate) async fn find(tx: &mut dyn Tx, id: &TokenId) -> StoreResult<Option<TokenRecord>> {
    tx.token(id).await
}

/// Revokes the token named `reference`, or whose id it is; one revoked already keeps
/// the time it was revoked at.
pub(crate) async fn revoke(tx: &mut dyn Tx, reference: &str) -> StoreResult<TokenRecord> {
    let all = tx.tokens().await?;
    let found = all
        .into_iter()
        .find(|t| t.name.as_str() == reference || t.id.as_str() == reference)
        .ok_or_else(|| StoreError::TokenNotFound(crate::tokens::shown(reference)))?;
    if found.revoked_at.is_some() {
        return Ok(found);
    }
    let revoked = TokenRecord { revoked_at: Some(tx.now().await?), ..found };
    tx.put_token(&revoked).await?;
    Ok(revoked)
}
