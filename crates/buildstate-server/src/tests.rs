//! The API over a real SQLite store, request by request through the router (no socket:
//! the same service `serve` runs).

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use buildstate_core::{Name, Scopes};
use buildstate_store::Store;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{AppState, Options, router};

struct App {
    store: Arc<dyn Store>,
    options: Options,
    _dir: tempfile::TempDir,
    read: String,
    write: String,
}

fn name(n: &str) -> Name {
    Name::new(n).expect("name")
}

async fn token(store: &dyn Store, n: &str, scopes: &str) -> String {
    let scopes: Scopes = scopes.parse().expect("scopes");
    let (record, secret) =
        buildstate_store::tokens::issue(name(n), scopes, None, buildstate_store::now()).expect("issue");
    store.create_token(&record).await.expect("create token");
    secret.reveal()
}

impl App {
    async fn new() -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(buildstate_sqlite::SqliteStore::open(dir.path().join("s.db")).expect("open"));
        buildstate_store::conformance::seed_sample_catalog(store.as_ref(), "test").await;
        let read = token(store.as_ref(), "dashboard", "read").await;
        let write = token(store.as_ref(), "ci", "write").await;
        App { store, options: Options::default(), _dir: dir, read, write }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.raw(method, uri, auth, body.map(|b| b.to_string()), "application/json", &[]).await
    }

    async fn raw(
        &self,
        method: &str,
        uri: &str,
        auth: Option<&str>,
        body: Option<String>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() && !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.map_or_else(HttpBody::empty, HttpBody::from)).expect("request");
        let app = router(AppState::new(Arc::clone(&self.store), self.options.clone()));
        let resp = app.oneshot(req).await.expect("a response");
        let status = resp.status();
        let json = resp
            .headers()
            .get("content-type")
            .is_none_or(|t| t.to_str().is_ok_and(|t| t.starts_with("application/json")));
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else if json {
            serde_json::from_slice(&bytes).expect("JSON")
        } else {
            // Text (`/metrics`): as a JSON string.
            Value::String(String::from_utf8(bytes.to_vec()).expect("UTF-8"))
        };
        (status, value)
    }

    async fn create(&self) -> Value {
        let (s, b) = self
            .call(
                "POST",
                "/api/v1/builds",
                Some(&self.write),
                Some(json!({"platform": "aws-commercial", "os": "rhel-8.8", "image_type": "base"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    async fn step(&self, number: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", &format!("/api/v1/builds/{number}/transitions"), Some(&self.write), Some(body))
            .await
    }
}

mod dashboard;
mod metrics;

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("an error body: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let app = App::new().await;
    assert_eq!(app.call("GET", "/healthz", None, None).await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(app.call("GET", "/readyz", None, None).await, (StatusCode::OK, json!({"status": "ready"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_scopes_decide_who_may_do_what() {
    let app = App::new().await;
    let (s, none) = app.call("GET", "/api/v1/builds", None, None).await;
    assert_eq!((s, error_code(&none)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    // Unknown, malformed, wrong secret: the same answer.
    let unknown = format!("bst_000000000000_{}", "0".repeat(64));
    let forged = format!("{}{}", &app.read[..17], "f".repeat(64));
    for bad in [unknown.as_str(), "nonsense", forged.as_str()] {
        assert_eq!(app.call("GET", "/api/v1/builds", Some(bad), None).await, (s, none.clone()), "{bad}");
    }
    let (s, _) = app
        .raw("GET", "/api/v1/builds", None, None, "", &[("authorization", &format!("Basic {}", app.read))])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "only bearer tokens");
    assert_eq!(
        app.call("GET", "/api/v1/builds", Some(&app.read), None).await,
        (StatusCode::OK, json!({"builds": [], "next": null}))
    );
    let body = json!({"platform": "aws-commercial", "os": "rhel-8.8", "image_type": "base"});
    let (s, e) = app.call("POST", "/api/v1/builds", Some(&app.read), Some(body)).await;
    assert_eq!((s, error_code(&e)), (StatusCode::FORBIDDEN, "forbidden"));
    assert!(e["error"]["message"].as_str().is_some_and(|m| m.contains("write scope")), "{e}");
    assert_eq!(
        app.store.list_builds(&Default::default()).await.expect("list").len(),
        0,
        "refused: nothing stored"
    );
    app.store.revoke_token("ci").await.expect("revoke");
    let (s, _) = app.call("GET", "/api/v1/builds", Some(&app.write), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked token is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_reads_only_when_allowed() {
    let mut app = App::new().await;
    app.options.allow_anonymous_read = true;
    assert_eq!(app.call("GET", "/api/v1/builds", None, None).await.0, StatusCode::OK);
    let body = json!({"platform": "aws-commercial", "os": "rhel-8.8", "image_type": "base"});
    assert_eq!(app.call("POST", "/api/v1/builds", None, Some(body)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_follow_the_rules_of_the_cli() {
    let app = App::new().await;
    let b = app.create().await;
    let number = b["number"].as_str().expect("a number").to_owned();
    assert_eq!(b["created_by"], "token:ci");
    let (s, started) = app.step(&number, json!({"action": "start", "state": 5})).await;
    assert_eq!((s, started["status"].as_str()), (StatusCode::OK, Some("running")), "{started}");
    let (s, done) = app.step(&number, json!({"action": "complete", "state": 5, "exit_code": 0})).await;
    assert_eq!((s, done["state"].as_u64()), (StatusCode::OK, Some(10)), "on to the next milestone: {done}");
    let fail = json!({"action": "fail", "state": 10, "error": {"class": "transient", "message": "mirror 503", "type": "network"}});
    assert_eq!(app.step(&number, json!({"action": "start", "state": 10})).await.0, StatusCode::OK);
    let (s, failed) = app.step(&number, fail).await;
    assert_eq!((s, failed["status"].as_str()), (StatusCode::OK, Some("failed")), "{failed}");
    let (s, retried) = app.step(&number, json!({"action": "retry"})).await;
    assert_eq!((s, retried["status"].as_str()), (StatusCode::OK, Some("running")), "re-opened: {retried}");

    // A backward move is the rules' refusal, and changes nothing.
    let before = app.call("GET", &format!("/api/v1/builds/{number}"), Some(&app.read), None).await.1;
    let (s, e) = app.step(&number, json!({"action": "complete", "state": 0})).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "rejected"), "{e}");
    let (s, e) = app.step(&number, json!({"action": "start", "state": 7})).await;
    assert_eq!(
        (s, error_code(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, "rejected"),
        "a code outside the catalog: {e}"
    );
    let after = app.call("GET", &format!("/api/v1/builds/{number}"), Some(&app.read), None).await.1;
    assert_eq!(before, after, "a refused transition changes nothing");

    let (s, history) =
        app.call("GET", &format!("/api/v1/builds/{number}/history"), Some(&app.read), None).await;
    assert_eq!(s, StatusCode::OK);
    let kinds: Vec<&str> =
        history.as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.starts_with(&["created"]) && kinds.contains(&"failed") && kinds.contains(&"retried"),
        "{kinds:?}"
    );
    let (s, attempts) =
        app.call("GET", &format!("/api/v1/builds/{number}/attempts"), Some(&app.read), None).await;
    assert_eq!(s, StatusCode::OK);
    let statuses: Vec<(u64, &str)> = attempts
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| Some((a["number"].as_u64()?, a["status"].as_str()?)))
        .collect();
    assert!(statuses.contains(&(1, "failed")), "the failed attempt is listed: {attempts}");
    let (s, e) = app.call("GET", "/api/v1/builds/nope", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_makes_a_write_conditional() {
    let app = App::new().await;
    let b = app.create().await;
    let (number, version) =
        (b["number"].as_str().expect("number").to_owned(), b["version"].as_u64().expect("version"));
    let uri = format!("/api/v1/builds/{number}/transitions");
    let start = json!({"action": "start", "state": 5}).to_string();
    let stale = (version + 7).to_string();
    let (s, e) = app
        .raw("POST", &uri, Some(&app.write), Some(start.clone()), "application/json", &[("if-match", &stale)])
        .await;
    assert_eq!((s, error_code(&e)), (StatusCode::PRECONDITION_FAILED, "precondition_failed"), "{e}");
    let (s, e) = app
        .raw("POST", &uri, Some(&app.write), Some(start.clone()), "application/json", &[("if-match", "abc")])
        .await;
    assert_eq!((s, error_code(&e)), (StatusCode::BAD_REQUEST, "bad_request"));
    let current = format!("\"{version}\"");
    let (s, ok) = app
        .raw("POST", &uri, Some(&app.write), Some(start), "application/json", &[("if-match", &current)])
        .await;
    assert_eq!((s, ok["status"].as_str()), (StatusCode::OK, Some("running")), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_error_shape_and_change_nothing() {
    let app = App::new().await;
    let uri = "/api/v1/builds";
    let w = Some(app.write.as_str());
    let (s, e) = app.raw("POST", uri, w, Some("{not json".into()), "application/json", &[]).await;
    assert_eq!((s, error_code(&e)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (s, e) = app.raw("POST", uri, w, Some("{}".into()), "text/plain", &[]).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
    let extra =
        json!({"platform": "aws-commercial", "os": "rhel-8.8", "image_type": "base", "colour": "red"});
    let (s, e) = app.call("POST", uri, w, Some(extra)).await;
    assert_eq!(
        (s, error_code(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        "unknown fields: {e}"
    );
    let bad_name = json!({"platform": "AWS Commercial", "os": "rhel-8.8", "image_type": "base"});
    assert_eq!(app.call("POST", uri, w, Some(bad_name)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = json!({"platform": "azure", "os": "rhel-8.8", "image_type": "base"});
    let (s, e) = app.call("POST", uri, w, Some(missing)).await;
    assert_eq!(
        (s, error_code(&e)),
        (StatusCode::NOT_FOUND, "not_found"),
        "a platform the catalog lacks: {e}"
    );
    let huge = format!("{{\"platform\": \"{}\"}}", "x".repeat(crate::BODY_LIMIT + 1));
    let (s, e) = app.raw("POST", uri, w, Some(huge), "application/json", &[]).await;
    assert_eq!((s, error_code(&e)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let (s, e) = app.call("GET", "/api/v1/builds?limit=0", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let (s, e) = app.call("GET", "/api/v1/builds?colour=red", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::BAD_REQUEST, "bad_request"));
    // A path no route has is told apart from a build that is not there (a client with
    // a wrong server URL says so).
    let (s, e) = app.call("GET", "/api/v2/nothing", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::NOT_FOUND, "no_route"));
    let (s, e) = app.call("PATCH", "/api/v1/builds", Some(&app.write), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"), "{e}");
    assert_eq!(
        app.store.list_builds(&Default::default()).await.expect("list").len(),
        0,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_the_cli_reports() {
    let app = App::new().await;
    app.create().await;
    let (s, over) = app.call("GET", "/api/v1/reports/overview", Some(&app.read), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(over["report"], "overview");
    assert_eq!(over["rows"][0]["total"], 1);
    assert_eq!(over["rows"][0]["pending"], 1);
    let (s, e) = app.call("GET", "/api/v1/reports/overveiw", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, matrix) =
        app.call("GET", "/api/v1/reports/matrix?status=pending,running", Some(&app.read), None).await;
    assert_eq!((s, matrix["rows"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{matrix}");
    // `since` as the CLI reads it.
    for since in ["90d", "36h", "2026-01-01", "2026-01-01T00:00:00Z"] {
        let (s, over) =
            app.call("GET", &format!("/api/v1/reports/overview?since={since}"), Some(&app.read), None).await;
        assert_eq!(
            (s, over["rows"][0]["total"].as_u64()),
            (StatusCode::OK, Some(1)),
            "since={since}: {over}"
        );
        let (s, page) =
            app.call("GET", &format!("/api/v1/builds?since={since}"), Some(&app.read), None).await;
        assert_eq!((s, page["builds"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "since={since}");
    }
    for bad in ["yesterday", "0d", "2999-01-01"] {
        let (s, e) =
            app.call("GET", &format!("/api/v1/reports/overview?since={bad}"), Some(&app.read), None).await;
        assert_eq!(
            (s, error_code(&e)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "since={bad}: {e}"
        );
    }
    let (s, e) = app.call("GET", "/api/v1/reports/overview?status=bogus", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_artifacts_metadata_and_documents() {
    let app = App::new().await;
    let b = app.create().await;
    let number = b["number"].as_str().expect("number").to_owned();
    let at = |tail: &str| format!("/api/v1/builds/{number}{tail}");
    app.step(&number, json!({"action": "start", "state": 5})).await;
    let fail = json!({"action": "fail", "state": 5, "error": {"class": "persistent", "message": "disk full", "type": "infrastructure"}});
    assert_eq!(app.step(&number, fail).await.0, StatusCode::OK);

    let (s, failures) = app.call("GET", &at("/failures?unresolved=true"), Some(&app.read), None).await;
    assert_eq!((s, failures[0]["message"].as_str()), (StatusCode::OK, Some("disk full")), "{failures}");
    let (s, all) = app.call("GET", "/api/v1/failures?type=infrastructure", Some(&app.read), None).await;
    assert_eq!((s, all.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (s, resolved) = app
        .call("POST", &at("/failures/resolve"), Some(&app.write), Some(json!({"notes": "grew the disk"})))
        .await;
    assert_eq!((s, resolved[0]["resolved"].as_bool()), (StatusCode::OK, Some(true)), "{resolved}");

    let artifact =
        json!({"name": "ami", "kind": "image", "uri": "ami-0abc", "region": "us-east-1", "cloud": "aws"});
    let (s, list) = app.call("POST", &at("/artifacts"), Some(&app.write), Some(artifact)).await;
    assert_eq!(
        (s, list[0]["milestone"].as_u64()),
        (StatusCode::CREATED, Some(5)),
        "the store's milestone: {list}"
    );
    let (s, list) = app.call("GET", &at("/artifacts"), Some(&app.read), None).await;
    assert_eq!((s, list[0]["uri"].as_str()), (StatusCode::OK, Some("ami-0abc")));
    assert_eq!(list[0]["cloud"], "aws", "the cloud is kept: {list}");

    let (s, meta) =
        app.call("PUT", &at("/metadata/pipeline"), Some(&app.write), Some(json!({"value": "images"}))).await;
    assert_eq!((s, meta["metadata"]["pipeline"].as_str()), (StatusCode::OK, Some("images")), "{meta}");
    let (s, e) =
        app.call("PUT", &at("/metadata/Bad%20Key"), Some(&app.write), Some(json!({"value": "x"}))).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let (s, meta) = app.call("DELETE", &at("/metadata/pipeline"), Some(&app.write), None).await;
    assert_eq!((s, meta["metadata"].get("pipeline")), (StatusCode::OK, None));

    let (s, doc) = app.call("GET", &at("/export"), Some(&app.read), None).await;
    assert_eq!((s, doc["build_number"].as_str()), (StatusCode::OK, Some(number.as_str())));
    // A document carries its history's actors: importing one is an admin's act.
    let (s, e) = app.call("POST", "/api/v1/import", Some(&app.write), Some(doc.clone())).await;
    assert_eq!((s, error_code(&e)), (StatusCode::FORBIDDEN, "forbidden"), "{e}");
    let admin = token(app.store.as_ref(), "ops", "admin").await;
    let (s, e) = app.call("POST", "/api/v1/import", Some(&admin), Some(doc.clone())).await;
    assert_eq!((s, error_code(&e)), (StatusCode::CONFLICT, "already_exists"), "{e}");
    let (s, again) = app.call("POST", "/api/v1/import?replace=true", Some(&admin), Some(doc.clone())).await;
    assert_eq!((s, again["number"].as_str()), (StatusCode::CREATED, Some(number.as_str())), "{again}");
    let mut torn = doc;
    torn["history"] = json!([]);
    let (s, e) = app.call("POST", "/api/v1/import?replace=true", Some(&admin), Some(torn)).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_document"), "{e}");

    let (s, platforms) = app.call("GET", "/api/v1/catalog/platforms", Some(&app.read), None).await;
    assert_eq!((s, platforms.as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{platforms}");
    assert_eq!(
        app.call("GET", "/api/v1/catalog/clouds", Some(&app.read), None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_listed_without_their_tokens() {
    let app = App::new().await;
    let b = app.create().await;
    let id: buildstate_core::BuildId = b["id"].as_str().expect("id").parse().expect("an id");
    let request = buildstate_core::LeaseRequest {
        owner: "runner-7".into(),
        host: "ci-host".into(),
        pid: 42,
        ttl: std::time::Duration::from_secs(600),
    };
    let lease = app.store.acquire_lease(id, &request).await.expect("lease");
    let (s, leases) = app.call("GET", "/api/v1/leases", Some(&app.read), None).await;
    assert_eq!((s, leases[0]["owner"].as_str()), (StatusCode::OK, Some("runner-7")), "{leases}");
    assert!(
        !leases.to_string().contains(&lease.token.get().to_string()),
        "the token is the runner's secret: {leases}"
    );
    assert_eq!(leases[0]["generation"].as_u64(), Some(lease.token.generation()));
    let number = b["number"].as_str().expect("number");
    let (s, broken) =
        app.call("POST", &format!("/api/v1/builds/{number}/lease/break"), Some(&app.write), None).await;
    assert_eq!((s, broken["owner"].as_str()), (StatusCode::OK, Some("runner-7")));
    assert_eq!(app.call("GET", "/api/v1/leases", Some(&app.read), None).await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_by_cursor() {
    let app = App::new().await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(app.create().await["number"].as_str().expect("number").to_owned());
    }
    made.reverse();
    let (mut seen, mut uri) = (Vec::new(), "/api/v1/builds?limit=2".to_owned());
    loop {
        let (s, page) = app.call("GET", &uri, Some(&app.read), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        seen.extend(
            page["builds"]
                .as_array()
                .expect("builds")
                .iter()
                .map(|b| b["number"].as_str().expect("n").to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/v1/builds?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, made, "newest first, each once");
    let (s, e) = app.call("GET", "/api/v1/builds?after=garbage", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
}

/// The API document's operations: (method, path, the scope it names).
fn operations(doc: &Value) -> Vec<(String, String, Option<String>)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let scope = op.get("x-buildstate-scope").and_then(Value::as_str).map(str::to_owned);
            ops.push((method.to_ascii_uppercase(), path.clone(), scope));
        }
    }
    ops.sort();
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_route_and_only_routes() {
    let app = App::new().await;
    let (s, doc) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK, "the document needs no token");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut table: Vec<(String, String, Option<String>)> = crate::routes()
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned(), r.scope.map(|s| s.as_str().to_owned())))
        .collect();
    table.sort();
    assert_eq!(operations(&doc), table, "every route is documented, with its scope, and nothing else");
    // Every `$ref` resolves, and every route answers its errors in the one shape.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().expect("a name");
        assert!(doc["components"]["schemas"].get(name).is_some(), "$ref to {name}");
    }
    for (method, path, scope) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        for (status, resp) in responses {
            if !status.starts_with('2') {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
        if scope.is_some() {
            assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}");
            assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
        }
        for name in crate::openapi::path_params(&path) {
            let documented =
                op["parameters"].as_array().expect("parameters").iter().any(|p| p["name"] == name);
            assert!(documented, "{method} {path}: the path parameter {name}");
        }
    }
    let list = &doc["paths"]["/api/v1/builds"]["get"]["parameters"];
    let names: Vec<&str> =
        list.as_array().expect("params").iter().filter_map(|p| p["name"].as_str()).collect();
    for q in ["status", "platform", "since", "limit", "after", "needs_intervention"] {
        assert!(names.contains(&q), "the list's query parameter {q}: {names:?}");
    }
    // Answers are described as the server writes them: a field it always writes is
    // required there, though a client may leave it out of a request.
    let schemas = &doc["components"]["schemas"];
    let answer = &doc["paths"]["/api/v1/builds/{reference}/artifacts"]["get"]["responses"]["200"];
    assert_eq!(
        answer["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/ArtifactAnswer"
    );
    let required = |name: &str| schemas[name]["required"].as_array().cloned().unwrap_or_default();
    assert!(required("ArtifactAnswer").contains(&json!("milestone")), "{}", schemas["ArtifactAnswer"]);
    assert!(!required("Artifact").contains(&json!("milestone")), "{}", schemas["Artifact"]);
    // The cloud is written only when there is one, and a request may give one.
    assert!(schemas["ArtifactAnswer"]["properties"]["cloud"].is_object(), "{}", schemas["ArtifactAnswer"]);
    assert!(!required("ArtifactAnswer").contains(&json!("cloud")), "{}", schemas["ArtifactAnswer"]);
    assert!(schemas["ArtifactBody"]["properties"]["cloud"].is_object(), "{}", schemas["ArtifactBody"]);
    let mut anonymous = App::new().await;
    anonymous.options.allow_anonymous_read = true;
    let doc = anonymous.call("GET", "/api/v1/openapi.json", None, None).await.1;
    assert_eq!(doc["paths"]["/api/v1/builds"]["get"]["security"], json!([{"bearer": []}, {}]));
    assert_eq!(doc["paths"]["/api/v1/builds"]["post"]["security"], json!([{"bearer": []}]));
}

/// A value for a path parameter that passes no check but the route's scope: every
/// request below is refused or answered for its token alone.
fn placeholder(name: &str) -> &'static str {
    match name {
        "kind" => "platforms",
        "report" => "overview",
        "key" => "k",
        "id" => "000000000000",
        "name" => "nope",
        "n" => "1",
        _ => "no-such-build",
    }
}

/// Every operation of the API document, with no token, a read token, a write token
/// and an admin token: 401 without one (health checks aside), 403 when the token's
/// scope is below the one the document names, and never either when it is enough (the
/// request may still be wrong in other ways: the scope is checked first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_document_enforces_its_scope() {
    use buildstate_core::Scope;
    let app = App::new().await;
    let admin = token(app.store.as_ref(), "ops", "admin").await;
    let tokens = [(Scope::Read, app.read.clone()), (Scope::Write, app.write.clone()), (Scope::Admin, admin)];
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await.1;
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "the document lists every route: {}", ops.len());
    for (method, template, scope) in ops {
        let mut path = template.clone();
        for name in crate::openapi::path_params(&template) {
            path = path.replace(&format!("{{{name}}}"), placeholder(name));
        }
        if template == "/api/v1/events" {
            // The stream ends at once after its first event, instead of minutes later.
            path.push_str("?timeout=0");
        }
        let op = &doc["paths"][&template][method.to_ascii_lowercase()];
        let body = op.get("requestBody").map(|_| "{}".to_owned());
        let (s, e) = app.raw(&method, &path, None, body.clone(), "application/json", &[]).await;
        let needed: Option<Scope> = scope.map(|s| match s.as_str() {
            "read" => Scope::Read,
            "write" => Scope::Write,
            "admin" => Scope::Admin,
            other => panic!("{method} {template}: an unknown scope {other}"),
        });
        match needed {
            None => assert_ne!(s, StatusCode::UNAUTHORIZED, "{method} {path} is public"),
            Some(_) => {
                assert_eq!((s, error_code(&e)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{method} {path}")
            }
        }
        for (held, t) in &tokens {
            let (s, e) = app.raw(&method, &path, Some(t), body.clone(), "application/json", &[]).await;
            if needed.is_some_and(|n| *held < n) {
                assert_eq!(
                    (s, error_code(&e)),
                    (StatusCode::FORBIDDEN, "forbidden"),
                    "{method} {path} with {held}"
                );
            } else {
                assert!(
                    s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                    "{method} {path} with {held}: {s} {e}"
                );
                let documented = op["responses"].get(s.as_str()).is_some();
                assert!(documented, "{method} {path} with {held}: {s} is not in the document: {e}");
            }
        }
    }
}

/// The origin a GET from `origin` is allowed for, if any.
async fn allow(app: &App, origin: &str) -> Option<String> {
    let req = Request::builder()
        .method("GET")
        .uri("/api/v1/builds")
        .header("origin", origin)
        .header("authorization", format!("Bearer {}", app.read))
        .body(HttpBody::empty())
        .expect("req");
    let resp =
        router(AppState::new(Arc::clone(&app.store), app.options.clone())).oneshot(req).await.expect("resp");
    resp.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_only_for_configured_origins() {
    let mut app = App::new().await;
    assert_eq!(allow(&app, "https://dash.example.com").await, None, "off unless configured");
    app.options.cors_origins = vec!["https://dash.example.com".into()];
    assert_eq!(allow(&app, "https://dash.example.com").await.as_deref(), Some("https://dash.example.com"));
    assert_eq!(allow(&app, "https://evil.example.com").await, None, "another origin gets nothing");
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/api/v1/builds")
        .header("origin", "https://dash.example.com")
        .header("access-control-request-method", "POST")
        .body(HttpBody::empty())
        .expect("req");
    let resp = router(AppState::new(Arc::clone(&app.store), app.options.clone()))
        .oneshot(preflight)
        .await
        .expect("resp");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let allowed =
        resp.headers().get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(resp.headers().get("access-control-allow-credentials").is_none(), "never credentials");
}

/// From a hostile review: details nested too deep for an export to import back are
/// refused where they are written; If-Match is honoured by every write that takes it and
/// refused where there is nothing to compare; a path that is not UTF-8 gets the shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_bounded_and_conditional_everywhere() {
    let app = App::new().await;
    let b = app.create().await;
    let number = b["number"].as_str().expect("number").to_owned();
    app.step(&number, json!({"action": "start", "state": 5})).await;
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let fail =
        json!({"action": "fail", "state": 5, "error": {"class": "persistent", "details": {"d": deep}}});
    let before = app.call("GET", &format!("/api/v1/builds/{number}"), Some(&app.read), None).await.1;
    let (s, e) = app.step(&number, fail).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{e}");
    assert!(e["error"]["message"].as_str().is_some_and(|m| m.contains("nest deeper")), "{e}");
    assert_eq!(app.call("GET", &format!("/api/v1/builds/{number}"), Some(&app.read), None).await.1, before);
    let fail =
        json!({"action": "fail", "state": 5, "error": {"class": "persistent", "message": "disk full"}});
    let (_, failed) = app.step(&number, fail).await;
    let stale = (failed["version"].as_u64().expect("version") - 1).to_string();
    let w = Some(app.write.as_str());
    let uri = format!("/api/v1/builds/{number}/failures/resolve");
    let body = json!({"notes": "fixed"}).to_string();
    let (s, e) = app.raw("POST", &uri, w, Some(body), "application/json", &[("if-match", &stale)]).await;
    assert_eq!((s, error_code(&e)), (StatusCode::PRECONDITION_FAILED, "precondition_failed"), "{e}");
    let uri = format!("/api/v1/builds/{number}/artifacts");
    let body = json!({"name": "ami", "kind": "image", "uri": "ami-1"}).to_string();
    let (s, e) = app.raw("POST", &uri, w, Some(body), "application/json", &[("if-match", &stale)]).await;
    assert_eq!((s, error_code(&e)), (StatusCode::PRECONDITION_FAILED, "precondition_failed"), "{e}");
    assert_eq!(
        app.store.artifacts(failed["id"].as_str().expect("id").parse().expect("id")).await.expect("list"),
        vec![]
    );
    let uri = format!("/api/v1/builds/{number}/lease/break");
    let (s, e) = app.raw("POST", &uri, w, None, "", &[("if-match", &stale)]).await;
    assert_eq!((s, error_code(&e)), (StatusCode::BAD_REQUEST, "bad_request"), "{e}");
    let (s, e) = app.call("GET", "/api/v1/builds/%FF%FE", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::BAD_REQUEST, "bad_request"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_runner_holds_the_lease_and_fences_others() {
    let app = App::new().await;
    let number = app.create().await["number"].as_str().expect("number").to_owned();
    let lease_path = format!("/api/v1/builds/{number}/lease");
    let ask = json!({"owner": "runner-1", "host": "ci-east", "pid": 7, "ttl_ms": 60000});
    let (s, lease) = app.call("POST", &lease_path, Some(&app.write), Some(ask.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{lease}");
    let token = lease["token"].as_u64().expect("the holder gets its token").to_string();

    // A second runner is refused, and told who holds it (never the token).
    let (s, held) = app.call("POST", &lease_path, Some(&app.write), Some(ask)).await;
    assert_eq!((s, error_code(&held)), (StatusCode::CONFLICT, "lease_held"), "{held}");
    assert!(!held.to_string().contains(&token), "{held}");
    assert_eq!(held["error"]["detail"]["lease"]["owner"], "runner-1", "{held}");

    // Writes without the token, or with a stale one, change nothing.
    let start = json!({"action": "start", "state": 5});
    let (s, b) = app.step(&number, start.clone()).await;
    assert_eq!((s, error_code(&b)), (StatusCode::CONFLICT, "lease_held"), "{b}");
    let path = format!("/api/v1/builds/{number}/transitions");
    let stale = (lease["token"].as_u64().expect("token") ^ 1).to_string();
    let (s, b) = app
        .raw(
            "POST",
            &path,
            Some(&app.write),
            Some(start.to_string()),
            "application/json",
            &[("buildstate-lease-token", &stale)],
        )
        .await;
    assert_eq!((s, error_code(&b)), (StatusCode::CONFLICT, "stale_lease"), "{b}");
    let (s, b) = app
        .raw(
            "POST",
            &path,
            Some(&app.write),
            Some(start.to_string()),
            "application/json",
            &[("buildstate-lease-token", "seven")],
        )
        .await;
    assert_eq!((s, error_code(&b)), (StatusCode::BAD_REQUEST, "bad_request"), "{b}");
    assert_eq!(
        app.call("GET", &format!("/api/v1/builds/{number}"), Some(&app.read), None).await.1["state"],
        0
    );

    // The holder writes, renews and lets go.
    let (s, b) = app
        .raw(
            "POST",
            &path,
            Some(&app.write),
            Some(start.to_string()),
            "application/json",
            &[("buildstate-lease-token", &token)],
        )
        .await;
    assert_eq!((s, &b["state"]), (StatusCode::OK, &json!(5)), "{b}");
    let holder = json!({"token": lease["token"], "ttl_ms": 120000});
    let (s, renewed) = app.call("POST", &format!("{lease_path}/renew"), Some(&app.write), Some(holder)).await;
    assert_eq!((s, &renewed["token"]), (StatusCode::OK, &lease["token"]), "{renewed}");
    let (s, _) = app
        .call(
            "POST",
            &format!("{lease_path}/renew"),
            Some(&app.write),
            Some(json!({"token": lease["token"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a renewal names its ttl");
    let (s, _) = app
        .call(
            "POST",
            &format!("{lease_path}/release"),
            Some(&app.write),
            Some(json!({"token": lease["token"]})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.call("GET", "/api/v1/leases", Some(&app.read), None).await.1, json!([]));
    let (s, b) = app.call("POST", &lease_path, Some(&app.read), None).await;
    assert_eq!((s, error_code(&b)), (StatusCode::FORBIDDEN, "forbidden"), "{b}");

    // Heartbeats of a worker on another machine.
    let beat = json!({"name": "w1", "host": "ci-west", "pid": 9, "heartbeat_ms": 5000});
    let (s, first) = app.call("POST", "/api/v1/workers/beat", Some(&app.write), Some(beat.clone())).await;
    assert_eq!((s, first), (StatusCode::OK, Value::Null));
    let (s, again) = app.call("POST", "/api/v1/workers/beat", Some(&app.write), Some(beat.clone())).await;
    assert_eq!((s, again["name"].as_str()), (StatusCode::OK, Some("w1")), "{again}");
    let (s, list) = app.call("GET", "/api/v1/workers", Some(&app.read), None).await;
    assert_eq!((s, list["workers"][0]["host"].as_str()), (StatusCode::OK, Some("ci-west")), "{list}");
    let (s, _) = app.call("POST", "/api/v1/workers/exited", Some(&app.write), Some(beat)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app
        .call(
            "POST",
            "/api/v1/workers/beat",
            Some(&app.write),
            Some(json!({"name": "w", "host": "h", "pid": 1, "heartbeat_ms": 0})),
        )
        .await;
    assert_eq!((s, error_code(&b)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_and_tokens_are_administered_through_the_api() {
    let app = App::new().await;
    let admin = token(app.store.as_ref(), "ops", "admin").await;
    let item = json!({"kind": "platform", "name": "oci", "display_name": "Oracle", "provider": "oci"});
    let (s, b) = app.call("POST", "/api/v1/catalog/platforms", Some(&app.write), Some(item.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app.call("POST", "/api/v1/catalog/platforms", Some(&app.write), Some(item)).await;
    assert_eq!((s, error_code(&b)), (StatusCode::CONFLICT, "already_exists"), "{b}");
    let (s, b) = app.call("GET", "/api/v1/catalog/platforms/oci", Some(&app.read), None).await;
    assert_eq!((s, b["name"].as_str()), (StatusCode::OK, Some("oci")), "{b}");
    let (s, b) = app.call("GET", "/api/v1/catalog/clouds/oci", Some(&app.read), None).await;
    assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "not_found"), "{b}");
    let (s, _) = app.call("DELETE", "/api/v1/catalog/platforms/oci", Some(&app.write), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "removal is the admin's");
    let (s, _) = app.call("DELETE", "/api/v1/catalog/platforms/oci", Some(&admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.call("GET", "/api/v1/catalog/platforms/oci", Some(&app.read), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A token the client issued: the server sees only its hash, and it works at once.
    let (record, secret) = buildstate_store::tokens::issue(
        name("remote"),
        "read".parse().expect("scopes"),
        None,
        buildstate_store::now(),
    )
    .expect("issue");
    let body = serde_json::to_value(&record).expect("JSON");
    assert!(!body.to_string().contains(&secret.reveal()));
    let (s, b) = app.call("POST", "/api/v1/tokens", Some(&admin), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = app.call("GET", "/api/v1/builds", Some(&secret.reveal()), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, list) = app.call("GET", "/api/v1/tokens", Some(&admin), None).await;
    assert_eq!((s, list.as_array().map(Vec::len)), (StatusCode::OK, Some(4)), "{list}");
    let (s, b) = app.call("POST", "/api/v1/tokens/remote/revoke", Some(&admin), None).await;
    assert_eq!((s, b["name"].as_str()), (StatusCode::OK, Some("remote")), "{b}");
    let (s, _) = app.call("GET", "/api/v1/builds", Some(&secret.reveal()), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked token is refused at once");
}

/// What schemathesis found, each kept as a case: a reference several builds match is a
/// conflict (not a malformed request); `5.0` is the integer 5; `limit` outside 1 to
/// 1000 is refused on failures as on builds; a report's status list is words and
/// commas, nothing else; and integers in the document carry their Rust type's range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_schemathesis_found() {
    let app = App::new().await;
    let a = app.create().await;
    for n in ["amb-1", "amb-2"] {
        let body = json!({"platform": "aws-commercial", "os": "rhel-8.8", "image_type": "base", "number": n});
        assert_eq!(
            app.call("POST", "/api/v1/builds", Some(&app.write), Some(body)).await.0,
            StatusCode::CREATED
        );
    }
    let (s, e) = app.call("GET", "/api/v1/builds/amb", Some(&app.read), None).await;
    assert_eq!((s, error_code(&e)), (StatusCode::CONFLICT, "ambiguous_reference"), "{e}");

    let number = a["number"].as_str().expect("number").to_owned();
    let (s, b) = app.step(&number, json!({"action": "start", "state": 5.0})).await;
    assert_eq!((s, &b["state"]), (StatusCode::OK, &json!(5)), "a whole float is an integer: {b}");
    let (s, e) = app.step(&number, json!({"action": "complete", "state": 5.5})).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{e}");

    for limit in ["0", "1001"] {
        let (s, e) = app.call("GET", &format!("/api/v1/failures?limit={limit}"), Some(&app.read), None).await;
        assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{limit}: {e}");
    }
    for bad in [",", "pending,", "pending, running"] {
        let uri = format!("/api/v1/reports/overview?status={}", bad.replace(' ', "%20"));
        let (s, e) = app.call("GET", &uri, Some(&app.read), None).await;
        assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{bad:?}: {e}");
    }
    let (s, _) = app.call("GET", "/api/v1/reports/overview?status=", Some(&app.read), None).await;
    assert_eq!(s, StatusCode::OK, "empty: any status");

    // A float past 2^53 was rounded on the way in: no integer, even at u64::MAX.
    let lease_path = format!("/api/v1/builds/{number}/lease");
    let ask = r#"{"owner": "r", "host": "h", "pid": 1, "ttl_ms": 1000, "take_over": 18446744073709551616}"#;
    let (s, e) =
        app.raw("POST", &lease_path, Some(&app.write), Some(ask.into()), "application/json", &[]).await;
    assert_eq!((s, error_code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{e}");
    let (s, e) = app
        .call(
            "POST",
            &format!("{lease_path}/release"),
            Some(&app.write),
            Some(json!({"token": 1, "ttl_ms": 5})),
        )
        .await;
    assert_eq!(
        (s, error_code(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        "a release takes the token alone: {e}"
    );

    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await.1;
    let artifact = &doc["components"]["schemas"]["ArtifactBody"]["properties"];
    assert_eq!(artifact["size_bytes"]["maximum"], json!(i64::MAX), "{artifact}");
    assert_eq!(doc["components"]["schemas"]["RenewBody"]["required"], json!(["token", "ttl_ms"]));
    let beat = &doc["components"]["schemas"]["BeatBody"]["properties"];
    assert_eq!((&beat["pid"]["minimum"], &beat["pid"]["maximum"]), (&json!(0), &json!(u32::MAX)), "{beat}");
    assert_eq!(
        (&beat["heartbeat_ms"]["minimum"], &beat["heartbeat_ms"]["maximum"]),
        (&json!(1), &json!(86_400_000))
    );
    assert!(beat["name"]["pattern"].is_string(), "{beat}");
}
