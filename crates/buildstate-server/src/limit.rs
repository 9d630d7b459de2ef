//! Failed sign-ins are limited per client address: after [`MAX_FAILURES`] refused tokens
//! within [`WINDOW`], that address gets 429 until the window has passed, so that nobody
//! can try tokens at the speed of the network. Successful requests are never counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals an address may have within [`WINDOW`].
pub const MAX_FAILURES: u32 = 30;
/// The window refusals are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond, windows that have passed are dropped first.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Default)]
pub struct FailedSignIns {
    by_address: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailedSignIns {
    /// How long `addr` must still wait, if it is over the limit.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let &(start, failures) = map.get(&addr)?;
        let left = WINDOW.checked_sub(now.duration_since(start)).filter(|d| !d.is_zero())?;
        (failures >= MAX_FAILURES).then_some(left)
    }

    /// Counts one refused token from `addr`.
    pub fn record(&self, addr: IpAddr, now: Instant) {
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = map.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_too_many_failures_until_its_window_passes() {
        let limit = FailedSignIns::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            limit.record(a, t0);
        }
        assert_eq!(limit.blocked(a, t0), None, "under the limit");
        limit.record(a, t0);
        assert!(limit.blocked(a, t0 + Duration::from_secs(1)).is_some_and(|d| d <= WINDOW));
        assert_eq!(limit.blocked(b, t0), None, "per address");
        assert_eq!(limit.blocked(a, t0 + WINDOW), None, "the window passed");
        limit.record(a, t0 + WINDOW);
        assert_eq!(limit.blocked(a, t0 + WINDOW), None, "a new window starts at one");
    }
}
