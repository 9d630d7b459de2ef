//! Export and import of whole builds (the JSON document of SPEC §2).

use buildstate_core::{BuildDocument, BuildId, BuildParts};
use buildstate_store::{Guard, ImportMode, LeaseRecord, StoreError, StoreResult, check_fence, now};
use rusqlite::Connection;

use crate::error::SqlContext;
use crate::{builds, catalog, insert, leases, rows, sql};

/// Everything about one build, read in one snapshot.
pub(crate) fn export(conn: &Connection, id: BuildId) -> StoreResult<BuildDocument> {
    let build = builds::get(conn, id)?;
    let key = id.to_string();
    let provider = catalog::provider(conn, &build.platform)?;
    let history = rows::all(conn, sql::SELECT_EVENTS, [&key], rows::event)?;
    let failures = rows::all(conn, sql::SELECT_BUILD_FAILURES, [&key], rows::failure)?;
    let artifacts = rows::all(conn, sql::SELECT_ARTIFACTS, [&key], |r| rows::artifact(&id, r))?;
    Ok(BuildDocument::from_parts(BuildParts { build, provider, history, failures, artifacts }))
}

/// Stores a validated document in the caller's write transaction: all of it or none.
pub(crate) fn import(
    conn: &Connection,
    parts: &BuildParts,
    mode: ImportMode,
) -> StoreResult<buildstate_core::Build> {
    let b = &parts.build;
    let id_taken = rows::exists(conn, sql::BUILD_EXISTS, [b.id.to_string()])?;
    let number_owner: Option<String> =
        rows::first(conn, sql::BUILD_ID_BY_NUMBER, [b.number.as_str()], |r| r.get(0).ctx("read a build id"))?;
    let number_taken_by_other = number_owner.is_some_and(|owner| owner != b.id.to_string());
    // Replacing a build is a write without a lease token: refused while a runner holds
    // it. The lease record survives the replacement (the delete below would cascade to
    // it), so that the token counter never goes back.
    let lease = if id_taken { leases::record(conn, b.id)? } else { None };
    if mode == ImportMode::Replace {
        check_fence(b, lease.as_ref().and_then(LeaseRecord::held), Guard::none(), now())?;
    }
    match mode {
        ImportMode::CreateOnly if id_taken => {
            return Err(StoreError::AlreadyExists { what: "build", key: b.id.to_string() });
        }
        ImportMode::CreateOnly | ImportMode::Replace if number_taken_by_other => {
            return Err(StoreError::AlreadyExists { what: "build number", key: b.number.to_string() });
        }
        ImportMode::Replace if id_taken => {
            // Cascades to history, failures and artifacts (foreign keys are on).
            conn.execute(sql::DELETE_BUILD, [b.id.to_string()]).ctx("delete the replaced build")?;
        }
        ImportMode::CreateOnly | ImportMode::Replace => {}
    }
    catalog::register_missing(conn, b, parts.provider.as_deref())?;
    insert::build(conn, b)?;
    for e in &parts.history {
        insert::event(conn, &b.id, e)?;
    }
    for f in &parts.failures {
        insert::failure(conn, f)?;
    }
    for a in &parts.artifacts {
        insert::artifact(conn, &b.id, a)?;
    }
    if let Some(record) = &lease {
        insert::lease(conn, record)?;
    }
    builds::get(conn, b.id)
}
