//! The append-only history of a build, and the attempts derived from it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StateCode;
use crate::status::word_enum;

word_enum!(
    /// What a history event records.
    EventKind, "event kind", {
        Created => "created",
        Started => "started",
        Completed => "completed",
        Failed => "failed",
        Skipped => "skipped",
        Retried => "retried",
        Rewound => "rewound",
        Cancelled => "cancelled",
    }
);

/// One entry of a build's history. Events are only ever appended; `seq` runs 1, 2, 3, …
/// per build without gaps, which is how readers (and object-store copies) detect that
/// they hold a prefix of the truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
    /// The milestone the event is about (for a rewind: the code rewound to).
    pub state: StateCode,
    /// Attempt number at `state` (0 for events that are not attempts).
    pub attempt: u32,
    pub actor: String,
    /// For `completed`/`failed`: when the attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Error message, or the reason given for a retry, rewind, skip or cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the attempt's log is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// For a rewind: the code the build was at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_state: Option<StateCode>,
    /// A recorded override (retry past the limit, start over an open attempt).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

impl HistoryEvent {
    pub(crate) fn new(seq: u64, at: Timestamp, kind: EventKind, state: StateCode, actor: &str) -> Self {
        HistoryEvent {
            seq,
            at,
            kind,
            state,
            attempt: 0,
            actor: actor.to_owned(),
            started_at: None,
            duration_ms: None,
            exit_code: None,
            message: None,
            log: None,
            from_state: None,
            forced: false,
        }
    }
}

word_enum!(
    /// Where one attempt at a milestone ended up.
    AttemptStatus, "attempt status", {
        Started => "started",
        Completed => "completed",
        Failed => "failed",
        Skipped => "skipped",
    }
);

/// One attempt at one milestone, assembled from its `started` and closing events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    pub state: StateCode,
    pub number: u32,
    pub status: AttemptStatus,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// The attempts recorded in a history, oldest first.
pub fn attempts(history: &[HistoryEvent]) -> Vec<Attempt> {
    let mut out: Vec<Attempt> = Vec::new();
    for e in history {
        match e.kind {
            EventKind::Started => out.push(Attempt {
                state: e.state,
                number: e.attempt,
                status: AttemptStatus::Started,
                started_at: e.at,
                ended_at: None,
                duration_ms: None,
                exit_code: None,
                error: None,
                actor: e.actor.clone(),
                log: e.log.clone(),
            }),
            EventKind::Completed | EventKind::Failed | EventKind::Skipped => {
                let status = match e.kind {
                    EventKind::Completed => AttemptStatus::Completed,
                    EventKind::Failed => AttemptStatus::Failed,
                    _ => AttemptStatus::Skipped,
                };
                let open = out.iter_mut().rev().find(|a| {
                    a.state == e.state && a.number == e.attempt && a.status == AttemptStatus::Started
                });
                let error = if e.kind == EventKind::Failed { e.message.clone() } else { None };
                match open {
                    Some(a) => {
                        a.status = status;
                        a.ended_at = Some(e.at);
                        a.duration_ms = e.duration_ms;
                        a.exit_code = e.exit_code;
                        a.error = error;
                        a.log = e.log.clone().or(a.log.take());
                    }
                    None => out.push(Attempt {
                        state: e.state,
                        number: e.attempt,
                        status,
                        started_at: e.started_at.unwrap_or(e.at),
                        ended_at: Some(e.at),
                        duration_ms: e.duration_ms,
                        exit_code: e.exit_code,
                        error,
                        actor: e.actor.clone(),
                        log: e.log.clone(),
                    }),
                }
            }
            // Cancelling or rewinding a build ends its open attempt: it will never finish.
            EventKind::Cancelled | EventKind::Rewound => {
                let at_state = if e.kind == EventKind::Rewound { e.from_state } else { Some(e.state) };
                if let Some(a) = out
                    .iter_mut()
                    .rev()
                    .find(|a| Some(a.state) == at_state && a.status == AttemptStatus::Started)
                {
                    a.status = AttemptStatus::Failed;
                    a.ended_at = Some(e.at);
                    a.duration_ms = u64::try_from(e.at.as_millisecond() - a.started_at.as_millisecond()).ok();
                    a.error = Some(format!("{} while running", e.kind));
                }
            }
            EventKind::Created | EventKind::Retried => {}
        }
    }
    out
}
