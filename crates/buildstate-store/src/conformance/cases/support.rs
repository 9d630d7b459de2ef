//! Fixtures shared by the conformance cases.

use std::collections::BTreeMap;
use std::time::Duration;

use buildstate_core::{
    Artifact, ArtifactKind, Build, BuildDocument, BuildId, BuildNumber, CatalogItem, Command, FailureClass,
    FailureInfo, FailureType, HistoryEvent, ImageType, Lease, MetaKey, MetaValue, Name, NewBuild, OsVersion,
    Outcome, Platform, Sha256Hex, StateCatalog, StateCode,
};

use crate::{BuildFilter, Guard, Store, StoreError, now};

// ── fixtures ─────────────────────────────────────────────────────────────────────

pub(super) const ACTOR: &str = "conformance";
/// Text that has broken stores before: quotes, SQL, NUL, terminal escapes, CR, BEL,
/// non-ASCII. Stored, it must read back as `clean_text` of itself — nothing more.
pub(super) const HOSTILE: &str = "it's \"quoted\" `ticked` '; DROP TABLE builds; -- \0nul \x1b[31mred\x1b[0m \x07bell \r\n\tünïcødé 🚀 %_\\";

pub(super) fn name(s: &str) -> Name {
    Name::new(s).expect("test names are valid")
}

pub(super) fn code(n: i64) -> StateCode {
    StateCode::new(n).expect("test codes are in 0..=100")
}

pub(super) fn key(s: &str) -> MetaKey {
    MetaKey::new(s).expect("test metadata keys are valid")
}

pub(super) fn value(k: &str, v: &str) -> MetaValue {
    MetaValue::new(&key(k), v).expect("test metadata values are short")
}

pub(super) fn platform(n: &str, provider: &str, region: Option<&str>) -> CatalogItem {
    CatalogItem::Platform(Platform {
        name: name(n),
        display_name: format!("Platform {n}"),
        provider: provider.into(),
        region: region.map(Into::into),
    })
}

pub(super) fn os(n: &str, minor: Option<u32>) -> CatalogItem {
    CatalogItem::Os(OsVersion {
        name: name(n),
        display_name: format!("OS {n}"),
        family: n.split('-').next().unwrap_or(n).into(),
        major: 8,
        minor,
    })
}

pub(super) fn image(n: &str) -> CatalogItem {
    CatalogItem::ImageType(ImageType {
        name: name(n),
        display_name: format!("Image {n}"),
        description: format!("the {n} image"),
    })
}

pub(super) fn new_build(p: &str, o: &str, i: &str) -> NewBuild {
    NewBuild {
        platform: name(p),
        os: name(o),
        image_type: name(i),
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: ACTOR.into(),
        ci_url: Some("https://ci.example.invalid/teams/images/builds/1".into()),
        metadata: BTreeMap::new(),
    }
}

/// Adds a platform, an OS and an image type (those not there yet) and returns a
/// `NewBuild` of them.
pub(super) async fn seed_triple(s: &dyn Store, p: &str, o: &str, i: &str) -> NewBuild {
    for item in [platform(p, "aws", Some("us-east-1")), os(o, Some(8)), image(i)] {
        match s.add_catalog_item(&item).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("adding {} `{}` to the catalog: {e}", item.kind(), item.name()),
        }
    }
    new_build(p, o, i)
}

/// The usual triple: rhel-8.8 × base × aws-commercial.
pub(super) async fn seed(s: &dyn Store) -> NewBuild {
    seed_triple(s, "aws-commercial", "rhel-8.8", "base").await
}

pub(super) async fn create(s: &dyn Store, new: &NewBuild) -> Build {
    s.create_build(new).await.expect("creating a build of catalog items must succeed")
}

pub(super) async fn reload(s: &dyn Store, id: BuildId) -> Build {
    s.build(id).await.expect("reading an existing build")
}

pub(super) async fn export(s: &dyn Store, id: BuildId) -> BuildDocument {
    s.export_build(id).await.expect("exporting an existing build")
}

pub(super) async fn history(s: &dyn Store, id: BuildId) -> Vec<HistoryEvent> {
    s.history(id).await.expect("reading the history of an existing build")
}

