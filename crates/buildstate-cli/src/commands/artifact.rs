//! `artifact add|list`: what a build produced, where it is, and its digest.

use std::io::Read;
use std::path::{Path, PathBuf};

use buildstate_core::{Artifact, ArtifactKind, Build, Sha256Hex};
use comfy_table::Table;
use sha2::{Digest, Sha256};

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::input;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Record an artifact (one of the same name is replaced)
    Add(AddArgs),
    /// List a build's current artifacts (those of milestones a rewind sent the build
    /// back through are invalidated: shown with --all)
    List {
        /// Build id, build number, or a unique prefix of either
        reference: String,
        /// Also list the artifacts a rewind invalidated, marked with when
        #[arg(long)]
        all: bool,
    },
    /// Record the images and files of a Packer manifest (the last run's entries)
    IngestManifest(IngestArgs),
}

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// The file Packer's `manifest` post-processor wrote; relative file names in it
    /// start in its directory
    file: PathBuf,
    /// Every run's entries, not only those of `last_run_uuid`
    #[arg(long)]
    all_runs: bool,
    /// Ingest even if its `custom_data.buildstate_build` names another build
    #[arg(long)]
    force: bool,
    /// Accept file names outside the manifest's directory (`../`, absolute paths)
    #[arg(long)]
    allow_outside: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    #[arg(long, value_parser = input::label)]
    name: String,
    /// image, disk, manifest, report or other
    #[arg(long)]
    kind: ArtifactKind,
    /// Where it is: an AMI id, an image id, s3://…, file://…
    #[arg(long, value_parser = input::uri)]
    uri: String,
    #[arg(long, value_parser = input::label)]
    region: Option<String>,
    /// The cloud it is in: aws, azure, gcp, openstack, …
    #[arg(long, value_parser = input::label)]
    cloud: Option<String>,
    /// Size in bytes (computed from --file when given)
    #[arg(long, value_name = "BYTES")]
    size: Option<u64>,
    /// SHA-256 in hex (computed from --file when given; must then match)
    #[arg(long, value_parser = input::sha256, value_name = "HEX")]
    sha256: Option<Sha256Hex>,
    /// A local copy to measure and hash
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::Add(a) => add(a, ctx).await,
        Args::IngestManifest(a) => ingest_manifest(a, ctx).await,
        Args::List { reference, all } => {
            let b = ctx.find(&reference).await?;
            let artifacts = ctx.store.artifacts(b.id).await?;
            let (shown, hidden) = shown(&artifacts, all);
            if ctx.json {
                return output::json(&shown);
            }
            if shown.is_empty() {
                output::line(format!("build {} has no current artifacts", b.number))?;
            } else {
                output::print_table(&table(&b, &shown, all))?;
            }
            hidden_note(hidden);
            Ok(())
        }
    }
}

/// The artifacts to show — the current ones, or with `all` every one — and how many
/// invalidated ones that leaves out.
pub fn shown(artifacts: &[Artifact], all: bool) -> (Vec<Artifact>, usize) {
    let shown: Vec<Artifact> = artifacts.iter().filter(|a| all || a.is_current()).cloned().collect();
    let hidden = artifacts.len() - shown.len();
    (shown, hidden)
}

/// Says that invalidated artifacts were left out, and how to see them (information:
/// not under `--quiet`).
pub fn hidden_note(hidden: usize) {
    match hidden {
        0 => {}
        1 => output::progress_line("(1 artifact invalidated by a rewind is not shown; --all shows it)"),
        n => output::progress_line(&format!(
            "({n} artifacts invalidated by a rewind are not shown; --all shows them)"
        )),
    }
}

