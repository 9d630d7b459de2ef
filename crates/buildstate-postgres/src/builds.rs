//! Builds: create, read, find, list, and transitions.

use buildstate_core::{Build, BuildId, CatalogKind, Command, HistoryEvent, NewBuild, Outcome};
use buildstate_store::{
    BuildFilter, Guard, LeaseRecord, StoreError, StoreResult, build_number_stem, check_new_build,
    plan_transition, resolve_candidates,
};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::error::{NumberTaken, from_pg, is_unique_violation, to_i64, violated_constraint};
use crate::numbers::{id_prefix_range, next_number, prefix_upper_bound};
use crate::{catalog, insert, leases, rows, sql};

/// Creates a build in the caller's write transaction. The catalog items are held
/// against removal until commit; a generated number is allocated under the day's lock
/// (`numbers.rs`); a number that was taken anyway makes the unit of work run again.
pub(crate) async fn create(tx: &Transaction<'_>, new: &NewBuild) -> StoreResult<Build> {
    check_new_build(new)?;
    catalog::hold(tx, CatalogKind::Platform, &new.platform).await?;
    catalog::hold(tx, CatalogKind::Os, &new.os).await?;
    catalog::hold(tx, CatalogKind::ImageType, &new.image_type).await?;
    let at = rows::clock(tx).await?;
    let number = match &new.number {
        Some(chosen) => {
            if rows::exists(tx, sql::BUILD_ID_BY_NUMBER, &[&chosen.as_str()]).await? {
                return Err(StoreError::AlreadyExists { what: "build number", key: chosen.to_string() });
            }
            chosen.clone()
        }
        None => next_number(tx, &build_number_stem(new, at)).await?,
    };
    // The id's time field is the build's creation time; its random bits come from a
    // UUIDv7, whose generator is randomly seeded in every process.
    let unix_ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let id = BuildId::generate(unix_ms, uuid::Uuid::now_v7().as_u128());
    let (build, created) = Build::create(id, number, new.clone(), at);
    match insert::build(tx, &build).await? {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) && violated_constraint(&e) == Some(sql::NUMBER_CONSTRAINT) => {
            return Err(match &new.number {
                Some(chosen) => StoreError::AlreadyExists { what: "build number", key: chosen.to_string() },
                None => StoreError::backend("insert build", NumberTaken(build.number.to_string())),
            });
        }
        Err(e) => return Err(from_pg("insert build", e)),
    }
    insert::event(tx, &build.id, &created).await?;
    Ok(build)
}

pub(crate) async fn get(tx: &Transaction<'_>, id: BuildId) -> StoreResult<Build> {
    rows::first(tx, sql::SELECT_BUILD_BY_ID, &[id.as_uuid()], rows::build)
        .await?
        .ok_or_else(|| StoreError::BuildNotFound(id.to_string()))
}

/// Reads the build and locks its row until commit: every write of a build starts here
/// (see the locking rule in `sql.rs`).
pub(crate) async fn lock(tx: &Transaction<'_>, id: BuildId) -> StoreResult<Build> {
    rows::first(tx, sql::LOCK_BUILD, &[id.as_uuid()], rows::build)
        .await?
        .ok_or_else(|| StoreError::BuildNotFound(id.to_string()))
}

/// An exact id, an exact number, or a unique prefix of either.
pub(crate) async fn find(tx: &Transaction<'_>, reference: &str) -> StoreResult<Build> {
    let reference = reference.trim();
    if let Ok(id) = reference.parse::<BuildId>()
        && let Some(b) = rows::first(tx, sql::SELECT_BUILD_BY_ID, &[id.as_uuid()], rows::build).await?
    {
        return Ok(b);
    }
    if let Some(b) = rows::first(tx, sql::SELECT_BUILD_BY_NUMBER, &[&reference], rows::build).await? {
        return Ok(b);
    }
    // A reference that no id (or number) can start with gets an empty range: NULL
    // bounds match no id, an empty upper bound no number.
    let (id_low, id_high) = id_prefix_range(reference).unzip();
    let number_upper = prefix_upper_bound(reference).unwrap_or_default();
    let candidates = rows::all(
        tx,
        sql::PREFIX_CANDIDATES,
        &[&id_low, &id_high, &reference, &number_upper],
        rows::id_and_number,
    )
    .await?;
    let id = resolve_candidates(reference, &candidates)?;
    get(tx, id).await
}

/// Builds matching every condition of `filter`, newest first. The query is assembled
/// from fixed condition texts and numbered placeholders; the values are bound.
pub(crate) async fn list(tx: &Transaction<'_>, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut when = |column: &'static str, op: &'static str, value: Option<Box<dyn ToSql + Sync + Send>>| {
        if let Some(v) = value {
            values.push(v);
            conditions.push(format!("{column} {op} ${}", values.len()));
        }
    };
    when("status", "=", filter.status.map(|s| Box::new(s.as_str()) as _));
    when("platform", "=", filter.platform.as_ref().map(|n| Box::new(n.to_string()) as _));
    when("os", "=", filter.os.as_ref().map(|n| Box::new(n.to_string()) as _));
    when("image_type", "=", filter.image_type.as_ref().map(|n| Box::new(n.to_string()) as _));
    when("state", "=", filter.state.map(|s| Box::new(i16::from(s.get())) as _));
    when("created_at", ">=", filter.since.map(|t| Box::new(t) as _));
    when("needs_intervention", "=", filter.needs_intervention.map(|b| Box::new(b) as _));
    let mut query = String::from(sql::SELECT_BUILDS);
    if !conditions.is_empty() {
        query.push_str(" WHERE ");
        query.push_str(&conditions.join(" AND "));
    }
    query.push_str(" ORDER BY created_at DESC, id DESC");
    if let Some(limit) = filter.limit {
        values.push(Box::new(to_i64("limit", limit as u64)?));
        query.push_str(&format!(" LIMIT ${}", values.len()));
    }
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
    rows::all(tx, &query, &params, rows::build).await
}

/// A transition, in the caller's write transaction: the build row is locked first, so
/// the fencing check and the rules run on the build and lease record as stored, with
/// no other writer (or lease take-over) between the read and the write; the row is
/// swapped only if still at the version read.
pub(crate) async fn apply(
    tx: &Transaction<'_>,
    id: BuildId,
    command: &Command,
    guard: Guard,
) -> StoreResult<Outcome> {
    let build = lock(tx, id).await?;
    let (now, lease) = leases::record_and_clock(tx, id).await?;
    let outcome = plan_transition(&build, lease.as_ref().and_then(LeaseRecord::held), command, guard, now)?;
    if !insert::outcome(tx, build.version, &outcome).await? {
        // Unreachable while the row lock is held from the read on; kept as the
        // compare-and-swap's safety net should the locking ever change.
        let found = get(tx, id).await?.version;
        return Err(StoreError::Conflict { build: build.number, expected: build.version, found });
    }
    Ok(outcome)
}

/// `BuildNotFound` unless the build exists.
pub(crate) async fn require(tx: &Transaction<'_>, id: BuildId) -> StoreResult<()> {
    if rows::exists(tx, sql::BUILD_EXISTS, &[id.as_uuid()]).await? {
        Ok(())
    } else {
        Err(StoreError::BuildNotFound(id.to_string()))
    }
}

pub(crate) async fn history(tx: &Transaction<'_>, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
    require(tx, id).await?;
    rows::all(tx, sql::SELECT_EVENTS, &[id.as_uuid()], rows::event).await
}
