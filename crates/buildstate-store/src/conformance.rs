//! The conformance suite: one contract, every backend.
//!
//! A backend's test file provides a [`Harness`] and expands [`conformance_tests!`]:
//!
//! ```ignore
//! buildstate_store::conformance_tests!(my_backend::tests::harness());
//! ```
//!
//! Each case becomes its own `#[tokio::test]` (multi-threaded), so a failure names the
//! broken rule. Cases get fresh, empty stores from the harness; `open` may be called
//! more than once to get independent handles (connections) on the same store, which is
//! how the concurrency cases race real writers.
//!
//! The cases test the contract — the doc comments of [`Store`], SPEC §2 and the text
//! policy of `buildstate_core::clean_text` — and nothing a backend is free to choose
//! (row layout, ordering of ties, the exact wording of errors). Every refused call is
//! checked twice: for its typed error, and for leaving the exported build unchanged.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Store;

/// Gives the suite handles on one fresh, empty store.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// Another handle on the same store (a new connection where the backend has them).
    async fn open(&self) -> Arc<dyn Store>;
}

/// Expands to one `#[tokio::test]` per conformance case. `$harness` is an expression
/// (usually an `async` call) evaluating to a [`Harness`].
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@cases $harness;
            catalog_add_list_show_remove,
            catalog_duplicates_unknowns_and_namespaces,
            catalog_item_in_use_cannot_be_removed,
            create_build_starts_pending_at_zero,
            create_build_numbers_by_triple_and_day,
            create_build_chosen_number,
            create_build_with_unknown_catalog_items_creates_nothing,
            create_build_with_longest_names,
            concurrent_creates_get_distinct_numbers,
            find_build_by_id_number_and_prefix,
            list_builds_filters_newest_first,
            lifecycle_start_complete_to_delivered,
            fail_keeps_state_and_retry_reopens,
            retries_exhausted_need_a_person_and_force_is_recorded,
            persistent_failure_needs_a_person_at_once,
            rewind_invalidates_milestones_above,
            cancel_is_terminal_until_rewound,
            skip_advances_and_is_recorded,
            set_meta_sets_and_removes,
            custom_catalog_with_inserted_codes,
            rejects_codes_outside_the_catalog_and_out_of_order,
            rejects_by_attempt_and_retry_rules,
            rejects_everything_but_rewind_on_terminal_builds,
            rejects_rewind_forward_and_missing_reasons,
            version_mismatch_is_a_conflict,
            unknown_build_is_not_found,
            history_is_append_only_and_gapless,
            failures_are_recorded_filtered_and_resolved,
            artifacts_add_list_replace,
            export_import_round_trip,
            import_registers_missing_catalog_items,
            import_refuses_broken_documents,
            hostile_text_round_trips_by_policy,
            no_raw_control_characters_are_stored,
            concurrent_distinct_builds_run_to_delivery,
            concurrent_writers_on_one_build_lose_nothing,
            concurrent_artifacts_and_metadata_on_one_build,
        );
    };
    (@cases $harness:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let harness = $harness;
                $crate::conformance::cases::$case(&harness).await;
            }
        )+
    };
}

/// The cases. Each takes a harness and panics (with a message naming the rule) when
/// the backend breaks the contract.
pub mod cases {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use buildstate_core::{
        Artifact, ArtifactKind, AttemptStatus, Build, BuildDocument, BuildId, BuildNumber, BuildStatus,
        CatalogItem, CatalogKind, Command, DocumentError, EventKind, FORMAT, FailureClass, FailureInfo,
        FailureType, HistoryEvent, ImageType, MAX_MESSAGE_BYTES, MAX_NOTE_BYTES, MetaKey, MetaValue,
        Milestone, Name, NewBuild, OsVersion, Outcome, Platform, Rejection, Sha256Hex, StateCatalog,
        StateCode, attempts, clean_text,
    };
    use tokio::task::JoinSet;

    use super::Harness;
    use crate::{BuildFilter, FailureFilter, ImportMode, Store, StoreError, build_number_stem, now};

    // ── fixtures ─────────────────────────────────────────────────────────────────────

    const ACTOR: &str = "conformance";
    /// Text that has broken stores before: quotes, SQL, NUL, terminal escapes, CR, BEL,
    /// non-ASCII. Stored, it must read back as `clean_text` of itself — nothing more.
    const HOSTILE: &str = "it's \"quoted\" `ticked` '; DROP TABLE builds; -- \0nul \x1b[31mred\x1b[0m \x07bell \r\n\tünïcødé 🚀 %_\\";

    fn name(s: &str) -> Name {
        Name::new(s).expect("test names are valid")
    }

    fn code(n: i64) -> StateCode {
        StateCode::new(n).expect("test codes are in 0..=100")
    }

    fn key(s: &str) -> MetaKey {
        MetaKey::new(s).expect("test metadata keys are valid")
    }

    fn value(k: &str, v: &str) -> MetaValue {
        MetaValue::new(&key(k), v).expect("test metadata values are short")
    }

    fn platform(n: &str, provider: &str, region: Option<&str>) -> CatalogItem {
        CatalogItem::Platform(Platform {
            name: name(n),
            display_name: format!("Platform {n}"),
            provider: provider.into(),
            region: region.map(Into::into),
        })
    }

    fn os(n: &str, minor: Option<u32>) -> CatalogItem {
        CatalogItem::Os(OsVersion {
            name: name(n),
            display_name: format!("OS {n}"),
            family: n.split('-').next().unwrap_or(n).into(),
            major: 8,
            minor,
        })
    }

    fn image(n: &str) -> CatalogItem {
        CatalogItem::ImageType(ImageType {
            name: name(n),
            display_name: format!("Image {n}"),
            description: format!("the {n} image"),
        })
    }

