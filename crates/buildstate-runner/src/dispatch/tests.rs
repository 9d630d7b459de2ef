//! The dispatcher in process, against a real SQLite store in a temp dir and real `sh -c`
//! steps: delivery, retries under the step's policy, resuming a failed build where it
//! failed, a build whose lease another runner holds, and a fleet worker's record in the
//! worker registry. Nothing is mocked: the store is the embedded backend, the steps are
//! processes, the lease is the store's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_core::{
    Build, CatalogItem, Command, EventKind, FailureClass, ImageType, LeaseRequest, Name, OsVersion, Platform,
    StateCode,
};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{FailureFilter, Guard, Store, StoreError};
use tempfile::TempDir;
use tokio::sync::{mpsc, watch};

use super::{
    BuildOutcome, LeaseTtl, Progress, RunOptions, RunSummary, WorkerOptions, enqueue, run_pipeline, work,
};
use crate::pipeline::{MatrixFilter, Pipeline};

fn code(n: i64) -> StateCode {
    StateCode::new(n).expect("a valid code")
}

fn name(s: &str) -> Name {
    Name::new(s).expect("a valid name")
}

/// A temp dir holding the store (`buildstate.db`), the pipeline and what its steps write.
pub(crate) struct Fixture {
    dir: TempDir,
    pub(crate) store: Arc<dyn Store>,
}

impl Fixture {
    /// A fresh store whose catalog has platform p1, OS o1 and the images `images`.
    pub(crate) async fn new(images: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = SqliteStore::open(dir.path().join("buildstate.db")).expect("open the store");
        let mut items = vec![
            CatalogItem::Platform(Platform {
                name: name("p1"),
                display_name: "P1".into(),
                provider: "aws".into(),
                region: None,
            }),
            CatalogItem::Os(OsVersion {
                name: name("o1"),
                display_name: "O1".into(),
                family: "rhel".into(),
                major: 9,
                minor: None,
            }),
        ];
        for image in images {
            items.push(CatalogItem::ImageType(ImageType {
                name: name(image),
                display_name: (*image).to_owned(),
                description: String::new(),
            }));
        }
        for item in &items {
            store.add_catalog_item(item).await.expect("add a catalog item");
        }
        Fixture { dir, store: Arc::new(store) }
    }

    pub(crate) fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }

    /// The pipeline `unit` over p1 × o1 × `images` with `states` (YAML lines under
    /// `states:`), three attempts per step, no backoff, exit 75 transient.
    fn pipeline(&self, images: &[&str], states: &str) -> Arc<Pipeline> {
        let yaml = format!(
            "name: unit\nmatrix:\n  platform: [p1]\n  os: [o1]\n  image: [{}]\n\
             defaults:\n  retry: {{max_attempts: 3, backoff: {{kind: none}}, transient: {{exit_codes: [75]}}}}\n\
             states:\n{states}",
            images.join(", ")
        );
        let file = self.path("unit.yml");
        std::fs::write(&file, &yaml).expect("write the pipeline");
        Arc::new(Pipeline::parse(&yaml, &file).expect("a valid pipeline"))
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            filter: MatrixFilter::all(),
            jobs: 2,
            build: None,
            fresh: false,
            actor: "unit-runner".into(),
            lease_ttl: LeaseTtl::MIN,
            logs_dir: self.path("logs"),
            grace: Duration::from_secs(1),
            store_location: self.path("buildstate.db").display().to_string(),
            through: None,
            ci_url: None,
        }
    }

    /// Runs the pipeline to its end; returns the summary and every progress report.
    async fn run(
        &self,
        pipeline: &Arc<Pipeline>,
        stop: watch::Receiver<Option<i32>>,
    ) -> (RunSummary, Vec<Progress>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let summary = run_pipeline(self.store.clone(), pipeline.clone(), self.options(), tx, stop)
            .await
            .expect("the run");
        let mut progress = Vec::new();
        while let Ok(p) = rx.try_recv() {
            progress.push(p);
        }
        (summary, progress)
    }

    /// What the steps appended to `side.log`: one `IMAGE STATE ATTEMPT` line per run step.
    fn side_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("side.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn build_of(&self, outcome: &BuildOutcome) -> Build {
        self.store.build(outcome.id.expect("the outcome names its build")).await.expect("read the build")
    }
}

/// A stop channel nobody signals.
fn no_stop() -> (watch::Sender<Option<i32>>, watch::Receiver<Option<i32>>) {
    watch::channel(None)
}

/// The step line every test pipeline uses: log `IMAGE STATE ATTEMPT`, then `rest`.
fn step(rest: &str) -> String {
    format!("{{run: 'echo \"$BUILDSTATE_IMAGE $BUILDSTATE_STATE $BUILDSTATE_ATTEMPT\" >> side.log; {rest}'}}")
}

