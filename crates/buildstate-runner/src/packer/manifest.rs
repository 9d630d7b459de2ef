//! The file Packer's `manifest` post-processor writes:
//! `{"builds":[{name, builder_type, build_time, files, artifact_id, packer_run_uuid,
//! custom_data}], "last_run_uuid"}`. Packer appends one entry per build per run, so the
//! current run's entries are those whose `packer_run_uuid` is `last_run_uuid`.
//!
//! `artifact_id` holds one id per region for cloud images
//! (`us-east-1:ami-1,us-west-2:ami-2`), a bare id otherwise (a GCP image name, an Azure
//! resource id); the `null` builder's is the constant `Null`, which is no artifact.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A larger file is refused: a manifest of thousands of runs is a few MiB.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

/// Where the build id goes in the manifest's `custom_data`.
pub const CUSTOM_DATA_BUILD_KEY: &str = "buildstate_build";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the manifest is {len} bytes: at most {max} bytes are read")]
    TooLarge { len: usize, max: usize },
    #[error("the manifest is not a Packer manifest: {0}")]
    Malformed(String),
    #[error("the manifest has no entry of its last run {0}")]
    NoCurrentRun(String),
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    builds: Vec<RawBuild>,
    #[serde(default)]
    last_run_uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawBuild {
    name: String,
    builder_type: String,
    #[serde(default)]
    build_time: Option<i64>,
    #[serde(default)]
    files: Option<Vec<RawFile>>,
    #[serde(default)]
    artifact_id: Option<String>,
    #[serde(default)]
    packer_run_uuid: Option<String>,
    #[serde(default)]
    custom_data: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    name: String,
    #[serde(default)]
    size: Option<u64>,
}

/// One build entry of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestBuild {
    /// The source name (`x` for `source.null.x`).
    pub name: String,
    pub builder_type: String,
    /// `aws`, `azure`, `gcp`, `openstack`, else the builder type.
    pub cloud: String,
    pub build_time: Option<i64>,
    pub run_uuid: Option<String>,
    pub images: Vec<ImageId>,
    pub files: Vec<ManifestFile>,
    /// `custom_data.buildstate_build`, when the template passed it.
    pub buildstate_build: Option<String>,
}

/// One image of an entry: its region when `artifact_id` named one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageId {
    pub region: Option<String>,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// As Packer wrote it: relative to Packer's working directory, or absolute.
    pub name: String,
    pub size: Option<u64>,
}

/// Parses a manifest; with `all_runs` false only the current run's entries.
pub fn parse_manifest(bytes: &[u8], all_runs: bool) -> Result<Vec<ManifestBuild>, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge { len: bytes.len(), max: MAX_MANIFEST_BYTES });
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    let current = raw.last_run_uuid.filter(|u| !u.is_empty());
    // Packer always writes the run's id: without it the current run cannot be told
    // from earlier ones, and taking every entry would record old images as new.
    if current.is_none() && !raw.builds.is_empty() {
        return Err(ManifestError::Malformed("it has builds but no `last_run_uuid`".to_owned()));
    }
    let builds: Vec<ManifestBuild> = raw
        .builds
        .into_iter()
        .filter(|b| all_runs || current.is_none() || b.packer_run_uuid == current)
        .map(entry)
        .collect::<Result<_, _>>()?;
    if let (false, Some(uuid), true) = (all_runs, &current, builds.is_empty()) {
        return Err(ManifestError::NoCurrentRun(uuid.clone()));
    }
    Ok(builds)
}

