//! `webhook add|list|remove|deliveries`: endpoints that hear about builds' transitions.
//!
//! A transition writes one delivery per subscribed endpoint in its own transaction;
//! `buildstate serve` sends them, signed the Standard Webhooks way, and retries for a
//! day. The signing secret is printed once, by `add`; a URL is shown without its path
//! or query (a Slack URL's path is its key).

use buildstate_core::{
    Delivery, DeliveryState, NewWebhook, WebhookEvents, WebhookFormat, WebhookId, WebhookRecord,
};
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Add an endpoint and print its signing secret once
    Add {
        /// Where to POST events: http(s)://host[:port]/path
        url: String,
        /// Which events, comma-separated (failed,needs-intervention,delivered,…) or `all`
        #[arg(long, value_parser = parse_events)]
        events: WebhookEvents,
        /// The signing secret (whsec_…); one is made when absent. Prefer
        /// BUILDSTATE_WEBHOOK_SECRET: a flag is seen by `ps` and kept in shell history
        #[arg(long, env = "BUILDSTATE_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// standard (signed JSON) or slack (`{"text": …}` for an incoming webhook)
        #[arg(long, default_value = "standard", value_parser = parse_format)]
        format: WebhookFormat,
    },
    /// Every endpoint: id, URL (host only), events, format, failures in a row, state
    List,
    /// Remove an endpoint and its deliveries
    Remove {
        /// The endpoint's id (see `webhook list`)
        id: String,
    },
    /// Deliveries, newest first, with each attempt's outcome
    Deliveries {
        /// Only this endpoint's
        id: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
}

fn parse_events(raw: &str) -> Result<WebhookEvents, String> {
    raw.parse().map_err(|e: buildstate_core::WebhookError| e.to_string())
}

fn parse_format(raw: &str) -> Result<WebhookFormat, String> {
    raw.trim().to_ascii_lowercase().parse().map_err(|e: buildstate_core::ParseWordError| e.to_string())
}

/// An endpoint as scripts read it: never the secret, the URL without its path.
#[derive(Debug, Serialize)]
struct HookView {
    id: String,
    url: String,
    events: String,
    format: &'static str,
    created_at: Timestamp,
    consecutive_failures: u32,
    disabled_at: Option<Timestamp>,
    status: &'static str,
}

impl HookView {
    fn new(w: &WebhookRecord) -> Self {
        HookView {
            id: w.id.to_string(),
            url: w.shown_url(),
            events: w.events.to_string(),
            format: w.format.as_str(),
            created_at: w.created_at,
            consecutive_failures: w.consecutive_failures,
            disabled_at: w.disabled_at,
            status: if w.disabled_at.is_some() { "disabled" } else { "active" },
        }
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::Add { url, events, secret, format } => {
            add(ctx, NewWebhook { url, events, format, secret }).await
        }
        Args::List => list(ctx).await,
        Args::Remove { id } => remove(ctx, &id).await,
        Args::Deliveries { id, limit } => deliveries(ctx, id.as_deref(), limit).await,
    }
}

async fn add(ctx: &Ctx, new: NewWebhook) -> Result<(), CliError> {
    // Checked here too, so that a bad URL is refused before a server round trip, and its
    // message never echoes a secret.
    new.check().map_err(|e| CliError::usage(e.to_string()))?;
    let given = new.secret.is_some();
    let added = ctx.store.add_webhook(&new).await?;
    if ctx.json {
        #[derive(Serialize)]
        struct Added<'a> {
            #[serde(flatten)]
            webhook: HookView,
            /// The only time it is shown (absent when it was given).
            #[serde(skip_serializing_if = "Option::is_none")]
            secret: Option<&'a str>,
        }
        let secret = (!given).then_some(added.secret.as_str());
        return output::json(&Added { webhook: HookView::new(&added), secret });
    }
    if !given {
        output::line(&added.secret)?;
    }
    output::notice(format!(
        "webhook {} → {} for {} ({}){}; `buildstate serve` sends them, `buildstate webhook deliveries {}` shows how it went",
        added.id,
        added.shown_url(),
        added.events,
        added.format,
        if given { "" } else { ": the line above is its signing secret, shown only now" },
        added.id,
    ));
    Ok(())
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let hooks = ctx.store.webhooks().await?;
    if ctx.json {
        return output::json(&hooks.iter().map(HookView::new).collect::<Vec<_>>());
    }
    if hooks.is_empty() {
        return output::line(
            "no webhook; add one with `buildstate webhook add URL --events failed,delivered`",
        );
    }
    let mut t = output::table(&["ID", "URL", "EVENTS", "FORMAT", "FAILURES", "STATUS"]);
    for w in &hooks {
        let v = HookView::new(w);
        t.add_row(vec![
            v.id,
            v.url,
            v.events,
            v.format.to_owned(),
            v.consecutive_failures.to_string(),
            v.status.to_owned(),
        ]);
    }
    output::print_table(&t)
}

