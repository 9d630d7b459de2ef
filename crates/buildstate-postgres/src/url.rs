//! Connection strings: parsing, the schema option, and redaction for messages.
//!
//! A connection string carries a password, and `Store::location` ends up in error
//! messages, logs and tables. Every string shown to people goes through [`redact`],
//! which finds the password exactly where the driver does (the userinfo of a URL up to
//! the first `@`, a `password=` query parameter, or a `password` key of a key/value
//! string) and replaces it with `***`.
//!
//! The TLS options (`sslmode`, `sslrootcert`) are taken out of the string before the
//! driver parses it ([`take_tls_params`]): the driver knows `sslmode` only as
//! `disable|prefer|require` and has no `sslrootcert`; `crate::tls` gives them libpq's
//! meaning.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;

use buildstate_store::{StoreError, StoreResult};
use percent_encoding::percent_decode_str;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

use crate::tls::Tls;

const MASK: &str = "***";

/// The keys whose values are secrets: the password, and the client key's passphrase
/// (which the driver does not know, so a string holding one fails to parse and is
/// shown in the error).
fn is_secret(key: &str) -> bool {
    key == "password" || key == "sslpassword"
}

/// The connection string with every password replaced by `***`.
pub(crate) fn redact(conninfo: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = conninfo.strip_prefix(scheme) {
            return format!("{scheme}{}", redact_url_rest(rest));
        }
    }
    crate::conninfo::redact_key_values(conninfo)
}

/// `user:pass@host/db?password=x&…` → `user:***@host/db?password=***&…`.
fn redact_url_rest(rest: &str) -> String {
    // Whatever comes before the last `@` is treated as user info: a password with an
    // unencoded `@`, `/` or `?` in it (`u:a@b@host`, `u:a?b@host`) is hidden whole,
    // never in part, however the driver would split it. (An `@` later in the string
    // hides more than needed, never less.)
    let (creds, tail) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at..]),
        None => (None, rest),
    };
    let mut out = String::with_capacity(rest.len());
    if let Some(creds) = creds {
        match creds.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
            }
            None => out.push_str(creds),
        }
    }
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if is_secret(k) => format!("{k}={MASK}"),
                    _ => p.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

/// The TLS options of a connection string, as written in it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub(crate) sslmode: Option<String>,
    pub(crate) sslrootcert: Option<String>,
}

impl TlsParams {
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            _ => return false,
        }
        true
    }
}

/// `conninfo` without its `sslmode` and `sslrootcert`, and their values (the last one
/// given of each, as the driver would take it). Everything else is left exactly as
/// written, so the driver reads the rest as it would have; a string it cannot read is
/// left for it to refuse.
pub(crate) fn take_tls_params(conninfo: &str) -> Result<(Cow<'_, str>, TlsParams), String> {
    let mut params = TlsParams::default();
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = conninfo.strip_prefix(scheme) {
            // As the driver reads a URL: the user info runs to the first `@`, the
            // query starts at the first `?` after it.
            let creds_end = rest.find('@').map_or(0, |at| at + 1);
            let Some(q) = rest[creds_end..].find('?').map(|i| creds_end + i) else {
                return Ok((Cow::Borrowed(conninfo), params));
            };
            let mut kept = Vec::new();
            let mut query = &rest[q + 1..];
            while !query.is_empty() {
                let Some(eq) = query.find('=') else {
                    kept.push(query);
                    break;
                };
                let end = query[eq..].find('&').map_or(query.len(), |amp| eq + amp);
                let (key, value) = (&query[..eq], &query[eq + 1..end]);
                let decoded_key = percent_decode_str(key).decode_utf8().unwrap_or_default();
                if matches!(&*decoded_key, "sslmode" | "sslrootcert") {
                    let value = percent_decode_str(value).decode_utf8().map_err(|_| {
                        format!("the {decoded_key} parameter is not UTF-8 once percent-decoded")
                    })?;
                    params.take(&decoded_key, value.into_owned());
                } else {
                    kept.push(&query[..end]);
                }
                query = query.get(end + 1..).unwrap_or("");
            }
            let mut out = format!("{scheme}{}", &rest[..q]);
            if !kept.is_empty() {
                out.push('?');
                out.push_str(&kept.join("&"));
            }
            return Ok((Cow::Owned(out), params));
        }
    }
    let mut out = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    loop {
        let trimmed = rest.trim_start();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        let key_end = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
        let after_key = rest[key_end..].trim_start();
        let Some(value_and_rest) = after_key.strip_prefix('=').filter(|_| key_end > 0) else {
            // The end, or not `key = value`: the driver says what is wrong with it.
            out.push_str(rest);
            return Ok((Cow::Owned(out), params));
        };
        let value_start = value_and_rest.trim_start();
        let (value_len, text) = crate::conninfo::value(value_start);
        let consumed = rest.len() - value_start.len() + value_len;
        if !params.take(&rest[..key_end], text) {
            out.push_str(&rest[..consumed]);
        }
        rest = &rest[consumed..];
    }
}

