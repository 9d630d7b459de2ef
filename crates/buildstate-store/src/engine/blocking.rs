//! Where a blocking backend's unit of work runs.

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::{StoreError, StoreResult};

/// Runs `job` (a whole unit of work of SQLite or the JSON files: lock waits, statements,
/// fsyncs) where it cannot stall anything that must keep running: on tokio's blocking
/// pool, unless this is a current-thread runtime with no task spawned — a one-shot
/// command, where nothing else is waiting for the thread (no heartbeat, output pump,
/// timeout or signal task) — and then right here. The hand-off to the pool costs two
/// thread wake-ups per transition, a third of what a transition costs on a fast disk
/// (benchmark (a)), and a one-shot command would spawn a pool thread just for it.
///
/// So a caller that races a store call against a timer must do so from a runtime that
/// has another task (the runner spawns its heartbeats and signal handling).
pub async fn run_blocking<T: Send + 'static>(
    what: &'static str,
    job: impl FnOnce(&Handle) -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    let runtime = Handle::try_current().map_err(|e| StoreError::backend(what, e))?;
    if runtime.runtime_flavor() == RuntimeFlavor::CurrentThread && runtime.metrics().num_alive_tasks() == 0 {
        return job(&runtime);
    }
    let blocking = tokio::task::spawn_blocking(move || job(&runtime));
    blocking.await.map_err(|e| StoreError::backend(what, e))?
}

#[cfg(test)]
mod tests {
    use std::thread::ThreadId;

    use super::*;

    fn thread_of_job() -> impl FnOnce(&Handle) -> StoreResult<ThreadId> + Send + 'static {
        |_| Ok(std::thread::current().id())
    }

    #[test]
    fn inline_only_when_nothing_else_could_run() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let here = std::thread::current().id();
        let alone = rt.block_on(run_blocking("test", thread_of_job())).expect("job");
        assert_eq!(alone, here, "a one-shot command runs its unit of work inline");
        let ran_on = rt.block_on(async {
            let ticker = tokio::spawn(tokio::time::sleep(std::time::Duration::from_millis(50)));
            let ran_on = run_blocking("test", thread_of_job()).await;
            ticker.await.expect("ticker");
            ran_on
        });
        assert_ne!(ran_on.expect("job"), here, "with another task alive it goes to the blocking pool");
    }

    #[test]
    fn a_multi_thread_runtime_always_uses_the_pool() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().expect("runtime");
        let here = std::thread::current().id();
        assert_ne!(rt.block_on(run_blocking("test", thread_of_job())).expect("job"), here);
    }
}
