//! `[retry.RANGE]` tables: the retry policy steps start from when their pipeline file
//! sets none, by range of state codes (`[retry.5]`, `[retry.10-65]`). The keys and
//! their meaning are those of a pipeline file's `retry` (docs/pipeline.md); fields a
//! table leaves out keep the built-in policy of each state.

use std::collections::BTreeMap;

use buildstate_core::{Backoff, StateCode};
use buildstate_runner::pipeline::{RetryLayer, RetryRule};
use serde::Deserialize;
use toml::Spanned;

use super::file::Source;
use crate::exit::CliError;

const MAX_ATTEMPTS: i64 = 100;
const MAX_FACTOR: i64 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    max_attempts: Option<Spanned<i64>>,
    backoff: Option<Spanned<RawBackoff>>,
    transient: Option<RawTransient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    kind: Spanned<String>,
    delay: Option<Spanned<String>>,
    initial: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
    factor: Option<Spanned<i64>>,
    jitter: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransient {
    exit_codes: Option<Vec<Spanned<i64>>>,
    output_patterns: Option<Vec<Spanned<String>>>,
}

/// Every table checked and turned into a rule; overlapping ranges are refused.
pub(super) fn rules(
    src: Source<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<RawRetry>>,
) -> Result<Vec<RetryRule>, CliError> {
    let mut rules: Vec<(RetryRule, String)> = Vec::new();
    for (key, table) in raw {
        let (first, last) = range(src, key)?;
        let layer = layer(src, table.get_ref())?;
        if let Some((_, other)) = rules.iter().find(|(r, _)| r.first <= last && first <= r.last) {
            return Err(src.at(
                key.span(),
                format!(
                    "retry ranges `{other}` and `{}` overlap; expected each state code in at most one range",
                    key.get_ref()
                ),
            ));
        }
        rules.push((RetryRule { first, last, layer }, key.get_ref().clone()));
    }
    let mut rules: Vec<RetryRule> = rules.into_iter().map(|(r, _)| r).collect();
    rules.sort_by_key(|r| r.first);
    Ok(rules)
}

/// `5` or `10-65`.
fn range(src: Source<'_>, key: &Spanned<String>) -> Result<(StateCode, StateCode), CliError> {
    let text = key.get_ref().trim();
    let bad = |why: String| {
        src.at(
            key.span(),
            format!("retry.{text}: {why}; expected a state code or a range such as `5` or `10-65`"),
        )
    };
    let code = |s: &str| s.trim().parse::<StateCode>().map_err(|e| bad(e.to_string()));
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (code(a)?, code(b)?),
        None => (code(text)?, code(text)?),
    };
    if first > last {
        return Err(bad(format!("the range runs backwards ({first} > {last})")));
    }
    Ok((first, last))
}

