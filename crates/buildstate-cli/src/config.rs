//! Where the store lives and who is acting: flag, then environment (both through clap's
//! `env`), then the built-in default.

use std::path::{Path, PathBuf};

use crate::exit::CliError;

/// The default store: `<data dir>/buildstate/buildstate.db`, i.e.
/// `~/.local/share/buildstate/buildstate.db` on Linux (`$XDG_DATA_HOME` is honoured).
pub fn default_db_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("buildstate").join("buildstate.db"))
}

/// The store path: `--db` / `BUILDSTATE_DB` when given and not empty, else the default.
pub fn db_path(given: Option<&Path>) -> Result<PathBuf, CliError> {
    match given {
        Some(p) if !p.as_os_str().is_empty() => Ok(p.to_path_buf()),
        _ => default_db_path().ok_or_else(|| {
            CliError::usage("cannot find a data directory for the default store (is HOME set?)")
                .with_hint("pass --db PATH or set BUILDSTATE_DB")
        }),
    }
}

/// The actor recorded in history: `--actor` / `BUILDSTATE_ACTOR`, else `$USER`, else `unknown`.
pub fn actor(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_and_empty_means_default() {
        assert_eq!(db_path(Some(Path::new("/tmp/x.db"))).ok(), Some(PathBuf::from("/tmp/x.db")));
        if let Some(default) = default_db_path() {
            assert_eq!(db_path(Some(Path::new(""))).ok(), Some(default.clone()));
            assert!(default.ends_with("buildstate/buildstate.db"));
        }
    }

    #[test]
    fn actor_prefers_the_flag() {
        assert_eq!(actor(Some(" ci-bot ")), "ci-bot");
    }
}
