//! Where an attempt's output is written: one file per attempt, always inside the logs
//! directory.

use std::path::{Path, PathBuf};

use buildstate_core::{Build, StateCode, path_component as component};

/// `<logs>/<build number>/<code>-<milestone>-<attempt>-e<event>.log`.
///
/// The event number (the history length before this attempt starts) makes the name
/// unique for the life of the build: after a rewind, attempt numbers start again at 1,
/// and without it the new run's output would be appended to the old run's file.
/// Build numbers and milestone names are checked names (`a-z 0-9 . _ -`, never starting
/// with `.`), and each part is sanitised again here, so that no stored name — however
/// it got into the store — can make the path leave `logs`.
pub(crate) fn attempt_log(logs: &Path, build: &Build, state: StateCode, attempt: u32) -> PathBuf {
    let name = build.catalog.name_of(state);
    let file = format!("{:03}-{}-{attempt}-e{}.log", state.get(), component(name), build.history_len + 1);
    build_log_dir(logs, build.number.as_str()).join(file)
}

/// `<logs>/<build number>`: the directory that holds a build's attempt logs, and only its.
pub fn build_log_dir(logs: &Path, number: &str) -> PathBuf {
    logs.join(component(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_never_leave_the_directory() {
        for (raw, safe) in
            [("x/../../../tmp/OUT", "x_.._.._.._tmp____"), ("..", "_.."), ("", "_"), ("ok-1.2", "ok-1.2")]
        {
            let got = component(raw);
            assert_eq!(got, safe, "{raw:?}");
            assert!(!got.contains('/') && !got.starts_with('.'), "{raw:?} → {got}");
        }
    }
}
