//! Leases: each call is one write transaction that reads the build and its lease record,
//! lets the shared rules (`buildstate_store::plan_*`) decide, and writes the record.
//! Under `BEGIN IMMEDIATE` no other writer runs between the read and the write, which is
//! what makes "exactly one of many concurrent acquirers wins" hold across processes.
//! None of these touch the build row: a lease is not a change of the build.

use std::time::Duration;

use buildstate_core::{BuildId, Lease, LeaseRequest, LeaseToken};
use buildstate_store::{LeaseRecord, StoreResult, now, plan_acquire, plan_release, plan_renew};
use rusqlite::Connection;

use crate::error::SqlContext;
use crate::{builds, insert, rows, sql};

/// The build's lease record, released or not.
pub(crate) fn record(conn: &Connection, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
    rows::first(conn, sql::SELECT_LEASE, [id.to_string()], rows::lease)
}

pub(crate) fn acquire(conn: &Connection, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
    let build = builds::get(conn, id)?;
    let lease = plan_acquire(&build, record(conn, id)?.as_ref(), request, now())?;
    insert::lease(conn, &LeaseRecord { lease: lease.clone(), released: false })?;
    Ok(lease)
}

pub(crate) fn renew(conn: &Connection, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease> {
    let build = builds::get(conn, id)?;
    let lease = plan_renew(&build, record(conn, id)?.as_ref(), token, ttl, now())?;
    insert::lease(conn, &LeaseRecord { lease: lease.clone(), released: false })?;
    Ok(lease)
}

pub(crate) fn release(conn: &Connection, id: BuildId, token: LeaseToken) -> StoreResult<()> {
    let build = builds::get(conn, id)?;
    if plan_release(&build, record(conn, id)?.as_ref(), token)? {
        conn.execute(sql::RELEASE_LEASE, [id.to_string()]).ctx("release a lease")?;
    }
    Ok(())
}

pub(crate) fn break_held(conn: &Connection, id: BuildId) -> StoreResult<Option<Lease>> {
    builds::require(conn, id)?;
    let held = record(conn, id)?.and_then(|r| r.held().cloned());
    if held.is_some() {
        conn.execute(sql::RELEASE_LEASE, [id.to_string()]).ctx("break a lease")?;
    }
    Ok(held)
}

pub(crate) fn held(conn: &Connection) -> StoreResult<Vec<Lease>> {
    let records = rows::all(conn, sql::SELECT_HELD_LEASES, [], rows::lease)?;
    Ok(records.into_iter().map(|r| r.lease).collect())
}
