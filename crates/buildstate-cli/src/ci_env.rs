//! The link to the CI job that runs a build, read from the CI system's environment
//! when `--ci-url` is not given.

/// The CI job URL from the environment `var` reads, trying GitHub Actions, GitLab,
/// Jenkins and Concourse in that order. Empty variables count as unset.
pub fn detect(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let get = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    github(&get).or_else(|| get("CI_JOB_URL")).or_else(|| get("BUILD_URL")).or_else(|| concourse(&get))
}

/// Reads the real process environment.
pub fn from_process_env() -> Option<String> {
    detect(|name| std::env::var(name).ok())
}

fn github(get: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let server = get("GITHUB_SERVER_URL")?;
    let repo = get("GITHUB_REPOSITORY")?;
    let run = get("GITHUB_RUN_ID")?;
    Some(format!("{}/{repo}/actions/runs/{run}", server.trim_end_matches('/')))
}

fn concourse(get: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let atc = get("ATC_EXTERNAL_URL")?;
    let atc = atc.trim_end_matches('/');
    let team = get("BUILD_TEAM_NAME")?;
    // One-off builds (`fly execute`) have no pipeline or job: link the build by id.
    match (get("BUILD_PIPELINE_NAME"), get("BUILD_JOB_NAME"), get("BUILD_NAME")) {
        (Some(pipeline), Some(job), Some(build)) => {
            Some(format!("{atc}/teams/{team}/pipelines/{pipeline}/jobs/{job}/builds/{build}"))
        }
        _ => get("BUILD_ID").map(|id| format!("{atc}/builds/{id}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn nothing_outside_ci() {
        assert_eq!(detect(env(&[("HOME", "/root")])), None);
    }

    #[test]
    fn github_actions() {
        let e = env(&[
            ("GITHUB_SERVER_URL", "https://github.com/"),
            ("GITHUB_REPOSITORY", "acme/images"),
            ("GITHUB_RUN_ID", "42"),
        ]);
        assert_eq!(detect(e).as_deref(), Some("https://github.com/acme/images/actions/runs/42"));
    }

    #[test]
    fn github_needs_all_three_parts() {
        let e = env(&[("GITHUB_SERVER_URL", "https://github.com"), ("GITHUB_RUN_ID", "42")]);
        assert_eq!(detect(e), None);
    }

    #[test]
    fn gitlab_and_jenkins() {
        let gitlab = env(&[("CI_JOB_URL", "https://gitlab.example/acme/images/-/jobs/7")]);
        assert_eq!(detect(gitlab).as_deref(), Some("https://gitlab.example/acme/images/-/jobs/7"));
        let jenkins = env(&[("BUILD_URL", "https://jenkins.example/job/images/12/"), ("CI_JOB_URL", "")]);
        assert_eq!(detect(jenkins).as_deref(), Some("https://jenkins.example/job/images/12/"));
    }

    #[test]
    fn concourse_job_build_and_one_off() {
        let job = env(&[
            ("ATC_EXTERNAL_URL", "https://ci.example/"),
            ("BUILD_TEAM_NAME", "main"),
            ("BUILD_PIPELINE_NAME", "images"),
            ("BUILD_JOB_NAME", "rhel-base"),
            ("BUILD_NAME", "17"),
        ]);
        assert_eq!(
            detect(job).as_deref(),
            Some("https://ci.example/teams/main/pipelines/images/jobs/rhel-base/builds/17")
        );
        let one_off = env(&[
            ("ATC_EXTERNAL_URL", "https://ci.example"),
            ("BUILD_TEAM_NAME", "main"),
            ("BUILD_ID", "99"),
        ]);
        assert_eq!(detect(one_off).as_deref(), Some("https://ci.example/builds/99"));
    }

    #[test]
    fn github_wins_over_the_generic_build_url() {
        let e = env(&[
            ("BUILD_URL", "https://jenkins.example/1"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "a/b"),
            ("GITHUB_RUN_ID", "1"),
        ]);
        assert_eq!(detect(e).as_deref(), Some("https://github.com/a/b/actions/runs/1"));
    }
}
