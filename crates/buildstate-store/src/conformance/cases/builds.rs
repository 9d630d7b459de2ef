use std::collections::{BTreeMap, BTreeSet};

use buildstate_core::{
    BuildNumber, BuildStatus, CatalogKind, EventKind, FailureClass, NewBuild, StateCatalog, StateCode,
};
use tokio::task::JoinSet;

use crate::conformance::Harness;
use crate::{BuildFilter, FailureFilter, StoreError, build_number_stem, now};

use super::support::*;

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
    assert_eq!(
        (&b.created_by, &b.ci_url, &b.metadata),
        (&h.recorded_actor("alice"), &new.ci_url, &new.metadata)
    );
    assert_eq!(b.catalog, StateCatalog::default_catalog());
    assert_eq!(b.check_invariants(), Ok(()));
    assert_eq!(reload(s.as_ref(), b.id).await, b, "build(id) reads back what create returned");
    assert_eq!(s.find_build(b.number.as_str()).await.expect("find by number"), b);

    let events = history(s.as_ref(), b.id).await;
    assert_eq!(events.len(), 1, "a new build has exactly its `created` event");
    let e = &events[0];
    assert_eq!(
        (e.seq, e.kind, e.state, e.actor.clone()),
        (1, EventKind::Created, StateCode::INITIAL, h.recorded_actor("alice"))
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

/// The day's sequence is one above the highest taken under the exact stem, counted
/// numerically; look-alike numbers (`_` and `.` are not wildcards) and non-numeric
/// suffixes do not count.
pub async fn create_build_numbers_past_lookalikes_numerically(h: &impl Harness) {
    let s = h.open().await;
    let new = seed_triple(s.as_ref(), "aws_gov", "rhel-8.8", "base").await;
    let stem = build_number_stem(&new, now());
    let day = stem.trim_end_matches('-').rsplit('-').next().expect("a date").to_owned();
    for taken in [
        format!("rhel-8.8-base-awsxgov-{day}-007"),
        format!("rhel-8x8-base-aws_gov-{day}-009"),
        format!("rhel-8.8-base-aws_gov-{day}x012"),
    ] {
        let number = BuildNumber::new(&taken).expect("valid number");
        create(s.as_ref(), &NewBuild { number: Some(number), ..new.clone() }).await;
    }
    let first = create(s.as_ref(), &new).await;
    if first.number.as_str().starts_with(&stem) {
        assert_eq!(first.number.as_str(), format!("{stem}001"), "look-alikes are not in the sequence");
    }
    for taken in ["999", "1000", "hotfix"] {
        let number = BuildNumber::new(&format!("{stem}{taken}")).expect("valid number");
        create(s.as_ref(), &NewBuild { number: Some(number), ..new.clone() }).await;
    }
    let next = create(s.as_ref(), &new).await;
    // Unless the day changed in between, the sequence continues after 1000, not 999.
    if next.number.as_str().starts_with(&stem) {
        assert_eq!(next.number.as_str(), format!("{stem}1001"), "numeric, not textual, order");
    }
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
    assert!(matches!(found(String::new()).await, Err(StoreError::BuildNotFound(_))), "an empty reference");
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
    assert_eq!(build_filter(st, BuildFilter { platform: Some(name("azure")), ..all() }).await, vec![p, c]);
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
    let none =
        BuildFilter { platform: Some(name("aws-commercial")), status: Some(BuildStatus::Cancelled), ..all() };
    assert!(build_filter(st, none).await.is_empty());
}

// ── the lifecycle ────────────────────────────────────────────────────────────────

/// Paging a listing by cursor (`after` = the last build of the page before) gives every
/// build once, in the listing's order, builds created in the same microsecond included
/// (ordered by id), with filters as without.
pub async fn list_builds_pages_by_cursor_without_gaps_or_repeats(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let new = seed(st).await;
    let first = create(st, &new).await;
    let doc = export(st, first.id).await;
    for i in 0..4 {
        let parts = renamed(&doc, &format!("tie-{i}")).into_parts().expect("valid");
        st.import_build(parts, crate::ImportMode::CreateOnly)
            .await
            .expect("a copy created in the same instant");
    }
    for _ in 0..3 {
        tick().await;
        create(st, &new).await;
    }
    let cancelled = create(st, &new).await;
    run(st, cancelled.id, cancel("superseded")).await;
    let page_through = |filter: BuildFilter| async move {
        let (mut seen, mut after) = (Vec::new(), None);
        loop {
            let page = st
                .list_builds(&BuildFilter { after, limit: Some(3), ..filter.clone() })
                .await
                .expect("a page");
            let Some(last) = page.last() else { break };
            after = Some((last.created_at, last.id));
            seen.extend(ids(&page));
        }
        seen
    };
    let all = build_filter(st, BuildFilter::default()).await;
    assert_eq!(all.len(), 9);
    assert_eq!(page_through(BuildFilter::default()).await, all, "pages of 3: every build once, in order");
    let pending = BuildFilter { status: Some(BuildStatus::Pending), ..BuildFilter::default() };
    assert_eq!(page_through(pending.clone()).await, build_filter(st, pending).await, "filtered too");
    let last = st.list_builds(&BuildFilter::default()).await.expect("list").pop().expect("the oldest");
    let after_last = BuildFilter { after: Some((last.created_at, last.id)), ..BuildFilter::default() };
    assert!(build_filter(st, after_last).await.is_empty(), "nothing after the oldest");
}
