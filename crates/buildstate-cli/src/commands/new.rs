//! `new DIR`: writes a runnable image-build project (pipeline files, Packer templates,
//! Ansible playbooks, a README) into an empty or missing directory. Needs no store.
//!
//! The files are rendered by `new_files.rs` from templates under `assets/new/`; this
//! file checks the arguments and writes the project so that a failure leaves nothing
//! behind: everything goes into a hidden directory beside DIR, renamed into place last.

use std::path::{Path, PathBuf};

use buildstate_core::Name;

use super::new_files::{self, Project};
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory: created if missing; must be empty
    dir: PathBuf,
    /// OS versions to build (comma-separated or repeated)
    #[arg(long, value_delimiter = ',', default_value = "rhel-9.6", value_name = "LIST")]
    os: Vec<String>,
    /// Platforms to build on; each starts with aws, azure, gcp or openstack (the
    /// template's Packer builders)
    #[arg(long, value_delimiter = ',', default_value = "aws-commercial", value_name = "LIST")]
    platform: Vec<String>,
    /// Image types to build
    #[arg(long, value_delimiter = ',', default_value = "base", value_name = "LIST")]
    image: Vec<String>,
    /// The pipeline's name [default: DIR's base name, made a valid name]
    #[arg(long)]
    name: Option<String>,
}

pub fn run(a: &Args) -> Result<(), CliError> {
    let project = project(a)?;
    check_target(&a.dir)?;
    let files = new_files::render(&project)?;
    write_atomically(&a.dir, &files)?;
    if !output::quiet() {
        for (path, _) in &files {
            output::line(a.dir.join(path).display().to_string())?;
        }
    }
    output::notice(format!(
        "try it: cd {} && buildstate run pipeline.dry-run.yaml --add-missing (see README.md)",
        super::kept::quote(&a.dir.display().to_string())
    ));
    Ok(())
}

/// The checked names of the project.
fn project(a: &Args) -> Result<Project, CliError> {
    let name = match &a.name {
        Some(n) => Name::new(n).map_err(|e| {
            CliError::usage(format!("--name: {e}")).with_hint("pipeline names look like `rhel-images`")
        })?,
        None => derived_name(&a.dir)?,
    };
    let os = names("--os", &a.os, "rhel-9.6,sles-15.7")?;
    let platform = names("--platform", &a.platform, "aws-commercial,azure")?;
    let image = names("--image", &a.image, "base,hana")?;
    Project::new(name, os, platform, image)
}

/// A comma-separated (or repeated) list of catalog names: at least one, each valid,
/// repeats kept once (as the matrix does).
fn names(flag: &str, raw: &[String], example: &str) -> Result<Vec<Name>, CliError> {
    let mut out: Vec<Name> = Vec::new();
    for word in raw.iter().map(|w| w.trim()) {
        if word.is_empty() {
            continue;
        }
        let n = Name::new(word).map_err(|e| {
            CliError::usage(format!("{flag}: {e}")).with_hint(format!(
                "give names like `{flag} {example}`; names new to the store are added by `run --add-missing`"
            ))
        })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        return Err(CliError::usage(format!("{flag} is empty; a project builds at least one"))
            .with_hint(format!("for example `{flag} {example}`")));
    }
    Ok(out)
}

/// DIR's base name made a valid pipeline name: lower case, other characters as `-`.
fn derived_name(dir: &Path) -> Result<Name, CliError> {
    let base = std::path::absolute(dir)
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut name: String = base
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .collect();
    name = name.trim_start_matches(['.', '_', '-']).chars().take(64).collect();
    Name::new(&name).map_err(|_| {
        CliError::usage(format!("cannot make a pipeline name of the directory name `{base}`"))
            .with_hint("give one with --name, such as --name rhel-images")
    })
}

/// DIR must be missing or an empty directory: a project is never written over files.
fn check_target(dir: &Path) -> Result<(), CliError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::usage(format!("cannot read {}: {e}", dir.display()))),
        Ok(m) if !m.is_dir() => {
            Err(CliError::usage(format!("{} exists and is not a directory", dir.display()))
                .with_hint("give a new directory, or an empty one"))
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", dir.display())))?;
            if entries.next().is_some() {
                return Err(CliError::usage(format!(
                    "{} is not empty; `new` writes a project only into a new or empty directory",
                    dir.display()
                ))
                .with_hint("give a new directory, or empty this one first"));
            }
            Ok(())
        }
    }
}

/// Writes every file into a hidden directory beside `dir`, then renames it to `dir`
/// (replacing an empty `dir`): an error half way leaves nothing but what was there.
fn write_atomically(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), CliError> {
    let absolute = std::path::absolute(dir)
        .map_err(|e| CliError::usage(format!("cannot resolve {}: {e}", dir.display())))?;
    let (Some(parent), Some(base)) = (absolute.parent(), absolute.file_name()) else {
        return Err(CliError::usage(format!("{} cannot be a project directory", dir.display())));
    };
    if !parent.is_dir() {
        return Err(CliError::usage(format!("{} does not exist", parent.display()))
            .with_hint("create the parent directory first"));
    }
    let staging = parent.join(format!(".{}.new-{}", base.to_string_lossy(), std::process::id()));
    let written = write_all(&staging, files).and_then(|()| {
        if absolute.is_dir() {
            // Checked empty above; `remove_dir` refuses it if something appeared since.
            std::fs::remove_dir(&absolute).map_err(|e| (absolute.clone(), e))?;
        }
        std::fs::rename(&staging, &absolute).map_err(|e| (absolute.clone(), e))
    });
    written.map_err(|(path, e)| {
        let _ = std::fs::remove_dir_all(&staging);
        CliError::internal(format!("cannot write {}: {e}; nothing was written", path.display()))
            .with_hint("check that the directory is writable")
    })
}

fn write_all(root: &Path, files: &[(PathBuf, String)]) -> Result<(), (PathBuf, std::io::Error)> {
    std::fs::create_dir(root).map_err(|e| (root.to_owned(), e))?;
    for (path, text) in files {
        let full = root.join(path);
        if let Some(p) = full.parent() {
            std::fs::create_dir_all(p).map_err(|e| (p.to_owned(), e))?;
        }
        std::fs::write(&full, text).map_err(|e| (full.clone(), e))?;
    }
    Ok(())
}
