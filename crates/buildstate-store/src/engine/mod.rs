//! One store engine for every backend: the algorithm of each `Store` method, written
//! once over the primitives of [`Tx`], and `impl<B: Backend> Store for B`.

mod backend;
mod builds;
mod catalog;
mod documents;
mod leases;
mod records;
mod store;

pub use backend::{Backend, Mode, Tx, TxFuture, Work};

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
