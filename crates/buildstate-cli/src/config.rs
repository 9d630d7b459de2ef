//! Settings in layers, each over the one before: built-in defaults, the config file
//! (`$XDG_CONFIG_HOME/buildstate/config.toml`, or `--config FILE` / `BUILDSTATE_CONFIG`),
//! `BUILDSTATE_*` environment variables, flags. Resolved once, before any command runs;
//! `config show` prints the result and where each value came from.
//!
//! The runner's flags (`--lease-ttl`, `--grace`, `--logs-dir` of `run`, `exec`, `worker`)
//! take the file's values as their defaults and the environment through clap, so their
//! own parsing and help (`[default: 2m]`) stay the one place those values are read.

mod file;
mod redact;
mod retry;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use buildstate_runner::pipeline::{RetryDefaults, RetryRule};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

pub use file::FileConfig;
pub(crate) use file::closest;
pub use redact::{HIDDEN, url as redact_url};

use crate::cli::Global;
use crate::exit::CliError;
use crate::output::ColorWhen;

pub const CONFIG_ENV: &str = "BUILDSTATE_CONFIG";
const COLOR_ENV: &str = "BUILDSTATE_COLOR";
const LEASE_TOKEN_ENV: &str = "BUILDSTATE_LEASE_TOKEN";
pub const SERVER_ENV: &str = "BUILDSTATE_SERVER";
pub const TOKEN_ENV: &str = "BUILDSTATE_TOKEN";

/// Where the server's token is.
#[derive(Debug, Clone)]
pub enum TokenSource {
    Value(String),
    /// A `token_file`, read when the token is needed.
    File(PathBuf),
}

impl TokenSource {
    pub fn secret(&self) -> Result<String, CliError> {
        match self {
            TokenSource::Value(t) => Ok(t.clone()),
            TokenSource::File(p) => read_token_file(p),
        }
    }
}

/// `~/x` as `$HOME/x`, as a shell would have it (a config file is read by no shell).
fn home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// The token in a `token_file`: its first line, trimmed.
fn read_token_file(path: &Path) -> Result<String, CliError> {
    let bytes = crate::input::read_file(path, "the token file", 64 * 1024)
        .map_err(|e| e.with_hint("token_file in the config file names it; or set BUILDSTATE_TOKEN"))?;
    let text = String::from_utf8_lossy(&bytes);
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    if token.is_empty() {
        return Err(CliError::usage(format!("the token file {} is empty", path.display()))
            .with_hint("put the token `buildstate token create` printed in it, on the first line"));
    }
    Ok(token)
}

/// A runner setting: its config-file key, its flag's clap id and its environment variable.
#[derive(Debug, Clone, Copy)]
struct RunnerKey {
    key: &'static str,
    env: &'static str,
    file: fn(&FileConfig) -> Option<&String>,
}

