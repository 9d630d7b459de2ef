//! TLS against the local server, with the CA `scripts/services.sh` makes for it
//! (`BUILDSTATE_TEST_POSTGRES_CA`). Like every case here, these fail — never skip —
//! when the server or the CA is missing.
//!
//! Whether a connection is encrypted is read from the server (`pg_stat_ssl`), for the
//! store's own pooled connections, found by an `application_name` of their own.
//!
//! As in libpq, a `~/.postgresql/root.crt` of the user running the tests would be the CA
//! wherever no `sslrootcert` is given; CI machines have none.

use std::net::ToSocketAddrs;

use buildstate_core::CatalogKind;
use buildstate_postgres::PostgresStore;
use buildstate_store::{BuildFilter, Store, StoreError};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use super::{PostgresHarness, URL_VARIABLE, harness};

const CA_VARIABLE: &str = "BUILDSTATE_TEST_POSTGRES_CA";
/// A CA that signed nothing the server holds (a fixture, never used to sign).
const UNRELATED_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/unrelated-ca.pem");

fn ca() -> String {
    std::env::var(CA_VARIABLE).unwrap_or_else(|_| {
        panic!("{CA_VARIABLE} is not set: run `source scripts/services.sh && start_postgres` first")
    })
}

fn base_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| panic!("{URL_VARIABLE} is not set"))
}

/// The test URL with more query parameters.
fn with(url: &str, params: &str) -> String {
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{params}")
}

/// A name for the store's connections in `pg_stat_activity`, unique to the case.
fn app_name(h: &PostgresHarness) -> String {
    format!("bs_tls_{}", h.schema)
}

/// Connects, writes and reads, and says whether the store's connections are encrypted.
async fn connect_and_use(h: &PostgresHarness, url: &str) -> bool {
    let store = PostgresStore::connect_with_schema(url, &h.schema)
        .await
        .unwrap_or_else(|e| panic!("connect with {url}: {e}"));
    let platform = buildstate_core::CatalogItem::Platform(buildstate_core::Platform {
        name: "tls-cloud".parse().expect("a valid name"),
        display_name: "TLS cloud".into(),
        provider: "aws".into(),
        region: None,
    });
    store.add_catalog_item(&platform).await.expect("a write over this connection");
    let platforms = store.catalog(CatalogKind::Platform).await.expect("a read over this connection");
    assert_eq!(platforms, vec![platform]);
    assert!(store.list_builds(&BuildFilter::default()).await.expect("list").is_empty());
    let encrypted = encrypted(&app_name(h)).await;
    drop(store);
    encrypted
}

/// Whether every connection named `app` is encrypted, asked over a connection of its own.
async fn encrypted(app: &str) -> bool {
    let (client, connection) = tokio_postgres::connect(&base_url(), NoTls).await.expect("connect to look");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .expect("read pg_stat_ssl");
    let flags: Vec<bool> = rows.iter().map(|r| r.get(0)).collect();
    assert!(!flags.is_empty(), "the store holds a pooled connection named {app}");
    assert!(flags.iter().all(|f| *f == flags[0]), "{app}: every connection alike: {flags:?}");
    flags[0]
}

/// The refusal of `url`, checked to be a store-unavailable error (exit 6) that shows no
/// password; its text.
async fn refused(h: &PostgresHarness, url: &str) -> String {
    let e = PostgresStore::connect_with_schema(url, &h.schema).await.expect_err("refused");
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
    let config: tokio_postgres::Config = base_url().parse().expect("a valid test URL");
    let (text, debug) = (e.to_string(), format!("{e:?}"));
    if let Some(password) = config.get_password().map(String::from_utf8_lossy) {
        for shown in [&text, &debug] {
            assert!(!shown.contains(&format!(":{password}@")), "{shown}");
            assert!(!shown.contains(&format!("password='{password}'")), "{shown}");
        }
        assert!(text.contains("***"), "the location is shown, its password hidden: {text}");
    }
    text
}