fn outcome<'a>(summary: &'a RunSummary, image: &str) -> &'a BuildOutcome {
    summary
        .outcomes
        .iter()
        .find(|o| o.cell.image_type.as_str() == image)
        .unwrap_or_else(|| panic!("no outcome for image {image}: {summary:?}"))
}

#[tokio::test]
async fn a_pipeline_runs_to_delivery_and_releases_its_lease() {
    let f = Fixture::new(&["base"]).await;
    let states = format!("  0: {}\n  10: {}\n  100: {}\n", step("true"), step("true"), step("true"));
    let pipeline = f.pipeline(&["base"], &states);
    let (_tx, stop) = no_stop();
    let (summary, progress) = f.run(&pipeline, stop).await;

    assert!(summary.all_delivered() && summary.interrupted.is_none(), "{summary:?}");
    let o = outcome(&summary, "base");
    assert!(o.taken, "the runner took the lease: {o:?}");
    assert_eq!((o.milestones_run, o.attempts, o.resumed_at), (3, 3, None), "{o:?}");
    assert_eq!(f.side_log(), ["base 0 1", "base 10 1", "base 100 1"], "each listed step ran once, in order");

    let build = f.build_of(o).await;
    assert_eq!((build.state, build.status.as_str()), (StateCode::DELIVERED, "completed"));
    let history = f.store.history(build.id).await.expect("history");
    let completed: Vec<i64> =
        history.iter().filter(|e| e.kind == EventKind::Completed).map(|e| i64::from(e.state.get())).collect();
    assert_eq!(completed, [0, 10, 100]);
    let skipped = history.iter().filter(|e| e.kind == EventKind::Skipped).count();
    assert_eq!(skipped, 18, "the 18 unlisted milestones of the default catalog are recorded as skipped");
    assert!(history.iter().all(|e| e.actor == "unit-runner" || e.kind == EventKind::Created));
    let started: Vec<u8> = progress
        .iter()
        .filter_map(|p| match p {
            Progress::Started { state, attempt: 1, .. } => Some(state.get()),
            _ => None,
        })
        .collect();
    assert_eq!(started, [0, 10, 100], "progress reports each attempt as it starts");
    assert_eq!(f.store.leases().await.expect("leases").len(), 0, "the lease was released");
}

