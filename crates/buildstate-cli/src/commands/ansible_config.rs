//! What the user configured for callbacks, found the way Ansible finds it, so that the
//! wrapper adds the buildstate plugin to it instead of replacing it.
//!
//! The wrapper enables the plugin through environment variables, and in Ansible an
//! environment variable overrides `ansible.cfg`: setting `ANSIBLE_CALLBACK_PLUGINS`
//! alone would hide the project's `callback_plugins` (and a `stdout_callback` that
//! lives there would not load: hostile review), and `ANSIBLE_CALLBACKS_ENABLED` alone
//! would turn off its `callbacks_enabled`. So each variable is the user's value — the
//! environment's if set, else the config file's — with ours added.

use std::path::{Path, PathBuf};

/// The user's callback settings, before ours are added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Callbacks {
    /// Plugin directories, `:`-separated, relative ones made absolute against the
    /// config file's directory (as Ansible resolves them).
    pub plugin_paths: Option<String>,
    /// Enabled callback names, `,`-separated.
    pub enabled: Option<String>,
}

/// Reads the settings from `env` (a lookup of environment variables) and the config
/// file Ansible would load when started in `cwd`.
pub fn callbacks(env: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> Callbacks {
    let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let file = config_file(env, cwd);
    let from_file = file.as_deref().and_then(|f| std::fs::read_to_string(f).ok().map(|t| (f, t)));
    let ini = |keys: &[&str]| from_file.as_ref().and_then(|(_, text)| defaults_value(text, keys));
    let base = from_file.as_ref().map_or(cwd, |(f, _)| f.parent().unwrap_or(Path::new(".")));
    let plugin_paths = var("ANSIBLE_CALLBACK_PLUGINS")
        .or_else(|| ini(&["callback_plugins"]).map(|v| absolute_paths(&v, base)))
        // Unset, Ansible looks in its own directories; setting the variable to ours
        // alone would hide a stdout callback kept there (hostile review).
        .or_else(|| {
            let home = var("ANSIBLE_HOME")
                .or_else(|| ini(&["home"]).map(|h| absolute_paths(&h, base)))
                .or_else(|| var("HOME").map(|h| format!("{h}/.ansible")))?;
            Some(format!(
                "{}/plugins/callback:/usr/share/ansible/plugins/callback",
                expand_home(&home, env).display()
            ))
        });
    // The old names still work in ansible-core 2.14 (`callback_whitelist`).
    let enabled = var("ANSIBLE_CALLBACKS_ENABLED")
        .or_else(|| var("ANSIBLE_CALLBACK_WHITELIST"))
        .or_else(|| ini(&["callbacks_enabled", "callback_whitelist"]));
    Callbacks { plugin_paths, enabled }
}

/// The first of `ANSIBLE_CONFIG`, `./ansible.cfg`, `~/.ansible.cfg` and
/// `/etc/ansible/ansible.cfg` that exists, as Ansible looks (it skips a world-writable
/// current directory's file, and so does this).
fn config_file(env: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(given) = env("ANSIBLE_CONFIG").filter(|v| !v.is_empty()) {
        let given = cwd.join(expand_home(&given, env));
        candidates.push(if given.is_dir() { given.join("ansible.cfg") } else { given });
    }
    if !world_writable(cwd) {
        candidates.push(cwd.join("ansible.cfg"));
    }
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        candidates.push(Path::new(&home).join(".ansible.cfg"));
    }
    candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    candidates.into_iter().find(|p| p.is_file())
}

fn world_writable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
}

fn expand_home(path: &str, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (path.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The value of the first of `keys` in the `[defaults]` section of an INI text, as
/// Python's configparser reads what Ansible writes: `key = value` or `key: value`,
/// `#` and `;` comment lines, indented lines continuing a value.
fn defaults_value(text: &str, keys: &[&str]) -> Option<String> {
    let mut in_defaults = false;
    let mut found: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            in_defaults = trimmed.trim_end_matches(']').trim_start_matches('[').trim() == "defaults";
            continue;
        }
        if !in_defaults {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = found.last_mut() {
                value.push(' ');
                value.push_str(trimmed);
            }
            continue;
        }
        let Some(split) = trimmed.find(['=', ':']) else { continue };
        let key = trimmed[..split].trim().to_ascii_lowercase();
        let value = trimmed[split + 1..].trim();
        // An inline comment needs the space before it, as configparser's `; ` does.
        let value = value.split(" ;").next().unwrap_or(value).split(" #").next().unwrap_or(value).trim();
        found.push((key, value.to_owned()));
    }
    keys.iter().find_map(|k| found.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
}

fn absolute_paths(list: &str, base: &Path) -> String {
    list.split(':')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = Path::new(p);
            if p.is_absolute() || p.starts_with("~") { p.to_owned() } else { base.join(p) }
        })
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "\
# a project's ansible.cfg
[inventory]
callbacks_enabled = not-this
[defaults]
inventory = hosts
Callback_Plugins = ./plugins:/opt/cb ; ours
stdout_callback = yaml
callbacks_enabled: timer,
  profile_tasks
";

    #[test]
    fn the_defaults_section_is_read_as_configparser_does() {
        assert_eq!(defaults_value(CFG, &["callback_plugins"]).as_deref(), Some("./plugins:/opt/cb"));
        assert_eq!(defaults_value(CFG, &["callbacks_enabled"]).as_deref(), Some("timer, profile_tasks"));
        assert_eq!(defaults_value(CFG, &["nothing"]), None);
        assert_eq!(absolute_paths("./plugins:/opt/cb", Path::new("/p")), "/p/./plugins:/opt/cb");
    }

    #[test]
    fn the_environment_wins_over_the_file_and_the_file_is_found_in_the_working_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ansible.cfg"), CFG).expect("write");
        let none = |_: &str| None;
        let got = callbacks(&none, dir.path());
        assert_eq!(got.plugin_paths, Some(format!("{}/./plugins:/opt/cb", dir.path().display())));
        assert_eq!(got.enabled.as_deref(), Some("timer, profile_tasks"));
        let set = |k: &str| (k == "ANSIBLE_CALLBACKS_ENABLED").then(|| "junit".to_owned());
        assert_eq!(callbacks(&set, dir.path()).enabled.as_deref(), Some("junit"));
        let home = |k: &str| match k {
            "HOME" => Some("/home/ci".to_owned()),
            _ => None,
        };
        let bare = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            callbacks(&home, bare.path()).plugin_paths.as_deref(),
            Some("/home/ci/.ansible/plugins/callback:/usr/share/ansible/plugins/callback"),
            "Ansible's own directories when nothing is configured"
        );
        let elsewhere = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("ansible.cfg").display().to_string();
        let named = move |k: &str| (k == "ANSIBLE_CONFIG").then(|| config.clone());
        assert_eq!(callbacks(&named, elsewhere.path()).enabled.as_deref(), Some("timer, profile_tasks"));
    }
}
