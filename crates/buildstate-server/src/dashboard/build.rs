//! `GET /builds/{ref}`: one build — its milestone timeline (every attempt, retries and
//! skipped milestones visible), failures with their log tails, every attempt's full
//! log, artifacts, metadata and history; and, for a session that may write, the
//! buttons to retry, rewind and cancel ([`super::actions`]).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use buildstate_core::{Attempt, Build, BuildStatus, FailureRecord};
use buildstate_store::FailureFilter;

use super::charts;
use super::html::{self, esc, seg};
use super::session::Viewer;
use crate::AppState;
use crate::error::ApiError;
use crate::routes::body::Path;

/// Lines of a failed attempt's log shown under the failure.
const TAIL_LINES: usize = 20;

pub async fn show(State(state): State<AppState>, viewer: Viewer, Path(reference): Path<String>) -> Response {
    match render(&state, &viewer, &reference).await {
        Ok((b, body)) => {
            let title = format!("Build {}", b.number);
            html::page(StatusCode::OK, &title, "", &viewer, Some(&b.id.to_string()), &body)
        }
        Err(e) => html::message(e.status, &viewer, "No such build", &e.message),
    }
}

async fn render(state: &AppState, viewer: &Viewer, reference: &str) -> Result<(Build, String), ApiError> {
    let b = state.store.find_build(reference).await?;
    let history = state.store.history(b.id).await?;
    let attempts = buildstate_core::attempts(&history);
    let failures =
        state.store.failures(&FailureFilter { build: Some(b.id), ..FailureFilter::default() }).await?;
    let artifacts = state.store.artifacts(b.id).await?;
    let now = buildstate_store::now();
    let mut out = String::new();
    summary(&mut out, &b);
    if viewer.can_write() {
        actions(&mut out, &b, viewer.csrf.as_deref().unwrap_or_default());
    }
    let _ = write!(out, r#"<section><h2>Timeline</h2>{}"#, charts::gantt(&b.catalog, &attempts, now));
    attempt_table(&mut out, &b, &attempts);
    out.push_str("</section>");
    failure_list(&mut out, state, &b, &attempts, &failures).await;
    artifact_table(&mut out, &artifacts);
    metadata(&mut out, &b);
    history_table(&mut out, &b, &history);
    Ok((b, out))
}

fn summary(out: &mut String, b: &Build) {
    let ci = match &b.ci_url {
        // Only web links become links: a `javascript:` URL stays text.
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            format!(r#"<a href="{0}" rel="noreferrer">{0}</a>"#, esc(u))
        }
        Some(u) => esc(u),
        None => "—".to_owned(),
    };
    let _ = write!(
        out,
        r#"<section class="summary" data-build="{num}" data-status="{s}" data-state="{st}"><dl>
<dt>Status</dt><dd id="build-status">{status}</dd>
<dt>Milestone</dt><dd>{bar}</dd>
<dt>Platform</dt><dd>{p}</dd><dt>OS version</dt><dd>{os}</dd><dt>Image type</dt><dd>{img}</dd>
<dt>Attempt</dt><dd>{att}</dd><dt>Created</dt><dd>{created} by {by}</dd><dt>CI</dt><dd>{ci}</dd><dt>Version</dt><dd>{v}</dd>
</dl></section>"#,
        num = esc(b.number.as_str()),
        s = b.status.as_str(),
        st = b.state.get(),
        status = html::status(b.status, b.needs_intervention),
        bar = html::progress(b),
        p = esc(b.platform.as_str()),
        os = esc(b.os.as_str()),
        img = esc(b.image_type.as_str()),
        att = b.attempt,
        created = html::time(b.created_at),
        by = esc(&b.created_by),
        v = b.version,
    );
}

fn actions(out: &mut String, b: &Build, csrf: &str) {
    let base = format!("/builds/{}", seg(b.number.as_str()));
    let csrf = esc(csrf);
    out.push_str(r#"<section class="actions"><h2>Actions</h2>"#);
    if matches!(b.status, BuildStatus::Failed | BuildStatus::Cancelled) || b.needs_intervention {
        let _ = write!(
            out,
            r#"<form method="post" action="{base}/retry"><input type="hidden" name="csrf" value="{csrf}"><label for="retry-reason">Reason</label> <input id="retry-reason" name="reason" value="retried from the dashboard"> {force}<button type="submit" id="retry">Retry</button></form>"#,
            force = if b.needs_intervention {
                r#"<input type="checkbox" id="retry-force" name="force" value="yes"> <label for="retry-force">I fixed the cause: retry although it needs a person (recorded)</label> "#
            } else {
                ""
            },
        );
    }
    let mut options = String::new();
    for m in b.catalog.milestones().iter().filter(|m| m.code < b.state) {
        let _ =
            write!(options, r#"<option value="{}">{} {}</option>"#, m.code.get(), m.code.get(), esc(&m.name));
    }
    if !options.is_empty() {
        let _ = write!(
            out,
            r#"<form method="post" action="{base}/rewind"><input type="hidden" name="csrf" value="{csrf}"><label for="rewind-to">Rewind to</label> <select id="rewind-to" name="to">{options}</select> <label for="rewind-reason">Reason</label> <input id="rewind-reason" name="reason" required> <button type="submit" id="rewind">Rewind</button></form>"#
        );
    }
    if !matches!(b.status, BuildStatus::Completed | BuildStatus::Cancelled) {
        let _ = write!(
            out,
            r#"<form method="post" action="{base}/cancel"><input type="hidden" name="csrf" value="{csrf}"><label for="cancel-reason">Reason</label> <input id="cancel-reason" name="reason" required> <button type="submit" id="cancel">Cancel build</button></form>"#
        );
    }
    out.push_str("</section>");
}

fn attempt_table(out: &mut String, b: &Build, attempts: &[Attempt]) {
    out.push_str(r#"<table class="attempts"><caption>Every attempt, oldest first</caption><thead><tr><th scope="col">#</th><th scope="col">Milestone</th><th scope="col">Attempt</th><th scope="col">Outcome</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Exit</th><th scope="col">Error</th><th scope="col">Log</th></tr></thead><tbody>"#);
    for (i, a) in attempts.iter().enumerate() {
        let n = i + 1;
        let log = if a.log.is_some() {
            format!(r#"<a href="/api/v1/builds/{}/attempts/{n}/log">full log</a>"#, seg(b.number.as_str()))
        } else {
            "—".to_owned()
        };
        let _ = write!(
            out,
            r#"<tr class="attempt-{o}"><td>{n}</td><td>{code} {name}</td><td>{num}</td><td>{o}</td><td>{start}</td><td>{dur}</td><td>{exit}</td><td>{err}</td><td>{log}</td></tr>"#,
            o = charts::outcome(a.status),
            code = a.state.get(),
            name = esc(b.catalog.name_of(a.state)),
            num = a.number,
            start = html::time(a.started_at),
            dur = a.duration_ms.map(html::duration).unwrap_or_default(),
            exit = a.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            err = esc(a.error.as_deref().unwrap_or_default()),
        );
    }
    out.push_str("</tbody></table>");
}

async fn failure_list(
    out: &mut String,
    state: &AppState,
    b: &Build,
    attempts: &[Attempt],
    failures: &[FailureRecord],
) {
    out.push_str(r#"<section class="failures"><h2>Failures</h2>"#);
    if failures.is_empty() {
        out.push_str("<p>None recorded.</p></section>");
        return;
    }
    for f in failures {
        let attempt =
            attempts.iter().find(|a| a.state == f.state && a.number == f.attempt && a.log.is_some());
        let tail = match (&state.options.logs_dir, attempt) {
            (Some(logs), Some(a)) => match crate::routes::logs::locate(logs, b.number.as_str(), a).await {
                Some(file) => crate::routes::logs::tail(&file, TAIL_LINES).await,
                None => None,
            },
            _ => None,
        };
        let _ = write!(
            out,
            r#"<article class="failure"><h3>Failure {num} at {code} {name}, attempt {att}{resolved}</h3><dl><dt>Type</dt><dd>{ty}</dd><dt>Class</dt><dd>{class}</dd><dt>When</dt><dd>{at}</dd><dt>Message</dt><dd class="message">{msg}</dd></dl>{tail}</article>"#,
            num = f.number,
            code = f.state.get(),
            name = esc(b.catalog.name_of(f.state)),
            att = f.attempt,
            resolved = if f.resolved { " (resolved)" } else { "" },
            ty = esc(f.info.failure_type.as_str()),
            class = esc(f.info.class.as_str()),
            at = html::time(f.at),
            msg = esc(&f.info.message),
            tail = tail
                .map(|t| format!(
                    r#"<details open><summary>Log tail</summary><pre>{}</pre></details>"#,
                    esc(&t)
                ))
                .unwrap_or_default(),
        );
    }
    out.push_str("</section>");
}

fn artifact_table(out: &mut String, artifacts: &[buildstate_core::Artifact]) {
    out.push_str(r#"<section><h2>Artifacts</h2>"#);
    if artifacts.is_empty() {
        out.push_str("<p>None recorded.</p></section>");
        return;
    }
    out.push_str(r#"<table><thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Image id / URI</th><th scope="col">Cloud</th><th scope="col">Region</th><th scope="col">SHA-256</th><th scope="col">Size</th><th scope="col">Recorded</th></tr></thead><tbody>"#);
    for a in artifacts {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}{}</td></tr>"#,
            esc(&a.name),
            esc(a.kind.as_str()),
            esc(&a.uri),
            esc(a.cloud.as_deref().unwrap_or_default()),
            esc(a.region.as_deref().unwrap_or_default()),
            esc(&a.sha256.as_ref().map(|s| s.to_string()).unwrap_or_default()),
            a.size_bytes.map(|s| s.to_string()).unwrap_or_default(),
            html::time(a.created_at),
            if a.invalidated_at.is_some() { " (invalidated by a rewind)" } else { "" },
        );
    }
    out.push_str("</tbody></table></section>");
}

fn metadata(out: &mut String, b: &Build) {
    out.push_str(r#"<section><h2>Metadata</h2>"#);
    if b.metadata.is_empty() {
        out.push_str("<p>None.</p></section>");
        return;
    }
    out.push_str(r#"<dl class="metadata">"#);
    for (k, v) in &b.metadata {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k.as_str()), esc(&v.to_string()));
    }
    out.push_str("</dl></section>");
}

fn history_table(out: &mut String, b: &Build, history: &[buildstate_core::HistoryEvent]) {
    out.push_str(r#"<section><h2>History</h2><table class="history"><thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Event</th><th scope="col">Milestone</th><th scope="col">Attempt</th><th scope="col">Actor</th><th scope="col">Message</th></tr></thead><tbody>"#);
    for e in history {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.seq,
            html::time(e.at),
            esc(e.kind.as_str()),
            e.state.get(),
            esc(b.catalog.name_of(e.state)),
            e.attempt,
            esc(&e.actor),
            esc(e.message.as_deref().unwrap_or_default()),
        );
    }
    out.push_str("</tbody></table></section>");
}
