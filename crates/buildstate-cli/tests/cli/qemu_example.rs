//! `examples/qemu-multicloud`: the example pipeline, run in place by the real binary,
//! builds a real disk image for each of four clouds with `qemu-img` and records each
//! one as an artifact whose size and SHA-256 match the file, in the format that cloud
//! imports.
//!
//! `qemu-img` and GNU `tar` are required: CI installs them (qemu-utils). Without them
//! the test fails and says so; it never skips.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{Env, Run, bin};

const MIB: u64 = 1 << 20;

/// The platforms of the example's matrix, with the provider and region to add them with.
const PLATFORMS: [(&str, &str, &str); 4] = [
    ("aws-commercial", "aws", "us-east-1"),
    ("azure", "azure", "westeurope"),
    ("gcp", "gcp", "us-central1"),
    ("openstack", "openstack", "regionone"),
];

#[test]
fn qemu_multicloud_example_delivers_a_disk_for_every_cloud() {
    require_tool("qemu-img", "--version");
    require_tool("tar", "--version");

    let env = Env::new();
    for (name, provider, region) in PLATFORMS {
        env.ok(&["platform", "add", name, "--provider", provider, "--region", region]);
    }
    env.ok(&["os", "add", "rhel-9.6", "--family", "rhel", "--major", "9", "--minor", "6"]);
    env.ok(&["image-type", "add", "base", "--display-name", "Base"]);

    // The pipeline runs in place; WORK_DIR sends every file it makes to the temp dir.
    let work = env.path("work");
    let pipeline = repo_root().join("examples/qemu-multicloud/pipeline.yaml");
    let run: Run = env
        .cmd()
        .arg("run")
        .arg(&pipeline)
        .args(["--jobs", "2"])
        .env("WORK_DIR", &work)
        // The steps call "${BUILDSTATE_BIN:-buildstate}": whichever way it is found, it
        // must be the binary under test, not one installed on the machine.
        .env_remove("BUILDSTATE_BIN")
        .env("PATH", path_with_binary_first())
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run buildstate")
        .into();
    assert_eq!(run.code, 0, "buildstate run {} --jobs 2 failed: {run:?}", pipeline.display());

    let builds = env.json(&["build", "list"]);
    let builds = builds.as_array().expect("build list is an array");
    let mut platforms: Vec<&str> = builds.iter().map(|b| b["platform"].as_str().expect("platform")).collect();
    platforms.sort_unstable();
    assert_eq!(
        platforms,
        ["aws-commercial", "azure", "gcp", "openstack"],
        "one build per platform: {builds:?}"
    );

    for build in builds {
        let number = build["number"].as_str().expect("build number");
        let platform = build["platform"].as_str().expect("platform");
        let shown = env.json(&["build", "show", number]);
        assert_eq!(shown["build"]["status"], "completed", "{number}: {shown}");
        assert_eq!(shown["build"]["state"], 100, "{number}: {shown}");
        assert_eq!(shown["build"]["metadata"]["pipeline"], "qemu-multicloud", "{number}");

        let artifacts = env.json(&["artifact", "list", number]);
        let disk = only_of_kind(&artifacts, "disk", number);
        let path = recorded_file(disk, &work, number);
        assert_eq!(disk["name"], format!("{platform}-disk"), "{number}");
        let region = PLATFORMS.iter().find(|p| p.0 == platform).map(|p| p.2);
        assert_eq!(disk["region"].as_str(), region, "{number}: region of {disk}");

        match platform {
            "aws-commercial" => check_aws(&path),
            "azure" => check_azure(&path),
            "gcp" => check_gcp(&path),
            "openstack" => check_openstack(&path),
            other => panic!("unexpected platform {other}"),
        }

        // The Packer-style manifest names the disk it describes.
        let manifest = only_of_kind(&artifacts, "manifest", number);
        let manifest_path = recorded_file(manifest, &work, number);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("read manifest"))
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", manifest_path.display()));
        assert_eq!(
            doc["builds"][0]["files"][0]["name"].as_str(),
            Some(path.to_str().expect("utf-8 path")),
            "{}: {doc}",
            manifest_path.display()
        );
    }
}

