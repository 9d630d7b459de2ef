//! The store handle: a connection pool, where it points, and how to connect.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_store::{StoreError, StoreResult};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use tokio_postgres::NoTls;

use crate::error::PgError;
use crate::tls::Tls;
use crate::{migrate, url};

/// Most connections one handle opens at once. Connections are opened on demand, so a
/// one-shot CLI command uses one; a runner or server uses a few at a time.
const MAX_CONNECTIONS: usize = 16;
/// How long a call waits for a free pooled connection before reporting `Busy`.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(30);
/// How long opening one connection (TCP, authentication) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store: many workers on many machines share one view of every build.
///
/// Cheap to clone: clones share one connection pool. Every method runs in one
/// transaction on a pooled connection; writes lock the build's row, so concurrent
/// writers — in this process or on other machines — queue per build instead of
/// overwriting each other. Lease expiry is judged by the server's clock.
///
/// TLS follows libpq's `sslmode` and `sslrootcert` (`crate::tls`): by default
/// (`prefer`) a connection is encrypted when the server offers TLS; `require` refuses a
/// server without it, `verify-ca` and `verify-full` also check its certificate.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The connection string with its password replaced by `***`.
    location: String,
    tls: Tls,
    schema: Option<String>,
    schema_version: u32,
}

impl fmt::Debug for PostgresStore {
    // By hand: only what is safe to print (no pool internals, no connection string).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.inner.location)
            .field("schema", &self.inner.schema)
            .field("schema_version", &self.inner.schema_version)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value`
    /// connection string) and brings its schema up to date ([`crate::SCHEMA_VERSION`]).
    /// Tables live in the first schema of the server's `search_path` (usually `public`).
    ///
    /// Connecting to an up-to-date database costs one connection and two small reads.
    /// An unreachable server, failed authentication, a server that refuses TLS or whose
    /// certificate does not verify as `sslmode` asks, or a database written by a newer
    /// buildstate is `StoreError::Unavailable`, naming the location with its password
    /// hidden and saying what to do.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        open(url, None).await
    }

    /// Like [`PostgresStore::connect`], with every table in `schema` (created if
    /// missing): one database can hold several independent stores, such as one per
    /// test. `schema` must match `[a-z_][a-z0-9_]*` (at most 63 bytes); every pooled
    /// connection gets it as its `search_path`.
    pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<PostgresStore> {
        url::check_schema(schema)?;
        open(url, Some(schema)).await
    }

    /// The schema version of the database, after migration: [`crate::SCHEMA_VERSION`].
    pub fn schema_version(&self) -> u32 {
        self.inner.schema_version
    }

    /// The schema given to [`PostgresStore::connect_with_schema`], if any.
    pub fn schema(&self) -> Option<&str> {
        self.inner.schema.as_deref()
    }

    /// The connection string with its password replaced by `***`.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> StoreResult<Object> {
        checkout(&self.inner.pool, &self.inner.location, &self.inner.tls).await
    }

    pub(crate) fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable { location: self.inner.location.clone(), reason }
    }
}

/// A connection from `pool`. Pool failures are about reaching the server, not about the
/// data: `Unavailable` (with what to do when TLS is why), or `Busy` when every
/// connection stayed in use.
async fn checkout(pool: &Pool, location: &str, tls: &Tls) -> StoreResult<Object> {
    let started = Instant::now();
    let unavailable = |reason: String| StoreError::Unavailable { location: location.to_owned(), reason };
    pool.get().await.map_err(|e| match e {
        PoolError::Timeout(TimeoutType::Wait) => {
            StoreError::Busy { waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX) }
        }
        PoolError::Timeout(_) => unavailable("the server did not answer in time".to_owned()),
        PoolError::Backend(e) => match tls.advice(&e) {
            Some(advice) => unavailable(format!("cannot connect: {}; {advice}", PgError(e))),
            None => unavailable(format!("cannot connect: {}", PgError(e))),
        },
        other => unavailable(format!("no connection: {other}")),
    })
}

async fn open(conninfo: &str, schema: Option<&str>) -> StoreResult<PostgresStore> {
    let location = url::redact(conninfo);
    let (mut config, tls) = url::parse(conninfo, &location)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if let Some(schema) = schema {
        url::use_schema(&mut config, schema);
    }
    // Fast recycling checks only that the connection is open: a broken one is replaced,
    // and every unit of work ends its transaction (commit, or rollback on drop).
    let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let connector =
        tls.connector().map_err(|reason| StoreError::Unavailable { location: location.clone(), reason })?;
    let manager = match connector {
        Some(connector) => Manager::from_config(config, connector, manager_config),
        None => Manager::from_config(config, NoTls, manager_config),
    };
    let pool = Pool::builder(manager)
        .max_size(MAX_CONNECTIONS)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT_FOR_CONNECTION))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Unavailable {
            location: location.clone(),
            reason: format!("cannot set up a connection pool: {e}"),
        })?;
    let schema_version = {
        let mut client = checkout(&pool, &location, &tls).await?;
        migrate::migrate(&mut client, schema, &location).await?
    };
    Ok(PostgresStore {
        inner: Arc::new(Inner { pool, location, tls, schema: schema.map(str::to_owned), schema_version }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::{TestSchema, url as test_url};

    fn assert_hidden(e: &StoreError, secret: &str) {
        let (text, debug) = (e.to_string(), format!("{e:?}"));
        assert!(!text.contains(secret) && !debug.contains(secret), "{text} / {debug}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_without_the_password() {
        let e = PostgresStore::connect("postgres://me:hunter2@127.0.0.1:1/db").await.expect_err("port 1");
        match &e {
            StoreError::Unavailable { location, reason } => {
                assert_eq!(location, "postgres://me:***@127.0.0.1:1/db");
                assert!(reason.contains("cannot connect"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_hidden(&e, "hunter2");
    }

    #[tokio::test]
    async fn a_wrong_password_is_unavailable_without_the_password() {
        // `redact` puts `***` exactly where the password is.
        let url = url::redact(&test_url()).replace("***", "wrong-hunter2");
        assert!(url.contains("wrong-hunter2"), "the test URL carries a password");
        let e = PostgresStore::connect(&url).await.expect_err("a wrong password is refused");
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
        assert!(e.to_string().contains("password authentication failed"), "{e}");
        assert_hidden(&e, "wrong-hunter2");
    }

    #[tokio::test]
    async fn a_server_refusing_tls_under_require_is_unavailable_saying_what_to_do() {
        // Answers the client's SSLRequest (8 bytes) with `N`, as a server without TLS does.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut socket, _) = listener.accept().expect("accept");
            let mut request = [0u8; 8];
            socket.read_exact(&mut request).expect("the SSLRequest");
            socket.write_all(b"N").expect("refuse TLS");
            request
        });
        let url = format!("postgres://me:hunter2@127.0.0.1:{port}/db?sslmode=require&connect_timeout=5");
        let e = PostgresStore::connect(&url).await.expect_err("no TLS, no connection");
        assert_eq!(server.join().expect("the fake server")[4..], [0x04, 0xd2, 0x16, 0x2f], "an SSLRequest");
        match &e {
            StoreError::Unavailable { location, reason } => {
                assert_eq!(
                    location,
                    &format!("postgres://me:***@127.0.0.1:{port}/db?sslmode=require&connect_timeout=5")
                );
                assert!(
                    reason.contains("does not accept TLS connections, which sslmode=require requires"),
                    "{reason}"
                );
                assert!(reason.contains("turn `ssl` on"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_hidden(&e, "hunter2");
    }

    #[tokio::test]
    async fn tls_options_that_make_no_sense_are_refused_before_connecting() {
        for (url, says) in [
            ("postgres://me:hunter2@127.0.0.1:1/db?sslmode=verify-full", "add sslrootcert=FILE"),
            ("host=127.0.0.1 port=1 password=hunter2 sslmode=verify-ca", "add sslrootcert=FILE"),
            ("postgres://me:hunter2@127.0.0.1:1/db?sslmode=yes", "not one of disable, prefer"),
            (
                "postgres://me:hunter2@127.0.0.1:1/db?sslrootcert=/nonexistent.pem",
                "cannot read sslrootcert=/nonexistent.pem",
            ),
        ] {
            let e = PostgresStore::connect(url).await.expect_err(url);
            assert!(
                matches!(&e, StoreError::Unavailable { reason, .. } if reason.contains(says)),
                "{url}: {e}"
            );
            assert_hidden(&e, "hunter2");
        }
    }

    #[tokio::test]
    async fn a_bad_schema_name_is_refused_before_connecting() {
        for bad in ["Robert'); DROP TABLE builds; --", "", "9lives", "a-b"] {
            let r = PostgresStore::connect_with_schema("postgres://u:p@127.0.0.1:1/db", bad).await;
            assert!(matches!(r, Err(StoreError::InvalidInput(_))), "{bad}: {r:?}");
        }
    }

    #[tokio::test]
    async fn location_and_debug_hide_the_password() {
        let schema = TestSchema::new("loc");
        let store = PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect");
        let password = schema
            .url
            .parse::<tokio_postgres::Config>()
            .ok()
            .and_then(|c| c.get_password().map(|p| String::from_utf8_lossy(p).into_owned()));
        let shown =
            [store.location().to_owned(), buildstate_store::Store::location(&store), format!("{store:?}")];
        if let Some(password) = password {
            for s in &shown {
                assert!(!s.contains(&format!(":{password}@")), "{s}");
                assert!(s.contains(":***@"), "{s}");
            }
        }
        assert_eq!(store.schema(), Some(schema.name.as_str()));
        assert_eq!(store.schema_version(), crate::SCHEMA_VERSION);
    }
}