#[tokio::test]
async fn a_transient_failure_is_retried_under_the_steps_policy() {
    let f = Fixture::new(&["base"]).await;
    // Fails once with 75 (transient by the pipeline's policy), then works.
    let flaky = step("if [ ! -e once ]; then touch once; echo \"Could not resolve host\" >&2; exit 75; fi");
    let states = format!("  0: {}\n  10: {flaky}\n  100: {}\n", step("true"), step("true"));
    let pipeline = f.pipeline(&["base"], &states);
    let (_tx, stop) = no_stop();
    let (summary, progress) = f.run(&pipeline, stop).await;

    assert!(summary.all_delivered(), "{summary:?}");
    assert_eq!(f.side_log(), ["base 0 1", "base 10 1", "base 10 2", "base 100 1"]);
    let build = f.build_of(outcome(&summary, "base")).await;
    let failures = f
        .store
        .failures(&FailureFilter { build: Some(build.id), ..Default::default() })
        .await
        .expect("failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!((failure.state, failure.attempt, failure.info.class), (code(10), 1, FailureClass::Transient));
    assert_eq!(failure.info.exit_code, Some(75));
    assert!(
        failure.info.message.contains("Could not resolve host"),
        "the tail is in the message: {failure:?}"
    );
    let history = f.store.history(build.id).await.expect("history");
    let retried: Vec<_> = history.iter().filter(|e| e.kind == EventKind::Retried).collect();
    assert_eq!(retried.len(), 1, "{history:#?}");
    assert_eq!(retried[0].message.as_deref(), Some("automatic retry 1 of 2 (transient failure)"));
    assert!(
        progress
            .iter()
            .any(|p| matches!(p, Progress::Ended { ok: false, retry_in: Some(_), attempt: 1, .. })),
        "the failed attempt is reported with its retry"
    );
}

#[tokio::test]
async fn failures_stop_the_build_when_persistent_or_out_of_attempts() {
    let f = Fixture::new(&["base", "hana"]).await;
    // base: exit 2, persistent (not in the transient codes). hana: 75 every time.
    // Coloured output with a carriage return, as tools print it.
    let failing = step(
        "printf \"\\033[31mFAILED\\033[0m\\r\\n\"; case $BUILDSTATE_IMAGE in base) exit 2 ;; *) exit 75 ;; esac",
    );
    let states = format!("  0: {}\n  10: {failing}\n  100: {}\n", step("true"), step("true"));
    let pipeline = f.pipeline(&["base", "hana"], &states);
    let (_tx, stop) = no_stop();
    let (summary, _) = f.run(&pipeline, stop).await;

    assert!(!summary.all_delivered(), "{summary:?}");
    for (image, attempts, class) in
        [("base", 1, FailureClass::Persistent), ("hana", 3, FailureClass::Transient)]
    {
        let o = outcome(&summary, image);
        let build = f.build_of(o).await;
        assert_eq!(
            (build.state, build.status.as_str(), build.attempt),
            (code(10), "failed", attempts),
            "{image}"
        );
        assert!(build.needs_intervention, "{image}: persistent, or out of attempts, needs a person");
        assert!(o.note.as_deref().is_some_and(|n| n.starts_with("failed at 10")), "{image}: {o:?}");
        let failures = f
            .store
            .failures(&FailureFilter { build: Some(build.id), ..Default::default() })
            .await
            .expect("failures");
        assert_eq!(failures.len() as u32, attempts, "{image}: one record per attempt");
        assert!(failures.iter().all(|r| r.info.class == class), "{image}: {failures:?}");
        let tail = failures[0].info.details.get("tail").and_then(|t| t.as_str()).unwrap_or_default();
        assert!(tail.contains("FAILED"), "{image}: the tail is kept: {tail:?}");
        assert!(!tail.contains(['\x1b', '\r']), "{image}: escaped like all free text: {tail:?}");
        let ran = f.side_log().iter().filter(|l| l.starts_with(&format!("{image} 10 "))).count();
        assert_eq!(ran as u32, attempts, "{image}: the step ran once per attempt");
        assert!(
            !f.side_log().iter().any(|l| l.starts_with(&format!("{image} 100 "))),
            "{image} stopped at 10"
        );
    }
}

#[tokio::test]
async fn a_rerun_resumes_a_failed_build_where_it_failed() {
    let f = Fixture::new(&["base"]).await;
    std::fs::write(f.path("broken"), "").expect("write");
    let states = format!(
        "  0: {}\n  5: {}\n  10: {}\n  15: {}\n  100: {}\n",
        step("true"),
        step("true"),
        step("true"),
        step("if [ -e broken ]; then exit 2; fi"),
        step("true")
    );
    let pipeline = f.pipeline(&["base"], &states);
    let (_tx, stop) = no_stop();
    let (first, _) = f.run(&pipeline, stop.clone()).await;
    let failed = f.build_of(outcome(&first, "base")).await;
    assert_eq!((failed.state, failed.status.as_str()), (code(15), "failed"));

    std::fs::remove_file(f.path("broken")).expect("fix the cause");
    let (second, _) = f.run(&pipeline, stop).await;
    let o = outcome(&second, "base");
    assert!(second.all_delivered(), "{second:?}");
    assert_eq!(o.id, Some(failed.id), "the re-run drives the same build");
    assert_eq!((o.resumed_at, o.done_before), (Some(code(15)), 3), "{o:?}");
    assert_eq!(
        f.side_log(),
        ["base 0 1", "base 5 1", "base 10 1", "base 15 1", "base 15 2", "base 100 1"],
        "0-10 ran once in all; only 15 and after ran again"
    );
    let history = f.store.history(failed.id).await.expect("history");
    let retry = history.iter().find(|e| e.kind == EventKind::Retried).expect("the re-run retried the build");
    assert!(retry.forced, "a persistent failure needed a person: the re-run's retry is recorded as forced");
    assert_eq!(retry.message.as_deref(), Some("re-run of pipeline unit by unit-runner"));
}

/// Another runner, on another host, holds the build's lease and left an attempt open.
/// This runner waits for the lease to expire, takes the build over (closing the open
/// attempt as interrupted), delivers it, and the old holder's token is fenced.
#[tokio::test]
async fn a_build_leased_by_another_runner_is_taken_over_once_its_lease_expires() {
    let f = Fixture::new(&["base"]).await;
    let states = format!("  0: {}\n  100: {}\n", step("true"), step("true"));
    let pipeline = f.pipeline(&["base"], &states);
    let builds = enqueue(f.store.as_ref(), &pipeline, &f.options()).await.expect("enqueue");
    let id = builds[0].id;
    let other =
        LeaseRequest { owner: "other".into(), host: "elsewhere".into(), pid: 1, ttl: Duration::from_secs(1) };
    let held = f.store.acquire_lease(id, &other).await.expect("the other runner's lease");
    let start = Command::Start { state: code(0), actor: "other".into(), log: None, force: false };
    f.store.apply(id, &start, Guard::lease(held.token)).await.expect("the other runner starts 0");

    let began = Instant::now();
    let (_tx, stop) = no_stop();
    let (summary, _) = f.run(&pipeline, stop).await;
    assert!(began.elapsed() >= Duration::from_millis(900), "it waited for the lease to expire");
    let o = outcome(&summary, "base");
    assert!(summary.all_delivered() && o.taken, "{summary:?}");
    let failures =
        f.store.failures(&FailureFilter { build: Some(id), ..Default::default() }).await.expect("failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!((failures[0].state, failures[0].info.failure_type.as_str()), (code(0), "interrupted"));
    // The other runner's attempt 1 never ran here; the take-over's is attempt 2.
    assert_eq!(f.side_log(), ["base 0 2", "base 100 1"]);
    let complete =
        Command::Complete { state: StateCode::DELIVERED, actor: "other".into(), exit_code: None, log: None };
    let late = f.store.apply(id, &complete, Guard::lease(held.token)).await;
    assert!(matches!(late, Err(StoreError::StaleLease { .. })), "the old holder is fenced: {late:?}");
}

/// Stopped while another live runner holds the lease: nothing runs, the build and the
/// other runner's lease are left as they were, and the outcome says who runs it.
#[tokio::test]
async fn a_run_stopped_while_another_runner_holds_the_lease_touches_nothing() {
    let f = Fixture::new(&["base"]).await;
    let states = format!(
        "  0: {}
  100: {}
",
        step("true"),
        step("true")
    );
    let pipeline = f.pipeline(&["base"], &states);
    let builds = enqueue(f.store.as_ref(), &pipeline, &f.options()).await.expect("enqueue");
    let id = builds[0].id;
    let other = LeaseRequest {
        owner: "other".into(),
        host: "elsewhere".into(),
        pid: 1,
        ttl: Duration::from_secs(3600),
    };
    let held = f.store.acquire_lease(id, &other).await.expect("the other runner's lease");
    let before = f.store.build(id).await.expect("the build");

    let (tx, stop) = no_stop();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(Some(15));
        tx
    });
    let (summary, progress) = f.run(&pipeline, stop).await;
    drop(stopper.await);
    let o = outcome(&summary, "base");
    assert_eq!(summary.interrupted, Some(15));
    assert!(!o.taken && !o.delivered(), "{o:?}");
    let note = o.note.as_deref().unwrap_or_default();
    assert!(note.contains("other@elsewhere (pid 1) is running it"), "the outcome names the holder: {note}");
    assert!(f.side_log().is_empty(), "no step ran");
    assert!(!progress.iter().any(|p| matches!(p, Progress::Started { .. })));
    assert_eq!(f.store.build(id).await.expect("the build"), before, "the build is unchanged");
    let leases = f.store.leases().await.expect("leases");
    assert_eq!(
        leases.iter().map(|l| (l.owner.as_str(), l.token)).collect::<Vec<_>>(),
        [("other", held.token)]
    );
}

