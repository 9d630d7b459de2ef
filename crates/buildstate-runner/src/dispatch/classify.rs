//! Turning a step's end into a failure record: type, class, message, details.

use std::collections::BTreeMap;

use buildstate_core::{FailureClass, FailureInfo, FailureType};

use crate::executor::{StepEnd, StepResult};
use crate::integrate::StepReport;
use crate::pipeline::{Program, Step};

/// The failure record for a step that did not succeed.
pub fn failure_for(step: &Step, result: &StepResult) -> FailureInfo {
    let (failure_type, class, message) = match &result.end {
        StepEnd::TimedOut => (
            FailureType::timeout(),
            FailureClass::Transient,
            format!("timed out after {}", human(step.timeout.unwrap_or_default())),
        ),
        StepEnd::Interrupted(sig) => (
            FailureType::interrupted(),
            FailureClass::Transient,
            format!("interrupted by {}", signal_name(*sig)),
        ),
        StepEnd::SpawnFailed(why) => (tool_type(&step.program), FailureClass::Persistent, why.clone()),
        StepEnd::Exited(code) => (
            tool_type(&step.program),
            step.retry.transient.classify(Some(*code), &result.tail),
            with_last_line(format!("exited with {code}"), &result.tail),
        ),
        StepEnd::Signaled(sig) => (
            tool_type(&step.program),
            step.retry.transient.classify(None, &result.tail),
            with_last_line(format!("killed by {}", signal_name(*sig)), &result.tail),
        ),
    };
    let mut details = BTreeMap::new();
    details.insert("command".to_owned(), serde_json::Value::String(describe(&step.program)));
    details.insert("log".to_owned(), serde_json::Value::String(result.log.display().to_string()));
    // Escaped as every free text is (colour codes, CR progress bars, NUL): the raw tail
    // is in the log. Its length is already bounded by the executor.
    let tail = buildstate_core::clean_text(&result.tail, usize::MAX);
    details.insert("tail".to_owned(), serde_json::Value::String(tail));
    details.insert("duration_ms".to_owned(), serde_json::Value::from(result.duration.as_millis() as u64));
    FailureInfo { failure_type, class, component: None, message, details, exit_code: result.exit_code() }
}

/// The failure of a step that left a [`StepReport`]: the tool's type, component,
/// message and details over the runner's record (command, log, tail, duration). The
/// class is the step's policy's, as for any step — transient also when the tool says so
/// (an unreachable host).
pub fn with_report(
    mut failure: FailureInfo,
    report: Option<StepReport>,
    step: &Step,
    result: &StepResult,
) -> FailureInfo {
    let Some(told) = report.and_then(|r| r.failure) else {
        return failure;
    };
    let text = format!("{}\n{}", result.tail, told.message);
    let by_policy = step.retry.transient.classify(result.exit_code(), &text);
    failure.class = if told.class == FailureClass::Transient || by_policy == FailureClass::Transient {
        FailureClass::Transient
    } else {
        FailureClass::Persistent
    };
    // A timeout or an interruption is what ended the step, whatever the tool said last.
    if !matches!(result.end, StepEnd::TimedOut | StepEnd::Interrupted(_)) {
        failure.failure_type = told.failure_type;
        failure.message = buildstate_core::clean_text(&told.message, 2000);
    }
    failure.component = told.component.or(failure.component);
    for (k, v) in told.details {
        failure.details.entry(k).or_insert(v);
    }
    failure
}

/// `packer` and `ansible` failures are told apart from script failures by the program
/// the step runs, so that reports can group them without configuration.
fn tool_type(program: &Program) -> FailureType {
    let text = describe(program);
    let first = text.split_whitespace().next().unwrap_or("");
    let base = first.rsplit('/').next().unwrap_or(first);
    let word = if base == "packer" {
        "packer"
    } else if base.starts_with("ansible") {
        "ansible"
    } else {
        "script"
    };
    word.parse().unwrap_or_else(|_| FailureType::unknown())
}

/// A one-line rendering of what a step runs.
pub(crate) fn describe(program: &Program) -> String {
    match program {
        Program::Shell(s) => s.clone(),
        Program::Argv(v) => v.join(" "),
        Program::Script(p) => p.display().to_string(),
        Program::Tool(tool) => tool.to_string(),
    }
}

fn with_last_line(head: String, tail: &str) -> String {
    match tail.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!("{head}: {line}"),
        None => head,
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        2 => "SIGINT".to_owned(),
        9 => "SIGKILL".to_owned(),
        15 => "SIGTERM".to_owned(),
        n => format!("signal {n}"),
    }
}

fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
