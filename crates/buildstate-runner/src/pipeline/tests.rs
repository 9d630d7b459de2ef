//! Whole-file tests: the documented example, merging, and every error with its position.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use buildstate_core::{Backoff, Name, RetryPolicy, StateCatalog, StateCode, TransientMatch};

use super::*;

fn name(s: &str) -> Name {
    Name::new(s).expect("valid name")
}

fn code(n: i64) -> StateCode {
    StateCode::new(n).expect("valid code")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn cell(platform: &str, os: &str, image: &str) -> MatrixCell {
    MatrixCell { platform: name(platform), os: name(os), image_type: name(image) }
}

/// Writes an executable script at `dir/rel`.
fn script(dir: &Path, rel: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The first ```yaml block of docs/pipeline.md.
fn documented_example() -> String {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/pipeline.md");
    let text = std::fs::read_to_string(&doc).expect("docs/pipeline.md is readable");
    let start = text.find("```yaml\n").expect("docs/pipeline.md has a ```yaml block") + "```yaml\n".len();
    let len = text[start..].find("\n```").expect("the yaml block is closed") + 1;
    text[start..start + len].to_owned()
}

#[test]
fn the_documented_example_parses_to_the_expected_pipeline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let hardening = script(&dir, "scripts/12-hardening.sh");
    let base_config = script(&dir, "ansible/15-base-config.sh");
    let file = dir.join("rhel-sap.pipeline.yml");
    std::fs::write(&file, documented_example()).expect("write pipeline");

    let got = Pipeline::load(&file).unwrap_or_else(|e| panic!("the documented example must parse: {e}"));

    let transient = TransientMatch {
        exit_codes: vec![75],
        output_patterns: vec!["Could not resolve host".into(), "429 Too Many Requests".into()],
    };
    let default_retry = RetryPolicy {
        max_attempts: 3,
        backoff: Backoff::Exponential { initial_ms: 10_000, factor: 2, max_ms: 300_000, jitter: true },
        transient: transient.clone(),
    };
    let env = map(&[("ANSIBLE_FORCE_COLOR", "0"), ("ANSIBLE_CONFIG", "ansible/ansible.cfg")]);
    let platform_env: BTreeMap<Name, BTreeMap<String, String>> =
        [(name("azure"), map(&[("AZURE_LOCATION", "westeurope")]))].into();
    let step = |n: i64, program: Program| Step {
        state: code(n),
        program,
        workdir: dir.clone(),
        env: env.clone(),
        platform_env: platform_env.clone(),
        timeout: Some(Duration::from_secs(30 * 60)),
        retry: default_retry.clone(),
    };
    let shell = |s: &str| Program::Shell(s.to_owned());

    let mut steps = BTreeMap::new();
    steps.insert(code(0), step(0, shell("echo triggered")));
    steps.insert(
        code(5),
        Step {
            workdir: dir.join("packer"),
            timeout: Some(Duration::from_secs(45 * 60)),
            retry: RetryPolicy {
                max_attempts: 2,
                backoff: Backoff::Exponential {
                    initial_ms: 60_000,
                    factor: 2,
                    max_ms: 900_000,
                    jitter: true,
                },
                transient: transient.clone(),
            },
            ..step(
                5,
                Program::Argv(
                    ["packer", "build", "-var", "os=rhel", "kickstart.pkr.hcl"].map(String::from).to_vec(),
                ),
            )
        },
    );
    steps.insert(
        code(10),
        Step { workdir: dir.join("packer"), ..step(10, shell("packer build green.pkr.hcl")) },
    );
    steps.insert(code(12), step(12, Program::Script(hardening)));
    steps.insert(
        code(15),
        Step {
            env: map(&[
                ("ANSIBLE_FORCE_COLOR", "0"),
                ("ANSIBLE_CONFIG", "ansible/ansible.cfg"),
                ("PLAYBOOK", "15-base-config.yml"),
            ]),
            platform_env: [
                (name("azure"), map(&[("AZURE_LOCATION", "westeurope"), ("CLOUD", "azure")])),
                (name("gcp"), map(&[("CLOUD", "gcp")])),
            ]
            .into(),
            ..step(15, Program::Script(base_config))
        },
    );
    steps.insert(
        code(20),
        Step {
            workdir: dir.join("ansible"),
            ..step(20, shell("ansible-playbook 20-cloud-setup.yml -e \"cloud=$BUILDSTATE_PLATFORM\""))
        },
    );
    steps.insert(
        code(70),
        Step {
            timeout: Some(Duration::from_secs(20 * 60)),
            retry: RetryPolicy { max_attempts: 1, ..default_retry.clone() },
            ..step(70, shell("./tests/smoke.sh"))
        },
    );
    steps.insert(
        code(95),
        Step {
            workdir: dir.join("ansible"),
            retry: RetryPolicy { backoff: Backoff::Fixed { delay_ms: 30_000 }, ..default_retry.clone() },
            ..step(95, shell("ansible-playbook 95-seal.yml"))
        },
    );
    steps.insert(
        code(100),
        step(
            100,
            shell(
                "buildstate artifact add \"$BUILDSTATE_BUILD\" --name image --kind image \
                 --uri \"file://$PWD/out/$BUILDSTATE_PLATFORM-$BUILDSTATE_OS-$BUILDSTATE_IMAGE.img\"",
            ),
        ),
    );

    let catalog = StateCatalog::default_catalog()
        .with_inserted(vec![buildstate_core::Milestone {
            code: code(12),
            name: "hardening".into(),
            meaning: "CIS level 1 hardening".into(),
            tool: "Ansible".into(),
        }])
        .expect("valid catalog");
    let expected = Pipeline {
        name: name("rhel-sap-images"),
        file: file.clone(),
        dir: dir.clone(),
        catalog,
        matrix: vec![
            cell("aws-commercial", "rhel-9.6", "base"),
            cell("aws-commercial", "rhel-9.6", "hana"),
            cell("aws-commercial", "sles-15.7", "base"),
            cell("aws-commercial", "sles-15.7", "hana"),
            cell("azure", "rhel-9.6", "base"),
            cell("azure", "rhel-9.6", "hana"),
            cell("azure", "sles-15.7", "base"),
            cell("azure", "sles-15.7", "hana"),
            cell("gcp", "rhel-9.6", "base"),
            cell("gcp", "sles-15.7", "base"),
            cell("openstack", "rhel-9.6", "base"),
        ],
        steps,
    };
    // Compare piecewise first so that a failure says which part drifted.
    assert_eq!(got.name, expected.name);
    assert_eq!((&got.file, &got.dir), (&expected.file, &expected.dir));
    assert_eq!(got.catalog, expected.catalog);
    assert_eq!(got.matrix, expected.matrix);
    for (code, want) in &expected.steps {
        assert_eq!(got.steps.get(code), Some(want), "state {code}");
    }
    assert_eq!(got, expected);

    // What docs/pipeline.md says about it.
    assert_eq!(got.matrix.len(), 11);
    let skipped: Vec<u8> =
        got.catalog.codes().filter(|c| !got.steps.contains_key(c)).map(|c| c.get()).collect();
    assert_eq!(skipped, [25, 30, 35, 40, 45, 50, 55, 60, 65, 75, 80, 85, 90]);
}

