//! Webhooks: what a build's transitions tell endpoints outside buildstate.
//!
//! A transition writes one [`Delivery`] per subscribed endpoint into the store's outbox
//! in the transaction that records it, so a crash never loses one; the server sends
//! each until the endpoint answers 2xx, with exponential backoff and jitter
//! ([`Delivery::after_attempt`]) for up to [`GIVE_UP_AFTER`], and disables an endpoint
//! after [`DISABLE_AFTER_FAILURES`] failed attempts in a row. Every attempt is kept on
//! the delivery. The event id is stable (`evt_<build id>_<seq>_<event>`), so a receiver
//! that sees one twice (at-least-once delivery) can drop the copy.
//!
//! Pure data and decisions: the store crate draws the secret and signs.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::status::word_enum;
use crate::{Build, BuildId, BuildNumber, BuildStatus, EventKind, HistoryEvent, hex};

/// An endpoint is given up after this many failed attempts in a row (any event).
pub const DISABLE_AFTER_FAILURES: u32 = 20;
/// A delivery is retried for this long after its event, then marked failed.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two attempts of one delivery.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Attempts kept on a delivery (the oldest are dropped): 24 h of backoff needs ~30.
pub const KEPT_ATTEMPTS: usize = 40;
/// Longest endpoint URL accepted.
pub const MAX_URL_BYTES: usize = 2048;
/// The prefix of a Standard Webhooks signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

word_enum!(
    /// What an endpoint can subscribe to: each history event kind, and two outcomes a
    /// person usually wants to hear about.
    WebhookEvent, "webhook event", {
        Created => "created",
        Started => "started",
        Completed => "completed",
        Failed => "failed",
        Skipped => "skipped",
        Retried => "retried",
        Rewound => "rewound",
        Cancelled => "cancelled",
        /// A failure left the build waiting for a person (retries exhausted, or a
        /// persistent failure).
        NeedsIntervention => "needs-intervention",
        /// The build completed its last milestone.
        Delivered => "delivered",
    }
);

impl WebhookEvent {
    fn of_kind(kind: EventKind) -> WebhookEvent {
        match kind {
            EventKind::Created => WebhookEvent::Created,
            EventKind::Started => WebhookEvent::Started,
            EventKind::Completed => WebhookEvent::Completed,
            EventKind::Failed => WebhookEvent::Failed,
            EventKind::Skipped => WebhookEvent::Skipped,
            EventKind::Retried => WebhookEvent::Retried,
            EventKind::Rewound => WebhookEvent::Rewound,
            EventKind::Cancelled => WebhookEvent::Cancelled,
        }
    }
}

word_enum!(
    /// The body an endpoint gets.
    WebhookFormat, "webhook format", {
        /// `{"type", "timestamp", "data"}`, signed the Standard Webhooks way.
        Standard => "standard",
        /// `{"text": …}` for a Slack incoming-webhook URL (signed too; Slack ignores it).
        Slack => "slack",
    }
);

word_enum!(
    /// Where one delivery stands.
    DeliveryState, "delivery state", {
        /// Not yet answered 2xx; sent again at `next_attempt_at`.
        Pending => "pending",
        /// An attempt was answered 2xx.
        Delivered => "delivered",
        /// Given up: no 2xx within [`GIVE_UP_AFTER`], or its endpoint was removed from
        /// service.
        Failed => "failed",
    }
);

/// The event kinds an endpoint subscribed to: a non-empty set, stored as `failed,delivered`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookEvents(BTreeSet<WebhookEventOrd>);

/// [`WebhookEvent`] in declaration order, for a set that lists as declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
struct WebhookEventOrd(usize);

impl WebhookEvents {
    pub fn all() -> WebhookEvents {
        WebhookEvents((0..WebhookEvent::ALL.len()).map(WebhookEventOrd).collect())
    }

    pub fn contains(&self, event: WebhookEvent) -> bool {
        self.iter().any(|e| e == event)
    }

