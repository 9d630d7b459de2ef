//! `examples/qemu-multicloud`: the example pipeline, run in place by the real binary
//! with the real Packer and Ansible, builds a real disk image for each of four clouds
//! with `qemu-img`: Packer's run passes milestones 5 and 10 and records the base disk,
//! Ansible's plays pass 15-90, a task broken on purpose stops one build at its play's
//! milestone and the next run resumes it there, and each cloud's image is recorded as
//! an artifact whose size and SHA-256 match the file, in the format that cloud imports.
//!
//! `qemu-img`, GNU `tar`, `packer` and `ansible-playbook` are required:
//! scripts/setup.sh installs them. Without them the test fails and says so; it never
//! skips.

use std::collections::BTreeMap;
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

/// The milestones a step of the pipeline runs or a tool passes: completed once each.
const DONE: [u64; 13] = [0, 5, 10, 15, 20, 25, 50, 65, 70, 85, 90, 95, 100];
/// Covered by the Ansible steps but named by no play: skipped.
const SKIPPED: [u64; 8] = [30, 35, 40, 45, 55, 60, 75, 80];

/// The task `FAIL_SSH_CHECK=1` breaks, and its play.
const BROKEN_TASK: &str = "check the SSH hardening";
const BROKEN_PLAY: &str = "25 security-baseline";

