//! The config file: TOML, read whole and checked before any command runs. Every error
//! is one line naming the file, line and column; a key nobody reads is an error that
//! names it and lists the valid ones, so a typo never silently means "the default".

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use buildstate_runner::pipeline::RetryRule;
use serde::Deserialize;
use toml::Spanned;

use super::retry::{self, RawRetry};
use crate::exit::CliError;
use crate::output::ColorWhen;

/// Larger than any sensible config file; a bigger one is a mistake (or not a config file).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The top-level keys, in the order the README documents them (a test checks that it
/// does; serde's own list names them in error messages).
#[cfg(test)]
pub const KEYS: &[&str] = &[
    "db",
    "server",
    "token_file",
    "sync",
    "actor",
    "lease_ttl",
    "grace",
    "logs_dir",
    "color",
    "retry",
    "cost",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    db: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    sync: Option<Spanned<String>>,
    actor: Option<Spanned<String>>,
    lease_ttl: Option<Spanned<String>>,
    grace: Option<Spanned<String>>,
    logs_dir: Option<Spanned<String>>,
    color: Option<Spanned<String>>,
    #[serde(default)]
    retry: BTreeMap<Spanned<String>, Spanned<RawRetry>>,
    /// Hourly rate per platform: `aws-commercial = 0.68`.
    #[serde(default)]
    cost: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// A config file, read and checked: every value here is valid.
#[derive(Debug, Clone)]
pub struct FileConfig {
    pub path: PathBuf,
    pub db: Option<String>,
    /// A `buildstate serve` to work through instead of a store.
    pub server: Option<String>,
    /// A file holding the server's token: the token itself is never in this file,
    /// which gets shown (`config show`), copied and committed.
    pub token_file: Option<String>,
    pub sync: Option<String>,
    pub actor: Option<String>,
    pub lease_ttl: Option<String>,
    pub grace: Option<String>,
    pub logs_dir: Option<String>,
    pub color: Option<ColorWhen>,
    /// By state range, no two overlapping.
    pub retry: Vec<RetryRule>,
    /// `[cost]`: the hourly rate of each platform, for the cost reports.
    pub cost: BTreeMap<String, f64>,
}

/// The text being read, for error positions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// `PATH:LINE:COLUMN: message` (1-based; columns count characters).
    pub fn at(&self, span: Range<usize>, message: impl AsRef<str>) -> CliError {
        let start = span.start.min(self.text.len());
        let before = self.text.get(..start).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        CliError::usage(format!("{}:{line}:{column}: {}", self.path.display(), message.as_ref()))
    }
}

impl FileConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<FileConfig, CliError> {
        let bytes = crate::input::read_file(path, "the config file", MAX_CONFIG_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            CliError::usage(format!("the config file {} is not UTF-8 text: {e}", path.display()))
        })?;
        FileConfig::parse(&text, path)
    }

    /// Checks config text; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, CliError> {
        let src = Source { path, text };
        let raw: Raw = toml::from_str(text).map_err(|e| toml_error(src, &e))?;
        let non_empty = |v: &Option<Spanned<String>>, key: &str, expected: &str| match v {
            Some(s) if s.get_ref().trim().is_empty() => {
                Err(src.at(s.span(), format!("`{key}` is empty; expected {expected} (or leave the key out)")))
            }
            Some(s) => Ok(Some(s.get_ref().trim().to_owned())),
            None => Ok(None),
        };
        let duration = |v: &Option<Spanned<String>>, key: &str| match v {
            Some(s) => crate::commands::parse_duration(s.get_ref().trim())
                .map(|_| Some(s.get_ref().trim().to_owned()))
                .map_err(|e| src.at(s.span(), format!("{key}: {e}"))),
            None => Ok(None),
        };
        // A lease ttl outside 3s..24h is this file's fault, said here, not later as if the
        // flag had been given it.
        let lease_ttl = |src: &Source, v: &Option<Spanned<String>>| -> Result<Option<String>, CliError> {
            let Some(text) = duration(v, "lease_ttl")? else { return Ok(None) };
            let ttl = crate::commands::parse_duration(&text).map_err(|e| src.at(0..0, e))?;
            match buildstate_runner::dispatch::LeaseTtl::new(ttl) {
                Ok(_) => Ok(Some(text)),
                Err(e) => Err(src.at(v.as_ref().map_or(0..0, Spanned::span), format!("lease_ttl: {e}"))),
            }
        };
        let color = match &raw.color {
            Some(s) => Some(ColorWhen::parse(s.get_ref().trim()).ok_or_else(|| {
                src.at(
                    s.span(),
                    format!(
                        "color: `{}` is not a colour choice; expected auto, always or never",
                        s.get_ref()
                    ),
                )
            })?),
            None => None,
        };
        Ok(FileConfig {
            path: path.to_path_buf(),
            db: non_empty(&raw.db, "db", "a SQLite path, a postgres:// URL or a file:// directory")?,
            server: non_empty(&raw.server, "server", "the URL of a `buildstate serve`")?,
            token_file: non_empty(&raw.token_file, "token_file", "a file holding the server's token")?,
            sync: non_empty(&raw.sync, "sync", "an s3://, az://, gs:// or file:// URL")?,
            actor: non_empty(&raw.actor, "actor", "the name recorded in history")?,
            lease_ttl: lease_ttl(&src, &raw.lease_ttl)?,
            grace: duration(&raw.grace, "grace")?,
            logs_dir: non_empty(&raw.logs_dir, "logs_dir", "a directory")?,
            color,
            retry: retry::rules(src, &raw.retry)?,
            cost: rates(src, &raw.cost)?,
        })
    }
}

