//! Many writers on one database file: sixteen connections in one process. Nobody may
//! see "database is locked" (or `Busy`), and no update may be lost. (Sixteen real
//! processes race through the real binary in the CLI's integration tests.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use buildstate_core::{
    Artifact, ArtifactKind, Build, BuildId, BuildStatus, Command, EventKind, MetaKey, MetaValue, Name,
    NewBuild, StateCatalog,
};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Guard, Store, StoreError};
use tokio::sync::Barrier;

const WORKERS: usize = 16;
/// Milestones of the default catalog: 0, 5, …, 100.
const MILESTONES: u64 = 21;

fn name(s: &str) -> Name {
    Name::new(s).expect("valid name")
}

async fn seed_catalog(store: &SqliteStore) {
    buildstate_store::conformance::seed_sample_catalog(store, "seed").await;
}

fn new_build(created_by: &str) -> NewBuild {
    NewBuild { created_by: created_by.into(), ..sample_build() }
}

fn sample_build() -> NewBuild {
    NewBuild {
        platform: name("aws-commercial"),
        os: name("rhel-8.8"),
        image_type: name("base"),
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: String::new(),
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
    store
        .apply(id, &Command::SetMeta { key, value: Some(value) }, Guard::none())
        .await
        .expect("set metadata");
    let artifact = Artifact {
        name: format!("image-{w}"),
        kind: ArtifactKind::Image,
        uri: format!("ami-{w:08x}"),
        region: Some("us-east-1".into()),
        cloud: Some("aws".into()),
        size_bytes: Some(w as u64),
        sha256: None,
        created_at: buildstate_store::now(),
        milestone: None,
        invalidated_at: None,
    };
    store.add_artifact(id, &artifact, Guard::none()).await.expect("add artifact");
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
        match store.apply(id, &complete(b.state, actor), Guard::none()).await {
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
        store
            .apply(id, &complete(b.state, actor), Guard::version(b.version))
            .await
            .expect("complete own build");
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
