//! The dashboard through the router: escaping of hostile values, sign-in sessions and
//! their cookie, CSRF refusals that change nothing, scopes, the events stream and
//! attempt logs. (The real browser's checks are the CLI's `dashboard` test.)

use std::sync::Arc;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{App, token};
use crate::{AppState, router};

/// One router (one set of sessions) over the app's store.
struct Dash {
    app: App,
    router: Router,
}

/// An answer: status, `Set-Cookie`, `Location` and body text.
struct Answer {
    status: StatusCode,
    cookie: Option<String>,
    location: Option<String>,
    content_type: String,
    text: String,
}

impl Dash {
    async fn new(logs_dir: Option<std::path::PathBuf>) -> Dash {
        let mut app = App::new().await;
        app.options.logs_dir = logs_dir;
        let router = router(AppState::new(Arc::clone(&app.store), app.options.clone()));
        Dash { app, router }
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri).header("host", "dash.test");
        if let Some(c) = cookie {
            req = req.header("cookie", format!("{}={c}", crate::dashboard::session::COOKIE));
        }
        if form.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req =
            req.body(form.map_or_else(HttpBody::empty, |f| HttpBody::from(f.to_owned()))).expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("a response");
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (status, cookie, location) = (resp.status(), header("set-cookie"), header("location"));
        let content_type = header("content-type").unwrap_or_default();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Answer { status, cookie, location, content_type, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// Signs in with `token`: the session id.
    async fn sign_in(&self, token: &str) -> String {
        let a = self
            .send("POST", "/signin", None, Some(&format!("token={token}")), &[("origin", "http://dash.test")])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
        let cookie = a.cookie.expect("a session cookie");
        let value = cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_owned());
        value.expect("a session id")
    }

    /// The CSRF token a page shows the session.
    async fn csrf(&self, session: &str) -> String {
        let page = self.send("GET", "/", Some(session), None, &[]).await.text;
        let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
        page[at..].split('"').next().expect("its value").to_owned()
    }

    async fn build(&self, number: &str) -> Value {
        self.app.call("GET", &format!("/api/v1/builds/{number}"), Some(&self.app.read), None).await.1
    }

