use buildstate_core::{BuildId, BuildStatus, FailureType, Name, StateCode};
use jiff::Timestamp;

/// Which builds `list_builds` returns (all conditions must hold), newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildFilter {
    pub status: Option<BuildStatus>,
    pub platform: Option<Name>,
    pub os: Option<Name>,
    pub image_type: Option<Name>,
    pub state: Option<StateCode>,
    /// Created at or after this time.
    pub since: Option<Timestamp>,
    pub needs_intervention: Option<bool>,
    pub limit: Option<usize>,
}

/// Which failure records `failures` returns, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureFilter {
    pub build: Option<BuildId>,
    pub unresolved_only: bool,
    pub state: Option<StateCode>,
    pub failure_type: Option<FailureType>,
    pub limit: Option<usize>,
}

/// What `import_build` does when the build (same id or number) already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// Refuse with `AlreadyExists`.
    CreateOnly,
    /// Replace the stored build, its history, failures and artifacts with the document.
    Replace,
}
