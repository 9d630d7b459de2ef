//! A Packer manifest's entries as artifacts of a build, written once for
//! `buildstate packer` (after a successful run) and `artifact ingest-manifest`.
//!
//! Everything is checked before anything is written — the file, its entries, the
//! build the manifest names in `custom_data`, every local file's digest — so that a
//! refused manifest changes nothing. Names are stable and unique:
//! `<packer build>.<cloud>.<region>` for an image (`amazon-ebs.ubuntu.aws.us-east-1`),
//! `<packer build>.<cloud>` for an image without region, and `<packer build>.file.<path>`
//! for a file; a name met again (two ids in one region, two runs of one build with
//! `--all-runs`) gets `-2`, `-3`. A store replaces an artifact of the same name, so
//! ingesting one manifest twice records nothing twice. An image's cloud (`cloud_of` its
//! builder type) is also its artifact's `cloud` field, so nobody has to take the name
//! apart to find it (the name keeps it, so that names recorded before stay the same); a
//! file has no cloud: it is on this machine.
//!
//! Files: a relative name starts at `Ingest::base` (the manifest's directory for
//! `ingest-manifest`, Packer's working directory for `buildstate packer`); a name that is
//! not a regular file is skipped with a warning, and one outside the base (`../`, an
//! absolute path elsewhere) is refused unless `allow_outside`: a hostile manifest must
//! not make us hash `/etc/shadow` and record its size. URIs are absolute `file:///…`.

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
    /// Where relative file names in the manifest start.
    pub base: PathBuf,
    /// Accept file names outside `base`.
    pub allow_outside: bool,
}

/// Reads and checks `path` for `build`, returning the artifacts to record.
pub fn read(path: &Path, build: &Build, how: &Ingest) -> Result<Vec<Artifact>, CliError> {
    let bytes = read_bounded(path)?;
    let entries = parse_manifest(&bytes, how.all_runs).map_err(|e| manifest_error(path, &e))?;
    if !how.force {
        check_build(path, build, &entries)?;
    }
    let base = base_dir(&how.base)?;
    let mut names = Names::default();
    let mut artifacts = Vec::new();
    for entry in &entries {
        let packer_build = packer_build_name(&entry.builder_type, &entry.name);
        for image in &entry.images {
            let name = names.unique(image_name(&packer_build, &entry.cloud, image.region.as_deref()));
            artifacts.push(image_artifact(name, &image.id, image.region.clone(), &entry.cloud)?);
        }
        for file in &entry.files {
            if let Some(a) = file_artifact(&packer_build, &file.name, &base, how.allow_outside, &mut names)? {
                artifacts.push(a);
            }
        }
    }
    Ok(artifacts)
}

/// `<packer build>.<cloud>.<region>`, or `<packer build>.<cloud>` without a region.
fn image_name(packer_build: &str, cloud: &str, region: Option<&str>) -> String {
    match region {
        Some(region) => format!("{packer_build}.{cloud}.{region}"),
        None => format!("{packer_build}.{cloud}"),
    }
}

/// Names handed out so far: a repeat gets `-2`, `-3`… in the order met, which is the
/// manifest's order, so that the same manifest gives the same names.
/// Files already recorded, by their real path: a file announced twice (by a
/// post-processor and again by the next one in the chain) is one artifact.
#[derive(Default)]
struct Names(std::collections::BTreeSet<String>, std::collections::BTreeSet<PathBuf>);

impl Names {
    /// Whether `path` is met for the first time.
    fn first_file(&mut self, path: &Path) -> bool {
        self.1.insert(path.to_path_buf())
    }

