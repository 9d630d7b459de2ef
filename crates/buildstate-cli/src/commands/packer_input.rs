//! What `buildstate packer` checks before Packer runs, so that a refused command has
//! run nothing and recorded nothing: the build, the map, the command line, and a
//! clean-up command for every builder `--keep-on-failure` may keep.

use std::path::{Path, PathBuf};

use buildstate_core::Build;
use buildstate_runner::packer::{PACKER_MAP_ENV, PackerMap, cloud_of};

use super::kept;
use crate::exit::{CliError, Exit};

/// A delivered or cancelled build has no milestone for Packer to move: running it would
/// build an image nothing records.
pub fn refuse_finished(build: &Build) -> Result<(), CliError> {
    if build.status.is_terminal() {
        return Err(CliError::new(
            Exit::Rejected,
            format!(
                "build {} is {}: there is no milestone left for packer to run; nothing was run",
                build.number, build.status
            ),
        )
        .with_hint("create a new build, or `buildstate rewind` this one to the milestone to run again"));
    }
    Ok(())
}

/// The map from `--map FILE`, else `$BUILDSTATE_PACKER_MAP` (JSON, set by the runner for
/// pipeline `packer:` steps), else none: the whole run is the build's current milestone.
pub fn load_map(file: Option<&Path>) -> Result<PackerMap, CliError> {
    let hint =
        "a map is `provisioners: {0: 10, 1: 15}` and `say: [{pattern: \"…\", milestone: 20}]` (YAML or JSON)";
    let (text, from) = match file {
        Some(path) => {
            let bytes = crate::input::read_file(path, "the Packer map", 1024 * 1024)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                CliError::usage(format!("the Packer map {} is not UTF-8 text", path.display()))
            })?;
            (text, path.display().to_string())
        }
        None => match std::env::var(PACKER_MAP_ENV) {
            Ok(text) if !text.trim().is_empty() => (text, format!("${PACKER_MAP_ENV}")),
            _ => return Ok(PackerMap::default()),
        },
    };
    PackerMap::parse(&text)
        .map_err(|why| CliError::usage(format!("the Packer map {from} is not valid: {why}")).with_hint(hint))
}

/// Every milestone of the map must be in the build's catalog.
pub fn check_map(map: &PackerMap, build: &Build) -> Result<(), CliError> {
    let outside = map.outside(|c| build.catalog.contains(c));
    if outside.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "the Packer map names milestone{} {} not in the catalog of build {} (valid: {}); nothing was run",
        if outside.len() == 1 { "" } else { "s" },
        outside.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        build.number,
        build.catalog.code_list(),
    ))
    .with_hint(
        "map provisioners to milestones of the build's catalog (`buildstate build show REF` lists them)",
    ))
}

/// `packer build ARGS…` with `-machine-readable` (and `-on-error=abort` to keep a failed
/// VM) right after `build`.
pub fn packer_argv(command: &[String], keep: bool) -> Result<Vec<String>, CliError> {
    let at = command.iter().position(|w| w == "build").filter(|i| *i >= 1);
    let Some(at) = at else {
        return Err(CliError::usage(format!("`{}` is not a `packer build` command", command.join(" ")))
            .with_hint("run it as `buildstate packer REF -- packer build [ARGS…] TEMPLATE`"));
    };
    let mut argv = command.to_vec();
    if keep && let Some(other) = argv.iter().find(|w| w.starts_with("-on-error")) {
        return Err(CliError::usage(format!(
            "--keep-on-failure passes -on-error=abort itself; remove `{other}`"
        )));
    }
    let mut extra = Vec::new();
    if !argv.iter().any(|w| w == "-machine-readable") {
        extra.push("-machine-readable".to_owned());
    }
    if keep {
        extra.push("-on-error=abort".to_owned());
    }
    argv.splice(at + 1..at + 1, extra);
    Ok(argv)
}

/// Refuses `--keep-on-failure` without `--cleanup` when the template has a builder
/// with no default clean-up (the `null` builder, local builders): a kept resource
/// nobody can reap is the leak this feature exists to prevent.
pub fn check_default_cleanups(argv: &[String]) -> Result<(), CliError> {
    let Some(template) = argv.last().map(PathBuf::from) else { return Ok(()) };
    let missing: Vec<String> = builder_types(&template)
        .into_iter()
        .filter(|t| kept::default_cleanup(&cloud_of(t)).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "--keep-on-failure needs --cleanup for builder{} {}: buildstate knows no clean-up command for {}",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        if missing.len() == 1 { "it" } else { "them" }
    ))
    .with_hint("give --cleanup 'COMMAND {id}' ({id}, {cloud}, {region} and {build} are filled in)"))
}

/// The builder types a template (file or directory) declares: `source "TYPE" "name"`
/// in HCL2, `"type": "TYPE"` of `builders` in JSON. Unreadable templates give none:
/// Packer reports those itself.
fn builder_types(template: &Path) -> Vec<String> {
    let files: Vec<PathBuf> = if template.is_dir() {
        std::fs::read_dir(template)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    } else {
        vec![template.to_owned()]
    };
    let mut types = Vec::new();
    for f in files {
        let name = f.to_string_lossy().into_owned();
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        if name.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            for b in v.get("builders").and_then(|b| b.as_array()).into_iter().flatten() {
                if let Some(t) = b.get("type").and_then(|t| t.as_str()) {
                    types.push(t.to_owned());
                }
            }
        } else if name.ends_with(".pkr.hcl") {
            for line in text.lines() {
                let line = line.trim_start();
                if let Some(rest) = line.strip_prefix("source ")
                    && let Some(t) = rest.trim_start().strip_prefix('"').and_then(|r| r.split('"').next())
                {
                    types.push(t.to_owned());
                }
            }
        }
    }
    types.sort();
    types.dedup();
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_go_right_after_build() {
        let argv = packer_argv(&words("packer build -var a=b t.pkr.hcl"), true).expect("ok");
        assert_eq!(argv, words("packer build -machine-readable -on-error=abort -var a=b t.pkr.hcl"));
        let argv = packer_argv(&words("/usr/bin/packer build -machine-readable t"), false).expect("ok");
        assert_eq!(argv, words("/usr/bin/packer build -machine-readable t"));
        assert!(packer_argv(&words("packer validate t"), false).is_err());
        assert!(packer_argv(&words("build t"), false).is_err());
        assert!(packer_argv(&words("packer build -on-error=ask t"), true).is_err());
    }
}
