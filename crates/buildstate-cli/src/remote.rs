//! Object-storage copies from the CLI: the `Syncer` for a URL, with its state kept
//! locally per target, so that `--sync URL` on every command, `sync push|pull|status`
//! and `resume --from URL` all remember the same ETags and share one backlog.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use buildstate_sync::{SyncTarget, Syncer};

use crate::exit::{CliError, Exit};

/// The syncer for `url`, its state under the store's own sync directory
/// (`crate::open::beside`), in `<url as a name>`.
pub fn syncer(url: &str, anchor: &Path) -> Result<Arc<Syncer>, CliError> {
    let target = SyncTarget::parse(url).map_err(|e| {
        // `e` shows the URL without credentials or query; the raw one is never echoed.
        CliError::usage(format!("--sync: {e}")).with_hint("use s3://, az://, gs:// or file:// URLs")
    })?;
    let slug: String = url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(120)
        .collect();
    let dir: PathBuf = crate::open::beside(anchor, "sync").join(slug);
    let shown = target.url().to_owned();
    let syncer = Syncer::new(target, dir).map_err(|e| {
        CliError::new(Exit::Unavailable, format!("cannot use the sync state for {shown}: {e}"))
    })?;
    Ok(Arc::new(syncer))
}

/// The exit code of a sync failure: a copy that is not a valid document is a bad
/// document (7), like an import; a copy that kept changing is a conflict (5); a bad
/// target is usage (2); the rest means the endpoint is unavailable (6).
pub fn sync_error(e: buildstate_sync::SyncError, context: &str) -> CliError {
    use buildstate_sync::SyncError as E;
    let exit = match &e {
        E::Corrupt { .. } => Exit::BadDocument,
        E::Contended { .. } => Exit::Conflict,
        E::InvalidUrl { .. } | E::Ambiguous { .. } => Exit::Usage,
        _ => Exit::Unavailable,
    };
    CliError::new(exit, format!("{context}: {e}"))
}
