//! SIGINT and SIGTERM become a stop request that the runner passes to the running step
//! (which kills the step's whole process group and records the attempt as interrupted)
//! instead of killing buildstate mid-write.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A receiver that turns `Some(signal number)` at the first SIGINT or SIGTERM.
pub fn stop_on_signals() -> watch::Receiver<Option<i32>> {
    let (tx, rx) = watch::channel(None);
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    match (interrupt, terminate) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::spawn(async move {
                let sig = tokio::select! {
                    _ = int.recv() => 2,
                    _ = term.recv() => 15,
                };
                let _ = tx.send(Some(sig));
                // Keep the sender alive so that receivers never see the channel close.
                std::future::pending::<()>().await;
            });
        }
        _ => tracing::warn!("cannot listen for SIGINT/SIGTERM; Ctrl-C will kill buildstate outright"),
    }
    rx
}
