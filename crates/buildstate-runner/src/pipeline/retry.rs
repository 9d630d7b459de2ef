//! Retry policies set outside pipeline files — the CLI's config file, by range of state
//! codes. They sit between the built-in policy ([`RetryPolicy::default_for`]) and a
//! file's `defaults.retry`, as one more layer merged field by field: a pipeline that
//! says nothing about retries runs under them, and whatever a file does say wins.

use std::sync::OnceLock;

use buildstate_core::{Backoff, RetryPolicy, StateCode, TransientMatch};

/// The retry fields one layer sets; `None` inherits from the layer below. `backoff`,
/// `exit_codes` and `output_patterns` are each replaced as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryLayer {
    pub max_attempts: Option<u32>,
    pub backoff: Option<Backoff>,
    pub exit_codes: Option<Vec<i32>>,
    pub output_patterns: Option<Vec<String>>,
}

impl RetryLayer {
    /// This layer's fields over `base`.
    pub fn over(&self, base: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            backoff: self.backoff.clone().unwrap_or(base.backoff),
            transient: TransientMatch {
                exit_codes: self.exit_codes.clone().unwrap_or(base.transient.exit_codes),
                output_patterns: self.output_patterns.clone().unwrap_or(base.transient.output_patterns),
            },
        }
    }
}

/// A layer for the states `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRule {
    pub first: StateCode,
    pub last: StateCode,
    pub layer: RetryLayer,
}

impl RetryRule {
    pub fn covers(&self, state: StateCode) -> bool {
        (self.first..=self.last).contains(&state)
    }
}

/// The policy every step starts from before its file's `defaults.retry` and its own
/// `retry` are merged over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryDefaults {
    rules: Vec<RetryRule>,
}

static INSTALLED: OnceLock<RetryDefaults> = OnceLock::new();

impl RetryDefaults {
    /// Rules should not overlap (the caller refuses overlaps where it can point at
    /// them); where they do, the first one that covers a state wins.
    pub fn new(rules: Vec<RetryRule>) -> Self {
        RetryDefaults { rules }
    }

    pub fn rules(&self) -> &[RetryRule] {
        &self.rules
    }

    /// The built-in policy of `state` with the rule that covers it, if any, over it.
    pub fn policy_for(&self, state: StateCode) -> RetryPolicy {
        let base = RetryPolicy::default_for(state);
        match self.rules.iter().find(|r| r.covers(state)) {
            Some(rule) => rule.layer.over(base),
            None => base,
        }
    }

    /// Makes these the defaults of [`Pipeline::load`](super::Pipeline::load) and
    /// [`Pipeline::parse`](super::Pipeline::parse) for the rest of the process. The
    /// binary calls it once, after reading its configuration and before any pipeline;
    /// a second call is refused (and hands the value back), so what a loaded pipeline
    /// means never changes under it.
    pub fn install(self) -> Result<(), RetryDefaults> {
        INSTALLED.set(self)
    }

    /// What [`install`](Self::install) set, else the built-in policies only.
    pub fn installed() -> &'static RetryDefaults {
        INSTALLED.get_or_init(RetryDefaults::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: i64) -> StateCode {
        StateCode::new(n).expect("valid code")
    }

    #[test]
    fn a_rule_overrides_only_the_fields_it_sets_and_only_in_its_range() {
        let defaults = RetryDefaults::new(vec![RetryRule {
            first: code(10),
            last: code(65),
            layer: RetryLayer { max_attempts: Some(5), exit_codes: Some(vec![75]), ..RetryLayer::default() },
        }]);
        let p = defaults.policy_for(code(25));
        assert_eq!(p.max_attempts, 5);
        assert_eq!(p.transient.exit_codes, [75]);
        assert_eq!(p.backoff, RetryPolicy::default_for(code(25)).backoff, "backoff inherited");
        assert_eq!(defaults.policy_for(code(5)), RetryPolicy::default_for(code(5)), "outside the range");
        assert_eq!(RetryDefaults::default().policy_for(code(80)), RetryPolicy::default_for(code(80)));
    }
}
