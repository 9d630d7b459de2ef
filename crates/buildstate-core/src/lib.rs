//! The domain model of buildstate: state codes, catalogs, builds, attempts, failures,
//! retry policies and the transition rules.
//!
//! This crate is pure: no I/O, no clock, no randomness. Every function takes the time
//! (and, for backoff jitter, the random draw) as an argument, so the rules can be run
//! inside any store's transaction and tested exhaustively.

mod artifact;
mod build;
mod catalog;
mod command;
mod document;
mod failure;
mod gate;
mod history;
mod ids;
mod inventory;
mod lease;
mod replay;
mod resume;
mod retry;
mod rules;
mod state;
mod status;
mod text;
mod token;
mod webhook;
mod when;
mod worker;

pub use artifact::{Artifact, ArtifactKind, Sha256Hex, invalidated_by_rewind};
pub use build::{Build, NewBuild};
pub use catalog::{CatalogError, Milestone, StateCatalog};
pub use command::Command;
pub use document::{BuildDocument, BuildParts, DocumentError, FORMAT};
pub use failure::{FailureClass, FailureInfo, FailureRecord, FailureType, FailureTypeError};
pub use gate::{Gate, Until, gate, reached_at};
pub use history::{Attempt, AttemptStatus, EventKind, HistoryEvent, attempts};
pub use ids::{BuildId, BuildNumber, IdError, MAX_BUILD_NUMBER_BYTES};
pub use inventory::{CatalogItem, CatalogKind, ImageType, Name, NameError, OsVersion, Platform};
pub use lease::{Lease, LeaseRequest, LeaseToken};
pub use replay::MAX_UNTRACKED_CHANGES;
pub use resume::{ResumePlan, ResumeReason, resume_plan};
pub use retry::{Backoff, RetryPolicy, TransientMatch};
pub use rules::{Outcome, ReasonAction, Rejection, apply};
pub use state::{StateCode, StateCodeError};
pub use status::{BuildStatus, ParseWordError};
pub use text::{
    MAX_DETAILS_BYTES, MetaKey, MetaValue, TextError, clean_text, details_object, path_component, static_word,
};
pub use token::{
    Scope, Scopes, TOKEN_PREFIX, TokenError, TokenId, TokenRecord, TokenSecret, constant_time_eq, hex,
};
pub use webhook::{
    AddedWebhook, DISABLE_AFTER_FAILURES, Delivery, DeliveryAttempt, DeliveryState, GIVE_UP_AFTER,
    KEPT_ATTEMPTS, MAX_BACKOFF, MAX_URL_BYTES, NewWebhook, RetryPace, SECRET_PREFIX, WebhookError,
    WebhookEvent, WebhookEvents, WebhookFormat, WebhookId, WebhookNotice, WebhookRecord, backoff, notices,
    payload, shown_url,
};
pub use when::{Since, parse_duration, parse_since, parse_time};
pub use worker::{STALE_HEARTBEATS, WorkerBeat, WorkerRecord, WorkerState};

/// Longest stored error message; longer ones keep their head and tail (see `clean_text`).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest reason, note, display name or description.
pub const MAX_NOTE_BYTES: usize = 4 * 1024;
