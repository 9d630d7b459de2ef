//! Export and import of whole builds (the JSON document of SPEC §2) — which is also
//! what each build's file holds.

use buildstate_core::{Build, BuildDocument, BuildId, BuildParts};
use buildstate_store::{Guard, ImportMode, LeaseRecord, StoreError, StoreResult, check_fence, now};

use crate::catalog;
use crate::layout::check_number;
use crate::snapshot::{Snapshot, Txn};

/// The build's document, with the provider as the catalog knows it now (as the SQLite
/// backend reports it).
pub(crate) fn export(snap: &Snapshot<'_>, id: BuildId) -> StoreResult<BuildDocument> {
    let mut parts = snap.build(id)?;
    parts.provider = snap.catalog()?.provider(&parts.build.platform);
    Ok(BuildDocument::from_parts(parts))
}

/// Stores a document under the exclusive lock, registering the catalog items it names
/// that are missing.
pub(crate) fn import(tx: &Txn<'_>, parts: BuildParts, mode: ImportMode) -> StoreResult<Build> {
    // Through the document's own validation, so that the file written is one this store
    // can read back (parts built by hand may be inconsistent).
    let mut parts = BuildDocument::from_parts(parts).into_parts()?;
    let b = &parts.build;
    let mut entries = tx.entries()?;
    let old_number = entries.number_of(b.id).cloned();
    let id_taken = old_number.is_some();
    let number_taken_by_other = entries.id_of(&b.number).is_some_and(|owner| owner != b.id);
    // Replacing a build is a write without a lease token: refused while a runner holds
    // it. The lease file is keyed by id and left alone, so the token counter survives
    // the replacement and never goes back.
    if mode == ImportMode::Replace && id_taken {
        let lease = tx.lease(b.id)?;
        check_fence(b, lease.as_ref().and_then(LeaseRecord::held), Guard::none(), now())?;
    }
    match mode {
        ImportMode::CreateOnly if id_taken => {
            return Err(StoreError::AlreadyExists { what: "build", key: b.id.to_string() });
        }
        ImportMode::CreateOnly | ImportMode::Replace if number_taken_by_other => {
            return Err(StoreError::AlreadyExists { what: "build number", key: b.number.to_string() });
        }
        ImportMode::CreateOnly | ImportMode::Replace => {}
    }
    check_number(&b.number)?;
    let mut cat = tx.catalog()?;
    if let (Some(stored), Some(claimed)) = (cat.provider(&b.platform), parts.provider.as_deref())
        && stored != claimed
    {
        return Err(StoreError::Document(buildstate_core::DocumentError::Inconsistent(format!(
            "the document puts platform `{}` on provider `{claimed}`, but this store's catalog says `{stored}`",
            b.platform
        ))));
    }
    if catalog::register_missing(&mut cat, b, parts.provider.as_deref())? {
        tx.save_catalog(&cat)?;
    }
    parts.provider = cat.provider(&parts.build.platform);
    // New document, then the index (the commit point of a renumbering), then the old
    // document: see `index.rs` for what each crash in between leaves.
    tx.save_build(&parts)?;
    let (id, number) = (parts.build.id, parts.build.number.clone());
    entries.insert(number.clone(), id);
    tx.save_index(&entries)?;
    if let Some(old) = old_number.filter(|old| *old != number) {
        tx.remove_build_file(&old)?;
    }
    Ok(parts.build)
}
