//! (f) The latency object-storage copies add to a transition: the same transitions on
//! the embedded store, without a copy and with `SyncedStore` pushing every change to a
//! directory target and (when the emulator is up) to S3, in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_core::{Command, StateCatalog};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Guard, Store};
use buildstate_sync::{Env, SyncTarget, SyncedStore, Syncer};

use crate::fixture;

pub struct Row {
    pub target: String,
    pub per_transition: Duration,
}

pub fn run(dir: &std::path::Path, s3_endpoint: Option<&str>, quick: bool) -> Result<Vec<Row>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let builds = if quick { 1 } else { 4 };
    let db = dir.join("sync.db");
    rt.block_on(fixture::builds(&db, 0))?;
    let local: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).map_err(|e| e.to_string())?);
    let mut targets: Vec<(String, Option<SyncTarget>)> = vec![("none (local only)".into(), None)];
    let file_url = format!("file://{}", dir.join("copies").display());
    std::fs::create_dir_all(dir.join("copies")).map_err(|e| e.to_string())?;
    targets.push((file_url.clone(), Some(SyncTarget::parse(&file_url).map_err(|e| e.to_string())?)));
    if let Some(endpoint) = s3_endpoint {
        let bucket = "buildstate-bench";
        // moto creates buckets on an unsigned PUT.
        let _ = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-X", "PUT", "-H", "content-type: text/plain"])
            .arg(format!("{endpoint}/{bucket}"))
            .status();
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let url = format!("s3://{bucket}/bench-{}", std::process::id());
        targets.push((url.clone(), Some(SyncTarget::parse_with_env(&url, env).map_err(|e| e.to_string())?)));
    }
    let mut rows = Vec::new();
    for (i, (name, target)) in targets.into_iter().enumerate() {
        let store: Arc<dyn Store> = match target {
            None => local.clone(),
            Some(t) => {
                let syncer =
                    Syncer::new(t, dir.join(format!("sync-state-{i}"))).map_err(|e| e.to_string())?;
                Arc::new(SyncedStore::new(local.clone(), Arc::new(syncer)))
            }
        };
        let (n, took) = rt.block_on(async {
            let mut n = 0u32;
            let mut took = Duration::ZERO;
            for _ in 0..builds {
                let id = fixture::create(store.as_ref()).await?;
                let start = Instant::now();
                for state in StateCatalog::default_catalog().codes() {
                    let done =
                        Command::Complete { state, actor: "bench".into(), exit_code: Some(0), log: None };
                    store.apply(id, &done, Guard::none()).await.map_err(|e| e.to_string())?;
                    n += 1;
                }
                took += start.elapsed();
            }
            Ok::<(u32, Duration), String>((n, took))
        })?;
        rows.push(Row { target: name, per_transition: took / n.max(1) });
    }
    Ok(rows)
}
