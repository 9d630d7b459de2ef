//! Leases: each call is one transaction under the exclusive lock that reads the build
//! and its lease record, lets the shared rules (`buildstate_store::plan_*`) decide, and
//! writes `leases/<build-id>.json`. Because no other writer runs between the read and
//! the write, exactly one of many concurrent acquirers wins, across processes.
//! None of these touch the build's document: a lease is not a change of the build.

use std::time::Duration;

use buildstate_core::{BuildId, Lease, LeaseRequest, LeaseToken};
use buildstate_store::{LeaseRecord, StoreResult, now, plan_acquire, plan_release, plan_renew};

use crate::snapshot::{Snapshot, Txn};

pub(crate) fn acquire(tx: &Txn<'_>, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
    let build = tx.build(id)?.build;
    let lease =
        plan_acquire(&build, tx.lease(id)?.as_ref(), request, now(), uuid::Uuid::now_v7().as_u128() as u64)?;
    tx.save_lease(&LeaseRecord { lease: lease.clone(), released: false })?;
    Ok(lease)
}

pub(crate) fn take_over(
    tx: &Txn<'_>,
    id: BuildId,
    request: &LeaseRequest,
    dead: LeaseToken,
) -> StoreResult<Lease> {
    let build = tx.build(id)?.build;
    let secret = uuid::Uuid::now_v7().as_u128() as u64;
    let lease =
        buildstate_store::plan_take_over(&build, tx.lease(id)?.as_ref(), request, dead, now(), secret)?;
    tx.save_lease(&LeaseRecord { lease: lease.clone(), released: false })?;
    Ok(lease)
}

pub(crate) fn renew(tx: &Txn<'_>, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease> {
    let build = tx.build(id)?.build;
    let lease = plan_renew(&build, tx.lease(id)?.as_ref(), token, ttl, now())?;
    tx.save_lease(&LeaseRecord { lease: lease.clone(), released: false })?;
    Ok(lease)
}

/// The record (and its token) stays, marked released, so the next grant counts on.
pub(crate) fn release(tx: &Txn<'_>, id: BuildId, token: LeaseToken) -> StoreResult<()> {
    let build = tx.build(id)?.build;
    let record = tx.lease(id)?;
    if plan_release(&build, record.as_ref(), token)?
        && let Some(record) = record
    {
        tx.save_lease(&LeaseRecord { released: true, ..record })?;
    }
    Ok(())
}

pub(crate) fn break_held(tx: &Txn<'_>, id: BuildId) -> StoreResult<Option<Lease>> {
    tx.require(id)?;
    let Some(record) = tx.lease(id)? else { return Ok(None) };
    let held = record.held().cloned();
    if held.is_some() {
        tx.save_lease(&LeaseRecord { released: true, ..record })?;
    }
    Ok(held)
}

/// Every held lease, expired ones included, by build number.
pub(crate) fn held(snap: &Snapshot<'_>) -> StoreResult<Vec<Lease>> {
    let entries = snap.entries()?;
    let mut held: Vec<(String, Lease)> = snap
        .lease_records(&entries)?
        .into_iter()
        .filter(|r| !r.released)
        .filter_map(|r| entries.number_of(r.lease.build_id).map(|n| (n.to_string(), r.lease)))
        .collect();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(held.into_iter().map(|(_, lease)| lease).collect())
}
