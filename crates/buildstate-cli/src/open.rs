//! Opening the store a `--db` / `BUILDSTATE_DB` value names:
//!
//! - `postgres://…` or `postgresql://…` — PostgreSQL, for fleets of CI workers;
//! - `file:///dir`, or an existing directory — JSON files, one document per build;
//! - anything else — the embedded SQLite file (created on first use).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildstate_files::FileStore;
use buildstate_postgres::PostgresStore;
use buildstate_sqlite::SqliteStore;
use buildstate_store::Store;

use crate::config;
use crate::exit::CliError;

/// An open store and what the CLI needs to know about it.
#[derive(Debug)]
pub struct Opened {
    pub store: Arc<dyn Store>,
    /// Where the store is, for people: never contains a password.
    pub location: String,
    /// How steps reach the same store (`BUILDSTATE_DB`): for PostgreSQL the URL as
    /// given — steps run here with our environment, the password is theirs already.
    pub step_db: String,
    /// A local path next to which runner logs go by default.
    pub local_anchor: PathBuf,
    pub schema_version: u32,
}

pub async fn open(given: Option<&Path>) -> Result<Opened, CliError> {
    let raw = given.map(|p| p.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
    match raw.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::connect(url).await?;
            Ok(Opened {
                schema_version: store.schema_version(),
                location: Store::location(&store),
                step_db: url.to_owned(),
                local_anchor: data_anchor()?,
                store: Arc::new(store),
            })
        }
        Some(spec) if spec.starts_with("file://") || Path::new(spec).is_dir() => {
            let dir = PathBuf::from(spec.strip_prefix("file://").unwrap_or(spec));
            let store = FileStore::open(&dir)?;
            Ok(Opened {
                schema_version: 1,
                location: format!("file://{}", dir.display()),
                step_db: format!("file://{}", dir.display()),
                local_anchor: dir.join("buildstate.json-store"),
                store: Arc::new(store),
            })
        }
        _ => {
            let path = config::db_path(given)?;
            tracing::debug!(path = %path.display(), "opening store");
            let store = SqliteStore::open(&path)?;
            Ok(Opened {
                schema_version: store.schema_version(),
                location: path.display().to_string(),
                step_db: path.display().to_string(),
                local_anchor: path,
                store: Arc::new(store),
            })
        }
    }
}

/// `<data dir>/buildstate/remote`: logs of runs against a network store stay local.
fn data_anchor() -> Result<PathBuf, CliError> {
    let default = config::default_db_path().ok_or_else(|| {
        CliError::usage("cannot find a data directory for local run logs (is HOME set?)")
            .with_hint("pass --logs-dir DIR")
    })?;
    Ok(default.with_file_name("remote"))
}