/// The one artifact of `kind`.
fn only_of_kind<'a>(artifacts: &'a Value, kind: &str, build: &str) -> &'a Value {
    let found: Vec<&Value> = artifacts
        .as_array()
        .expect("artifact list is an array")
        .iter()
        .filter(|a| a["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "{build}: expected one artifact of kind {kind}: {artifacts}");
    found[0]
}

/// The artifact's file: under the work dir, present, and with the recorded size and
/// SHA-256.
fn recorded_file(artifact: &Value, work: &Path, build: &str) -> PathBuf {
    let uri = artifact["uri"].as_str().expect("uri");
    let path = PathBuf::from(
        uri.strip_prefix("file://").unwrap_or_else(|| panic!("{build}: not a file URI: {uri}")),
    );
    assert!(path.starts_with(work), "{build}: {} is outside WORK_DIR {}", path.display(), work.display());
    assert!(path.is_file(), "{build}: {} does not exist", path.display());
    let (size, sha256) = measure(&path);
    assert_eq!(artifact["size_bytes"].as_u64(), Some(size), "{build}: size of {}", path.display());
    assert_eq!(artifact["sha256"].as_str(), Some(sha256.as_str()), "{build}: SHA-256 of {}", path.display());
    path
}

/// AWS VM Import: a VMDK, stream-optimized (format probed, not given).
fn check_aws(path: &Path) {
    let info = qemu_img_info(path, None);
    assert_eq!(info["format"], "vmdk", "{}: {info}", path.display());
    assert_eq!(
        info["format-specific"]["data"]["create-type"],
        "streamOptimized",
        "{}: {info}",
        path.display()
    );
}

/// Azure: a fixed VHD (the disk's bytes plus a 512-byte footer) whose virtual size is a
/// whole number of MiB. A fixed VHD has no header to probe, hence `-f vpc`.
fn check_azure(path: &Path) {
    let info = qemu_img_info(path, Some("vpc"));
    assert_eq!(info["format"], "vpc", "{}: {info}", path.display());
    let virtual_size = info["virtual-size"].as_u64().expect("virtual-size");
    assert!(
        virtual_size > 0 && virtual_size.is_multiple_of(MIB),
        "{}: virtual size {virtual_size} is not a multiple of 1 MiB",
        path.display()
    );
    let file_size = std::fs::metadata(path).expect("stat vhd").len();
    assert_eq!(
        file_size,
        virtual_size + 512,
        "{}: a fixed VHD is its virtual size plus the footer",
        path.display()
    );
}

/// GCP: a gzip'd tar with exactly one member, `disk.raw`.
fn check_gcp(path: &Path) {
    let out = Command::new("tar").arg("-tzf").arg(path).output().expect("run tar");
    assert!(out.status.success(), "tar -tzf {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing.lines().collect::<Vec<_>>(), ["disk.raw"], "{}: members", path.display());
}

/// OpenStack: qcow2 (format probed).
fn check_openstack(path: &Path) {
    let info = qemu_img_info(path, None);
    assert_eq!(info["format"], "qcow2", "{}: {info}", path.display());
}

fn qemu_img_info(path: &Path, format: Option<&str>) -> Value {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "--output=json"]);
    if let Some(f) = format {
        cmd.args(["-f", f]);
    }
    let out = cmd.arg(path).output().expect("run qemu-img info");
    assert!(
        out.status.success(),
        "qemu-img info {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("qemu-img info --output=json prints JSON")
}

/// Size and SHA-256 (hex) of a file, read in chunks: the Azure disk is 1 GiB.
fn measure(path: &Path) -> (u64, String) {
    let mut file = std::fs::File::open(path).expect("open artifact");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).expect("read artifact");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    (size, hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Fails, never skips, when a tool the example needs is missing.
fn require_tool(tool: &str, version_flag: &str) {
    let found = Command::new(tool).arg(version_flag).output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is required by the qemu-multicloud example test and was not found on PATH; \
         install it (Debian/Ubuntu: apt-get install qemu-utils tar) — CI does"
    );
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// PATH with the directory of the binary under test first.
fn path_with_binary_first() -> OsString {
    let dir = Path::new(bin()).parent().expect("binary's directory").to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&rest))).expect("PATH")
}
