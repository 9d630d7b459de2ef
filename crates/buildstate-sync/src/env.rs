use std::collections::BTreeMap;

/// The environment a target is configured from: a snapshot of the process environment
/// (`Env::process`) or explicit pairs (`Env::from_pairs`), so that tests and embedding
/// programs configure targets without mutating the process environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    pub fn process() -> Self {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Env(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The value of `key`, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The first of `keys` that is set.
    pub fn first(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// Every non-empty variable whose name starts with `prefix`.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k.starts_with(prefix) && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key).map(str::to_ascii_lowercase).as_deref(), Some("1" | "true" | "yes" | "on"))
    }
}

/// Values may be secrets: show names only.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// True for `http://127.0.0.1…`, `http://localhost…`, `http://[::1]…`: plain HTTP is
/// allowed without asking only for emulators on this machine.
#[cfg(any(feature = "cloud", test))]
pub(crate) fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_counts_as_an_emulator() {
        for yes in ["http://127.0.0.1:5055", "http://localhost/x", "http://[::1]:9000/", "http://127.0.0.2"] {
            assert!(is_loopback_http(yes), "{yes}");
        }
        for no in ["https://127.0.0.1", "http://example.com", "http://10.0.0.1:80", "127.0.0.1:4443"] {
            assert!(!is_loopback_http(no), "{no}");
        }
    }

    #[test]
    fn debug_hides_values() {
        let env = Env::from_pairs([("AWS_SECRET_ACCESS_KEY", "hunter2")]);
        assert_eq!(format!("{env:?}"), r#"{"AWS_SECRET_ACCESS_KEY"}"#);
        assert_eq!(env.get("AWS_SECRET_ACCESS_KEY"), Some("hunter2"));
    }
}