    pub fn iter(&self) -> impl Iterator<Item = WebhookEvent> + '_ {
        self.0.iter().map(|o| WebhookEvent::ALL[o.0])
    }
}

/// A list that names no event, or an unknown one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("unknown webhook event `{0}`: use {list} (comma-separated), or `all`", list = event_words())]
    UnknownEvent(String),
    #[error("a webhook needs at least one event: {}", event_words())]
    NoEvent,
    #[error("not a webhook id: expected 12 lowercase hex digits (see `buildstate webhook list`)")]
    BadId,
    #[error("{0}")]
    BadUrl(String),
    #[error(
        "a webhook secret must be `whsec_` followed by base64 of 24 to 64 random bytes (leave --secret out to have one made)"
    )]
    BadSecret,
}

fn event_words() -> String {
    WebhookEvent::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
}

impl FromStr for WebhookEvents {
    type Err = WebhookError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = BTreeSet::new();
        let mut all = false;
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word.eq_ignore_ascii_case("all") {
                all = true;
                continue;
            }
            let lower = word.to_ascii_lowercase().replace('_', "-");
            let i = WebhookEvent::ALL
                .iter()
                .position(|e| e.as_str() == lower)
                .ok_or_else(|| WebhookError::UnknownEvent(crate::text::shorten(word, 40)))?;
            set.insert(WebhookEventOrd(i));
        }
        if all {
            return Ok(WebhookEvents::all());
        }
        if set.is_empty() { Err(WebhookError::NoEvent) } else { Ok(WebhookEvents(set)) }
    }
}

impl TryFrom<String> for WebhookEvents {
    type Error = WebhookError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<WebhookEvents> for String {
    fn from(e: WebhookEvents) -> String {
        e.to_string()
    }
}

impl fmt::Display for WebhookEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.iter().map(WebhookEvent::as_str).collect();
        f.write_str(&words.join(","))
    }
}

/// An endpoint's public id: 12 lowercase hex digits.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookId(String);

