//! `GET /metrics` over a seeded SQLite store: the figures, the zeros of known label sets,
//! no build id anywhere, the HTTP histogram by route template, and the real `promtool
//! check metrics` on the text.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use buildstate_core::{
    Build, CatalogItem, Command, FailureClass, FailureInfo, LeaseRequest, OsVersion, Platform, StateCode,
};
use buildstate_store::{Guard, Store};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{App, name};
use crate::{AppState, Options, router};

fn code(n: i64) -> StateCode {
    StateCode::new(n).expect("a code")
}

async fn apply(store: &dyn Store, b: &Build, command: Command) {
    store.apply(b.id, &command, Guard::none()).await.expect("apply");
}

fn complete(n: i64) -> Command {
    Command::Complete { state: code(n), actor: "t".into(), exit_code: Some(0), log: None }
}

fn fail(n: i64, class: FailureClass, failure_type: &str) -> Command {
    let failure = FailureInfo {
        failure_type: failure_type.parse().expect("a failure type"),
        class,
        component: None,
        message: "it broke".into(),
        details: Default::default(),
        exit_code: Some(1),
    };
    Command::Fail { state: code(n), actor: "t".into(), failure, max_attempts: 3, log: None }
}

fn lease(ttl: Duration) -> LeaseRequest {
    LeaseRequest { owner: "runner-1".into(), host: "host-1".into(), pid: 42, ttl }
}

/// Builds of every kind: delivered, failed (transient, then persistent), running with an
/// expired lease, pending with a live one; and a second platform and OS with none.
async fn seed(store: &dyn Store) -> Vec<Build> {
    let new = buildstate_store::conformance::seed_sample_catalog(store, "test").await;
    for item in [
        CatalogItem::Platform(Platform {
            name: name("azure-public"),
            display_name: "Azure".into(),
            provider: "azure".into(),
            region: None,
        }),
        CatalogItem::Os(OsVersion {
            name: name("ubuntu-22.04"),
            display_name: "Ubuntu 22.04".into(),
            family: "ubuntu".into(),
            major: 22,
            minor: Some(4),
        }),
    ] {
        store.add_catalog_item(&item).await.expect("a catalog item");
    }
    let create = || async { store.create_build(&new).await.expect("create") };
    let delivered = create().await;
    for c in buildstate_core::StateCatalog::default_catalog().codes() {
        apply(store, &delivered, complete(i64::from(c.get()))).await;
    }
    let transient = create().await;
    for c in [0, 5] {
        apply(store, &transient, complete(c)).await;
    }
    apply(store, &transient, fail(10, FailureClass::Transient, "network")).await;
    let persistent = create().await;
    apply(store, &persistent, fail(0, FailureClass::Persistent, "vault")).await;
    let running = create().await;
    apply(store, &running, complete(0)).await;
    let start = Command::Start { state: code(5), actor: "t".into(), log: None, force: false };
    apply(store, &running, start).await;
    // Expired a moment after it was granted, as a lease whose runner stopped beating.
    store.acquire_lease(running.id, &lease(Duration::from_millis(1))).await.expect("a lease");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pending = create().await;
    store.acquire_lease(pending.id, &lease(Duration::from_secs(600))).await.expect("a lease");
    let mut builds = Vec::new();
    for b in [delivered, transient, persistent, running, pending] {
        builds.push(store.build(b.id).await.expect("the build"));
    }
    builds
}

async fn get(router: &Router, uri: &str, token: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method("GET").uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = router.clone().oneshot(req.body(HttpBody::empty()).expect("request")).await.expect("response");
    let status = resp.status();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().expect("text").to_owned());
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, content_type, String::from_utf8(bytes.to_vec()).expect("UTF-8"))
}

/// The value of the sample `series` (name and labels exactly as written).
fn value(text: &str, series: &str) -> f64 {
    let mut found = text.lines().filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '));
    let v = found.next().unwrap_or_else(|| panic!("no sample {series} in:\n{text}"));
    assert!(found.next().is_none(), "{series} is written twice");
    v.parse().unwrap_or_else(|_| panic!("{series} has the value {v}"))
}