fn entry(b: RawBuild) -> Result<ManifestBuild, ManifestError> {
    let images = match b.artifact_id.as_deref() {
        Some(id) if b.builder_type != "null" => {
            split_artifact_id(id).map_err(|e| ManifestError::Malformed(format!("build {}: {e}", b.name)))?
        }
        _ => Vec::new(),
    };
    let buildstate_build =
        b.custom_data.as_ref().and_then(|d| d.get(CUSTOM_DATA_BUILD_KEY)).and_then(|v| match v {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
    Ok(ManifestBuild {
        cloud: cloud_of(&b.builder_type),
        name: b.name,
        builder_type: b.builder_type,
        build_time: b.build_time,
        run_uuid: b.packer_run_uuid,
        images,
        files: b
            .files
            .unwrap_or_default()
            .into_iter()
            .map(|f| ManifestFile { name: f.name, size: f.size })
            .collect(),
        buildstate_build,
    })
}

/// `us-east-1:ami-1,us-west-2:ami-2` → two regional ids; `my-image` → one without a
/// region. Only a left part that looks like a region (`[a-z0-9-]` with a `-`) is one:
/// `sha256:…` (a Docker id) stays whole.
///
/// A part that is only separators (`,,`, `:`), or has nothing on one side of its `:`
/// (`zz:`, `:ami-9`), is refused: such a manifest is damaged, and recording `zz:` as an
/// image would be a wrong record (hostile review). The same id twice is one image.
pub fn split_artifact_id(artifact_id: &str) -> Result<Vec<ImageId>, String> {
    let mut out: Vec<ImageId> = Vec::new();
    for part in artifact_id.split(',').map(str::trim) {
        if part.is_empty() {
            if artifact_id.trim().is_empty() {
                continue;
            }
            return Err(format!("artifact_id `{artifact_id}` has an empty part"));
        }
        if part.starts_with(':') || part.ends_with(':') {
            return Err(format!("artifact_id part `{part}` has no region or no id"));
        }
        let image = match part.split_once(':') {
            Some((region, id)) if looks_like_region(region) => {
                ImageId { region: Some(region.to_owned()), id: id.to_owned() }
            }
            _ => ImageId { region: None, id: part.to_owned() },
        };
        if !out.contains(&image) {
            out.push(image);
        }
    }
    Ok(out)
}

fn looks_like_region(s: &str) -> bool {
    s.contains('-') && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The cloud a builder type builds for.
pub fn cloud_of(builder_type: &str) -> String {
    let cloud = match builder_type {
        t if t.starts_with("amazon-") => "aws",
        t if t.starts_with("azure-") => "azure",
        "googlecompute" | "googlecompute-import" => "gcp",
        "openstack" => "openstack",
        other => other,
    };
    cloud.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEVERAL_RUNS: &str = r#"{
      "builds": [
        {"name": "ubuntu", "builder_type": "amazon-ebs", "build_time": 1, "files": null,
         "artifact_id": "us-east-1:ami-old", "packer_run_uuid": "run-1", "custom_data": null},
        {"name": "ubuntu", "builder_type": "amazon-ebs", "build_time": 2,
         "files": [{"name": "out/disk.qcow2", "size": 42}],
         "artifact_id": "us-east-1:ami-1,us-west-2:ami-2", "packer_run_uuid": "run-2",
         "custom_data": {"buildstate_build": "b-7"}},
        {"name": "x", "builder_type": "null", "artifact_id": "Null", "packer_run_uuid": "run-2"}
      ],
      "last_run_uuid": "run-2"
    }"#;

    #[test]
    fn only_the_current_run_with_one_image_per_region() {
        let builds = parse_manifest(SEVERAL_RUNS.as_bytes(), false).expect("parses");
        assert_eq!(builds.len(), 2);
        let b = &builds[0];
        assert_eq!((b.cloud.as_str(), b.run_uuid.as_deref()), ("aws", Some("run-2")));
        assert_eq!(
            b.images,
            vec![
                ImageId { region: Some("us-east-1".into()), id: "ami-1".into() },
                ImageId { region: Some("us-west-2".into()), id: "ami-2".into() },
            ]
        );
        assert_eq!(b.files, vec![ManifestFile { name: "out/disk.qcow2".into(), size: Some(42) }]);
        assert_eq!(b.buildstate_build.as_deref(), Some("b-7"));
        // The null builder's `Null` is no image.
        assert_eq!((builds[1].cloud.as_str(), builds[1].images.len()), ("null", 0));

        assert_eq!(parse_manifest(SEVERAL_RUNS.as_bytes(), true).expect("parses").len(), 3);
    }

    #[test]
    fn ids_and_clouds() {
        assert_eq!(
            split_artifact_id("sha256:abc"),
            Ok(vec![ImageId { region: None, id: "sha256:abc".into() }])
        );
        assert_eq!(split_artifact_id("my-image"), Ok(vec![ImageId { region: None, id: "my-image".into() }]));
        assert_eq!(split_artifact_id(""), Ok(vec![]));
        let twice = split_artifact_id("us-east-1:ami-1, us-east-1:ami-1,us-west-2:ami-2").expect("two");
        assert_eq!(twice.len(), 2, "the same id twice is one image");
        for damaged in ["us-east-1:ami-1,,us-west-2:ami-2", ":", "zz:", ":ami-9", "us-east-1:ami-1,"] {
            assert!(split_artifact_id(damaged).is_err(), "{damaged}");
        }
        for (t, c) in [
            ("amazon-ebs", "aws"),
            ("azure-arm", "azure"),
            ("googlecompute", "gcp"),
            ("openstack", "openstack"),
            ("file", "file"),
        ] {
            assert_eq!(cloud_of(t), c);
        }
    }

    #[test]
    fn bad_manifests_are_refused() {
        assert!(matches!(parse_manifest(b"not json", false), Err(ManifestError::Malformed(_))));
        assert!(matches!(parse_manifest(br#"{"builds": 3}"#, false), Err(ManifestError::Malformed(_))));
        let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(parse_manifest(&huge, false), Err(ManifestError::TooLarge { .. })));
        let missing = r#"{"builds": [{"name": "x", "builder_type": "null", "packer_run_uuid": "a"}], "last_run_uuid": "b"}"#;
        assert_eq!(parse_manifest(missing.as_bytes(), false), Err(ManifestError::NoCurrentRun("b".into())));
        let no_uuid = br#"{"builds": [{"name": "x", "builder_type": "null", "packer_run_uuid": "a"}]}"#;
        for all_runs in [false, true] {
            assert!(matches!(parse_manifest(no_uuid, all_runs), Err(ManifestError::Malformed(_))));
        }
        assert_eq!(parse_manifest(br#"{"builds": []}"#, false), Ok(vec![]));
    }
}