    fn unique(&mut self, name: String) -> String {
        if self.0.insert(name.clone()) {
            return name;
        }
        let mut n = 2;
        loop {
            let candidate = format!("{name}-{n}");
            if self.0.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

fn base_dir(base: &Path) -> Result<PathBuf, CliError> {
    std::fs::canonicalize(base)
        .map_err(|e| CliError::usage(format!("cannot resolve {}: {e}", base.display())))
}

/// Artifacts from Packer's own `artifact` records, for a run without a manifest.
pub fn from_events(
    events: &[EventArtifact],
    base: &Path,
    allow_outside: bool,
) -> Result<Vec<Artifact>, CliError> {
    let base = base_dir(base)?;
    let mut names = Names::default();
    let mut artifacts = Vec::new();
    for e in events {
        let cloud = cloud_of(buildstate_runner::packer::builder_type(&e.build));
        // The null builder's `Null` and a post-processor's empty id are no image.
        if cloud != "null" && !e.id.is_empty() {
            let images = split_artifact_id(&e.id).map_err(|e| {
                CliError::new(
                    Exit::BadDocument,
                    format!("Packer announced an artifact that cannot be read: {e}"),
                )
            })?;
            for image in images {
                let name = names.unique(image_name(&e.build, &cloud, image.region.as_deref()));
                artifacts.push(image_artifact(name, &image.id, image.region, &cloud)?);
            }
        }
        for file in &e.files {
            if let Some(a) = file_artifact(&e.build, file, &base, allow_outside, &mut names)? {
                artifacts.push(a);
            }
        }
    }
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
    // The real size for the message: only MAX + 1 bytes are read.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_MANIFEST_BYTES as u64 {
        let e = ManifestError::TooLarge {
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max: MAX_MANIFEST_BYTES,
        };
        return Err(manifest_error(path, &e));
    }
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

fn image_artifact(name: String, id: &str, region: Option<String>, cloud: &str) -> Result<Artifact, CliError> {
    let uri = crate::input::uri(id)
        .map_err(|why| CliError::new(Exit::BadDocument, format!("artifact id `{id}` of {name}: {why}")))?;
    // Checked here, as the store would (at most 128 bytes), so that a refused manifest
    // records nothing rather than the images before this one.
    let cloud = crate::input::label(cloud)
        .and_then(|c| {
            if c.len() > 128 {
                Err(format!("{} bytes is too long: at most 128 bytes", c.len()))
            } else {
                Ok(c)
            }
        })
        .map_err(|why| CliError::new(Exit::BadDocument, format!("the cloud of {name}: {why}")))?;
    let mut a = artifact(name, ArtifactKind::Image, uri, region);
    a.cloud = Some(cloud).filter(|c| !c.is_empty());
    Ok(a)
}

/// A file the build made, measured and hashed; `None` (with a warning) when it is not a
/// regular file here; refused when it is outside `base` and that is not allowed.
fn file_artifact(
    packer_build: &str,
    file: &str,
    base: &Path,
    allow_outside: bool,
    names: &mut Names,
) -> Result<Option<Artifact>, CliError> {
    let joined = if Path::new(file).is_absolute() { PathBuf::from(file) } else { base.join(file) };
    let Ok(path) = std::fs::canonicalize(&joined) else {
        crate::output::warning(format!("{} of {packer_build} is not here: not recorded", joined.display()));
        return Ok(None);
    };
    if !allow_outside && !path.starts_with(base) {
        return Err(CliError::usage(format!(
            "file `{file}` of {packer_build} is {}, outside {}; nothing was recorded",
            path.display(),
            base.display()
        ))
        .with_hint("a manifest's files are the build's output; pass --allow-outside if this one really is"));
    }
    if !path.is_file() {
        crate::output::warning(format!(
            "{} of {packer_build} is not a regular file: not recorded",
            path.display()
        ));
        return Ok(None);
    }
    if !names.first_file(&path) {
        return Ok(None);
    }
    // Named by where the file is, not how the manifest spells it: `sub/../sub/disk.img`
    // and `sub/disk.img` are one artifact (hostile review: two).
    let shown = path.strip_prefix(base).map_or_else(|_| file.to_owned(), |p| p.display().to_string());
    let name = crate::input::label(&format!("{packer_build}.file.{shown}"))
        .map_err(|why| CliError::new(Exit::BadDocument, format!("file `{file}` of {packer_build}: {why}")))?;
    let name = names.unique(name);
    // `path` is absolute, so this is `file:///…`.
    let uri = format!("file://{}", path.display());
    let mut a = artifact(name, file_kind(file), uri, None);
    let (size, digest) = super::artifact::measure(&path)?;
    a.size_bytes = Some(size);
    a.sha256 = Some(digest);
    Ok(Some(a))
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
        // An image's is set by `image_artifact`; a file is in no cloud.
        cloud: None,
        size_bytes: None,
        sha256: None,
        created_at: buildstate_store::now(),
        // The store records the milestone the build is at.
        milestone: None,
        invalidated_at: None,
    }
}
