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
    /// Only builds after this one in the listing's order (newest first): strictly older
    /// by `(created_at, id)`. A page's last build is the next page's cursor, so paging
    /// neither skips nor repeats a build, whatever is created meanwhile.
    pub after: Option<(jiff::Timestamp, buildstate_core::BuildId)>,
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

impl BuildFilter {
    /// Whether `build` meets every condition (`limit` aside): the meaning of the filter
    /// for backends that filter in memory, and what SQL backends' WHERE clauses say.
    pub fn matches(&self, b: &buildstate_core::Build) -> bool {
        self.status.is_none_or(|s| b.status == s)
            && self.platform.as_ref().is_none_or(|p| &b.platform == p)
            && self.os.as_ref().is_none_or(|o| &b.os == o)
            && self.image_type.as_ref().is_none_or(|i| &b.image_type == i)
            && self.state.is_none_or(|s| b.state == s)
            && self.since.is_none_or(|t| b.created_at >= t)
            && self.needs_intervention.is_none_or(|n| b.needs_intervention == n)
            && self.after.is_none_or(|cursor| (b.created_at, b.id) < cursor)
    }
}

impl FailureFilter {
    /// Whether `f` meets every condition (`limit` aside); see [`BuildFilter::matches`].
    pub fn matches(&self, f: &buildstate_core::FailureRecord) -> bool {
        self.build.is_none_or(|id| f.build_id == id)
            && !(self.unresolved_only && f.resolved)
            && self.state.is_none_or(|s| f.state == s)
            && self.failure_type.as_ref().is_none_or(|t| &f.info.failure_type == t)
    }
}