/// The test server as `host=NAME hostaddr=ITS-ADDRESS …`: TCP goes to the server while
/// TLS checks the certificate against NAME.
fn as_if_named(name: &str, extra: &str) -> String {
    let config: tokio_postgres::Config = base_url().parse().expect("a valid test URL");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        other => panic!("the TLS tests need a TCP test server, not {other:?}"),
    };
    let addr = (host.as_str(), port).to_socket_addrs().ok().and_then(|mut a| a.next()).expect("resolve");
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut s = format!("host={name} hostaddr={} port={port}", addr.ip());
    if let Some(user) = config.get_user() {
        s += &format!(" user={}", quote(user));
    }
    if let Some(password) = config.get_password() {
        s += &format!(" password={}", quote(&String::from_utf8_lossy(password)));
    }
    if let Some(db) = config.get_dbname() {
        s += &format!(" dbname={}", quote(db));
    }
    format!("{s} {extra}")
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let h = harness().await;
    // `channel_binding=require`: SCRAM is bound to the TLS session, or refused.
    let url = with(
        &base_url(),
        &format!("sslmode=require&channel_binding=require&application_name={}", app_name(&h)),
    );
    assert!(connect_and_use(&h, &url).await, "sslmode=require encrypts");
}

#[tokio::test]
async fn verify_full_with_the_ca_encrypts() {
    let h = harness().await;
    let url = with(
        &base_url(),
        &format!("sslmode=verify-full&sslrootcert={}&application_name={}", ca(), app_name(&h)),
    );
    assert!(connect_and_use(&h, &url).await, "sslmode=verify-full encrypts");
}

#[tokio::test]
async fn verify_full_without_the_ca_is_refused_saying_what_to_add() {
    let h = harness().await;
    let text = refused(&h, &with(&base_url(), "sslmode=verify-full")).await;
    assert!(text.contains("add sslrootcert=FILE"), "{text}");
}

#[tokio::test]
async fn verify_full_with_another_ca_is_refused_saying_what_to_give() {
    let h = harness().await;
    let text =
        refused(&h, &with(&base_url(), &format!("sslmode=verify-full&sslrootcert={UNRELATED_CA}"))).await;
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains(&format!("not signed by the CA in sslrootcert={UNRELATED_CA}")), "{text}");
    assert!(text.contains("sslmode=require to encrypt without checking"), "{text}");
    // The same CA under verify-ca is refused just as well: the chain is checked.
    let text =
        refused(&h, &with(&base_url(), &format!("sslmode=verify-ca&sslrootcert={UNRELATED_CA}"))).await;
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn verify_full_with_a_name_the_certificate_lacks_is_refused_and_verify_ca_is_not() {
    let h = harness().await;
    let text =
        refused(&h, &as_if_named("wrong.invalid", &format!("sslmode=verify-full sslrootcert={}", ca())))
            .await;
    assert!(text.contains("not valid for name \"wrong.invalid\""), "{text}");
    assert!(text.contains("use sslmode=verify-ca"), "{text}");
    assert!(text.contains("password=***"), "{text}");
    let url = as_if_named(
        "wrong.invalid",
        &format!("sslmode=verify-ca sslrootcert={} application_name={}", ca(), app_name(&h)),
    );
    assert!(connect_and_use(&h, &url).await, "verify-ca checks the CA only");
}

#[tokio::test]
async fn disable_connects_in_plain_text() {
    let h = harness().await;
    let url = with(&base_url(), &format!("sslmode=disable&application_name={}", app_name(&h)));
    assert!(!connect_and_use(&h, &url).await, "sslmode=disable does not encrypt");
}

#[tokio::test]
async fn the_default_is_prefer_which_encrypts_when_the_server_offers_tls() {
    let h = harness().await;
    let url = with(&base_url(), &format!("application_name={}", app_name(&h)));
    assert!(connect_and_use(&h, &url).await, "no sslmode: TLS, as the server offers it");
}
