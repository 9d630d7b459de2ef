//! `GET /api/v1/builds/{ref}/attempts/{n}/log`: the output of a build's `n`th attempt
//! (1-based, in the order `…/attempts` lists them), streamed as it is on disk.
//!
//! The runner writes each attempt's output under the store's logs directory,
//! `<logs>/<build number>/…` (`buildstate-runner`'s `logfile`), and records the path in
//! the attempt. The server is given that directory ([`crate::Options::logs_dir`]) and
//! serves a recorded path only if, with every link resolved, it is a file inside the
//! build's own directory there: a path recorded by a client (`"log"` of a transition)
//! or a link cannot make it read anything else. Every refusal is the same 404 and
//! names no path.

use std::path::{Path as FsPath, PathBuf};

use axum::body::Body as HttpBody;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use buildstate_core::Attempt;
use futures_util::stream;
use tokio::io::AsyncReadExt;

use super::body::Path;
use crate::AppState;
use crate::dashboard::session::ReadAccess;
use crate::error::ApiError;

// The directory the runner wrote the build's logs to: the same rule, written once.
use buildstate_core::path_component as component;

/// The file of an attempt's log, if it is one inside `<logs>/<number>/`.
pub(crate) async fn locate(logs: &FsPath, number: &str, attempt: &Attempt) -> Option<PathBuf> {
    let recorded = PathBuf::from(attempt.log.as_deref()?);
    let dir = tokio::fs::canonicalize(logs.join(component(number))).await.ok()?;
    // A relative path is read from the logs directory's side, never the server's cwd.
    let full = if recorded.is_absolute() { recorded } else { dir.join(recorded) };
    let file = tokio::fs::canonicalize(full).await.ok()?;
    let meta = tokio::fs::metadata(&file).await.ok()?;
    (file.starts_with(&dir) && meta.is_file()).then_some(file)
}

/// The build's `n`th attempt (1-based) and its log file.
pub(crate) async fn attempt_log(state: &AppState, reference: &str, n: usize) -> Result<PathBuf, ApiError> {
    let b = state.store.find_build(reference).await?;
    let attempts = buildstate_core::attempts(&state.store.history(b.id).await?);
    let Some(attempt) = n.checked_sub(1).and_then(|i| attempts.get(i)) else {
        return Err(ApiError::not_found(format!(
            "build {} has no attempt {n} ({} recorded)",
            b.number,
            attempts.len()
        ))
        .with_hint("GET …/attempts lists them, oldest first"));
    };
    let found = match &state.options.logs_dir {
        Some(logs) => locate(logs, b.number.as_str(), attempt).await,
        None => None,
    };
    found.ok_or_else(|| {
        ApiError::not_found(format!("attempt {n} of build {} has no log on this server", b.number))
            .with_hint("logs are kept where the runner ran: the store's logs directory, or its --logs-dir")
    })
}

/// Chunks the file is sent in.
const CHUNK: usize = 64 * 1024;

pub async fn log(
    _: ReadAccess,
    State(state): State<AppState>,
    Path((reference, n)): Path<(String, usize)>,
) -> Result<Response, ApiError> {
    let file = attempt_log(&state, &reference, n).await?;
    let f = tokio::fs::File::open(&file).await.map_err(|e| {
        tracing::warn!(error = %e, "an attempt log could not be opened");
        ApiError::not_found(format!("attempt {n} has no readable log"))
    })?;
    // Read as it is sent: a long log is never held in memory whole.
    let chunks = stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(k) => {
                buf.truncate(k);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut resp = HttpBody::from_stream(chunks).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}

/// The last `lines` lines of a log file, for a failure's tail on the build page (at
/// most the last 64 KiB are read).
pub(crate) async fn tail(file: &FsPath, lines: usize) -> Option<String> {
    use tokio::io::AsyncSeekExt;
    let mut f = tokio::fs::File::open(file).await.ok()?;
    let len = f.metadata().await.ok()?.len();
    let from = len.saturating_sub(CHUNK as u64);
    f.seek(std::io::SeekFrom::Start(from)).await.ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    Some(all[all.len().saturating_sub(lines)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(log: &str) -> Attempt {
        Attempt {
            state: buildstate_core::StateCode::new(10).expect("code"),
            number: 1,
            status: buildstate_core::AttemptStatus::Completed,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            ended_at: None,
            duration_ms: None,
            exit_code: None,
            error: None,
            actor: "t".into(),
            log: Some(log.into()),
        }
    }

    #[tokio::test]
    async fn only_files_inside_the_builds_own_directory_are_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("s.logs");
        std::fs::create_dir_all(logs.join("b-1")).expect("dirs");
        std::fs::create_dir_all(logs.join("b-2")).expect("dirs");
        std::fs::write(logs.join("b-1/010-x-1-e2.log"), "out\n").expect("log");
        std::fs::write(logs.join("b-2/other.log"), "theirs\n").expect("log");
        std::fs::write(dir.path().join("secret"), "no\n").expect("secret");
        let inside = logs.join("b-1/010-x-1-e2.log");
        assert!(locate(&logs, "b-1", &attempt(&inside.display().to_string())).await.is_some());
        assert!(
            locate(&logs, "b-1", &attempt("010-x-1-e2.log")).await.is_some(),
            "relative to the build's dir"
        );
        for hostile in [
            dir.path().join("secret").display().to_string(),
            logs.join("b-1/../../secret").display().to_string(),
            logs.join("b-2/other.log").display().to_string(),
            "../b-2/other.log".to_owned(),
            "/etc/passwd".to_owned(),
            logs.join("b-1").display().to_string(),
        ] {
            assert!(locate(&logs, "b-1", &attempt(&hostile)).await.is_none(), "{hostile}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), logs.join("b-1/link.log")).expect("link");
            assert!(locate(&logs, "b-1", &attempt("link.log")).await.is_none(), "a link out is refused");
        }
    }
}