impl WebhookId {
    pub fn from_bytes(bytes: [u8; 6]) -> WebhookId {
        WebhookId(hex(&bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for WebhookId {
    type Err = WebhookError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() == 12 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok { Ok(WebhookId(s.to_owned())) } else { Err(WebhookError::BadId) }
    }
}

impl TryFrom<String> for WebhookId {
    type Error = WebhookError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<WebhookId> for String {
    fn from(id: WebhookId) -> String {
        id.0
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `webhook add` asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewWebhook {
    pub url: String,
    pub events: WebhookEvents,
    #[serde(default = "standard")]
    pub format: WebhookFormat,
    /// `whsec_…`; one is drawn when absent. Never shown again once added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn standard() -> WebhookFormat {
    WebhookFormat::Standard
}

impl NewWebhook {
    /// Refuses a URL that is not `http(s)://host…`, is longer than [`MAX_URL_BYTES`] or
    /// holds whitespace or control characters, and a malformed secret.
    pub fn check(&self) -> Result<(), WebhookError> {
        check_url(&self.url)?;
        if let Some(s) = &self.secret {
            check_secret(s)?;
        }
        Ok(())
    }
}

fn check_url(url: &str) -> Result<(), WebhookError> {
    let bad =
        |why: &str| Err(WebhookError::BadUrl(format!("webhook URL {why}: give http(s)://host[:port]/path")));
    if url.len() > MAX_URL_BYTES {
        return bad(&format!("is longer than {MAX_URL_BYTES} bytes"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("holds spaces or control characters");
    }
    let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else {
        return bad("must start with http:// or https://");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return bad("needs a host (and no user:password@)");
    }
    Ok(())
}

fn check_secret(s: &str) -> Result<(), WebhookError> {
    let body = s.strip_prefix(SECRET_PREFIX).ok_or(WebhookError::BadSecret)?;
    let ok = (32..=88).contains(&body.len())
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if ok { Ok(()) } else { Err(WebhookError::BadSecret) }
}

/// An endpoint as the store keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub url: String,
    pub events: WebhookEvents,
    pub format: WebhookFormat,
    /// The signing secret. The server needs it to sign, so the store keeps it (unlike a
    /// token's); it is never serialized — not in listings, not over the API, not in
    /// logs — and shown once, by `webhook add`.
    #[serde(skip)]
    #[schemars(skip)]
    pub secret: String,
    pub created_at: Timestamp,
    /// Failed attempts in a row of its longest-failing delivery since its last 2xx: 20
    /// means the receiver refused one event for ~11 h of backoff (not 20 queued events
    /// refused once each in a short outage). A 2xx resets it.
    pub consecutive_failures: u32,
    /// Set after [`DISABLE_AFTER_FAILURES`] failures in a row: nothing is sent or queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
}

impl fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("format", &self.format)
            .field("secret", &"<hidden>")
            .field("consecutive_failures", &self.consecutive_failures)
            .field("disabled_at", &self.disabled_at)
            .finish()
    }
}

impl WebhookRecord {
    pub fn new(id: WebhookId, new: NewWebhook, secret: String, now: Timestamp) -> WebhookRecord {
        WebhookRecord {
            id,
            url: new.url,
            events: new.events,
            format: new.format,
            secret,
            created_at: now,
            consecutive_failures: 0,
            disabled_at: None,
        }
    }

    /// Counts an attempt of `delivery` (as it stands after the attempt); disables the
    /// endpoint once one delivery has failed [`DISABLE_AFTER_FAILURES`] times in a row.
    pub fn after_attempt(&mut self, delivery: &Delivery, at: Timestamp) {
        if delivery.state == DeliveryState::Delivered {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.max(delivery.attempt_count);
            if self.consecutive_failures >= DISABLE_AFTER_FAILURES && self.disabled_at.is_none() {
                self.disabled_at = Some(at);
            }
        }
    }

    /// The URL as messages show it: scheme, host and path, never a query (which may hold
    /// a key, as Slack's and many others' do) — nor the secret path part of a Slack URL.
    pub fn shown_url(&self) -> String {
        shown_url(&self.url)
    }
}

/// The host and the first path segment, at most 24 characters of it, so that endpoints
/// can be told apart: `https://hooks.slack.com/services/T0/B0/xyz?k=v` →
/// `https://hooks.slack.com/services/…` (a Slack URL's key is its last segments; a
/// query often holds one too).
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let after = &rest[host.len()..];
    let path = after.strip_prefix('/').unwrap_or("");
    let first: String = path.split(['/', '?', '#']).next().unwrap_or("").chars().take(24).collect();
    let more = after.len() > first.len() + usize::from(after.starts_with('/'));
    let first = if first.is_empty() { String::new() } else { format!("/{first}") };
    format!("{scheme}://{host}{first}{}", if more { "/…" } else { "" })
}

/// What adding an endpoint answers: the record, and its secret, shown this once.
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AddedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookRecord,
    /// `whsec_…`: give it to the receiver to verify signatures; it is not shown again.
    pub secret: String,
}

impl fmt::Debug for AddedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddedWebhook").field("webhook", &self.webhook).field("secret", &"<hidden>").finish()
    }
}

/// One attempt to send a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryAttempt {
    pub at: Timestamp,
    /// The HTTP status the endpoint answered, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it did not count as delivered (no answer, a non-2xx status), short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl DeliveryAttempt {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// One event for one endpoint: the outbox row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    pub webhook: WebhookId,
    /// Stable for the event (`webhook-id`): the same on every attempt and endpoint.
    pub event_id: String,
    pub event: WebhookEvent,
    pub build: BuildId,
    pub number: BuildNumber,
    pub created_at: Timestamp,
    /// The body, fixed when the event was recorded (JSON text).
    pub payload: String,
    pub state: DeliveryState,
    /// When the next attempt is due (pending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// Every attempt, oldest first (the last [`KEPT_ATTEMPTS`]).
    pub attempts: Vec<DeliveryAttempt>,
    /// Attempts made, including any dropped from `attempts`.
    pub attempt_count: u32,
}

