//! `config show`: every effective setting and where it came from (default, file PATH,
//! env VAR, flag), with secrets hidden.

use buildstate_core::{Backoff, RetryPolicy, StateCode};
use buildstate_runner::pipeline::RetryDefaults;
use serde::Serialize;

use crate::config::{self, HIDDEN, Origin, Settings};
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Print every effective setting and where it came from (default, file, env, flag); secrets hidden
    Show,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Entry {
    /// `null` where the default is not a value (no sync target, logs beside the store).
    value: Option<String>,
    source: &'static str,
    /// The file, variable or flag.
    from: Option<String>,
}

#[derive(Debug, Serialize)]
struct RetryEntry {
    /// `10-65`, or `5` for one code.
    states: String,
    first: u8,
    last: u8,
    policy: RetryPolicy,
    source: &'static str,
    from: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    config_file: Entry,
    /// In the order the README documents them.
    settings: serde_json::Map<String, serde_json::Value>,
    retry: Vec<RetryEntry>,
    /// `[cost]`: hourly rate by platform (from the config file).
    cost: std::collections::BTreeMap<String, f64>,
}

pub fn run(a: &Args, settings: &Settings, json: bool) -> Result<(), CliError> {
    match a {
        Args::Show => show(settings, json),
    }
}

fn entry(value: Option<String>, origin: &Origin) -> Entry {
    Entry { value, source: origin.kind(), from: origin.detail() }
}

/// Every setting as (key, entry, text for people).
fn entries(s: &Settings) -> Vec<(&'static str, Entry, String)> {
    let default_db = config::default_db_path().map(|p| p.display().to_string());
    let db = s.db.value.as_deref().map(config::redact_url).or(default_db);
    let sync = s.sync.value.as_deref().map(config::redact_url);
    let server = s.server.value.as_deref().map(config::redact_url);
    let mut out = vec![
        ("db", entry(db.clone(), &s.db.origin), db.unwrap_or_else(|| "-".to_owned())),
        ("server", entry(server.clone(), &s.server.origin), server.unwrap_or_else(|| "-".to_owned())),
        ("sync", entry(sync.clone(), &s.sync.origin), sync.unwrap_or_else(|| "-".to_owned())),
        ("actor", entry(Some(s.actor.value.clone()), &s.actor.origin), s.actor.value.clone()),
        ("lease_ttl", entry(Some(s.lease_ttl.value.clone()), &s.lease_ttl.origin), s.lease_ttl.value.clone()),
        ("grace", entry(Some(s.grace.value.clone()), &s.grace.origin), s.grace.value.clone()),
        (
            "logs_dir",
            entry(s.logs_dir.value.clone(), &s.logs_dir.origin),
            s.logs_dir.value.clone().unwrap_or_else(|| "logs/ beside the store".to_owned()),
        ),
        (
            "color",
            entry(Some(s.color.value.as_str().to_owned()), &s.color.origin),
            s.color.value.as_str().to_owned(),
        ),
    ];
    match &s.token {
        Some((config::TokenSource::File(path), origin)) => {
            let shown = format!("{HIDDEN} (in {})", path.display());
            out.push(("token", entry(Some(shown.clone()), origin), shown));
        }
        Some((config::TokenSource::Value(_), origin)) => {
            out.push(("token", entry(Some(HIDDEN.to_owned()), origin), HIDDEN.to_owned()));
        }
        None => {}
    }
    if let Some(origin) = &s.lease_token {
        out.push(("lease_token", entry(Some(HIDDEN.to_owned()), origin), HIDDEN.to_owned()));
    }
    out
}

/// The effective policy of every state code, in runs of codes that share policy and
/// origin — exactly what a step with no `retry` of its own gets.
fn retry_entries(s: &Settings) -> Vec<RetryEntry> {
    let defaults: RetryDefaults = s.retry_defaults();
    let file = s.config_file.value.clone().unwrap_or_default();
    let mut out: Vec<RetryEntry> = Vec::new();
    for code in (0..=100u8).filter_map(|c| StateCode::new(i64::from(c)).ok()) {
        let policy = defaults.policy_for(code);
        let origin = if defaults.rules().iter().any(|r| r.covers(code)) {
            Origin::File(file.clone())
        } else {
            Origin::Default
        };
        match out.last_mut() {
            Some(last)
                if last.policy == policy && last.source == origin.kind() && last.from == origin.detail() =>
            {
                last.last = code.get();
                last.states = format!("{}-{}", last.first, last.last);
            }
            _ => out.push(RetryEntry {
                states: code.to_string(),
                first: code.get(),
                last: code.get(),
                policy,
                source: origin.kind(),
                from: origin.detail(),
            }),
        }
    }
    out
}

