//! The resume decision: what to run next for a build, and why — what `buildstate
//! resume` prints and `GET /api/v1/builds/{ref}/resume` answers, decided once, here.
//! The answer carries its exit code (0 run the state given, 10 delivered, 11 needs a
//! person, 12 cancelled), so that a pipeline step can branch on it without parsing.

use serde::{Deserialize, Serialize};

use crate::{Build, BuildStatus, FailureClass, FailureRecord};

/// Why the decision is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResumeReason {
    /// Run the current milestone: nothing has been attempted at it yet.
    Next,
    /// An attempt at the current milestone is already open (another runner, or a crash).
    AttemptOpen,
    /// The last attempt failed and may be retried (`buildstate retry` first).
    Retry,
    Delivered,
    NeedsIntervention,
    Cancelled,
}

impl ResumeReason {
    /// The exit code of `buildstate resume` (pinned by the README's table).
    pub const fn exit_code(self) -> u8 {
        match self {
            ResumeReason::Next | ResumeReason::AttemptOpen | ResumeReason::Retry => 0,
            ResumeReason::Delivered => 10,
            ResumeReason::NeedsIntervention => 11,
            ResumeReason::Cancelled => 12,
        }
    }
}

/// The decision, as `resume --json` prints it and the API answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResumePlan {
    pub build: String,
    pub id: String,
    /// Whether there is a milestone to run (exit 0).
    pub run: bool,
    pub state: u8,
    pub state_name: String,
    pub status: BuildStatus,
    pub reason: ResumeReason,
    /// Attempts made at `state` so far.
    pub attempts: u32,
    pub message: String,
    /// The command to run next, if any.
    pub next_command: Option<String>,
    pub exit_code: u8,
}

/// `text` on one line (line breaks and tabs as spaces, other control characters as
/// `?`), at most `max` characters, the cut marked with `…`.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .trim_end()
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else if c.is_control() {
                '?'
            } else {
                c
            }
        })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn time(t: Option<jiff::Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}

/// Decides for `b`; `last_failure` is its newest failure record, if it failed.
pub fn resume_plan(b: &Build, last_failure: Option<&FailureRecord>) -> ResumePlan {
    let n = &b.number;
    let here = format!("{} ({})", b.state, b.state_name());
    let failed_because = last_failure.map_or_else(String::new, |f| {
        format!(" ({} {}: {})", f.info.class, f.info.failure_type, one_line(&f.info.message, 80))
    });
    let (reason, message, next_command) = match b.status {
        BuildStatus::Completed => {
            (ResumeReason::Delivered, format!("nothing to do: build {n} is delivered"), None)
        }
        BuildStatus::Cancelled => (
            ResumeReason::Cancelled,
            format!("build {n} was cancelled at {here}; to run it again, rewind it"),
            Some(format!("buildstate rewind {n} --to {} --reason \"…\"", b.state)),
        ),
        BuildStatus::Failed if b.needs_intervention => {
            let why = match last_failure.map(|f| f.info.class) {
                Some(FailureClass::Persistent) => "the failure is persistent",
                _ => "its retries are used up",
            };
            (
                ResumeReason::NeedsIntervention,
                format!(
                    "build {n} needs a person: attempt {} at {here} failed{failed_because} and {why}; fix the cause, then override with a recorded retry",
                    b.attempt
                ),
                Some(format!("buildstate retry {n} --force --reason \"…\"")),
            )
        }
        BuildStatus::Failed => (
            ResumeReason::Retry,
            format!(
                "retry: attempt {} failed{failed_because}; re-open the build with `buildstate retry {n}`, then run it",
                b.attempt
            ),
            Some(format!("buildstate retry {n}")),
        ),
        BuildStatus::Running if b.attempt_open() => (
            ResumeReason::AttemptOpen,
            format!(
                "attempt {} is already open since {}; complete or fail it, or start again with --force to abandon it",
                b.attempt,
                time(b.attempt_started_at)
            ),
            Some(format!("buildstate state complete {n} {}", b.state)),
        ),
        BuildStatus::Pending | BuildStatus::Running => (
            ResumeReason::Next,
            match b.catalog.codes().filter(|c| *c < b.state).last() {
                Some(prev) => format!("next milestone, after {prev} ({})", b.catalog.name_of(prev)),
                None => "first milestone: the build has not started".to_owned(),
            },
            Some(format!("buildstate state start {n} {}", b.state)),
        ),
    };
    ResumePlan {
        build: n.to_string(),
        id: b.id.to_string(),
        run: reason.exit_code() == 0,
        state: b.state.get(),
        state_name: b.state_name().to_owned(),
        status: b.status,
        reason,
        attempts: b.attempt,
        message,
        next_command,
        exit_code: reason.exit_code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> Build {
        crate::build::test_build()
    }

    #[test]
    fn each_status_has_its_answer_and_exit_code() {
        let mut b = build();
        let p = resume_plan(&b, None);
        assert_eq!((p.reason, p.exit_code, p.run), (ResumeReason::Next, 0, true));
        b.status = BuildStatus::Failed;
        b.attempt = 1;
        assert_eq!(resume_plan(&b, None).reason, ResumeReason::Retry);
        b.needs_intervention = true;
        assert_eq!(resume_plan(&b, None).exit_code, 11);
        b.needs_intervention = false;
        b.status = BuildStatus::Cancelled;
        assert_eq!(resume_plan(&b, None).exit_code, 12);
        b.status = BuildStatus::Completed;
        assert_eq!(resume_plan(&b, None).exit_code, 10);
    }

    #[test]
    fn a_failure_message_is_one_short_line() {
        assert_eq!(one_line("a\nb\tc\u{7}", 80), "a b c?");
        assert_eq!(one_line(&"x".repeat(100), 10), format!("{}…", "x".repeat(9)));
    }
}
