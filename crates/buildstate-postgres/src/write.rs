//! Domain values to rows: each write as its statement and owned values, so that a
//! transaction can queue it and send it with the next statement (`tx.rs`).
//!
//! Column types are bound exactly (`smallint` ← `i16`, `bigint` ← `i64`, `integer` ←
//! `i32`): the driver refuses a Rust type that does not match the parameter's type.

use buildstate_core::{
    Artifact, Build, BuildId, CatalogItem, CatalogKind, FailureRecord, HistoryEvent, Name,
};
use buildstate_store::{LeaseRecord, StoreError, StoreResult};
use tokio_postgres::types::{Json, ToSql};

use crate::error::{from_pg, raced, to_i64};
use crate::sql::{self, KindSql};

/// A value bound to a statement, owned.
pub(crate) type Value = Box<dyn ToSql + Sync + Send>;

macro_rules! values {
    ($($v:expr),* $(,)?) => { vec![$(Box::new($v) as Value),*] };
}

/// One statement that changes rows, and what its failure means.
pub(crate) struct Write {
    pub(crate) sql: &'static str,
    values: Vec<Value>,
    what: &'static str,
    /// An insert of a key the engine found free (or naming an item it found present)
    /// in this transaction: a unique or foreign-key violation means a concurrent writer
    /// committed first (`error::raced`).
    races: bool,
}

impl Write {
    fn new(sql: &'static str, what: &'static str, values: Vec<Value>) -> Self {
        Write { sql, values, what, races: false }
    }

    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| v.as_ref() as _).collect()
    }

    pub(crate) fn error(&self, e: tokio_postgres::Error) -> StoreError {
        if self.races { raced(self.what, e) } else { from_pg(self.what, e) }
    }
}

/// `NULL` for the default catalog, which nearly every build uses.
fn catalog(b: &Build) -> Option<Json<buildstate_core::StateCatalog>> {
    (!b.catalog.is_default()).then(|| Json(b.catalog.clone()))
}

pub(crate) fn build(b: &Build) -> StoreResult<Write> {
    let values = values![
        *b.id.as_uuid(),
        b.number.to_string(),
        b.platform.to_string(),
        b.os.to_string(),
        b.image_type.to_string(),
        catalog(b),
        i16::from(b.state.get()),
        b.status.as_str(),
        b.needs_intervention,
        i64::from(b.attempt),
        b.attempt_started_at,
        b.created_at,
        b.started_at,
        b.ended_at,
        b.updated_at,
        b.created_by.clone(),
        b.ci_url.clone(),
        Json(b.metadata.clone()),
        to_i64("version", b.version)?,
        to_i64("history length", b.history_len)?,
        i64::from(b.failure_count),
    ];
    Ok(Write { races: true, ..Write::new(sql::INSERT_BUILD, "insert build", values) })
}

/// The compare-and-swap of the build row from `old_version` to `b`; it returns a row
/// only if it changed one.
pub(crate) fn swap_build(b: &Build, old_version: u64) -> StoreResult<Write> {
    let values = values![
        *b.id.as_uuid(),
        to_i64("version", old_version)?,
        i16::from(b.state.get()),
        b.status.as_str(),
        b.needs_intervention,
        i64::from(b.attempt),
        b.attempt_started_at,
        b.started_at,
        b.ended_at,
        b.updated_at,
        Json(b.metadata.clone()),
        to_i64("version", b.version)?,
        to_i64("history length", b.history_len)?,
        i64::from(b.failure_count),
    ];
    Ok(Write::new(sql::UPDATE_BUILD_CAS, "update build", values))
}

pub(crate) fn delete_build(id: BuildId) -> Write {
    Write::new(sql::DELETE_BUILD, "delete a build", values![*id.as_uuid()])
}

pub(crate) fn event(build: BuildId, e: &HistoryEvent) -> StoreResult<Write> {
    let values = values![
        *build.as_uuid(),
        to_i64("event number", e.seq)?,
        e.at,
        e.kind.as_str(),
        i16::from(e.state.get()),
        i64::from(e.attempt),
        e.actor.clone(),
        e.started_at,
        e.duration_ms.map(|d| to_i64("duration", d)).transpose()?,
        e.exit_code,
        e.message.clone(),
        e.log.clone(),
        e.from_state.map(|s| i16::from(s.get())),
        e.forced,
    ];
    Ok(Write::new(sql::INSERT_EVENT, "insert event", values))
}

pub(crate) fn failure(f: &FailureRecord) -> Write {
    let values = values![
        *f.build_id.as_uuid(),
        i64::from(f.number),
        i16::from(f.state.get()),
        i64::from(f.attempt),
        f.at,
        f.info.failure_type.as_str().to_owned(),
        f.info.class.as_str(),
        f.info.component.clone(),
        f.info.message.clone(),
        Json(f.info.details.clone()),
        f.info.exit_code,
        f.resolved,
        f.resolution.clone(),
        f.resolved_at,
    ];
    Write::new(sql::INSERT_FAILURE, "insert failure", values)
}

pub(crate) fn resolve_failure(f: &FailureRecord) -> Write {
    let values = values![*f.build_id.as_uuid(), i64::from(f.number), f.resolution.clone(), f.resolved_at];
    Write::new(sql::RESOLVE_FAILURE, "resolve a failure", values)
}

/// Inserts the artifact, or replaces the one of the same name in place.
pub(crate) fn artifact(build: BuildId, a: &Artifact) -> StoreResult<Write> {
    let values = values![
        *build.as_uuid(),
        a.name.clone(),
        a.kind.as_str(),
        a.uri.clone(),
        a.region.clone(),
        a.size_bytes.map(|s| to_i64("artifact size", s)).transpose()?,
        a.sha256.as_ref().map(|h| h.as_str().to_owned()),
        a.created_at,
    ];
    Ok(Write::new(sql::UPSERT_ARTIFACT, "upsert artifact", values))
}

/// A build's lease record (grant, renewal, release, or the record kept across an
/// import).
pub(crate) fn lease(r: &LeaseRecord) -> StoreResult<Write> {
    let l = &r.lease;
    let values = values![
        *l.build_id.as_uuid(),
        l.owner.clone(),
        l.host.clone(),
        i64::from(l.pid),
        to_i64("lease token", l.token.get())?,
        l.acquired_at,
        l.renewed_at,
        l.expires_at,
        r.released,
    ];
    Ok(Write::new(sql::UPSERT_LEASE, "write lease", values))
}

pub(crate) fn catalog_item(item: &CatalogItem) -> Write {
    let values = match item {
        CatalogItem::Platform(p) => {
            values![p.name.to_string(), p.display_name.clone(), p.provider.clone(), p.region.clone()]
        }
        CatalogItem::Os(o) => values![
            o.name.to_string(),
            o.display_name.clone(),
            o.family.clone(),
            i64::from(o.major),
            o.minor.map(i64::from),
        ],
        CatalogItem::ImageType(i) => {
            values![i.name.to_string(), i.display_name.clone(), i.description.clone()]
        }
    };
    Write { races: true, ..Write::new(KindSql::of(item.kind()).insert, "insert a catalog item", values) }
}

pub(crate) fn delete_catalog_item(kind: CatalogKind, name: &Name) -> Write {
    Write::new(KindSql::of(kind).delete, "delete a catalog item", values![name.to_string()])
}
