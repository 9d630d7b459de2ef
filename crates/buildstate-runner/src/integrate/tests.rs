//! The driver against a real SQLite store: a tool passing mapped milestones, a re-run
//! passing milestones it already did, a failure recorded here or left to the runner.

use std::collections::BTreeMap;

use buildstate_core::{
    Build, BuildStatus, EventKind, FailureClass, FailureInfo, FailureType, NewBuild, StateCatalog, StateCode,
};
use buildstate_store::Guard;

use super::{Closing, DriveError, Driver, StepReport};
use crate::dispatch::tests::Fixture;
use crate::pipeline::{RetryDefaults, RetryLayer, RetryRule};

fn code(n: i64) -> StateCode {
    StateCode::new(n).expect("a valid code")
}

async fn new_build(f: &Fixture) -> Build {
    let new = NewBuild {
        platform: "p1".parse().expect("a name"),
        os: "o1".parse().expect("a name"),
        image_type: "base".parse().expect("a name"),
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: "unit".into(),
        ci_url: None,
        metadata: BTreeMap::new(),
    };
    f.store.create_build(&new).await.expect("create a build")
}

fn here() -> Closing {
    let layer = RetryLayer { max_attempts: Some(2), ..RetryLayer::default() };
    Closing::Here { retry: RetryDefaults::new(vec![RetryRule { first: code(0), last: code(100), layer }]) }
}

fn packer_failure(message: &str) -> FailureInfo {
    FailureInfo {
        failure_type: "packer".parse().expect("a type"),
        class: FailureClass::Persistent,
        component: Some("shell-local".into()),
        message: message.into(),
        details: BTreeMap::new(),
        exit_code: Some(1),
    }
}

async fn driver(f: &Fixture, b: &Build, closing: Closing) -> Driver {
    Driver::attach(f.store.clone(), b.id, "unit", Guard::none(), closing, None).await.expect("attach")
}

#[tokio::test]
async fn mapped_milestones_complete_skip_and_start_in_order() {
    let f = Fixture::new(&["base"]).await;
    let b = new_build(&f).await;
    let mut d = driver(&f, &b, here()).await;
    d.begin("test").await.expect("begin");
    assert_eq!((d.build().state, d.build().status), (code(0), BuildStatus::Running));
    assert!(d.reach(code(10), "packer").await.expect("reach 10"));
    // 5 has no trigger of its own: skipped, never passed over silently.
    assert!(d.reach(code(15), "packer").await.expect("reach 15"));
    assert!(
        !d.reach(code(10), "packer").await.expect("behind"),
        "a milestone already passed changes nothing"
    );
    assert!(!d.reach(code(15), "packer").await.expect("same"), "the running milestone changes nothing");
    let after = d.finish(true, Some(0), || packer_failure("unused")).await.expect("finish");
    assert_eq!((after.state, after.attempt_open()), (code(20), false));
    let kinds: Vec<(u8, EventKind)> = f
        .store
        .history(b.id)
        .await
        .expect("history")
        .into_iter()
        .filter(|e| e.kind != EventKind::Created)
        .map(|e| (e.state.get(), e.kind))
        .collect();
    use EventKind::{Completed, Skipped, Started};
    assert_eq!(
        kinds,
        vec![
            (0, Started),
            (0, Completed),
            (5, Skipped),
            (10, Started),
            (10, Completed),
            (15, Started),
            (15, Completed)
        ]
    );
}

#[tokio::test]
async fn a_code_outside_the_catalog_is_refused_and_records_nothing() {
    let f = Fixture::new(&["base"]).await;
    let b = new_build(&f).await;
    let mut d = driver(&f, &b, here()).await;
    d.begin("test").await.expect("begin");
    let err = d.reach(code(12), "packer").await.expect_err("12 is not in the default catalog");
    assert!(matches!(err, DriveError::NotInCatalog { .. }), "{err}");
    assert_eq!(f.store.build(b.id).await.expect("read").state, code(0));
}