fn show(s: &Settings, json: bool) -> Result<(), CliError> {
    let config_file =
        entry(s.config_file.value.as_ref().map(|p| p.display().to_string()), &s.config_file.origin);
    let entries = entries(s);
    let retry = retry_entries(s);
    if json {
        let mut settings = serde_json::Map::new();
        for (key, e, _) in &entries {
            let value = serde_json::to_value(e)
                .map_err(|err| CliError::internal(format!("cannot encode the output as JSON: {err}")))?;
            settings.insert((*key).to_owned(), value);
        }
        return output::json(&Report { config_file, settings, retry, cost: s.cost.clone() });
    }
    let file = match (&s.config_file.value, &s.config_file.origin) {
        (Some(p), Origin::Default) => p.display().to_string(),
        (Some(p), origin) => format!("{} ({origin})", p.display()),
        (None, _) => match config::default_config_path() {
            Some(p) => format!("none ({} does not exist)", p.display()),
            None => "none".to_owned(),
        },
    };
    output::line(format!("config file: {file}\n"))?;
    let mut t = output::table(&["KEY", "VALUE", "SOURCE"]);
    for (key, e, text) in &entries {
        let origin = e.from.as_ref().map_or_else(|| e.source.to_owned(), |f| format!("{} {f}", e.source));
        t.add_row(vec![(*key).to_owned(), output::cell(text, 80), origin]);
    }
    output::print_table(&t)?;
    output::line("")?;
    let mut t = output::table(&["RETRY STATES", "MAX ATTEMPTS", "BACKOFF", "TRANSIENT", "SOURCE"]);
    for r in &retry {
        let origin = r.from.as_ref().map_or_else(|| r.source.to_owned(), |f| format!("{} {f}", r.source));
        t.add_row(vec![
            r.states.clone(),
            r.policy.max_attempts.to_string(),
            backoff_text(&r.policy.backoff),
            output::cell(&transient_text(&r.policy), 60),
            origin,
        ]);
    }
    output::print_table(&t)?;
    if !s.cost.is_empty() {
        output::line("")?;
        let mut t = output::table(&["COST PLATFORM", "HOURLY RATE", "SOURCE"]);
        for (platform, rate) in &s.cost {
            t.add_row(vec![platform.clone(), rate.to_string(), file.clone()]);
        }
        output::print_table(&t)?;
    }
    Ok(())
}

fn backoff_text(b: &Backoff) -> String {
    match b {
        Backoff::None => "none".to_owned(),
        Backoff::Fixed { delay_ms } => format!("fixed {}", short(*delay_ms)),
        Backoff::Exponential { initial_ms, factor, max_ms, jitter } => {
            let factor = if *factor == 2 { String::new() } else { format!(" ×{factor}") };
            let jitter = if *jitter { ", jitter" } else { "" };
            format!("exponential {} → {}{factor}{jitter}", short(*initial_ms), short(*max_ms))
        }
    }
}

/// Which failures are retried: without rules, none is.
fn transient_text(p: &RetryPolicy) -> String {
    let mut parts = Vec::new();
    if !p.transient.exit_codes.is_empty() {
        let codes: Vec<String> = p.transient.exit_codes.iter().map(i32::to_string).collect();
        parts.push(format!("exit {}", codes.join(", ")));
    }
    if !p.transient.output_patterns.is_empty() {
        let patterns: Vec<String> = p.transient.output_patterns.iter().map(|o| format!("\"{o}\"")).collect();
        parts.push(format!("output {}", patterns.join(", ")));
    }
    if parts.is_empty() { "-".to_owned() } else { parts.join("; ") }
}

/// `300ms`, `30s`, `5m`, `2h`: the largest unit that divides the duration.
fn short(ms: u64) -> String {
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_backoffs_read_naturally() {
        assert_eq!(short(300), "300ms");
        assert_eq!(short(90_000), "90s");
        assert_eq!(short(300_000), "5m");
        assert_eq!(short(7_200_000), "2h");
        let b = Backoff::Exponential { initial_ms: 60_000, factor: 2, max_ms: 900_000, jitter: true };
        assert_eq!(backoff_text(&b), "exponential 1m → 15m, jitter");
        assert_eq!(backoff_text(&Backoff::Fixed { delay_ms: 10_000 }), "fixed 10s");
    }
}