impl Delivery {
    /// Records `attempt` and decides what comes next: delivered, another attempt after
    /// a [`backoff`] at `pace`, or failed once [`GIVE_UP_AFTER`] has passed since the
    /// event.
    pub fn after_attempt(&mut self, attempt: DeliveryAttempt, pace: RetryPace) {
        let at = attempt.at;
        let delivered = attempt.delivered();
        self.attempts.push(attempt);
        if self.attempts.len() > KEPT_ATTEMPTS {
            self.attempts.remove(0);
        }
        self.attempt_count = self.attempt_count.saturating_add(1);
        if delivered {
            self.state = DeliveryState::Delivered;
            self.next_attempt_at = None;
            return;
        }
        let next = at + backoff(self.attempt_count, pace.jitter).mul_f64(pace.scale.clamp(0.0, 1.0));
        let give_up = self.created_at + GIVE_UP_AFTER;
        if next > give_up {
            self.state = DeliveryState::Failed;
            self.next_attempt_at = None;
        } else {
            self.next_attempt_at = Some(next);
        }
    }
}

/// How the next attempt's wait is drawn: `jitter` in `[0, 1)` spreads the retries of
/// many deliveries apart; `scale` (at most 1) shortens every wait, for tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPace {
    pub jitter: f64,
    pub scale: f64,
}

impl RetryPace {
    pub fn new(jitter: f64) -> RetryPace {
        RetryPace { jitter, scale: 1.0 }
    }
}

/// The wait after the `n`th failed attempt: 5 s × 2^(n−1), at most [`MAX_BACKOFF`],
/// then between 75 % and 125 % of that (`jitter` in `[0, 1)`), so that the retries of an
/// endpoint's many deliveries do not arrive together when it comes back.
pub fn backoff(n: u32, jitter: f64) -> Duration {
    let base = Duration::from_secs(5).saturating_mul(1u32 << n.saturating_sub(1).min(20));
    let capped = base.min(MAX_BACKOFF);
    capped.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// What an event tells an endpoint, before it is formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookNotice {
    pub event: WebhookEvent,
    pub event_id: String,
    pub at: Timestamp,
    pub seq: u64,
}

/// The webhook events of one transition: one per history event it appended, plus
/// `needs-intervention` when it left the build waiting for a person and `delivered`
/// when it completed the last milestone. `before` is the build as it was (None for a
/// create).
pub fn notices(before: Option<&Build>, after: &Build, events: &[HistoryEvent]) -> Vec<WebhookNotice> {
    let mut out = Vec::new();
    // The event's time as well as its number: `import --replace` can give a build a
    // history that numbers its events again from where the document left off.
    let id = |h: &HistoryEvent, e: WebhookEvent| {
        format!("evt_{}_{}_{}_{}", after.id, h.seq, h.at.as_microsecond(), e.as_str())
    };
    for h in events {
        let event = WebhookEvent::of_kind(h.kind);
        out.push(WebhookNotice { event, event_id: id(h, event), at: h.at, seq: h.seq });
    }
    let Some(last) = events.last() else { return out };
    let mut derived = |event: WebhookEvent| {
        out.push(WebhookNotice { event, event_id: id(last, event), at: last.at, seq: last.seq });
    };
    if after.needs_intervention && !before.is_some_and(|b| b.needs_intervention) {
        derived(WebhookEvent::NeedsIntervention);
    }
    if after.status == BuildStatus::Completed && !before.is_some_and(|b| b.status == BuildStatus::Completed) {
        derived(WebhookEvent::Delivered);
    }
    out
}