    fn new_build(p: &str, o: &str, i: &str) -> NewBuild {
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
    async fn seed_triple(s: &dyn Store, p: &str, o: &str, i: &str) -> NewBuild {
        for item in [platform(p, "aws", Some("us-east-1")), os(o, Some(8)), image(i)] {
            match s.add_catalog_item(&item).await {
                Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => panic!("adding {} `{}` to the catalog: {e}", item.kind(), item.name()),
            }
        }
        new_build(p, o, i)
    }

    /// The usual triple: rhel-8.8 × base × aws-commercial.
    async fn seed(s: &dyn Store) -> NewBuild {
        seed_triple(s, "aws-commercial", "rhel-8.8", "base").await
    }

    async fn create(s: &dyn Store, new: &NewBuild) -> Build {
        s.create_build(new).await.expect("creating a build of catalog items must succeed")
    }

    async fn reload(s: &dyn Store, id: BuildId) -> Build {
        s.build(id).await.expect("reading an existing build")
    }

    async fn export(s: &dyn Store, id: BuildId) -> BuildDocument {
        s.export_build(id).await.expect("exporting an existing build")
    }

    async fn history(s: &dyn Store, id: BuildId) -> Vec<HistoryEvent> {
        s.history(id).await.expect("reading the history of an existing build")
    }

    /// Applies a command that the rules must accept; checks that what the store returns
    /// is what it stored.
    async fn run(s: &dyn Store, id: BuildId, cmd: Command) -> Outcome {
        let outcome =
            s.apply(id, &cmd, None).await.unwrap_or_else(|e| panic!("{} must be accepted: {e}", cmd.name()));
        assert_eq!(reload(s, id).await, outcome.build, "apply must return the build it stored");
        outcome
    }

    /// Completes milestones until the build is at `to`.
    async fn advance_to(s: &dyn Store, id: BuildId, to: i64) -> Build {
        loop {
            let b = reload(s, id).await;
            if b.state == code(to) {
                return b;
            }
            run(s, id, complete(i64::from(b.state.get()))).await;
        }
    }

    /// A different time for the next write, so that "newest first" has one answer.
    async fn tick() {
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    fn start(c: i64) -> Command {
        Command::Start {
            state: code(c),
            actor: ACTOR.into(),
            log: Some(format!("logs/{c}.log")),
            force: false,
        }
    }

    fn start_forced(c: i64) -> Command {
        Command::Start { state: code(c), actor: ACTOR.into(), log: None, force: true }
    }

    fn complete(c: i64) -> Command {
        Command::Complete { state: code(c), actor: ACTOR.into(), exit_code: Some(0), log: None }
    }

    fn failure(ty: &str, class: FailureClass, message: &str) -> FailureInfo {
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

    fn fail(c: i64, class: FailureClass, max_attempts: u32) -> Command {
        fail_with(c, failure("ansible", class, "task `enable selinux` failed"), max_attempts)
    }

    fn fail_with(c: i64, failure: FailureInfo, max_attempts: u32) -> Command {
        Command::Fail {
            state: code(c),
            actor: ACTOR.into(),
            failure,
            max_attempts,
            log: Some("logs/fail.log".into()),
        }
    }

    fn retry(force: bool, reason: Option<&str>) -> Command {
        Command::Retry { actor: ACTOR.into(), reason: reason.map(Into::into), force }
    }

    fn rewind(to: i64, reason: &str) -> Command {
        Command::Rewind { to: code(to), actor: ACTOR.into(), reason: reason.into() }
    }

    fn cancel(reason: &str) -> Command {
        Command::Cancel { actor: ACTOR.into(), reason: reason.into() }
    }

    fn skip(c: i64, reason: &str) -> Command {
        Command::Skip { state: code(c), actor: ACTOR.into(), reason: reason.into() }
    }

    fn set_meta(k: &str, v: Option<&str>) -> Command {
        Command::SetMeta { key: key(k), value: v.map(|v| value(k, v)) }
    }

    fn artifact(n: &str, uri: &str) -> Artifact {
        Artifact {
            name: n.into(),
            kind: ArtifactKind::Image,
            uri: uri.into(),
            region: Some("us-east-1".into()),
            size_bytes: Some(8 * 1024 * 1024 * 1024),
            sha256: Some(Sha256Hex::new(&"ab".repeat(32)).expect("64 hex characters")),
            created_at: now(),
        }
    }

    /// Applies a command the rules must refuse with `$pat`, and checks that the build
    /// exports exactly as before.
    macro_rules! assert_rejected {
        ($s:expr, $id:expr, $cmd:expr, $pat:pat) => {{
            let (s, id, cmd): (&dyn Store, BuildId, Command) = ($s, $id, $cmd);
            let before = export(s, id).await;
            match s.apply(id, &cmd, None).await {
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

    fn ids(builds: &[Build]) -> Vec<BuildId> {
        builds.iter().map(|b| b.id).collect()
    }

    async fn build_filter(s: &dyn Store, filter: BuildFilter) -> Vec<BuildId> {
        let builds = s.list_builds(&filter).await.unwrap_or_else(|e| panic!("list builds {filter:?}: {e}"));
        ids(&builds)
    }

    // ── catalog ──────────────────────────────────────────────────────────────────────

    pub async fn catalog_add_list_show_remove(h: &impl Harness) {
        let s = h.open().await;
        let kinds = [
            (
                CatalogKind::Platform,
                vec![
                    platform("zeta-cloud", "openstack", Some("datacenter-1")),
                    platform("aws-commercial", "aws", Some("us-east-1")),
                    platform("cloudfoundry", "cloudfoundry", None),
                ],
            ),
            (
                CatalogKind::Os,
                vec![os("ubuntu-24.04", Some(4)), os("rhel-8.8", Some(8)), os("sles-15", None)],
            ),
            (CatalogKind::ImageType, vec![image("sapapp"), image("base"), image("hana")]),
        ];
        for (kind, items) in &kinds {
            for item in items {
                s.add_catalog_item(item)
                    .await
                    .unwrap_or_else(|e| panic!("add {kind} `{}`: {e}", item.name()));
            }
            let mut sorted = items.clone();
            sorted.sort_by(|a, b| a.name().cmp(b.name()));
            let listed = s.catalog(*kind).await.unwrap_or_else(|e| panic!("list {kind}: {e}"));
            assert_eq!(listed, sorted, "{kind} list: every item, every field, sorted by name");
            for item in items {
                let shown =
                    s.catalog_item(*kind, item.name()).await.unwrap_or_else(|e| panic!("show {kind}: {e}"));
                assert_eq!(&shown, item, "show returns the item as added");
            }
        }
        for (kind, items) in &kinds {
            let gone = &items[0];
            s.remove_catalog_item(*kind, gone.name())
                .await
                .unwrap_or_else(|e| panic!("remove unused {kind}: {e}"));
            assert!(
                matches!(
                    s.catalog_item(*kind, gone.name()).await,
                    Err(StoreError::CatalogItemNotFound { .. })
                ),
                "a removed {kind} is gone"
            );
            let left = s.catalog(*kind).await.unwrap_or_else(|e| panic!("list {kind}: {e}"));
            assert_eq!(left.len(), 2, "removing one {kind} keeps the others");
            assert!(!left.contains(gone));
        }
    }

    pub async fn catalog_duplicates_unknowns_and_namespaces(h: &impl Harness) {
        let s = h.open().await;
        let original = platform("azure", "azure", Some("eastus"));
        s.add_catalog_item(&original).await.expect("add platform");
        let duplicate = platform("azure", "azure", Some("westeurope"));
        assert!(
            matches!(s.add_catalog_item(&duplicate).await, Err(StoreError::AlreadyExists { .. })),
            "a platform name that is taken → AlreadyExists"
        );
        let shown = s.catalog_item(CatalogKind::Platform, &name("azure")).await.expect("show platform");
        assert_eq!(shown, original, "a refused duplicate leaves the original as it was");
        assert_eq!(s.catalog(CatalogKind::Platform).await.expect("list").len(), 1);

        // Names are unique within a kind, not across kinds.
        for item in [platform("shared", "gcp", None), os("shared", None), image("shared")] {
            s.add_catalog_item(&item).await.unwrap_or_else(|e| panic!("`shared` as a {}: {e}", item.kind()));
        }
        for kind in CatalogKind::ALL {
            let item = s.catalog_item(*kind, &name("shared")).await.expect("show shared");
            assert_eq!(item.kind(), *kind);
            assert!(
                matches!(
                    s.catalog_item(*kind, &name("nope")).await,
                    Err(StoreError::CatalogItemNotFound { kind: k, .. }) if k == *kind
                ),
                "unknown {kind} → CatalogItemNotFound"
            );
            assert!(
                matches!(
                    s.remove_catalog_item(*kind, &name("nope")).await,
                    Err(StoreError::CatalogItemNotFound { kind: k, .. }) if k == *kind
                ),
                "removing an unknown {kind} → CatalogItemNotFound"
            );
        }
        assert_eq!(s.catalog(CatalogKind::Os).await.expect("list os").len(), 1);
    }

    pub async fn catalog_item_in_use_cannot_be_removed(h: &impl Harness) {
        let s = h.open().await;
        let new = seed(s.as_ref()).await;
        s.add_catalog_item(&platform("gcp", "gcp", Some("us-central1"))).await.expect("add unused platform");
        create(s.as_ref(), &new).await;
        create(s.as_ref(), &new).await;
        for (kind, n) in [
            (CatalogKind::Platform, "aws-commercial"),
            (CatalogKind::Os, "rhel-8.8"),
            (CatalogKind::ImageType, "base"),
        ] {
            let before = s.catalog_item(kind, &name(n)).await.expect("show used item");
            match s.remove_catalog_item(kind, &name(n)).await {
                Err(StoreError::CatalogItemInUse { kind: k, builds, .. }) => {
                    assert_eq!(k, kind);
                    assert_eq!(builds, 2, "CatalogItemInUse counts the builds using the {kind}");
                }
                other => {
                    panic!("removing a {kind} used by builds → CatalogItemInUse, got {other:?}")
                }
            }
            assert_eq!(s.catalog_item(kind, &name(n)).await.expect("still there"), before);
        }
        s.remove_catalog_item(CatalogKind::Platform, &name("gcp")).await.expect("an unused platform can go");
        assert_eq!(s.list_builds(&BuildFilter::default()).await.expect("list").len(), 2);
    }

    // ── creating builds ──────────────────────────────────────────────────────────────

    pub async fn create_build_starts_pending_at_zero(h: &impl Harness) {
        let s = h.open().await;
        let mut new = seed(s.as_ref()).await;
        new.created_by = "alice".into();
        new.metadata = BTreeMap::from([(key("ticket"), value("ticket", "OPS-1234"))]);
        let b = create(s.as_ref(), &new).await;
        assert_eq!((b.state, b.status), (StateCode::INITIAL, BuildStatus::Pending));
        assert_eq!((b.version, b.history_len, b.failure_count, b.attempt), (1, 1, 0, 0));
        assert!(!b.needs_intervention && !b.attempt_open());
        assert_eq!((b.started_at, b.ended_at), (None, None));
        assert_eq!((&b.platform, &b.os, &b.image_type), (&new.platform, &new.os, &new.image_type));
        assert_eq!((b.created_by.as_str(), &b.ci_url, &b.metadata), ("alice", &new.ci_url, &new.metadata));
        assert_eq!(b.catalog, StateCatalog::default_catalog());
        assert_eq!(b.check_invariants(), Ok(()));
        assert_eq!(reload(s.as_ref(), b.id).await, b, "build(id) reads back what create returned");
        assert_eq!(s.find_build(b.number.as_str()).await.expect("find by number"), b);

        let events = history(s.as_ref(), b.id).await;
        assert_eq!(events.len(), 1, "a new build has exactly its `created` event");
        let e = &events[0];
        assert_eq!(
            (e.seq, e.kind, e.state, e.actor.as_str()),
            (1, EventKind::Created, StateCode::INITIAL, "alice")
        );
        assert_eq!(e.at, b.created_at);
        let filter = FailureFilter { build: Some(b.id), ..FailureFilter::default() };
        assert!(s.failures(&filter).await.expect("failures").is_empty());
        assert!(s.artifacts(b.id).await.expect("artifacts").is_empty());
    }

    pub async fn create_build_numbers_by_triple_and_day(h: &impl Harness) {
        let s = h.open().await;
        let new = seed(s.as_ref()).await;
        let other = seed_triple(s.as_ref(), "gcp", "ubuntu-24.04", "hana").await;
        let a = create(s.as_ref(), &new).await;
        let b = create(s.as_ref(), &new).await;
        let c = create(s.as_ref(), &other).await;

        let date = a.created_at.strftime("%Y%m%d").to_string();
        assert_eq!(
            a.number.as_str(),
            format!("rhel-8.8-base-aws-commercial-{date}-001"),
            "numbers are <os>-<image>-<platform>-<yyyymmdd, UTC>-NNN"
        );
        let stem_b = build_number_stem(&new, b.created_at);
        let expected_b = if stem_b == build_number_stem(&new, a.created_at) { 2 } else { 1 };
        assert_eq!(
            b.number.as_str(),
            format!("{stem_b}{expected_b:03}"),
            "the second build of a triple that day"
        );
        let stem_c = build_number_stem(&other, c.created_at);
        assert_eq!(c.number.as_str(), format!("{stem_c}001"), "each triple has its own sequence");
        assert_ne!(a.id, b.id);
    }

    pub async fn create_build_chosen_number(h: &impl Harness) {
        let s = h.open().await;
        let new = seed(s.as_ref()).await;
        let chosen = BuildNumber::new("golden-rhel-8.8-2026.02").expect("valid number");
        let b = create(s.as_ref(), &NewBuild { number: Some(chosen.clone()), ..new.clone() }).await;
        assert_eq!(b.number, chosen, "a chosen number is honoured");
        let again = s.create_build(&NewBuild { number: Some(chosen.clone()), ..new.clone() }).await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "a taken number → AlreadyExists, got {again:?}"
        );
        assert_eq!(s.list_builds(&BuildFilter::default()).await.expect("list").len(), 1, "nothing created");

        // A chosen number that the daily sequence would produce next must not make the
        // sequence collide: allocation skips numbers that are taken.
        let today = build_number_stem(&new, now());
        let squatter = BuildNumber::new(&format!("{today}002")).expect("valid number");
        create(s.as_ref(), &NewBuild { number: Some(squatter.clone()), ..new.clone() }).await;
        let first = create(s.as_ref(), &new).await;
        let second = s.create_build(&new).await;
        let second = second.unwrap_or_else(|e| panic!("allocation must skip the taken {squatter}: {e}"));
        let numbers: BTreeSet<&str> =
            [&chosen, &squatter, &first.number, &second.number].iter().map(|n| n.as_str()).collect();
        assert_eq!(numbers.len(), 4, "four builds, four numbers: {numbers:?}");
    }

    pub async fn create_build_with_unknown_catalog_items_creates_nothing(h: &impl Harness) {
        let s = h.open().await;
        seed(s.as_ref()).await;
        for (new, kind) in [
            (new_build("nimbus", "rhel-8.8", "base"), CatalogKind::Platform),
            (new_build("aws-commercial", "rhel-7.0", "base"), CatalogKind::Os),
            (new_build("aws-commercial", "rhel-8.8", "hana"), CatalogKind::ImageType),
        ] {
            match s.create_build(&new).await {
                Err(StoreError::CatalogItemNotFound { kind: k, .. }) => assert_eq!(k, kind),
                other => {
                    panic!("a build of an unknown {kind} → CatalogItemNotFound, got {other:?}")
                }
            }
        }
        let mut too_long = new_build("aws-commercial", "rhel-8.8", "base");
        too_long.created_by = "x".repeat(257);
        let r = s.create_build(&too_long).await;
        assert!(
            matches!(r, Err(StoreError::InvalidInput(_))),
            "created-by over 256 bytes → InvalidInput, got {r:?}"
        );
        let mut bad_url = new_build("aws-commercial", "rhel-8.8", "base");
        bad_url.ci_url = Some("https://ci.example.invalid/\x1b[2J".into());
        let r = s.create_build(&bad_url).await;
        assert!(
            matches!(r, Err(StoreError::InvalidInput(_))),
            "a CI URL with controls → InvalidInput, got {r:?}"
        );
        assert!(
            s.list_builds(&BuildFilter::default()).await.expect("list").is_empty(),
            "refused creates create nothing"
        );
    }

    /// Names are valid up to 64 characters each; a build of the longest ones must still
    /// get its generated number.
    pub async fn create_build_with_longest_names(h: &impl Harness) {
        let s = h.open().await;
        let (p, o, i) = ("p".repeat(64), "o".repeat(64), "i".repeat(64));
        let new = seed_triple(s.as_ref(), &p, &o, &i).await;
        let b = s
            .create_build(&new)
            .await
            .unwrap_or_else(|e| panic!("a build of valid 64-character names must be creatable: {e}"));
        assert_eq!(b.number.as_str(), format!("{}001", build_number_stem(&new, b.created_at)));
        assert_eq!(s.find_build(b.number.as_str()).await.expect("find by number").id, b.id);
    }

    pub async fn concurrent_creates_get_distinct_numbers(h: &impl Harness) {
        let s = h.open().await;
        let new = seed(s.as_ref()).await;
        let mut tasks = JoinSet::new();
        for _ in 0..16 {
            let store = h.open().await;
            let new = new.clone();
            tasks.spawn(async move { store.create_build(&new).await });
        }
        let mut builds = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let created = joined.expect("create task panicked");
            builds.push(
                created.unwrap_or_else(|e| panic!("concurrent creates of one triple must all succeed: {e}")),
            );
        }
        let numbers: BTreeSet<String> = builds.iter().map(|b| b.number.to_string()).collect();
        assert_eq!(numbers.len(), 16, "16 creates, 16 distinct numbers: {numbers:?}");
        assert_eq!(builds.iter().map(|b| b.id).collect::<BTreeSet<_>>().len(), 16, "16 distinct ids");
        let stems: BTreeSet<String> = builds.iter().map(|b| build_number_stem(&new, b.created_at)).collect();
        if stems.len() == 1 {
            let stem = stems.iter().next().cloned().unwrap_or_default();
            let expected: BTreeSet<String> = (1..=16).map(|n| format!("{stem}{n:03}")).collect();
            assert_eq!(numbers, expected, "the sequence of one day runs 001..016 without holes");
        }
        assert_eq!(s.list_builds(&BuildFilter::default()).await.expect("list").len(), 16);
    }

    // ── finding and listing ──────────────────────────────────────────────────────────

    pub async fn find_build_by_id_number_and_prefix(h: &impl Harness) {
        let s = h.open().await;
        let new = seed(s.as_ref()).await;
        let a = create(s.as_ref(), &new).await;
        let b = create(s.as_ref(), &new).await;
        let chosen = BuildNumber::new("zz-custom-build").expect("valid number");
        let c = create(s.as_ref(), &NewBuild { number: Some(chosen), ..new.clone() }).await;
        let found = |r: String| {
            let s = s.clone();
            async move { s.find_build(&r).await }
        };

        assert_eq!(found(a.id.to_string()).await.expect("by full id").id, a.id);
        assert_eq!(found(a.number.to_string()).await.expect("by number").id, a.id);
        assert_eq!(found(b.number.to_string()).await.expect("by number").id, b.id);
        assert_eq!(found(a.id.to_string()[..30].to_owned()).await.expect("by unique id prefix").id, a.id);
        assert_eq!(found("zz-cus".into()).await.expect("by unique number prefix").id, c.id);

        let number_prefix = a.number.as_str().trim_end_matches(char::is_numeric).to_owned();
        match found(number_prefix.clone()).await {
            Err(StoreError::AmbiguousRef { count, .. }) => {
                assert_eq!(count, 2, "`{number_prefix}` matches a and b")
            }
            other => panic!("an ambiguous number prefix → AmbiguousRef, got {other:?}"),
        }
        // UUIDv7 ids start with their creation time: builds made together share a prefix.
        let (ia, ib) = (a.id.to_string(), b.id.to_string());
        let shared: String = ia.chars().zip(ib.chars()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect();
        assert!(!shared.is_empty(), "time-ordered ids of builds created together share a prefix: {ia} {ib}");
        assert!(
            matches!(found(shared.clone()).await, Err(StoreError::AmbiguousRef { .. })),
            "an id prefix shared by several builds → AmbiguousRef"
        );

        for unknown in ["nope-no-such-build", "'; DROP TABLE builds; --", "%", "_", "rhel-8_8", "*"] {
            assert!(
                matches!(found(unknown.into()).await, Err(StoreError::BuildNotFound(_))),
                "`{unknown}` matches no build (prefixes are literal, not patterns)"
            );
        }
        assert!(
            matches!(found(String::new()).await, Err(StoreError::BuildNotFound(_))),
            "an empty reference"
        );
    }

    pub async fn list_builds_filters_newest_first(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let aws = seed(st).await;
        let azure_ubuntu = seed_triple(st, "azure", "ubuntu-24.04", "hana").await;
        let azure_rhel = seed_triple(st, "azure", "rhel-8.8", "base").await;

        let failed = create(st, &aws).await;
        run(st, failed.id, fail(0, FailureClass::Persistent, 3)).await;
        tick().await;
        let running = create(st, &aws).await;
        run(st, running.id, complete(0)).await;
        tick().await;
        let cancelled = create(st, &azure_ubuntu).await;
        run(st, cancelled.id, cancel("wrong image")).await;
        tick().await;
        let pending = create(st, &azure_rhel).await;
        let (f, r, c, p) = (failed.id, running.id, cancelled.id, pending.id);

        let all = BuildFilter::default;
        assert_eq!(build_filter(st, all()).await, vec![p, c, r, f], "all builds, newest first");
        for (status, expected) in [
            (BuildStatus::Failed, vec![f]),
            (BuildStatus::Running, vec![r]),
            (BuildStatus::Cancelled, vec![c]),
            (BuildStatus::Pending, vec![p]),
            (BuildStatus::Completed, vec![]),
        ] {
            assert_eq!(
                build_filter(st, BuildFilter { status: Some(status), ..all() }).await,
                expected,
                "status {status}"
            );
        }
        assert_eq!(
            build_filter(st, BuildFilter { platform: Some(name("aws-commercial")), ..all() }).await,
            vec![r, f]
        );
        assert_eq!(
            build_filter(st, BuildFilter { platform: Some(name("azure")), ..all() }).await,
            vec![p, c]
        );
        assert_eq!(build_filter(st, BuildFilter { os: Some(name("ubuntu-24.04")), ..all() }).await, vec![c]);
        assert_eq!(
            build_filter(st, BuildFilter { image_type: Some(name("base")), ..all() }).await,
            vec![p, r, f]
        );
        assert_eq!(build_filter(st, BuildFilter { state: Some(code(5)), ..all() }).await, vec![r]);
        assert_eq!(build_filter(st, BuildFilter { state: Some(code(0)), ..all() }).await, vec![p, c, f]);
        assert_eq!(
            build_filter(st, BuildFilter { since: Some(running.created_at), ..all() }).await,
            vec![p, c, r]
        );
        assert_eq!(build_filter(st, BuildFilter { needs_intervention: Some(true), ..all() }).await, vec![f]);
        assert_eq!(
            build_filter(st, BuildFilter { needs_intervention: Some(false), ..all() }).await,
            vec![p, c, r]
        );
        assert_eq!(
            build_filter(st, BuildFilter { limit: Some(2), ..all() }).await,
            vec![p, c],
            "limit keeps the newest"
        );
        let both = BuildFilter { platform: Some(name("azure")), os: Some(name("rhel-8.8")), ..all() };
        assert_eq!(build_filter(st, both).await, vec![p], "conditions combine with AND");
        let none = BuildFilter {
            platform: Some(name("aws-commercial")),
            status: Some(BuildStatus::Cancelled),
            ..all()
        };
        assert!(build_filter(st, none).await.is_empty());
    }

    // ── the lifecycle ────────────────────────────────────────────────────────────────

    pub async fn lifecycle_start_complete_to_delivered(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        let codes: Vec<StateCode> = b.catalog.codes().collect();
        let mut version = b.version;
        let mut last = None;
        for c in &codes {
            let c = i64::from(c.get());
            let started =
                st.apply(b.id, &start(c), Some(version)).await.unwrap_or_else(|e| panic!("start {c}: {e}"));
            version += 1;
            assert_eq!((started.build.version, started.build.status), (version, BuildStatus::Running));
            assert!(
                started.build.attempt_open() && started.build.attempt == 1,
                "start opens attempt 1 at {c}"
            );
            let done = st
                .apply(b.id, &complete(c), Some(version))
                .await
                .unwrap_or_else(|e| panic!("complete {c}: {e}"));
            version += 1;
            assert_eq!(done.build.version, version);
            assert!(!done.build.attempt_open());
            last = Some(done);
        }
        let delivered = reload(st, b.id).await;
        assert_eq!(
            Some(&delivered),
            last.as_ref().map(|o| &o.build),
            "the store holds what the last apply returned"
        );
        assert_eq!((delivered.state, delivered.status), (StateCode::DELIVERED, BuildStatus::Completed));
        assert!(delivered.ended_at.is_some() && delivered.started_at.is_some());
        assert_eq!(delivered.history_len, 2 * 21 + 1);

        let events = history(st, b.id).await;
        assert_eq!(events.len(), 2 * 21 + 1, "created + (started, completed) × 21 milestones");
        for (i, c) in codes.iter().enumerate() {
            let (s_ev, c_ev) = (&events[1 + 2 * i], &events[2 + 2 * i]);
            assert_eq!((s_ev.kind, s_ev.state, s_ev.attempt), (EventKind::Started, *c, 1));
            assert_eq!((c_ev.kind, c_ev.state, c_ev.attempt), (EventKind::Completed, *c, 1));
            assert_eq!(c_ev.exit_code, Some(0));
            assert_eq!(
                s_ev.log.as_deref(),
                Some(format!("logs/{c}.log").as_str()),
                "the log pointer is kept"
            );
        }
        let derived = attempts(&events);
        assert_eq!(derived.len(), 21);
        assert!(derived.iter().all(|a| a.status == AttemptStatus::Completed && a.number == 1));
    }

    pub async fn fail_keeps_state_and_retry_reopens(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        advance_to(st, b.id, 25).await;
        run(st, b.id, start(25)).await;
        let failed = run(st, b.id, fail(25, FailureClass::Transient, 3)).await;
        let fb = &failed.build;
        assert_eq!(
            (fb.state, fb.status, fb.attempt),
            (code(25), BuildStatus::Failed, 1),
            "failure keeps state 25"
        );
        assert!(!fb.needs_intervention && !fb.attempt_open());
        assert_eq!(fb.failure_count, 1);
        let last = history(st, b.id).await.pop().expect("history is not empty");
        assert_eq!(
            (last.kind, last.state, last.attempt, last.exit_code),
            (EventKind::Failed, code(25), 1, Some(2))
        );
        assert_eq!(last.message.as_deref(), Some("task `enable selinux` failed"));

        let retried = run(st, b.id, retry(false, Some("mirror is back"))).await;
        assert_eq!(
            (retried.build.state, retried.build.status),
            (code(25), BuildStatus::Running),
            "retry resumes at 25"
        );
        let last = history(st, b.id).await.pop().expect("history is not empty");
        assert_eq!((last.kind, last.message.as_deref()), (EventKind::Retried, Some("mirror is back")));
        let again = run(st, b.id, start(25)).await;
        assert_eq!(again.build.attempt, 2, "the retry is attempt 2");
        let done = run(st, b.id, complete(25)).await;
        assert_eq!((done.build.state, done.build.status), (code(30), BuildStatus::Running));

        // Failing without a start records a zero-length attempt (track-only use).
        let implicit = run(st, b.id, fail(30, FailureClass::Transient, 3)).await;
        assert_eq!((implicit.build.state, implicit.build.attempt), (code(30), 1));
    }

    pub async fn retries_exhausted_need_a_person_and_force_is_recorded(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        let first = run(st, b.id, fail(0, FailureClass::Transient, 2)).await;
        assert!(!first.build.needs_intervention, "attempt 1 of 2 may be retried");
        run(st, b.id, retry(false, None)).await;
        let second = run(st, b.id, fail(0, FailureClass::Transient, 2)).await;
        assert!(second.build.needs_intervention, "attempt 2 of 2 used up the retries");
        assert_eq!(second.build.status, BuildStatus::Failed);
        let flagged = BuildFilter { needs_intervention: Some(true), ..BuildFilter::default() };
        assert_eq!(build_filter(st, flagged).await, vec![b.id]);

        assert_rejected!(st, b.id, retry(false, Some("just once more")), Rejection::NeedsIntervention { .. });
        let forced = run(st, b.id, retry(true, Some("mirror fixed by ops"))).await;
        assert_eq!((forced.build.status, forced.build.needs_intervention), (BuildStatus::Running, false));
        let last = history(st, b.id).await.pop().expect("history is not empty");
        assert_eq!(last.kind, EventKind::Retried);
        assert!(last.forced, "a forced retry is recorded as an override");
        assert_eq!(last.message.as_deref(), Some("mirror fixed by ops"));
        assert_eq!(run(st, b.id, start(0)).await.build.attempt, 3);
        assert_eq!(run(st, b.id, complete(0)).await.build.state, code(5));
    }

    pub async fn persistent_failure_needs_a_person_at_once(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        advance_to(st, b.id, 70).await;
        let info = failure("test", FailureClass::Persistent, "smoke test: port 443 closed");
        let failed = run(st, b.id, fail_with(70, info, 5)).await;
        assert!(failed.build.needs_intervention, "a persistent failure needs a person after one attempt");
        assert_eq!(failed.build.attempt, 1);
        assert_rejected!(st, b.id, retry(false, None), Rejection::NeedsIntervention { .. });
        let records = st
            .failures(&FailureFilter { build: Some(b.id), ..FailureFilter::default() })
            .await
            .expect("failures");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].info.class, FailureClass::Persistent);
    }

    pub async fn rewind_invalidates_milestones_above(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        advance_to(st, b.id, 25).await;
        run(st, b.id, start(25)).await;
        let back = run(st, b.id, rewind(10, "base image changed")).await;
        let bb = &back.build;
        assert_eq!((bb.state, bb.status, bb.attempt), (code(10), BuildStatus::Running, 0));
        assert!(!bb.attempt_open(), "a rewind ends the open attempt");
        let last = history(st, b.id).await.pop().expect("history is not empty");
        assert_eq!((last.kind, last.state, last.from_state), (EventKind::Rewound, code(10), Some(code(25))));
        assert_eq!(last.message.as_deref(), Some("base image changed"));
        // Milestones above 10 are invalid again: they must be run again, in order.
        assert_rejected!(st, b.id, complete(15), Rejection::Ahead { .. });
        assert_rejected!(st, b.id, start(25), Rejection::Ahead { .. });
        assert_eq!(run(st, b.id, complete(10)).await.build.state, code(15));
    }

    pub async fn cancel_is_terminal_until_rewound(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        advance_to(st, b.id, 15).await;
        let cancelled = run(st, b.id, cancel("superseded by build 002")).await;
        assert_eq!((cancelled.build.state, cancelled.build.status), (code(15), BuildStatus::Cancelled));
        assert!(cancelled.build.ended_at.is_some());
        for cmd in [
            start(15),
            complete(15),
            fail(15, FailureClass::Transient, 3),
            skip(15, "x"),
            retry(true, None),
            cancel("again"),
        ] {
            assert_rejected!(st, b.id, cmd, Rejection::Terminal { .. });
        }
        let meta = run(st, b.id, set_meta("note", Some("kept for audit"))).await;
        assert_eq!(meta.build.status, BuildStatus::Cancelled, "metadata may change; the status does not");
        let reopened = run(st, b.id, rewind(15, "cancelled by mistake")).await;
        assert_eq!((reopened.build.state, reopened.build.status), (code(15), BuildStatus::Running));
        assert_eq!(reopened.build.ended_at, None);
        run(st, b.id, start(15)).await;
    }

    pub async fn skip_advances_and_is_recorded(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        let skipped = run(st, b.id, skip(0, "triggered by hand")).await;
        assert_eq!((skipped.build.state, skipped.build.status), (code(5), BuildStatus::Running));
        let last = history(st, b.id).await.pop().expect("history is not empty");
        assert_eq!(
            (last.kind, last.state, last.message.as_deref()),
            (EventKind::Skipped, code(0), Some("triggered by hand"))
        );
        let derived = attempts(&history(st, b.id).await);
        assert_eq!(derived.len(), 1);
        assert_eq!((derived[0].state, derived[0].status), (code(0), AttemptStatus::Skipped));
        run(st, b.id, start(5)).await;
        assert_rejected!(st, b.id, skip(5, "no"), Rejection::AttemptOpen { .. });
    }

    pub async fn set_meta_sets_and_removes(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        run(st, b.id, set_meta("ami/us-east-1", Some("ami-0abc1234"))).await;
        run(st, b.id, set_meta("owner", Some("team-images"))).await;
        run(st, b.id, set_meta("owner", Some("team-platform"))).await;
        let after = run(st, b.id, set_meta("ami/us-east-1", None)).await.build;
        assert_eq!(after.metadata, BTreeMap::from([(key("owner"), value("owner", "team-platform"))]));
        assert_eq!(after.version, b.version + 4, "each metadata change bumps the version");
        assert_eq!(history(st, b.id).await.len(), 1, "metadata is not history");
        assert_eq!(export(st, b.id).await.metadata, after.metadata);
        run(st, b.id, fail(0, FailureClass::Persistent, 1)).await;
        let on_failed = run(st, b.id, set_meta("ticket", Some("OPS-7"))).await.build;
        assert_eq!(on_failed.status, BuildStatus::Failed, "metadata can be set on a failed build");
        assert_eq!(on_failed.metadata.len(), 2);
    }

    pub async fn custom_catalog_with_inserted_codes(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let m = |c: i64, n: &str| Milestone {
            code: code(c),
            name: n.into(),
            meaning: format!("{n} step"),
            tool: "script".into(),
        };
        let catalog = StateCatalog::default_catalog()
            .with_inserted(vec![m(12, "hardening"), m(97, "sign")])
            .expect("12 and 97 fit");
        let new = NewBuild { catalog: catalog.clone(), ..seed(st).await };
        let b = create(st, &new).await;
        assert_eq!(reload(st, b.id).await.catalog, catalog, "the store keeps the build's own catalog");
        advance_to(st, b.id, 10).await;
        assert_eq!(
            run(st, b.id, complete(10)).await.build.state,
            code(12),
            "10 is followed by the inserted 12"
        );
        assert_rejected!(st, b.id, complete(15), Rejection::Ahead { .. });
        assert_eq!(run(st, b.id, complete(12)).await.build.state, code(15));
        advance_to(st, b.id, 95).await;
        assert_eq!(run(st, b.id, complete(95)).await.build.state, code(97));
        assert_eq!(
            run(st, b.id, complete(97)).await.build.state,
            StateCode::DELIVERED,
            "97 is followed by 100"
        );
        let done = run(st, b.id, complete(100)).await.build;
        assert_eq!((done.state, done.status), (StateCode::DELIVERED, BuildStatus::Completed));
        assert_eq!(export(st, b.id).await.catalog, catalog);
    }

    // ── rejections: typed, and nothing changes ───────────────────────────────────────

    pub async fn rejects_codes_outside_the_catalog_and_out_of_order(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        advance_to(st, b.id, 10).await;
        for cmd in [start(7), complete(7), fail(7, FailureClass::Transient, 3), skip(7, "x"), rewind(7, "x")]
        {
            assert_rejected!(st, b.id, cmd, Rejection::NotInCatalog { .. });
        }
        for cmd in [start(5), complete(5), fail(5, FailureClass::Transient, 3), skip(0, "x")] {
            assert_rejected!(st, b.id, cmd, Rejection::Behind { .. });
        }
        for cmd in [start(15), complete(100), fail(50, FailureClass::Transient, 3), skip(15, "x")] {
            assert_rejected!(st, b.id, cmd, Rejection::Ahead { .. });
        }
    }

    pub async fn rejects_by_attempt_and_retry_rules(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let new = seed(st).await;
        let pending = create(st, &new).await;
        assert_rejected!(st, pending.id, retry(false, None), Rejection::NotFailed { .. });

        let b = create(st, &new).await;
        advance_to(st, b.id, 10).await;
        assert_rejected!(st, b.id, retry(true, None), Rejection::NotFailed { .. });
        run(st, b.id, start(10)).await;
        assert_rejected!(st, b.id, start(10), Rejection::AttemptOpen { .. });
        assert_rejected!(st, b.id, skip(10, "x"), Rejection::AttemptOpen { .. });
        assert_rejected!(st, b.id, retry(false, None), Rejection::NotFailed { .. });

        // `start --force` abandons the open attempt, recorded as an interrupted failure.
        let forced = run(st, b.id, start_forced(10)).await;
        assert_eq!(forced.build.attempt, 2);
        assert_eq!(forced.failures.len(), 1);
        assert_eq!(forced.failures[0].info.failure_type, FailureType::interrupted());
        assert!(forced.events.iter().all(|e| e.forced), "both events of the override are marked forced");

        run(st, b.id, fail(10, FailureClass::Transient, 5)).await;
        for cmd in [start(10), complete(10), fail(10, FailureClass::Transient, 5), skip(10, "x")] {
            assert_rejected!(st, b.id, cmd, Rejection::MustRetry { .. });
        }
        assert_eq!(run(st, b.id, retry(false, None)).await.build.status, BuildStatus::Running);
        assert_eq!(run(st, b.id, start(10)).await.build.attempt, 3, "attempts keep counting after a retry");
    }

    pub async fn rejects_everything_but_rewind_on_terminal_builds(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let new = seed(st).await;
        let b = create(st, &new).await;
        advance_to(st, b.id, 100).await;
        assert_rejected!(st, b.id, skip(100, "publish later"), Rejection::SkipDelivery { .. });
        run(st, b.id, complete(100)).await;
        let delivered_cmds = [
            start(100),
            complete(100),
            fail(100, FailureClass::Transient, 3),
            skip(100, "x"),
            retry(true, None),
            cancel("x"),
        ];
        for cmd in delivered_cmds {
            assert_rejected!(st, b.id, cmd, Rejection::Terminal { status: BuildStatus::Completed, .. });
        }
        // A completed build never falls back to running by anything but a rewind.
        assert_eq!(reload(st, b.id).await.status, BuildStatus::Completed);

        let c = create(st, &new).await;
        run(st, c.id, cancel("not needed")).await;
        for cmd in [
            start(0),
            complete(0),
            fail(0, FailureClass::Transient, 3),
            skip(0, "x"),
            retry(true, None),
            cancel("x"),
        ] {
            assert_rejected!(st, c.id, cmd, Rejection::Terminal { status: BuildStatus::Cancelled, .. });
        }
        let reopened = run(st, b.id, rewind(90, "re-validate after CVE")).await.build;
        assert_eq!((reopened.state, reopened.status), (code(90), BuildStatus::Running));
    }

    pub async fn rejects_rewind_forward_and_missing_reasons(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        advance_to(st, b.id, 10).await;
        assert_rejected!(st, b.id, rewind(50, "jump"), Rejection::RewindForward { .. });
        for reason in ["", "   ", " \t\n "] {
            assert_rejected!(st, b.id, rewind(5, reason), Rejection::ReasonRequired { .. });
            assert_rejected!(st, b.id, cancel(reason), Rejection::ReasonRequired { .. });
        }
    }

    pub async fn version_mismatch_is_a_conflict(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        run(st, b.id, complete(0)).await;
        let before = export(st, b.id).await;
        for stale in [1, 3, 0] {
            match st.apply(b.id, &complete(5), Some(stale)).await {
                Err(StoreError::Conflict { expected, found, .. }) => {
                    assert_eq!((expected, found), (stale, 2), "Conflict names both versions");
                }
                other => panic!("expected_version {stale} on a build at version 2 → Conflict, got {other:?}"),
            }
            assert_eq!(export(st, b.id).await, before, "a conflicting apply changed the store");
        }
        let ok = st.apply(b.id, &complete(5), Some(2)).await.expect("the current version is accepted");
        assert_eq!(ok.build.version, 3);
    }

    pub async fn unknown_build_is_not_found(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        let ghost = BuildId::generate(1_770_000_000_000, 0x5eed);
        macro_rules! not_found {
            ($what:literal, $call:expr) => {
                let r = $call.await;
                assert!(
                    matches!(r, Err(StoreError::BuildNotFound(_))),
                    "{} of an unknown build, got {r:?}",
                    $what
                );
            };
        }
        not_found!("build", st.build(ghost));
        not_found!("apply", st.apply(ghost, &complete(0), None));
        not_found!("history", st.history(ghost));
        not_found!("export", st.export_build(ghost));
        not_found!("artifacts", st.artifacts(ghost));
        not_found!("add artifact", st.add_artifact(ghost, &artifact("x", "y")));
        not_found!("resolve", st.resolve_failures(ghost, None, "x"));
        assert_eq!(reload(st, b.id).await, b, "the existing build is untouched");
    }

    // ── history ──────────────────────────────────────────────────────────────────────

    pub async fn history_is_append_only_and_gapless(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        let steps = [
            start(0),
            fail(0, FailureClass::Transient, 3),
            retry(false, Some("flaky mirror")),
            start(0),
            complete(0),
            complete(5),
            start(10),
            start_forced(10),
            complete(10),
            set_meta("k", Some("v")),
            rewind(5, "bad kickstart"),
            skip(5, "already done by hand"),
            fail(10, FailureClass::Persistent, 3),
            cancel("giving up"),
        ];
        let mut seen = history(st, b.id).await;
        for cmd in steps {
            let name = cmd.name();
            let outcome = run(st, b.id, cmd).await;
            let now = history(st, b.id).await;
            assert!(
                now.starts_with(&seen),
                "after {name}, history no longer starts with the earlier history"
            );
            assert_eq!(
                &now[seen.len()..],
                &outcome.events[..],
                "after {name}, the appended events are the outcome's"
            );
            assert_eq!(now.len() as u64, outcome.build.history_len);
            seen = now;
        }
        for (i, e) in seen.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "history seq runs 1..n without gaps");
        }
        assert!(seen.windows(2).all(|w| w[0].at <= w[1].at), "events are in time order");
        let derived: Vec<(u8, u32, AttemptStatus)> =
            attempts(&seen).iter().map(|a| (a.state.get(), a.number, a.status)).collect();
        use AttemptStatus::{Completed, Failed, Skipped};
        assert_eq!(
            derived,
            vec![
                (0, 1, Failed),
                (0, 2, Completed),
                (5, 1, Completed),
                (10, 1, Failed),
                (10, 2, Completed),
                (5, 0, Skipped),
                (10, 1, Failed)
            ],
            "attempts derived from the stored history are the attempts made"
        );
        assert_eq!(export(st, b.id).await.history, seen, "the document carries the same history");
    }

    // ── failures ─────────────────────────────────────────────────────────────────────

    pub async fn failures_are_recorded_filtered_and_resolved(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let new = seed(st).await;
        let b = create(st, &new).await;
        let other = create(st, &new).await;
        run(st, b.id, start(0)).await;
        run(st, b.id, fail_with(0, failure("packer", FailureClass::Transient, "boot timeout"), 3)).await;
        tick().await;
        run(st, b.id, retry(false, None)).await;
        run(st, b.id, fail_with(0, failure("network", FailureClass::Transient, "mirror 503"), 3)).await;
        tick().await;
        run(st, b.id, retry(false, None)).await;
        run(st, b.id, complete(0)).await;
        run(st, b.id, fail_with(5, failure("packer", FailureClass::Persistent, "bad kickstart"), 3)).await;
        tick().await;
        run(st, other.id, fail(0, FailureClass::Transient, 3)).await;

        let of_b = FailureFilter { build: Some(b.id), ..FailureFilter::default() };
        let records = st.failures(&of_b).await.expect("failures of b");
        let summary: Vec<(u32, u8, u32, &str, FailureClass)> = records
            .iter()
            .map(|f| (f.number, f.state.get(), f.attempt, f.info.failure_type.as_str(), f.info.class))
            .collect();
        assert_eq!(
            summary,
            vec![
                (3, 5, 1, "packer", FailureClass::Persistent),
                (2, 0, 2, "network", FailureClass::Transient),
                (1, 0, 1, "packer", FailureClass::Transient),
            ],
            "one record per failed attempt, newest first"
        );
        let first = &records[2];
        assert_eq!(first.build_id, b.id);
        assert_eq!(
            first.info,
            failure("packer", FailureClass::Transient, "boot timeout"),
            "every field is kept"
        );
        assert!(!first.resolved && first.resolution.is_none() && first.resolved_at.is_none());
        assert_eq!(
            st.failures(&FailureFilter::default()).await.expect("all failures").len(),
            4,
            "across builds"
        );

        let filtered = |f: FailureFilter| async move {
            let got = st.failures(&f).await.unwrap_or_else(|e| panic!("failures {f:?}: {e}"));
            got.iter().map(|r| (r.build_id, r.number)).collect::<Vec<_>>()
        };
        assert_eq!(
            filtered(FailureFilter { state: Some(code(0)), ..of_b.clone() }).await,
            vec![(b.id, 2), (b.id, 1)]
        );
        let packer = "packer".parse::<FailureType>().expect("valid type");
        assert_eq!(
            filtered(FailureFilter { failure_type: Some(packer), ..of_b.clone() }).await,
            vec![(b.id, 3), (b.id, 1)]
        );
        assert_eq!(filtered(FailureFilter { limit: Some(1), ..of_b.clone() }).await, vec![(b.id, 3)]);

        let version = reload(st, b.id).await.version;
        let notes = "mirror fixed; see OPS-42 — it's \"done\"";
        let resolved = st.resolve_failures(b.id, Some(2), notes).await.expect("resolve one");
        assert_eq!(resolved.len(), 1);
        assert_eq!((resolved[0].number, resolved[0].resolved), (2, true));
        assert_eq!(resolved[0].resolution.as_deref(), Some(clean_text(notes, MAX_NOTE_BYTES).as_str()));
        assert!(resolved[0].resolved_at.is_some());
        let bumped = reload(st, b.id).await.version;
        assert!(bumped > version, "resolving a failure is a change: the version moves");
        assert!(
            st.resolve_failures(b.id, Some(2), "again").await.expect("resolve twice").is_empty(),
            "already resolved"
        );
        let missing = st.resolve_failures(b.id, Some(99), "x").await;
        assert!(matches!(missing, Err(StoreError::FailureNotFound { number: 99, .. })), "got {missing:?}");

        let unresolved = FailureFilter { unresolved_only: true, ..of_b.clone() };
        assert_eq!(filtered(unresolved.clone()).await, vec![(b.id, 3), (b.id, 1)]);
        let rest = st.resolve_failures(b.id, None, "all fixed").await.expect("resolve all");
        assert_eq!(rest.iter().map(|f| f.number).collect::<BTreeSet<_>>(), BTreeSet::from([1, 3]));
        assert!(filtered(unresolved).await.is_empty());
        let other_unresolved =
            FailureFilter { build: Some(other.id), unresolved_only: true, ..FailureFilter::default() };
        assert_eq!(
            filtered(other_unresolved).await.len(),
            1,
            "resolving b's failures leaves other builds alone"
        );
        let kept = st.failures(&of_b).await.expect("failures of b");
        assert_eq!(
            kept.iter().find(|f| f.number == 2).and_then(|f| f.resolution.clone()),
            resolved[0].resolution
        );
        assert_eq!(export(st, b.id).await.errors.iter().filter(|f| f.resolved).count(), 3);
    }

    // ── artifacts ────────────────────────────────────────────────────────────────────

    pub async fn artifacts_add_list_replace(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = create(st, &seed(st).await).await;
        let ami = artifact("ami/us-east-1", "ami-0abc1234def567890");
        let disk = Artifact {
            name: "disk.qcow2".into(),
            kind: ArtifactKind::Disk,
            uri: "s3://images/rhel-8.8/base/disk.qcow2".into(),
            region: None,
            size_bytes: None,
            sha256: None,
            created_at: now(),
        };
        st.add_artifact(b.id, &ami).await.expect("add image artifact");
        st.add_artifact(b.id, &disk).await.expect("add disk artifact");
        let sorted = |mut v: Vec<Artifact>| {
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        assert_eq!(sorted(st.artifacts(b.id).await.expect("artifacts")), vec![ami.clone(), disk.clone()]);
        assert_eq!(
            reload(st, b.id).await.version,
            b.version + 2,
            "each artifact is a change: the version moves"
        );

        let replaced = Artifact { uri: "ami-0fff".into(), size_bytes: Some(1), ..ami.clone() };
        st.add_artifact(b.id, &replaced).await.expect("replace by name");
        let listed = sorted(st.artifacts(b.id).await.expect("artifacts"));
        assert_eq!(listed, vec![replaced, disk], "an artifact of the same name is replaced, not duplicated");
        assert_eq!(sorted(export(st, b.id).await.artifacts), listed, "the document carries the artifacts");
    }

    // ── documents ────────────────────────────────────────────────────────────────────

    /// A build with everything a document carries: history with a forced retry and a
    /// rewind, resolved and open failures, metadata, artifacts.
    async fn rich_build(st: &dyn Store) -> Build {
        let mut new = seed(st).await;
        new.metadata = BTreeMap::from([(key("ticket"), value("ticket", "OPS-1"))]);
        let b = create(st, &new).await;
        run(st, b.id, start(0)).await;
        run(st, b.id, fail(0, FailureClass::Transient, 1)).await;
        run(st, b.id, retry(true, Some("override"))).await;
        advance_to(st, b.id, 25).await;
        run(st, b.id, fail(25, FailureClass::Persistent, 3)).await;
        st.resolve_failures(b.id, Some(1), "mirror fixed").await.expect("resolve");
        run(st, b.id, rewind(20, "redo cloud setup")).await;
        run(st, b.id, set_meta("ami/us-east-1", Some("ami-0abc"))).await;
        st.add_artifact(b.id, &artifact("ami/us-east-1", "ami-0abc")).await.expect("add artifact");
        reload(st, b.id).await
    }

    /// The document with its identity changed (id, number, failure owners, resume token).
    fn renamed(doc: &BuildDocument, number: &str) -> BuildDocument {
        let mut parts = doc.clone().into_parts().expect("an exported document is valid");
        let id = BuildId::generate(1_770_000_000_000, now().as_nanosecond().unsigned_abs());
        parts.build.id = id;
        parts.build.number = BuildNumber::new(number).expect("valid number");
        for f in &mut parts.failures {
            f.build_id = id;
        }
        BuildDocument::from_parts(parts)
    }

    pub async fn export_import_round_trip(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = rich_build(st).await;
        let doc = export(st, b.id).await;
        assert_eq!(doc.format, FORMAT);
        assert_eq!((doc.build_id, &doc.build_number, doc.current_state), (b.id, &b.number, b.state));
        assert_eq!((doc.status, doc.version, &doc.metadata), (b.status, b.version, &b.metadata));
        assert_eq!(doc.provider.as_deref(), Some("aws"), "the provider comes from the platform");
        assert_eq!(doc.history, history(st, b.id).await);
        assert_eq!(doc.errors.len(), 2);
        assert_eq!(doc.artifacts.len(), 1);
        assert_eq!(doc.resume_token, format!("bs1:{}:{}:{}", b.id, b.state, b.version));

        // The JSON text is lossless.
        let text = serde_json::to_string_pretty(&doc).expect("a document serializes");
        let parts = BuildDocument::parse(&text).expect("an exported document parses");
        assert_eq!(BuildDocument::from_parts(parts.clone()), doc);

        let r = st.import_build(parts.clone(), ImportMode::CreateOnly).await;
        assert!(
            matches!(r, Err(StoreError::AlreadyExists { .. })),
            "create-only import of an existing build, got {r:?}"
        );
        assert_eq!(export(st, b.id).await, doc, "a refused import changed the store");
        let same_number = renamed(&doc, b.number.as_str());
        let r = st.import_build(same_number.into_parts().expect("valid"), ImportMode::CreateOnly).await;
        assert!(
            matches!(r, Err(StoreError::AlreadyExists { .. })),
            "a new id with a taken number, got {r:?}"
        );
        let mut same_id = renamed(&doc, "another-number").into_parts().expect("valid");
        same_id.build.id = b.id;
        for f in &mut same_id.failures {
            f.build_id = b.id;
        }
        let r = st.import_build(same_id, ImportMode::CreateOnly).await;
        assert!(
            matches!(r, Err(StoreError::AlreadyExists { .. })),
            "a taken id with a new number, got {r:?}"
        );

        let replaced =
            st.import_build(parts.clone(), ImportMode::Replace).await.expect("replace with itself");
        assert_eq!(replaced, parts.build);
        assert_eq!(export(st, b.id).await, doc, "replacing a build with its own document changes nothing");

        // Replace restores the document over later changes: build, history, failures, artifacts.
        run(st, b.id, start(20)).await;
        run(st, b.id, fail(20, FailureClass::Transient, 3)).await;
        st.add_artifact(b.id, &artifact("disk", "s3://x/disk")).await.expect("add artifact");
        st.import_build(parts, ImportMode::Replace).await.expect("replace with the older document");
        assert_eq!(export(st, b.id).await, doc, "replace puts back exactly the document");
        assert_eq!(history(st, b.id).await, doc.history);

        // A copy under a new identity imports beside it, equal to the document.
        let copy = renamed(&doc, "copy-of-rich-build");
        let imported = st
            .import_build(copy.clone().into_parts().expect("valid"), ImportMode::CreateOnly)
            .await
            .expect("import a copy");
        assert_eq!(imported.id, copy.build_id);
        assert_eq!(export(st, copy.build_id).await, copy, "import then export is lossless");
        assert_eq!(st.find_build("copy-of-rich").await.expect("find the copy").id, copy.build_id);
        assert_eq!(export(st, b.id).await, doc, "importing a copy leaves the original alone");
        assert_eq!(st.list_builds(&BuildFilter::default()).await.expect("list").len(), 2);
        // The copy is a live build: the rules continue from its document.
        run(st, copy.build_id, start(20)).await;
    }

    pub async fn import_registers_missing_catalog_items(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = rich_build(st).await;
        let mut parts =
            renamed(&export(st, b.id).await, "imported-from-elsewhere").into_parts().expect("valid");
        parts.build.platform = name("openstack-dc2");
        parts.build.os = name("sles-15.7");
        parts.build.image_type = name("openvpn");
        parts.provider = Some("openstack".into());
        let doc = BuildDocument::from_parts(parts.clone());
        st.import_build(parts, ImportMode::CreateOnly).await.expect("import with unknown catalog items");
        for (kind, n) in [
            (CatalogKind::Platform, "openstack-dc2"),
            (CatalogKind::Os, "sles-15.7"),
            (CatalogKind::ImageType, "openvpn"),
        ] {
            let item = st.catalog_item(kind, &name(n)).await;
            assert!(item.is_ok(), "import registers the missing {kind} `{n}`, got {item:?}");
        }
        assert_eq!(export(st, doc.build_id).await, doc, "the imported build exports as its document");
        let r = st.remove_catalog_item(CatalogKind::Platform, &name("openstack-dc2")).await;
        assert!(
            matches!(r, Err(StoreError::CatalogItemInUse { .. })),
            "the registered item is in use, got {r:?}"
        );
        assert_eq!(st.catalog(CatalogKind::Platform).await.expect("list").len(), 2);
    }

    /// What a hand edit or a torn upload does to a document: a label and the edit.
    type Edit<'a> = (&'a str, &'a dyn Fn(&mut serde_json::Value));

    pub async fn import_refuses_broken_documents(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let b = rich_build(st).await;
        let doc = export(st, b.id).await;
        let good = serde_json::to_value(&doc).expect("a document serializes");
        let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            edit(&mut v);
            BuildDocument::parse(&v.to_string())
        };
        let inconsistent: [Edit<'_>; 6] = [
            ("a gap in history seq", &|v| v["history"][2]["seq"] = serde_json::json!(9)),
            ("a wrong resume token", &|v| v["resume_token"] = serde_json::json!("bs1:0:0:1")),
            ("a resume token of another version", &|v| v["version"] = serde_json::json!(1)),
            ("a failure numbered out of order", &|v| v["errors"][0]["number"] = serde_json::json!(2)),
            ("an empty history", &|v| v["history"] = serde_json::json!([])),
            ("a state name that is not the catalog's", &|v| v["state_name"] = serde_json::json!("nope")),
        ];
        for (what, edit) in inconsistent {
            let r = broken(edit);
            assert!(matches!(r, Err(DocumentError::Inconsistent(_))), "{what} → Inconsistent, got {r:?}");
        }
        let malformed: [Edit<'_>; 4] = [
            ("state 250", &|v| v["current_state"] = serde_json::json!(250)),
            ("status `bogus`", &|v| v["status"] = serde_json::json!("bogus")),
            ("an unknown field", &|v| v["extra"] = serde_json::json!(1)),
            ("a missing field", &|v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("history");
                }
            }),
        ];
        for (what, edit) in malformed {
            let r = broken(edit);
            assert!(matches!(r, Err(DocumentError::Malformed(_))), "{what} → Malformed, got {r:?}");
        }
        let r = broken(&|v| v["format"] = serde_json::json!("buildstate.build/v9"));
        assert!(matches!(r, Err(DocumentError::Format(_))), "an unknown format, got {r:?}");
        let text = good.to_string();
        let truncated = BuildDocument::parse(&text[..text.len() / 2]);
        assert!(matches!(truncated, Err(DocumentError::Malformed(_))), "a truncated file, got {truncated:?}");
        assert!(
            StoreError::from(DocumentError::Malformed("x".into())).to_string().contains("not a buildstate")
        );
        assert_eq!(export(st, b.id).await, doc, "the store is untouched");
    }