#[test]
fn qemu_multicloud_example_delivers_a_disk_for_every_cloud() {
    for (tool, version_flag) in [
        ("qemu-img", "--version"),
        ("tar", "--version"),
        ("packer", "version"),
        ("ansible-playbook", "--version"),
    ] {
        require_tool(tool, version_flag);
    }

    let env = Env::new();
    for (name, provider, region) in PLATFORMS {
        env.ok(&["platform", "add", name, "--provider", provider, "--region", region]);
    }
    env.ok(&["os", "add", "rhel-9.6", "--family", "rhel", "--major", "9", "--minor", "6"]);
    env.ok(&["image-type", "add", "base", "--display-name", "Base"]);
    let work = env.path("work");

    // The GCP cell alone, with the task of milestone 25 broken on purpose.
    let run = run_example(&env, &work, &["--only", "platform=gcp"], true);
    assert_eq!(run.code, 8, "a build failed, so `run` exits 8: {run:?}");
    let gcp = number_of(&env, "gcp");
    let shown = env.show(&gcp);
    assert_eq!((shown["state"].as_u64(), shown["status"].as_str()), (Some(25), Some("failed")), "{shown}");
    assert_eq!(completed(&env, &gcp).keys().copied().collect::<Vec<_>>(), [0, 5, 10, 15, 20], "{gcp}");
    let failures = env.failures(&gcp);
    assert_eq!(failures.len(), 1, "one failure, the task's: {failures:#?}");
    let f = &failures[0];
    assert_eq!(f["state"], 25, "{f:#}");
    assert_eq!(f["type"], "ansible", "{f:#}");
    assert_eq!(f["class"], "persistent", "{f:#}");
    assert_eq!(f["message"], format!("TASK [{BROKEN_TASK}] on localhost: non-zero return code"), "{f:#}");
    assert_eq!(f["details"]["task"], BROKEN_TASK, "{f:#}");
    assert_eq!(f["details"]["host"], "localhost", "{f:#}");
    assert_eq!(f["details"]["play"], BROKEN_PLAY, "{f:#}");
    assert!(
        f["details"]["stderr_tail"].as_str().is_some_and(|t| t.contains("permits root logins over SSH")),
        "the task's own message: {f:#}"
    );

    // The whole matrix, fixed: GCP resumes at 25, the others run from the start.
    let run = run_example(&env, &work, &["--jobs", "2"], false);
    assert_eq!(run.code, 0, "buildstate run --jobs 2 failed: {run:?}");

    let builds = env.json(&["build", "list"]);
    let builds = builds.as_array().expect("build list is an array");
    let mut platforms: Vec<&str> = builds.iter().map(|b| b["platform"].as_str().expect("platform")).collect();
    platforms.sort_unstable();
    assert_eq!(
        platforms,
        ["aws-commercial", "azure", "gcp", "openstack"],
        "one build per platform, the failed one resumed: {builds:?}"
    );

    for build in builds {
        let number = build["number"].as_str().expect("build number");
        let platform = build["platform"].as_str().expect("platform");
        let shown = env.json(&["build", "show", number]);
        assert_eq!(shown["build"]["status"], "completed", "{number}: {shown}");
        assert_eq!(shown["build"]["state"], 100, "{number}: {shown}");
        assert_eq!(shown["build"]["metadata"]["pipeline"], "qemu-multicloud", "{number}");
        check_milestones(&env, number, platform == "gcp");

        let artifacts = env.json(&["artifact", "list", number]);
        check_packer_disk(&artifacts, &work, number);
        let disk = named(&artifacts, &format!("{platform}-disk"), number);
        assert_eq!(disk["kind"], "disk", "{number}: {disk}");
        assert_eq!(disk["milestone"], 100, "{number}: {disk}");
        let path = recorded_file(disk, &work, number);
        let region = PLATFORMS.iter().find(|p| p.0 == platform).map(|p| p.2);
        assert_eq!(disk["region"].as_str(), region, "{number}: region of {disk}");

        match platform {
            "aws-commercial" => check_aws(&path),
            "azure" => check_azure(&path),
            "gcp" => check_gcp(&path),
            "openstack" => check_openstack(&path),
            other => panic!("unexpected platform {other}"),
        }

        // The phase record: a line from each milestone's work, the Packer provisioners'
        // and the Ansible plays' included.
        let phases = named(&artifacts, &format!("{platform}-phases"), number);
        let text = std::fs::read_to_string(recorded_file(phases, &work, number)).expect("read manifest.txt");
        for code in DONE {
            let tag = format!(" {code:>3} ");
            assert!(
                text.lines().any(|l| l.contains(&tag)),
                "{number}: no line of milestone {code} in:\n{text}"
            );
        }

        // Packer's own manifest names the build it was written for.
        let manifest = named(&artifacts, &format!("{platform}-manifest"), number);
        assert_eq!(manifest["kind"], "manifest", "{number}: {manifest}");
        let manifest_path = recorded_file(manifest, &work, number);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("read manifest"))
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", manifest_path.display()));
        let last = doc["builds"].as_array().and_then(|b| b.last()).expect("a manifest entry");
        assert_eq!(last["builder_type"], "null", "{}: {doc}", manifest_path.display());
        assert_eq!(last["custom_data"]["buildstate_build"], number, "{}: {doc}", manifest_path.display());
        assert_eq!(last["custom_data"]["platform"], platform, "{}: {doc}", manifest_path.display());
    }
}

