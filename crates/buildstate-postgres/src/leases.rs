//! Leases: each call is one write transaction that locks the build's row, reads its
//! lease record and the server's clock, lets the shared rules
//! (`buildstate_store::plan_*`) decide, and writes the record. The row lock makes
//! concurrent acquirers — on any machine — queue, so exactly one of them wins, and the
//! server's clock means expiry does not depend on which worker asks. None of these
//! change the build row: a lease is not a change of the build.

use std::time::Duration;

use buildstate_core::{BuildId, Lease, LeaseRequest, LeaseToken};
use buildstate_store::{LeaseRecord, StoreResult, plan_acquire, plan_release, plan_renew};
use deadpool_postgres::Transaction;
use jiff::Timestamp;

use crate::error::{PgContext, corrupt};
use crate::rows::{self, execute};
use crate::{builds, insert, sql};

/// The server's clock and the build's lease record (released or not), read in one
/// round trip. Called after the build's row is locked: the time is then no earlier
/// than anything the build's previous writer recorded.
pub(crate) async fn record_and_clock(
    tx: &Transaction<'_>,
    id: BuildId,
) -> StoreResult<(Timestamp, Option<LeaseRecord>)> {
    let row = rows::first(tx, sql::SELECT_LEASE_AND_CLOCK, &[id.as_uuid()], |r| {
        let now: Timestamp = r.try_get(0).ctx("read the clock")?;
        Ok((now, rows::lease_at(r, 1)?))
    })
    .await?;
    row.ok_or_else(|| corrupt(&id.to_string(), "the lease query returned no row"))
}

/// The build's lease record, released or not.
pub(crate) async fn record(tx: &Transaction<'_>, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
    rows::first(tx, sql::SELECT_LEASE, &[id.as_uuid()], rows::lease).await
}

pub(crate) async fn acquire(tx: &Transaction<'_>, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
    let build = builds::lock(tx, id).await?;
    let (now, record) = record_and_clock(tx, id).await?;
    let lease = plan_acquire(&build, record.as_ref(), request, now, uuid::Uuid::now_v7().as_u128() as u64)?;
    insert::lease(tx, &LeaseRecord { lease: lease.clone(), released: false }).await?;
    Ok(lease)
}

pub(crate) async fn renew(
    tx: &Transaction<'_>,
    id: BuildId,
    token: LeaseToken,
    ttl: Duration,
) -> StoreResult<Lease> {
    let build = builds::lock(tx, id).await?;
    let (now, record) = record_and_clock(tx, id).await?;
    let lease = plan_renew(&build, record.as_ref(), token, ttl, now)?;
    insert::lease(tx, &LeaseRecord { lease: lease.clone(), released: false }).await?;
    Ok(lease)
}

pub(crate) async fn release(tx: &Transaction<'_>, id: BuildId, token: LeaseToken) -> StoreResult<()> {
    let build = builds::lock(tx, id).await?;
    if plan_release(&build, record(tx, id).await?.as_ref(), token)? {
        execute(tx, sql::RELEASE_LEASE, &[id.as_uuid()], "release a lease").await?;
    }
    Ok(())
}

pub(crate) async fn break_held(tx: &Transaction<'_>, id: BuildId) -> StoreResult<Option<Lease>> {
    builds::lock(tx, id).await?;
    let held = record(tx, id).await?.and_then(|r| r.held().cloned());
    if held.is_some() {
        execute(tx, sql::RELEASE_LEASE, &[id.as_uuid()], "break a lease").await?;
    }
    Ok(held)
}

pub(crate) async fn held(tx: &Transaction<'_>) -> StoreResult<Vec<Lease>> {
    let records = rows::all(tx, sql::SELECT_HELD_LEASES, &[], rows::lease).await?;
    Ok(records.into_iter().map(|r| r.lease).collect())
}
