//! Many writers on one database file: sixteen connections in one process, and sixteen
//! processes. Nobody may see "database is locked" (or `Busy`), and no update may be lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;

use buildstate_core::{
    Artifact, ArtifactKind, Build, BuildId, BuildStatus, CatalogItem, Command, EventKind, ImageType, MetaKey,
    MetaValue, Name, NewBuild, OsVersion, Platform, StateCatalog,
};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Store, StoreError};
use tokio::sync::Barrier;

const WORKERS: usize = 16;
/// Milestones of the default catalog: 0, 5, …, 100.
const MILESTONES: u64 = 21;

fn name(s: &str) -> Name {
    Name::new(s).expect("valid name")
}

async fn seed_catalog(store: &SqliteStore) {
    let items = [
        CatalogItem::Platform(Platform {
            name: name("aws-commercial"),
            display_name: "AWS".into(),
            provider: "aws".into(),
            region: Some("us-east-1".into()),
        }),
        CatalogItem::Os(OsVersion {
            name: name("rhel-8.8"),
            display_name: "RHEL 8.8".into(),
            family: "rhel".into(),
            major: 8,
            minor: Some(8),
        }),
        CatalogItem::ImageType(ImageType {
            name: name("base"),
            display_name: "Base".into(),
            description: String::new(),
        }),
    ];
    for item in items {
        match store.add_catalog_item(&item).await {
            // Fresh-file workers all seed the same catalog; one of them wins each item.
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("add catalog item: {e}"),
        }
    }
}

fn new_build(created_by: &str) -> NewBuild {
    NewBuild {
        platform: name("aws-commercial"),
        os: name("rhel-8.8"),
        image_type: name("base"),
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: created_by.into(),
        ci_url: None,
        metadata: BTreeMap::new(),
    }
}

fn complete(state: buildstate_core::StateCode, actor: &str) -> Command {
    Command::Complete { state, actor: actor.into(), exit_code: Some(0), log: None }
}

/// Records worker `w`'s metadata key and artifact on `id`.
async fn mark(store: &dyn Store, id: BuildId, w: usize) {
    let key = MetaKey::new(&format!("worker-{w}")).expect("valid key");
    let value = MetaValue::new(&key, &format!("value {w}")).expect("valid value");
    store.apply(id, &Command::SetMeta { key, value: Some(value) }, None).await.expect("set metadata");
    let artifact = Artifact {
        name: format!("image-{w}"),
        kind: ArtifactKind::Image,
        uri: format!("ami-{w:08x}"),
        region: Some("us-east-1".into()),
        size_bytes: Some(w as u64),
        sha256: None,
        created_at: buildstate_store::now(),
    };
    store.add_artifact(id, &artifact).await.expect("add artifact");
}

/// Completes whatever milestone `id` is at until it is delivered; returns how many
/// completions this worker won. Losing a race is a rejection (the state is behind, or
/// the build delivered), never an error of the store.
async fn race_to_delivery(store: &dyn Store, id: BuildId, actor: &str) -> u64 {
    let mut won = 0;
    loop {
        let b = store.build(id).await.expect("read build");
        if b.status == BuildStatus::Completed {
            return won;
        }
        match store.apply(id, &complete(b.state, actor), None).await {
            Ok(_) => won += 1,
            Err(StoreError::Rejected(_)) => {}
            Err(e) => panic!("{actor}: the store failed instead of serialising writers: {e}"),
        }
    }
}

/// Drives a build no one else touches from 0 to 100.
async fn deliver_alone(store: &dyn Store, id: BuildId, actor: &str) {
    for _ in 0..MILESTONES {
        let b = store.build(id).await.expect("read build");
        store.apply(id, &complete(b.state, actor), Some(b.version)).await.expect("complete own build");
    }
}

/// What the shared build must look like after `workers` workers raced on it.
async fn check_shared_build(store: &dyn Store, id: BuildId, workers: usize, won: u64) {
    assert_eq!(won, MILESTONES, "each milestone is completed exactly once");
    let b: Build = store.build(id).await.expect("read build");
    assert_eq!((b.status, b.state.get()), (BuildStatus::Completed, 100));
    let keys: BTreeSet<String> = b.metadata.keys().map(|k| k.to_string()).collect();
    let expected: BTreeSet<String> = (0..workers).map(|w| format!("worker-{w}")).collect();
    assert_eq!(keys, expected, "no metadata update lost");
    assert_eq!(store.artifacts(id).await.expect("artifacts").len(), workers, "no artifact lost");
    // created + one completion per milestone + one SetMeta and one artifact per worker.
    assert_eq!(b.version, 1 + MILESTONES + 2 * workers as u64);
    let history = store.history(id).await.expect("history");
    assert_eq!(b.history_len, 1 + MILESTONES);
    assert_eq!(history.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=1 + MILESTONES).collect::<Vec<_>>());
    let completed: Vec<u8> =
        history.iter().filter(|e| e.kind == EventKind::Completed).map(|e| e.state.get()).collect();
    assert_eq!(
        completed,
        (0..=100).step_by(5).collect::<Vec<u8>>(),
        "milestones completed in order, once each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_connections_race_on_one_build_and_on_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("race.db");
    let setup = SqliteStore::open(&path).expect("open");
    seed_catalog(&setup).await;
    let shared = setup.create_build(&new_build("setup")).await.expect("create shared build").id;

    let barrier = Arc::new(Barrier::new(WORKERS));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (path, barrier) = (path.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let store = SqliteStore::open(&path).expect("open own connection");
            barrier.wait().await;
            // Creates in the same instant: all succeed, with distinct numbers.
            let own = store.create_build(&new_build(&format!("worker-{w}"))).await.expect("create own build");
            mark(&store, shared, w).await;
            let won = race_to_delivery(&store, shared, &format!("worker-{w}")).await;
            deliver_alone(&store, own.id, &format!("worker-{w}")).await;
            (own.number.to_string(), won)
        }));
    }
    let mut numbers = BTreeSet::new();
    let mut won = 0;
    for t in tasks {
        let (number, w) = t.await.expect("worker task");
        numbers.insert(number);
        won += w;
    }
    assert_eq!(numbers.len(), WORKERS, "distinct build numbers: {numbers:?}");
    check_shared_build(&setup, shared, WORKERS, won).await;
    for n in &numbers {
        let b = setup.find_build(n).await.expect("find own build");
        assert_eq!((b.status, b.version), (BuildStatus::Completed, 1 + MILESTONES));
    }
}

