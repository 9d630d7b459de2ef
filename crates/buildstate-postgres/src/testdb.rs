//! The PostgreSQL server the unit tests run against: `BUILDSTATE_TEST_POSTGRES_URL`,
//! one fresh schema per test, dropped afterwards. A missing server fails the tests —
//! they never skip.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Client, NoTls};

pub(crate) const URL_VARIABLE: &str = "BUILDSTATE_TEST_POSTGRES_URL";

/// The test server's URL; panics, saying how to start one, when it is not set.
pub(crate) fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!("{URL_VARIABLE} is not set: run `source scripts/services.sh && start_postgres` first")
    })
}

/// A schema of its own for one test, dropped (best effort) when the test ends.
#[derive(Debug)]
pub(crate) struct TestSchema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl TestSchema {
    pub(crate) fn new(label: &str) -> TestSchema {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random = RandomState::new().hash_one(n) & 0xff_ffff;
        let name = format!("u_{label}_{}_{n}_{random:06x}", std::process::id());
        TestSchema { url: url(), name }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which must not block on its own tasks:
        // the schema is dropped on a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: could not drop the test schema {}", self.name);
        }
    }
}

/// A plain connection whose `search_path` is the test's schema, for looking behind the
/// store's back.
pub(crate) async fn raw_client(schema: &TestSchema) -> Client {
    let mut config: tokio_postgres::Config = schema.url.parse().expect("a valid test URL");
    crate::url::use_schema(&mut config, &schema.name);
    let (client, connection) = config.connect(NoTls).await.expect("connect to the test server");
    tokio::spawn(connection);
    client
}
