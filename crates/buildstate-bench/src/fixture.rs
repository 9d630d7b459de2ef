//! Scratch databases with a catalog and fresh builds, made through the real store.

use std::path::Path;

use buildstate_core::{Build, CatalogItem, ImageType, Name, NewBuild, OsVersion, Platform, StateCatalog};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Store, StoreError};

fn name(s: &str) -> Result<Name, String> {
    Name::new(s).map_err(|e| e.to_string())
}

/// Opens (creating) the database at `db` and creates `n` fresh builds at state 0.
pub async fn builds(db: &Path, n: usize) -> Result<Vec<Build>, String> {
    let store = SqliteStore::open(db).map_err(|e| e.to_string())?;
    seed_catalog(&store).await?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(store.create_build(&new_build()?).await.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// One fresh build at state 0 (the catalog must be seeded).
pub async fn create(store: &dyn Store) -> Result<buildstate_core::BuildId, String> {
    Ok(store.create_build(&new_build()?).await.map_err(|e| e.to_string())?.id)
}

/// `per_handle` fresh builds for each handle, created through it: what each concurrent
/// writer of a benchmark drives.
pub async fn builds_per_handle(
    handles: &[std::sync::Arc<dyn Store>],
    per_handle: usize,
) -> Result<Vec<Vec<buildstate_core::BuildId>>, String> {
    let mut own = Vec::with_capacity(handles.len());
    for h in handles {
        let mut ids = Vec::with_capacity(per_handle);
        for _ in 0..per_handle {
            ids.push(create(h.as_ref()).await?);
        }
        own.push(ids);
    }
    Ok(own)
}

fn new_build() -> Result<NewBuild, String> {
    Ok(NewBuild {
        platform: name("aws-commercial")?,
        os: name("rhel-9.6")?,
        image_type: name("base")?,
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: "bench".into(),
        ci_url: None,
        metadata: Default::default(),
    })
}

/// Adds the catalog the benchmark's builds use (idempotent).
pub async fn seed_catalog(store: &dyn Store) -> Result<(), String> {
    let items = [
        CatalogItem::Platform(Platform {
            name: name("aws-commercial")?,
            display_name: "AWS Commercial".into(),
            provider: "aws".into(),
            region: Some("us-east-1".into()),
        }),
        CatalogItem::Os(OsVersion {
            name: name("rhel-9.6")?,
            display_name: "RHEL 9.6".into(),
            family: "rhel".into(),
            major: 9,
            minor: Some(6),
        }),
        CatalogItem::ImageType(ImageType {
            name: name("base")?,
            display_name: "Base".into(),
            description: String::new(),
        }),
    ];
    for item in &items {
        match store.add_catalog_item(item).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// What the earlier shell scripts did to record "milestone 0 completed": one `sqlite3`
/// call with the update and the history insert in one transaction, with the same
/// durability settings as the backend. Values are inlined, as those scripts did; the
/// build id is a UUID we generated, so there is nothing to escape.
pub fn sqlite3_complete_script(build: &Build) -> String {
    let id = build.id;
    format!(
        "PRAGMA busy_timeout = 60000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
BEGIN IMMEDIATE;
UPDATE builds SET state = 5, status = 'running', attempt = 0, attempt_started_at = NULL,
  started_at = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER),
  updated_at = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER),
  version = version + 1, history_len = history_len + 1
  WHERE id = '{id}' AND version = 1;
INSERT INTO events (build_id, seq, at, kind, state, attempt, actor, started_at, duration_ms,
  exit_code, message, log, from_state, forced)
  VALUES ('{id}', 2, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER), 'completed', 0, 1, 'bench',
  CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER), 0, NULL, NULL, NULL, NULL, 0);
COMMIT;"
    )
}
