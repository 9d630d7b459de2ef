//! HTML for every page: one escaping function that every interpolated value goes
//! through (build metadata and failure messages are anyone's input), the page frame
//! with its navigation, and the small pieces every view shows (a status, a progress
//! bar, a duration). No template engine: `format!` and [`esc`].

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use buildstate_core::{Build, BuildStatus};

use super::session::Viewer;

/// `s` as HTML text or a quoted attribute value: `& < > " '` are escaped, so nothing a
/// value holds can open a tag, close an attribute or start a script.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment for a link (`/builds/{number}`): anything but unreserved characters
/// percent-encoded, then safe inside an attribute too.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// No script but this server's files, no inline script or style, no framing, forms
/// only to this server: whatever a value smuggled into a page could not run.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The views, in the navigation's order: (path, label).
const NAV: [(&str, &str); 4] =
    [("/", "Matrix"), ("/attention", "Attention"), ("/running", "Running"), ("/reports", "Reports")];

/// A whole page: `body` goes inside `<main id="live">`, the element the live script
/// refreshes when a change arrives; `watch` limits that to one build's changes.
pub fn page(
    status: StatusCode,
    title: &str,
    current: &str,
    viewer: &Viewer,
    watch: Option<&str>,
    body: &str,
) -> Response {
    let mut nav = String::new();
    for (path, label) in NAV {
        let here = if path == current { r#" aria-current="page""# } else { "" };
        let _ = write!(nav, r#"<a href="{path}"{here}>{label}</a>"#);
    }
    let who = match (&viewer.token, &viewer.csrf) {
        (Some(t), Some(csrf)) => format!(
            r#"<span>Signed in as <strong>{}</strong> ({})</span><form method="post" action="/signout"><input type="hidden" name="csrf" value="{}"><button type="submit">Sign out</button></form>"#,
            esc(t.name.as_str()),
            esc(&t.scopes.to_string()),
            esc(csrf)
        ),
        // `reads` without a token: the server lets anonymous reads through.
        _ if viewer.reads => r#"<span>Reading anonymously</span> <a href="/signin">Sign in</a>"#.to_owned(),
        _ => r#"<span>Not signed in</span> <a href="/signin">Sign in</a>"#.to_owned(),
    };
    let watch = watch.map(|id| format!(r#" data-watch="{}""#, esc(id))).unwrap_or_default();
    // Only a viewer who may read the events stream subscribes to it.
    let scripts = if viewer.reads {
        "<script src=\"/assets/htmx.min.js\" defer></script>\n<script src=\"/assets/live.js\" defer></script>\n"
    } else {
        ""
    };
    let html = format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}}'>
<title>{title} — buildstate</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/style.css">
{scripts}</head>
<body>
<a class="skip" href="#live">Skip to content</a>
<header><span class="brand">buildstate</span><nav aria-label="Views">{nav}</nav><div class="who">{who}</div></header>
<main id="live"{watch}>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"##,
        title = esc(title),
    );
    html_response(status, html)
}

/// An HTML answer with the headers every page carries.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with the pages' own
    // forms, which the CSRF check must refuse.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages show what a session may see: never kept by a shared cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A short page that says what went wrong (a refusal, a missing build).
pub fn message(status: StatusCode, viewer: &Viewer, title: &str, text: &str) -> Response {
    page(status, title, "", viewer, None, &format!(r#"<p class="notice" role="alert">{}</p>"#, esc(text)))
}

/// A status as text and colour (never colour alone): a class per status, its word.
pub fn status(s: BuildStatus, needs_person: bool) -> String {
    let person = if needs_person { r#" <span class="badge person">needs a person</span>"# } else { "" };
    format!(r#"<span class="badge status-{0}">{0}</span>{person}"#, s.as_str())
}

/// The milestone as a progress bar (0–100), with its code and name as text.
pub fn progress(b: &Build) -> String {
    let name = b.catalog.name_of(b.state);
    format!(
        r#"<progress class="status-{s}" max="100" value="{v}" aria-label="milestone {v} of 100">{v}%</progress> <span class="milestone">{v} {n}</span>"#,
        s = b.status.as_str(),
        v = b.state.get(),
        n = esc(name),
    )
}

/// Milliseconds as people read them: `4m 05s`, `1h 02m`, `850 ms`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A time to the second, in UTC.
pub fn time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A link to a build's page.
pub fn build_link(number: &str) -> String {
    format!(r#"<a href="/builds/{}">{}</a>"#, seg(number), esc(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        let hostile = r#"<script>alert("x")</script>' onload='x' & more"#;
        let e = esc(hostile);
        assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''), "{e}");
        assert_eq!(esc("a&b"), "a&amp;b");
        assert_eq!(esc("plain-text 1.2"), "plain-text 1.2");
        assert_eq!(seg("a b/../c\"<"), "a%20b%2F..%2Fc%22%3C");
    }

    #[test]
    fn durations_read_as_people_read_them() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(5_000), "5s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(3_720_000), "1h 02m");
    }
}
