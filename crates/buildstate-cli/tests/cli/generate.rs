//! `buildstate generate gitlab|github|concourse`: the GitLab pipeline run for real with
//! gitlab-ci-local (parallel jobs on a shared PostgreSQL, a failure, a re-run that
//! resumes), the GitHub workflow linted by actionlint and its steps run in order, the
//! Concourse pipeline checked for references to things that exist and its tasks run.
//! The tools come from scripts/setup.sh (`install_ci_tools`); without them these fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Env, PgDb, Run, bin};

/// Where `install_ci_tools` put gitlab-ci-local and actionlint.
fn ci_tools() -> PathBuf {
    let dir = std::env::var("BUILDSTATE_TEST_CI_TOOLS").unwrap_or_else(|_| {
        panic!("BUILDSTATE_TEST_CI_TOOLS is not set: run `source scripts/setup.sh` first")
    });
    let dir = PathBuf::from(dir).join("node_modules");
    assert!(dir.join(".bin/gitlab-ci-local").exists(), "gitlab-ci-local is not in {}", dir.display());
    dir
}

/// Four cells; milestone 20 fails for sles-15.7/hana while `fail-20` exists. Each step
/// appends `BUILD CODE` to ran.log, so what ran (and what did not run again) is known.
fn pipeline(env: &Env) -> PathBuf {
    let ran = env.path("ran.log");
    let fail = env.path("fail-20");
    let yaml = format!(
        "name: images\nmatrix:\n  platform: [aws-commercial]\n  os: [rhel-9.6, sles-15.7]\n  image: [base, hana]\nstates:\n  \
         10:\n    run: echo \"$BUILDSTATE_OS/$BUILDSTATE_IMAGE 10\" >> {ran}\n  \
         20:\n    run: |\n      if [ -e {fail} ] && [ \"$BUILDSTATE_OS/$BUILDSTATE_IMAGE\" = sles-15.7/hana ]; then exit 3; fi\n      \
         echo \"$BUILDSTATE_OS/$BUILDSTATE_IMAGE 20\" >> {ran}\n  \
         30:\n    run: echo \"$BUILDSTATE_OS/$BUILDSTATE_IMAGE 30\" >> {ran}\n",
        ran = ran.display(),
        fail = fail.display()
    );
    env.write("images.yml", &yaml)
}

fn catalog(env: &Env) {
    env.ok(&["platform", "add", "aws-commercial", "--provider", "aws", "--region", "us-east-1"]);
    env.ok(&["os", "add", "rhel-9.6", "--family", "rhel", "--major", "9", "--minor", "6"]);
    env.ok(&["os", "add", "sles-15.7", "--family", "sles", "--major", "15", "--minor", "7"]);
    env.ok(&["image-type", "add", "base"]);
    env.ok(&["image-type", "add", "hana"]);
}

fn generate(env: &Env, args: &[&str]) -> String {
    let mut c = env.cmd();
    c.current_dir(env.dir.path()).arg("generate").args(args).args(["--command", bin()]);
    let r: Run = c.output().expect("run generate").into();
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("generated YAML: {e}\n{text}"))
}

fn ran(env: &Env) -> Vec<String> {
    std::fs::read_to_string(env.path("ran.log")).unwrap_or_default().lines().map(str::to_owned).collect()
}