/// The body of `notice` for an endpoint of `format`. `history` is the event it came
/// from (the message and actor are taken from it).
pub fn payload(
    format: WebhookFormat,
    notice: &WebhookNotice,
    build: &Build,
    history: &HistoryEvent,
) -> String {
    let milestone = build.catalog.name_of(build.state);
    match format {
        WebhookFormat::Standard => serde_json::json!({
            "type": format!("build.{}", notice.event.as_str()),
            "timestamp": notice.at.to_string(),
            "data": {
                "event_id": notice.event_id,
                "build_id": build.id.to_string(),
                "number": build.number.as_str(),
                "platform": build.platform.as_str(),
                "os": build.os.as_str(),
                "image_type": build.image_type.as_str(),
                "state": build.state.get(),
                "milestone": milestone,
                "event_state": history.state.get(),
                "status": build.status.as_str(),
                "needs_intervention": build.needs_intervention,
                "attempt": history.attempt,
                "seq": history.seq,
                "actor": history.actor,
                "message": history.message,
                "ci_url": build.ci_url,
            }
        })
        .to_string(),
        WebhookFormat::Slack => {
            let mut text = format!(
                "buildstate: build {} ({} {} {}) {} at {} {} — {}",
                build.number,
                build.platform,
                build.os,
                build.image_type,
                notice.event.as_str(),
                history.state.get(),
                build.catalog.name_of(history.state),
                build.status.as_str(),
            );
            if let Some(m) = &history.message {
                text.push_str(": ");
                text.push_str(&crate::text::shorten(m, 300));
            }
            serde_json::json!({ "text": slack_escape(&text) }).to_string()
        }
    }
}