    // ── hostile text ─────────────────────────────────────────────────────────────────

    pub async fn hostile_text_round_trips_by_policy(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let new = seed(st).await;
        // A bystander whose data must not be damaged by anything below.
        let bystander = rich_build(st).await;
        let bystander_doc = export(st, bystander.id).await;
        let catalog_before: Vec<Vec<CatalogItem>> = {
            let mut v = Vec::new();
            for kind in CatalogKind::ALL {
                v.push(st.catalog(*kind).await.expect("list catalog"));
            }
            v
        };

        let b = create(st, &new).await;
        let mut info = failure("ansible", FailureClass::Transient, HOSTILE);
        info.component = Some(HOSTILE.into());
        info.details.insert("log_tail".into(), serde_json::json!(HOSTILE));
        let failed = run(st, b.id, fail_with(0, info.clone(), 5)).await;
        let stored_message = clean_text(HOSTILE, MAX_MESSAGE_BYTES);
        let last = history(st, b.id).await.pop().expect("history is not empty");
        assert_eq!(
            last.message.as_deref(),
            Some(stored_message.as_str()),
            "error messages are stored cleaned, else verbatim"
        );
        assert!(stored_message.contains("'; DROP TABLE builds; --") && stored_message.contains("\\u{0}nul"));
        let rec = &st
            .failures(&FailureFilter { build: Some(b.id), ..FailureFilter::default() })
            .await
            .expect("failures")[0];
        assert_eq!(rec, &failed.failures[0], "the failure record is stored as the rules made it");
        assert_eq!(rec.info.message, stored_message);
        assert_eq!(rec.info.component.as_deref(), Some(clean_text(HOSTILE.trim(), MAX_NOTE_BYTES).as_str()));
        assert_eq!(rec.info.details, info.details, "details JSON round-trips exactly");

        run(st, b.id, retry(false, Some(HOSTILE))).await;
        let reason = clean_text(HOSTILE.trim(), MAX_NOTE_BYTES);
        let last = history(st, b.id).await.pop().expect("history is not empty");
        assert_eq!(last.message.as_deref(), Some(reason.as_str()), "reasons are stored cleaned");
        run(st, b.id, set_meta("note", Some(HOSTILE))).await;
        run(st, b.id, set_meta("sql", Some("'); DELETE FROM builds; --"))).await;
        let meta = reload(st, b.id).await.metadata;
        assert_eq!(
            meta.get(&key("note")).map(MetaValue::as_str),
            Some(clean_text(HOSTILE, usize::MAX).as_str())
        );
        assert_eq!(meta.get(&key("sql")).map(MetaValue::as_str), Some("'); DELETE FROM builds; --"));

        // A 1 MiB message: bounded to MAX_MESSAGE_BYTES, keeping its head and its tail.
        let huge = format!("HEAD {} \0 {} TAIL", "x".repeat(512 * 1024), "é".repeat(256 * 1024));
        assert!(huge.len() > 1024 * 1024);
        run(st, b.id, start(0)).await;
        run(st, b.id, fail_with(0, failure("script", FailureClass::Transient, &huge), 5)).await;
        let expected = clean_text(&huge, MAX_MESSAGE_BYTES);
        let last = history(st, b.id).await.pop().expect("history is not empty");
        let got = last.message.expect("a failed event has a message");
        assert!(got.len() <= MAX_MESSAGE_BYTES, "a stored message is at most {MAX_MESSAGE_BYTES} bytes");
        assert!(got.starts_with("HEAD ") && got.ends_with(" TAIL"), "head and tail are kept");
        assert_eq!(got, expected, "the 1 MiB message is stored as clean_text made it");
        let newest = FailureFilter { build: Some(b.id), limit: Some(1), ..FailureFilter::default() };
        assert_eq!(st.failures(&newest).await.expect("failures")[0].info.message, expected);

        run(st, b.id, cancel(HOSTILE)).await;
        let doc = export(st, b.id).await;
        let text = serde_json::to_string(&doc).expect("a document serializes");
        assert_eq!(
            BuildDocument::from_parts(BuildDocument::parse(&text).expect("parses")),
            doc,
            "hostile text exports losslessly"
        );

        // Quotes and SQL in catalog and artifact text are data.
        let quoted = CatalogItem::ImageType(ImageType {
            name: name("quoted"),
            display_name: "Bobby'); DROP TABLE builds; --".into(),
            description: "\"double\" and 'single' and `back` quotes; 100% _wild_".into(),
        });
        st.add_catalog_item(&quoted).await.expect("add an image type with quotes");
        assert_eq!(st.catalog_item(CatalogKind::ImageType, &name("quoted")).await.expect("show"), quoted);
        let art = Artifact {
            name: "it's; DROP TABLE artifacts; --".into(),
            ..artifact("x", "s3://b/k?x='1'&y=\"2\"")
        };
        st.add_artifact(b.id, &art).await.expect("add an artifact with quotes");
        assert!(st.artifacts(b.id).await.expect("artifacts").contains(&art));

        assert_eq!(export(st, bystander.id).await, bystander_doc, "the bystander build is undamaged");
        assert_eq!(st.list_builds(&BuildFilter::default()).await.expect("list").len(), 2);
        for (kind, before) in CatalogKind::ALL.iter().zip(&catalog_before) {
            let now = st.catalog(*kind).await.expect("list catalog");
            assert!(before.iter().all(|i| now.contains(i)), "the {kind} catalog is undamaged");
        }
    }

