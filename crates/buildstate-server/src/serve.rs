//! The accept loop: HTTP/1 connections with a deadline for their request headers, a cap
//! on how many are open, and a stop that finishes requests in flight but waits for them
//! only so long. (`axum::serve` has none of these knobs: a client that sends half a
//! request line and waits would otherwise hold a connection, and a stop, for ever.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A client has this long to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; beyond, new ones are closed at once (well under the open
/// file limit, so the listener and the store always have descriptors left).
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one client address may hold at once: a single client (or a single host
/// holding half-sent requests open) can never take every slot, while a proxy or a NAT
/// in front of many CI jobs still gets half of them.
pub const MAX_PER_ADDRESS: usize = MAX_CONNECTIONS / 2;
/// How long a stop waits for requests in flight before closing their connections.
pub const GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting,
/// finishes the requests in flight (for up to [`GRACE`]) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors, a reset before accept: wait a little, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(held) = PerAddress::take(&per_address, peer.ip()) else {
            tracing::warn!(%peer, "{MAX_PER_ADDRESS} connections from this address are open: closing a new one");
            continue;
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            tracing::warn!(%peer, "{MAX_CONNECTIONS} connections are open: closing a new one");
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // The peer's address, for limiting refused tokens per client.
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, req).await }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "a connection ended with an error");
            }
            drop(permit);
            drop(held);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE) => {
            tracing::warn!("requests were still open {} s after the stop: their connections are closed", GRACE.as_secs());
        }
    }
    Ok(())
}

/// Open connections by client address.
type Counts = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// One connection counted against its address; given back when dropped.
struct PerAddress {
    counts: Counts,
    ip: std::net::IpAddr,
}

impl PerAddress {
    /// Counts a connection from `ip`, unless it holds [`MAX_PER_ADDRESS`] already.
    fn take(counts: &Counts, ip: std::net::IpAddr) -> Option<PerAddress> {
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= MAX_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(PerAddress { counts: Arc::clone(counts), ip })
    }
}

impl Drop for PerAddress {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_half_the_connections() {
        let counts: Counts = Arc::default();
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<PerAddress> =
            (0..MAX_PER_ADDRESS).map(|_| PerAddress::take(&counts, a).unwrap()).collect();
        assert!(PerAddress::take(&counts, a).is_none(), "the address is at its cap");
        assert!(PerAddress::take(&counts, b).is_some(), "another address is not");
        drop(held);
        assert!(PerAddress::take(&counts, a).is_some(), "given back when they close");
        assert_eq!(counts.lock().unwrap().get(&b), None, "addresses without connections are forgotten");
    }
}
