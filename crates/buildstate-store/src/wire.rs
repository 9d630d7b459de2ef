//! A [`StoreError`] as the HTTP API sends it (the `detail` of an error answer), so that
//! a client of the server gets back the very error the server's store returned: the CLI
//! through `--server` branches on it (a runner that lost its lease stops, a held lease
//! is waited for) and words it exactly as it does against a local store.
//!
//! Two kinds never cross: a backend fault and an unusable store carry the server's
//! paths and driver text, which stay in the server's log. And a lease that somebody
//! else holds crosses without the secret part of its token
//! ([`LeaseToken::redacted`](buildstate_core::LeaseToken::redacted)), which would let
//! the reader write under it.

use buildstate_core::{
    Build, BuildNumber, CatalogKind, DocumentError, FailureRecord, HistoryEvent, Lease, LeaseToken, Outcome,
    Rejection,
};
use serde::{Deserialize, Serialize};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireError {
    BuildNotFound { reference: String },
    AmbiguousRef { reference: String, count: usize, candidates: String },
    CatalogItemNotFound { catalog: CatalogKind, name: String, known: String },
    CatalogItemInUse { catalog: CatalogKind, name: String, builds: u64 },
    TokenNotFound { reference: String },
    WebhookNotFound { reference: String },
    AlreadyExists { what: String, key: String },
    FailureNotFound { build: BuildNumber, number: u32 },
    Rejected { rejection: Rejection },
    Conflict { build: BuildNumber, expected: u64, found: u64 },
    LeaseHeld { build: BuildNumber, lease: Lease },
    StaleLease { build: BuildNumber, token: LeaseToken, current: Option<Lease> },
    InvalidInput { message: String },
    Document { error: DocumentError },
    Busy { waited_ms: u64 },
}

/// `lease` as a client other than its holder may see it.
fn redacted(lease: &Lease) -> Lease {
    Lease { token: lease.token.redacted(), ..lease.clone() }
}

impl WireError {
    /// What of `e` may be sent; `None` for the kinds that stay on the server.
    pub fn of(e: &StoreError) -> Option<WireError> {
        use StoreError as E;
        Some(match e {
            E::BuildNotFound(r) => WireError::BuildNotFound { reference: r.clone() },
            E::AmbiguousRef { reference, count, candidates } => WireError::AmbiguousRef {
                reference: reference.clone(),
                count: *count,
                candidates: candidates.clone(),
            },
            E::CatalogItemNotFound { kind, name, known } => {
                WireError::CatalogItemNotFound { catalog: *kind, name: name.clone(), known: known.clone() }
            }
            E::CatalogItemInUse { kind, name, builds } => {
                WireError::CatalogItemInUse { catalog: *kind, name: name.clone(), builds: *builds }
            }
            E::TokenNotFound(r) => WireError::TokenNotFound { reference: r.clone() },
            E::WebhookNotFound(r) => WireError::WebhookNotFound { reference: r.clone() },
            E::AlreadyExists { what, key } => {
                WireError::AlreadyExists { what: (*what).to_owned(), key: key.clone() }
            }
            E::FailureNotFound { build, number } => {
                WireError::FailureNotFound { build: build.clone(), number: *number }
            }
            E::Rejected(r) => WireError::Rejected { rejection: r.clone() },
            E::Conflict { build, expected, found } => {
                WireError::Conflict { build: build.clone(), expected: *expected, found: *found }
            }
            E::LeaseHeld { build, lease } => {
                WireError::LeaseHeld { build: build.clone(), lease: redacted(lease) }
            }
            E::StaleLease { build, token, current } => WireError::StaleLease {
                build: build.clone(),
                // The caller's own token: it sent it.
                token: *token,
                current: current.as_deref().map(redacted),
            },
            E::InvalidInput(m) => WireError::InvalidInput { message: m.clone() },
            E::Document(d) => WireError::Document { error: d.clone() },
            E::Busy { waited_ms } => WireError::Busy { waited_ms: *waited_ms },
            E::Unavailable { .. } | E::Backend { .. } | E::Denied { .. } => return None,
        })
    }
}