#[test]
fn env_for_applies_the_platform_overrides() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let yaml = "name: p
matrix: {platform: [aws, azure], os: [rhel], image: [base]}
defaults:
  env: {A: default, B: default, C: default}
  platform_env:
    azure: {B: default-azure, D: default-azure}
states:
  10:
    run: 'true'
    env: {C: step}
    platform_env:
      azure: {D: step-azure}
      aws: {A: step-aws}
";
    let p = Pipeline::parse(yaml, &tmp.path().join("p.yml")).expect("valid");
    let step = &p.steps[&code(10)];
    assert_eq!(step.env, map(&[("A", "default"), ("B", "default"), ("C", "step")]));
    assert_eq!(
        step.env_for(&name("azure")),
        map(&[("A", "default"), ("B", "default-azure"), ("C", "step"), ("D", "step-azure")])
    );
    assert_eq!(step.env_for(&name("aws")), map(&[("A", "step-aws"), ("B", "default"), ("C", "step")]));
    assert_eq!(step.env_for(&name("elsewhere")), step.env);
}

#[test]
fn retry_merges_field_by_field_over_the_built_in_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let yaml = "name: p
matrix: {platform: [aws], os: [rhel], image: [base]}
defaults:
  retry:
    max_attempts: 4
    transient: {exit_codes: [75, 1], output_patterns: [mirror down]}
states:
  5: {run: a}
  10: {run: a, retry: {backoff: {kind: none}}}
  15: {run: a, retry: {transient: {exit_codes: []}}}
  70: {run: a, retry: {max_attempts: 2, backoff: {kind: fixed, delay: 1m30s}}}
";
    let p = Pipeline::parse(yaml, &tmp.path().join("p.yml")).expect("valid");
    let policy = |n: i64| p.steps[&code(n)].retry.clone();
    let transient = TransientMatch { exit_codes: vec![75, 1], output_patterns: vec!["mirror down".into()] };

    // Only max_attempts and transient from the defaults; the backoff is 5's built-in one.
    assert_eq!(
        policy(5),
        RetryPolicy {
            max_attempts: 4,
            backoff: RetryPolicy::default_for(code(5)).backoff,
            transient: transient.clone()
        }
    );
    assert_eq!(
        policy(10),
        RetryPolicy { max_attempts: 4, backoff: Backoff::None, transient: transient.clone() }
    );
    assert_eq!(
        policy(15),
        RetryPolicy {
            max_attempts: 4,
            backoff: Backoff::Fixed { delay_ms: 10_000 },
            transient: TransientMatch { exit_codes: vec![], output_patterns: vec!["mirror down".into()] },
        }
    );
    assert_eq!(
        policy(70),
        RetryPolicy { max_attempts: 2, backoff: Backoff::Fixed { delay_ms: 90_000 }, transient }
    );

    // No retry anywhere: the built-in policy of each state, as is.
    let bare = "name: p\nmatrix: {platform: [a], os: [b], image: [c]}\nstates: {5: {run: a}, 45: {run: a}, 80: {run: a}}\n";
    let p = Pipeline::parse(bare, &tmp.path().join("p.yml")).expect("valid");
    for n in [5, 45, 80] {
        assert_eq!(p.steps[&code(n)].retry, RetryPolicy::default_for(code(n)), "state {n}");
        assert_eq!(p.steps[&code(n)].timeout, None);
    }
}

