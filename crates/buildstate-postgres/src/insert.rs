//! Domain values to rows: the writes shared by create, apply and import.
//!
//! Column types are bound exactly (`smallint` ← `i16`, `bigint` ← `i64`, `integer` ←
//! `i32`): the driver refuses a Rust type that does not match the parameter's type.

use buildstate_core::{Artifact, Build, BuildId, CatalogItem, FailureRecord, HistoryEvent};
use buildstate_store::{LeaseRecord, StoreResult};
use deadpool_postgres::Transaction;
use tokio_postgres::types::Json;

use crate::error::{raced, to_i64};
use crate::rows::{execute, execute_raw};
use crate::sql::{self, KindSql};

/// `NULL` for the default catalog, which nearly every build uses.
fn catalog(b: &Build) -> Option<Json<&buildstate_core::StateCatalog>> {
    (!b.catalog.is_default()).then_some(Json(&b.catalog))
}

/// Inserts a build row. The engine found its id and number free, and its catalog items
/// present, in this transaction; a unique or foreign-key violation means a concurrent
/// writer committed the same key (or removed an item) since, and the unit of work runs
/// again to decide on what is stored now.
pub(crate) async fn build(tx: &Transaction<'_>, b: &Build) -> StoreResult<()> {
    let (version, history_len) = (to_i64("version", b.version)?, to_i64("history length", b.history_len)?);
    let result = execute_raw(
        tx,
        sql::INSERT_BUILD,
        &[
            b.id.as_uuid(),
            &b.number.as_str(),
            &b.platform.as_str(),
            &b.os.as_str(),
            &b.image_type.as_str(),
            &catalog(b),
            &i16::from(b.state.get()),
            &b.status.as_str(),
            &b.needs_intervention,
            &i64::from(b.attempt),
            &b.attempt_started_at,
            &b.created_at,
            &b.started_at,
            &b.ended_at,
            &b.updated_at,
            &b.created_by,
            &b.ci_url,
            &Json(&b.metadata),
            &version,
            &history_len,
            &i64::from(b.failure_count),
        ],
    )
    .await;
    result.map(drop).map_err(|e| raced("insert build", e))
}

/// Swaps the build row from `old_version` to `b`. `false` when the row is no longer at
/// `old_version` (another writer won), so nothing was written.
pub(crate) async fn swap_build(tx: &Transaction<'_>, b: &Build, old_version: u64) -> StoreResult<bool> {
    let changed = execute(
        tx,
        sql::UPDATE_BUILD_CAS,
        &[
            b.id.as_uuid(),
            &to_i64("version", old_version)?,
            &i16::from(b.state.get()),
            &b.status.as_str(),
            &b.needs_intervention,
            &i64::from(b.attempt),
            &b.attempt_started_at,
            &b.started_at,
            &b.ended_at,
            &b.updated_at,
            &Json(&b.metadata),
            &to_i64("version", b.version)?,
            &to_i64("history length", b.history_len)?,
            &i64::from(b.failure_count),
        ],
        "update build",
    )
    .await?;
    Ok(changed == 1)
}

pub(crate) async fn event(tx: &Transaction<'_>, build: &BuildId, e: &HistoryEvent) -> StoreResult<()> {
    let duration = e.duration_ms.map(|d| to_i64("duration", d)).transpose()?;
    execute(
        tx,
        sql::INSERT_EVENT,
        &[
            build.as_uuid(),
            &to_i64("event number", e.seq)?,
            &e.at,
            &e.kind.as_str(),
            &i16::from(e.state.get()),
            &i64::from(e.attempt),
            &e.actor,
            &e.started_at,
            &duration,
            &e.exit_code,
            &e.message,
            &e.log,
            &e.from_state.map(|s| i16::from(s.get())),
            &e.forced,
        ],
        "insert event",
    )
    .await
    .map(drop)
}

pub(crate) async fn failure(tx: &Transaction<'_>, f: &FailureRecord) -> StoreResult<()> {
    execute(
        tx,
        sql::INSERT_FAILURE,
        &[
            f.build_id.as_uuid(),
            &i64::from(f.number),
            &i16::from(f.state.get()),
            &i64::from(f.attempt),
            &f.at,
            &f.info.failure_type.as_str(),
            &f.info.class.as_str(),
            &f.info.component,
            &f.info.message,
            &Json(&f.info.details),
            &f.info.exit_code,
            &f.resolved,
            &f.resolution,
            &f.resolved_at,
        ],
        "insert failure",
    )
    .await
    .map(drop)
}

/// Inserts the artifact, or replaces the one of the same name in place.
pub(crate) async fn artifact(tx: &Transaction<'_>, build: &BuildId, a: &Artifact) -> StoreResult<()> {
    let size = a.size_bytes.map(|s| to_i64("artifact size", s)).transpose()?;
    execute(
        tx,
        sql::UPSERT_ARTIFACT,
        &[
            build.as_uuid(),
            &a.name,
            &a.kind.as_str(),
            &a.uri,
            &a.region,
            &size,
            &a.sha256.as_ref().map(|h| h.as_str()),
            &a.created_at,
        ],
        "upsert artifact",
    )
    .await
    .map(drop)
}

/// Writes a build's lease record (grant, renewal, or the record kept across an import).
pub(crate) async fn lease(tx: &Transaction<'_>, r: &LeaseRecord) -> StoreResult<()> {
    let l = &r.lease;
    execute(
        tx,
        sql::UPSERT_LEASE,
        &[
            l.build_id.as_uuid(),
            &l.owner,
            &l.host,
            &i64::from(l.pid),
            &to_i64("lease token", l.token.get())?,
            &l.acquired_at,
            &l.renewed_at,
            &l.expires_at,
            &r.released,
        ],
        "write lease",
    )
    .await
    .map(drop)
}

/// Inserts a catalog item the engine found free in this transaction; a concurrent add
/// of the same name that committed first makes the unit of work run again.
pub(crate) async fn catalog_item(tx: &Transaction<'_>, item: &CatalogItem) -> StoreResult<()> {
    let sql = KindSql::of(item.kind()).insert;
    let result = match item {
        CatalogItem::Platform(p) => {
            execute_raw(tx, sql, &[&p.name.as_str(), &p.display_name, &p.provider, &p.region]).await
        }
        CatalogItem::Os(o) => {
            let (major, minor) = (i64::from(o.major), o.minor.map(i64::from));
            execute_raw(tx, sql, &[&o.name.as_str(), &o.display_name, &o.family, &major, &minor]).await
        }
        CatalogItem::ImageType(i) => {
            execute_raw(tx, sql, &[&i.name.as_str(), &i.display_name, &i.description]).await
        }
    };
    result.map(drop).map_err(|e| raced("insert a catalog item", e))
}
