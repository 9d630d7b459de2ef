//! The files of a project `buildstate new` writes, rendered from the templates under
//! `assets/new/`. Placeholders are `@key@` (neither Jinja's `{{ }}` nor HCL's `${}`).

use std::path::{Path, PathBuf};

use buildstate_core::{Name, StateCatalog};

use crate::exit::CliError;

const PIPELINE: &str = include_str!("../../assets/new/pipeline.yaml.in");
const ANSIBLE_STEP: &str = include_str!("../../assets/new/ansible-step.yaml.in");
const PACKER_BUILD: &str = include_str!("../../assets/new/packer/build.pkr.hcl.in");
const PACKER_VARIABLES: &str = include_str!("../../assets/new/packer/variables.pkr.hcl");
const PACKER_OS: &str = include_str!("../../assets/new/packer/os.pkr.hcl.in");
const ANSIBLE_CFG: &str = include_str!("../../assets/new/ansible/ansible.cfg");
const INVENTORY: &str = include_str!("../../assets/new/ansible/inventory");
const INVENTORY_DRY_RUN: &str = include_str!("../../assets/new/ansible/inventory.dry-run");
const PLAYBOOK: &str = include_str!("../../assets/new/ansible/playbook.yml.in");
const README: &str = include_str!("../../assets/new/README.md.in");
const GITIGNORE: &str = include_str!("../../assets/new/gitignore");

/// The dry run's Packer source: no cloud, no credentials.
const DRY_RUN_SOURCE: &str = "null.dry-run";

/// A cloud Packer builds on, chosen by a platform's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Aws,
    Azure,
    Gcp,
    Openstack,
}

impl Family {
    const ALL: [Family; 4] = [Family::Aws, Family::Azure, Family::Gcp, Family::Openstack];

    fn of(platform: &Name) -> Option<Family> {
        let p = platform.as_str();
        Family::ALL.into_iter().find(|f| f.prefixes().iter().any(|pre| p.starts_with(pre)))
    }

    fn prefixes(self) -> &'static [&'static str] {
        match self {
            Family::Aws => &["aws"],
            Family::Azure => &["azure"],
            Family::Gcp => &["gcp", "google"],
            Family::Openstack => &["openstack"],
        }
    }

    /// The family's word, in file names (`pipeline.aws.yaml`).
    fn word(self) -> &'static str {
        match self {
            Family::Aws => "aws",
            Family::Azure => "azure",
            Family::Gcp => "gcp",
            Family::Openstack => "openstack",
        }
    }

    /// Its source in `build.pkr.hcl`, for `-only`.
    fn source(self) -> &'static str {
        match self {
            Family::Aws => "amazon-ebs.aws",
            Family::Azure => "azure-arm.azure",
            Family::Gcp => "googlecompute.gcp",
            Family::Openstack => "openstack.openstack",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Family::Aws => include_str!("../../assets/new/packer/source-aws.pkr.hcl.in"),
            Family::Azure => include_str!("../../assets/new/packer/source-azure.pkr.hcl.in"),
            Family::Gcp => include_str!("../../assets/new/packer/source-gcp.pkr.hcl.in"),
            Family::Openstack => include_str!("../../assets/new/packer/source-openstack.pkr.hcl.in"),
        }
    }
}

/// What a project builds: checked names, each list non-empty.
#[derive(Debug)]
pub struct Project {
    name: Name,
    os: Vec<Name>,
    platform: Vec<(Name, Family)>,
    image: Vec<Name>,
}

impl Project {
    pub fn new(name: Name, os: Vec<Name>, platform: Vec<Name>, image: Vec<Name>) -> Result<Self, CliError> {
        let mut typed = Vec::new();
        for p in platform {
            let Some(f) = Family::of(&p) else {
                return Err(CliError::usage(format!(
                    "--platform: `{p}` names no cloud the Packer template knows; a platform starts with aws, azure, gcp (or google) or openstack"
                ))
                .with_hint("name it after its cloud, such as aws-commercial, azure-gov, gcp, openstack-lab"));
            };
            typed.push((p, f));
        }
        // Two OS versions must not share the identifier of their Packer locals.
        let mut slugs: Vec<(String, &Name)> = Vec::new();
        for o in &os {
            let slug = slug(o);
            if let Some((_, other)) = slugs.iter().find(|(s, _)| *s == slug) {
                return Err(CliError::usage(format!(
                    "--os: `{other}` and `{o}` differ only in `.`, `-` or `_`, which the Packer template cannot tell apart"
                ))
                .with_hint("give one of them"));
            }
            slugs.push((slug, o));
        }
        Ok(Project { name, os, platform: typed, image })
    }

