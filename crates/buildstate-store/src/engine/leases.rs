//! Leases: each call reads the build and its lease record in one write transaction, lets
//! the lease rules (`crate::plan_*`) decide, and writes the record. No other writer runs
//! between the read and the write, which is what makes "exactly one of many concurrent
//! acquirers wins" hold across processes and machines. None of these touch the build
//! row: a lease is not a change of the build.

use std::time::Duration;

use buildstate_core::{BuildId, Lease, LeaseRequest, LeaseToken};

use super::{Tx, builds};
use crate::{LeaseRecord, StoreResult, plan_acquire, plan_release, plan_renew, plan_take_over};

pub(crate) async fn acquire(tx: &mut dyn Tx, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
    let build = builds::get(tx, id).await?;
    let record = tx.lease(id).await?;
    let lease = plan_acquire(&build, record.as_ref(), request, tx.now().await?, secret())?;
    tx.put_lease(&LeaseRecord { lease: lease.clone(), released: false }).await?;
    Ok(lease)
}

pub(crate) async fn take_over(
    tx: &mut dyn Tx,
    id: BuildId,
    request: &LeaseRequest,
    dead: LeaseToken,
) -> StoreResult<Lease> {
    let build = builds::get(tx, id).await?;
    let record = tx.lease(id).await?;
    let lease = plan_take_over(&build, record.as_ref(), request, dead, tx.now().await?, secret())?;
    tx.put_lease(&LeaseRecord { lease: lease.clone(), released: false }).await?;
    Ok(lease)
}

pub(crate) async fn renew(
    tx: &mut dyn Tx,
    id: BuildId,
    token: LeaseToken,
    ttl: Duration,
) -> StoreResult<Lease> {
    let build = builds::get(tx, id).await?;
    let record = tx.lease(id).await?;
    let lease = plan_renew(&build, record.as_ref(), token, ttl, tx.now().await?)?;
    tx.put_lease(&LeaseRecord { lease: lease.clone(), released: false }).await?;
    Ok(lease)
}

/// The record (and its token) stays, marked released, so the next grant counts on.
pub(crate) async fn release(tx: &mut dyn Tx, id: BuildId, token: LeaseToken) -> StoreResult<()> {
    let build = builds::get(tx, id).await?;
    let record = tx.lease(id).await?;
    if plan_release(&build, record.as_ref(), token)?
        && let Some(record) = record
    {
        tx.put_lease(&LeaseRecord { released: true, ..record }).await?;
    }
    Ok(())
}

pub(crate) async fn break_held(tx: &mut dyn Tx, id: BuildId) -> StoreResult<Option<Lease>> {
    builds::get(tx, id).await?;
    let Some(record) = tx.lease(id).await? else { return Ok(None) };
    let held = record.held().cloned();
    if held.is_some() {
        tx.put_lease(&LeaseRecord { released: true, ..record }).await?;
    }
    Ok(held)
}

/// Fresh random bits for a lease token: the random part of a UUIDv7, whose generator
/// is seeded from the operating system in every process.
fn secret() -> u64 {
    // Truncation is the point: the low 64 bits are random.
    uuid::Uuid::now_v7().as_u128() as u64
}

/// Every held lease, expired ones included, by build number.
pub(crate) async fn held(tx: &mut dyn Tx) -> StoreResult<Vec<Lease>> {
    let mut held = tx.held_leases().await?;
    held.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(held.into_iter().map(|(_, lease)| lease).collect())
}
