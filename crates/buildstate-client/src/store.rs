//! The store contract, one route per method: every rule is the server's (the same
//! engine), so this only says which route a call is and reads the answer back as the
//! types a local store returns.

use std::time::Duration;

use async_trait::async_trait;
use buildstate_core::{
    AddedWebhook, Artifact, Build, BuildDocument, BuildId, BuildParts, CatalogItem, CatalogKind, Command,
    Delivery, DeliveryAttempt, FailureRecord, HistoryEvent, Lease, LeaseRequest, LeaseToken, Name, NewBuild,
    NewWebhook, Outcome, TokenId, TokenRecord, WebhookId, WebhookRecord, WorkerBeat, WorkerRecord,
};
use buildstate_store::report::{Report, ReportRequest};
use buildstate_store::wire::Applied;
use buildstate_store::{
    BuildFilter, FailureFilter, Guard, ImportMode, PruneRule, Store, StoreError, StoreResult, WorkerList,
};
use jiff::Timestamp;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::HttpStore;

/// The most builds (or failure records) one answer holds: the server's bound.
const PAGE: usize = 1000;

fn kind_path(kind: CatalogKind) -> &'static str {
    match kind {
        CatalogKind::Platform => "platforms",
        CatalogKind::Os => "os-versions",
        CatalogKind::ImageType => "image-types",
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A lease as the server lists it: its generation, never its token.
#[derive(Deserialize)]
struct LeaseView {
    build_id: BuildId,
    owner: String,
    host: String,
    pid: u32,
    generation: u64,
    acquired_at: Timestamp,
    renewed_at: Timestamp,
    expires_at: Timestamp,
}

impl From<LeaseView> for Lease {
    fn from(v: LeaseView) -> Lease {
        Lease {
            build_id: v.build_id,
            owner: v.owner,
            host: v.host,
            pid: v.pid,
            // Redacted: it names the grant, and no write is accepted under it.
            token: LeaseToken::of_generation(v.generation),
            acquired_at: v.acquired_at,
            renewed_at: v.renewed_at,
            expires_at: v.expires_at,
        }
    }
}

#[derive(Deserialize)]
struct Page {
    builds: Vec<Build>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct Workers {
    now: Timestamp,
    workers: Vec<WorkerRecord>,
}

impl HttpStore {
    /// A build by reference; an empty one is no build (its route would be the list).
    async fn get_build(&self, reference: &str) -> StoreResult<Build> {
        if reference.is_empty() {
            return Err(StoreError::BuildNotFound(String::new()));
        }
        self.request(Method::GET, &["builds", reference]).send().await
    }

    fn beat_body(beat: &WorkerBeat) -> serde_json::Value {
        json!({
            "name": beat.name,
            "host": beat.host,
            "pid": beat.pid,
            "heartbeat_ms": millis(beat.heartbeat),
            "build": beat.build,
            "starting": beat.starting,
        })
    }
}

#[async_trait]
impl Store for HttpStore {
    fn location(&self) -> String {
        self.shown().to_owned()
    }

    async fn add_catalog_item(&self, item: &CatalogItem) -> StoreResult<()> {
        self.request(Method::POST, &["catalog", kind_path(item.kind())]).json(item).send_empty().await
    }

    async fn catalog(&self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.request(Method::GET, &["catalog", kind_path(kind)]).send().await
    }

    async fn catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
        self.request(Method::GET, &["catalog", kind_path(kind), name.as_str()]).send().await
    }

    async fn remove_catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        self.request(Method::DELETE, &["catalog", kind_path(kind), name.as_str()]).send_empty().await
    }

    async fn create_build(&self, new: &NewBuild) -> StoreResult<Build> {
        let body = json!({
            "platform": new.platform,
            "os": new.os,
            "image_type": new.image_type,
            "number": new.number,
            "ci_url": new.ci_url,
            "metadata": new.metadata,
            "catalog": new.catalog,
        });
        self.request(Method::POST, &["builds"]).actor(&new.created_by).json(&body).send().await
    }

    async fn build(&self, id: BuildId) -> StoreResult<Build> {
        self.get_build(&id.to_string()).await
    }

    async fn find_build(&self, reference: &str) -> StoreResult<Build> {
        self.get_build(reference).await
    }

    async fn list_builds(&self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        // A time to come selects nothing, as in any store; the API refuses one as the
        // likely typo it is for a person, so it is not asked.
        if filter.since.is_some_and(|t| t > buildstate_store::now()) {
            return Ok(Vec::new());
        }
        let mut builds: Vec<Build> = Vec::new();
        let mut after = filter.after.map(|(at, id)| format!("{}.{id}", at.as_microsecond()));
        loop {
            let want = filter.limit.map_or(PAGE, |l| (l - builds.len().min(l)).min(PAGE));
            if want == 0 {
                return Ok(builds);
            }
            let page: Page = self
                .request(Method::GET, &["builds"])
                .query("status", filter.status)
                .query("platform", filter.platform.as_ref())
                .query("os", filter.os.as_ref())
                .query("image", filter.image_type.as_ref())
                .query("state", filter.state)
                .query("since", filter.since)
                .query("needs_intervention", filter.needs_intervention)
                .query("limit", Some(want))
                .query("after", after.take())
                .send()
                .await?;
            builds.extend(page.builds);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(builds),
            }
        }
    }

    async fn apply(&self, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome> {
        let id = id.to_string();
        let transition = |body: serde_json::Value, actor: &str| {
            self.request(Method::POST, &["builds", &id, "transitions"]).actor(actor).json(&body)
        };
        let call = match command {
            Command::Start { state, actor, log, force } => {
                transition(json!({"action": "start", "state": state, "log": log, "force": force}), actor)
            }
            Command::Complete { state, actor, exit_code, log } => transition(
                json!({"action": "complete", "state": state, "exit_code": exit_code, "log": log}),
                actor,
            ),
            Command::Fail { state, actor, failure, max_attempts, log } => transition(
                json!({
                    // Cut as the store cuts it (head and tail kept), here rather than
                    // there: a step's output of megabytes would be over the body limit.
                    "action": "fail", "state": state,
                    "error": buildstate_core::FailureInfo {
                        message: buildstate_core::clean_text(&failure.message, buildstate_core::MAX_MESSAGE_BYTES),
                        ..failure.clone()
                    },
                    "max_attempts": max_attempts, "log": log,
                }),
                actor,
            ),
            Command::Skip { state, actor, reason } => {
                transition(json!({"action": "skip", "state": state, "reason": reason}), actor)
            }
            Command::Retry { actor, reason, force } => {
                transition(json!({"action": "retry", "reason": reason, "force": force}), actor)
            }
            Command::Rewind { to, actor, reason } => {
                transition(json!({"action": "rewind", "to": to, "reason": reason}), actor)
            }
            Command::Cancel { actor, reason } => self
                .request(Method::POST, &["builds", &id, "cancel"])
                .actor(actor)
                .json(&json!({ "reason": reason })),
            Command::SetMeta { key, value: Some(value) } => self
                .request(Method::PUT, &["builds", &id, "metadata", key.as_str()])
                .json(&json!({ "value": value })),
            Command::SetMeta { key, value: None } => {
                self.request(Method::DELETE, &["builds", &id, "metadata", key.as_str()])
            }
        };
        let applied: Applied = call.guard(guard).send().await?;
        Ok(applied.into())
    }

    async fn history(&self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.request(Method::GET, &["builds", &id.to_string(), "history"]).send().await
    }

    async fn acquire_lease(&self, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
        let body = json!({
            "owner": request.owner, "host": request.host, "pid": request.pid,
            "ttl_ms": millis(request.ttl),
        });
        self.request(Method::POST, &["builds", &id.to_string(), "lease"]).json(&body).send().await
    }

    async fn take_over_lease(
        &self,
        id: BuildId,
        request: &LeaseRequest,
        dead: LeaseToken,
    ) -> StoreResult<Lease> {
        let body = json!({
            "owner": request.owner, "host": request.host, "pid": request.pid,
            "ttl_ms": millis(request.ttl), "take_over": dead,
        });
        self.request(Method::POST, &["builds", &id.to_string(), "lease"]).json(&body).send().await
    }

    async fn renew_lease(&self, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease> {
        let body = json!({ "token": token, "ttl_ms": millis(ttl) });
        self.request(Method::POST, &["builds", &id.to_string(), "lease", "renew"]).json(&body).send().await
    }

    async fn release_lease(&self, id: BuildId, token: LeaseToken) -> StoreResult<()> {
        let body = json!({ "token": token });
        self.request(Method::POST, &["builds", &id.to_string(), "lease", "release"])
            .json(&body)
            .send_empty()
            .await
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        let views: Vec<LeaseView> = self.request(Method::GET, &["leases"]).send().await?;
        Ok(views.into_iter().map(Lease::from).collect())
    }

    async fn break_lease(&self, id: BuildId) -> StoreResult<Option<Lease>> {
        let view: Option<LeaseView> =
            self.request(Method::POST, &["builds", &id.to_string(), "lease", "break"]).send().await?;
        Ok(view.map(Lease::from))
    }

    async fn failures(&self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        let id = filter.build.map(|b| b.to_string());
        let call = match &id {
            Some(id) => self.request(Method::GET, &["builds", id, "failures"]),
            None => self.request(Method::GET, &["failures"]),
        };
        call.query("unresolved", filter.unresolved_only.then_some(true))
            .query("state", filter.state)
            .query("type", filter.failure_type.as_ref())
            // No limit is the most the server gives: the newest thousand.
            .query("limit", Some(filter.limit.unwrap_or(PAGE).min(PAGE)))
            .send()
            .await
    }

    async fn resolve_failures(
        &self,
        id: BuildId,
        number: Option<u32>,
        notes: &str,
        guard: Guard,
    ) -> StoreResult<Vec<FailureRecord>> {
        let body = json!({ "number": number, "notes": notes });
        self.request(Method::POST, &["builds", &id.to_string(), "failures", "resolve"])
            .guard(guard)
            .json(&body)
            .send()
            .await
    }

    async fn add_artifact(&self, id: BuildId, artifact: &Artifact, guard: Guard) -> StoreResult<()> {
        let mut body = json!({
            "name": artifact.name, "kind": artifact.kind, "uri": artifact.uri,
            "region": artifact.region, "size_bytes": artifact.size_bytes, "sha256": artifact.sha256,
        });
        // Only when there is one: a server from before artifacts had a cloud refuses the
        // unknown field, and an artifact without one is what it would record anyway.
        if let Some(cloud) = &artifact.cloud {
            body["cloud"] = json!(cloud);
        }
        self.request(Method::POST, &["builds", &id.to_string(), "artifacts"])
            .guard(guard)
            .json(&body)
            .send_empty()
            .await
    }

    async fn artifacts(&self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.request(Method::GET, &["builds", &id.to_string(), "artifacts"]).send().await
    }

    async fn worker_beat(&self, beat: &WorkerBeat) -> StoreResult<Option<WorkerRecord>> {
        self.request(Method::POST, &["workers", "beat"]).json(&Self::beat_body(beat)).send().await
    }

    async fn worker_exited(&self, beat: &WorkerBeat) -> StoreResult<()> {
        self.request(Method::POST, &["workers", "exited"]).json(&Self::beat_body(beat)).send_empty().await
    }

    async fn workers(&self, within: Duration) -> StoreResult<WorkerList> {
        let w: Workers =
            self.request(Method::GET, &["workers"]).query("within_ms", Some(millis(within))).send().await?;
        Ok(WorkerList { now: w.now, workers: w.workers })
    }

    async fn export_build(&self, id: BuildId) -> StoreResult<BuildDocument> {
        self.request(Method::GET, &["builds", &id.to_string(), "export"]).send().await
    }

    async fn import_build(&self, parts: BuildParts, mode: ImportMode) -> StoreResult<Build> {
        let doc = BuildDocument::from_parts(parts);
        self.request(Method::POST, &["import"])
            .query("replace", (mode == ImportMode::Replace).then_some(true))
            .json(&doc)
            .send()
            .await
    }

    async fn prune_build(&self, id: BuildId, rule: &PruneRule) -> StoreResult<Option<BuildDocument>> {
        let body = json!({ "statuses": rule.statuses(), "ended_before": rule.ended_before() });
        self.request(Method::POST, &["builds", &id.to_string(), "prune"]).json(&body).send().await
    }

    async fn create_token(&self, token: &TokenRecord) -> StoreResult<TokenRecord> {
        self.request(Method::POST, &["tokens"]).json(token).send().await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.request(Method::GET, &["tokens"]).send().await
    }

    async fn token(&self, id: &TokenId) -> StoreResult<Option<TokenRecord>> {
        self.request(Method::GET, &["tokens", &id.to_string()]).send().await
    }

    async fn revoke_token(&self, reference: &str) -> StoreResult<TokenRecord> {
        if reference.is_empty() {
            return Err(StoreError::TokenNotFound(String::new()));
        }
        self.request(Method::POST, &["tokens", reference, "revoke"]).send().await
    }

    async fn add_webhook(&self, new: &NewWebhook) -> StoreResult<WebhookRecord> {
        let added: AddedWebhook = self.request(Method::POST, &["webhooks"]).json(new).send().await?;
        Ok(WebhookRecord { secret: added.secret, ..added.webhook })
    }

    async fn webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        self.request(Method::GET, &["webhooks"]).send().await
    }

    async fn remove_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
        if id.trim().is_empty() {
            return Err(StoreError::WebhookNotFound(String::new()));
        }
        self.request(Method::DELETE, &["webhooks", id.trim()]).send().await
    }

    async fn deliveries(&self, webhook: Option<&WebhookId>, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.request(Method::GET, &["webhooks", "deliveries"])
            .query("webhook", webhook)
            .query("limit", Some(limit))
            .send()
            .await
    }

    // The server sends its own outbox; a client never claims deliveries.
    async fn claim_deliveries(&self, _: usize, _: Duration) -> StoreResult<Vec<(Delivery, WebhookRecord)>> {
        Err(StoreError::InvalidInput("webhook deliveries are sent by the server itself".into()))
    }

    async fn record_delivery(
        &self,
        _: &WebhookId,
        _: &str,
        _: &DeliveryAttempt,
        _: buildstate_core::RetryPace,
    ) -> StoreResult<Option<Delivery>> {
        Err(StoreError::InvalidInput("webhook deliveries are sent by the server itself".into()))
    }

    // What `/metrics` reads from its own store; a client scrapes `/metrics` instead.
    async fn duration_buckets(&self) -> StoreResult<Vec<buildstate_store::report::DurationRow>> {
        Err(StoreError::InvalidInput("milestone duration buckets are the server's: read its /metrics".into()))
    }

    async fn report(&self, request: &ReportRequest) -> StoreResult<Report> {
        let f = &request.filter;
        let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
        let rates: Vec<String> = request.rates.iter().map(|(p, r)| format!("{p}={r}")).collect();
        let body = self
            .request(Method::GET, &["reports", request.name.as_str()])
            .query("since", f.since)
            .query("platform", f.platform.as_ref())
            .query("os", f.os.as_ref())
            .query("image", f.image_type.as_ref())
            .query("pipeline", f.pipeline.as_ref())
            .query("status", (!statuses.is_empty()).then(|| statuses.join(",")))
            .query("threshold", Some(request.threshold))
            .query("from", request.from)
            .query("rates", (!rates.is_empty()).then(|| rates.join(",")))
            .exchange()
            .await?;
        Report::from_json(&body)
            .map_err(|e| StoreError::Backend { context: "reading the server's report", source: e.into() })
    }
}
