//! `concourse check|in|out`: buildstate as a Concourse resource type. Concourse runs
//! `/opt/resource/{check,in,out}` (links to these, see `concourse/Dockerfile`) with one
//! JSON request on stdin; the answer is one JSON document on stdout, everything a person
//! reads goes to stderr, and a non-zero exit fails the step.
//!
//! The request names the store itself (`source.store` or `source.server` with
//! `source.token`), so no environment or config file is read for it. The operations
//! are in `concourse_ops.rs`; this file reads the request and opens the store.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildstate_core::{Name, Until};
use buildstate_store::Store;
use serde::Deserialize;
use serde_json::Value;

use super::concourse_ops::{self, Version};
use crate::exit::{CliError, Exit};
use crate::open::Access;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// The versions: builds that reached `source.milestone` (or were delivered), oldest first
    Check,
    /// Fetch a version into DIR: build.json, artifacts.json, state
    In(DirArgs),
    /// Record a transition (or create a build), once per Concourse build and step
    Out(DirArgs),
}

#[derive(Debug, clap::Args)]
pub struct DirArgs {
    /// The directory Concourse gives the step
    dir: PathBuf,
}

/// The largest request read: a resource's request is a few hundred bytes.
const MAX_REQUEST_BYTES: u64 = 1 << 20;

/// `source:` of the resource, as the pipeline configures it. Unknown keys are refused:
/// a typo (`milstone: 90`) would otherwise silently wait for delivery instead.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A `buildstate serve` URL (with `token`).
    #[serde(default)]
    pub server: Option<String>,
    /// A store as `--db` takes it: a path, `file:///dir`, `postgres://…`.
    #[serde(default)]
    pub store: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// The PostgreSQL password of a `store` given without one (from the credential
    /// manager: a resource's container sees no task params, so no PGPASSWORD).
    #[serde(default)]
    pub password: Option<String>,
    /// Only builds of this pipeline (its `pipeline` metadata).
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// The milestone whose reaching makes a version: a code or `delivered` [default].
    #[serde(default)]
    pub milestone: Option<Value>,
}

/// The whole request; `params` are read by the operation that takes them.
#[derive(Debug, Deserialize)]
struct Request {
    source: Option<Source>,
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
}

/// A request read and checked, with the store it names open.
pub struct Resource {
    pub store: Arc<dyn Store>,
    pub until: Until,
    pub pipeline: Option<Name>,
    pub platform: Option<Name>,
    pub os: Option<Name>,
    pub image: Option<Name>,
    pub version: Option<Version>,
    pub params: Value,
}

pub async fn run(a: Args) -> Result<Exit, CliError> {
    let request = read_request(&mut std::io::stdin().lock())?;
    // Never Access::Create: a mistyped `source.store` must not become an empty store.
    let resource = open(request, Access::Existing).await?;
    let answer = match a {
        Args::Check => concourse_ops::check(&resource).await?,
        Args::In(d) => concourse_ops::fetch(&resource, &existing_dir(&d.dir)?).await?,
        Args::Out(d) => concourse_ops::put(&resource, &existing_dir(&d.dir)?, &BuildMeta::from_env()).await?,
    };
    let text = serde_json::to_string(&answer)
        .map_err(|e| CliError::internal(format!("cannot encode the answer: {e}")))?;
    println!("{text}");
    Ok(Exit::Ok)
}

fn read_request(input: &mut dyn Read) -> Result<Request, CliError> {
    let mut text = String::new();
    input.take(MAX_REQUEST_BYTES + 1).read_to_string(&mut text).map_err(|e| {
        CliError::usage(format!("cannot read the request on standard input: {e}")).with_hint(
            "Concourse sends one JSON object; by hand: echo '{\"source\": {…}}' | buildstate concourse check",
        )
    })?;
    if text.len() as u64 > MAX_REQUEST_BYTES {
        return Err(CliError::usage(format!("the request is over {MAX_REQUEST_BYTES} bytes")));
    }
    if text.trim().is_empty() {
        return Err(CliError::usage("no request on standard input: Concourse sends one JSON object")
            .with_hint("by hand: echo '{\"source\": {\"store\": \"/srv/buildstate.db\"}}' | buildstate concourse check"));
    }
    serde_json::from_str(&text).map_err(|e| {
        CliError::usage(format!("the request is not the JSON Concourse sends: {e}"))
            .with_hint("source keys: server, store, token, pipeline, platform, os, image, milestone")
    })
}

