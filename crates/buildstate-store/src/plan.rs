//! What every backend does the same way, written once.

use buildstate_core::{Build, BuildId, BuildNumber, Command, Lease, NewBuild, Outcome, apply};
use jiff::Timestamp;

use crate::{Guard, StoreError, StoreResult, check_fence};

/// Runs the transition rules for `apply`: the fencing rule against the build's held
/// lease (`lease`: `None` when no lease is held), the version precondition, the rules,
/// and the invariants of the result. Backends call this inside their transaction, on the
/// build row and lease they just read, and write the outcome only if that row is still
/// at `build.version`.
///
/// Fencing comes first: a runner that lost its build must hear "stop", not a version
/// conflict it might retry.
pub fn plan_transition(
    build: &Build,
    lease: Option<&Lease>,
    command: &Command,
    guard: Guard,
    now: Timestamp,
) -> StoreResult<Outcome> {
    check_guard(build, lease, guard, now)?;
    let outcome = apply(build, command, now)?;
    // A rule that produced an unreachable build is a bug; refuse to store it.
    outcome.build.check_invariants().map_err(|m| StoreError::Backend {
        context: "transition rules produced an invalid build",
        source: m.into(),
    })?;
    Ok(outcome)
}

/// The preconditions of every write to a build (transitions, artifacts, resolutions):
/// the fencing rule first — a runner that lost its build must hear "stop", not a version
/// conflict it might retry — then the expected version.
pub fn check_guard(build: &Build, lease: Option<&Lease>, guard: Guard, now: Timestamp) -> StoreResult<()> {
    check_fence(build, lease, guard, now)?;
    match guard.expected_version {
        Some(expected) if expected != build.version => {
            Err(StoreError::Conflict { build: build.number.clone(), expected, found: build.version })
        }
        _ => Ok(()),
    }
}

/// `<os>-<image>-<platform>-<yyyymmdd>-`: the prefix a per-day sequence number completes.
pub fn build_number_stem(new: &NewBuild, now: Timestamp) -> String {
    let date = now.strftime("%Y%m%d").to_string();
    BuildNumber::stem(new.os.as_str(), new.image_type.as_str(), new.platform.as_str(), &date)
}

/// Picks the build a reference means among `candidates` — the builds whose id or
/// number starts with it. An exact id or number wins; otherwise the prefix must be unique.
pub fn resolve_candidates(reference: &str, candidates: &[(BuildId, BuildNumber)]) -> StoreResult<BuildId> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(StoreError::BuildNotFound(String::new()));
    }
    let lower = reference.to_ascii_lowercase();
    if let Some((id, _)) =
        candidates.iter().find(|(id, number)| id.to_string() == lower || number.as_str() == reference)
    {
        return Ok(*id);
    }
    match candidates {
        [] => Err(StoreError::BuildNotFound(shorten(reference))),
        [(id, _)] => Ok(*id),
        many => {
            let shown: Vec<&str> = many.iter().take(5).map(|(_, n)| n.as_str()).collect();
            let more = if many.len() > 5 { ", …" } else { "" };
            Err(StoreError::AmbiguousRef {
                reference: shorten(reference),
                count: many.len(),
                candidates: format!("{}{more}", shown.join(", ")),
            })
        }
    }
}

fn shorten(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if clean.chars().count() > 80 {
        let mut t: String = clean.chars().take(80).collect();
        t.push('…');
        t
    } else {
        clean
    }
}

/// The current time as stores record it: truncated to whole microseconds, the finest
/// precision every backend (PostgreSQL's `timestamptz` included) keeps, so that a
/// document exported from any store imports back equal.
pub fn now() -> Timestamp {
    let t = Timestamp::now();
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}
