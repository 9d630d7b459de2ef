//! Where a Packer run is, from its machine-readable events: which provisioner each
//! build is in (so a [`PackerMap`] can turn provisioner indexes into milestones), which
//! `ui say` rules fired, and — when a build fails — the component that failed and its
//! error lines.
//!
//! Packer 1.6.6 has no machine-readable "provisioner N started" record. Each
//! provisioner announces itself with its own first `==> BUILD: …` line (found by running
//! them with `-machine-readable`), so provisioners are counted by those lines, in order,
//! per build: [`PROVISIONER_STARTS`]. A provisioner that runs several scripts
//! (`scripts = [a, b]`) announces each, and counts once per script; map such runs with
//! `say` rules instead.

use std::collections::{BTreeMap, BTreeSet};

use buildstate_core::StateCode;

use super::events::{Event, Line, Record, UiLevel};
use super::map::PackerMap;

/// The first line each provisioner type says (after `==> BUILD: `).
pub const PROVISIONER_STARTS: &[(&str, &str)] = &[
    ("shell-local", "Running local shell script: "),
    ("shell", "Provisioning with shell script: "),
    ("powershell", "Provisioning with Powershell..."),
    ("windows-shell", "Provisioning with windows-shell..."),
    ("ansible", "Executing Ansible: "),
    ("ansible-local", "Provisioning with Ansible..."),
    ("puppet-masterless", "Provisioning with Puppet..."),
    ("chef-solo", "Installing Chef..."),
    ("salt-masterless", "Provisioning with Salt..."),
    ("inspec", "Executing InSpec: "),
    ("breakpoint", "Pausing at breakpoint provisioner"),
    ("windows-restart", "Restarting Machine"),
];

/// Lines that name the cloud resource a builder made, for keeping it on failure:
/// amazon (`Instance ID: i-…`), azure-arm (`ResourceGroupName : 'packer-Resource-Group-…'`),
/// openstack (`Server ID: …`), googlecompute (`Instance name: …`).
const RESOURCE_MARKERS: &[(&str, &str)] =
    &[("Instance ID: ", ""), ("ResourceGroupName : '", "'"), ("Server ID: ", ""), ("Instance name: ", "")];

/// At most this many error lines are kept per build, each at most [`MAX_ERROR_LINE`] bytes.
const MAX_ERROR_LINES: usize = 40;
const MAX_ERROR_LINE: usize = 1024;

/// The part of a build the run was in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Component {
    /// The builder itself (before any provisioner): its source name, `null.x`.
    Builder,
    /// Provisioner `index` (from 0, in the template's order) of type `kind`.
    Provisioner {
        index: u32,
        kind: String,
    },
    PostProcessor {
        kind: String,
    },
}

/// A build of the run that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildFailure {
    /// `null.x`, `amazon-ebs.ubuntu` (HCL2) or `amazon-ebs` (JSON templates).
    pub build: String,
    /// `null`, `amazon-ebs`: the build name up to its first `.`.
    pub builder_type: String,
    pub component: Component,
    /// Packer's error for the build (`Script exited with non-zero exit status: 3…`).
    pub message: String,
    /// The build's error lines since its failing component started (a script's stderr,
    /// Packer's own errors), oldest first.
    pub error_lines: Vec<String>,
    /// The cloud resource the builder made, when it said one.
    pub resource_id: Option<String>,
}

impl BuildFailure {
    /// The failing part, as a person names it: `shell-local (provisioner 1)`,
    /// `null.x (builder)`, `manifest (post-processor)`.
    pub fn component_name(&self) -> String {
        match &self.component {
            Component::Builder => format!("{} (builder)", self.build),
            Component::Provisioner { index, kind } => format!("{kind} (provisioner {index})"),
            Component::PostProcessor { kind } => format!("{kind} (post-processor)"),
        }
    }
}

/// One artifact Packer announced (`artifact,INDEX,…` records of a build).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventArtifact {
    pub build: String,
    pub builder_id: String,
    pub id: String,
    pub files: Vec<String>,
}

#[derive(Debug, Default)]
struct BuildProgress {
    /// Provisioners started so far.
    provisioners: u32,
    component: Option<Component>,
    errors: Vec<String>,
    resource_id: Option<String>,
}