async fn open(request: Request, access: Access) -> Result<Resource, CliError> {
    let source = request.source.ok_or_else(|| {
        CliError::usage("the request has no `source`")
            .with_hint("configure the resource's source: {store: …} or {server: …, token: …}")
    })?;
    let until = match &source.milestone {
        None => Until::Delivered,
        Some(Value::Number(n)) => {
            n.to_string().parse().map_err(|e: String| CliError::usage(format!("source.milestone: {e}")))?
        }
        Some(Value::String(s)) => {
            s.parse().map_err(|e: String| CliError::usage(format!("source.milestone: {e}")))?
        }
        Some(other) => {
            return Err(CliError::usage(format!(
                "source.milestone is {other}: give a code such as 90, or \"delivered\""
            )));
        }
    };
    let name = |what: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| Name::new(s).map_err(|e| CliError::usage(format!("source.{what}: {e}"))))
            .transpose()
    };
    let (pipeline, platform, os, image) = (
        name("pipeline", &source.pipeline)?,
        name("platform", &source.platform)?,
        name("os", &source.os)?,
        name("image", &source.image)?,
    );
    let version = request.version.filter(|v| !v.is_null()).map(Version::from_value).transpose()?;
    let store: Arc<dyn Store> = match (&source.server, &source.store) {
        (Some(_), Some(_)) => {
            return Err(CliError::usage("source has both `server` and `store`: give one"));
        }
        (None, None) => {
            return Err(CliError::usage(
                "source names no store: give `store` (a path, file:///dir, postgres://…) or `server` with `token`",
            ));
        }
        (Some(url), None) => {
            crate::open::open_server(url, source.token.as_deref())
                .map_err(|e| {
                    // The client names the variable a token comes from on the command line.
                    CliError::new(e.exit, e.to_string().replace("BUILDSTATE_TOKEN", "source.token"))
                })?
                .store
        }
        (None, Some(_)) if source.token.is_some() => {
            return Err(CliError::usage("source.token is for a server: a store is reached directly")
                .with_hint("drop `token`, or use `server` instead of `store`"));
        }
        (None, Some(db)) => {
            let db = match &source.password {
                Some(pw) => with_password(db, pw)?,
                None => db.clone(),
            };
            crate::open::open(Some(Path::new(&db)), access).await?.store
        }
    };
    Ok(Resource {
        store,
        until,
        pipeline,
        platform,
        os,
        image,
        version,
        params: request.params.unwrap_or(Value::Null),
    })
}

/// `postgres://…` with `password` added as a parameter (percent-encoded), which the
/// driver reads as the URL's password.
fn with_password(db: &str, password: &str) -> Result<String, CliError> {
    let lower = db.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Err(CliError::usage("source.password is for a PostgreSQL store (postgres://…)"));
    }
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let sep = if db.contains('?') { '&' } else { '?' };
    Ok(format!("{db}{sep}password={encoded}"))
}

fn existing_dir(dir: &Path) -> Result<PathBuf, CliError> {
    if dir.is_dir() {
        return Ok(dir.to_owned());
    }
    Err(CliError::usage(format!("{} is not a directory", dir.display()))
        .with_hint("Concourse passes the step's directory as the only argument"))
}

/// Concourse's build metadata, from the environment it sets for `in` and `out`.
#[derive(Clone, Debug, Default)]
pub struct BuildMeta {
    pub id: Option<String>,
    pub name: Option<String>,
    pub job: Option<String>,
    pub pipeline: Option<String>,
    pub team: Option<String>,
    pub url: Option<String>,
}

impl BuildMeta {
    fn from_env() -> BuildMeta {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        BuildMeta {
            id: var("BUILD_ID"),
            name: var("BUILD_NAME"),
            job: var("BUILD_JOB_NAME"),
            pipeline: var("BUILD_PIPELINE_NAME"),
            team: var("BUILD_TEAM_NAME"),
            url: var("ATC_EXTERNAL_URL"),
        }
    }

    /// The Concourse build's page, when the metadata says where it is (as every
    /// command finds a CI job's page, `ci_env`).
    pub fn page(&self) -> Option<String> {
        crate::ci_env::detect(|k| match k {
            "ATC_EXTERNAL_URL" => self.url.clone(),
            "BUILD_TEAM_NAME" => self.team.clone(),
            "BUILD_PIPELINE_NAME" => self.pipeline.clone(),
            "BUILD_JOB_NAME" => self.job.clone(),
            "BUILD_NAME" => self.name.clone(),
            "BUILD_ID" => self.id.clone(),
            _ => None,
        })
    }

    /// Who records: the job and build, as a person finds it in Concourse.
    pub fn actor(&self) -> String {
        let part = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
        format!(
            "concourse {}/{}/{} #{}",
            part(&self.team),
            part(&self.pipeline),
            part(&self.job),
            part(&self.name)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_json_object_with_a_source_of_known_keys() {
        let ok = read_request(
            &mut r#"{"source": {"store": "/s.db", "milestone": 90}, "version": null}"#.as_bytes(),
        )
        .expect("a request");
        assert_eq!(ok.source.expect("a source").store.as_deref(), Some("/s.db"));
        for (text, says) in [
            ("", "no request"),
            ("{not json", "not the JSON"),
            (r#"{"source": {"store": "/s.db", "milstone": 90}}"#, "unknown field `milstone`"),
        ] {
            let e = read_request(&mut text.as_bytes()).expect_err("refused");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_build_page_and_actor_come_from_the_metadata() {
        let m = BuildMeta {
            id: Some("1234".into()),
            name: Some("7".into()),
            job: Some("bake".into()),
            pipeline: Some("images".into()),
            team: Some("main".into()),
            url: Some("https://ci.example.com/".into()),
        };
        assert_eq!(
            m.page().as_deref(),
            Some("https://ci.example.com/teams/main/pipelines/images/jobs/bake/builds/7")
        );
        assert_eq!(m.actor(), "concourse main/images/bake #7");
        assert_eq!(BuildMeta::default().page(), None);
        assert_eq!(
            with_password("postgres://ci@db/bs?sslmode=require", "p@ss w").expect("a URL"),
            "postgres://ci@db/bs?sslmode=require&password=p%40ss%20w"
        );
        assert!(with_password("/srv/b.db", "x").is_err());
        let one_off = BuildMeta {
            id: Some("9".into()),
            url: Some("https://ci".into()),
            team: Some("main".into()),
            ..BuildMeta::default()
        };
        assert_eq!(one_off.page().as_deref(), Some("https://ci/builds/9"));
    }
}
