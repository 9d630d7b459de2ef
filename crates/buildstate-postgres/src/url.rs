//! Connection strings: parsing, the schema option, and redaction for messages.
//!
//! A connection string carries a password, and `Store::location` ends up in error
//! messages, logs and tables. Every string shown to people goes through [`redact`],
//! which finds the password exactly where the driver does (the userinfo of a URL up to
//! the first `@`, a `password=` query parameter, or a `password` key of a key/value
//! string) and replaces it with `***`.

use std::str::FromStr;

use buildstate_store::{StoreError, StoreResult};
use tokio_postgres::Config;

const MASK: &str = "***";

/// The connection string with every password replaced by `***`.
pub(crate) fn redact(conninfo: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = conninfo.strip_prefix(scheme) {
            return format!("{scheme}{}", redact_url_rest(rest));
        }
    }
    redact_key_values(conninfo)
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
                    Some((k, _)) if k == "password" => format!("{k}={MASK}"),
                    _ => p.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

/// `host=h password='a b' user=u` → `host=h password=*** user=u`. Values are either
/// single-quoted (with `\` escapes) or run to the next whitespace, as libpq reads them.
fn redact_key_values(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let trimmed = rest.trim_start();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        if rest.is_empty() {
            return out;
        }
        let key_end = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
        let key = &rest[..key_end];
        let after_key = rest[key_end..].trim_start();
        let Some(value_and_rest) = after_key.strip_prefix('=') else {
            // Not `key = value`: keep the word and move on.
            out.push_str(&rest[..key_end]);
            rest = &rest[key_end..];
            continue;
        };
        let value_start = value_and_rest.trim_start();
        let value_len = value_len(value_start);
        let consumed = rest.len() - value_start.len() + value_len;
        if key == "password" {
            out.push_str(&rest[..rest.len() - value_start.len()]);
            out.push_str(MASK);
        } else {
            out.push_str(&rest[..consumed]);
        }
        rest = &rest[consumed..];
    }
}

/// Length in bytes of the value at the start of `s`.
fn value_len(s: &str) -> usize {
    if let Some(quoted) = s.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return i + 2,
                _ => {}
            }
        }
        s.len()
    } else {
        s.find(char::is_whitespace).unwrap_or(s.len())
    }
}

/// Parses `conninfo` (URL or key/value form). The driver's parse error never contains
/// the string itself, but the message names the redacted location to be sure.
pub(crate) fn parse(conninfo: &str, location: &str) -> StoreResult<Config> {
    let mut config = Config::from_str(conninfo).map_err(|e| StoreError::Unavailable {
        location: location.to_owned(),
        reason: format!("not a PostgreSQL connection string: {e}"),
    })?;
    if config.get_application_name().is_none() {
        // Shows who holds a connection in `pg_stat_activity`.
        config.application_name("buildstate");
    }
    Ok(config)
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
        ];
        for (s, shown) in cases {
            assert_eq!(redact(s), shown, "{s}");
        }
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
