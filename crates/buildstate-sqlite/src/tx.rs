//! The engine's primitives (`buildstate_store::Tx`) on one SQLite transaction.

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, CatalogItem, CatalogKind, FailureRecord, HistoryEvent, Lease, Name,
};
use buildstate_store::{BuildFilter, FailureFilter, LeaseRecord, StoreResult, Tx, prefix_upper_bound};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::error::{SqlContext, to_i64};
use crate::{catalog, insert, rows, sql};

/// A transaction the handle began on its connection (`&mut`: a connection is `Send` but
/// not `Sync`, and the unit of work may move between threads while it runs).
pub(crate) struct SqliteTx<'c> {
    pub(crate) conn: &'c mut Connection,
}

impl SqliteTx<'_> {
    fn c(&self) -> &Connection {
        self.conn
    }
}

/// `WHERE a AND b …` from fixed condition texts, the values bound, and the tail.
fn query(head: &str, conditions: &[&str], tail: &str) -> String {
    let mut q = String::from(head);
    if !conditions.is_empty() {
        q.push_str(" WHERE ");
        q.push_str(&conditions.join(" AND "));
    }
    q.push_str(tail);
    q
}

#[async_trait]
impl Tx for SqliteTx<'_> {
    async fn catalog(&mut self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        catalog::list(self.c(), kind)
    }

    async fn catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<Option<CatalogItem>> {
        catalog::get(self.c(), kind, name)
    }

    async fn insert_catalog_item(&mut self, item: &CatalogItem) -> StoreResult<()> {
        catalog::insert(self.c(), item)
    }

    async fn delete_catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        catalog::delete(self.c(), kind, name)
    }

    async fn builds_using(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<u64> {
        catalog::builds_using(self.c(), kind, name)
    }

    async fn build(&mut self, id: BuildId) -> StoreResult<Option<Build>> {
        rows::first(self.c(), sql::SELECT_BUILD_BY_ID, [id.to_string()], rows::build)
    }

    async fn build_id_by_number(&mut self, number: &str) -> StoreResult<Option<BuildId>> {
        rows::first(self.c(), sql::BUILD_ID_BY_NUMBER, [number], |r| {
            let raw: String = r.get(0).ctx("read a build id")?;
            raw.parse().map_err(|e| crate::error::corrupt(&raw, format!("column id: {e}")))
        })
    }

    async fn prefix_candidates(
        &mut self,
        id_prefix: &str,
        number_prefix: &str,
    ) -> StoreResult<Vec<(BuildId, BuildNumber)>> {
        // No range for a prefix that is not printable ASCII: it matches nothing.
        let id_upper = prefix_upper_bound(id_prefix).unwrap_or_default();
        let number_upper = prefix_upper_bound(number_prefix).unwrap_or_default();
        rows::all(
            self.c(),
            sql::PREFIX_CANDIDATES,
            params![id_prefix, id_upper, number_prefix, number_upper],
            rows::id_and_number,
        )
    }

    async fn list_builds(&mut self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        let mut conditions: Vec<&'static str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut when = |condition: &'static str, value: Option<Value>| {
            if let Some(v) = value {
                conditions.push(condition);
                values.push(v);
            }
        };
        when("status = ?", filter.status.map(|s| Value::Text(s.as_str().to_owned())));
        when("platform = ?", filter.platform.as_ref().map(|n| Value::Text(n.to_string())));
        when("os = ?", filter.os.as_ref().map(|n| Value::Text(n.to_string())));
        when("image_type = ?", filter.image_type.as_ref().map(|n| Value::Text(n.to_string())));
        when("state = ?", filter.state.map(|s| Value::Integer(i64::from(s.get()))));
        when("created_at >= ?", filter.since.map(|t| Value::Integer(t.as_microsecond())));
        when("needs_intervention = ?", filter.needs_intervention.map(|b| Value::Integer(i64::from(b))));
        let mut tail = String::from(" ORDER BY created_at DESC, id DESC");
        if let Some(limit) = filter.limit {
            tail.push_str(" LIMIT ?");
            values.push(Value::Integer(to_i64("limit", limit as u64)?));
        }
        let q = query(sql::SELECT_BUILDS, &conditions, &tail);
        rows::all(self.c(), &q, rusqlite::params_from_iter(values), rows::build)
    }

    async fn numbers_under(&mut self, stem: &str) -> StoreResult<Vec<String>> {
        let upper = prefix_upper_bound(stem).unwrap_or_default();
        rows::all(self.c(), sql::NUMBERS_IN_RANGE, params![stem, upper], |r| {
            r.get::<_, String>(0).ctx("read a build number")
        })
    }

    async fn insert_build(&mut self, build: &Build) -> StoreResult<()> {
        insert::build(self.c(), build)
    }

    async fn swap_build(&mut self, build: &Build, expected_version: u64) -> StoreResult<bool> {
        insert::swap_build(self.c(), build, expected_version)
    }

    async fn delete_build(&mut self, id: BuildId) -> StoreResult<()> {
        // Cascades to history, failures, artifacts and the lease (foreign keys are on).
        self.c().execute(sql::DELETE_BUILD, [id.to_string()]).ctx("delete a build").map(drop)
    }

    async fn history(&mut self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        rows::all(self.c(), sql::SELECT_EVENTS, [id.to_string()], rows::event)
    }

    async fn append_events(&mut self, id: BuildId, events: &[HistoryEvent]) -> StoreResult<()> {
        events.iter().try_for_each(|e| insert::event(self.c(), &id, e))
    }

    async fn failures(&mut self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        let mut conditions: Vec<&'static str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(id) = filter.build {
            conditions.push("build_id = ?");
            values.push(Value::Text(id.to_string()));
        }
        if filter.unresolved_only {
            conditions.push("resolved = 0");
        }
        if let Some(state) = filter.state {
            conditions.push("state = ?");
            values.push(Value::Integer(i64::from(state.get())));
        }
        if let Some(t) = &filter.failure_type {
            conditions.push("failure_type = ?");
            values.push(Value::Text(t.as_str().to_owned()));
        }
        let mut tail = String::from(" ORDER BY at DESC, number DESC, build_id DESC");
        if let Some(limit) = filter.limit {
            tail.push_str(" LIMIT ?");
            values.push(Value::Integer(to_i64("limit", limit as u64)?));
        }
        let q = query(sql::SELECT_FAILURES, &conditions, &tail);
        rows::all(self.c(), &q, rusqlite::params_from_iter(values), rows::failure)
    }

    async fn insert_failures(&mut self, failures: &[FailureRecord]) -> StoreResult<()> {
        failures.iter().try_for_each(|f| insert::failure(self.c(), f))
    }

    async fn update_failure(&mut self, f: &FailureRecord) -> StoreResult<()> {
        self.c()
            .execute(
                sql::RESOLVE_FAILURE,
                params![
                    f.build_id.to_string(),
                    f.number,
                    f.resolution,
                    f.resolved_at.map(|t| t.as_microsecond())
                ],
            )
            .ctx("resolve a failure")
            .map(drop)
    }

    async fn artifacts(&mut self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        rows::all(self.c(), sql::SELECT_ARTIFACTS, [id.to_string()], |r| rows::artifact(&id, r))
    }

    async fn put_artifact(&mut self, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
        insert::artifact(self.c(), &id, artifact)
    }

    async fn lease(&mut self, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
        rows::first(self.c(), sql::SELECT_LEASE, [id.to_string()], rows::lease)
    }

    async fn put_lease(&mut self, record: &LeaseRecord) -> StoreResult<()> {
        insert::lease(self.c(), record)
    }

    async fn held_leases(&mut self) -> StoreResult<Vec<(BuildNumber, Lease)>> {
        rows::all(self.c(), sql::SELECT_HELD_LEASES, [], rows::held_lease)
    }
}