async fn remove(ctx: &Ctx, id: &str) -> Result<(), CliError> {
    let removed = ctx.store.remove_webhook(id).await?;
    if ctx.json {
        return output::json(&HookView::new(&removed));
    }
    // A confirmation for a person (`--quiet` drops it); `--json` is for scripts.
    output::notice(format!("removed webhook {} ({}) and its deliveries", removed.id, removed.shown_url()));
    Ok(())
}

/// A delivery as scripts read it: the body stays in the store.
#[derive(Debug, Serialize)]
struct DeliveryView<'a> {
    webhook: &'a str,
    event_id: &'a str,
    event: &'static str,
    build: &'a str,
    created_at: Timestamp,
    state: &'static str,
    attempts: &'a [buildstate_core::DeliveryAttempt],
    attempt_count: u32,
    next_attempt_at: Option<Timestamp>,
}

async fn deliveries(ctx: &Ctx, id: Option<&str>, limit: u32) -> Result<(), CliError> {
    let id: Option<WebhookId> = id
        .map(|raw| {
            raw.trim().parse().map_err(|e: buildstate_core::WebhookError| CliError::usage(e.to_string()))
        })
        .transpose()?;
    let all = ctx.store.deliveries(id.as_ref(), limit as usize).await?;
    if ctx.json {
        let views: Vec<DeliveryView<'_>> = all
            .iter()
            .map(|d| DeliveryView {
                webhook: d.webhook.as_str(),
                event_id: &d.event_id,
                event: d.event.as_str(),
                build: d.number.as_str(),
                created_at: d.created_at,
                state: d.state.as_str(),
                attempts: &d.attempts,
                attempt_count: d.attempt_count,
                next_attempt_at: d.next_attempt_at,
            })
            .collect();
        return output::json(&views);
    }
    if all.is_empty() {
        return output::line("no delivery yet: events are queued by transitions after a webhook is added");
    }
    let mut t =
        output::table(&["WEBHOOK", "EVENT", "BUILD", "AT", "STATE", "ATTEMPTS", "LAST OUTCOME", "NEXT"]);
    for d in &all {
        t.add_row(vec![
            d.webhook.to_string(),
            d.event.to_string(),
            d.number.to_string(),
            output::time(d.created_at),
            state_word(d),
            d.attempt_count.to_string(),
            last_outcome(d),
            output::opt_time(d.next_attempt_at),
        ]);
    }
    output::print_table(&t)?;
    if all.len() == limit as usize {
        output::notice(format!("showing the newest {limit}; --limit N shows more"));
    }
    Ok(())
}

fn state_word(d: &Delivery) -> String {
    match d.state {
        DeliveryState::Pending if d.attempt_count > 0 => "retrying".to_owned(),
        s => s.to_string(),
    }
}

fn last_outcome(d: &Delivery) -> String {
    let Some(a) = d.attempts.last() else { return "-".to_owned() };
    match (a.status, &a.error) {
        (Some(s), _) if a.delivered() => format!("HTTP {s}"),
        (Some(s), _) => format!("HTTP {s} ({} ms)", a.duration_ms),
        (None, Some(e)) => e.chars().take(60).collect(),
        (None, None) => "-".to_owned(),
    }
}