    fn raw_controls(s: &str) -> bool {
        s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
    }

    /// Whatever a caller passes, no stored text keeps raw control characters (the policy
    /// of `clean_text`): stores either clean it or refuse it with `InvalidInput`.
    pub async fn no_raw_control_characters_are_stored(h: &impl Harness) {
        let s = h.open().await;
        let st = s.as_ref();
        let mut new = seed(st).await;
        new.created_by = "ci\0bot\x1b[2J".into();
        let id = match st.create_build(&new).await {
            Err(StoreError::InvalidInput(_)) => create(st, &seed(st).await).await.id,
            Ok(b) => b.id,
            Err(e) => {
                panic!("a created-by with control characters: clean it or InvalidInput, got {e}")
            }
        };
        let hostile_log = Command::Start {
            state: code(0),
            actor: "runner\0\x1b]0;pwned\x07".into(),
            log: Some("/var/log/build\0.log\x1b[2J".into()),
            force: false,
        };
        match st.apply(id, &hostile_log, None).await {
            Ok(_) | Err(StoreError::InvalidInput(_)) => {}
            Err(e) => panic!(
                "a start with control characters in its log pointer: clean it or InvalidInput, got {e}"
            ),
        }
        let art = Artifact { name: "disk\0.raw".into(), uri: "s3://b/\x1b[2J".into(), ..artifact("x", "y") };
        match st.add_artifact(id, &art).await {
            Ok(()) | Err(StoreError::InvalidInput(_)) => {}
            Err(e) => {
                panic!("an artifact with control characters: clean it or InvalidInput, got {e}")
            }
        }
        let shouty = CatalogItem::Platform(Platform {
            name: name("shouty"),
            display_name: "Shouty\x1b[2J\x07".into(),
            provider: "aws\0".into(),
            region: Some("us-east-1\r".into()),
        });
        match st.add_catalog_item(&shouty).await {
            Ok(()) | Err(StoreError::InvalidInput(_)) => {}
            Err(e) => {
                panic!("a platform with control characters: clean it or InvalidInput, got {e}")
            }
        }
        let doc = export(st, id).await;
        let mut dirty = Vec::new();
        if let Ok(CatalogItem::Platform(p)) = st.catalog_item(CatalogKind::Platform, &name("shouty")).await {
            for text in [&p.display_name, &p.provider, p.region.as_ref().unwrap_or(&String::new())] {
                if raw_controls(text) {
                    dirty.push(format!("platform field {text:?}"));
                }
            }
        }
        if raw_controls(&doc.created_by) {
            dirty.push(format!("created_by {:?}", doc.created_by));
        }
        for e in &doc.history {
            for (field, text) in
                [("actor", Some(&e.actor)), ("message", e.message.as_ref()), ("log", e.log.as_ref())]
            {
                if let Some(t) = text.filter(|t| raw_controls(t)) {
                    dirty.push(format!("history {} {field} {t:?}", e.seq));
                }
            }
        }
        for a in &doc.artifacts {
            if raw_controls(&a.name) || raw_controls(&a.uri) {
                dirty.push(format!("artifact {:?} {:?}", a.name, a.uri));
            }
        }
        assert!(dirty.is_empty(), "stored text with raw control characters: {dirty:?}");
    }

