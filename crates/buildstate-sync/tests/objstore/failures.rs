//! An endpoint that is down, failing or silent never holds a push beyond the bound; the
//! copy waits in the backlog and is pushed once the target is right.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use buildstate_sync::{PushOutcome, SyncError, SyncState, SyncTarget, Syncer};

use crate::docs::Lineage;
use crate::support::{Backend, Fixture, quick_options};
use crate::{NUMBER, number};

/// Scheduling slack on top of the bound for a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(700);

fn assert_within_bound(took: Duration, what: &str) {
    let bound = quick_options().op_timeout;
    assert!(took <= bound + SLACK, "{what} took {took:?}, bound {bound:?}");
}

pub async fn unavailable_then_flush(backend: Backend) {
    if backend == Backend::File {
        return directory_unwritable_then_flush().await;
    }
    let fx = Fixture::new(backend, "down").await;
    let state = fx.state_dir("worker");
    let down = Syncer::with_options(fx.target_down(), &state, quick_options()).expect("syncer");
    let mut line = Lineage::new(NUMBER);
    line.complete();

    let started = Instant::now();
    let outcome = down.push(&line.doc()).await.expect("a push to a down endpoint is not an error");
    assert_within_bound(started.elapsed(), "push to a closed port");
    assert!(matches!(outcome, PushOutcome::Backlogged { .. }), "{outcome:?}");

    // Still down at the next transition: the backlog keeps the newest document only.
    line.complete();
    let latest = line.doc();
    assert!(matches!(down.push(&latest).await, Ok(PushOutcome::Backlogged { .. })));
    assert_eq!(down.backlog().expect("backlog"), std::slice::from_ref(&latest));
    let status = down.status(std::slice::from_ref(&latest)).await;
    assert_eq!(status[0].state, SyncState::Backlog);

    let started = Instant::now();
    let err = down.pull(&number(), None).await.expect_err("pull from a closed port");
    assert_within_bound(started.elapsed(), "pull from a closed port");
    assert!(matches!(err, SyncError::Unreachable { .. }), "{err}");

    // The endpoint is back (the right address, same state directory): flush pushes it.
    drop(down);
    let up = Syncer::with_options(fx.target(), &state, quick_options()).expect("syncer");
    let report = up.flush_backlog().await.expect("flush");
    assert!(report.is_drained(), "{report:?}");
    assert_eq!(report.outcomes.len(), 1);
    assert!(matches!(report.outcomes[0].1, Ok(PushOutcome::Pushed { created: true })), "{report:?}");
    assert!(up.backlog().expect("backlog").is_empty());
    assert_eq!(fx.syncer("fresh").pull(&number(), None).await.expect("pull"), Some(latest));
}

/// A directory has no endpoint to take down; what fails there is the file system. Such a
/// failure is not transient: the push reports it at once, and the copy still waits in
/// the backlog until the directory is usable again.
async fn directory_unwritable_then_flush() {
    let fx = Fixture::new(Backend::File, "down").await;
    let sync = fx.syncer("worker");
    let dir = fx.url.strip_prefix("file://").expect("file url").to_owned();
    std::fs::create_dir_all(&dir).expect("copies dir");
    let blocker = format!("{dir}/aws");
    std::fs::write(&blocker, "a file where the provider directory should be").expect("blocker");

    let mut line = Lineage::new(NUMBER);
    line.complete();
    let started = Instant::now();
    let err = sync.push(&line.doc()).await.expect_err("the directory is blocked");
    assert_within_bound(started.elapsed(), "push to a blocked directory");
    assert!(matches!(err, SyncError::Remote { .. }), "{err}");
    assert_eq!(sync.backlog().expect("backlog"), [line.doc()]);

    std::fs::remove_file(&blocker).expect("unblock");
    let report = sync.flush_backlog().await.expect("flush");
    assert!(report.is_drained(), "{report:?}");
    assert_eq!(fx.syncer("fresh").pull(&number(), None).await.expect("pull"), Some(line.doc()));
}

/// An S3 target at a local server of ours, which `serve` answers.
fn s3_target_at(port: u16) -> SyncTarget {
    let env = buildstate_sync::Env::from_pairs([
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "k".into()),
        ("AWS_SECRET_ACCESS_KEY", "s".into()),
    ]);
    SyncTarget::parse_with_env("s3://bucket/prefix", env).expect("target")
}

/// Reads one HTTP request (headers and body) so the answer is not mistaken for a reset.
fn read_request(stream: &TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)
}

pub async fn server_errors_are_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = read_request(&stream);
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let sync = Syncer::with_options(s3_target_at(port), tmp.path(), quick_options()).expect("syncer");
    let started = Instant::now();
    let outcome = sync.push(&Lineage::new(NUMBER).doc()).await.expect("push");
    assert_within_bound(started.elapsed(), "push to a server answering 503");
    match outcome {
        PushOutcome::Backlogged { error } => assert!(error.contains("503"), "{error}"),
        other => panic!("expected Backlogged, got {other:?}"),
    }
    let n = requests.load(Ordering::SeqCst);
    assert!(n >= 3, "a 503 must be retried with backoff: {n} requests");
}

pub async fn black_hole_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        // Accept and hold every connection without answering.
        let held: Vec<TcpStream> = listener.incoming().flatten().collect();
        drop(held);
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let sync = Syncer::with_options(s3_target_at(port), tmp.path(), quick_options()).expect("syncer");
    let started = Instant::now();
    let outcome = sync.push(&Lineage::new(NUMBER).doc()).await.expect("push");
    let took = started.elapsed();
    assert_within_bound(took, "push to a server that never answers");
    assert!(took >= quick_options().op_timeout - Duration::from_millis(100), "gave up early: {took:?}");
    assert!(matches!(outcome, PushOutcome::Backlogged { .. }), "{outcome:?}");
}
