//! Export and import of whole builds (the JSON document of SPEC §2).

use buildstate_core::{Build, BuildDocument, BuildId, BuildParts, DocumentError, FailureRecord};

use super::{Tx, builds, catalog};
use crate::{FailureFilter, Guard, ImportMode, LeaseRecord, StoreError, StoreResult, check_fence};

/// Everything about one build, read in one snapshot.
pub(crate) async fn export(tx: &mut dyn Tx, id: BuildId) -> StoreResult<BuildDocument> {
    let build = builds::get(tx, id).await?;
    let provider = catalog::provider(tx, &build.platform).await?;
    let history = tx.history(id).await?;
    let failures = build_failures(tx, id).await?;
    let artifacts = tx.artifacts(id).await?;
    Ok(BuildDocument::from_parts(BuildParts { build, provider, history, failures, artifacts }))
}

/// The build's failure records in the order they were recorded.
async fn build_failures(tx: &mut dyn Tx, id: BuildId) -> StoreResult<Vec<FailureRecord>> {
    let mut failures = tx.failures(&FailureFilter { build: Some(id), ..FailureFilter::default() }).await?;
    failures.sort_by_key(|f| f.number);
    Ok(failures)
}

/// Stores a document in one write transaction: all of it or none.
pub(crate) async fn import(tx: &mut dyn Tx, parts: &BuildParts, mode: ImportMode) -> StoreResult<Build> {
    // Through the document's own validation, so that what is stored is something this
    // store can read back (parts built by hand may be inconsistent).
    let parts = BuildDocument::from_parts(parts.clone()).into_parts()?;
    let b = &parts.build;
    let existing = tx.build(b.id).await?;
    let number_owner = tx.build_id_by_number(b.number.as_str()).await?;
    let number_taken_by_other = number_owner.is_some_and(|owner| owner != b.id);
    // Replacing a build is a write without a lease token: refused while a runner holds
    // it. The lease record survives the replacement, so that tokens never go back.
    let lease = if existing.is_some() { tx.lease(b.id).await? } else { None };
    if mode == ImportMode::Replace {
        check_fence(b, lease.as_ref().and_then(LeaseRecord::held), Guard::none(), tx.now().await?)?;
    }
    match mode {
        ImportMode::CreateOnly if existing.is_some() => {
            return Err(StoreError::AlreadyExists { what: "build", key: b.id.to_string() });
        }
        ImportMode::CreateOnly | ImportMode::Replace if number_taken_by_other => {
            return Err(StoreError::AlreadyExists { what: "build number", key: b.number.to_string() });
        }
        ImportMode::Replace if existing.is_some() => {
            if let Some(old) = &existing {
                super::stats::forget(tx, old).await?;
            }
            tx.delete_build(b.id).await?
        }
        ImportMode::CreateOnly | ImportMode::Replace => {}
    }
    // The document's provider is what the exporting store's catalog said; a store that
    // knows the platform under another provider would file the build under the wrong
    // cloud.
    if let (Some(stored), Some(claimed)) =
        (catalog::provider(tx, &b.platform).await?, parts.provider.as_deref())
        && stored != claimed
    {
        return Err(StoreError::Document(DocumentError::Inconsistent(format!(
            "the document puts platform `{}` on provider `{claimed}`, but this store's catalog says `{stored}`",
            b.platform
        ))));
    }
    catalog::register_missing(tx, b, parts.provider.as_deref()).await?;
    tx.insert_build(b).await?;
    tx.append_events(b.id, &parts.history).await?;
    super::stats::remember(tx, b, &parts.history).await?;
    tx.insert_failures(&parts.failures).await?;
    for a in &parts.artifacts {
        tx.put_artifact(b.id, a).await?;
    }
    if let Some(record) = &lease {
        tx.put_lease(record).await?;
    }
    builds::get(tx, b.id).await
}
