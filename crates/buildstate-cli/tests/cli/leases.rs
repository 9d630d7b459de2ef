//! Leases seen from the command line. A runner's lease is taken through the library on
//! the same database file, as a runner process would; the binary must refuse manual
//! changes while it is held, show it, and break it.

use std::path::Path;
use std::time::Duration;

use buildstate_core::{Command, Lease, LeaseRequest, StateCode};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Guard, Store, StoreError};

use crate::common::{Env, redact_times};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Leases `number` in the store at `db` to runner-7@ci-host-3 (pid 4242) for `ttl`.
fn take_lease(db: &Path, number: &str, ttl: Duration) -> Lease {
    runtime().block_on(async {
        let store = SqliteStore::open(db).expect("open the store");
        let b = store.find_build(number).await.expect("find the build");
        let request = LeaseRequest { owner: "runner-7".into(), host: "ci-host-3".into(), pid: 4242, ttl };
        store.acquire_lease(b.id, &request).await.expect("acquire the lease")
    })
}

/// What the runner holding `lease` gets when it records `complete CODE` under its token.
fn write_as_runner(db: &Path, lease: &Lease, code: i64) -> Result<(), StoreError> {
    runtime().block_on(async {
        let store = SqliteStore::open(db).expect("open the store");
        let state = StateCode::new(code).expect("valid code");
        let cmd = Command::Complete { state, actor: "runner-7".into(), exit_code: Some(0), log: None };
        store.apply(lease.build_id, &cmd, Guard::lease(lease.token)).await.map(|_| ())
    })
}

#[test]
fn a_leased_build_refuses_manual_changes_until_the_lease_is_broken() {
    let env = Env::new().with_catalog();
    let b = env.build("lease-1");
    env.advance_to(&b, 10);
    assert_eq!(env.ok(&["lease", "list"]).trim(), "no build is leased");
    let lease = take_lease(&env.db, &b, Duration::from_secs(3600));

    let err = env.fails_unchanged(&b, &["state", "complete", &b, "10"], 5);
    assert!(err.contains("runner-7@ci-host-3 (pid 4242)"), "names the holder: {err}");
    assert!(err.contains("buildstate lease break lease-1"), "says how to break it: {err}");
    insta::assert_snapshot!(
        "lease_held",
        redact_times(&env.run(&["state", "complete", &b, "10"]).transcript())
    );
    for args in [
        &["state", "start", &b, "10"][..],
        &["state", "fail", &b, "10", "--error", "x"],
        &["retry", &b, "--force"],
        &["rewind", &b, "--to", "5", "--reason", "redo"],
        &["build", "cancel", &b, "--reason", "stop"],
        &["meta", "set", &b, "k", "v"],
    ] {
        let err = env.fails_unchanged(&b, args, 5);
        assert!(err.contains("is being run by runner-7@ci-host-3"), "{args:?}: {err}");
    }

    let listed = env.json(&["lease", "list"]);
    let rows = listed.as_array().expect("an array");
    assert_eq!(rows.len(), 1, "{listed}");
    let row = &rows[0];
    assert_eq!(row["build"], "lease-1");
    assert_eq!(row["build_id"], lease.build_id.to_string());
    assert_eq!((row["owner"].as_str(), row["host"].as_str()), (Some("runner-7"), Some("ci-host-3")));
    assert_eq!((row["pid"].as_u64(), row["generation"].as_u64()), (Some(4242), Some(1)));
    assert_eq!(row["expired"], false);
    insta::assert_snapshot!("lease_list", redact_times(&env.run(&["lease", "list"]).transcript()));

    let broke = env.ok(&["lease", "break", &b]);
    assert!(broke.contains("broke lease token #1 of build lease-1"), "{broke}");
    assert!(broke.contains("runner-7@ci-host-3 (pid 4242)"), "{broke}");
    let again = env.ok(&["lease", "break", &b]);
    assert!(again.contains("no lease held on build lease-1"), "breaking twice is not an error: {again}");
    assert_eq!(env.json(&["lease", "break", &b]), serde_json::Value::Null);
    assert_eq!(env.json(&["lease", "list"]), serde_json::json!([]));

    env.ok(&["state", "complete", &b, "10"]);
    // The runner whose lease was broken wakes up: its token no longer counts.
    match write_as_runner(&env.db, &lease, 15) {
        Err(StoreError::StaleLease { current: None, .. }) => {}
        other => panic!("a write under a broken lease's token → StaleLease, got {other:?}"),
    }
    assert_eq!(env.json(&["build", "show", &b])["build"]["state"], 15, "nothing the stale runner did stuck");
}

#[test]
fn an_expired_lease_is_listed_but_blocks_nothing() {
    let env = Env::new().with_catalog();
    let b = env.build("lease-2");
    let lease = take_lease(&env.db, &b, Duration::from_millis(50));
    std::thread::sleep(Duration::from_millis(100));
    let listed = env.json(&["lease", "list"]);
    assert_eq!(listed[0]["expired"], true, "{listed}");
    assert!(env.ok(&["lease", "list"]).lines().nth(1).is_some_and(|l| l.trim_end().ends_with("yes")));
    env.ok(&["state", "complete", &b, "0"]);
    let broke = env.ok(&["lease", "break", &b]);
    assert!(broke.contains(&format!("token {}", lease.token)) && broke.contains("expired"), "{broke}");
}

#[test]
fn lease_break_of_an_unknown_build_is_not_found() {
    let env = Env::new().with_catalog();
    let err = env.fails(&["lease", "break", "no-such-build"], 3);
    assert!(err.contains("no build matches"), "{err}");
}

/// Issue 7, 3.4: with counters every first lease was token 1, so a step of build A that
/// inherited `BUILDSTATE_LEASE_TOKEN` could write to build B under another runner's
/// lease. Tokens carry a random part: A's token is refused on B, and nothing changes.
#[test]
fn a_token_of_one_build_cannot_write_to_another() {
    let env = Env::new().with_catalog();
    let a = env.build("lease-a");
    let b = env.build("lease-b");
    let lease_a = take_lease(&env.db, &a, Duration::from_secs(600));
    let lease_b = take_lease(&env.db, &b, Duration::from_secs(600));
    assert_eq!((lease_a.token.generation(), lease_b.token.generation()), (1, 1));
    assert_ne!(lease_a.token, lease_b.token, "same generation, different secrets");
    let before = env.export(&b);
    let r = env
        .cmd()
        .env("BUILDSTATE_LEASE_TOKEN", lease_a.token.get().to_string())
        .args(["state", "start", &b, "0"])
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(5), "a stale token is a lease error: {r:?}");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("never granted"), "{stderr}");
    assert!(
        !stderr.contains(&lease_a.token.get().to_string()),
        "the token's secret is not printed: {stderr}"
    );
    assert_eq!(env.export(&b), before, "build B is unchanged");
    // Its own token still works for A.
    write_as_runner(&env.db, &lease_a, 0).expect("A's runner writes to A");
    let listed = env.ok(&["lease", "list", "--json"]);
    assert!(
        !listed.contains(&lease_a.token.get().to_string()),
        "listings never show a usable token: {listed}"
    );
}
