use buildstate_core::LeaseToken;

/// The preconditions of a write (`Store::apply`): every condition given must hold, or
/// nothing is written.
///
/// - `expected_version`: the build is still at the version the caller read
///   (compare-and-swap; otherwise `StoreError::Conflict`).
/// - `lease`: the caller runs the build under this lease token, and it is still the
///   build's current, unreleased lease (otherwise `StoreError::StaleLease`). Without a
///   token, the write is refused while another runner holds an unexpired lease
///   (`StoreError::LeaseHeld`): people and scripts do not move a build under a runner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    pub expected_version: Option<u64>,
    pub lease: Option<LeaseToken>,
}

impl Guard {
    /// No precondition beyond the rules (and no lease held by somebody else).
    pub const fn none() -> Self {
        Guard { expected_version: None, lease: None }
    }

    /// Only if the build is still at `version`.
    pub const fn version(version: u64) -> Self {
        Guard { expected_version: Some(version), lease: None }
    }

    /// Only while `token` is the build's current lease.
    pub const fn lease(token: LeaseToken) -> Self {
        Guard { expected_version: None, lease: Some(token) }
    }

    /// This guard, also requiring the build to be at `version`.
    pub const fn and_version(self, version: u64) -> Self {
        Guard { expected_version: Some(version), ..self }
    }

    /// This guard, also requiring `token` to be the build's current lease.
    pub const fn and_lease(self, token: LeaseToken) -> Self {
        Guard { lease: Some(token), ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_one_condition_each() {
        let t = LeaseToken::new(3);
        assert_eq!(Guard::none(), Guard::default());
        assert_eq!(Guard::version(7), Guard { expected_version: Some(7), lease: None });
        assert_eq!(Guard::lease(t), Guard { expected_version: None, lease: Some(t) });
        assert_eq!(Guard::lease(t).and_version(7), Guard::version(7).and_lease(t));
    }
}
