//! Where changes come from: for now, polling the store every [`POLL`]. Cheap on every
//! backend: the newest builds (which covers the latest build of every matrix cell that
//! moves) and the running ones, compared by version with what the last look saw.
//! Replace this one function with a store change feed and nothing else changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use buildstate_core::{BuildId, BuildStatus};
use buildstate_store::BuildFilter;

use super::{BuildChange, Events};

/// How often the store is looked at: a change shows in an open page well within a
/// second.
pub const POLL: Duration = Duration::from_millis(300);

/// The newest builds looked at each time.
const NEWEST: usize = 500;

pub(super) async fn watch(hub: Arc<Events>) {
    let mut seen: Option<HashMap<BuildId, u64>> = None;
    loop {
        if !hub.keep_watching() {
            return;
        }
        match look(&hub).await {
            Ok(now) => {
                if let Some(before) = &seen {
                    for c in now.values().filter(|c| before.get(&c.id) != Some(&c.version)) {
                        hub.publish(c.clone());
                    }
                }
                seen = Some(now.into_iter().map(|(id, c)| (id, c.version)).collect());
            }
            // A store that cannot be reached now is retried at the next look; the
            // pages keep what they show.
            Err(e) => tracing::warn!(error = %e, "watching the store for changes failed"),
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn look(hub: &Events) -> Result<HashMap<BuildId, BuildChange>, buildstate_store::StoreError> {
    let newest =
        hub.store.list_builds(&BuildFilter { limit: Some(NEWEST), ..BuildFilter::default() }).await?;
    let running = hub
        .store
        .list_builds(&BuildFilter { status: Some(BuildStatus::Running), ..BuildFilter::default() })
        .await?;
    Ok(newest.iter().chain(&running).map(|b| (b.id, BuildChange::of(b))).collect())
}
