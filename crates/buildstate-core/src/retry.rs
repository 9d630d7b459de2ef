//! Retry policies are data. The runner reads them from the pipeline file; the CLI uses
//! [`RetryPolicy::default_for`] when a failure is reported by hand.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{FailureClass, StateCode};

/// How long to wait between attempts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Backoff {
    /// Retry at once.
    #[default]
    None,
    /// The same pause every time.
    Fixed { delay_ms: u64 },
    /// `initial_ms × factor^(n-1)`, capped at `max_ms`; with `jitter`, a random point in
    /// the upper half of that delay, so that a fleet of failed builds does not retry in
    /// lock step against the same mirror.
    Exponential {
        initial_ms: u64,
        #[serde(default = "two")]
        factor: u32,
        max_ms: u64,
        #[serde(default)]
        jitter: bool,
    },
}

fn two() -> u32 {
    2
}

impl Backoff {
    /// The pause before retry number `retry` (1 for the first retry). `draw` is a
    /// uniform random number in `[0, 1)`, supplied by the caller (the core has no RNG).
    pub fn delay(&self, retry: u32, draw: f64) -> Duration {
        let ms = match *self {
            Backoff::None => 0,
            Backoff::Fixed { delay_ms } => delay_ms,
            Backoff::Exponential { initial_ms, factor, max_ms, jitter } => {
                let exp = retry.saturating_sub(1).min(63);
                let grown = u64::from(factor.max(1))
                    .checked_pow(exp)
                    .and_then(|f| f.checked_mul(initial_ms))
                    .unwrap_or(u64::MAX);
                let capped = grown.min(max_ms);
                if jitter {
                    let draw = draw.clamp(0.0, 1.0);
                    capped / 2 + ((capped - capped / 2) as f64 * draw) as u64
                } else {
                    capped
                }
            }
        };
        Duration::from_millis(ms)
    }
}

/// Which failures count as transient, whatever the reporter said.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransientMatch {
    #[serde(default)]
    pub exit_codes: Vec<i32>,
    /// Substrings of the output tail, such as `Could not resolve host` or `429 Too Many`.
    #[serde(default)]
    pub output_patterns: Vec<String>,
}

impl TransientMatch {
    pub fn classify(&self, exit_code: Option<i32>, output: &str) -> FailureClass {
        let by_code = exit_code.is_some_and(|c| self.exit_codes.contains(&c));
        let by_output = self.output_patterns.iter().any(|p| !p.is_empty() && output.contains(p.as_str()));
        if by_code || by_output { FailureClass::Transient } else { FailureClass::Persistent }
    }
}

/// How a milestone is retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; reaching it flags the build for a person.
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
    #[serde(default)]
    pub transient: TransientMatch,
}

impl RetryPolicy {
    /// The defaults of SPEC §2: expensive infrastructure (5) retries few times with long
    /// exponential backoff; configuration (10–65) retries quickly; tests (70–90) go to a
    /// person after one failure; the rest retry a few times after a fixed pause.
    pub fn default_for(state: StateCode) -> Self {
        let (max_attempts, backoff) = match state.get() {
            // The specification's policies: an expensive infrastructure state retries
            // rarely and waits long (5 min, then 10, 20, capped at 30).
            5 => (
                3,
                Backoff::Exponential { initial_ms: 5 * 60_000, factor: 2, max_ms: 30 * 60_000, jitter: true },
            ),
            10..=65 => (3, Backoff::Fixed { delay_ms: 10_000 }),
            70..=90 => (1, Backoff::None),
            _ => (3, Backoff::Fixed { delay_ms: 30_000 }),
        };
        RetryPolicy { max_attempts, backoff, transient: TransientMatch::default() }
    }

    /// Whether another attempt is allowed after `attempts` attempts ended in a failure
    /// of `class`.
    pub fn allows_retry(&self, attempts: u32, class: FailureClass) -> bool {
        class == FailureClass::Transient && attempts < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: i64) -> StateCode {
        StateCode::new(n).expect("valid code")
    }

    #[test]
    fn exponential_grows_caps_and_jitters_within_bounds() {
        let b = Backoff::Exponential { initial_ms: 100, factor: 2, max_ms: 1_000, jitter: false };
        let ms: Vec<u128> = (1..=6).map(|n| b.delay(n, 0.5).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        let j = Backoff::Exponential { initial_ms: 100, factor: 2, max_ms: 1_000, jitter: true };
        assert_eq!(j.delay(3, 0.0).as_millis(), 200);
        assert_eq!(j.delay(3, 1.0).as_millis(), 400);
        assert!(j.delay(200, 0.99).as_millis() <= 1_000);
        assert_eq!(Backoff::Fixed { delay_ms: 7 }.delay(9, 0.3).as_millis(), 7);
        assert_eq!(Backoff::None.delay(1, 0.3).as_millis(), 0);
    }

    #[test]
    fn defaults_follow_the_spec() {
        assert_eq!(RetryPolicy::default_for(code(5)).max_attempts, 3);
        assert_eq!(
            RetryPolicy::default_for(code(5)).backoff,
            Backoff::Exponential { initial_ms: 300_000, factor: 2, max_ms: 1_800_000, jitter: true },
            "the specification's kickstart policy: 5 min → 30 min"
        );
        assert_eq!(RetryPolicy::default_for(code(25)).max_attempts, 3);
        assert_eq!(RetryPolicy::default_for(code(80)).max_attempts, 1);
    }

    #[test]
    fn transient_matching() {
        let m =
            TransientMatch { exit_codes: vec![75], output_patterns: vec!["Could not resolve host".into()] };
        assert_eq!(m.classify(Some(75), ""), FailureClass::Transient);
        assert_eq!(m.classify(Some(2), "curl: Could not resolve host: mirror"), FailureClass::Transient);
        assert_eq!(m.classify(Some(2), "syntax error"), FailureClass::Persistent);
        let p = RetryPolicy { max_attempts: 3, backoff: Backoff::None, transient: m };
        assert!(p.allows_retry(2, FailureClass::Transient));
        assert!(!p.allows_retry(3, FailureClass::Transient));
        assert!(!p.allows_retry(1, FailureClass::Persistent));
    }

    #[test]
    fn policies_are_data() {
        let json = r#"{"max_attempts":4,"backoff":{"kind":"exponential","initial_ms":1000,"max_ms":60000,"jitter":true},"transient":{"exit_codes":[75]}}"#;
        let p: RetryPolicy = serde_json::from_str(json).expect("valid policy");
        assert_eq!(p.max_attempts, 4);
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"max_attempts":1,"bogus":1}"#).is_err());
    }
}
