//! The step report: what a tool run as a pipeline step tells its runner about how it
//! failed (type, component, message, details), beyond an exit code and a log tail.
//! The runner names the file in [`STEP_REPORT_ENV`]; the tool writes it atomically.

use std::path::Path;

use buildstate_core::FailureInfo;
use serde::{Deserialize, Serialize};

/// The variable the runner sets for each step: where a tool may leave its report.
pub const STEP_REPORT_ENV: &str = "BUILDSTATE_STEP_REPORT";

/// The variable the runner sets for a tool step: the code of the pipeline's next step,
/// which the tool must not move the build to or past.
pub const STEP_UNTIL_ENV: &str = "BUILDSTATE_STEP_UNTIL";

/// [`STEP_UNTIL_ENV`] as this process got it, if it is a state code.
pub fn step_until() -> Option<buildstate_core::StateCode> {
    std::env::var(STEP_UNTIL_ENV).ok().and_then(|v| v.trim().parse().ok())
}

/// The largest report the runner reads: a report is a failure record, not a log.
const MAX_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureInfo>,
}

impl StepReport {
    /// Writes the report next to its final name and renames it over, so that the
    /// runner never reads half a report.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let body = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, path)
    }

    /// Reads and removes the report a step left, if any. A missing, oversized or
    /// malformed report is none: the runner then records the failure from the exit
    /// code and log tail alone, as for any other step.
    pub fn take(path: &Path) -> Option<StepReport> {
        let meta = std::fs::metadata(path).ok()?;
        let report = if meta.len() <= MAX_BYTES {
            std::fs::read(path).ok().and_then(|b| match serde_json::from_slice::<StepReport>(&b) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a malformed step report");
                    None
                }
            })
        } else {
            tracing::warn!(path = %path.display(), "ignoring a step report over 1 MiB");
            None
        };
        let _ = std::fs::remove_file(path);
        report
    }
}
