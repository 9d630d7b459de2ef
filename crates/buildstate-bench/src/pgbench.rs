//! (g) The PostgreSQL store against `pgbench` running the same statements with the same
//! number of clients: what the store costs on top of the database's own work.
//!
//! Each pgbench transaction is one transition as the store issues it, statement for
//! statement, each client on its own build (as the store's writers in (e) are): lock the
//! build row (`FOR NO KEY UPDATE`, all columns, as `LOCK_BUILD`), read its lease record,
//! compare-and-swap the row on `version`, append one history event, and for half of the
//! transactions (the store's writers alternate starts and completions) add the
//! completion to the report statistics, commit — prepared statements (`-M prepared`), as
//! tokio-postgres uses.

use std::process::Command;

use buildstate_postgres::PostgresStore;

use crate::fixture;

pub struct Baseline {
    pub clients: usize,
    pub tps: f64,
}

const SCRIPT: &str = r"BEGIN;
SELECT id, number, platform, os, image_type, catalog, state, status, needs_intervention, attempt, attempt_started_at, created_at, started_at, ended_at, updated_at, created_by, ci_url, metadata, version, history_len, failure_count FROM builds WHERE id = (SELECT id FROM bench_clients WHERE n = :client_id) FOR NO KEY UPDATE \gset b_
SELECT build_id, owner, host, pid, token, acquired_at, renewed_at, expires_at, released FROM leases WHERE build_id = :b_id;
UPDATE builds SET state = :b_state, status = 'running', needs_intervention = false, attempt = :b_attempt, attempt_started_at = now(), started_at = now(), ended_at = NULL, updated_at = now(), metadata = '{}', version = :b_version + 1, history_len = :b_history_len + 1, failure_count = :b_failure_count WHERE id = :b_id AND version = :b_version;
INSERT INTO events (build_id, seq, at, kind, state, attempt, actor, started_at, duration_ms, exit_code, message, log, from_state, forced) VALUES (:b_id, :b_history_len + 1, now(), 'started', :b_state, :b_attempt, 'bench', NULL, NULL, NULL, NULL, NULL, NULL, false);
\set completing random(0, 1)
\if :completing
INSERT INTO attempt_stats (platform, os, image_type, state, kind, bucket, attempts, total_ms, retries) VALUES (:b_platform, :b_os, :b_image_type, :b_state, 'completed', 0, 1, 0, 0) ON CONFLICT (platform, os, image_type, state, kind, bucket) DO UPDATE SET attempts = attempt_stats.attempts + excluded.attempts, total_ms = attempt_stats.total_ms + excluded.total_ms, retries = attempt_stats.retries + excluded.retries;
INSERT INTO duration_histogram (state, bucket, attempts, total_ms) VALUES (:b_state, 0, 1, 0) ON CONFLICT (state, bucket) DO UPDATE SET attempts = duration_histogram.attempts + excluded.attempts, total_ms = duration_histogram.total_ms + excluded.total_ms;
\endif
COMMIT;
";

/// pgbench with 1, 4 and 16 clients on a scratch schema of the store's own tables.
pub fn run(dir: &std::path::Path, url: &str, quick: bool) -> Result<Vec<Baseline>, String> {
    let schema = format!("bench_g_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let ids = rt.block_on(async {
        let store = PostgresStore::connect_with_schema(url, &schema)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        fixture::seed_catalog(&store).await?;
        let mut ids = Vec::new();
        for _ in 0..16 {
            ids.push(fixture::create(&store).await?);
        }
        Ok::<_, String>(ids)
    })?;
    let values: Vec<String> = ids.iter().enumerate().map(|(n, id)| format!("({n}, '{id}')")).collect();
    // The ids are UUIDs this process generated: nothing to escape.
    psql(
        url,
        &format!(
            "SET search_path = {schema}; CREATE TABLE bench_clients (n int PRIMARY KEY, id uuid NOT NULL); \
             INSERT INTO bench_clients VALUES {};",
            values.join(", ")
        ),
    )?;
    let script = dir.join("transition.sql");
    std::fs::write(&script, SCRIPT).map_err(|e| format!("cannot write the pgbench script: {e}"))?;
    let scoped = scoped_url(url, &schema);
    let seconds = if quick { "2" } else { "10" };
    let mut out = Vec::new();
    let result = (|| {
        for clients in [1usize, 4, 16] {
            let threads = clients.min(2).to_string();
            let run = Command::new("pgbench")
                .args(["-n", "-M", "prepared", "-f"])
                .arg(&script)
                .args(["-c", &clients.to_string(), "-j", &threads, "-T", seconds])
                .arg(&scoped)
                .output()
                .map_err(|e| format!("cannot run pgbench (it comes with PostgreSQL): {e}"))?;
            let text = String::from_utf8_lossy(&run.stdout);
            if !run.status.success() {
                return Err(format!("pgbench failed: {}{}", text, String::from_utf8_lossy(&run.stderr)));
            }
            let tps = text
                .lines()
                .find_map(|l| l.strip_prefix("tps = "))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .ok_or_else(|| format!("no tps in pgbench's output: {text}"))?;
            out.push(Baseline { clients, tps });
        }
        Ok(())
    })();
    let _ = psql(url, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    result.map(|()| out)
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("psql failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// `url` with `search_path` set to `schema` for every connection pgbench makes.
fn scoped_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}
