//! `sync push|pull|status`: object-storage copies of builds, against `--sync URL`.

use buildstate_core::{BuildNumber, BuildStatus};
use buildstate_store::{BuildFilter, ImportMode, StoreError};
use buildstate_sync::{PushOutcome, SyncError, SyncState, SyncStatus, Syncer};
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Copy builds (all, or the ones named) to the target, and push the backlog
    Push {
        /// Build ids, numbers or unique prefixes [default: every build]
        references: Vec<String>,
    },
    /// Copy a build from the target into the local store (replacing an older local copy)
    Pull {
        /// The build number
        number: String,
        /// The provider path segment, when the number exists under several
        #[arg(long)]
        provider: Option<String>,
    },
    /// Compare local builds with their copies
    Status,
}

fn syncer(ctx: &Ctx) -> Result<&Syncer, CliError> {
    ctx.syncer.as_deref().ok_or_else(|| {
        CliError::usage("no sync target: pass --sync URL or set BUILDSTATE_SYNC")
            .with_hint("for example --sync s3://bucket/prefix or --sync file:///mnt/buildstate")
    })
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    let syncer = syncer(ctx)?;
    match a {
        Args::Push { references } => {
            let builds = if references.is_empty() {
                ctx.store.list_builds(&BuildFilter::default()).await?
            } else {
                let mut out = Vec::new();
                for r in &references {
                    out.push(ctx.find(r).await?);
                }
                out
            };
            let mut rows = Vec::new();
            for b in &builds {
                let doc = ctx.store.export_build(b.id).await?;
                let (result, message) = push_result(syncer.push(&doc).await);
                rows.push(PushRow { build: b.number.to_string(), version: doc.version, result, message });
            }
            let behind =
                rows.iter().filter(|r| !matches!(r.result, "created" | "replaced" | "already-there")).count();
            let flushed =
                syncer.flush_backlog().await.map_err(|e| CliError::new(Exit::Unavailable, e.to_string()))?;
            if ctx.json {
                output::json(&serde_json::json!({ "builds": rows, "backlog": flushed.remaining }))?;
            } else {
                let mut t = output::table(&["BUILD", "VERSION", "RESULT"]);
                for r in &rows {
                    t.add_row(vec![r.build.clone(), r.version.to_string(), output::cell(&r.message, 90)]);
                }
                output::print_table(&t)?;
                if !flushed.is_drained() {
                    output::line(format!("{} build(s) still in the backlog", flushed.remaining))?;
                }
            }
            Ok(if behind == 0 && flushed.is_drained() { Exit::Ok } else { Exit::Conflict })
        }
        Args::Pull { number, provider } => {
            let number = BuildNumber::new(&number).map_err(|e| CliError::usage(e.to_string()))?;
            let Some(doc) = syncer
                .pull(&number, provider.as_deref())
                .await
                .map_err(|e| crate::remote::sync_error(e, "cannot pull"))?
            else {
                return Err(CliError::not_found(format!(
                    "{} has no copy of build {number}",
                    syncer.target().url()
                )));
            };
            let b = import_if_newer(ctx, doc).await?;
            output::build_or_line(
                ctx.json,
                &b,
                format!("build {} is at {} ({}), {}", b.number, b.state, b.state_name(), b.status),
            )?;
            Ok(Exit::Ok)
        }
        Args::Status => {
            let builds = ctx.store.list_builds(&BuildFilter::default()).await?;
            let mut docs = Vec::new();
            for b in &builds {
                docs.push(ctx.store.export_build(b.id).await?);
            }
            let rows: Vec<StatusRow> = syncer.status(&docs).await.iter().map(StatusRow::new).collect();
            let clean = rows.iter().all(|r| r.state == "in-sync");
            if ctx.json {
                output::json(&rows)?;
            } else {
                let mut t = output::table(&["BUILD", "STATE", "LOCAL", "REMOTE"]);
                for r in &rows {
                    let state = match &r.error {
                        Some(e) => format!("{}: {e}", r.state),
                        None => r.state.to_owned(),
                    };
                    let remote = r.remote_version.map_or_else(|| "-".to_owned(), |v| v.to_string());
                    t.add_row(vec![
                        r.build.clone(),
                        output::cell(&state, 90),
                        r.local_version.to_string(),
                        remote,
                    ]);
                }
                output::print_table(&t)?;
            }
            Ok(if clean { Exit::Ok } else { Exit::Conflict })
        }
    }
}