/// A fleet worker is in the store's registry while it works: under its name, with the
/// build it runs while it runs it, beating every third of its lease ttl (1 s for 3 s),
/// and marked exited — idle, never stale — when it runs out of work.
#[tokio::test]
async fn a_worker_is_in_the_registry_with_its_build_until_it_exits() {
    let f = Fixture::new(&["base"]).await;
    let states = format!("  0: {}\n  100: {}\n", step("sleep 1"), step("true"));
    let pipeline = f.pipeline(&["base"], &states);
    let id = enqueue(f.store.as_ref(), &pipeline, &f.options()).await.expect("enqueue")[0].id;
    let opts = WorkerOptions { run: f.options(), poll: Duration::from_millis(100), exit_when_idle: true };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_stop_tx, stop) = no_stop();
    let worker = tokio::spawn(work(f.store.clone(), pipeline.clone(), opts, tx, stop));
    let day = Duration::from_secs(24 * 3600);
    let deadline = Instant::now() + Duration::from_secs(20);
    let busy = loop {
        let list = f.store.workers(day).await.expect("workers");
        if let Some(w) = list.workers.iter().find(|w| w.build == Some(id)) {
            break w.clone();
        }
        assert!(Instant::now() < deadline, "the worker never recorded its build: {list:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((busy.name.as_str(), busy.pid, busy.heartbeat_ms), ("unit-runner", std::process::id(), 1000));
    let summary = worker.await.expect("the worker task").expect("the worker");
    assert_eq!(summary.outcomes.len(), 1, "{summary:?}");
    let list = f.store.workers(day).await.expect("workers");
    let [gone] = list.workers.as_slice() else { panic!("one worker: {list:?}") };
    assert_eq!((gone.build, gone.started_at), (None, busy.started_at));
    assert!(gone.exited_at.is_some() && !gone.is_stale(list.now), "{gone:?}");
    let mut picked = false;
    while let Ok(p) = rx.try_recv() {
        picked |= matches!(p, Progress::Picked { id: picked_id, .. } if picked_id == id);
    }
    assert!(picked, "the worker's progress still reaches its caller");
}
