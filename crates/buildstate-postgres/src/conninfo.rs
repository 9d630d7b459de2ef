//! PostgreSQL connection strings, as far as a caller needs to read them before
//! connecting: whether a `--db` value is one (a `postgres://` URL, or libpq's
//! key/value form `host=db dbname=bs user=ci`), how to show it without its password,
//! and which database it names — the name of the store's own local directory for
//! attempt logs and copy state.
//!
//! This reads the strings by the same rules as the driver (tokio-postgres, after libpq): in a URL the hosts run to
//! the first `/` or `?` after the user info, the database to the `?`; a key/value
//! value is single-quoted or runs to the next whitespace, `\` escaping the next
//! character in both. Only the end of a URL's user info is found as the redactors find
//! it (at the last `@`), so that no part of a password is ever read as a host.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// libpq's connection keywords (PostgreSQL 17). A word `KEYWORD=` makes a `--db`
/// value a connection string rather than a file's path, as any `=` does for libpq.
const KEYWORDS: &[&str] = &[
    "application_name",
    "channel_binding",
    "client_encoding",
    "connect_timeout",
    "dbname",
    "fallback_application_name",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "options",
    "passfile",
    "password",
    "port",
    "replication",
    "require_auth",
    "requirepeer",
    "service",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslmode",
    "sslnegotiation",
    "sslpassword",
    "sslrootcert",
    "sslsni",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
];

/// Keys whose values are secrets.
const SECRET_KEYS: &[&str] = &["password", "sslpassword"];

const DEFAULT_PORT: &str = "5432";

/// A `postgres://` or `postgresql://` URL (the scheme in any case, as the CLI takes it).
pub fn is_url(text: &str) -> bool {
    let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A libpq key/value connection string: some word of it is a libpq keyword followed by
/// `=` (`host=db user=ci password=… dbname=bs`). A file whose name has such a word
/// (`my host=1.db`) is no SQLite path for `--db`; `./…` does not help, as for libpq.
pub fn is_key_value(text: &str) -> bool {
    !is_url(text) && pairs(text).iter().any(|p| KEYWORDS.contains(&p.key))
}

/// `text` with the values of `password` and `sslpassword` keys replaced by `***`,
/// everything else as written.
pub fn redact_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for p in pairs(text) {
        if SECRET_KEYS.contains(&p.key) {
            out.push_str(&text[at..p.value_start]);
            out.push_str("***");
            at = p.value_end;
        }
    }
    out.push_str(&text[at..]);
    out
}

/// One `key=value` of a key/value string: the key, the value as the driver reads it,
/// and where the value is written in the string.
struct Pair<'a> {
    key: &'a str,
    value: String,
    value_start: usize,
    value_end: usize,
}

/// The `key=value` pairs of `text`, read leniently: a word that is not followed by `=`
/// is passed over (the driver refuses it; here it only must not hide a password).
fn pairs(text: &str) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        pos += text[pos..].len() - text[pos..].trim_start().len();
        if pos >= text.len() {
            return out;
        }
        let key_len = text[pos..].find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(text.len() - pos);
        let key = &text[pos..pos + key_len];
        let after_key = &text[pos + key_len..];
        let Some(after_eq) = after_key.trim_start().strip_prefix('=') else {
            // Not `key = value`: move past the word (or past a stray `=`).
            pos += key_len.max(1);
            continue;
        };
        let value_start = text.len() - after_eq.trim_start().len();
        let (len, value) = value(&text[value_start..]);
        if !key.is_empty() {
            out.push(Pair { key, value, value_start, value_end: value_start + len });
        }
        pos = value_start + len;
    }
}

/// The value at the start of `s`: its length in bytes and what it says. Single-quoted,
/// or running to the next whitespace; `\` escapes the next character in both.
pub(crate) fn value(s: &str) -> (usize, String) {
    let (quoted, body) = match s.strip_prefix('\'') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let mut text = String::new();
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => {
                escaped = false;
                text.push(c);
            }
            '\\' => escaped = true,
            '\'' if quoted => return (i + 2, text),
            c if !quoted && c.is_whitespace() => return (i, text),
            c => text.push(c),
        }
    }
    (s.len(), text)
}

/// What names a PostgreSQL database in a connection string. Only what decides which
/// tables a store's commands read and write: never the password, the TLS options
/// (`sslmode`, `sslrootcert`, …) or other connection settings (`application_name`,
/// `connect_timeout`), which change how the same database is reached.
#[derive(Debug, Default, PartialEq, Eq)]
struct Database {
    hosts: Vec<String>,
    hostaddrs: Vec<String>,
    ports: Vec<String>,
    dbname: Option<String>,
    user: Option<String>,
    /// The `search_path` set in `options` (`-c search_path=team_a`): the store's tables
    /// are in its first schema, so two search paths can be two stores in one database.
    search_path: Option<String>,
}