impl From<WireError> for StoreError {
    fn from(w: WireError) -> Self {
        use StoreError as E;
        match w {
            WireError::BuildNotFound { reference } => E::BuildNotFound(reference),
            WireError::AmbiguousRef { reference, count, candidates } => {
                E::AmbiguousRef { reference, count, candidates }
            }
            WireError::CatalogItemNotFound { catalog, name, known } => {
                E::CatalogItemNotFound { kind: catalog, name, known }
            }
            WireError::CatalogItemInUse { catalog, name, builds } => {
                E::CatalogItemInUse { kind: catalog, name, builds }
            }
            WireError::TokenNotFound { reference } => E::TokenNotFound(reference),
            WireError::WebhookNotFound { reference } => E::WebhookNotFound(reference),
            WireError::AlreadyExists { what, key } => {
                E::AlreadyExists { what: buildstate_core::static_word(&what), key }
            }
            WireError::FailureNotFound { build, number } => E::FailureNotFound { build, number },
            WireError::Rejected { rejection } => E::Rejected(rejection),
            WireError::Conflict { build, expected, found } => E::Conflict { build, expected, found },
            WireError::LeaseHeld { build, lease } => E::LeaseHeld { build, lease: Box::new(lease) },
            WireError::StaleLease { build, token, current } => {
                E::StaleLease { build, token, current: current.map(Box::new) }
            }
            WireError::InvalidInput { message } => E::InvalidInput(message),
            WireError::Document { error } => E::Document(error),
            WireError::Busy { waited_ms } => E::Busy { waited_ms },
        }
    }
}

/// What a write of a build answers (`POST …/transitions`, `…/cancel`, metadata): the
/// build as it is now, with the history events and failure records the write appended
/// beside its fields — a client reading only the build reads it as a `Build`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Applied {
    #[serde(flatten)]
    pub build: Build,
    pub events: Vec<HistoryEvent>,
    pub failures: Vec<FailureRecord>,
}

impl From<Outcome> for Applied {
    fn from(o: Outcome) -> Self {
        Applied { build: o.build, events: o.events, failures: o.failures }
    }
}

impl From<Applied> for Outcome {
    fn from(a: Applied) -> Self {
        Outcome { build: a.build, events: a.events, failures: a.failures }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_crosses_without_its_secret_and_reads_back_as_the_same_error() {
        let at = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let lease = Lease {
            build_id: buildstate_core::BuildId::generate(1, 2),
            owner: "ci@runner-1".into(),
            host: "runner-1".into(),
            pid: 42,
            token: LeaseToken::first(0xabcdef),
            acquired_at: at,
            renewed_at: at,
            expires_at: at,
        };
        let e = StoreError::LeaseHeld {
            build: BuildNumber::new("7").expect("number"),
            lease: Box::new(lease.clone()),
        };
        let wire = WireError::of(&e).expect("sent");
        let json = serde_json::to_string(&wire).expect("json");
        assert!(!json.contains(&lease.token.get().to_string()), "the secret never crosses: {json}");
        let back: StoreError = serde_json::from_str::<WireError>(&json).expect("reads back").into();
        assert_eq!(back.to_string(), e.to_string(), "worded as the local error");
        let StoreError::LeaseHeld { lease: got, .. } = back else { panic!("same kind") };
        assert_eq!(got.token.generation(), lease.token.generation());
    }

    #[test]
    fn server_faults_never_cross() {
        let e = StoreError::Unavailable { location: "/srv/secret.db".into(), reason: "locked".into() };
        assert_eq!(WireError::of(&e), None);
        assert_eq!(WireError::of(&StoreError::backend("x", std::io::Error::other("disk"))), None);
    }

    #[test]
    fn rejections_and_static_words_read_back() {
        let errors = [
            StoreError::Rejected(Rejection::ReasonRequired {
                build: BuildNumber::new("3").expect("n"),
                action: buildstate_core::ReasonAction::Rewind,
            }),
            StoreError::AlreadyExists { what: "token id", key: "k".into() },
            StoreError::Document(DocumentError::Format("v9".into())),
        ];
        for e in errors {
            let json = serde_json::to_string(&WireError::of(&e).expect("sent")).expect("json");
            let back: StoreError = serde_json::from_str::<WireError>(&json).expect("reads back").into();
            assert_eq!(back.to_string(), e.to_string());
        }
    }
}
