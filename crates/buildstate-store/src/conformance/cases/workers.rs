use std::time::Duration;

use buildstate_core::{BuildId, WorkerBeat, WorkerRecord, WorkerState};

use crate::conformance::Harness;
use crate::{Store, StoreError, WorkerList};

use super::support::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn beat(name: &str, pid: u32, build: Option<BuildId>, starting: bool) -> WorkerBeat {
    WorkerBeat {
        name: name.into(),
        host: "ci-runner-7".into(),
        pid,
        heartbeat: Duration::from_secs(3600),
        build,
        starting,
    }
}

async fn listed(st: &dyn Store, within: Duration) -> WorkerList {
    st.workers(within).await.expect("list workers")
}

async fn record(st: &dyn Store, name: &str) -> WorkerRecord {
    let list = listed(st, DAY).await;
    list.workers.into_iter().find(|w| w.name == name).unwrap_or_else(|| panic!("worker {name} is listed"))
}

/// A worker's record: written at its first beat, kept current by later ones (its start
/// kept, `last_seen` and its build moving, by the store's clock), listed by name with
/// idle workers, marked exited on a clean exit (never stale then), started afresh by a
/// restart; another process's exit under the same name leaves it alone. None of it is
/// a change of a build.
pub async fn workers_are_recorded_listed_and_marked_exited(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let doc = export(st, b.id).await;
    assert!(listed(st, DAY).await.workers.is_empty(), "a new store has seen no worker");

    assert_eq!(st.worker_beat(&beat("w1", 11, None, true)).await.expect("first beat"), None);
    let first = record(st, "w1").await;
    assert_eq!(
        (first.host.as_str(), first.pid, first.heartbeat_ms, first.build, first.exited_at),
        ("ci-runner-7", 11, 3_600_000, None, None)
    );
    assert_eq!(first.started_at, first.last_seen, "started by its first beat");
    tick().await;
    let before = st.worker_beat(&beat("w1", 11, Some(b.id), false)).await.expect("beat with a build");
    assert_eq!(before.as_ref(), Some(&first), "a beat returns the record as it was");
    let busy = record(st, "w1").await;
    assert_eq!((busy.started_at, busy.build), (first.started_at, Some(b.id)), "same process: start kept");
    assert!(busy.last_seen > first.last_seen, "last_seen moves with every beat");

    st.worker_beat(&beat("w0-idle", 12, None, true)).await.expect("another worker");
    let list = listed(st, DAY).await;
    let names: Vec<&str> = list.workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["w0-idle", "w1"], "idle workers are listed too, by name");
    assert!(list.workers.iter().all(|w| w.last_seen <= list.now), "judged by the clock that wrote them");
    assert_eq!(
        list.workers.iter().map(|w| w.state(list.now)).collect::<Vec<_>>(),
        [WorkerState::Idle, WorkerState::Running]
    );
    assert_eq!(export(st, b.id).await, doc, "a worker's beat is not a change of its build");

    st.worker_exited(&beat("w1", 99, None, false)).await.expect("exit of another process");
    assert_eq!(record(st, "w1").await, busy, "another pid's exit leaves the record alone");
    st.worker_exited(&beat("w1", 11, None, false)).await.expect("exit");
    let gone = record(st, "w1").await;
    assert_eq!((gone.build, gone.started_at), (None, first.started_at));
    assert!(gone.exited_at.is_some_and(|t| t >= busy.last_seen) && gone.exited_at == Some(gone.last_seen));
    let far = gone.last_seen.checked_add(jiff::SignedDuration::from_hours(1000)).expect("time");
    assert_eq!(gone.state(far), WorkerState::Exited, "an exited worker is never stale");
    st.worker_exited(&beat("ghost", 1, None, false)).await.expect("exit of a worker never seen");
    assert_eq!(listed(st, DAY).await.workers.len(), 2, "an unknown worker's exit writes nothing");

    tick().await;
    st.worker_beat(&beat("w1", 13, None, true)).await.expect("restart");
    let again = record(st, "w1").await;
    assert_eq!((again.pid, again.exited_at), (13, None));
    assert!(again.started_at > first.started_at, "a restart starts the record afresh");
}

/// A worker silent for three of its heartbeats is stale; `within` bounds the listing by
/// last beat; names and hosts are checked like a lease holder's.
pub async fn stale_workers_are_flagged_and_old_ones_left_out(h: &impl Harness) {
    const WINDOW: Duration = Duration::from_millis(600);
    let s = h.open().await;
    let st = s.as_ref();
    let quick = WorkerBeat { heartbeat: Duration::from_millis(20), ..beat("quick", 21, None, true) };
    st.worker_beat(&quick).await.expect("beat");
    st.worker_beat(&beat("slow", 22, None, true)).await.expect("beat");
    // The window is wide enough for a beat and a listing through a busy server's HTTP
    // round trips, and the sleep longer than the window.
    tokio::time::sleep(WINDOW + Duration::from_millis(100)).await;
    let list = listed(st, DAY).await;
    let stale: Vec<(&str, bool)> =
        list.workers.iter().map(|w| (w.name.as_str(), w.is_stale(list.now))).collect();
    assert_eq!(stale, [("quick", true), ("slow", false)], "3 × 20 ms have passed, not 3 × 1 h");
    assert!(listed(st, WINDOW).await.workers.is_empty(), "nobody beat within the window");
    st.worker_beat(&beat("slow", 22, None, false)).await.expect("beat");
    let recent = listed(st, WINDOW).await;
    assert_eq!(recent.workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["slow"]);

    for (what, bad) in [
        ("an empty name", WorkerBeat { name: " ".into(), ..beat("x", 1, None, true) }),
        ("a control character", WorkerBeat { name: "w\x1b[2J".into(), ..beat("x", 1, None, true) }),
        ("a long host", WorkerBeat { host: "h".repeat(300), ..beat("x", 1, None, true) }),
    ] {
        let refused = st.worker_beat(&bad).await;
        assert!(matches!(refused, Err(StoreError::InvalidInput(_))), "{what}: {refused:?}");
    }
    assert_eq!(listed(st, DAY).await.workers.len(), 2, "refused beats write nothing");
}