    fn families(&self) -> Vec<Family> {
        let mut f: Vec<Family> = self.platform.iter().map(|(_, f)| *f).collect();
        f.sort();
        f.dedup();
        f
    }

    /// The real pipeline files: `pipeline.yaml` for one cloud; with several, one file per
    /// cloud (`pipeline.aws.yaml`, …), because a pipeline step's arguments are the same
    /// for every cell and `-only` picks one cloud's source.
    fn real_pipelines(&self) -> Vec<(String, Family)> {
        match self.families().as_slice() {
            [one] => vec![("pipeline.yaml".to_owned(), *one)],
            many => many.iter().map(|f| (format!("pipeline.{}.yaml", f.word()), *f)).collect(),
        }
    }
}

/// The project's files, relative to its directory, in the order they are listed.
pub fn render(p: &Project) -> Result<Vec<(PathBuf, String)>, CliError> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let milestones = playbook_milestones();
    for (file, family) in p.real_pipelines() {
        let platforms: Vec<&Name> = p.platform.iter().filter(|(_, f)| *f == family).map(|(n, _)| n).collect();
        let what = format!("the real run on {} (Packer source {})", family.word(), family.source());
        files.push((
            file.clone().into(),
            pipeline(p, &file, &what, &platforms, family.source(), "inventory", &milestones),
        ));
    }
    let all: Vec<&Name> = p.platform.iter().map(|(n, _)| n).collect();
    let what = "the dry run: Packer's null builder, Ansible on this machine";
    files.push((
        "pipeline.dry-run.yaml".into(),
        pipeline(p, "pipeline.dry-run.yaml", what, &all, DRY_RUN_SOURCE, "inventory.dry-run", &milestones),
    ));
    files.push(("packer/build.pkr.hcl".into(), packer_build(p)));
    files.push(("packer/variables.pkr.hcl".into(), PACKER_VARIABLES.to_owned()));
    for os in &p.os {
        files.push((format!("packer/{os}.pkr.hcl").into(), packer_os(os)));
    }
    files.push(("ansible/ansible.cfg".into(), ANSIBLE_CFG.to_owned()));
    files.push(("ansible/inventory".into(), INVENTORY.to_owned()));
    files.push(("ansible/inventory.dry-run".into(), INVENTORY_DRY_RUN.to_owned()));
    for (code, name, meaning) in &milestones {
        let text = fill(PLAYBOOK, &[("code", code), ("name", name), ("meaning", meaning)]);
        files.push((format!("ansible/{}", playbook_file(code, name)).into(), text));
    }
    files.extend(ci_files(p, &files)?);
    files.push(("README.md".into(), readme(p)));
    files.push((".gitignore".into(), GITIGNORE.to_owned()));
    if let Some((path, _)) = files.iter().find(|(_, text)| has_placeholder(text)) {
        return Err(CliError::internal(format!("the template of {} has a placeholder left", path.display())));
    }
    Ok(files)
}