/// Applies a command that the rules must accept; checks that what the store returns
/// is what it stored.
pub(super) async fn run(s: &dyn Store, id: BuildId, cmd: Command) -> Outcome {
    let outcome = s
        .apply(id, &cmd, Guard::none())
        .await
        .unwrap_or_else(|e| panic!("{} must be accepted: {e}", cmd.name()));
    assert_eq!(reload(s, id).await, outcome.build, "apply must return the build it stored");
    outcome
}

/// Completes milestones until the build is at `to`.
pub(super) async fn advance_to(s: &dyn Store, id: BuildId, to: i64) -> Build {
    loop {
        let b = reload(s, id).await;
        if b.state == code(to) {
            return b;
        }
        run(s, id, complete(i64::from(b.state.get()))).await;
    }
}

/// A different time for the next write, so that "newest first" has one answer.
pub(super) async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

pub(super) fn start(c: i64) -> Command {
    Command::Start { state: code(c), actor: ACTOR.into(), log: Some(format!("logs/{c}.log")), force: false }
}

pub(super) fn start_forced(c: i64) -> Command {
    Command::Start { state: code(c), actor: ACTOR.into(), log: None, force: true }
}

pub(super) fn complete(c: i64) -> Command {
    Command::Complete { state: code(c), actor: ACTOR.into(), exit_code: Some(0), log: None }
}

pub(super) fn failure(ty: &str, class: FailureClass, message: &str) -> FailureInfo {
    FailureInfo {
        failure_type: ty.parse::<FailureType>().expect("test failure types are valid"),
        class,
        component: Some("security-role".into()),
        message: message.into(),
        details: BTreeMap::from([
            ("playbook".to_owned(), serde_json::json!("25-security.yml")),
            ("task".to_owned(), serde_json::json!("enable selinux")),
            ("host".to_owned(), serde_json::json!({ "name": "10.0.0.7", "port": 22 })),
        ]),
        exit_code: Some(2),
    }
}

pub(super) fn fail(c: i64, class: FailureClass, max_attempts: u32) -> Command {
    fail_with(c, failure("ansible", class, "task `enable selinux` failed"), max_attempts)
}

pub(super) fn fail_with(c: i64, failure: FailureInfo, max_attempts: u32) -> Command {
    Command::Fail {
        state: code(c),
        actor: ACTOR.into(),
        failure,
        max_attempts,
        log: Some("logs/fail.log".into()),
    }
}

pub(super) fn retry(force: bool, reason: Option<&str>) -> Command {
    Command::Retry { actor: ACTOR.into(), reason: reason.map(Into::into), force }
}

pub(super) fn rewind(to: i64, reason: &str) -> Command {
    Command::Rewind { to: code(to), actor: ACTOR.into(), reason: reason.into() }
}

pub(super) fn cancel(reason: &str) -> Command {
    Command::Cancel { actor: ACTOR.into(), reason: reason.into() }
}

pub(super) fn skip(c: i64, reason: &str) -> Command {
    Command::Skip { state: code(c), actor: ACTOR.into(), reason: reason.into() }
}

pub(super) fn set_meta(k: &str, v: Option<&str>) -> Command {
    Command::SetMeta { key: key(k), value: v.map(|v| value(k, v)) }
}

pub(super) fn artifact(n: &str, uri: &str) -> Artifact {
    Artifact {
        name: n.into(),
        kind: ArtifactKind::Image,
        uri: uri.into(),
        region: Some("us-east-1".into()),
        cloud: Some("aws".into()),
        size_bytes: Some(8 * 1024 * 1024 * 1024),
        sha256: Some(Sha256Hex::new(&"ab".repeat(32)).expect("64 hex characters")),
        created_at: now(),
        milestone: None,
        invalidated_at: None,
    }
}

/// `a` as the store keeps it when recorded on a build at `state`: the store sets the
/// milestone from the build, and a new artifact is current.
/// `a` as the store records it at `state`, with the recording time left out (the
/// store's clock sets it; compare with [`unstamped`] lists).
pub(super) fn recorded_at(a: &Artifact, state: i64) -> Artifact {
    Artifact {
        milestone: Some(code(state)),
        invalidated_at: None,
        created_at: jiff::Timestamp::UNIX_EPOCH,
        ..a.clone()
    }
}