impl Database {
    fn parse(conninfo: &str) -> Database {
        let mut db = Database::default();
        match url_rest(conninfo) {
            Some(rest) => db.parse_url(rest),
            None => {
                for p in pairs(conninfo) {
                    db.set(p.key, p.value);
                }
            }
        }
        db
    }

    /// `user:password@host:port,host2/dbname?key=value&…`, as the driver reads it, but
    /// for the user info, which runs to the last `@` here, as for the redactors: a
    /// password with an unencoded `@`, `?` or `/` in it (which the driver would split
    /// into a host) never becomes part of a directory name. (An `@` further on takes
    /// more for the user info than the driver does, never less.)
    fn parse_url(&mut self, rest: &str) {
        let rest = match rest.rsplit_once('@') {
            Some((creds, rest)) => {
                let user = creds.split_once(':').map_or(creds, |(user, _password)| user);
                self.user = Some(decode(user).into_owned());
                rest
            }
            None => rest,
        };
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (hosts, rest) = rest.split_at(host_end);
        for chunk in hosts.split(',').filter(|_| !hosts.is_empty()) {
            let (host, port) = match chunk.strip_prefix('[').and_then(|c| c.split_once(']')) {
                Some((host, after)) => (host, after.strip_prefix(':')),
                None => match chunk.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (chunk, None),
                },
            };
            self.hosts.push(decode(host).into_owned());
            self.ports.push(decode(port.unwrap_or(DEFAULT_PORT)).into_owned());
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if let Some(dbname) = path.strip_prefix('/').filter(|d| !d.is_empty()) {
            self.dbname = Some(decode(dbname).into_owned());
        }
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            self.set(&decode(key), decode(value).into_owned());
        }
    }

    /// A parameter, as the driver takes it: lists for hosts and ports (a URL's hosts
    /// and its `host=` parameters add up), the last value for the others.
    fn set(&mut self, key: &str, value: String) {
        let list = |value: &str| value.split(',').map(str::to_owned).collect::<Vec<_>>();
        match key {
            "host" => self.hosts.extend(list(&value)),
            "hostaddr" => self.hostaddrs.extend(list(&value)),
            "port" => self.ports.extend(list(&value)),
            "dbname" => self.dbname = Some(value),
            "user" => self.user = Some(value),
            "options" => {
                if let Some(path) = search_path(&value) {
                    self.search_path = Some(path);
                }
            }
            _ => {}
        }
    }

    /// `host[:port][,host2[:port]]/database[?search_path=…]`, with the defaults filled
    /// in as the driver fills them (port 5432, the database named after the user), so
    /// that two ways of writing one database give one text.
    fn text(&self) -> String {
        // A `hostaddr` only saves the name lookup of its `host`; alone it is the host.
        let hosts = if self.hosts.is_empty() { &self.hostaddrs } else { &self.hosts };
        let port = |i: usize| match self.ports.as_slice() {
            [] => DEFAULT_PORT,
            [one] => one.as_str(),
            many => many.get(i).map_or(DEFAULT_PORT, String::as_str),
        };
        let port = |i| Some(port(i)).filter(|p| !p.is_empty() && *p != DEFAULT_PORT);
        let hosts: Vec<String> = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                match port(i) {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        let dbname = self.dbname.as_deref().or(self.user.as_deref()).unwrap_or_default();
        let mut text = format!("{}/{dbname}", hosts.join(","));
        if let Some(path) = &self.search_path {
            text.push_str("?search_path=");
            text.push_str(path);
        }
        text
    }
}

fn url_rest(text: &str) -> Option<&str> {
    is_url(text).then(|| text.split_once("://").map_or("", |(_, rest)| rest))
}

fn decode(s: &str) -> Cow<'_, str> {
    percent_decode_str(s).decode_utf8_lossy()
}

/// The `search_path` a startup `options` value sets (`-c search_path=a`,
/// `-csearch_path=a`, `--search-path=a`; the last one wins), as the server reads it:
/// words split at whitespace, `\` escaping the next character.
fn search_path(options: &str) -> Option<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut escaped = false;
    for c in options.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                word.push(c);
            }
            '\\' => escaped = true,
            c if c.is_whitespace() => words.extend((!word.is_empty()).then(|| std::mem::take(&mut word))),
            c => word.push(c),
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    let mut found = None;
    let mut words = words.iter();
    while let Some(w) = words.next() {
        let setting = match w.as_str() {
            "-c" => words.next().map(String::as_str),
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('='))
            && name.replace('-', "_") == "search_path"
        {
            found = Some(value.to_owned());
        }
    }
    found
}

