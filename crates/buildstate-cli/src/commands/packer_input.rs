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
    PackerMap::parse(&text).map_err(|why| {
        // The YAML reader calls its input `<input>`: name the file instead.
        let why = why.replace("<input>", &from);
        CliError::usage(format!("the Packer map {from} is not valid: {why}")).with_hint(hint)
    })
}

/// A map only moves a build through its own milestones: a build already past all of
/// them has nothing left for this run, and running it anyway would start and complete
/// the build's next milestone, which the template does not do.
pub fn refuse_past_map(map: &PackerMap, build: &Build) -> Result<(), CliError> {
    let codes = map.milestones();
    let (Some(first), Some(last)) = (codes.first(), codes.last()) else { return Ok(()) };
    if build.state <= *last {
        return Ok(());
    }
    let covers = if first == last { first.to_string() } else { format!("{first}–{last}") };
    Err(CliError::new(
        Exit::Rejected,
        format!(
            "build {} is at {}, past the milestones this map covers ({covers}); nothing to do",
            build.number, build.state
        ),
    )
    .with_hint(format!("`buildstate rewind {} {first}` to run these milestones again", build.number)))
}

/// The clean-up template's placeholders: `{id}`, `{cloud}`, `{region}`, `{build}`.
const PLACEHOLDERS: &[&str] = &["id", "cloud", "region", "build"];

/// A `--cleanup` that would run something else than meant is refused: blank, an unknown
/// `{name}` (left as shell text), or a `{` never closed.
pub fn check_cleanup(template: &str) -> Result<(), CliError> {
    let hint = "placeholders are {id}, {cloud}, {region} and {build}, e.g. --cleanup 'aws ec2 terminate-instances --instance-ids {id}'";
    if template.trim().is_empty() {
        return Err(CliError::usage("--cleanup is blank: a kept resource needs a command that removes it")
            .with_hint(hint));
    }
    let mut unknown = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        let Some(len) = rest[at..].find('}') else {
            return Err(CliError::usage(format!(
                "--cleanup has a `{{` that is never closed: `{}`",
                &rest[at..]
            ))
            .with_hint(hint));
        };
        let name = &rest[at + 1..at + len];
        if !PLACEHOLDERS.contains(&name) {
            unknown.push(format!("{{{name}}}"));
        }
        rest = &rest[at + len + 1..];
    }
    if unknown.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "--cleanup names unknown placeholder{} {}",
        plural(unknown.len()),
        unknown.join(", ")
    ))
    .with_hint(hint))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The program must be Packer itself: `-- echo build t` would be tracked as a Packer
/// run. And it must be startable, so that a missing `packer` fails before an attempt
/// is recorded (exit 127, as a shell says).
pub fn check_program(program: &str) -> Result<(), CliError> {
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name != "packer" {
        return Err(CliError::usage(format!("`{program}` is not packer: buildstate packer only runs Packer"))
            .with_hint("run it as `buildstate packer REF -- packer build [ARGS…] TEMPLATE` (a path ending in /packer is fine); other tools go through `buildstate exec`"));
    }
    if find_program(program).is_some() {
        return Ok(());
    }
    Err(CliError::new(
        Exit::Passthrough(127),
        format!("cannot run `{program}`: not found or not executable; nothing was run or recorded"),
    )
    .with_hint("install Packer (scripts/setup.sh does) or give its path: `-- /path/to/packer build …`"))
}

/// Where `program` would be run from: itself when it has a `/`, else the first
/// executable file of that name on `$PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| executable(p))
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
    let at = command.iter().position(|w| w == "build").filter(|i| *i == 1);
    let Some(at) = at else {
        return Err(CliError::usage(format!("`{}` is not a `packer build` command", command.join(" ")))
            .with_hint("run it as `buildstate packer REF -- packer build [ARGS…] TEMPLATE`"));
    };
    // `-timestamp-ui` only adds a time to each line; the attempt log has Packer's own
    // timestamps, and the map is read from the lines, so it is dropped (with a notice).
    let mut argv: Vec<String> = command.to_vec();
    let before = argv.len();
    argv.retain(|w| !is_timestamp_ui(w));
    if argv.len() != before {
        crate::output::notice(
            "-timestamp-ui dropped: buildstate packer reads Packer's lines itself; the attempt log keeps each line's time",
        );
    }
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

fn is_timestamp_ui(word: &str) -> bool {
    matches!(word, "-timestamp-ui" | "--timestamp-ui" | "-timestamp-ui=true" | "--timestamp-ui=true")
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
        assert!(packer_argv(&words("packer -x build t"), false).is_err());
        let argv = packer_argv(&words("packer build -timestamp-ui t"), false).expect("ok");
        assert_eq!(argv, words("packer build -machine-readable t"));
    }

    #[test]
    fn only_packer_runs() {
        for bad in ["echo", "rm", "/bin/echo", "packer.sh", "mypacker"] {
            let e = check_program(bad).expect_err(bad);
            assert_eq!(e.exit, Exit::Usage, "{bad}");
        }
        let e = check_program("/nonexistent/packer").expect_err("missing");
        assert_eq!(e.exit, Exit::Passthrough(127));
    }

    #[test]
    fn cleanup_templates_are_checked() {
        assert!(check_cleanup("aws ec2 terminate-instances --instance-ids {id} --region {region}").is_ok());
        assert!(check_cleanup("touch /tmp/{build}-{cloud}").is_ok());
        for (bad, says) in [("  ", "blank"), ("rm {idd} {x}", "{idd}, {x}"), ("rm {id", "never closed")] {
            let e = check_cleanup(bad).expect_err(bad);
            assert_eq!(e.exit, Exit::Usage);
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }
}