/// Artifacts with their recording times left out, to compare with [`recorded_at`].
pub(super) fn unstamped(artifacts: Vec<Artifact>) -> Vec<Artifact> {
    artifacts.into_iter().map(|a| Artifact { created_at: jiff::Timestamp::UNIX_EPOCH, ..a }).collect()
}

/// Applies a command the rules must refuse with `$pat`, and checks that the build
/// exports exactly as before.
macro_rules! assert_rejected {
    ($s:expr, $id:expr, $cmd:expr, $pat:pat) => {{
        let (s, id, cmd): (&dyn $crate::Store, BuildId, Command) = ($s, $id, $cmd);
        let before = export(s, id).await;
        match s.apply(id, &cmd, $crate::Guard::none()).await {
            Err(StoreError::Rejected(r @ $pat)) => {
                assert!(!r.to_string().is_empty(), "a rejection says why");
            }
            other => panic!(
                "{} on a {} build at {} must be refused with {}, got {other:?}",
                cmd.name(),
                before.status,
                before.current_state,
                stringify!($pat)
            ),
        }
        assert_eq!(export(s, id).await, before, "a refused {} changed the store", cmd.name());
    }};
}

pub(super) fn ids(builds: &[Build]) -> Vec<BuildId> {
    builds.iter().map(|b| b.id).collect()
}

pub(super) async fn build_filter(s: &dyn Store, filter: BuildFilter) -> Vec<BuildId> {
    let builds = s.list_builds(&filter).await.unwrap_or_else(|e| panic!("list builds {filter:?}: {e}"));
    ids(&builds)
}

// ── catalog ──────────────────────────────────────────────────────────────────────

/// A build with everything a document carries: history with a forced retry and a
/// rewind, resolved and open failures, metadata, artifacts.
pub(super) async fn rich_build(st: &dyn Store) -> Build {
    let mut new = seed(st).await;
    new.metadata = BTreeMap::from([(key("ticket"), value("ticket", "OPS-1"))]);
    let b = create(st, &new).await;
    run(st, b.id, start(0)).await;
    run(st, b.id, fail(0, FailureClass::Transient, 1)).await;
    run(st, b.id, retry(true, Some("override"))).await;
    advance_to(st, b.id, 25).await;
    run(st, b.id, fail(25, FailureClass::Persistent, 3)).await;
    st.resolve_failures(b.id, Some(1), "mirror fixed", Guard::none()).await.expect("resolve");
    run(st, b.id, rewind(20, "redo cloud setup")).await;
    run(st, b.id, set_meta("ami/us-east-1", Some("ami-0abc"))).await;
    st.add_artifact(b.id, &artifact("ami/us-east-1", "ami-0abc"), Guard::none()).await.expect("add artifact");
    reload(st, b.id).await
}

/// The document with its identity changed (id, number, failure owners, resume token).
pub(super) fn renamed(doc: &BuildDocument, number: &str) -> BuildDocument {
    let mut parts = doc.clone().into_parts().expect("an exported document is valid");
    let id = BuildId::generate(1_770_000_000_000, now().as_nanosecond().unsigned_abs());
    parts.build.id = id;
    parts.build.number = BuildNumber::new(number).expect("valid number");
    for f in &mut parts.failures {
        f.build_id = id;
    }
    BuildDocument::from_parts(parts)
}

/// A lease as listed, or as a refusal names it, is the held one: its token whole, or
/// redacted ([`buildstate_core::LeaseToken::redacted`]) by a store that is a client of a
/// server, which never learns the secret of a lease it does not hold.
pub fn is_lease(seen: &Lease, held: &Lease) -> bool {
    seen == held || *seen == Lease { token: held.token.redacted(), ..held.clone() }
}

/// [`is_lease`] for each of a listing, in order.
#[track_caller]
pub fn assert_leases(seen: &[Lease], held: &[Lease], what: &str) {
    assert!(
        seen.len() == held.len() && seen.iter().zip(held).all(|(s, h)| is_lease(s, h)),
        "{what}: listed {seen:?}, held {held:?}"
    );
}