const RUNNER_KEYS: [RunnerKey; 3] = [
    RunnerKey { key: "lease_ttl", env: "BUILDSTATE_LEASE_TTL", file: |f| f.lease_ttl.as_ref() },
    RunnerKey { key: "grace", env: "BUILDSTATE_GRACE", file: |f| f.grace.as_ref() },
    RunnerKey { key: "logs_dir", env: "BUILDSTATE_LOGS_DIR", file: |f| f.logs_dir.as_ref() },
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl Origin {
    /// `default`, `file`, `env` or `flag`.
    pub fn kind(&self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::File(_) => "file",
            Origin::Env(_) => "env",
            Origin::Flag(_) => "flag",
        }
    }

    /// The file, variable or flag; `None` for a default.
    pub fn detail(&self) -> Option<String> {
        match self {
            Origin::Default => None,
            Origin::File(p) => Some(p.display().to_string()),
            Origin::Env(v) | Origin::Flag(v) => Some((*v).to_owned()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail() {
            Some(d) => write!(f, "{} {d}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn new(value: T, origin: Origin) -> Self {
        Setting { value, origin }
    }
}

/// Every effective setting.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file read (`None`: there was none at the default place).
    pub config_file: Setting<Option<PathBuf>>,
    /// `None`: the default SQLite file ([`default_db_path`]).
    pub db: Setting<Option<String>>,
    /// A server to work through instead of `db` ([`Settings::store`] says which wins).
    pub server: Setting<Option<String>>,
    /// The server's token (`BUILDSTATE_TOKEN`, or the file named by `token_file`) and
    /// where it came from; never shown.
    pub token: Option<(TokenSource, Origin)>,
    pub sync: Setting<Option<String>>,
    pub actor: Setting<String>,
    pub lease_ttl: Setting<String>,
    pub grace: Setting<String>,
    /// `None`: `logs/` beside the store.
    pub logs_dir: Setting<Option<String>>,
    pub color: Setting<ColorWhen>,
    /// Only where it came from: the value is a secret.
    pub lease_token: Option<Origin>,
    /// The config file's rules, by range (the file is their origin).
    pub retry: Vec<RetryRule>,
    /// `[cost]` of the config file: hourly rate by platform.
    pub cost: std::collections::BTreeMap<String, f64>,
    pub quiet: bool,
}

/// Which store the settings name.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreChoice<'s> {
    /// `db` (`None`: the default SQLite file).
    Local(Option<&'s str>),
    Server(&'s str),
}

impl Settings {
    /// `--server` or `--db`: the one given at the higher layer (flag over environment
    /// over config file), so that `--db x` on the command line works on a machine whose
    /// config names a server. An `http(s)://` `--db` is a server too: that is how a
    /// step of a runner working through a server is told where it is (`BUILDSTATE_DB`).
    /// Both at the same layer, naming different things, is a mistake to point out.
    pub fn store(&self) -> Result<StoreChoice<'_>, CliError> {
        let rank = |o: &Origin| match o {
            Origin::Flag(_) => 3,
            Origin::Env(_) => 2,
            Origin::File(_) => 1,
            Origin::Default => 0,
        };
        let db = self.db.value.as_deref();
        let Some(server) = self.server.value.as_deref() else {
            return Ok(match db.filter(|d| is_server_url(d)) {
                Some(url) => StoreChoice::Server(url),
                None => StoreChoice::Local(db),
            });
        };
        match db {
            Some(d) if d == server => Ok(StoreChoice::Server(server)),
            Some(d) if rank(&self.db.origin) > rank(&self.server.origin) => {
                Ok(if is_server_url(d) { StoreChoice::Server(d) } else { StoreChoice::Local(Some(d)) })
            }
            // A step of a runner: the runner names its store in BUILDSTATE_DB, whatever
            // else the step inherited from the runner's own environment.
            Some(d) if rank(&self.db.origin) == rank(&self.server.origin) && self.lease_token.is_some() => {
                Ok(if is_server_url(d) { StoreChoice::Server(d) } else { StoreChoice::Local(Some(d)) })
            }
            Some(_) if rank(&self.db.origin) == rank(&self.server.origin) => Err(CliError::usage(format!(
                "both a store ({}) and a server ({}) are given; which one is meant?",
                self.db.origin, self.server.origin
            ))
            .with_hint("give --db for a store or --server for a server, not both")),
            _ => Ok(StoreChoice::Server(server)),
        }
    }
}

/// `http://…` or `https://…`: a server, not a store.
pub fn is_server_url(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl Settings {
    /// The policies steps start from, under their pipeline file's `retry`.
    pub fn retry_defaults(&self) -> RetryDefaults {
        RetryDefaults::new(self.retry.clone())
    }
}

/// What is settled before the command line is parsed: the config file (its values are
/// the runner flags' defaults) and the colour of clap's own help and errors.
#[derive(Debug)]
pub struct Early {
    file: Option<FileConfig>,
    config_file: Setting<Option<PathBuf>>,
    color: ColorWhen,
    /// The runner flags' built-in defaults, as their declarations give them.
    builtin: Vec<(&'static str, Option<String>)>,
}

impl Early {
    /// Finds and reads the config file. `args` is the whole command line, scanned for
    /// `--config` and `--color` (until `--`) because they matter before clap runs;
    /// `cmd` is the command as declared, for the runner flags' built-in defaults.
    pub fn read(args: &[OsString], cmd: &Command) -> Result<Early, CliError> {
        let config_file = match flag_value(args, "--config").filter(|p| !p.is_empty()) {
            Some(p) => Setting::new(Some(PathBuf::from(p)), Origin::Flag("--config")),
            None => match env(CONFIG_ENV) {
                Some(p) => Setting::new(Some(PathBuf::from(p)), Origin::Env(CONFIG_ENV)),
                None => Setting::new(default_config_path().filter(|p| p.exists()), Origin::Default),
            },
        };
        let file = config_file.value.as_deref().map(FileConfig::load).transpose()?;
        let flag = flag_value(args, "--color").and_then(|v| ColorWhen::parse(&v.to_string_lossy()));
        let color = match flag {
            Some(c) => c,
            // An invalid value is reported once clap has parsed the line.
            None => color_below_flag(file.as_ref()).map_or(ColorWhen::Auto, |s| s.value),
        };
        let runner = cmd.get_subcommands().find(|s| s.get_arguments().any(|a| a.get_id() == "lease_ttl"));
        let builtin = RUNNER_KEYS
            .iter()
            .map(|k| {
                let default = runner
                    .and_then(|s| s.get_arguments().find(|a| a.get_id() == k.key))
                    .and_then(|a| a.get_default_values().first())
                    .map(|v| v.to_string_lossy().into_owned());
                (k.key, default)
            })
            .collect();
        Ok(Early { file, config_file, color, builtin })
    }

    /// `cmd` with the colour, the environment of `--color` and of the runner flags, and
    /// the file's values as the runner flags' defaults.
    pub fn command(&self, cmd: Command) -> Command {
        let mut cmd = cmd
            .color(self.color.clap())
            .mut_arg("color", |a| with_env(a, COLOR_ENV))
            .mut_arg("lease_token", |a| with_env(a, LEASE_TOKEN_ENV))
            .mut_arg("config", |a| with_env(a, CONFIG_ENV));
        let runners: Vec<String> = cmd
            .get_subcommands()
            // Every command with a runner setting (`run`, `exec`, `worker`; `prune` reads
            // `logs_dir` to know which log files are its own).
            .filter(|s| s.get_arguments().any(|a| RUNNER_KEYS.iter().any(|k| a.get_id() == k.key)))
            .map(|s| s.get_name().to_owned())
            .collect();
        for name in runners {
            cmd = cmd.mut_subcommand(name, |mut sub| {
                for k in RUNNER_KEYS {
                    if !sub.get_arguments().any(|a| a.get_id() == k.key) {
                        continue;
                    }
                    let from_file = self.file.as_ref().and_then(|f| (k.file)(f)).cloned();
                    sub = sub.mut_arg(k.key, |a| {
                        let a = with_env(a, k.env);
                        match from_file {
                            Some(v) => a.default_value(v),
                            None => a,
                        }
                    });
                }
                sub
            });
        }
        cmd
    }

    /// Every setting, from the parsed command line over the environment over the file
    /// over the defaults.
    pub fn resolve(self, global: &Global, matches: &ArgMatches) -> Result<Settings, CliError> {
        let file = self.file.as_ref();
        let file_origin = || Origin::File(file.map(|f| f.path.clone()).unwrap_or_default());
        let given = |id: &str, flag: &'static str, var: &'static str, value: Option<String>| {
            let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())?;
            let origin = match matches.value_source(id) {
                Some(ValueSource::EnvVariable) => Origin::Env(var),
                _ => Origin::Flag(flag),
            };
            Some(Setting::new(value, origin))
        };
        let layered = |top: Option<Setting<String>>, from_file: Option<&String>| match (top, from_file) {
            (Some(s), _) => Setting::new(Some(s.value), s.origin),
            (None, Some(v)) => Setting::new(Some(v.clone()), file_origin()),
            (None, None) => Setting::new(None, Origin::Default),
        };
        let db = layered(
            given(
                "db",
                "--db",
                "BUILDSTATE_DB",
                global.db.as_ref().map(|p| p.to_string_lossy().into_owned()),
            ),
            file.and_then(|f| f.db.as_ref()),
        );
        if matches!(matches.value_source("server"), Some(ValueSource::CommandLine))
            && global.server.as_deref().is_some_and(|s| s.trim().is_empty())
        {
            // Not "no server": that would quietly be the local default store.
            return Err(CliError::usage("--server is empty; give the server's URL (https://…)"));
        }
        let server = layered(
            given("server", "--server", SERVER_ENV, global.server.clone()),
            file.and_then(|f| f.server.as_ref()),
        );
        let token = match env(TOKEN_ENV) {
            Some(t) => {
                Some((TokenSource::Value(t.to_string_lossy().trim().to_owned()), Origin::Env(TOKEN_ENV)))
            }
            // Read only when a server is used: a broken token file must not stop local
            // commands, nor `config show`, which is how one finds it.
            None => file
                .and_then(|f| f.token_file.as_deref())
                .map(|p| (TokenSource::File(home(p)), file_origin())),
        };
        let sync = layered(
            given("sync", "--sync", "BUILDSTATE_SYNC", global.sync.clone()),
            file.and_then(|f| f.sync.as_ref()),
        );
        let actor = match layered(
            given("actor", "--actor", "BUILDSTATE_ACTOR", global.actor.clone()),
            file.and_then(|f| f.actor.as_ref()),
        ) {
            Setting { value: Some(v), origin } => Setting::new(v, origin),
            Setting { value: None, .. } => Setting::new(default_actor(), Origin::Default),
        };
        let mut runner = Vec::new();
        for (k, (_, builtin)) in RUNNER_KEYS.iter().zip(&self.builtin) {
            let from_env = match env(k.env) {
                Some(v) => {
                    let v = v.to_string_lossy().trim().to_owned();
                    if k.key != "logs_dir" {
                        crate::commands::parse_duration(&v)
                            .map_err(|e| CliError::usage(format!("invalid value of {}: {e}", k.env)))?;
                    }
                    Some(Setting::new(v, Origin::Env(k.env)))
                }
                None => None,
            };
            let s = layered(from_env, file.and_then(|f| (k.file)(f)));
            runner.push(match s.value {
                None => Setting::new(builtin.clone(), Origin::Default),
                Some(_) => s,
            });
        }
        let [lease_ttl, grace, logs_dir]: [Setting<Option<String>>; 3] =
            runner.try_into().map_err(|_| CliError::internal("three runner settings"))?;
        let required = |s: Setting<Option<String>>| Setting::new(s.value.unwrap_or_default(), s.origin);
        let color = match global.color {
            Some(c) => Setting::new(
                c,
                match matches.value_source("color") {
                    Some(ValueSource::EnvVariable) => Origin::Env(COLOR_ENV),
                    _ => Origin::Flag("--color"),
                },
            ),
            None => color_below_flag(file)?,
        };
        let lease_token = global.lease_token.map(|_| match matches.value_source("lease_token") {
            Some(ValueSource::EnvVariable) => Origin::Env(LEASE_TOKEN_ENV),
            _ => Origin::Flag("--lease-token"),
        });
        Ok(Settings {
            config_file: self.config_file,
            db,
            server,
            token,
            sync,
            actor,
            lease_ttl: required(lease_ttl),
            grace: required(grace),
            logs_dir,
            color,
            lease_token,
            retry: file.map(|f| f.retry.clone()).unwrap_or_default(),
            cost: file.map(|f| f.cost.clone()).unwrap_or_default(),
            quiet: global.quiet,
        })
    }
}

/// Who acts when nobody says (`--actor`, `BUILDSTATE_ACTOR`, `actor` in the file):
/// `$USER@hostname` — `LOGNAME` when `USER` is unset, `uid-N` when neither is — so that
/// a history tells apart the same account on two machines and never reads `unknown`.
fn default_actor() -> String {
    let user = ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(env)
        .map(|u| u.to_string_lossy().trim().to_owned())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self")
                .map_or_else(|_| "unknown".to_owned(), |m| format!("uid-{}", m.uid()))
        });
    format!("{user}@{}", buildstate_runner::dispatch::hostname())
}

/// The colour below the flag: `BUILDSTATE_COLOR`, then `NO_COLOR` (any non-empty value
/// turns `auto` into `never`, <https://no-color.org>), then the file, then `auto`.
fn color_below_flag(file: Option<&FileConfig>) -> Result<Setting<ColorWhen>, CliError> {
    if let Some(v) = env(COLOR_ENV) {
        let v = v.to_string_lossy();
        return ColorWhen::parse(v.trim()).map(|c| Setting::new(c, Origin::Env(COLOR_ENV))).ok_or_else(
            || {
                CliError::usage(format!(
                    "invalid value of {COLOR_ENV}: `{v}`; expected auto, always or never"
                ))
            },
        );
    }
    if env("NO_COLOR").is_some() {
        return Ok(Setting::new(ColorWhen::Never, Origin::Env("NO_COLOR")));
    }
    Ok(match file.and_then(|f| f.color.map(|c| (c, f.path.clone()))) {
        Some((c, path)) => Setting::new(c, Origin::File(path)),
        None => Setting::new(ColorWhen::Auto, Origin::Default),
    })
}

/// An environment variable that is set and not empty: an empty one counts as unset,
/// so `BUILDSTATE_DB= buildstate …` means the default, as it always has.
fn env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// `arg` reading `name` from the environment, unless it is set but empty (which clap
/// would take as an empty value).
fn with_env(arg: clap::Arg, name: &'static str) -> clap::Arg {
    match std::env::var_os(name) {
        Some(v) if v.is_empty() => arg,
        _ => arg.env(name),
    }
}

/// The value of `--flag VALUE` or `--flag=VALUE` on a command line, before `--`.
fn flag_value(args: &[OsString], flag: &str) -> Option<OsString> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let text = a.to_string_lossy();
        if text == "--" {
            return None;
        }
        if text == flag {
            return it.next().cloned();
        }
        if let Some(v) = text.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            return Some(OsString::from(v));
        }
    }
    None
}

