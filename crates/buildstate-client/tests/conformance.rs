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