#[test]
fn configured_retry_defaults_sit_under_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = RetryDefaults::new(vec![RetryRule {
        first: code(10),
        last: code(65),
        layer: RetryLayer {
            max_attempts: Some(6),
            backoff: Some(Backoff::Fixed { delay_ms: 1_000 }),
            exit_codes: Some(vec![75]),
            output_patterns: None,
        },
    }]);
    let yaml = "name: p\nmatrix: {platform: [a], os: [b], image: [c]}\n\
                states: {5: {run: a}, 20: {run: a}, 25: {run: a, retry: {max_attempts: 2}}}\n";
    let p = Pipeline::parse_with(yaml, &tmp.path().join("p.yml"), &base).expect("valid");
    let policy = |n: i64| p.steps[&code(n)].retry.clone();
    // A step that sets nothing takes the configured rule of its range…
    assert_eq!(
        policy(20),
        RetryPolicy {
            max_attempts: 6,
            backoff: Backoff::Fixed { delay_ms: 1_000 },
            transient: TransientMatch { exit_codes: vec![75], output_patterns: vec![] },
        }
    );
    // …what the file sets wins, field by field…
    assert_eq!(policy(25), RetryPolicy { max_attempts: 2, ..policy(20) });
    // …and outside every rule the built-in policy stays.
    assert_eq!(policy(5), RetryPolicy::default_for(code(5)));
}

#[test]
fn durations_and_paths_resolve() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let yaml = "name: p
matrix: {platform: [a], os: [b], image: [c]}
defaults: {timeout: 1h30m, workdir: work}
states:
  5:
    run: a
    timeout: 500ms
    workdir: /abs/elsewhere
    retry: {backoff: {kind: exponential, initial: 1.5s, max: 2 minutes}}
  10: {run: a, workdir: ./sub/../x}
  15: {run: a}
";
    let p = Pipeline::parse(yaml, &tmp.path().join("p.yml")).expect("valid");
    let five = &p.steps[&code(5)];
    assert_eq!(five.timeout, Some(Duration::from_millis(500)));
    assert_eq!(five.workdir, PathBuf::from("/abs/elsewhere"));
    assert_eq!(
        five.retry.backoff,
        Backoff::Exponential { initial_ms: 1_500, factor: 2, max_ms: 120_000, jitter: false }
    );
    // Relative to the pipeline's directory, not to the default workdir; `..` is kept.
    assert_eq!(p.steps[&code(10)].workdir, tmp.path().join("sub/../x"));
    assert_eq!(p.steps[&code(15)].workdir, tmp.path().join("work"));
    assert_eq!(p.steps[&code(15)].timeout, Some(Duration::from_secs(5400)));
}

#[test]
fn run_takes_a_line_a_block_or_an_argv_list() {
    let yaml = "name: p
matrix: {platform: [a], os: [b], image: [c]}
states:
  0: {run: echo \"$HOME\" | tee out}
  5:
    run: |
      set -e
      make image
  10:
    run:
      - packer
      - build
      - 'a b'
      - ''
";
    let p = Pipeline::parse(yaml, Path::new("p.yml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.steps[&code(0)].program, Program::Shell("echo \"$HOME\" | tee out".into()));
    assert_eq!(p.steps[&code(5)].program, Program::Shell("set -e\nmake image\n".into()));
    assert_eq!(
        p.steps[&code(10)].program,
        Program::Argv(vec!["packer".into(), "build".into(), "a b".into(), String::new()])
    );
    assert_eq!(p.steps[&code(10)].program.to_string(), "packer build a b ");
}

#[test]
fn a_relative_file_gets_an_absolute_file_and_dir() {
    let p = Pipeline::parse(
        "name: p\nmatrix: {platform: [a], os: [b], image: [c]}\nstates: {0: {run: x}}\n",
        Path::new("pipelines/p.yml"),
    )
    .expect("valid");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(p.file, cwd.join("pipelines/p.yml"));
    assert_eq!(p.dir, cwd.join("pipelines"));
    assert_eq!(p.steps[&code(0)].workdir, cwd.join("pipelines"));
}

#[test]
fn cells_apply_the_filter_in_matrix_order() {
    let p = Pipeline::parse(
        "name: p\nmatrix: {platform: [aws, azure, aws-gov], os: [rhel, sles], image: [base]}\nstates: {0: {run: x}}\n",
        Path::new("p.yml"),
    )
    .expect("valid");
    let filter =
        MatrixFilter::parse(&["platform=aws*,os=rhel".to_owned(), "platform=azure,os=sles".to_owned()])
            .expect("valid filter");
    let got: Vec<String> = p.cells(&filter).iter().map(|c| c.to_string()).collect();
    assert_eq!(got, ["aws/rhel/base", "azure/sles/base", "aws-gov/rhel/base"]);
    assert_eq!(p.cells(&MatrixFilter::all()).len(), 6);
}

#[test]
fn a_custom_catalog_replaces_the_default() {
    let yaml = "name: p
catalog:
  - {code: 0, name: start}
  - {code: 50, name: middle, meaning: half way}
  - {code: 100, name: done}
matrix: {platform: [a], os: [b], image: [c]}
states: {50: {run: x}}
";
    let p = Pipeline::parse(yaml, Path::new("p.yml")).expect("valid");
    assert_eq!(p.catalog.code_list(), "0, 50, 100");
    assert_eq!(p.catalog.name_of(code(50)), "middle");
    assert_eq!(p.catalog.get(code(50)).map(|m| m.meaning.as_str()), Some("half way"));
}

const HEAD: &str = "name: p\nmatrix: {platform: [aws, azure], os: [rhel], image: [base]}\n";

/// The message for `yaml`, read as `p.yml` in a scratch directory.
fn error(yaml: &str) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = Pipeline::parse(yaml, &tmp.path().join("p.yml")).expect_err("must be refused");
    let text = err.to_string();
    let dir = format!("{}/", tmp.path().display());
    text.replacen(&dir, "", 1).replace(&dir, "TMP/")
}

