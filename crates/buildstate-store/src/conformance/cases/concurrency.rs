use std::collections::BTreeSet;

use buildstate_core::{BuildId, BuildStatus, Command, EventKind, MetaValue, NewBuild, Rejection, StateCode};
use tokio::task::JoinSet;

use crate::conformance::Harness;
use crate::{Guard, StoreError};

use super::support::*;

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
                        .apply(b.id, &cmd, Guard::version(version))
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
                let cur = store.build(b.id).await.map_err(|e| format!("writer {writer} read: {e}"))?;
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
                let guard = if writer % 2 == 0 { Guard::version(cur.version) } else { Guard::none() };
                match store.apply(b.id, &cmd, guard).await {
                    Ok(_) => accepted += 1,
                    // Someone else completed it first: fine, read again.
                    Err(StoreError::Conflict { .. })
                    | Err(StoreError::Rejected(Rejection::Behind { .. } | Rejection::Terminal { .. })) => {}
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
    assert_eq!((done.state, done.status, done.version), (StateCode::DELIVERED, BuildStatus::Completed, 22));
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
                    .add_artifact(b.id, &a, Guard::none())
                    .await
                    .map_err(|e| format!("writer {writer} artifact {j}: {e}"))?;
                let cmd = set_meta(&format!("w{writer}.k{j}"), Some(&format!("v{writer}-{j}")));
                store
                    .apply(b.id, &cmd, Guard::none())
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