async fn add(a: AddArgs, ctx: &Ctx) -> Result<(), CliError> {
    let (size, sha256) = match &a.file {
        Some(path) => {
            let (size, digest) = measure(path)?;
            check_matches("size", a.size.map(|s| s.to_string()), &size.to_string(), path)?;
            check_matches("SHA-256", a.sha256.as_ref().map(|h| h.to_string()), digest.as_str(), path)?;
            (Some(size), Some(digest))
        }
        None => (a.size, a.sha256),
    };
    let b = ctx.find(&a.reference).await?;
    let artifact = Artifact {
        name: a.name,
        kind: a.kind,
        uri: a.uri,
        region: a.region.filter(|r| !r.is_empty()),
        cloud: a.cloud.filter(|c| !c.is_empty()),
        size_bytes: size,
        sha256,
        created_at: buildstate_store::now(),
        // The store records the milestone the build is at.
        milestone: None,
        invalidated_at: None,
    };
    ctx.store.add_artifact(b.id, &artifact, ctx.guard).await?;
    if ctx.json {
        // What was stored, with the milestone the store recorded it at.
        let stored = ctx.store.artifacts(b.id).await?.into_iter().find(|a| a.name == artifact.name);
        output::json(&stored.unwrap_or(artifact))
    } else {
        output::line(format!("recorded {} {} for build {}", artifact.kind, artifact.name, b.number))
    }
}

async fn ingest_manifest(a: IngestArgs, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(&a.reference).await?;
    let base = a
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    let how = super::manifest_ingest::Ingest {
        all_runs: a.all_runs,
        force: a.force,
        base,
        allow_outside: a.allow_outside,
    };
    let artifacts = super::manifest_ingest::read(&a.file, &b, &how)?;
    super::manifest_ingest::record(ctx.store.as_ref(), &b, &artifacts, ctx.guard).await?;
    if ctx.json {
        let names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
        let stored: Vec<Artifact> = ctx
            .store
            .artifacts(b.id)
            .await?
            .into_iter()
            .filter(|s| names.contains(&s.name.as_str()))
            .collect();
        return output::json(&stored);
    }
    if artifacts.is_empty() {
        return output::line(format!(
            "{} has no images or files to record for build {}",
            a.file.display(),
            b.number
        ));
    }
    for art in &artifacts {
        output::line(format!("recorded {} {} for build {}", art.kind, art.name, b.number))?;
    }
    Ok(())
}

fn check_matches(what: &str, given: Option<String>, actual: &str, path: &Path) -> Result<(), CliError> {
    match given {
        Some(g) if g != actual => Err(CliError::usage(format!(
            "the {what} given ({g}) does not match {} ({actual}); nothing was recorded",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Size and SHA-256 of a file, read in chunks so that a 30 GiB disk image is fine.
pub(super) fn measure(path: &Path) -> Result<(u64, Sha256Hex), CliError> {
    let cannot = |e: std::io::Error| CliError::usage(format!("cannot read {}: {e}", path.display()));
    let mut file = crate::input::open_regular(path, "the artifact file")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(cannot)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let digest = Sha256Hex::new(&hex).map_err(CliError::internal)?;
    Ok((size, digest))
}

/// The artifacts of build `b` as a table; `marked` adds the INVALIDATED column (when a
/// rewind invalidated each, `-` for current ones).
pub fn table(b: &Build, artifacts: &[Artifact], marked: bool) -> Table {
    let mut header = vec!["NAME", "KIND", "MILESTONE", "CLOUD", "REGION", "SIZE", "SHA256", "URI"];
    if marked {
        header.push("INVALIDATED");
    }
    let mut t = output::table(&header);
    for a in artifacts {
        let mut row = vec![
            output::cell(&a.name, 40),
            a.kind.to_string(),
            a.milestone.map_or_else(|| "-".to_owned(), |m| format!("{m} ({})", b.catalog.name_of(m))),
            a.cloud.clone().unwrap_or_else(|| "-".to_owned()),
            a.region.clone().unwrap_or_else(|| "-".to_owned()),
            a.size_bytes.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            a.sha256.as_ref().map_or_else(|| "-".to_owned(), |h| h.as_str()[..12].to_owned()),
            output::cell(&a.uri, 80),
        ];
        if marked {
            row.push(output::opt_time(a.invalidated_at));
        }
        t.add_row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_files_by_streaming() {
        let dir = std::env::temp_dir().join(format!("buildstate-hash-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("abc.txt");
        std::fs::write(&path, b"abc").expect("write test file");
        let (size, digest) = measure(&path).expect("hash");
        assert_eq!(size, 3);
        assert_eq!(digest.as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