fn layer(src: Source<'_>, raw: &RawRetry) -> Result<RetryLayer, CliError> {
    let max_attempts = match &raw.max_attempts {
        Some(n) => {
            Some(whole(src, n, 1, MAX_ATTEMPTS, "max_attempts", "attempts in all, from 1 (no retry) to 100")?)
        }
        None => None,
    };
    let backoff = raw.backoff.as_ref().map(|b| backoff(src, b)).transpose()?;
    let (exit_codes, output_patterns) = match &raw.transient {
        Some(t) => (
            t.exit_codes
                .as_ref()
                .map(|codes| {
                    codes
                        .iter()
                        .map(|c| {
                            whole(src, c, 1, 255, "exit_codes", "an exit code from 1 to 255")
                                .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
            t.output_patterns
                .as_ref()
                .map(|patterns| {
                    patterns
                        .iter()
                        .map(|p| {
                            if p.get_ref().is_empty() {
                                Err(src.at(
                                    p.span(),
                                    "empty output pattern; expected text to look for in the output, such as `Could not resolve host`",
                                ))
                            } else {
                                Ok(p.get_ref().clone())
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
        ),
        None => (None, None),
    };
    Ok(RetryLayer { max_attempts, backoff, exit_codes, output_patterns })
}

fn backoff(src: Source<'_>, raw: &Spanned<RawBackoff>) -> Result<Backoff, CliError> {
    let b = raw.get_ref();
    let kind = b.kind.get_ref().as_str();
    let takes: &[&str] = match kind {
        "none" => &[],
        "fixed" => &["delay"],
        "exponential" => &["initial", "max", "factor", "jitter"],
        other => {
            return Err(src.at(
                b.kind.span(),
                format!("unknown backoff kind `{other}`; expected none, fixed or exponential"),
            ));
        }
    };
    let given = [
        ("delay", b.delay.is_some()),
        ("initial", b.initial.is_some()),
        ("max", b.max.is_some()),
        ("factor", b.factor.is_some()),
        ("jitter", b.jitter.is_some()),
    ];
    if let Some((key, _)) = given.iter().find(|(k, set)| *set && !takes.contains(k)) {
        let accepted = if takes.is_empty() { "no other keys".to_owned() } else { takes.join(", ") };
        return Err(src.at(
            raw.span(),
            format!("`{key}` does not apply to a {kind} backoff; it takes: kind, {accepted}"),
        ));
    }
    let millis =
        |v: &Option<Spanned<String>>, key: &str| match v {
            Some(s) => crate::commands::parse_duration(s.get_ref().trim())
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .map_err(|e| src.at(s.span(), format!("{key}: {e}"))),
            None => Err(src
                .at(raw.span(), format!("a {kind} backoff needs `{key}`; expected a duration such as 30s"))),
        };
    Ok(match kind {
        "fixed" => Backoff::Fixed { delay_ms: millis(&b.delay, "delay")? },
        "exponential" => {
            let initial_ms = millis(&b.initial, "initial")?;
            let max_ms = millis(&b.max, "max")?;
            if initial_ms > max_ms {
                let at = b.initial.as_ref().map_or(raw.span(), Spanned::span);
                return Err(src.at(at, "`initial` is longer than `max`; expected initial ≤ max"));
            }
            let factor = match &b.factor {
                Some(f) => whole(src, f, 1, MAX_FACTOR, "factor", "a whole growth factor from 1 to 100")?,
                None => 2,
            };
            Backoff::Exponential { initial_ms, factor, max_ms, jitter: b.jitter.unwrap_or(false) }
        }
        _ => Backoff::None,
    })
}

fn whole(
    src: Source<'_>,
    n: &Spanned<i64>,
    min: i64,
    max: i64,
    key: &str,
    expected: &str,
) -> Result<u32, CliError> {
    let v = *n.get_ref();
    if (min..=max).contains(&v) {
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    } else {
        Err(src.at(n.span(), format!("{key}: {v} is out of range; expected {expected}")))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use buildstate_core::RetryPolicy;
    use buildstate_runner::pipeline::RetryDefaults;

    use super::super::file::FileConfig;
    use super::*;

    fn rules_of(text: &str) -> Result<Vec<RetryRule>, String> {
        FileConfig::parse(text, Path::new("c.toml")).map(|c| c.retry).map_err(|e| e.to_string())
    }

    fn code(n: i64) -> StateCode {
        StateCode::new(n).expect("valid code")
    }

    #[test]
    fn tables_become_rules_over_the_built_in_policy() {
        let rules = rules_of(
            "[retry.5]\nmax_attempts = 3\nbackoff = { kind = \"exponential\", initial = \"5m\", max = \"30m\", jitter = true }\n\
             [retry.10-65]\nbackoff = { kind = \"fixed\", delay = \"15s\" }\n\
             transient = { exit_codes = [75], output_patterns = [\"Could not resolve host\"] }\n",
        )
        .expect("valid");
        let d = RetryDefaults::new(rules);
        let five = d.policy_for(code(5));
        assert_eq!(five.max_attempts, 3);
        assert_eq!(
            five.backoff,
            Backoff::Exponential { initial_ms: 300_000, factor: 2, max_ms: 1_800_000, jitter: true }
        );
        let twenty = d.policy_for(code(20));
        assert_eq!(twenty.max_attempts, RetryPolicy::default_for(code(20)).max_attempts, "not set: built-in");
        assert_eq!(twenty.backoff, Backoff::Fixed { delay_ms: 15_000 });
        assert_eq!(twenty.transient.exit_codes, [75]);
        assert_eq!(d.policy_for(code(80)), RetryPolicy::default_for(code(80)));
    }

    #[test]
    fn bad_tables_say_where_and_what() {
        let cases = [
            ("[retry.5]\nmax_attempts = 0\n", "c.toml:2:16: max_attempts: 0 is out of range"),
            ("[retry.abc]\nmax_attempts = 1\n", "c.toml:1:8: retry.abc: `abc` is not a state code"),
            ("[retry.65-10]\n", "c.toml:1:8: retry.65-10: the range runs backwards"),
            ("[retry.10-65]\n[retry.60-70]\n", "c.toml:2:8: retry ranges `10-65` and `60-70` overlap"),
            ("[retry.5]\nbackoff = { kind = \"soon\" }\n", "c.toml:2:20: unknown backoff kind `soon`"),
            ("[retry.5]\nbackoff = { kind = \"fixed\" }\n", "a fixed backoff needs `delay`"),
            (
                "[retry.5]\nbackoff = { kind = \"none\", delay = \"1s\" }\n",
                "`delay` does not apply to a none backoff",
            ),
            (
                "[retry.5]\nretries = 3\n",
                "c.toml:2:1: unknown key `retries` in the config file; valid keys: max_attempts, backoff, transient",
            ),
            ("[retry.5]\ntransient = { output_patterns = [\"\"] }\n", "empty output pattern"),
        ];
        for (text, expected) in cases {
            let e = rules_of(text).expect_err(text);
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }
}