/// Parses `conninfo` (URL or key/value form). The driver's parse error never contains
/// the string itself, but the message names the redacted location to be sure.
/// Its TLS options are checked here too, before anything connects.
pub(crate) fn parse(conninfo: &str, location: &str) -> StoreResult<(Config, Tls)> {
    let unavailable = |reason: String| StoreError::Unavailable { location: location.to_owned(), reason };
    let (rest, params) = take_tls_params(conninfo).map_err(&unavailable)?;
    let mut config = Config::from_str(&rest)
        .map_err(|e| unavailable(format!("not a PostgreSQL connection string: {e}")))?;
    if config.get_application_name().is_none() {
        // Shows who holds a connection in `pg_stat_activity`.
        config.application_name("buildstate");
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        // No host: the local server's Unix socket, as libpq (psql) connects, in the
        // directory Debian's and most packages' servers use, else libpq's built-in one.
        let debian = std::path::Path::new("/var/run/postgresql");
        config.host_path(if debian.is_dir() { debian } else { std::path::Path::new("/tmp") });
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let tls = Tls::new(params.sslmode.as_deref(), params.sslrootcert.as_deref(), home.as_deref())
        .map_err(&unavailable)?;
    config.ssl_mode(tls.driver_mode());
    // PostgreSQL offers no TLS over a Unix socket, and libpq does not ask for it there.
    let unix_only = config.get_hostaddrs().is_empty()
        && !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
    if unix_only {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    }
    Ok((config, tls))
}

/// Checks a schema name: `[a-z_][a-z0-9_]*`, at most 63 bytes (PostgreSQL's identifier
/// limit, beyond which it would silently truncate). A name of this shape needs no
/// quoting, which is what lets it be written into `CREATE SCHEMA` and the connection's
/// startup options — identifiers cannot be bound as parameters.
pub(crate) fn check_schema(schema: &str) -> StoreResult<()> {
    let mut chars = schema.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "`{}` is not a usable schema name: use 1-63 characters from a-z 0-9 _, not starting with a digit",
            schema.escape_debug()
        )))
    }
}