    // ── concurrency: no lost update ──────────────────────────────────────────────────

    pub async fn concurrent_distinct_builds_run_to_delivery(h: &impl Harness) {
        let s = h.open().await;
        let new = seed(s.as_ref()).await;
        let mut tasks = JoinSet::new();
        for writer in 0..16 {
            let store = h.open().await;
            let new = NewBuild { created_by: format!("writer-{writer}"), ..new.clone() };
            tasks.spawn(async move {
                let b = store.create_build(&new).await.map_err(|e| format!("writer {writer} create: {e}"))?;
                let mut version = b.version;
                let actor = format!("writer-{writer}");
                for state in b.catalog.codes() {
                    let c = state.get();
                    let steps = [
                        Command::Start { state, actor: actor.clone(), log: None, force: false },
                        Command::Complete { state, actor: actor.clone(), exit_code: Some(0), log: None },
                    ];
                    for cmd in steps {
                        let o = store
                            .apply(b.id, &cmd, Some(version))
                            .await
                            .map_err(|e| format!("writer {writer} {} {c}: {e}", cmd.name()))?;
                        version = o.build.version;
                    }
                }
                Ok::<BuildId, String>(b.id)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            done.push(joined.expect("writer task panicked").unwrap_or_else(|e| panic!("{e}")));
        }
        assert_eq!(done.len(), 16);
        for id in done {
            let b = reload(s.as_ref(), id).await;
            assert_eq!((b.state, b.status, b.version), (StateCode::DELIVERED, BuildStatus::Completed, 43));
            let events = history(s.as_ref(), id).await;
            assert_eq!(events.len(), 43, "every transition of every writer is kept");
            assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
            assert!(events.iter().all(|e| e.actor == b.created_by), "every event is of this build's writer");
        }
    }

    pub async fn concurrent_writers_on_one_build_lose_nothing(h: &impl Harness) {
        let s = h.open().await;
        let b = create(s.as_ref(), &seed(s.as_ref()).await).await;
        let mut tasks = JoinSet::new();
        for writer in 0..16u32 {
            let store = h.open().await;
            tasks.spawn(async move {
                let mut accepted = 0u32;
                loop {
                    let cur = store
                        .build(b.id)
                        .await
                        .map_err(|e| format!("writer {writer} read: {e}"))?;
                    if cur.status == BuildStatus::Completed {
                        return Ok::<u32, String>(accepted);
                    }
                    let cmd = Command::Complete {
                        state: cur.state,
                        actor: format!("writer-{writer}"),
                        exit_code: Some(0),
                        log: None,
                    };
                    // Half the writers use compare-and-swap, half rely on the rules alone.
                    let expected = (writer % 2 == 0).then_some(cur.version);
                    match store.apply(b.id, &cmd, expected).await {
                        Ok(_) => accepted += 1,
                        // Someone else completed it first: fine, read again.
                        Err(StoreError::Conflict { .. })
                        | Err(StoreError::Rejected(
                            Rejection::Behind { .. } | Rejection::Terminal { .. },
                        )) => {}
                        // Anything else (Ahead would mean a read from the future) is a bug.
                        Err(e) => {
                            return Err(format!("writer {writer} completing {}: {e:?}", cur.state));
                        }
                    }
                }
            });
        }
        let mut accepted = 0;
        while let Some(joined) = tasks.join_next().await {
            accepted += joined.expect("writer task panicked").unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(accepted, 21, "exactly one accepted completion per milestone");
        let done = reload(s.as_ref(), b.id).await;
        assert_eq!(
            (done.state, done.status, done.version),
            (StateCode::DELIVERED, BuildStatus::Completed, 22)
        );
        let events = history(s.as_ref(), b.id).await;
        assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1), "history seq is gapless");
        let completed: Vec<StateCode> =
            events.iter().filter(|e| e.kind == EventKind::Completed).map(|e| e.state).collect();
        assert_eq!(
            completed,
            done.catalog.codes().collect::<Vec<_>>(),
            "one completed event per milestone, in order"
        );
        assert_eq!(events.len(), 22);
    }

    pub async fn concurrent_artifacts_and_metadata_on_one_build(h: &impl Harness) {
        let s = h.open().await;
        let b = create(s.as_ref(), &seed(s.as_ref()).await).await;
        let mut tasks = JoinSet::new();
        for writer in 0..16 {
            let store = h.open().await;
            tasks.spawn(async move {
                for j in 0..10 {
                    let a = artifact(&format!("w{writer}/a{j}"), &format!("s3://images/w{writer}/a{j}"));
                    store
                        .add_artifact(b.id, &a)
                        .await
                        .map_err(|e| format!("writer {writer} artifact {j}: {e}"))?;
                    let cmd = set_meta(&format!("w{writer}.k{j}"), Some(&format!("v{writer}-{j}")));
                    store
                        .apply(b.id, &cmd, None)
                        .await
                        .map_err(|e| format!("writer {writer} meta {j}: {e}"))?;
                }
                Ok::<(), String>(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("writer task panicked").unwrap_or_else(|e| panic!("{e}"));
        }
        let names: BTreeSet<String> =
            s.artifacts(b.id).await.expect("artifacts").into_iter().map(|a| a.name).collect();
        assert_eq!(names.len(), 160, "all 160 artifacts are present");
        let done = reload(s.as_ref(), b.id).await;
        assert_eq!(done.metadata.len(), 160, "all 160 metadata keys are present");
        for writer in 0..16 {
            for j in 0..10 {
                assert!(names.contains(&format!("w{writer}/a{j}")));
                let v = done.metadata.get(&key(&format!("w{writer}.k{j}"))).map(MetaValue::as_str);
                assert_eq!(v, Some(format!("v{writer}-{j}").as_str()));
            }
        }
        assert_eq!(done.version, 1 + 320, "every one of the 320 accepted changes bumped the version once");
        assert_eq!((done.state, done.status), (StateCode::INITIAL, BuildStatus::Pending));
    }
}