/// A directory name for the PostgreSQL store that `conninfo` (a URL or a key/value
/// string) connects to: its hosts, ports other than 5432, database and any
/// `search_path` in `options`, every character outside `[A-Za-z0-9._-]` as `_` —
/// `db.example_buildstate` for `postgres://ci:pw@db.example/buildstate?sslmode=require`,
/// and for `host=db.example dbname=buildstate`. The user is left out too: the same
/// database under another role (or rotated credentials) keeps its logs and copy state.
pub fn store_name(conninfo: &str) -> String {
    let name: String = Database::parse(conninfo)
        .text()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(120)
        .collect();
    let name = name.trim_matches(['_', '.']);
    if name.is_empty() { "default".to_owned() } else { name.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_strings_are_told_from_paths() {
        for kv in [
            "host=db user=x password=secret dbname=y",
            "dbname = bs",
            "  user=ci",
            "password='a b' host=db",
            "bogus=1 host=db",
            "/srv/my host=1.db",
        ] {
            assert!(is_key_value(kv), "{kv}");
        }
        for path in
            ["/srv/bs.db", "rel/a=b.db", "x=1", "/srv/host.db", "host", "=host=", "postgres://h/db?host=x"]
        {
            assert!(!is_key_value(path), "{path}");
        }
    }

    #[test]
    fn key_value_passwords_are_hidden() {
        let cases = [
            ("host=db user=x password=secret dbname=y", "host=db user=x password=*** dbname=y"),
            ("host=h password = 'se cr\\'et' dbname=d", "host=h password = *** dbname=d"),
            ("host=h password=se\\ cret user=u", "host=h password=*** user=u"),
            ("password='unterminated", "password=***"),
            ("host=h sslpassword=k3y", "host=h sslpassword=***"),
            ("host=h dbname=password", "host=h dbname=password"),
            ("word password=x", "word password=***"),
        ];
        for (s, shown) in cases {
            assert_eq!(redact_key_values(s), shown, "{s}");
        }
    }

    #[test]
    fn tls_options_and_the_password_do_not_change_the_name() {
        let name = store_name("postgres://ci:pw@db.example/buildstate");
        assert_eq!(name, "db.example_buildstate");
        for same in [
            "postgres://ci:other@db.example/buildstate",
            "postgres://db.example:5432/buildstate?user=ci",
            "postgresql://ci@db.example/buildstate?sslmode=require",
            "postgres://ci:pw@db.example/buildstate?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
            "postgres://ci:pw@db.example/buildstate?sslrootcert=system&application_name=x&connect_timeout=3",
            "postgres://ci:a@b?c@db.example/buildstate",
            "postgres:///buildstate?host=db.example",
            "host=db.example dbname=buildstate user=ci password=secret",
            "host=db.example port=5432 dbname=buildstate sslmode=verify-ca sslrootcert='/my ca.pem'",
            "host=db.example user=buildstate",
            "postgres://buildstate@db.example",
        ] {
            assert_eq!(store_name(same), name, "{same}");
        }
    }

    #[test]
    fn what_names_the_database_changes_the_name() {
        let base = store_name("postgres://db/bs");
        for other in [
            "postgres://db2/bs",
            "postgres://db:5433/bs",
            "postgres://db/bs2",
            "postgres://db,db2/bs",
            "postgres://db/bs?options=-c%20search_path%3Dteam_a",
            "host=db dbname=bs options='-c search_path=team_a'",
        ] {
            assert_ne!(store_name(other), base, "{other}");
        }
        assert_eq!(store_name("postgres://db:5433/bs"), "db_5433_bs");
        assert_eq!(store_name("host=db port=5433 dbname=bs"), "db_5433_bs");
        assert_eq!(
            store_name("postgres://db/bs?options=-c%20search_path%3Dteam_a"),
            "db_bs_search_path_team_a"
        );
        assert_eq!(
            store_name("host=db dbname=bs options='--search-path=team_a -c statement_timeout=5s'"),
            "db_bs_search_path_team_a"
        );
        assert_eq!(store_name("postgres://db/bs?options=-c%20statement_timeout%3D5s"), base);
        assert_eq!(store_name("postgres://ci@[::1]:5432/x"), "1__x");
        assert_eq!(store_name("hostaddr=10.0.0.1 dbname=x"), "10.0.0.1_x");
        assert_eq!(store_name("postgres://"), "default");
    }

    #[test]
    fn names_never_hold_the_password() {
        for s in [
            "postgres://ci:hunter2@db/bs",
            "postgres://ci:hun@ter2@db/bs",
            "postgres://db/bs?password=hunter2",
            "host=db password=hunter2 dbname=bs",
        ] {
            assert!(!store_name(s).contains("hunter2") && !store_name(s).contains("ter2"), "{s}");
        }
    }
}