#[test]
fn shape_errors_name_the_key_and_the_allowed_ones() {
    let cases = [
        (
            "nmae: p\n",
            "p.yml:1:1: unknown key `nmae`; expected one of: name, catalog, matrix, defaults, states",
        ),
        (
            &format!("{HEAD}states:\n  0: {{run: x, timout: 5m}}\n"),
            "p.yml:4:15: unknown key `timout`; expected one of: run, script, packer, ansible, workdir, timeout, env, platform_env, retry",
        ),
        (
            &format!("{HEAD}defaults:\n  retry: {{max_attempts: 2, backof: x}}\n"),
            "p.yml:4:28: unknown key `backof`; expected one of: max_attempts, backoff, transient",
        ),
        (
            &format!("{HEAD}defaults:\n  retry:\n    backoff: {{kind: fixed, delay: 1s, jiter: true}}\n"),
            "p.yml:5:39: unknown key `jiter`; expected one of: kind, delay, initial, max, factor, jitter",
        ),
        (
            &format!("{HEAD}defaults:\n  retry:\n    transient: {{exit_code: [1]}}\n"),
            "p.yml:5:17: unknown key `exit_code`; expected one of: exit_codes, output_patterns",
        ),
        (
            &format!("{HEAD}catalog: {{add: []}}\nstates: {{0: {{run: x}}}}\n"),
            "p.yml:3:11: unknown key `add`; expected one of: insert",
        ),
        (
            &format!("{HEAD}catalog: {{insert: [{{code: 12, name: x, owner: me}}]}}\n"),
            "p.yml:3:40: unknown key `owner`; expected one of: code, name, meaning, tool",
        ),
        ("name: p\nname: q\n", "p.yml:2:1: duplicate key `name`; each key may appear only once in a mapping"),
        (
            &format!("{HEAD}states:\n  5: {{run: a}}\n  5: {{run: b}}\n"),
            "p.yml:5:3: duplicate key `5`; each key may appear only once in a mapping",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: a, env: {{A: x, A: y}}}}\n"),
            "p.yml:4:27: duplicate key `A`; each key may appear only once in a mapping",
        ),
        ("- name: p\n", "p.yml:1:1: expected a mapping here ({key: value}, or `key: value` lines)"),
        (
            "name: p\nmatrix: {platform: aws, os: [rhel], image: [base]}\n",
            "p.yml:2:20: expected a list here ([a, b], or lines starting with `- `)",
        ),
        ("name: [p]\n", "p.yml:1:7: expected a single value here, not a list or a mapping"),
        (
            &format!("{HEAD}states:\n  5: {{run: x, retry: 3}}\n"),
            "p.yml:4:22: expected a mapping here ({key: value}, or `key: value` lines)",
        ),
        (
            &format!("{HEAD}states: {{0: {{run: x}}}}\n---\nname: q\n"),
            "p.yml:5:1: a second YAML document starts here; expected one pipeline per file",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: true}}\n"),
            "p.yml:4:12: `run` is true here; expected a command line or an argv list (quote it, \"true\", to run it as a command)",
        ),
        (
            &format!("{HEAD}defaults:\n  env: {{A: }}\n"),
            "p.yml:4:10: empty value; expected a value (write \"\" for an empty string)",
        ),
        (
            &format!("{HEAD}catalog: custom\n"),
            "p.yml:3:10: unknown catalog `custom`; expected `default`, `{insert: [milestones]}` or a list of milestones",
        ),
    ];
    let mut wrong = Vec::new();
    for (yaml, want) in cases {
        let got = error(yaml);
        if got != want {
            wrong.push(format!("for:\n{yaml}\n  got: {got}\n want: {want}\n"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn value_errors_point_at_the_value_and_say_what_was_expected() {
    let cases = [
        (
            "",
            "p.yml: the file is empty; expected a pipeline with keys name, catalog, matrix, defaults, states",
        ),
        (
            "# nothing yet\n",
            "p.yml: the file is empty; expected a pipeline with keys name, catalog, matrix, defaults, states",
        ),
        (
            "matrix: {platform: [a], os: [b], image: [c]}\n",
            "p.yml:1:1: missing key `name`; expected the pipeline's name, such as rhel-sap-images",
        ),
        (
            "name: RHEL SAP\n",
            "p.yml:1:7: pipeline name `RHEL SAP` is not a valid name; expected 1-64 characters from a-z, 0-9, `.`, `_`, `-`, \
             starting with a letter or digit",
        ),
        (
            "name: p\nmatrix: {platform: [aws, Azure], os: [rhel], image: [base]}\n",
            "p.yml:2:26: platform `Azure` is not a valid name; expected 1-64 characters from a-z, 0-9, `.`, `_`, `-`, \
             starting with a letter or digit",
        ),
        (
            "name: p\nmatrix:\n  platform: [aws]\n  os: []\n  image: [base]\n",
            "p.yml:4:7: matrix `os` is an empty list; expected at least one os name",
        ),
        (
            HEAD,
            "p.yml:1:1: no states; expected `states:` with at least one state code and what it runs, such as `0: {run: \"true\"}`",
        ),
        (
            &format!("{HEAD}states: {{}}\n"),
            "p.yml:3:9: no states; expected `states:` with at least one state code and what it runs, such as `0: {run: \"true\"}`",
        ),
        (
            &format!("{HEAD}states:\n  7: {{run: x}}\n"),
            "p.yml:4:3: state 7 is not in the catalog; expected one of: 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, \
             60, 65, 70, 75, 80, 85, 90, 95, 100 (or add it to the catalog: `catalog: {insert: [{code: 7, name: …}]}`)",
        ),
        (
            &format!(
                "{HEAD}catalog: [{{code: 0, name: a}}, {{code: 100, name: z}}]\nstates:\n  7: {{run: x}}\n"
            ),
            "p.yml:5:3: state 7 is not in the catalog; expected one of: 0, 100",
        ),
        (
            &format!("{HEAD}states:\n  105: {{run: x}}\n"),
            "p.yml:4:3: state 105 is out of range; expected a code from 0 to 100",
        ),
        (
            &format!("{HEAD}states:\n  kickstart: {{run: x}}\n"),
            "p.yml:4:3: `kickstart` is not a state code; expected a whole number from 0 to 100",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: a}}\n  05: {{run: b}}\n"),
            "p.yml:5:3: state 5 is listed twice (first at line 4); expected each state once",
        ),
        (
            &format!("{HEAD}states:\n  20:\n"),
            "p.yml:4:3: state 20 is empty; expected what it runs: `run`, `script`, `packer` or `ansible`, and optionally workdir, timeout, \
             env, platform_env, retry",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: ['', x]}}\n"),
            "p.yml:4:13: the program name is empty; expected the program to run as the first item of `run`",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: a, script: b.sh}}\n"),
            "p.yml:4:23: state 5 has both `run` and `script`; expected exactly one of `run`, `script`, `packer` and `ansible`",
        ),
        (
            &format!("{HEAD}states:\n  5: {{timeout: 5m}}\n"),
            "p.yml:4:6: state 5 has none of `run`, `script`, `packer` and `ansible`; expected exactly one of them \
             (a command line, an argv list, a script path, or a Packer or Ansible run)",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: '  '}}\n"),
            "p.yml:4:12: `run` is empty; expected a command line or an argv list",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: []}}\n"),
            "p.yml:4:12: `run` is an empty list; expected a program and its arguments, such as [packer, build, .]",
        ),
        (
            &format!("{HEAD}states:\n  5:\n    script: ansible/15-base-config.sh\n"),
            "p.yml:5:13: script `ansible/15-base-config.sh` does not exist (looked for TMP/ansible/15-base-config.sh); \
             expected an executable file relative to the pipeline's directory",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: x, timeout: 45}}\n"),
            "p.yml:4:24: timeout: `45` is not a duration; expected a duration such as 90s, 5m or 1h30m (units: ms, s, m, h)",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: x, timeout: 0s}}\n"),
            "p.yml:4:24: timeout: `0s` is zero; expected a duration of at least 1ms",
        ),
        (
            &format!("{HEAD}defaults: {{timeout: 2d}}\n"),
            "p.yml:3:21: timeout: `2d` is not a duration; expected a duration such as 90s, 5m or 1h30m (units: ms, s, m, h)",
        ),
        (
            &format!("{HEAD}defaults: {{workdir: ''}}\n"),
            "p.yml:3:21: `workdir` is empty; expected a directory, relative to the pipeline's directory or absolute",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{max_attempts: 0}}}}\n"),
            "p.yml:3:34: max_attempts: `0` is out of range; expected the number of attempts including the first, \
             from 1 (no retry) to 100",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{max_attempts: many}}}}\n"),
            "p.yml:3:34: max_attempts: `many` is not a whole number; expected the number of attempts including the \
             first, from 1 (no retry) to 100",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{backoff: {{delay: 5s}}}}}}\n"),
            "p.yml:3:29: backoff has no `kind`; expected kind: none, fixed or exponential",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{backoff: {{kind: linear}}}}}}\n"),
            "p.yml:3:36: unknown backoff kind `linear`; expected none, fixed or exponential",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{backoff: {{kind: fixed, initial: 5s}}}}}}\n"),
            "p.yml:3:52: `initial` does not apply to a fixed backoff; it takes: kind, delay",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{backoff: {{kind: none, delay: 5s}}}}}}\n"),
            "p.yml:3:49: `delay` does not apply to a none backoff; it takes: kind, no other keys",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{backoff: {{kind: fixed}}}}}}\n"),
            "p.yml:3:29: a fixed backoff needs `delay`; expected a duration such as 30s",
        ),
        (
            &format!(
                "{HEAD}defaults: {{retry: {{backoff: {{kind: exponential, initial: 10m, max: 5m}}}}}}\n"
            ),
            "p.yml:3:58: `initial` (10m) is longer than `max` (5m); expected initial ≤ max",
        ),
        (
            &format!(
                "{HEAD}defaults: {{retry: {{backoff: {{kind: exponential, initial: 1s, max: 5m, factor: 0}}}}}}\n"
            ),
            "p.yml:3:79: factor: `0` is out of range; expected a whole growth factor from 1 to 100",
        ),
        (
            &format!(
                "{HEAD}defaults: {{retry: {{backoff: {{kind: exponential, initial: 1s, max: 5m, jitter: maybe}}}}}}\n"
            ),
            "p.yml:3:79: jitter: `maybe` is not true or false; expected true or false",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{transient: {{exit_codes: [75, 300]}}}}}}\n"),
            "p.yml:3:49: exit_codes: `300` is out of range; expected an exit code from 1 to 255",
        ),
        (
            &format!("{HEAD}defaults: {{retry: {{transient: {{output_patterns: ['']}}}}}}\n"),
            "p.yml:3:50: empty output pattern; expected text to look for in the output, such as `Could not resolve host`",
        ),
        (
            &format!("{HEAD}defaults: {{env: {{9LIVES: x}}}}\n"),
            "p.yml:3:18: `9LIVES` is not an environment variable name; expected letters, digits and `_`, \
             not starting with a digit",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: x, env: {{BUILDSTATE_STATE: '5'}}}}\n"),
            "p.yml:4:21: `BUILDSTATE_STATE` is set by the runner; expected a name that does not start with BUILDSTATE_",
        ),
        (
            &format!("{HEAD}states:\n  5: {{run: x, platform_env: {{gcp: {{A: b}}}}}}\n"),
            "p.yml:4:30: `platform_env` names `gcp`, which is not a platform of the matrix; expected one of: aws, azure",
        ),
        (
            &format!("{HEAD}catalog: {{insert: [{{code: 10, name: again}}]}}\n"),
            "p.yml:3:27: milestone 10 is already in the catalog (green-image); expected a new code, such as one \
             between two existing ones",
        ),
        (
            &format!("{HEAD}catalog: {{insert: [{{code: 12, name: Hardening}}]}}\n"),
            "p.yml:3:37: milestone name `Hardening` is not a valid name; expected 1-64 characters from a-z, 0-9, \
             `.`, `_`, `-`, starting with a letter or digit",
        ),
        (
            &format!("{HEAD}catalog: {{insert: [{{name: x}}]}}\n"),
            "p.yml:3:20: milestone has no `code`; expected code and name (meaning and tool are optional)",
        ),
        (
            &format!(
                "{HEAD}catalog:\n  - {{code: 0, name: a}}\n  - {{code: 50, name: b}}\n  - {{code: 40, name: c}}\n"
            ),
            "p.yml:6:12: milestone 40 follows 50; expected codes in ascending order, each once",
        ),
        (
            &format!("{HEAD}catalog:\n  - {{code: 0, name: a}}\n  - {{code: 50, name: b}}\n"),
            "p.yml:4:3: the catalog does not run from 0 to 100; expected milestones 0 (first) and 100 (last)",
        ),
    ];
    let mut wrong = Vec::new();
    for (yaml, want) in cases {
        let got = error(yaml);
        if got != want {
            wrong.push(format!("for:\n{yaml}\n  got: {got}\n want: {want}\n"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn scripts_must_be_executable_files() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let plain = tmp.path().join("plain.sh");
    std::fs::write(&plain, "echo hi\n").expect("write");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::create_dir(tmp.path().join("adir")).expect("mkdir");
    let file = tmp.path().join("p.yml");
    let parse = |yaml: String| Pipeline::parse(&yaml, &file);

    let err = parse(format!("{HEAD}states:\n  5: {{script: plain.sh}}\n")).expect_err("not executable");
    assert_eq!(err.kind(), PipelineErrorKind::Invalid);
    assert_eq!((err.line(), err.column()), (Some(4), Some(15)));
    assert_eq!(
        err.message(),
        format!(
            "script `plain.sh` is not executable; expected an executable file (chmod +x {})",
            plain.display()
        )
    );
    let err = parse(format!("{HEAD}states:\n  5: {{script: adir}}\n")).expect_err("a directory");
    assert!(err.message().starts_with("script `adir` is not a file (looked at "), "{err}");

    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let p =
        parse(format!("{HEAD}states:\n  5: {{script: plain.sh}}\n  10: {{script: {}}}\n", plain.display()))
            .expect("valid");
    assert_eq!(p.steps[&code(5)].program, Program::Script(plain.clone()));
    assert_eq!(p.steps[&code(10)].program, Program::Script(plain));
}

#[test]
fn error_kinds_and_parts_are_available_to_callers() {
    let missing = Pipeline::load(Path::new("/nonexistent/buildstate/p.yml")).expect_err("no such file");
    assert_eq!(missing.kind(), PipelineErrorKind::Read);
    assert_eq!(missing.file(), Some(Path::new("/nonexistent/buildstate/p.yml")));
    assert_eq!(missing.line(), None);
    assert!(
        missing.to_string().starts_with("/nonexistent/buildstate/p.yml: cannot read the pipeline file: "),
        "{missing}"
    );

    let syntax = Pipeline::parse("name: [p\n", Path::new("p.yml")).expect_err("bad YAML");
    assert_eq!(syntax.kind(), PipelineErrorKind::Syntax);
    assert!(syntax.line().is_some(), "{syntax}");

    let unknown = Pipeline::parse("bogus: 1\n", Path::new("p.yml")).expect_err("unknown key");
    assert_eq!(unknown.kind(), PipelineErrorKind::Syntax);
    assert_eq!(
        unknown.message(),
        "unknown key `bogus`; expected one of: name, catalog, matrix, defaults, states"
    );

    let invalid = Pipeline::parse("name: P\n", Path::new("p.yml")).expect_err("bad name");
    assert_eq!(invalid.kind(), PipelineErrorKind::Invalid);
    assert_eq!((invalid.line(), invalid.column()), (Some(1), Some(7)));

    let filter = MatrixFilter::parse(&["arch=x86".to_owned()]).expect_err("bad filter");
    assert_eq!(filter.kind(), PipelineErrorKind::Filter);
    assert_eq!(filter.file(), None);
}

#[test]
fn yaml_syntax_errors_keep_their_position() {
    let err = error("name: p\nmatrix: {platform: [a, os: [b]\n");
    assert!(err.starts_with("p.yml:"), "{err}");
    let err = error("name: 'p\n");
    assert!(err.starts_with("p.yml:"), "{err}");
}

#[test]
fn a_catalog_alone_reads_like_a_pipelines_catalog() {
    let file = Path::new("catalog.yml");
    let four = "- {code: 0, name: initial}
- {code: 25, name: build, tool: make}
- {code: 50, name: test}
- {code: 75, name: publish}
- {code: 100, name: delivered}
";
    let c = Pipeline::parse_catalog(four, file).expect("a full list");
    assert_eq!(c.code_list(), "0, 25, 50, 75, 100");
    assert_eq!(c.get(code(25)).map(|m| m.tool.as_str()), Some("make"));

    let json = r#"[{"code": 0, "name": "initial"}, {"code": 40, "name": "bake", "meaning": "the image"},
                  {"code": 100, "name": "delivered"}]"#;
    let c = Pipeline::parse_catalog(json, Path::new("catalog.json")).expect("JSON is YAML too");
    assert_eq!(c.code_list(), "0, 40, 100");
    assert_eq!(c.get(code(40)).map(|m| m.meaning.as_str()), Some("the image"));

    let c = Pipeline::parse_catalog("insert: [{code: 12, name: hardening}]\n", file).expect("insert");
    assert_eq!(c.name_of(code(12)), "hardening");
    assert_eq!(c.codes().count(), 22);
    assert!(Pipeline::parse_catalog("default\n", file).expect("default").is_default());

    // The same errors as in a pipeline file, pointing into this one.
    let err = |text: &str| Pipeline::parse_catalog(text, file).expect_err("refused").to_string();
    assert_eq!(
        err("# nothing\n"),
        "catalog.yml: the file is empty; expected a catalog: `default`, `{insert: [milestones]}` or a list of milestones"
    );
    assert_eq!(
        err("- {code: 0, name: a}\n- {code: 50, name: b}\n"),
        "catalog.yml:1:1: the catalog does not run from 0 to 100; expected milestones 0 (first) and 100 (last)"
    );
    assert_eq!(
        err("- {code: 0, name: a}\n- {code: 0, name: b}\n- {code: 100, name: c}\n"),
        "catalog.yml:2:10: milestone 0 follows 0; expected codes in ascending order, each once"
    );
    assert!(err("custom\n").starts_with("catalog.yml: unknown catalog `custom`"), "{}", err("custom\n"));
    assert!(err("- {code: 0, name: a, owner: me}\n").contains("unknown key `owner`"));
}

#[test]
fn packer_and_ansible_steps_resolve_and_cover_the_milestones_after_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "{HEAD}states:
  5:
    packer:
      args: [-var, \"os=rhel\", rhel.pkr.hcl]
      map: {{provisioners: {{0: 10, 1: 15}}, say: [{{pattern: Creating AMI, milestone: 20}}]}}
      keep_on_failure: 4h
      cleanup: aws ec2 terminate-instances --instance-ids {{id}}
  25:
    ansible: {{playbook: site.yml, args: [-i, inventory]}}
  70: {{run: ./smoke.sh}}
"
    );
    let p = Pipeline::parse(&yaml, &tmp.path().join("p.yml")).expect("a valid pipeline");
    let Program::Tool(packer) = &p.steps[&code(5)].program else { panic!("a tool step") };
    assert_eq!(packer.mapped(), vec![code(10), code(15), code(20)]);
    assert_eq!(
        packer.argv("/bin/buildstate", "b-1"),
        [
            "/bin/buildstate",
            "packer",
            "b-1",
            "--keep-on-failure",
            "14400s",
            "--cleanup",
            "aws ec2 terminate-instances --instance-ids {id}",
            "--",
            "packer",
            "build",
            "-var",
            "os=rhel",
            "rhel.pkr.hcl",
        ]
    );
    let env = packer.env();
    let map: serde_json::Value = serde_json::from_str(&env["BUILDSTATE_PACKER_MAP"]).expect("JSON");
    assert_eq!(map["provisioners"]["1"], 15);
    let Program::Tool(ansible) = &p.steps[&code(25)].program else { panic!("a tool step") };
    assert_eq!(
        ansible.argv("bs", "b-1"),
        ["bs", "ansible-playbook", "b-1", "--", "-i", "inventory", "site.yml"]
    );
    // Milestones after a tool step and before the next step are that step's; after a
    // plain step they have no step at all.
    assert_eq!(p.step_for(code(15)).map(|s| s.state), Some(code(5)));
    assert_eq!(p.step_for(code(60)).map(|s| s.state), Some(code(25)));
    assert_eq!(p.step_for(code(70)).map(|s| s.state), Some(code(70)));
    assert_eq!(p.step_for(code(75)).map(|s| s.state), None);
    assert_eq!(p.step_for(code(0)).map(|s| s.state), None);
}

#[test]
fn tool_steps_refuse_what_cannot_work() {
    let cases = [
        (
            format!("{HEAD}states:\n  5: {{packer: {{args: [x.pkr.hcl]}}, run: x}}\n"),
            "state 5 has both `run` and `packer`",
        ),
        (format!("{HEAD}states:\n  5: {{packer: {{map: {{}}}}}}\n"), "`packer` has no `args`"),
        (format!("{HEAD}states:\n  5: {{packer: {{args: []}}}}\n"), "`packer.args` is empty"),
        (
            format!("{HEAD}states:\n  5: {{packer: {{args: [t], map: {{provisioners: {{a: 10}}}}}}}}\n"),
            "`a` is not a provisioner index",
        ),
        (
            format!("{HEAD}states:\n  5: {{packer: {{args: [t], map: {{provisioners: {{0: 12}}}}}}}}\n"),
            "names milestone 12, which is not in the catalog",
        ),
        (
            format!("{HEAD}states:\n  5: {{packer: {{args: [t], map: {{provisioners: {{0: 5}}}}}}}}\n"),
            "expected milestones after 5 and before 100",
        ),
        (
            format!(
                "{HEAD}states:\n  5: {{packer: {{args: [t], map: {{provisioners: {{0: 30}}}}}}}}\n  25: {{run: x}}\n"
            ),
            "expected milestones after 5 and before the next step, 25",
        ),
        (
            format!(
                "{HEAD}states:\n  5: {{packer: {{args: [t], map: {{say: [{{pattern: '', milestone: 10}}]}}}}}}\n"
            ),
            "a `say` rule needs a non-empty `pattern`",
        ),
        (
            format!("{HEAD}states:\n  5: {{packer: {{args: [t], cleanup: rm -rf x}}}}\n"),
            "`cleanup` without `keep_on_failure`",
        ),
        (
            format!("{HEAD}states:\n  5: {{packer: {{args: [t], bogus: 1}}}}\n"),
            "unknown key `bogus`; expected one of: args, map, keep_on_failure, cleanup, allow_outside",
        ),
        (
            format!(
                "{HEAD}states:\n  5: {{packer: {{args: [t], map: {{provisioners: {{0: 15, 1: 10}}}}}}}}\n"
            ),
            "the packer map: ",
        ),
        (format!("{HEAD}states:\n  25: {{ansible: {{args: [-v]}}}}\n"), "`ansible` has no `playbook`"),
        (format!("{HEAD}states:\n  25: {{ansible: {{playbook: ' '}}}}\n"), "`playbook` is empty"),
    ];
    for (yaml, want) in cases {
        let got = error(&yaml);
        assert!(got.contains(want), "{yaml}\n=> {got}\nwanted: {want}");
    }
}