#[tokio::test]
async fn a_failure_here_is_recorded_once_and_a_rerun_reopens_it() {
    let f = Fixture::new(&["base"]).await;
    let b = new_build(&f).await;
    let mut d = driver(&f, &b, here()).await;
    d.begin("test").await.expect("begin");
    d.reach(code(10), "packer").await.expect("reach 10");
    d.fail(packer_failure("Script exited with non-zero exit status: 3"), "").await.expect("fail");
    d.fail(packer_failure("a second error line"), "").await.expect("a second failure is not recorded");
    let after = d.finish(false, Some(1), || packer_failure("fallback")).await.expect("finish");
    assert_eq!((after.state, after.status), (code(10), BuildStatus::Failed));
    let failures = f.store.failures(&Default::default()).await.expect("failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].info.component.as_deref(), Some("shell-local"));
    // Running the tool again re-opens the build at 10, and passing 0 and 5 again
    // changes nothing.
    let mut again = driver(&f, &b, here()).await;
    again.begin("re-run").await.expect("begin again");
    assert_eq!((again.build().state, again.build().status), (code(10), BuildStatus::Running));
    assert!(!again.reach(code(5), "packer").await.expect("behind"));
    let done = again.finish(true, Some(0), || packer_failure("unused")).await.expect("finish");
    assert_eq!((done.state, done.attempt_open()), (code(15), false));
}

#[tokio::test]
async fn the_policy_patterns_make_a_failure_transient() {
    let f = Fixture::new(&["base"]).await;
    let b = new_build(&f).await;
    // The pattern is the policy of 10, where the run fails, not of 0, where it started.
    let layer =
        RetryLayer { output_patterns: Some(vec!["RequestLimitExceeded".into()]), ..RetryLayer::default() };
    let retry = RetryDefaults::new(vec![RetryRule { first: code(10), last: code(10), layer }]);
    let mut d = driver(&f, &b, Closing::Here { retry }).await;
    d.begin("test").await.expect("begin");
    d.reach(code(10), "packer").await.expect("reach 10");
    d.fail(packer_failure("amazon-ebs: error"), "... RequestLimitExceeded: Request limit exceeded.")
        .await
        .expect("fail");
    let failures = f.store.failures(&Default::default()).await.expect("failures");
    assert_eq!(failures[0].info.class, FailureClass::Transient);
}

#[tokio::test]
async fn under_a_runner_the_failure_goes_to_the_report_and_the_milestone_stays_open() {
    let f = Fixture::new(&["base"]).await;
    let b = new_build(&f).await;
    let report = f.path("step.report.json");
    let mut d = driver(&f, &b, Closing::Runner { report: report.clone(), until: Some(code(30)) }).await;
    d.begin("runner started it").await.expect("begin");
    d.reach(code(5), "packer").await.expect("reach 5");
    let err = d.reach(code(30), "ansible").await.expect_err("30 is the next step's");
    assert!(matches!(err, DriveError::BeyondStep { .. }), "{err}");
    d.fail(packer_failure("provisioner failed"), "").await.expect("report");
    let after = d.finish(false, Some(1), || packer_failure("fallback")).await.expect("finish");
    assert_eq!((after.state, after.attempt_open()), (code(5), true), "the runner closes it");
    let taken = StepReport::take(&report).expect("a report");
    let failure = taken.failure.expect("its failure");
    assert_eq!(failure.message, "provisioner failed");
    assert_eq!(failure.failure_type, "packer".parse::<FailureType>().expect("a type"));
    assert!(!report.exists(), "taking a report removes it");
    assert!(StepReport::take(&report).is_none());
}

#[test]
fn a_malformed_report_is_none() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("r.json");
    std::fs::write(&path, b"{\"failure\": 3}").expect("write");
    assert!(StepReport::take(&path).is_none());
}

#[tokio::test]
async fn a_wrapper_taking_over_closes_a_dead_attempt_and_begin_does_not() {
    let f = Fixture::new(&["base"]).await;
    let b = new_build(&f).await;
    let mut first = driver(&f, &b, here()).await;
    first.begin("first").await.expect("begin");
    // Killed here (SIGKILL): the attempt stays open. A record of the same run (the
    // Ansible callback under its wrapper) changes nothing …
    let mut record = driver(&f, &b, here()).await;
    record.begin("record").await.expect("begin");
    assert_eq!(f.store.build(b.id).await.expect("read").attempt, 1);
    // … and the next wrapper, holding a new lease, abandons it and starts attempt 2.
    let mut next = driver(&f, &b, here()).await;
    next.take_over("re-run").await.expect("take over");
    let after = f.store.build(b.id).await.expect("read");
    assert_eq!((after.attempt, after.attempt_open()), (2, true));
    let failures = f.store.failures(&Default::default()).await.expect("failures");
    assert_eq!(failures.len(), 1, "the dead attempt is recorded as abandoned: {failures:?}");
    assert_eq!(failures[0].info.failure_type, FailureType::interrupted());
}