/// Makes every connection of the pool resolve unqualified table names in `schema` first
/// (`search_path`), from its first statement: set as a startup option, so there is no
/// window in which a fresh connection would see another schema's tables.
pub(crate) fn use_schema(config: &mut Config, schema: &str) {
    let option = format!("-c search_path={schema}");
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {option}"),
        _ => option,
    };
    config.options(options);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn passwords_with_unencoded_at_or_question_marks_are_hidden_whole() {
        for url in ["postgres://u:SEC@RET@127.0.0.1:1/db", "postgres://u:SEC?RET@127.0.0.1:1/db"] {
            let shown = redact(url);
            assert!(!shown.contains("SEC") && !shown.contains("RET"), "{url} → {shown}");
            assert!(shown.contains("127.0.0.1:1/db"), "{shown}");
        }
    }

    #[test]
    fn passwords_are_replaced_in_urls() {
        let cases = [
            (
                "postgres://buildstate:buildstate@127.0.0.1:5432/buildstate",
                "postgres://buildstate:***@127.0.0.1:5432/buildstate",
            ),
            (
                "postgresql://u:p%40ss@db.internal/ci?sslmode=prefer",
                "postgresql://u:***@db.internal/ci?sslmode=prefer",
            ),
            ("postgres://u:a:b/c?d@host/db", "postgres://u:***@host/db"),
            ("postgres://u@host/db", "postgres://u@host/db"),
            (
                "postgres://host/db?user=u&password=s3cret&sslmode=disable",
                "postgres://host/db?user=u&password=***&sslmode=disable",
            ),
            (
                "postgres://host/db?sslpassword=k3y&sslmode=require",
                "postgres://host/db?sslpassword=***&sslmode=require",
            ),
            ("postgres:///db", "postgres:///db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn passwords_are_replaced_in_key_value_strings() {
        let cases = [
            ("host=h password=s3cret user=u", "host=h password=*** user=u"),
            ("host=h password = 'se cr\\'et' dbname=d", "host=h password = *** dbname=d"),
            ("password='unterminated", "password=***"),
            ("  user=u  password=x", "  user=u  password=***"),
            ("host=h dbname=password", "host=h dbname=password"),
            ("host=h sslpassword=k3y user=u", "host=h sslpassword=*** user=u"),
        ];
        for (s, shown) in cases {
            assert_eq!(redact(s), shown, "{s}");
        }
    }

    #[test]
    fn escaped_whitespace_does_not_end_a_password() {
        // The driver reads `se\ cret` as one value, `se cret`.
        assert_eq!(redact("host=h password=se\\ cret user=u"), "host=h password=*** user=u");
        let config = Config::from_str("host=h password=se\\ cret user=u").expect("parses");
        assert_eq!(config.get_password(), Some(b"se cret".as_slice()));
    }

    #[test]
    fn tls_options_are_taken_out_and_the_rest_left_as_written() {
        let params = |mode: Option<&str>, root: Option<&str>| TlsParams {
            sslmode: mode.map(str::to_owned),
            sslrootcert: root.map(str::to_owned),
        };
        let cases = [
            ("postgres://u:p@h/db", "postgres://u:p@h/db", params(None, None)),
            (
                "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem",
                "postgres://u:p@h/db",
                params(Some("verify-full"), Some("/etc/ca x.pem")),
            ),
            (
                "postgresql://h/db?application_name=a&sslmode=require&connect_timeout=3",
                "postgresql://h/db?application_name=a&connect_timeout=3",
                params(Some("require"), None),
            ),
            ("postgres://u:a?b@h/db?sslmode=disable", "postgres://u:a?b@h/db", params(Some("disable"), None)),
            ("postgres://h?sslmode=prefer&sslmode=require", "postgres://h", params(Some("require"), None)),
            (
                "host=h sslmode=verify-ca sslrootcert='/my ca\\'s.pem' user=u",
                "host=h   user=u",
                params(Some("verify-ca"), Some("/my ca's.pem")),
            ),
            ("sslmode = require", "", params(Some("require"), None)),
            (
                "host=h password=x\\ y sslmode=require",
                "host=h password=x\\ y ",
                params(Some("require"), None),
            ),
            ("host=h nonsense", "host=h nonsense", params(None, None)),
        ];
        for (conninfo, rest, expected) in cases {
            let (kept, found) = take_tls_params(conninfo).expect(conninfo);
            assert_eq!((kept.as_ref(), &found), (rest, &expected), "{conninfo}");
        }
    }

    #[test]
    fn the_driver_is_told_whether_tls_is_required() {
        use tokio_postgres::config::SslMode as Driver;
        let mode = |s: &str| parse(s, "shown").map(|(c, _)| c.get_ssl_mode()).map_err(|e| e.to_string());
        assert_eq!(mode("postgres://h/db"), Ok(Driver::Prefer));
        assert_eq!(mode("postgres://h/db?sslmode=disable"), Ok(Driver::Disable));
        assert_eq!(mode("postgres://h/db?sslmode=verify-full&sslrootcert=/ca.pem"), Ok(Driver::Require));
        // A Unix socket never carries TLS, whatever the mode (as in libpq).
        assert_eq!(mode("host=/run/postgresql dbname=d sslmode=require"), Ok(Driver::Disable));
        let refused = mode("postgres://u:hunter2@h/db?sslmode=verify-full").expect_err("no CA");
        assert!(refused.contains("shown") && !refused.contains("hunter2"), "{refused}");
    }

    #[test]
    fn a_redacted_string_keeps_no_password_the_driver_would_read() {
        for s in [
            "postgres://me:hunter2@localhost/db",
            "postgres://me:hunter2@localhost/db?password=hunter2",
            "host=localhost user=me password='hunter2'",
        ] {
            let shown = redact(s);
            assert!(!shown.contains("hunter2"), "{shown}");
            let config = Config::from_str(&shown).expect("a redacted string still parses");
            assert_ne!(config.get_password(), Some(b"hunter2".as_slice()));
        }
    }

    #[test]
    fn no_host_is_the_local_unix_socket_as_for_libpq() {
        for conninfo in ["postgres:///db", "dbname=db user=u"] {
            let (config, _) = parse(conninfo, "here").expect("parses");
            match config.get_hosts() {
                [Host::Unix(dir)] => {
                    assert!(dir == Path::new("/var/run/postgresql") || dir == Path::new("/tmp"))
                }
                hosts => panic!("{conninfo}: {hosts:?}"),
            }
        }
        let (config, _) = parse("postgres://db.example/db", "here").expect("parses");
        assert!(matches!(config.get_hosts(), [Host::Tcp(h)] if h == "db.example"), "a host is kept");
    }

    #[test]
    fn parse_errors_do_not_echo_the_string() {
        let secret = "postgres://me:hunter2@host:notaport/db";
        match parse(secret, &redact(secret)) {
            Err(e) => {
                let text = e.to_string();
                assert!(!text.contains("hunter2"), "{text}");
                assert!(text.contains("me:***@host"), "{text}");
            }
            Ok(_) => panic!("a port that is not a number must not parse"),
        }
    }

    #[test]
    fn schema_names() {
        for ok in ["public", "_x", "t_123_4_abcdef", &"a".repeat(63)] {
            assert!(check_schema(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "Public", "a-b", "a b", "a;drop", "\"x\"", &"a".repeat(64), "é"] {
            assert!(matches!(check_schema(bad), Err(StoreError::InvalidInput(_))), "{bad}");
        }
    }

    #[test]
    fn the_schema_is_appended_to_existing_options() {
        let mut config =
            Config::from_str("postgres://u@h/db?options=-c%20statement_timeout%3D5s").expect("valid url");
        use_schema(&mut config, "t_1");
        assert_eq!(config.get_options(), Some("-c statement_timeout=5s -c search_path=t_1"));
        let mut plain = Config::new();
        use_schema(&mut plain, "t_2");
        assert_eq!(plain.get_options(), Some("-c search_path=t_2"));
    }
}