/// `[cost]`: platform names (as the catalog spells them) to non-negative hourly rates.
fn rates(
    src: Source<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
) -> Result<BTreeMap<String, f64>, CliError> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let name = k.get_ref();
        if let Err(e) = buildstate_core::Name::new(name) {
            return Err(src.at(k.span(), format!("cost: `{name}` is not a platform name: {e}")));
        }
        let rate = match v.get_ref() {
            toml::Value::Float(f) => *f,
            toml::Value::Integer(i) => *i as f64,
            other => {
                return Err(src.at(
                    v.span(),
                    format!("cost.{name}: expected an hourly rate such as 0.68, not {}", other.type_str()),
                ));
            }
        };
        if !rate.is_finite() || !(0.0..=1e6).contains(&rate) {
            // 1e308 written out would be 309 digits.
            let shown = if rate.abs() < 1e9 { rate.to_string() } else { format!("{rate:e}") };
            return Err(
                src.at(v.span(), format!("cost.{name}: {shown} is not an hourly rate (0 to 1000000)"))
            );
        }
        out.insert(name.clone(), rate);
    }
    Ok(out)
}

/// A TOML or shape error in our words: position first, one line, and for an unknown
/// key the valid ones (and the closest, when it looks like a typo).
fn toml_error(src: Source<'_>, e: &toml::de::Error) -> CliError {
    let message = e.message().trim();
    let span = e.span().unwrap_or(0..0);
    if let Some((key, valid)) = unknown_field(message) {
        let hint = closest(&key, &valid).map(|c| format!("did you mean `{c}`?"));
        let err =
            src.at(span, format!("unknown key `{key}` in the config file; valid keys: {}", valid.join(", ")));
        return match hint {
            Some(h) => err.with_hint(h),
            None => err,
        };
    }
    let message = message.replace("missing field", "missing key");
    src.at(span, crate::exit::one_line(&message))
        .with_hint("the config file is documented under \"Configuration\" in the README")
}

/// Serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), split.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let valid = rest.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    Some((key.to_owned(), valid))
}

/// The valid key nearest to `key`, if it is near enough to be a typo of it.
pub(crate) fn closest<'a>(key: &str, valid: &'a [String]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (edit_distance(key, v), v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.as_str())
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, String> {
        FileConfig::parse(text, Path::new("/etc/bs.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "db = \"/srv/bs.db\"\nsync = \"file:///mnt/x\"\nactor = \"ci\"\nlease_ttl = \"90s\"\n\
             grace = \"2s\"\nlogs_dir = \"/var/log/bs\"\ncolor = \"never\"\n[retry.5]\nmax_attempts = 3\n",
        )
        .expect("valid");
        assert_eq!(c.db.as_deref(), Some("/srv/bs.db"));
        assert_eq!(c.lease_ttl.as_deref(), Some("90s"));
        assert_eq!(c.color, Some(ColorWhen::Never));
        assert_eq!(c.retry.len(), 1);
    }

    #[test]
    fn errors_have_file_line_and_column() {
        let e = parse("db = \"x\"\nlease_ttl = \"soon\"\n").expect_err("bad duration");
        assert!(e.starts_with("/etc/bs.toml:2:13: lease_ttl: `soon` is not a duration"), "{e}");
        let e = parse("db = \"x\"\ngrace = = 1\n").expect_err("bad toml");
        assert!(e.starts_with("/etc/bs.toml:2:9: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn unknown_keys_are_named_with_the_valid_ones() {
        let e = FileConfig::parse("dbb = \"x\"\n", Path::new("c.toml")).expect_err("typo");
        assert_eq!(
            e.to_string(),
            "c.toml:1:1: unknown key `dbb` in the config file; valid keys: db, server, token_file, sync, actor, lease_ttl, grace, logs_dir, color, retry, cost"
        );
        assert_eq!(
            closest("lease-ttl", &KEYS.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>()),
            Some("lease_ttl")
        );
        assert_eq!(closest("zzzzzz", &["db".to_owned()]), None);
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("dbb", "db"), 1);
        assert_eq!(edit_distance("colour", "color"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
