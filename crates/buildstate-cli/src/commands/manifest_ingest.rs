//! A Packer manifest's entries as artifacts of a build, written once for
//! `buildstate packer` (after a successful run) and `artifact ingest-manifest`.
//!
//! Everything is checked before anything is written — the file, its entries, the
//! build the manifest names in `custom_data`, every local file's digest — so that a
//! refused manifest changes nothing. Names are stable (`<packer build>.<region>`,
//! `<packer build>.<file>`), and a store replaces an artifact of the same name, so
//! ingesting one manifest twice records nothing twice.

use std::io::Read;
use std::path::{Path, PathBuf};

use buildstate_core::{Artifact, ArtifactKind, Build};
use buildstate_runner::packer::{
    CUSTOM_DATA_BUILD_KEY, EventArtifact, MAX_MANIFEST_BYTES, ManifestBuild, ManifestError, cloud_of,
    parse_manifest, split_artifact_id,
};
use buildstate_store::{Guard, Store};

use crate::exit::{CliError, Exit};

/// How to read a manifest.
#[derive(Clone, Debug)]
pub struct Ingest {
    /// Every run's entries, not only the last run's.
    pub all_runs: bool,
    /// Ingest even when `custom_data.buildstate_build` names another build.
    pub force: bool,
    /// Where relative file names in the manifest start (Packer's working directory).
    pub base: PathBuf,
}

/// Reads and checks `path` for `build`, returning the artifacts to record.
pub fn read(path: &Path, build: &Build, how: &Ingest) -> Result<Vec<Artifact>, CliError> {
    let bytes = read_bounded(path)?;
    let entries = parse_manifest(&bytes, how.all_runs).map_err(|e| manifest_error(path, &e))?;
    if !how.force {
        check_build(path, build, &entries)?;
    }
    let mut artifacts = Vec::new();
    for entry in &entries {
        let packer_build = packer_build_name(&entry.builder_type, &entry.name);
        for image in &entry.images {
            let name = match &image.region {
                Some(region) => format!("{packer_build}.{region}"),
                None => packer_build.clone(),
            };
            artifacts.push(image_artifact(name, &image.id, image.region.clone())?);
        }
        for file in &entry.files {
            artifacts.push(file_artifact(&packer_build, &file.name, file.size, &how.base)?);
        }
    }
    Ok(artifacts)
}

/// Artifacts from Packer's own `artifact` records, for a run without a manifest.
pub fn from_events(events: &[EventArtifact], base: &Path) -> Result<Vec<Artifact>, CliError> {
    let mut artifacts = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let builder = buildstate_runner::packer::builder_type(&e.build);
        // The null builder's `Null` and a post-processor's empty id are no image.
        if cloud_of(builder) != "null" && !e.id.is_empty() {
            for image in split_artifact_id(&e.id) {
                let name = match &image.region {
                    Some(region) => format!("{}.{region}", e.build),
                    None if i == 0 => e.build.clone(),
                    None => format!("{}.{i}", e.build),
                };
                artifacts.push(image_artifact(name, &image.id, image.region)?);
            }
        }
        for file in &e.files {
            artifacts.push(file_artifact(&e.build, file, None, base)?);
        }
    }
    artifacts.dedup_by(|a, b| a.name == b.name);
    Ok(artifacts)
}

/// Records `artifacts` on the build, in order.
pub async fn record(
    store: &dyn Store,
    build: &Build,
    artifacts: &[Artifact],
    guard: Guard,
) -> Result<(), CliError> {
    for a in artifacts {
        store.add_artifact(build.id, a, guard).await?;
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, CliError> {
    let file = crate::input::open_regular(path, "the Packer manifest")?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::usage(format!("cannot read the Packer manifest {}: {e}", path.display())))?;
    Ok(bytes)
}

fn manifest_error(path: &Path, e: &ManifestError) -> CliError {
    CliError::new(Exit::BadDocument, format!("{}: {e}; nothing was recorded", path.display())).with_hint(
        "give the file Packer's `manifest` post-processor wrote (`--all-runs` takes every run's entries)",
    )
}

/// A manifest that names another build in `custom_data` belongs to that build.
fn check_build(path: &Path, build: &Build, entries: &[ManifestBuild]) -> Result<(), CliError> {
    let ours = |named: &str| named == build.number.as_str() || named == build.id.to_string();
    match entries.iter().filter_map(|e| e.buildstate_build.as_deref()).find(|named| !ours(named)) {
        None => Ok(()),
        Some(other) => Err(CliError::usage(format!(
            "{} was written for build {other} (its custom_data.{CUSTOM_DATA_BUILD_KEY}), not build {}; nothing was recorded",
            path.display(),
            build.number
        ))
        .with_hint("ingest it into the build it names, or pass --force if the template's variable was wrong")),
    }
}

/// Packer's own name of a build: `amazon-ebs.ubuntu` for source `ubuntu` (HCL2);
/// JSON templates name builds by type already.
fn packer_build_name(builder_type: &str, name: &str) -> String {
    if name == builder_type || name.starts_with(&format!("{builder_type}.")) {
        name.to_owned()
    } else {
        format!("{builder_type}.{name}")
    }
}

fn image_artifact(name: String, id: &str, region: Option<String>) -> Result<Artifact, CliError> {
    let uri = crate::input::uri(id)
        .map_err(|why| CliError::new(Exit::BadDocument, format!("artifact id `{id}` of {name}: {why}")))?;
    Ok(artifact(name, ArtifactKind::Image, uri, region))
}

/// A file the build made: measured and hashed when it is here, else as the manifest
/// says (a warning tells why it has no digest).
fn file_artifact(
    packer_build: &str,
    file: &str,
    size: Option<u64>,
    base: &Path,
) -> Result<Artifact, CliError> {
    let path = if Path::new(file).is_absolute() { PathBuf::from(file) } else { base.join(file) };
    let name = crate::input::label(&format!("{packer_build}.{file}"))
        .map_err(|why| CliError::new(Exit::BadDocument, format!("file `{file}` of {packer_build}: {why}")))?;
    let uri = format!("file://{}", path.display());
    let mut a = artifact(name, file_kind(file), uri, None);
    if path.is_file() {
        let (size, digest) = super::artifact::measure(&path)?;
        a.size_bytes = Some(size);
        a.sha256 = Some(digest);
    } else {
        crate::output::warning(format!(
            "{} is not here to hash; recorded with the size the manifest gives",
            path.display()
        ));
        a.size_bytes = size;
    }
    Ok(a)
}

fn file_kind(file: &str) -> ArtifactKind {
    const DISKS: &[&str] = &["img", "qcow2", "raw", "vmdk", "vhd", "vhdx", "vdi", "iso", "ova", "box"];
    let ext = Path::new(file).extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if DISKS.contains(&ext.as_str()) { ArtifactKind::Disk } else { ArtifactKind::Other }
}

fn artifact(name: String, kind: ArtifactKind, uri: String, region: Option<String>) -> Artifact {
    Artifact {
        name,
        kind,
        uri,
        region,
        size_bytes: None,
        sha256: None,
        created_at: buildstate_store::now(),
        // The store records the milestone the build is at.
        milestone: None,
        invalidated_at: None,
    }
}
