//! The store contract, run against the PostgreSQL backend.
//!
//! Needs a server: `BUILDSTATE_TEST_POSTGRES_URL` (`source scripts/services.sh &&
//! start_postgres` starts one and sets it). Without it every case fails, saying so —
//! a missing service is a failure, never a skip.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use buildstate_postgres::PostgresStore;
use buildstate_store::Store;
use buildstate_store::conformance::Harness;
use tokio::sync::{Semaphore, SemaphorePermit};

const URL_VARIABLE: &str = "BUILDSTATE_TEST_POSTGRES_URL";

/// One fresh schema per case; every `open` is a new store (its own connection pool) on
/// it, as a separate worker process would have. The schema is dropped when the case
/// ends, pass or fail (best effort).
struct PostgresHarness {
    url: String,
    schema: String,
    // Released after `drop` has dropped the schema (fields drop after `Drop::drop`).
    _turn: SemaphorePermit<'static>,
}

/// Cases running at once. The concurrency cases hold 17 stores (pools) each; on a
/// many-core machine unbounded cases could exhaust PostgreSQL's default
/// `max_connections` (100) and fail for a reason that is not the contract's.
static TURNS: Semaphore = Semaphore::const_new(4);

#[async_trait]
impl Harness for PostgresHarness {
    async fn open(&self) -> Arc<dyn Store> {
        let store = PostgresStore::connect_with_schema(&self.url, &self.schema)
            .await
            .unwrap_or_else(|e| panic!("connect to the test schema {}: {e}", self.schema));
        Arc::new(store)
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop runs inside the case's runtime, which must not block on its own tasks:
        // the schema is dropped from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.ok()?;
                tokio::spawn(connection);
                // The name is ours, `t_<digits>_<digits>_<hex>`: no quoting needed.
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: could not drop the test schema {}", self.schema);
        }
    }
}

async fn harness() -> PostgresHarness {
    static CASES: AtomicU32 = AtomicU32::new(0);
    let url = std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!("{URL_VARIABLE} is not set: run `source scripts/services.sh && start_postgres` first")
    });
    let case = CASES.fetch_add(1, Ordering::Relaxed);
    // The pid and counter keep concurrent cases of one run apart; the random part keeps
    // runs apart when a pid comes back.
    let random = RandomState::new().hash_one(case) & 0xffff_ffff;
    let schema = format!("t_{}_{case}_{random:08x}", std::process::id());
    let turn = TURNS.acquire().await.unwrap_or_else(|e| panic!("the case semaphore is never closed: {e}"));
    PostgresHarness { url, schema, _turn: turn }
}

buildstate_store::conformance_tests!(harness().await);

// A module of this binary rather than a test binary of its own (a file directly in
// tests/ would be one): one link less.
#[path = "conformance/tls.rs"]
mod tls;