/// One build of `sync push`: `result` is a word for scripts, `message` a sentence for
/// people.
#[derive(Debug, Serialize)]
struct PushRow {
    build: String,
    version: u64,
    result: &'static str,
    message: String,
}

fn push_result(outcome: Result<PushOutcome, SyncError>) -> (&'static str, String) {
    match outcome {
        Ok(PushOutcome::Pushed { created: true }) => ("created", "created".to_owned()),
        Ok(PushOutcome::Pushed { created: false }) => ("replaced", "replaced".to_owned()),
        Ok(PushOutcome::AlreadyThere) => ("already-there", "already there".to_owned()),
        Ok(PushOutcome::RemoteNewer { remote_version, .. }) => (
            "remote-newer",
            format!("remote copy is newer (version {remote_version}); not overwritten — `sync pull` it"),
        ),
        Ok(PushOutcome::Diverged { remote_version, .. }) => (
            "diverged",
            format!(
                "diverged: another machine continued this build (remote version {remote_version}); not overwritten — compare with `sync pull` into another store, then keep one line"
            ),
        ),
        Ok(PushOutcome::OtherBuild { remote_build_id }) => {
            ("other-build", format!("the remote path holds another build ({remote_build_id})"))
        }
        Ok(PushOutcome::Backlogged { error }) => {
            ("backlogged", format!("unreachable, kept in the backlog: {error}"))
        }
        Err(e) => ("error", e.to_string()),
    }
}

/// One build of `sync status`.
#[derive(Debug, Serialize)]
struct StatusRow {
    build: String,
    provider: String,
    local_version: u64,
    remote_version: Option<u64>,
    /// in-sync, local-newer, remote-newer, diverged, missing-remotely, backlog, unknown.
    state: &'static str,
    /// Why the copy could not be read (`unknown`).
    error: Option<String>,
}

impl StatusRow {
    fn new(s: &SyncStatus) -> Self {
        let (state, error) = match &s.state {
            SyncState::InSync => ("in-sync", None),
            SyncState::LocalNewer => ("local-newer", None),
            SyncState::RemoteNewer => ("remote-newer", None),
            SyncState::Diverged => ("diverged", None),
            SyncState::MissingRemotely => ("missing-remotely", None),
            SyncState::Backlog => ("backlog", None),
            SyncState::Unknown { error } => ("unknown", Some(error.clone())),
        };
        StatusRow {
            build: s.number.to_string(),
            provider: s.provider.clone(),
            local_version: s.local_version,
            remote_version: s.remote_version,
            state,
            error,
        }
    }
}

/// Imports a pulled document unless the local copy is as new or newer.
pub async fn import_if_newer(
    ctx: &Ctx,
    doc: buildstate_core::BuildDocument,
) -> Result<buildstate_core::Build, CliError> {
    match ctx.store.find_build(doc.build_id.to_string().as_str()).await {
        Ok(local) if local.version >= doc.version => return Ok(local),
        Ok(local) if local.status == BuildStatus::Running && local.attempt_open() => {
            tracing::info!(build = %local.number, "replacing a local copy with an open attempt by a newer remote one");
        }
        Ok(_) | Err(StoreError::BuildNotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let parts = buildstate_core::BuildDocument::into_parts(doc).map_err(StoreError::from)?;
    Ok(ctx.store.import_build(parts, ImportMode::Replace).await?)
}