/// The CI files, written by `buildstate generate` from the real pipeline files just
/// rendered: `.gitlab-ci.yml` (with one cloud; with several, it includes one file per
/// cloud under `ci/`), a GitHub workflow and a Concourse pipeline per pipeline file.
fn ci_files(p: &Project, rendered: &[(PathBuf, String)]) -> Result<Vec<(PathBuf, String)>, CliError> {
    use super::generate::{self, Engine, Plan, StoreRef};
    let real = p.real_pipelines();
    let mut out = Vec::new();
    let mut includes = Vec::new();
    for (file, family) in &real {
        let text =
            rendered.iter().find(|(f, _)| f == Path::new(file)).map(|(_, t)| t.as_str()).unwrap_or_default();
        let pipeline = buildstate_runner::pipeline::Pipeline::parse(text, Path::new(file))
            .map_err(|e| CliError::internal(format!("the rendered {file} does not read back: {e}")))?;
        let stem = file.trim_end_matches(".yaml");
        let title =
            if real.len() == 1 { p.name.to_string() } else { format!("{} {}", p.name, family.word()) };
        let plan = |engine: &str| Plan {
            title: title.clone(),
            pipeline: pipeline.clone(),
            path: file.clone(),
            store: StoreRef::Variable,
            per_milestone: false,
            command: "buildstate".to_owned(),
            invocation: format!("buildstate generate {engine} {file}"),
        };
        let gitlab = generate::render(Engine::Gitlab, &plan("gitlab"));
        if real.len() == 1 {
            out.push((".gitlab-ci.yml".into(), gitlab));
        } else {
            let path = format!("ci/gitlab.{}.yml", family.word());
            includes.push(path.clone());
            out.push((path.into(), gitlab));
        }
        out.push((
            format!(".github/workflows/{stem}.yml").into(),
            generate::render(Engine::Github, &plan("github")),
        ));
        out.push((
            format!("ci/concourse.{stem}.yml").into(),
            generate::render(Engine::Concourse, &plan("concourse")),
        ));
    }
    if !includes.is_empty() {
        let list: String = includes.iter().map(|i| format!("  - local: {i}\n")).collect();
        out.push((
            ".gitlab-ci.yml".into(),
            format!("# Written by `buildstate new`: one file of jobs per cloud.\ninclude:\n{list}"),
        ));
    }
    Ok(out)
}

/// The default catalog's milestones Ansible configures: 15 (base-config) … 95 (seal),
/// as (code, name, meaning).
fn playbook_milestones() -> Vec<(String, String, String)> {
    StateCatalog::default_catalog()
        .milestones()
        .iter()
        .filter(|m| (15..=95).contains(&m.code.get()))
        .map(|m| (m.code.get().to_string(), m.name.clone(), m.meaning.clone()))
        .collect()
}

fn playbook_file(code: &str, name: &str) -> String {
    format!("{code}-{name}.yml")
}

fn pipeline(
    p: &Project,
    file: &str,
    what: &str,
    platforms: &[&Name],
    source: &str,
    inventory: &str,
    milestones: &[(String, String, String)],
) -> String {
    let steps: String = milestones
        .iter()
        .map(|(code, name, _)| {
            fill(
                ANSIBLE_STEP,
                &[("code", code), ("playbook", &playbook_file(code, name)), ("inventory", inventory)],
            )
        })
        .collect();
    fill(
        PIPELINE,
        &[
            ("file", file),
            ("what", what),
            ("name", p.name.as_str()),
            ("platforms", &join(platforms.iter().copied())),
            ("oses", &join(p.os.iter())),
            ("images", &join(p.image.iter())),
            ("packer_only", &format!("-only={source}")),
            ("ansible_steps", steps.trim_end_matches('\n')),
        ],
    )
}

fn packer_build(p: &Project) -> String {
    let families = p.families();
    let sources: String =
        families.iter().map(|f| format!("{}\n", fill(f.template(), &[("name", p.name.as_str())]))).collect();
    let mut refs: Vec<String> = families.iter().map(|f| format!("    \"source.{}\",", f.source())).collect();
    refs.push(format!("    \"source.{DRY_RUN_SOURCE}\","));
    let os_map: Vec<String> = p.os.iter().map(|o| format!("    \"{o}\" = local.os_{}", slug(o))).collect();
    let build = fill(PACKER_BUILD, &[("os_map", &os_map.join("\n")), ("source_refs", &refs.join("\n"))]);
    // The cloud sources go before the `null` one, after the locals they read.
    match build.find("source \"null\"") {
        Some(at) => format!("{}{sources}{}", &build[..at], &build[at..]),
        None => format!("{build}\n{sources}"),
    }
}