/// Slack's control characters as text: `<!channel>` or `<https://x|a link>` in a failure
/// message must not ping a channel or dress up a link as the bot's.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_parse_forgivingly_and_refuse_unknowns() {
        let e: WebhookEvents = "failed, Needs_Intervention,delivered".parse().unwrap();
        assert_eq!(e.to_string(), "failed,needs-intervention,delivered");
        assert_eq!("all".parse::<WebhookEvents>().unwrap(), WebhookEvents::all());
        assert!(
            matches!("faild".parse::<WebhookEvents>(), Err(WebhookError::UnknownEvent(w)) if w == "faild")
        );
        assert_eq!(",".parse::<WebhookEvents>(), Err(WebhookError::NoEvent));
        assert!(
            matches!("all,bogus".parse::<WebhookEvents>(), Err(WebhookError::UnknownEvent(w)) if w == "bogus"),
            "a typo beside `all` is still a typo"
        );
    }

    #[test]
    fn urls_and_secrets_are_checked() {
        let new = |url: &str, secret: Option<&str>| NewWebhook {
            url: url.into(),
            events: WebhookEvents::all(),
            format: WebhookFormat::Standard,
            secret: secret.map(Into::into),
        };
        assert!(new("https://example.com/hook", None).check().is_ok());
        assert!(new("http://127.0.0.1:9/x?y=1", None).check().is_ok());
        for bad in ["ftp://x", "https://", "https://a b", "https://u:p@host/", "x\n", &"h".repeat(3000)] {
            assert!(new(bad, None).check().is_err(), "{bad:?}");
        }
        assert!(new("https://x", Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).check().is_ok());
        assert_eq!(new("https://x", Some("hunter2")).check(), Err(WebhookError::BadSecret));
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        assert_eq!(backoff(1, 0.5), Duration::from_secs(5));
        assert_eq!(backoff(2, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(30, 0.5), MAX_BACKOFF);
        assert!(backoff(3, 0.0) < backoff(3, 0.99));
        assert!(backoff(3, 0.0) >= Duration::from_secs(15));
    }

    #[test]
    fn slack_text_cannot_ping_a_channel_or_dress_up_a_link() {
        assert_eq!(
            slack_escape("<!channel> <https://e|fix> &lt;"),
            "&lt;!channel&gt; &lt;https://e|fix&gt; &amp;lt;"
        );
    }

    #[test]
    fn endpoint_is_disabled_after_twenty_failures_in_a_row() {
        let mut r = WebhookRecord::new(
            WebhookId::from_bytes([1; 6]),
            NewWebhook {
                url: "https://x".into(),
                events: WebhookEvents::all(),
                format: WebhookFormat::Slack,
                secret: None,
            },
            "whsec_x".into(),
            Timestamp::UNIX_EPOCH,
        );
        let delivery = |attempts: u32, state: DeliveryState| Delivery {
            webhook: WebhookId::from_bytes([1; 6]),
            event_id: "evt".into(),
            event: WebhookEvent::Failed,
            build: BuildId::generate(0, 1),
            number: BuildNumber::try_from("b-1".to_owned()).unwrap(),
            created_at: Timestamp::UNIX_EPOCH,
            payload: "{}".into(),
            state,
            next_attempt_at: None,
            attempts: Vec::new(),
            attempt_count: attempts,
        };
        // A short outage: 30 queued events refused a few times each is no reason.
        for _ in 0..30 {
            for n in 1..=4 {
                r.after_attempt(&delivery(n, DeliveryState::Pending), Timestamp::UNIX_EPOCH);
            }
        }
        assert_eq!((r.consecutive_failures, r.disabled_at), (4, None));
        r.after_attempt(&delivery(5, DeliveryState::Delivered), Timestamp::UNIX_EPOCH);
        assert_eq!(r.consecutive_failures, 0, "a 2xx resets it");
        for n in 1..=20 {
            r.after_attempt(&delivery(n, DeliveryState::Pending), Timestamp::UNIX_EPOCH);
        }
        assert!(r.disabled_at.is_some(), "one event refused 20 times in a row");
        assert!(!format!("{r:?}").contains("whsec_x"));
        assert!(!serde_json::to_string(&r).unwrap().contains("whsec_x"));
    }

    #[test]
    fn a_delivery_backs_off_until_delivered_or_a_day_has_passed() {
        let t0 = Timestamp::UNIX_EPOCH;
        let mut d = Delivery {
            webhook: WebhookId::from_bytes([2; 6]),
            event_id: "evt_x".into(),
            event: WebhookEvent::Failed,
            build: BuildId::generate(0, 1),
            number: BuildNumber::try_from("b-1".to_owned()).unwrap(),
            created_at: t0,
            payload: "{}".into(),
            state: DeliveryState::Pending,
            next_attempt_at: Some(t0),
            attempts: Vec::new(),
            attempt_count: 0,
        };
        let refused = |at: Timestamp| DeliveryAttempt { at, status: Some(503), error: None, duration_ms: 1 };
        d.after_attempt(refused(t0), RetryPace::new(0.5));
        assert_eq!(d.next_attempt_at, Some(t0 + Duration::from_secs(5)));
        d.after_attempt(DeliveryAttempt { status: Some(204), ..refused(t0) }, RetryPace::new(0.5));
        assert_eq!((d.state, d.next_attempt_at, d.attempt_count), (DeliveryState::Delivered, None, 2));
        d.state = DeliveryState::Pending;
        d.after_attempt(refused(t0 + Duration::from_secs(24 * 3600 - 10)), RetryPace::new(0.5));
        assert_eq!(d.state, DeliveryState::Failed);
    }

    #[test]
    fn urls_are_shown_without_their_keys() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T0/B0/xyz"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(shown_url("http://h:1"), "http://h:1");
        assert_eq!(shown_url("http://h:1/fail3"), "http://h:1/fail3");
        assert_eq!(shown_url("http://h:1?k=secret"), "http://h:1/…");
        assert_eq!(shown_url("http://h:1/hook?k=secret"), "http://h:1/hook/…");
    }
}