const WORKER_DB: &str = "BUILDSTATE_SQLITE_TEST_WORKER_DB";
const WORKER_BUILD: &str = "BUILDSTATE_SQLITE_TEST_WORKER_BUILD";
const WORKER_INDEX: &str = "BUILDSTATE_SQLITE_TEST_WORKER_INDEX";

/// Runs `WORKERS` copies of this test binary as [`worker_process`] on `path`, racing on
/// `shared` if given; returns each worker's build number and the completions it won.
fn run_worker_processes(path: &Path, shared: Option<BuildId>) -> Vec<(String, u64)> {
    let exe = std::env::current_exe().expect("test binary path");
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            let mut cmd = Process::new(&exe);
            cmd.args(["worker_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
                .env(WORKER_DB, path)
                .env(WORKER_INDEX, w.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            if let Some(id) = shared {
                cmd.env(WORKER_BUILD, id.to_string());
            }
            cmd.spawn().expect("spawn worker process")
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(w, child)| {
            let out = child.wait_with_output().expect("wait for worker");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "worker {w} failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // libtest may print "test worker_process ... " on the same line first.
            let line = stdout
                .lines()
                .find_map(|l| l.split_once("worker-result ").map(|(_, rest)| rest))
                .expect("worker result line");
            let (number, won) = line.split_once(' ').expect("number and count");
            (number.to_owned(), won.parse().expect("count"))
        })
        .collect()
}

/// Sixteen OS processes (this test binary re-run as [`worker_process`]), each with the
/// current-thread runtime the CLI uses, on one file.
#[test]
fn sixteen_processes_race_on_one_build_and_on_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("processes.db");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (setup, shared) = rt.block_on(async {
        let setup = SqliteStore::open(&path).expect("open");
        seed_catalog(&setup).await;
        let shared = setup.create_build(&new_build("setup")).await.expect("create shared build").id;
        (setup, shared)
    });
    let results = run_worker_processes(&path, Some(shared));
    let numbers: BTreeSet<&String> = results.iter().map(|(n, _)| n).collect();
    assert_eq!(numbers.len(), WORKERS, "distinct build numbers: {numbers:?}");
    let won = results.iter().map(|(_, w)| w).sum();
    rt.block_on(check_shared_build(&setup, shared, WORKERS, won));
}

/// Sixteen processes open a file that does not exist yet, at once: they contend for
/// switching it to WAL and for creating the schema, then create builds in the same
/// second.
#[test]
fn sixteen_processes_open_a_fresh_file_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fresh/processes.db");
    let results = run_worker_processes(&path, None);
    let numbers: BTreeSet<&String> = results.iter().map(|(n, _)| n).collect();
    assert_eq!(numbers.len(), WORKERS, "distinct build numbers: {numbers:?}");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.schema_version(), buildstate_sqlite::SCHEMA_VERSION);
}

/// One worker of the process tests above; ignored because it only makes sense as their
/// child process. With a shared build it also races on that build.
#[test]
#[ignore = "run as a child process by the sixteen_processes_* tests"]
fn worker_process() {
    let (Ok(db), Ok(index)) = (std::env::var(WORKER_DB), std::env::var(WORKER_INDEX)) else {
        panic!("worker_process is started by the sixteen_processes_* tests");
    };
    let shared: Option<BuildId> = std::env::var(WORKER_BUILD).ok().map(|b| b.parse().expect("build id"));
    let w: usize = index.parse().expect("worker index");
    let actor = format!("process-{w}");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(Path::new(&db)).expect("open");
        if shared.is_none() {
            seed_catalog(&store).await;
        }
        let own = store.create_build(&new_build(&actor)).await.expect("create own build");
        let mut won = 0;
        if let Some(shared) = shared {
            mark(&store, shared, w).await;
            won = race_to_delivery(&store, shared, &actor).await;
        }
        deliver_alone(&store, own.id, &actor).await;
        println!("worker-result {} {won}", own.number);
    });
}