/// The state machine: feed it every line, in order.
#[derive(Debug)]
pub struct Progress {
    map: PackerMap,
    builds: BTreeMap<String, BuildProgress>,
    /// Milestones already yielded (a later build reaching them again changes nothing).
    reached: BTreeSet<StateCode>,
    fired: Vec<bool>,
    failures: Vec<BuildFailure>,
    /// `ui error` lines that belong to no build: template and setup errors.
    general_errors: Vec<String>,
    artifacts: BTreeMap<(String, u32), EventArtifact>,
    /// Every build Packer said a line of: none means Packer built nothing.
    seen: BTreeSet<String>,
}

impl Progress {
    pub fn new(map: PackerMap) -> Progress {
        let fired = vec![false; map.say.len()];
        Progress {
            map,
            builds: BTreeMap::new(),
            reached: BTreeSet::new(),
            fired,
            failures: Vec::new(),
            general_errors: Vec::new(),
            artifacts: BTreeMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Feeds one line; returns the milestones it reaches for the first time, ascending.
    pub fn feed(&mut self, line: &Line) -> Vec<StateCode> {
        let Line::Record(record) = line else { return Vec::new() };
        let mut reach = Vec::new();
        match &record.event {
            Event::Ui { level, text } => self.ui(*level, text, &mut reach),
            Event::Error(message) => self.build_failed(&record.target, message),
            Event::Artifact { .. } => self.artifact(record),
            _ => {}
        }
        reach.retain(|c| self.reached.insert(*c));
        reach.sort_unstable();
        reach.dedup();
        reach
    }

    fn ui(&mut self, level: UiLevel, text: &str, reach: &mut Vec<StateCode>) {
        // `-timestamp-ui` puts `2026-12-03T17:47:35Z: ` before every line.
        let text = untimestamped(text);
        if level != UiLevel::Error {
            for (i, rule) in self.map.say.iter().enumerate() {
                if !self.fired[i] && text.contains(&rule.pattern) {
                    self.fired[i] = true;
                    reach.push(rule.milestone);
                }
            }
        }
        if let Some((build, message)) = errored(text) {
            self.build_failed(&build, &message);
            return;
        }
        let Some((build, rest, from_post_processor)) = split_build(text) else {
            if level == UiLevel::Error && !is_summary(text) {
                push_bounded(&mut self.general_errors, text.trim());
            }
            return;
        };
        let failed = self.failures.iter().any(|f| f.build == build);
        self.seen.insert(build.to_owned());
        let progress = self.builds.entry(build.to_owned()).or_default();
        match level {
            UiLevel::Error => {
                if !failed {
                    push_bounded(&mut progress.errors, rest);
                }
            }
            UiLevel::Say | UiLevel::Message => {
                // Only the builder's own lines name its resource: a provisioner prints
                // whatever its scripts print, and `Instance ID: $(…)` is no id.
                let in_builder = matches!(progress.component, None | Some(Component::Builder));
                if in_builder
                    && !from_post_processor
                    && let Some(id) = resource_id(rest)
                {
                    progress.resource_id.get_or_insert(id);
                }
                if level != UiLevel::Say || !text.trim_start_matches('\n').starts_with("==> ") {
                    return;
                }
                let in_post_processor = matches!(progress.component, Some(Component::PostProcessor { .. }));
                if let Some(kind) = post_processor(rest) {
                    progress.component = Some(Component::PostProcessor { kind });
                    progress.errors.clear();
                } else if from_post_processor || in_post_processor {
                    // A post-processor's own steps (`shell-local` runs scripts too) are
                    // never a provisioner: post-processors run after every provisioner.
                } else if let Some(kind) = provisioner_start(rest) {
                    let index = progress.provisioners;
                    progress.provisioners += 1;
                    progress.component = Some(Component::Provisioner { index, kind: kind.to_owned() });
                    progress.errors.clear();
                    if let Some(code) = self.map.provisioners.get(&index) {
                        reach.push(*code);
                    }
                }
            }
        }
    }

    fn build_failed(&mut self, build: &str, message: &str) {
        if build.is_empty() || self.failures.iter().any(|f| f.build == build) {
            return;
        }
        let progress = self.builds.remove(build).unwrap_or_default();
        let mut error_lines = progress.errors;
        push_bounded(&mut error_lines, message);
        self.failures.push(BuildFailure {
            build: build.to_owned(),
            builder_type: builder_type(build).to_owned(),
            component: progress.component.unwrap_or(Component::Builder),
            // One line: Packer's multi-error messages span several.
            message: shorten(
                &message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "),
            ),
            error_lines,
            resource_id: progress.resource_id,
        });
        // Keep the build's place so that later lines of it are not mistaken for new ones.
        self.builds.insert(build.to_owned(), BuildProgress::default());
    }

    fn artifact(&mut self, record: &Record) {
        let Event::Artifact { index, key, values } = &record.event else { return };
        let entry = self
            .artifacts
            .entry((record.target.clone(), *index))
            .or_insert_with(|| EventArtifact { build: record.target.clone(), ..EventArtifact::default() });
        match (key.as_str(), values.as_slice()) {
            ("id", [id, ..]) => entry.id = id.clone(),
            ("builder-id", [id, ..]) => entry.builder_id = id.clone(),
            ("file", [_, name, ..]) => entry.files.push(name.clone()),
            _ => {}
        }
    }

    /// The builds that failed, in the order they failed.
    pub fn failures(&self) -> &[BuildFailure] {
        &self.failures
    }

    /// Error lines Packer said outside any build (a template that does not parse).
    pub fn general_errors(&self) -> &[String] {
        &self.general_errors
    }

    /// Whether Packer ran any build at all: `-only=typo.x` runs none and exits 0.
    pub fn ran_a_build(&self) -> bool {
        !self.seen.is_empty() || !self.failures.is_empty() || !self.artifacts.is_empty()
    }

    /// The artifacts Packer announced, by build and index.
    pub fn artifacts(&self) -> Vec<EventArtifact> {
        self.artifacts.values().cloned().collect()
    }
}

/// `==> null.x: rest`, `    null.x: rest`, `--> null.x: rest` → (`null.x`, `rest`,
/// false); a post-processor's `==> null.x (shell-local): rest` → (…, true).
fn split_build(text: &str) -> Option<(&str, &str, bool)> {
    // Only Packer's own prefixes: a bare `Error: …` is no build called `Error`.
    let text = text.trim_start_matches('\n');
    let body = text
        .strip_prefix("==> ")
        .or_else(|| text.strip_prefix("--> "))
        .or_else(|| text.strip_prefix("    "))?;
    let (name, rest) = body.split_once(": ")?;
    // A post-processor's lines say `null.x (artifice): …`.
    let (name, post) = match name.split_once(" (") {
        Some((build, kind)) if kind.ends_with(')') && !kind.contains(' ') => (build, true),
        _ => (name, false),
    };
    let ok =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then_some((name, rest, post))
}

/// Drops the `2026-12-03T17:47:35Z: ` that `-timestamp-ui` puts before each line.
fn untimestamped(text: &str) -> &str {
    let Some((stamp, rest)) = text.split_once(": ") else { return text };
    let b = stamp.as_bytes();
    let looks = b.len() >= 20
        && b.len() <= 35
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[..4].iter().all(u8::is_ascii_digit)
        && (stamp.ends_with('Z') || stamp.contains('+') || stamp[10..].contains('-'));
    if looks { rest } else { text }
}

/// `Build 'null.x' errored after 13 milliseconds 692 microseconds: MESSAGE`.
fn errored(text: &str) -> Option<(String, String)> {
    let rest = text.trim_start().strip_prefix("Build '")?;
    let (build, rest) = rest.split_once("' errored")?;
    let message = rest.split_once(": ").map_or("", |(_, m)| m);
    Some((build.to_owned(), message.to_owned()))
}

/// Packer's closing summary lines, which repeat errors already seen.
fn is_summary(text: &str) -> bool {
    text.contains("Some builds didn't complete successfully")
}

fn provisioner_start(rest: &str) -> Option<&'static str> {
    PROVISIONER_STARTS.iter().find(|(_, start)| rest.starts_with(start)).map(|(kind, _)| *kind)
}

/// `Running post-processor: NAME (type TYPE)` → `TYPE`; `Running post-processor:
/// shell-local` (JSON templates) → `shell-local`.
fn post_processor(rest: &str) -> Option<String> {
    let rest = rest.strip_prefix("Running post-processor:")?;
    let kind = rest.rsplit_once("(type ").map(|(_, t)| t.trim_end_matches(')').trim().to_owned());
    Some(kind.unwrap_or_else(|| rest.trim().to_owned()))
}

fn resource_id(rest: &str) -> Option<String> {
    RESOURCE_MARKERS.iter().find_map(|(start, end)| {
        let at = rest.find(start)?;
        let tail = &rest[at + start.len()..];
        let id = if end.is_empty() { tail.split_whitespace().next()? } else { tail.split(end).next()? };
        let id = id.trim();
        let valid = !id.is_empty()
            && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-'));
        valid.then(|| id.to_owned())
    })
}

/// `amazon-ebs.ubuntu` → `amazon-ebs`; `amazon-ebs` (JSON templates) → itself.
pub fn builder_type(build: &str) -> &str {
    build.split('.').next().unwrap_or(build)
}

fn push_bounded(lines: &mut Vec<String>, line: &str) {
    // Packer repeats a build's error in its summary: once is enough.
    if line.trim().is_empty() || lines.iter().any(|l| l == line) {
        return;
    }
    if lines.len() == MAX_ERROR_LINES {
        lines.remove(0);
    }
    lines.push(shorten(line));
}

fn shorten(line: &str) -> String {
    if line.len() <= MAX_ERROR_LINE {
        return line.to_owned();
    }
    let mut end = MAX_ERROR_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::super::events::parse_line;
    use super::super::map::SayRule;
    use super::*;

    fn code(n: i64) -> StateCode {
        StateCode::new(n).expect("a code")
    }

    fn run(map: PackerMap, lines: &str) -> (Progress, Vec<Vec<u8>>) {
        let mut p = Progress::new(map);
        let reached =
            lines.lines().map(|l| p.feed(&parse_line(l)).into_iter().map(StateCode::get).collect()).collect();
        (p, reached)
    }

    const THREE: &str = "\
1,,ui,say,==> null.x: Running local shell script: /tmp/packer-shell1
1,,ui,message,    null.x: one%!(PACKER_COMMA) two
1,,ui,say,==> null.x: Running local shell script: /tmp/packer-shell2
1,,ui,say,==> null.x: Running local shell script: /tmp/packer-shell3
1,,ui,error,==> null.x: err
1,,ui,say,==> null.x: Running post-processor:  (type manifest)
1,,ui,say,Build 'null.x' finished after 25 milliseconds.
1,null.x,artifact,0,id,Null
1,null.x,artifact,0,file,0,disk.img";

    #[test]
    fn provisioners_are_counted_in_order() {
        let map = PackerMap {
            provisioners: [(0, code(10)), (1, code(15)), (2, code(25))].into_iter().collect(),
            say: vec![SayRule { pattern: "one, two".into(), milestone: code(12) }],
        };
        let (p, reached) = run(map, THREE);
        assert_eq!(
            reached,
            vec![vec![10], vec![12], vec![15], vec![25], vec![], vec![], vec![], vec![], vec![]]
        );
        assert!(p.failures().is_empty());
        assert_eq!(
            p.artifacts(),
            vec![EventArtifact {
                build: "null.x".into(),
                builder_id: String::new(),
                id: "Null".into(),
                files: vec!["disk.img".into()]
            }]
        );
    }

    #[test]
    fn a_failing_provisioner_is_named_with_its_error_lines() {
        let lines = "\
1,,ui,say,==> null.x: Running local shell script: /tmp/a
1,,ui,message,    null.x: ok
1,,ui,say,==> null.x: Running local shell script: /tmp/b
1,,ui,error,==> null.x: boom
1,,ui,say,==> null.x: Provisioning step had errors: Running the cleanup provisioner%!(PACKER_COMMA) if present...
1,,ui,error,Build 'null.x' errored after 13 milliseconds 692 microseconds: Script exited with non-zero exit status: 3.Allowed exit codes are: [0]
1,,error-count,1
1,,ui,error,\\n==> Some builds didn't complete successfully and had errors:
1,null.x,error,Script exited with non-zero exit status: 3.Allowed exit codes are: [0]
1,,ui,error,--> null.x: Script exited with non-zero exit status: 3.Allowed exit codes are: [0]";
        let (p, _) = run(PackerMap::default(), lines);
        let [f] = p.failures() else { panic!("one failure: {:?}", p.failures()) };
        assert_eq!(f.component, Component::Provisioner { index: 1, kind: "shell-local".into() });
        assert_eq!(f.component_name(), "shell-local (provisioner 1)");
        assert_eq!(f.builder_type, "null");
        assert!(f.message.starts_with("Script exited with non-zero exit status: 3"), "{}", f.message);
        assert_eq!(f.error_lines[0], "boom");
        assert_eq!(f.error_lines.len(), 2, "{:?}", f.error_lines);
        assert!(p.general_errors().is_empty(), "{:?}", p.general_errors());
    }

    #[test]
    fn builder_post_processor_and_template_errors() {
        let (p, _) = run(
            PackerMap::default(),
            "1,,ui,say,==> amazon-ebs.u: Launching a source AWS instance...\n\
             1,,ui,message,    amazon-ebs.u: Instance ID: i-0abc\n\
             1,amazon-ebs.u,error,Timeout waiting for SSH.",
        );
        let [f] = p.failures() else { panic!("one failure") };
        assert_eq!(f.component, Component::Builder);
        assert_eq!(f.component_name(), "amazon-ebs.u (builder)");
        assert_eq!(f.resource_id.as_deref(), Some("i-0abc"));
        assert_eq!(f.builder_type, "amazon-ebs");

        let (p, _) = run(
            PackerMap::default(),
            "1,,ui,say,==> null.x: Running post-processor:  (type manifest)\n\
             1,,ui,error,Build 'null.x' errored after 1 ms: cannot write m.json",
        );
        assert_eq!(p.failures()[0].component_name(), "manifest (post-processor)");
        assert_eq!(p.failures()[0].message, "cannot write m.json");

        let (p, _) =
            run(PackerMap::default(), "1,,ui,error,Error: Could not find any config file in x.pkr.hcl\\n\\n");
        assert!(p.failures().is_empty());
        assert_eq!(p.general_errors(), ["Error: Could not find any config file in x.pkr.hcl"]);
    }

    #[test]
    fn azure_resource_groups_are_found() {
        assert_eq!(
            resource_id(" -> ResourceGroupName : 'packer-Resource-Group-abc'").as_deref(),
            Some("packer-Resource-Group-abc")
        );
        assert_eq!(resource_id("nothing here"), None);
        assert_eq!(split_build("==> null.x (artifice): Using these"), Some(("null.x", "Using these", true)));
        assert_eq!(split_build("Error: x"), None);
    }

    #[test]
    fn post_processor_steps_are_no_provisioners() {
        let map = PackerMap { provisioners: [(1, code(15))].into_iter().collect(), say: vec![] };
        for pp in ["Running post-processor:  (type shell-local)", "Running post-processor: shell-local"] {
            let lines = format!(
                "1,,ui,say,==> null.x: Running local shell script: /tmp/a\n\
                 1,,ui,say,==> null.x: {pp}\n\
                 1,,ui,say,==> null.x (shell-local): Running local shell script: /tmp/b\n\
                 1,,ui,say,==> null.x: Running local shell script: /tmp/c\n\
                 1,,ui,error,Build 'null.x' errored after 1 ms: Post-processor failed: exit 3"
            );
            let (p, reached) = run(map.clone(), &lines);
            assert!(reached.iter().all(Vec::is_empty), "{pp}: {reached:?}");
            assert_eq!(p.failures()[0].component_name(), "shell-local (post-processor)", "{pp}");
        }
    }

    #[test]
    fn timestamps_ui_lines_still_count() {
        let map = PackerMap { provisioners: [(0, code(10))].into_iter().collect(), say: vec![] };
        let (p, reached) = run(
            map,
            "1,,ui,say,2026-12-03T17:47:35Z: ==> null.x: Running local shell script: /tmp/a\n\
             1,,ui,error,2026-12-03T17:47:35Z: Build 'null.x' errored after 1 ms: boom",
        );
        assert_eq!(reached[0], vec![10]);
        assert_eq!(p.failures()[0].component_name(), "shell-local (provisioner 0)");
        assert_eq!(untimestamped("Error: x: y"), "Error: x: y");
    }

    #[test]
    fn resource_ids_come_from_the_builder_only_and_are_checked() {
        let (p, _) = run(
            PackerMap::default(),
            "1,,ui,say,==> amazon-ebs.u: Running local shell script: /tmp/a\n\
             1,,ui,message,    amazon-ebs.u: Instance ID: i-evil\n\
             1,amazon-ebs.u,error,boom",
        );
        assert_eq!(p.failures()[0].resource_id, None);
        assert_eq!(resource_id("Instance ID: i-abc$(touch X)"), None);
        assert_eq!(resource_id("Instance ID: i-0abc"), Some("i-0abc".into()));
    }

    #[test]
    fn no_build_at_all_is_seen() {
        let (p, _) = run(
            PackerMap::default(),
            "1,,ui,say,\\n==> Wait completed after 63 microseconds\n\
             1,,ui,say,\\n==> Builds finished but no artifacts were created.",
        );
        assert!(!p.ran_a_build());
        let (p, _) = run(PackerMap::default(), THREE);
        assert!(p.ran_a_build());
    }
}