    /// A build that failed at 10 with `message` and carries `meta` as metadata.
    async fn failed(&self, message: &str, meta: &str) -> String {
        let b = self.app.create().await;
        let n = b["number"].as_str().expect("number").to_owned();
        let put = format!("/api/v1/builds/{n}/metadata/note");
        let (s, e) = self.app.call("PUT", &put, Some(&self.app.write), Some(json!({"value": meta}))).await;
        assert_eq!(s, StatusCode::OK, "{e}");
        for step in [
            json!({"action": "start", "state": 5}),
            json!({"action": "complete", "state": 5}),
            json!({"action": "start", "state": 10}),
        ] {
            assert_eq!(self.app.step(&n, step).await.0, StatusCode::OK);
        }
        let fail = json!({"action": "fail", "state": 10, "max_attempts": 3, "error": {"class": "transient", "message": message, "type": "network"}});
        assert_eq!(self.app.step(&n, fail).await.0, StatusCode::OK);
        n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_escaped_and_pages_forbid_inline_script() {
    let d = Dash::new(None).await;
    let n = d.failed("<script>alert('failure')</script>", "<script>alert(\"meta\")</script>").await;
    let s = d.sign_in(&d.app.read).await;
    for path in [
        format!("/builds/{n}"),
        "/".to_owned(),
        "/attention".to_owned(),
        "/reports".to_owned(),
        "/running".to_owned(),
    ] {
        let a = d.send("GET", &path, Some(&s), None, &[]).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        assert!(!a.text.contains("<script>alert"), "{path} carries the script: {}", a.text);
        assert!(a.content_type.starts_with("text/html"), "{path}");
    }
    let page = d.send("GET", &format!("/builds/{n}"), Some(&s), None, &[]).await.text;
    assert!(page.contains("&lt;script&gt;alert(&#39;failure&#39;)"), "the message is shown, as text");
    assert!(page.contains("&lt;script&gt;alert(&quot;meta&quot;)"), "the metadata is shown, as text");
    // Every script is a file of this server's; nothing inline.
    for tag in page.split("<script").skip(1) {
        assert!(tag.trim_start().starts_with("src=\"/assets/"), "an inline script: {tag}");
    }
    let req =
        Request::builder().uri("/").header("cookie", format!("{}={s}", crate::dashboard::session::COOKIE));
    let resp = d.router.clone().oneshot(req.body(HttpBody::empty()).expect("req")).await.expect("resp");
    let csp = resp.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_http_only_strict_and_secure_over_https() {
    let d = Dash::new(None).await;
    let a = d.send("POST", "/signin", None, Some(&format!("token={}", d.app.read)), &[]).await;
    let cookie = a.cookie.expect("a cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let id = cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v).expect("id");
    assert_eq!(id.len(), 64, "256 random bits, as hex: {id}");
    let a = d
        .send(
            "POST",
            "/signin",
            None,
            Some(&format!("token={}", d.app.read)),
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(a.cookie.expect("a cookie").contains("; Secure"), "over https");
    // A wrong token: the same refusal for every reason, no cookie.
    let a = d.send("POST", "/signin", None, Some("token=bst_000000000000_0000"), &[]).await;
    assert_eq!((a.status, a.cookie), (StatusCode::UNAUTHORIZED, None));
    // Without a session, pages send people to sign in; the API's stream wants a token.
    let a = d.send("GET", "/", None, None, &[]).await;
    assert_eq!((a.status, a.location.as_deref()), (StatusCode::SEE_OTHER, Some("/signin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_without_the_sessions_csrf_token_are_refused_and_change_nothing() {
    let d = Dash::new(None).await;
    let n = d.failed("boom", "m").await;
    let s = d.sign_in(&d.app.write).await;
    let csrf = d.csrf(&s).await;
    let before = d.build(&n).await;
    let retry = format!("/builds/{n}/retry");
    for (form, headers) in [
        ("reason=x".to_owned(), vec![]),
        ("reason=x&csrf=0000".to_owned(), vec![]),
        (format!("reason=x&csrf={csrf}"), vec![("sec-fetch-site", "cross-site")]),
        (format!("reason=x&csrf={csrf}"), vec![("origin", "https://evil.example")]),
        (format!("reason=x&csrf={csrf}"), vec![("origin", "null")]),
    ] {
        let a = d.send("POST", &retry, Some(&s), Some(&form), &headers).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{form} {headers:?}: {}", a.text);
        assert_eq!(d.build(&n).await, before, "a refused POST changes nothing");
    }
    let a = d
        .send(
            "POST",
            &retry,
            Some(&s),
            Some(&format!("reason=x&csrf={csrf}")),
            &[("sec-fetch-site", "same-origin"), ("origin", "http://dash.test")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(d.build(&n).await["status"], "running", "retried");
    let history = d.app.call("GET", &format!("/api/v1/builds/{n}/history"), Some(&d.app.read), None).await.1;
    let last = history.as_array().and_then(|h| h.last()).expect("an event");
    assert_eq!(last["actor"], "dashboard via token:ci", "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_session_cannot_retry_and_a_revoked_token_ends_its_session() {
    let d = Dash::new(None).await;
    let n = d.failed("boom", "m").await;
    let s = d.sign_in(&d.app.read).await;
    let csrf = d.csrf(&s).await;
    let page = d.send("GET", &format!("/builds/{n}"), Some(&s), None, &[]).await.text;
    assert!(!page.contains(r#"id="retry""#), "no retry button for a read session");
    let before = d.build(&n).await;
    let a = d.send("POST", &format!("/builds/{n}/retry"), Some(&s), Some(&format!("csrf={csrf}")), &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(d.build(&n).await, before, "nothing changed");
    // Revoked: the next request has no session.
    let admin = token(d.app.store.as_ref(), "ops", "admin").await;
    let (st, e) = d.app.call("POST", "/api/v1/tokens/dashboard/revoke", Some(&admin), None).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let a = d.send("GET", "/", Some(&s), None, &[]).await;
    assert_eq!((a.status, a.location.as_deref()), (StatusCode::SEE_OTHER, Some("/signin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_stream_sends_changes_and_ends_after_its_timeout() {
    let d = Dash::new(None).await;
    let a = d.send("GET", "/api/v1/events?timeout=0", None, None, &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "no token, no session");
    let s = d.sign_in(&d.app.read).await;
    let a = d.send("GET", "/api/v1/events?timeout=0", Some(&s), None, &[]).await;
    assert_eq!(a.status, StatusCode::OK, "a session reads it");
    assert!(a.content_type.starts_with("text/event-stream"), "{}", a.content_type);
    let a = d.send("GET", "/api/v1/events?timeout=301", Some(&s), None, &[]).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    // A change made while a stream is open arrives on it.
    let b = d.app.create().await;
    let n = b["number"].as_str().expect("number").to_owned();
    let read = d.app.read.clone();
    let router = d.router.clone();
    let stream = tokio::spawn(async move {
        let req = Request::builder()
            .uri("/api/v1/events?timeout=3")
            .header("authorization", format!("Bearer {read}"));
        let resp = router.oneshot(req.body(HttpBody::empty()).expect("req")).await.expect("resp");
        String::from_utf8_lossy(&resp.into_body().collect().await.expect("body").to_bytes()).into_owned()
    });
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(d.app.step(&n, json!({"action": "start", "state": 5})).await.0, StatusCode::OK);
    let text = stream.await.expect("the stream");
    assert!(text.contains("event: build"), "{text}");
    assert!(
        text.contains(&format!("\"number\":\"{n}\"")) && text.contains("\"status\":\"running\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_logs_are_streamed_from_the_logs_directory_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("s.logs");
    let d = Dash::new(Some(logs.clone())).await;
    let b = d.app.create().await;
    let n = b["number"].as_str().expect("number").to_owned();
    std::fs::create_dir_all(logs.join(&n)).expect("dir");
    let file = logs.join(&n).join("005-x-1-e2.log");
    std::fs::write(&file, "line one\nline two\n").expect("log");
    let start = json!({"action": "start", "state": 5, "log": file.display().to_string()});
    assert_eq!(d.app.step(&n, start).await.0, StatusCode::OK);
    assert_eq!(d.app.step(&n, json!({"action": "complete", "state": 5})).await.0, StatusCode::OK);
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, "secret").expect("secret");
    let hostile = json!({"action": "start", "state": 10, "log": outside.display().to_string()});
    assert_eq!(d.app.step(&n, hostile).await.0, StatusCode::OK);
    let auth = format!("Bearer {}", d.app.read);
    let log = |k: u32| format!("/api/v1/builds/{n}/attempts/{k}/log");
    // Attempt 1 is milestone 0, completed by the first start: it has no log.
    let a = d.send("GET", &log(2), None, None, &[("authorization", &auth)]).await;
    assert_eq!((a.status, a.text.as_str()), (StatusCode::OK, "line one\nline two\n"));
    assert!(a.content_type.starts_with("text/plain"), "{}", a.content_type);
    // A session reads it too (the dashboard's "full log" link).
    let s = d.sign_in(&d.app.read).await;
    assert_eq!(d.send("GET", &log(2), Some(&s), None, &[]).await.status, StatusCode::OK);
    for k in [1, 3, 9] {
        // 1: no log; 3: a path outside the logs directory; 9: no such attempt.
        let a = d.send("GET", &log(k), None, None, &[("authorization", &auth)]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
        assert!(!a.text.contains(&dir.path().display().to_string()), "no path in the message: {}", a.text);
        let v: Value = serde_json::from_str(&a.text).expect("the one error shape");
        assert_eq!(v["error"]["code"], "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_ends_its_open_streams() {
    let d = Dash::new(None).await;
    let state = AppState::new(Arc::clone(&d.app.store), d.app.options.clone());
    let events = Arc::clone(&state.events);
    let router = router(state);
    let read = d.app.read.clone();
    let stream = tokio::spawn(async move {
        let req = Request::builder().uri("/api/v1/events").header("authorization", format!("Bearer {read}"));
        let resp = router.oneshot(req.body(HttpBody::empty()).expect("req")).await.expect("resp");
        resp.into_body().collect().await.expect("body").to_bytes().len()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    events.close();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), stream).await;
    assert!(ended.is_ok(), "a 300 s stream ended when the server stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_stream_gets_what_it_missed() {
    let d = Dash::new(None).await;
    let b = d.app.create().await;
    let n = b["number"].as_str().expect("number").to_owned();
    let s = d.sign_in(&d.app.read).await;
    let router = d.router.clone();
    let cookie = format!("{}={s}", crate::dashboard::session::COOKIE);
    let open = cookie.clone();
    let first = tokio::spawn(async move {
        let req = Request::builder().uri("/api/v1/events?timeout=2").header("cookie", open);
        let resp = router.oneshot(req.body(HttpBody::empty()).expect("req")).await.expect("resp");
        String::from_utf8_lossy(&resp.into_body().collect().await.expect("body").to_bytes()).into_owned()
    });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(d.app.step(&n, json!({"action": "start", "state": 5})).await.0, StatusCode::OK);
    let seen = first.await.expect("the first stream");
    assert!(seen.contains("id: 1"), "{seen}");
    // Back with the id before it: the change is sent again; with its own id, nothing.
    let again = d.send("GET", "/api/v1/events?timeout=0", Some(&s), None, &[("last-event-id", "0")]).await;
    assert!(again.text.contains(&format!("\"number\":\"{n}\"")), "{}", again.text);
    let none = d.send("GET", "/api/v1/events?timeout=0", Some(&s), None, &[("last-event-id", "1")]).await;
    assert!(!none.text.contains("event: build"), "{}", none.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_reads_show_pages_but_never_act() {
    let mut app = App::new().await;
    app.options.allow_anonymous_read = true;
    let router = router(AppState::new(Arc::clone(&app.store), app.options.clone()));
    let d = Dash { app, router };
    let n = d.failed("boom", "m").await;
    let page = d.send("GET", "/", None, None, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Reading anonymously") && page.text.contains(&n), "{}", page.text);
    let before = d.build(&n).await;
    let a = d.send("POST", &format!("/builds/{n}/retry"), None, Some("reason=x"), &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(d.build(&n).await, before, "nothing changed");
}

/// Rewind and Cancel, as Retry: a write session's form with its CSRF token acts and is
/// recorded; a rewind without a milestone, or to one the rules refuse, changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewind_and_cancel_act_for_a_write_session_and_refusals_change_nothing() {
    let d = Dash::new(None).await;
    let n = d.failed("boom", "m").await;
    let s = d.sign_in(&d.app.write).await;
    let csrf = d.csrf(&s).await;
    let same = [("sec-fetch-site", "same-origin"), ("origin", "http://dash.test")];
    let before = d.build(&n).await;
    // No milestone, one ahead of the build (rules refuse a forward rewind), not a code.
    for form in [
        format!("csrf={csrf}&reason=again"),
        format!("csrf={csrf}&reason=again&to=55"),
        format!("csrf={csrf}&reason=again&to=abc"),
    ] {
        let a = d.send("POST", &format!("/builds/{n}/rewind"), Some(&s), Some(&form), &same).await;
        assert!(a.status.is_client_error(), "{form}: {} {}", a.status, a.text);
        assert_eq!(d.build(&n).await, before, "a refused rewind ({form}) changes nothing");
    }
    let a = d
        .send(
            "POST",
            &format!("/builds/{n}/rewind"),
            Some(&s),
            Some(&format!("csrf={csrf}&reason=redo&to=5")),
            &same,
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let b = d.build(&n).await;
    assert_eq!((b["state"].as_u64(), b["status"].as_str()), (Some(5), Some("running")), "{b}");
    let a = d
        .send(
            "POST",
            &format!("/builds/{n}/cancel"),
            Some(&s),
            Some(&format!("csrf={csrf}&reason=obsolete")),
            &same,
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(d.build(&n).await["status"], "cancelled");
    let history = d.app.call("GET", &format!("/api/v1/builds/{n}/history"), Some(&d.app.read), None).await.1;
    let kinds: Vec<&str> =
        history.as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.ends_with(&["rewound", "cancelled"]), "{kinds:?}");
    let last = history.as_array().and_then(|h| h.last()).expect("an event");
    assert_eq!(
        (last["actor"].as_str(), last["message"].as_str()),
        (Some("dashboard via token:ci"), Some("obsolete"))
    );
}

/// From a hostile review: a change made while nobody listened has no id, so a client
/// back with the id it last saw is told to reload, not given an empty replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_after_nobody_listened_is_told_to_reload() {
    let d = Dash::new(None).await;
    let b = d.app.create().await;
    let n = b["number"].as_str().expect("number").to_owned();
    let s = d.sign_in(&d.app.read).await;
    let router = d.router.clone();
    let cookie = format!("{}={s}", crate::dashboard::session::COOKIE);
    let first = tokio::spawn(async move {
        let req = Request::builder().uri("/api/v1/events?timeout=2").header("cookie", cookie);
        let resp = router.oneshot(req.body(HttpBody::empty()).expect("req")).await.expect("resp");
        String::from_utf8_lossy(&resp.into_body().collect().await.expect("body").to_bytes()).into_owned()
    });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(d.app.step(&n, json!({"action": "start", "state": 5})).await.0, StatusCode::OK);
    assert!(first.await.expect("the first stream").contains("id: 1"));
    // Nobody listens now; the watcher stops; this change gets no id.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(d.app.step(&n, json!({"action": "complete", "state": 5})).await.0, StatusCode::OK);
    let back = d.send("GET", "/api/v1/events?timeout=0", Some(&s), None, &[("last-event-id", "1")]).await;
    assert!(back.text.contains("event: reload"), "{}", back.text);
    let stale = d.send("GET", "/api/v1/events?timeout=0", Some(&s), None, &[("last-event-id", "999")]).await;
    assert!(stale.text.contains("event: reload"), "an id from before a restart: {}", stale.text);
}

/// From a hostile review: revoking a token ends the events stream it opened (within the
/// stream's re-check), as it ends its sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_open_events_stream() {
    let d = Dash::new(None).await;
    let (record, secret) = buildstate_store::tokens::issue(
        buildstate_core::Name::new("short-lived").expect("name"),
        "read".parse().expect("scopes"),
        None,
        buildstate_store::now(),
    )
    .expect("issue");
    d.app.store.create_token(&record).await.expect("store the token");
    let router = d.router.clone();
    let bearer = format!("Bearer {}", secret.reveal());
    let started = std::time::Instant::now();
    let stream = tokio::spawn(async move {
        let req = Request::builder().uri("/api/v1/events?timeout=60").header("authorization", bearer);
        let resp = router.oneshot(req.body(HttpBody::empty()).expect("req")).await.expect("resp");
        resp.into_body().collect().await.expect("body").to_bytes().len()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    d.app.store.revoke_token("short-lived").await.expect("revoke");
    tokio::time::timeout(std::time::Duration::from_secs(20), stream)
        .await
        .expect("the stream ends well before its 60 s timeout")
        .expect("the stream task");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "{:?}", started.elapsed());
}
