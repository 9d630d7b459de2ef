//! The sample catalog triple, for backends' own tests beside the suite (crash and
//! concurrency tests with real processes).

use std::collections::BTreeMap;

use buildstate_core::{CatalogItem, ImageType, Name, NewBuild, OsVersion, Platform, StateCatalog};

use crate::{Store, StoreError};

fn name(s: &str) -> Name {
    Name::new(s).expect("valid name")
}

/// Adds `aws-commercial`, `rhel-8.8` and `base`, whoever gets there first: several
/// processes may seed one fresh store at once. Returns a new build of the triple.
pub async fn seed_sample_catalog(store: &(impl Store + ?Sized), created_by: &str) -> NewBuild {
    let items = [
        CatalogItem::Platform(Platform {
            name: name("aws-commercial"),
            display_name: "AWS".into(),
            provider: "aws".into(),
            region: Some("us-east-1".into()),
        }),
        CatalogItem::Os(OsVersion {
            name: name("rhel-8.8"),
            display_name: "RHEL 8.8".into(),
            family: "rhel".into(),
            major: 8,
            minor: Some(8),
        }),
        CatalogItem::ImageType(ImageType {
            name: name("base"),
            display_name: "Base".into(),
            description: String::new(),
        }),
    ];
    for item in items {
        match store.add_catalog_item(&item).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("add catalog item: {e}"),
        }
    }
    NewBuild {
        platform: name("aws-commercial"),
        os: name("rhel-8.8"),
        image_type: name("base"),
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: created_by.into(),
        ci_url: None,
        metadata: BTreeMap::new(),
    }
}

/// Two builds with attempts at 0, 5 and 10, one failing once at 10 and retried: a
/// history for the migrations that sum existing attempts to start from.
pub async fn seed_attempts(store: &(impl Store + ?Sized)) {
    use buildstate_core::{Command, FailureClass, FailureInfo, StateCode};
    let new = seed_sample_catalog(store, "seed").await;
    let code = |n| StateCode::new(n).expect("a code");
    for failing in [false, true] {
        let b = store.create_build(&new).await.expect("create a build");
        for c in [0, 5, 10] {
            if failing && c == 10 {
                let failure = FailureInfo {
                    failure_type: "network".parse().expect("a failure type"),
                    class: FailureClass::Transient,
                    component: None,
                    message: "mirror down".into(),
                    details: Default::default(),
                    exit_code: None,
                };
                let fail = Command::Fail {
                    state: code(c),
                    actor: "seed".into(),
                    failure,
                    max_attempts: 3,
                    log: None,
                };
                store.apply(b.id, &fail, crate::Guard::none()).await.expect("fail");
                let retry = Command::Retry { actor: "seed".into(), reason: None, force: false };
                store.apply(b.id, &retry, crate::Guard::none()).await.expect("retry");
            }
            let complete =
                Command::Complete { state: code(c), actor: "seed".into(), exit_code: None, log: None };
            store.apply(b.id, &complete, crate::Guard::none()).await.expect("complete");
        }
    }
}

/// The reports that read the attempt statistics a store keeps agree with the same
/// reports computed from the histories (a filter by creation time that holds for every
/// build makes the store compute them so), and have something to show.
pub async fn assert_attempt_stats_agree(store: &(impl Store + ?Sized)) {
    use crate::report::{ReportFilter, ReportName, ReportRequest};
    for name in [ReportName::Durations, ReportName::Cost, ReportName::Flaky, ReportName::TimeSaved] {
        let kept = store.report(&ReportRequest::new(name)).await.expect("a report");
        let mut from_history = ReportRequest::new(name);
        from_history.filter = ReportFilter { since: Some(jiff::Timestamp::UNIX_EPOCH), ..Default::default() };
        let recomputed = store.report(&from_history).await.expect("a report");
        assert_eq!(
            kept.rows, recomputed.rows,
            "report {name}: the kept statistics disagree with the histories"
        );
        assert!(!kept.rows.is_empty(), "report {name} has rows");
    }
}
