//! One store engine for every backend: the algorithm of each `Store` method, written
//! once over the primitives of [`Tx`], and `impl<B: Backend> Store for B`.

mod backend;
mod blocking;
mod builds;
mod catalog;
mod documents;
mod leases;
mod prune;
mod records;
mod stats;
mod store;
mod tokens;
mod webhooks;
mod workers;

pub use backend::{Backend, Mode, Tx, TxFuture, Work};
pub use blocking::run_blocking;
pub use workers::{FORGET_WORKERS_AFTER, WorkerList};

/// Wraps a unit of work over `args` into a [`Work`]: each run (a retry runs it again)
/// gets its own copy of the inputs, so the work owns everything it borrows and can move
/// to whatever thread the backend runs it on.
pub(crate) fn work<A, T, F>(args: A, f: F) -> Work<T>
where
    A: Clone + Send + Sync + 'static,
    T: Send + 'static,
    F: for<'t> Fn(&'t mut dyn Tx, &'t A) -> TxFuture<'t, T> + Copy + Send + Sync + 'static,
{
    Box::new(move |tx| {
        let args = args.clone();
        Box::pin(async move { f(tx, &args).await })
    })
}

/// Runs a unit of work's future to completion on a blocking thread. The primitives of
/// blocking backends (SQLite, files) never wait on anything async, so the future is
/// almost always ready on its first poll: polling it once directly saves entering the
/// runtime on every transition; a future that does pend is handed to `runtime`.
pub fn finish_on_this_thread<F: std::future::Future>(runtime: &tokio::runtime::Handle, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => runtime.block_on(fut),
    }
}