/// Runs the real `promtool check metrics` on `text`. Missing promtool fails under CI
/// (scripts/setup.sh installs it); elsewhere the check is reported as not run, loudly.
fn promtool_check(text: &str) -> Option<String> {
    use std::io::Write;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is not on PATH: scripts/setup.sh installs it (install_promtool)"
            );
            // Straight to stderr, past the test harness's capture: a check that did not
            // run must be seen.
            let _ = std::io::stderr().write_all(
                b"\n!!!!! promtool is not on PATH: `promtool check metrics` was NOT run.\n\
                  !!!!! Run `bash scripts/setup.sh` (install_promtool) to check the text for real.\n\n",
            );
            return None;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some(if out.status.success() { String::new() } else { format!("exit {}: {said}", out.status) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_the_store_and_the_requests() {
    let app = App::new().await;
    let builds = seed(app.store.as_ref()).await;
    let router = router(AppState::new(Arc::clone(&app.store), Options::default()));

    // A read like any other.
    assert_eq!(get(&router, "/metrics", None).await.0, StatusCode::UNAUTHORIZED);
    // Requests for the HTTP histogram: a route with a reference, and no route at all.
    let one = format!("/api/v1/builds/{}", builds[0].number);
    assert_eq!(get(&router, &one, Some(&app.read)).await.0, StatusCode::OK);
    assert_eq!(get(&router, &one, Some(&app.read)).await.0, StatusCode::OK);
    assert_eq!(get(&router, "/no/such/route", Some(&app.read)).await.0, StatusCode::NOT_FOUND);

    let (status, content_type, text) = get(&router, "/metrics", Some(&app.read)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));

    // Builds by status: every status, the empty ones at 0.
    for (status, n) in
        [("pending", 1.0), ("running", 1.0), ("completed", 1.0), ("failed", 2.0), ("cancelled", 0.0)]
    {
        assert_eq!(value(&text, &format!("buildstate_builds{{status=\"{status}\"}}")), n, "{status}");
    }
    // The persistent failure waits for a person.
    assert_eq!(value(&text, "buildstate_builds_needing_person"), 1.0);

    // Attempts: 21 milestones delivered, 0 and 5 then a failure, one failure, 0.
    let attempts = |p: &str, o: &str| {
        value(&text, &format!("buildstate_attempts_total{{platform=\"{p}\",outcome=\"{o}\"}}"))
    };
    assert_eq!(attempts("aws-commercial", "completed"), 24.0);
    assert_eq!(attempts("aws-commercial", "failed"), 2.0);
    assert_eq!((attempts("azure-public", "completed"), attempts("azure-public", "failed")), (0.0, 0.0));

    // Milestone durations: completed attempts per code; every default code is there.
    let count =
        |s: u8| value(&text, &format!("buildstate_milestone_duration_seconds_count{{state=\"{s}\"}}"));
    assert_eq!((count(0), count(5), count(10), count(100)), (3.0, 2.0, 1.0, 1.0));
    let bucket = |s: u8, le: &str| {
        value(&text, &format!("buildstate_milestone_duration_seconds_bucket{{state=\"{s}\",le=\"{le}\"}}"))
    };
    assert_eq!(bucket(0, "+Inf"), 3.0, "every attempt is under +Inf");
    let cumulative: Vec<f64> =
        ["1", "5", "60", "3600", "14400", "+Inf"].iter().map(|le| bucket(0, le)).collect();
    assert!(cumulative.windows(2).all(|w| w[0] <= w[1]), "buckets are cumulative: {cumulative:?}");
    assert!(value(&text, "buildstate_milestone_duration_seconds_sum{state=\"0\"}") >= 0.0);

    // Running per milestone, leases.
    assert_eq!(value(&text, "buildstate_builds_running{state=\"5\"}"), 1.0);
    assert_eq!(value(&text, "buildstate_builds_running{state=\"10\"}"), 0.0);
    assert_eq!(value(&text, "buildstate_leases_held"), 2.0);
    assert_eq!(value(&text, "buildstate_leases_expired"), 1.0);

    // Failures by type (the well-known ones at 0, a team's own too) and by class.
    let by_type = |t: &str| value(&text, &format!("buildstate_failures_total{{failure_type=\"{t}\"}}"));
    assert_eq!((by_type("network"), by_type("vault"), by_type("packer")), (1.0, 1.0, 0.0));
    let by_class = |c: &str| value(&text, &format!("buildstate_failures_by_class_total{{class=\"{c}\"}}"));
    assert_eq!((by_class("transient"), by_class("persistent")), (1.0, 1.0));

    // The last delivery of each catalog cell: the delivered build's end, 0 elsewhere.
    let delivery = |p: &str, o: &str| {
        value(
            &text,
            &format!(
                "buildstate_last_delivery_timestamp_seconds{{platform=\"{p}\",os=\"{o}\",image_type=\"base\"}}"
            ),
        )
    };
    let ended = builds[0].ended_at.expect("delivered").as_millisecond() as f64 / 1000.0;
    assert_eq!(delivery("aws-commercial", "rhel-8.8"), ended);
    assert_eq!(delivery("aws-commercial", "ubuntu-22.04"), 0.0);
    assert_eq!(delivery("azure-public", "rhel-8.8"), 0.0);

    // HTTP requests by route template and status; unknown paths collapse to one value.
    let h = "buildstate_http_request_duration_seconds";
    let route = r#"method="GET",route="/api/v1/builds/{reference}",status="200""#;
    assert_eq!(value(&text, &format!("{h}_count{{{route}}}")), 2.0);
    assert_eq!(value(&text, &format!("{h}_bucket{{{route},le=\"+Inf\"}}")), 2.0);
    assert_eq!(value(&text, &format!("{h}_count{{method=\"GET\",route=\"unmatched\",status=\"404\"}}")), 1.0);
    assert_eq!(value(&text, &format!("{h}_count{{method=\"GET\",route=\"/metrics\",status=\"401\"}}")), 1.0);
    assert!(!text.contains("/no/such/route"), "{text}");

    // Never a build's id or number.
    for b in &builds {
        assert!(!text.contains(&b.id.to_string()), "{} in:\n{text}", b.id);
        assert!(!text.contains(b.number.as_str()), "{} in:\n{text}", b.number);
    }

    if let Some(problems) = promtool_check(&text) {
        assert!(problems.is_empty(), "promtool check metrics: {problems}\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_has_every_known_series_at_zero() {
    let app = App::new().await;
    let (status, _, text) = {
        let router = router(AppState::new(Arc::clone(&app.store), Options::default()));
        get(&router, "/metrics", Some(&app.read)).await
    };
    assert_eq!(status, StatusCode::OK, "{text}");
    for series in [
        "buildstate_builds{status=\"completed\"}",
        "buildstate_attempts_total{platform=\"aws-commercial\",outcome=\"failed\"}",
        "buildstate_milestone_duration_seconds_count{state=\"100\"}",
        "buildstate_builds_running{state=\"50\"}",
        "buildstate_leases_expired",
        "buildstate_failures_total{failure_type=\"timeout\"}",
        "buildstate_failures_by_class_total{class=\"transient\"}",
        "buildstate_last_delivery_timestamp_seconds{platform=\"aws-commercial\",os=\"rhel-8.8\",image_type=\"base\"}",
    ] {
        assert_eq!(value(&text, series), 0.0, "{series}");
    }
    // No quantile is invented for a milestone nothing completed.
    assert!(!text.contains("quantile="), "{text}");
    if let Some(problems) = promtool_check(&text) {
        assert!(problems.is_empty(), "promtool check metrics: {problems}\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_anonymous_only_when_reads_are() {
    let app = App::new().await;
    let open = Options { allow_anonymous_read: true, ..Options::default() };
    let router = router(AppState::new(Arc::clone(&app.store), open));
    let (status, _, text) = get(&router, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("# TYPE buildstate_builds gauge\n"), "{text}");
}

/// The check above means something: promtool refuses what breaks its rules.
#[test]
fn promtool_refuses_a_bad_exposition() {
    let bad =
        "# HELP foo_count a counter named like a summary's part\n# TYPE foo_count counter\nfoo_count 1\n";
    if let Some(problems) = promtool_check(bad) {
        assert!(problems.contains("_total"), "promtool passed a counter without _total: {problems}");
    }
}