/// `buildstate run` of the example, in place, with its files under `work`; with
/// `broken`, the switch that makes a task of milestone 25 fail.
fn run_example(env: &Env, work: &Path, args: &[&str], broken: bool) -> Run {
    let pipeline = repo_root().join("examples/qemu-multicloud/pipeline.yaml");
    let mut cmd = env.cmd();
    cmd.arg("run")
        .arg(&pipeline)
        .args(args)
        .env("WORK_DIR", work)
        // The steps call "${BUILDSTATE_BIN:-buildstate}": whichever way it is found, it
        // must be the binary under test, not one installed on the machine.
        .env_remove("BUILDSTATE_BIN")
        .env("PATH", path_with_binary_first())
        // Packer and Ansible keep their state inside the fixture, and ask nobody online.
        .env("CHECKPOINT_DISABLE", "1")
        .env("PACKER_CONFIG_DIR", env.path("packer-config"))
        .env("ANSIBLE_HOME", env.path("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", env.path("ansible-tmp"))
        .env("XDG_DATA_HOME", env.path("data"))
        .env("XDG_CACHE_HOME", env.path("cache"))
        .timeout(std::time::Duration::from_secs(300));
    if broken {
        cmd.env("FAIL_SSH_CHECK", "1");
    } else {
        cmd.env_remove("FAIL_SSH_CHECK");
    }
    cmd.output().expect("run buildstate").into()
}

/// The build of the matrix cell of `platform`.
fn number_of(env: &Env, platform: &str) -> String {
    let builds = env.json(&["build", "list"]);
    let found: Vec<&str> = builds
        .as_array()
        .expect("build list is an array")
        .iter()
        .filter(|b| b["platform"] == platform)
        .map(|b| b["number"].as_str().expect("build number"))
        .collect();
    assert_eq!(found.len(), 1, "one build for {platform}: {builds}");
    found[0].to_owned()
}

/// How many times each milestone completed.
fn completed(env: &Env, build: &str) -> BTreeMap<u64, usize> {
    let mut done = BTreeMap::new();
    for e in env.history(build).iter().filter(|e| e["kind"] == "completed") {
        *done.entry(e["state"].as_u64().expect("state")).or_default() += 1;
    }
    done
}

/// The Packer milestones (5, 10) and the Ansible ones (15-90) each completed once, the
/// covered milestones no play names skipped; for the resumed build, 25 failed once and
/// completed at its second attempt, and nothing before it was redone.
fn check_milestones(env: &Env, build: &str, resumed: bool) {
    let expected: BTreeMap<u64, usize> = DONE.iter().map(|c| (*c, 1)).collect();
    assert_eq!(completed(env, build), expected, "{build}: completions per milestone");
    let history = env.history(build);
    let mut skipped: Vec<u64> =
        history.iter().filter(|e| e["kind"] == "skipped").filter_map(|e| e["state"].as_u64()).collect();
    skipped.sort_unstable();
    assert_eq!(skipped, SKIPPED, "{build}: skipped milestones");
    let at_25: Vec<(&str, u64)> = history
        .iter()
        .filter(|e| {
            e["state"] == 25 && matches!(e["kind"].as_str(), Some("started" | "failed" | "completed"))
        })
        .map(|e| (e["kind"].as_str().unwrap_or(""), e["attempt"].as_u64().unwrap_or(0)))
        .collect();
    let expected_25: &[(&str, u64)] = if resumed {
        &[("started", 1), ("failed", 1), ("started", 2), ("completed", 2)]
    } else {
        &[("started", 1), ("completed", 1)]
    };
    assert_eq!(at_25, expected_25, "{build}: milestone 25");
    // Packer's milestones were reached by Packer itself, within one step.
    let by_packer = history
        .iter()
        .filter(|e| e["kind"] == "started" && matches!(e["state"].as_u64(), Some(5 | 10)))
        .count();
    assert_eq!(by_packer, 2, "{build}: 5 and 10 started once each: {history:#?}");
}

/// The base disk Packer announced (the `artifice` post-processor), recorded by
/// `buildstate packer` at milestone 10 with its size and SHA-256.
fn check_packer_disk(artifacts: &Value, work: &Path, build: &str) {
    let disks: Vec<&Value> = artifacts
        .as_array()
        .expect("artifact list is an array")
        .iter()
        .filter(|a| a["name"].as_str().is_some_and(|n| n.starts_with("null.base.")))
        .collect();
    assert_eq!(disks.len(), 1, "{build}: one artifact from Packer: {artifacts}");
    let disk = disks[0];
    assert_eq!(disk["kind"], "disk", "{build}: {disk}");
    assert_eq!(disk["milestone"], 10, "{build}: {disk}");
    let path = recorded_file(disk, work, build);
    assert_eq!(path.file_name().and_then(|n| n.to_str()), Some("base.qcow2"), "{build}: {disk}");
}

/// The artifact named `name`.
fn named<'a>(artifacts: &'a Value, name: &str, build: &str) -> &'a Value {
    artifacts
        .as_array()
        .expect("artifact list is an array")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{build}: no artifact {name}: {artifacts}"))
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
         run scripts/setup.sh, which installs it (qemu-utils, tar, packer, ansible-core) — CI does"
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
