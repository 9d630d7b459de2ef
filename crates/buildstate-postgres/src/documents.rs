//! Export and import of whole builds (the JSON document of SPEC §2).

use buildstate_core::{Build, BuildDocument, BuildId, BuildParts};
use buildstate_store::{Guard, ImportMode, LeaseRecord, StoreError, StoreResult, check_fence};
use deadpool_postgres::Transaction;

use crate::error::{PgContext, from_pg};
use crate::rows::{self, execute};
use crate::{builds, catalog, insert, leases, sql};

/// Everything about one build, read in one snapshot (the caller's repeatable-read
/// transaction).
pub(crate) async fn export(tx: &Transaction<'_>, id: BuildId) -> StoreResult<BuildDocument> {
    let build = builds::get(tx, id).await?;
    let key = id.as_uuid();
    let provider = catalog::provider(tx, &build.platform).await?;
    let history = rows::all(tx, sql::SELECT_EVENTS, &[key], rows::event).await?;
    let failures = rows::all(tx, sql::SELECT_BUILD_FAILURES, &[key], rows::failure).await?;
    let artifacts = rows::all(tx, sql::SELECT_ARTIFACTS, &[key], |r| rows::artifact(&id, r)).await?;
    Ok(BuildDocument::from_parts(BuildParts { build, provider, history, failures, artifacts }))
}

/// Stores a validated document in the caller's write transaction: all of it or none.
pub(crate) async fn import(tx: &Transaction<'_>, parts: &BuildParts, mode: ImportMode) -> StoreResult<Build> {
    let b = &parts.build;
    // Locks the build being replaced (an exclusive lock: it is about to be deleted), so
    // no transition or lease call on it runs in between.
    let id_taken = rows::exists(tx, sql::LOCK_BUILD_FOR_REPLACE, &[b.id.as_uuid()]).await?;
    let number_owner = rows::first(tx, sql::BUILD_ID_BY_NUMBER, &[&b.number.as_str()], |r| {
        r.try_get::<_, uuid::Uuid>(0).ctx("read a build id")
    })
    .await?;
    let number_taken_by_other = number_owner.is_some_and(|owner| owner != *b.id.as_uuid());
    // Replacing a build is a write without a lease token: refused while a runner holds
    // it. The lease record survives the replacement (the delete below would cascade to
    // it), so that the token counter never goes back.
    let lease = if id_taken { leases::record(tx, b.id).await? } else { None };
    if mode == ImportMode::Replace {
        let now = rows::clock(tx).await?;
        check_fence(b, lease.as_ref().and_then(LeaseRecord::held), Guard::none(), now)?;
    }
    match mode {
        ImportMode::CreateOnly if id_taken => {
            return Err(StoreError::AlreadyExists { what: "build", key: b.id.to_string() });
        }
        ImportMode::CreateOnly | ImportMode::Replace if number_taken_by_other => {
            return Err(StoreError::AlreadyExists { what: "build number", key: b.number.to_string() });
        }
        ImportMode::Replace if id_taken => {
            // Cascades to history, failures, artifacts and the lease record.
            execute(tx, sql::DELETE_BUILD, &[b.id.as_uuid()], "delete the replaced build").await?;
        }
        ImportMode::CreateOnly | ImportMode::Replace => {}
    }
    catalog::register_missing(tx, b, parts.provider.as_deref()).await?;
    // A concurrent import of the same id or number that committed first: the unique
    // constraints refuse this one, as `AlreadyExists`.
    insert::build(tx, b).await?.map_err(|e| from_pg("insert build", e))?;
    for e in &parts.history {
        insert::event(tx, &b.id, e).await?;
    }
    for f in &parts.failures {
        insert::failure(tx, f).await?;
    }
    for a in &parts.artifacts {
        insert::artifact(tx, &b.id, a).await?;
    }
    if let Some(record) = &lease {
        insert::lease(tx, record).await?;
    }
    builds::get(tx, b.id).await
}