/// `<config dir>/buildstate/config.toml`: `$XDG_CONFIG_HOME`, else `~/.config`, on Linux.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("buildstate").join("config.toml"))
}

/// The default store: `<data dir>/buildstate/buildstate.db`, i.e.
/// `~/.local/share/buildstate/buildstate.db` on Linux (`$XDG_DATA_HOME` is honoured).
pub fn default_db_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("buildstate").join("buildstate.db"))
}

/// The store path: the resolved `db` setting when given and not empty, else the default.
pub fn db_path(given: Option<&Path>) -> Result<PathBuf, CliError> {
    match given {
        Some(p) if !p.as_os_str().is_empty() => Ok(p.to_path_buf()),
        _ => default_db_path().ok_or_else(|| {
            CliError::usage("cannot find a data directory for the default store (is HOME set?)")
                .with_hint("pass --db PATH or set BUILDSTATE_DB")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn flag_wins_and_empty_means_default() {
        assert_eq!(db_path(Some(Path::new("/tmp/x.db"))).ok(), Some(PathBuf::from("/tmp/x.db")));
        if let Some(default) = default_db_path() {
            assert_eq!(db_path(Some(Path::new(""))).ok(), Some(default.clone()));
            assert!(default.ends_with("buildstate/buildstate.db"));
        }
    }

    #[test]
    fn early_flags_are_found_before_the_separator_only() {
        let v = |a: &[&str], f: &str| flag_value(&args(a), f).map(|s| s.to_string_lossy().into_owned());
        assert_eq!(
            v(&["bs", "build", "list", "--config", "/c.toml"], "--config").as_deref(),
            Some("/c.toml")
        );
        assert_eq!(v(&["bs", "--config=/c.toml", "init"], "--config").as_deref(), Some("/c.toml"));
        assert_eq!(v(&["bs", "exec", "B", "5", "--", "x", "--config", "y"], "--config"), None);
        assert_eq!(v(&["bs", "--configs", "y"], "--config"), None);
        assert_eq!(v(&["bs", "--color", "never"], "--color").as_deref(), Some("never"));
    }

    #[test]
    fn origins_read_naturally() {
        assert_eq!(Origin::Default.to_string(), "default");
        assert_eq!(Origin::File("/etc/c.toml".into()).to_string(), "file /etc/c.toml");
        assert_eq!(Origin::Env("BUILDSTATE_DB").to_string(), "env BUILDSTATE_DB");
        assert_eq!(Origin::Flag("--db").to_string(), "flag --db");
    }

    /// The README's "Configuration" section documents every key the file accepts.
    #[test]
    fn every_key_is_documented() {
        let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md is readable");
        let start = readme.find("\n## Configuration").expect("README has a Configuration section");
        let section = &readme[start..];
        let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
        for key in file::KEYS {
            assert!(
                section.contains(&format!("`{key}`")),
                "README's Configuration section documents `{key}`"
            );
        }
    }
}