fn statuses(env: &Env) -> Vec<(String, String, u64)> {
    let mut all: Vec<(String, String, u64)> = env
        .json(&["build", "list"])
        .as_array()
        .expect("builds")
        .iter()
        .map(|b| {
            (
                format!("{}/{}", b["os"].as_str().unwrap_or(""), b["image_type"].as_str().unwrap_or("")),
                b["status"].as_str().unwrap_or("").to_owned(),
                b["state"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    all.sort();
    all
}

/// The test: a generated pipeline of 4 builds runs in parallel GitLab jobs
/// (gitlab-ci-local, shell executor) on a shared PostgreSQL; one fails at an injected
/// milestone; re-running that job resumes it there and delivers, and nothing else runs
/// again.
#[test]
fn gitlab_jobs_run_in_parallel_on_postgres_and_a_rerun_resumes_the_failed_one() {
    let tools = ci_tools();
    let db = PgDb::new();
    let env = Env::with_db(&db.url);
    catalog(&env);
    pipeline(&env);
    std::fs::write(env.path("fail-20"), "").expect("inject the failure");
    let file = generate(&env, &["gitlab", "images.yml"]);
    assert!(!file.contains(&db.url) && !file.contains("buildstate:buildstate"), "no credentials in the file");
    std::fs::write(env.path(".gitlab-ci.yml"), &file).expect("write .gitlab-ci.yml");
    let parsed = yaml(&file);
    assert_eq!(parsed["images"]["parallel"]["matrix"].as_array().map(Vec::len), Some(4), "{file}");

    let git = |args: &[&str]| {
        let out = Command::new("git").current_dir(env.dir.path()).args(args).output().expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", ".gitlab-ci.yml", "images.yml"]);
    git(&["-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "images"]);
    let gitlab = |job: Option<&str>| -> Run {
        let mut c = Command::new(tools.join(".bin/gitlab-ci-local"));
        c.current_dir(env.dir.path()).env("HOME", env.path("home")).args([
            "--shell-executor-no-image",
            "--variable",
            &format!("BUILDSTATE_DB={}", db.url),
        ]);
        if let Some(job) = job {
            c.arg(job);
        }
        c.output().expect("run gitlab-ci-local").into()
    };

    let first = gitlab(None);
    assert_ne!(first.code, 0, "one job failed: {first:?}");
    assert!(
        first.stdout.contains("FAIL") && first.stdout.contains("images: [aws-commercial,sles-15.7,hana]"),
        "{first:?}"
    );
    let after_first = statuses(&env);
    assert_eq!(
        after_first,
        vec![
            ("rhel-9.6/base".into(), "completed".into(), 100),
            ("rhel-9.6/hana".into(), "completed".into(), 100),
            ("sles-15.7/base".into(), "completed".into(), 100),
            ("sles-15.7/hana".into(), "failed".into(), 20),
        ],
        "{first:?}"
    );
    let b = env.json(&["build", "list", "--status", "failed"])[0]["number"]
        .as_str()
        .expect("a number")
        .to_owned();
    let shown = env.json(&["build", "show", &b]);
    assert!(shown["build"]["ci_url"].is_string(), "the CI job's URL is captured: {shown}");

    // The fix lands; only the failed job is run again.
    std::fs::remove_file(env.path("fail-20")).expect("fix");
    let rerun = gitlab(Some("images: [aws-commercial,sles-15.7,hana]"));
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(
        statuses(&env).iter().all(|(_, s, state)| s == "completed" && *state == 100),
        "{:?}",
        statuses(&env)
    );
    let lines = ran(&env);
    let count = |line: &str| lines.iter().filter(|l| *l == line).count();
    assert_eq!(count("sles-15.7/hana 10"), 1, "resumed at 20, 10 not run again: {lines:?}");
    assert_eq!(count("sles-15.7/hana 20"), 1, "{lines:?}");
    for cell in ["rhel-9.6/base", "rhel-9.6/hana", "sles-15.7/base"] {
        assert_eq!(count(&format!("{cell} 30")), 1, "{cell} not run again: {lines:?}");
    }
    let history = env.history(&b);
    assert!(history.iter().any(|e| e["kind"] == "retried" && e["state"] == 20), "{history:#?}");
    // The re-run job is the one whose log holds the attempt that delivered it.
    let meta = env.json(&["meta", "list", &b]);
    assert!(
        meta["ci.job"].is_string() && meta["ci.job"] != shown["build"]["ci_url"],
        "the re-run job's page beside the creating job's: {meta} {}",
        shown["build"]["ci_url"]
    );
}

/// Lints `text` as `.github/workflows/images.yml` with actionlint's WebAssembly build.
fn actionlint(tools: &Path, dir: &Path, text: &str) -> Value {
    let file = dir.join("workflow.yml");
    std::fs::write(&file, text).expect("write the workflow");
    let script = format!(
        "const {{ createLinter }} = await import({module:?});\n\
         const {{ readFileSync }} = await import('node:fs');\n\
         const lint = await createLinter();\n\
         console.log(JSON.stringify(lint(readFileSync({file:?}, 'utf8'), '.github/workflows/images.yml')));\n",
        module = format!("file://{}", tools.join("actionlint/node.mjs").display()),
        file = file.display().to_string(),
    );
    let out = Command::new("node").args(["--input-type=module", "-e", &script]).output().expect("run node");
    assert!(out.status.success(), "actionlint: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("actionlint's findings")
}

/// The job's env for one matrix entry: the matrix values put in, the secret as the store.
fn github_env(env: &Env, job: &Value, entry: &Value) -> Vec<(String, String)> {
    job["env"]
        .as_object()
        .expect("env")
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            let value = match v.strip_prefix("${{ matrix.").and_then(|r| r.strip_suffix(" }}")) {
                Some(key) => entry[key].as_str().unwrap_or("").to_owned(),
                None if v.starts_with("${{ secrets.") => env.db.display().to_string(),
                None => v.to_owned(),
            };
            (k.clone(), value)
        })
        .collect()
}

/// Every `run:` of the job, for each matrix entry, in order: what the runner would execute.
fn run_github_job(env: &Env, workflow: &Value) {
    let job = &workflow["jobs"]["build"];
    for entry in job["strategy"]["matrix"]["include"].as_array().expect("matrix entries") {
        let vars = github_env(env, job, entry);
        let script: Vec<&str> =
            job["steps"].as_array().expect("steps").iter().filter_map(|s| s["run"].as_str()).collect();
        assert!(!script.is_empty());
        for line in script {
            let out = Command::new("bash")
                .current_dir(env.dir.path())
                .envs(vars.iter().cloned())
                .args(["-e", "-c", line])
                .output()
                .expect("run a step");
            assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn the_github_workflow_passes_actionlint_and_its_steps_deliver_every_build() {
    let tools = ci_tools();
    for per_milestone in [false, true] {
        let env = Env::new();
        catalog(&env);
        pipeline(&env);
        let mut args = vec!["github", "images.yml"];
        if per_milestone {
            args.push("--per-milestone");
        }
        let text = generate(&env, &args);
        let findings = actionlint(&tools, env.dir.path(), &text);
        assert_eq!(findings, Value::Array(vec![]), "actionlint finds nothing:\n{text}");
        let workflow = yaml(&text);
        let steps = workflow["jobs"]["build"]["steps"].as_array().expect("steps").len();
        assert_eq!(
            steps,
            if per_milestone { 4 } else { 2 },
            "checkout, then one step or one per milestone:\n{text}"
        );
        assert!(text.contains("${{ secrets.BUILDSTATE_DB }}"), "the store from a secret:\n{text}");
        run_github_job(&env, &workflow);
        assert!(statuses(&env).iter().all(|(_, s, _)| s == "completed"), "{:?}", statuses(&env));
        assert_eq!(ran(&env).len(), 12, "every milestone of every build once: {:?}", ran(&env));
    }
}

/// The file's jobs refer only to resources that exist, the resources only to types that
/// exist, and the tasks only to inputs the job has; then each task runs as Concourse
/// would run it, in order, and every build is delivered.
#[test]
fn the_concourse_pipeline_refers_only_to_what_exists_and_its_tasks_deliver() {
    for per_milestone in [false, true] {
        let env = Env::new();
        catalog(&env);
        pipeline(&env);
        let mut args = vec!["concourse", "images.yml", "--server", "https://bs.example.com"];
        if per_milestone {
            args.push("--per-milestone");
        }
        let text = generate(&env, &args);
        assert!(
            text.contains("((buildstate-token))") && !text.contains("bst_"),
            "the token from the credential manager"
        );
        let p = yaml(&text);
        let types: BTreeSet<&str> = p["resource_types"]
            .as_array()
            .expect("resource types")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .chain(["git", "registry-image"])
            .collect();
        let resources: BTreeSet<&str> = p["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| {
                assert!(types.contains(r["type"].as_str().unwrap_or("")), "resource of an unknown type: {r}");
                r["name"].as_str().expect("a name")
            })
            .collect();
        let jobs = p["jobs"].as_array().expect("jobs");
        assert_eq!(jobs.len(), 4, "one job per cell");
        for job in jobs {
            let mut got: BTreeSet<&str> = BTreeSet::new();
            let mut tasks = 0;
            for step in job["plan"].as_array().expect("a plan") {
                if let Some(r) = step["get"].as_str().or(step["put"].as_str()) {
                    assert!(resources.contains(r), "{} refers to {r}, which is not a resource", job["name"]);
                    got.insert(r);
                }
                if step["task"].is_string() {
                    tasks += 1;
                    let config = &step["config"];
                    for input in config["inputs"].as_array().expect("inputs") {
                        let name = input["name"].as_str().expect("an input name");
                        assert!(got.contains(name), "task input {name} is not a get before it");
                    }
                    // Run it as Concourse would: the task's params (the step's over the
                    // config's) in the input's directory.
                    let mut c = Command::new(config["run"]["path"].as_str().expect("a path"));
                    c.current_dir(env.dir.path())
                        .env("BUILDSTATE_DB", &env.db)
                        .env_remove("BUILDSTATE_SERVER");
                    for (k, v) in step["params"].as_object().expect("params") {
                        c.env(k, v.as_str().unwrap_or(""));
                    }
                    let args: Vec<&str> = config["run"]["args"]
                        .as_array()
                        .expect("args")
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    let out = c.args(&args).output().expect("run the task");
                    assert!(
                        out.status.success(),
                        "{}: {}",
                        step["task"],
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            assert_eq!(tasks, if per_milestone { 3 } else { 1 }, "{job}");
        }
        assert!(statuses(&env).iter().all(|(_, s, _)| s == "completed"), "{:?}", statuses(&env));
    }
}

#[test]
fn mistakes_are_refused_and_secrets_never_written() {
    let env = Env::new();
    pipeline(&env);
    let run = |args: &[&str]| -> Run {
        let mut c = env.cmd();
        c.current_dir(env.dir.path()).arg("generate").args(args);
        c.output().expect("run").into()
    };
    for (args, code, says) in [
        (vec!["gitlab", "images.yml", "--store", "postgres://ci:s3cret@db/bs"], 2, "holds a secret"),
        (vec!["github", "images.yml", "--server", "https://bs.example.com/?token=abc"], 2, "holds a secret"),
        (vec!["jenkins", "images.yml"], 2, "invalid value 'jenkins'"),
        (vec!["gitlab", "missing.yml"], 2, "missing.yml"),
        (
            vec!["gitlab", "images.yml", "--store", "postgres://ci@db/bs", "--server", "https://x"],
            2,
            "cannot be used with",
        ),
        // From a hostile review.
        (vec!["gitlab", "images.yml", "-o", "./images.yml"], 2, "is the pipeline file itself"),
        (vec!["github", "images.yml", "--server", "https://bs.example.com/#bst_abc"], 2, "BUILDSTATE_TOKEN"),
        (vec!["gitlab", "images.yml", "--command", " "], 2, "--command is empty"),
    ] {
        let r = run(&args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
        assert!(
            !r.stderr.contains("s3cret") && !r.stderr.contains("token=abc") && !r.stderr.contains("bst_abc"),
            "{r:?}"
        );
    }
    assert!(
        std::fs::read_to_string(env.path("images.yml")).expect("read").starts_with("name: images"),
        "not overwritten"
    );
    // A libpq key/value string is PostgreSQL, and its password is never shown.
    let r = run(&["gitlab", "images.yml", "--store", "host=h user=u password=pw dbname=db"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains("password=pw") && !r.stderr.contains("not PostgreSQL"), "{r:?}");
    // A store each runner has for itself, or a token in the clear: said (hostile review).
    let r = run(&["gitlab", "images.yml", "--store", "/tmp/local.db"]);
    assert!(r.code == 0 && r.stderr.contains("is not PostgreSQL"), "{r:?}");
    let r = run(&["gitlab", "images.yml", "--server", "http://bs.example.com"]);
    assert!(r.code == 0 && r.stderr.contains("in the clear"), "{r:?}");
    // --output writes the file, and only it.
    let r = run(&["gitlab", "images.yml", "--store", "postgres://ci@db/bs", "-o", "ci.yml"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.is_empty());
    let written = std::fs::read_to_string(env.path("ci.yml")).expect("ci.yml");
    assert!(written.contains("BUILDSTATE_DB: \"postgres://ci@db/bs\""), "{written}");
}

/// From a hostile review: names the engines cannot take. A pipeline named like a GitLab
/// keyword, Concourse names of cells that differ only by `.` and `-`, and a matrix past
/// an engine's limit of jobs.
#[test]
fn names_and_sizes_the_engines_cannot_take_are_handled() {
    let env = Env::new();
    env.write(
        "image.yml",
        "name: image\nmatrix:\n  platform: [aws.gov, aws-gov]\n  os: [rhel-9.6]\n  image: [base]\nstates:\n  10:\n    run: 'true'\n",
    );
    let gitlab = yaml(&generate(&env, &["gitlab", "image.yml"]));
    assert!(gitlab.get("image").is_none() && gitlab["image builds"]["parallel"].is_object(), "{gitlab}");
    let concourse = yaml(&generate(&env, &["concourse", "image.yml"]));
    let names: BTreeSet<&str> =
        concourse["jobs"].as_array().expect("jobs").iter().filter_map(|j| j["name"].as_str()).collect();
    assert_eq!(names.len(), 2, "two cells, two job names: {names:?}");
    let platforms: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    let oses: Vec<String> = (0..13).map(|i| format!("o{i}")).collect();
    env.write(
        "big.yml",
        &format!(
            "name: big\nmatrix:\n  platform: [{}]\n  os: [{}]\n  image: [base]\nstates:\n  10:\n    run: 'true'\n",
            platforms.join(", "),
            oses.join(", ")
        ),
    );
    for (engine, says) in [("github", "at most 256 jobs"), ("gitlab", "at most 200 jobs")] {
        let r: Run = env
            .cmd()
            .current_dir(env.dir.path())
            .args(["generate", engine, "big.yml"])
            .output()
            .expect("run")
            .into();
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("has 260 builds") && r.stderr.contains(says), "{r:?}");
    }
}