fn packer_os(os: &Name) -> String {
    // `rhel-9.6` → family `rhel`, version `9.6`: guesses for the cloud image names.
    let (family, version) = os.as_str().split_once('-').unwrap_or((os.as_str(), "latest"));
    let ssh_user = match family {
        "ubuntu" => "ubuntu",
        "debian" => "admin",
        _ => "ec2-user",
    };
    fill(
        PACKER_OS,
        &[
            ("os", os.as_str()),
            ("slug", &slug(os)),
            ("ssh_user", ssh_user),
            ("upper", &os.as_str().to_uppercase()),
            ("family", family),
            ("version", version),
            ("version_dash", &version.replace(['.', '_'], "-")),
        ],
    )
}

fn readme(p: &Project) -> String {
    let real = p.real_pipelines();
    let rows: Vec<String> = real
        .iter()
        .map(|(file, f)| {
            format!("| `{file}` | the real run on {} (Packer source `{}`) |", f.word(), f.source())
        })
        .collect();
    let runs: Vec<String> =
        real.iter().map(|(file, _)| format!("buildstate run {file} --add-missing")).collect();
    let count = p.os.len() * p.platform.len() * p.image.len();
    fill(
        README,
        &[
            ("name", p.name.as_str()),
            ("count", &count.to_string()),
            ("platforms", &join(p.platform.iter().map(|(n, _)| n))),
            ("oses", &join(p.os.iter())),
            ("images", &join(p.image.iter())),
            ("pipeline_rows", &rows.join("\n")),
            ("real_runs", &runs.join("\n")),
        ],
    )
}

/// An OS name as an HCL identifier: `rhel-9.6` → `rhel_9_6`.
fn slug(os: &Name) -> String {
    os.as_str().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn join<'a>(names: impl Iterator<Item = &'a Name>) -> String {
    names.map(Name::as_str).collect::<Vec<_>>().join(", ")
}

/// Replaces every `@key@` of `template`.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |text, (key, value)| text.replace(&format!("@{key}@"), value))
}

/// A `@word@` left over: a template and its renderer disagree.
fn has_placeholder(text: &str) -> bool {
    let parts: Vec<&str> = text.split('@').collect();
    parts.len() > 2
        && parts[1..parts.len() - 1]
            .iter()
            .any(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Name> {
        list.iter().map(|n| Name::new(n).unwrap()).collect()
    }

    fn project(platforms: &[&str]) -> Project {
        Project::new(
            Name::new("demo").unwrap(),
            names(&["rhel-9.6", "sles-15.7"]),
            names(platforms),
            names(&["base"]),
        )
        .unwrap()
    }

    #[test]
    fn every_template_is_filled() {
        let files = render(&project(&["aws-commercial", "azure", "gcp", "openstack-lab"])).unwrap();
        for (path, text) in &files {
            assert!(!has_placeholder(text), "{}: {text}", path.display());
        }
        let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        for want in [
            "pipeline.aws.yaml",
            "pipeline.openstack.yaml",
            "pipeline.dry-run.yaml",
            "packer/sles-15.7.pkr.hcl",
        ] {
            assert!(paths.contains(&want.to_owned()), "{paths:?}");
        }
        assert!(paths.contains(&"ansible/45-storage.yml".to_owned()), "{paths:?}");
        assert_eq!(paths.iter().filter(|p| p.starts_with("ansible/") && p.ends_with(".yml")).count(), 17);
    }

    #[test]
    fn one_cloud_has_one_real_pipeline() {
        let files = render(&project(&["aws-commercial", "aws-govcloud"])).unwrap();
        let real: Vec<String> = files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .filter(|p| p.starts_with("pipeline."))
            .collect();
        assert_eq!(real, ["pipeline.yaml", "pipeline.dry-run.yaml"]);
    }

    #[test]
    fn placeholders_are_found() {
        assert!(has_placeholder("a @name@ b"));
        assert!(!has_placeholder("user@example.com and postgres://u@h/db"));
    }

    #[test]
    fn unknown_clouds_and_clashing_os_names_are_refused() {
        let e = Project::new(
            Name::new("d").unwrap(),
            names(&["rhel-9.6"]),
            names(&["vsphere"]),
            names(&["base"]),
        );
        assert!(e.is_err());
        let e = Project::new(
            Name::new("d").unwrap(),
            names(&["rhel-9.6", "rhel-9-6"]),
            names(&["aws"]),
            names(&["base"]),
        );
        assert!(e.is_err());
    }
}
