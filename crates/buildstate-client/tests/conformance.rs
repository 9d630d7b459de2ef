//! The store contract, run against a real `buildstate serve` (in this process, on a
//! loopback port, over a fresh SQLite store): the proof that the CLI through
//! `--server` keeps every rule it keeps against a local store.

use std::sync::Arc;

use async_trait::async_trait;
use buildstate_client::HttpStore;
use buildstate_core::Name;
use buildstate_store::Store;
use buildstate_store::conformance::Harness;

struct ServerHarness {
    _dir: tempfile::TempDir,
    url: String,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for ServerHarness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[async_trait]
impl Harness for ServerHarness {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(HttpStore::new(&self.url, Some(&self.token)).expect("a client of the server"))
    }

    fn recorded_actor(&self, actor: &str) -> String {
        format!("{actor} via token:conformance")
    }

    fn webhooks(&self) -> buildstate_store::conformance::Webhooks {
        buildstate_store::conformance::Webhooks::Kept
    }
}

async fn harness() -> ServerHarness {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store: Arc<dyn Store> =
        Arc::new(buildstate_sqlite::SqliteStore::open(dir.path().join("s.db")).expect("open the store"));
    let (record, secret) = buildstate_store::tokens::issue(
        Name::new("conformance").expect("name"),
        "read,write,admin".parse().expect("scopes"),
        None,
        buildstate_store::now(),
    )
    .expect("issue a token");
    store.create_token(&record).await.expect("store the token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let router = buildstate_server::router(buildstate_server::AppState::new(store, Default::default()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(buildstate_server::serve(listener, router, async {
        let _ = stopped.await;
    }));
    ServerHarness { _dir: dir, url, token: secret.reveal(), stop: Some(stop) }
}

buildstate_store::conformance_tests!(harness().await);

// ── under load (issue 9 §7): many HTTP clients at once on one server ─────────────────

mod load {
    use std::collections::BTreeMap;

    use buildstate_core::{BuildId, BuildStatus, Command, EventKind, StateCode};
    use buildstate_store::conformance::seed_sample_catalog;
    use buildstate_store::{Guard, Store, StoreError};

    use super::{Harness, harness};

    fn complete(state: StateCode, actor: &str) -> Command {
        Command::Complete { state, actor: actor.into(), exit_code: Some(0), log: None }
    }

    /// Every milestone completed once, in order, with a gapless history: no update was
    /// lost and none was recorded twice.
    async fn assert_delivered_once(store: &dyn Store, id: BuildId) {
        let b = store.build(id).await.expect("read the build");
        assert_eq!((b.state.get(), b.status), (100, BuildStatus::Completed), "{b:?}");
        let history = store.history(id).await.expect("history");
        let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=history.len() as u64).collect::<Vec<_>>(), "a gapless history");
        let completed: Vec<u8> =
            history.iter().filter(|e| e.kind == EventKind::Completed).map(|e| e.state.get()).collect();
        assert_eq!(completed, (0..=100).step_by(5).collect::<Vec<u8>>(), "each milestone once, in order");
    }

    /// What a refused write may be: another client was first. Anything else — a 5xx
    /// (`Backend`, `Unavailable`, `Busy`) above all — fails the test.
    fn refused_by_the_rules(e: &StoreError) -> bool {
        matches!(e, StoreError::Rejected(_) | StoreError::Conflict { .. })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn four_hundred_clients_on_twenty_builds_lose_no_update_and_get_no_server_error() {
        let h = harness().await;
        let s = h.open().await;
        let new = seed_sample_catalog(s.as_ref(), "load").await;
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(s.create_build(&new).await.expect("create").id);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..400usize {
            let (store, id) = (h.open().await, ids[client % 20]);
            tasks.spawn(async move {
                let mut accepted = 0u32;
                loop {
                    let b = store.build(id).await.map_err(|e| format!("client {client} read: {e}"))?;
                    if b.status == BuildStatus::Completed {
                        return Ok::<_, String>((id, accepted));
                    }
                    let cmd = complete(b.state, &format!("client-{client}"));
                    match store.apply(id, &cmd, Guard::version(b.version)).await {
                        Ok(_) => accepted += 1,
                        Err(e) if refused_by_the_rules(&e) => {}
                        Err(e) => return Err(format!("client {client}: {e:?}")),
                    }
                }
            });
        }
        let mut accepted: BTreeMap<BuildId, u32> = BTreeMap::new();
        while let Some(r) = tasks.join_next().await {
            let (id, n) = r.expect("a client task").expect("no server error, no lost answer");
            *accepted.entry(id).or_default() += n;
        }
        for id in ids {
            assert_eq!(accepted.get(&id), Some(&21), "21 accepted completes of 21 milestones");
            assert_delivered_once(s.as_ref(), id).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn twenty_clients_completing_every_milestone_of_one_build_leave_a_valid_history() {
        let h = harness().await;
        let s = h.open().await;
        let new = seed_sample_catalog(s.as_ref(), "load").await;
        let id = s.create_build(&new).await.expect("create").id;
        s.apply(id, &complete(StateCode::INITIAL, "seed"), Guard::none()).await.expect("complete 0");
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..20 {
            let store = h.open().await;
            tasks.spawn(async move {
                // `buildstate state complete B 5`, `… 10`, … `… 100`, refusals expected.
                for code in (5..=100).step_by(5) {
                    let state = StateCode::new(code).expect("a code");
                    match store.apply(id, &complete(state, &format!("c{client}")), Guard::none()).await {
                        Ok(_) => {}
                        Err(e) if refused_by_the_rules(&e) => {}
                        Err(e) => return Err(format!("client {client} at {code}: {e:?}")),
                    }
                }
                Ok::<(), String>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("a client task").expect("no server error");
        }
        // Not every milestone need have been completed: a client may have tried 10
        // before anyone completed 5. Whatever was completed was completed once, in order.
        let b = s.build(id).await.expect("read");
        let history = s.history(id).await.expect("history");
        let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=history.len() as u64).collect::<Vec<_>>(), "a gapless history");
        let completed: Vec<u8> =
            history.iter().filter(|e| e.kind == EventKind::Completed).map(|e| e.state.get()).collect();
        let expected: Vec<u8> =
            (0..b.state.get()).step_by(5).chain((b.state.get() == 100).then_some(100)).collect();
        assert_eq!(completed, expected, "each milestone up to the build's state once, in order: {b:?}");
        assert_eq!(b.version, history.len() as u64, "one version per event");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn three_creates_of_one_combination_at_once_get_three_numbers() {
        let h = harness().await;
        let s = h.open().await;
        let new = seed_sample_catalog(s.as_ref(), "load").await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (store, new) = (h.open().await, new.clone());
            tasks.spawn(async move { store.create_build(&new).await });
        }
        let mut numbers = Vec::new();
        while let Some(r) = tasks.join_next().await {
            numbers.push(r.expect("a task").expect("every create succeeds").number.to_string());
        }
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), 3, "three distinct numbers: {numbers:?}");
    }
}
