//! Secrets out of what is shown: the password of a URL's user, query parameters that
//! carry credentials (`password=`, `sig=`, `token=`, …), and the `password=` of a
//! PostgreSQL key/value connection string.

/// Parts of a query parameter's name that mark its value as a secret.
const SECRET_PARAMS: &[&str] = &["pass", "secret", "token", "sig", "key", "credential", "auth"];

pub const HIDDEN: &str = "***";

/// `postgres://ci:s3cret@db/bs?sslmode=require` → `postgres://ci:***@db/bs?sslmode=require`.
/// `host=db password=s3cret` → `host=db password=***`. Other text that is not a URL (a
/// path) is returned as it is.
pub fn url(text: &str) -> String {
    if buildstate_postgres::conninfo::is_key_value(text) {
        return buildstate_postgres::conninfo::redact_key_values(text);
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        // `postgres:ci:pw@db/x` is no URL, and no path either: it may hold a password
        // anywhere, so only its scheme is shown.
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("postgres:") || lower.starts_with("postgresql:") {
            let scheme = text.split(':').next().unwrap_or_default();
            return format!("{scheme}:{HIDDEN}");
        }
        return text.to_owned();
    };
    // The user info runs to the last `@`, so that a password with an unencoded `?`,
    // `#`, `/` or `@` in it is hidden whole (an `@` further on hides more, never less).
    let authority_end = match rest.rfind('@') {
        Some(at) => at + 1 + rest[at + 1..].find(['/', '?', '#']).unwrap_or(rest.len() - at - 1),
        None => rest.find(['/', '?', '#']).unwrap_or(rest.len()),
    };
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{HIDDEN}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((name, _)) if is_secret(name) => format!("{name}={HIDDEN}"),
                    _ => p.to_owned(),
                })
                .collect();
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            format!("{path}?{}{fragment}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn is_secret(param: &str) -> bool {
    let lower = param.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| lower.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_with_unencoded_at_or_question_marks_are_hidden_whole() {
        for u in ["postgres://u:SEC@RET@127.0.0.1:1/db", "postgres://u:SEC?RET@127.0.0.1:1/db"] {
            let shown = url(u);
            assert!(!shown.contains("SEC") && !shown.contains("RET"), "{u} → {shown}");
            assert!(shown.ends_with("@127.0.0.1:1/db"), "{shown}");
        }
    }

    #[test]
    fn passwords_and_credential_parameters_are_hidden() {
        assert_eq!(url("postgres://ci:s3cret@db:5432/bs"), "postgres://ci:***@db:5432/bs");
        assert_eq!(
            url("postgresql://ci:p%40ss@db/bs?sslmode=require"),
            "postgresql://ci:***@db/bs?sslmode=require"
        );
        assert_eq!(url("postgres://db/bs?user=ci&password=s3cret"), "postgres://db/bs?user=ci&password=***");
        assert_eq!(url("az://c/p?sv=1&sig=abc#x"), "az://c/p?sv=1&sig=***#x");
        assert_eq!(url("postgres://ci@db/bs"), "postgres://ci@db/bs");
        assert_eq!(url("s3://bucket/prefix"), "s3://bucket/prefix");
        assert_eq!(url("/var/lib/bs.db"), "/var/lib/bs.db");
        assert_eq!(url("postgres:ci:SuperSecret@127.0.0.1/x"), "postgres:***", "one slash short of a URL");
        assert_eq!(url("PostgreSQL:/ci:s3cret@db/x"), "PostgreSQL:***");
        assert_eq!(
            url("host=db user=ci password=s3cret dbname=bs"),
            "host=db user=ci password=*** dbname=bs"
        );
    }
}
