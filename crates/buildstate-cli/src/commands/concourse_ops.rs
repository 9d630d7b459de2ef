//! The three operations of the Concourse resource (see `concourse.rs` for the request).
//!
//! A version is a build that reached the source's milestone: `{build, id, at}`, all
//! strings as Concourse wants, `at` the time it got past the milestone (so a build
//! rewound and re-run is a new version). A rewind to or below the milestone after `at`
//! means the version no longer exists.
//!
//! `out` is idempotent per Concourse build and step: the history event it writes
//! carries `[concourse BUILD_ID/STEP]` in its actor, in the same transaction as the
//! transition, so a retried put finds its own event and writes nothing again.

use std::collections::BTreeMap;
use std::path::Path;

use buildstate_core::{
    Build, BuildId, BuildNumber, Command, EventKind, FailureClass, FailureInfo, FailureType, Gate,
    HistoryEvent, MetaKey, MetaValue, NewBuild, StateCatalog, StateCode, Until, gate, reached_at,
};
use buildstate_runner::dispatch::PIPELINE_KEY;
use buildstate_store::{BuildFilter, Guard, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::concourse::{BuildMeta, Resource};
use crate::exit::{CliError, Exit};

/// One version of the resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    pub build: String,
    pub id: String,
    pub at: String,
}

impl Version {
    pub fn from_value(v: Value) -> Result<Version, CliError> {
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match (field("build"), field("id"), field("at")) {
            (Some(build), Some(id), Some(at)) => Ok(Version { build, id, at }),
            _ => Err(CliError::usage(format!("the version {v} is not one this resource gave"))
                .with_hint("a version is {\"build\": …, \"id\": …, \"at\": …}, all strings")),
        }
    }

    fn of(b: &Build, at: jiff::Timestamp) -> Version {
        Version { build: b.number.to_string(), id: b.id.to_string(), at: at.to_string() }
    }
}

/// `check`: the versions, oldest first; without a version only the newest, with one
/// that still exists that one and every newer one (Concourse's rules).
pub async fn check(r: &Resource) -> Result<Value, CliError> {
    let versions = versions(r).await?;
    let from = r.version.as_ref().and_then(|given| versions.iter().position(|v| v == given));
    let answer = match from {
        Some(i) => versions[i..].to_vec(),
        None => versions.last().cloned().into_iter().collect(),
    };
    eprintln!("{} build(s) reached {}; answering {} version(s)", versions.len(), r.until, answer.len());
    Ok(serde_json::to_value(answer).unwrap_or(Value::Null))
}

/// Every version of the resource now, oldest first: its builds past the milestone, each
/// at the time it got past it. What `check` answers from, what `in` accepts, and what
/// `out` answers with.
async fn versions(r: &Resource) -> Result<Vec<Version>, CliError> {
    let mut builds = candidates(r).await?;
    // A milestone no build has is a typo that would never trigger: said, not waited on.
    // A build whose own catalog lacks it is passed over (it never makes a version),
    // rather than breaking the resource for every other build of the cell.
    if let Until::Milestone(code) = r.until {
        if let Some(b) = builds.first().filter(|_| builds.iter().all(|b| !b.catalog.contains(code))) {
            return Err(CliError::usage(format!(
                "milestone {code} is not in the catalog of build {}",
                b.number
            ))
            .with_hint("source.milestone is a code of the builds' catalog, or \"delivered\""));
        }
        builds.retain(|b| b.catalog.contains(code));
    }
    let mut versions = Vec::new();
    for b in builds {
        if gate(&b, r.until, false) != Gate::Reached {
            continue;
        }
        let history = r.store.history(b.id).await?;
        if let Some(at) = reached_at(&history, &b.catalog, r.until) {
            versions.push((at, Version::of(&b, at)));
        }
    }
    versions.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    Ok(versions.into_iter().map(|(_, v)| v).collect())
}

/// The version `out` answers with when its build is not past the milestone and the
/// resource has no version yet: `at` is this word, and `in` fetches it as it is.
const NOT_YET: &str = "not-yet";

/// `in DIR`: the version's build as files: `build.json` (the export document, which
/// `buildstate import` reads), `artifacts.json` (current artifacts, and image ids by
/// cloud and region) and `state` (the build's milestone code now).
pub async fn fetch(r: &Resource, dir: &Path) -> Result<Value, CliError> {
    let v = r.version.as_ref().ok_or_else(|| CliError::usage("`in` needs the version to fetch"))?;
    let b = still_there(r, v).await?;
    let doc = r.store.export_build(b.id).await?;
    let artifacts: Vec<_> = r.store.artifacts(b.id).await?.into_iter().filter(|a| a.is_current()).collect();
    let mut images: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for a in artifacts.iter().filter(|a| a.kind == buildstate_core::ArtifactKind::Image) {
        let cloud = a.cloud.clone().unwrap_or_else(|| "unknown".to_owned());
        let region = a.region.clone().unwrap_or_else(|| "-".to_owned());
        images
            .entry(cloud)
            .or_default()
            .insert(region, json!({"id": a.uri, "sha256": a.sha256, "name": a.name}));
    }
    write(dir, "build.json", &pretty(&doc)?)?;
    write(dir, "artifacts.json", &pretty(&json!({"images": images, "artifacts": artifacts}))?)?;
    write(dir, "state", &format!("{}\n", b.state))?;
    eprintln!("fetched build {} ({} artifact(s)) at {} ({})", b.number, artifacts.len(), b.state, b.status);
    Ok(json!({"version": v, "metadata": metadata(&b)}))
}

/// What `out` is asked to do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutParams {
    /// The build: a reference.
    #[serde(default)]
    build: Option<String>,
    /// …or the directory of a `get` of this resource, whose `build.json` names it.
    #[serde(default)]
    from: Option<String>,
    /// Create the build (platform, os and image from the source).
    #[serde(default)]
    create: bool,
    /// The new build's number [default: `OS-IMAGE-PLATFORM-ccBUILD_ID`].
    #[serde(default)]
    number: Option<String>,
    /// start, complete, fail or skip.
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    state: Option<Value>,
    /// For fail: the message, type and class; for skip: the reason.
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "type")]
    failure_type: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// Names this put for its idempotency key [default: ACTION-STATE, or `create`].
    #[serde(default)]
    step: Option<String>,
}

/// `out DIR`: records one transition or creates a build, once per Concourse build and
/// step; a write that fails fails the step.
pub async fn put(r: &Resource, dir: &Path, meta: &BuildMeta) -> Result<Value, CliError> {
    let p: PutParams = match &r.params {
        Value::Null => PutParams::default(),
        v => serde_json::from_value(v.clone()).map_err(|e| {
            CliError::usage(format!("params: {e}")).with_hint(
                "params keys: build, from, create, number, action, state, error, type, class, reason, step",
            )
        })?,
    };
    let concourse_build = meta.id.clone().ok_or_else(|| {
        CliError::usage(
            "BUILD_ID is not set: `out` runs as a Concourse put, which is what keeps it idempotent",
        )
        .with_hint("set BUILD_ID (and BUILD_NAME, BUILD_JOB_NAME, …) to run it by hand")
    })?;
    let action = p.action.as_deref().map(Action::parse).transpose()?;
    let code = p.state.as_ref().map(code_of).transpose()?;
    if action.is_some() != code.is_some() {
        return Err(CliError::usage("params need both `action` and `state` (or neither, with create)"));
    }
    if action.is_none() && !p.create {
        return Err(CliError::usage("params ask for nothing: give `action` and `state`, or `create: true`"));
    }
    // A param of another action is a mistake, not something to ignore.
    if action != Some(Action::Fail) && (p.error.is_some() || p.failure_type.is_some() || p.class.is_some()) {
        return Err(CliError::usage("params `error`, `type` and `class` are for `action: fail`"));
    }
    if action != Some(Action::Skip) && p.reason.is_some() {
        return Err(CliError::usage("params `reason` is for `action: skip`"));
    }
    let step = p.step.clone().unwrap_or_else(|| match (&action, code) {
        (Some(a), Some(c)) => format!("{}-{c}", a.word()),
        _ => "create".to_owned(),
    });
    let key = format!("[concourse {concourse_build}/{step}]");
    let actor = format!("{} {key}", meta.actor());
    // Every input is checked before the first write.
    let failure = match action {
        Some(Action::Fail) => Some(failure_of(&p)?),
        _ => None,
    };
    if action == Some(Action::Skip) && p.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(CliError::usage("params.reason is required to skip a milestone"));
    }
    let mut b = match (&p.build, &p.from, p.create) {
        (Some(reference), None, false) => r.store.find_build(reference).await?,
        (None, Some(from), false) => r.store.find_build(&build_in(dir, from)?).await?,
        (None, None, true) => create(r, &p, &concourse_build, &key, &actor, meta).await?,
        _ => {
            return Err(CliError::usage("params name the build one way: `build`, `from` or `create: true`"));
        }
    };
    // The build must be one this resource stands for: a version of another cell is one
    // its `check` never gives.
    for (what, want, have) in
        [("platform", &r.platform, &b.platform), ("os", &r.os, &b.os), ("image", &r.image, &b.image_type)]
    {
        if let Some(want) = want.as_ref().filter(|w| *w != have) {
            return Err(CliError::usage(format!(
                "build {} is of {what} {have}, not the source's {want}",
                b.number
            ))
            .with_hint("put to the resource of that build's cell"));
        }
    }
    if let (Some(action), Some(code)) = (action, code) {
        let ours = |history: &[HistoryEvent]| {
            history.iter().any(|e| e.actor.contains(&key) && action.recorded_by(e, code))
        };
        if ours(&r.store.history(b.id).await?) {
            eprintln!("already recorded by this Concourse build ({key}): nothing written again");
        } else {
            let cmd = action.command(code, actor.clone(), failure, p.reason.clone().unwrap_or_default());
            match r.store.apply(b.id, &cmd, Guard::none()).await {
                Ok(outcome) => {
                    b = outcome.build;
                    eprintln!(
                        "{} {code} of build {}: now at {} ({})",
                        action.word(),
                        b.number,
                        b.state,
                        b.status
                    );
                }
                // The same put retried at the same moment got there first: its record
                // is this one's (hostile review: the others went red).
                Err(e) if ours(&r.store.history(b.id).await?) => {
                    eprintln!(
                        "recorded by a retry of this put ({key}) meanwhile: nothing written again ({e})"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    // The put's version is one `check` gives (hostile review: a build only created gave
    // a "delivered" version, which triggers the jobs that take it): this build's, once
    // it is past the milestone; else the resource's newest, unchanged.
    let all = versions(r).await?;
    let version = match (all.iter().find(|v| v.id == b.id.to_string()), all.last()) {
        (Some(own), _) => own.clone(),
        (None, Some(newest)) => {
            eprintln!(
                "build {} is not past {} yet: the resource's version stays {}",
                b.number, r.until, newest.build
            );
            newest.clone()
        }
        (None, None) => {
            eprintln!("build {} is not past {} yet, and the resource has no version yet", b.number, r.until);
            Version { build: b.number.to_string(), id: b.id.to_string(), at: NOT_YET.to_owned() }
        }
    };
    Ok(json!({"version": version, "metadata": metadata(&b)}))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Start,
    Complete,
    Fail,
    Skip,
}

impl Action {
    fn parse(s: &str) -> Result<Action, CliError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "start" => Ok(Action::Start),
            "complete" => Ok(Action::Complete),
            "fail" => Ok(Action::Fail),
            "skip" => Ok(Action::Skip),
            other => {
                Err(CliError::usage(format!("params.action `{other}`: give start, complete, fail or skip")))
            }
        }
    }

    fn word(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Complete => "complete",
            Action::Fail => "fail",
            Action::Skip => "skip",
        }
    }

    /// Whether `e` is this action's own event at `code`.
    fn recorded_by(self, e: &HistoryEvent, code: StateCode) -> bool {
        let kind = match self {
            Action::Start => EventKind::Started,
            Action::Complete => EventKind::Completed,
            Action::Fail => EventKind::Failed,
            Action::Skip => EventKind::Skipped,
        };
        e.kind == kind && e.state == code
    }

    fn command(
        self,
        state: StateCode,
        actor: String,
        failure: Option<FailureInfo>,
        reason: String,
    ) -> Command {
        match (self, failure) {
            (Action::Start, _) => Command::Start { state, actor, log: None, force: false },
            (Action::Complete, _) => Command::Complete { state, actor, exit_code: None, log: None },
            (Action::Fail, failure) => Command::Fail {
                state,
                actor,
                failure: failure
                    .unwrap_or_else(|| failure_with("failed in Concourse", FailureType::unknown())),
                max_attempts: buildstate_runner::pipeline::RetryDefaults::installed()
                    .policy_for(state)
                    .max_attempts,
                log: None,
            },
            (Action::Skip, _) => Command::Skip { state, actor, reason },
        }
    }
}

fn failure_with(message: &str, failure_type: FailureType) -> FailureInfo {
    FailureInfo {
        failure_type,
        class: FailureClass::Transient,
        component: Some("concourse".to_owned()),
        message: message.to_owned(),
        details: BTreeMap::new(),
        exit_code: None,
    }
}

fn failure_of(p: &PutParams) -> Result<FailureInfo, CliError> {
    let failure_type = match &p.failure_type {
        Some(t) => t.parse().map_err(|e| CliError::usage(format!("params.type: {e}")))?,
        None => FailureType::unknown(),
    };
    let mut f = failure_with(p.error.as_deref().unwrap_or("failed in Concourse"), failure_type);
    if let Some(c) = &p.class {
        f.class = c.parse().map_err(|e| CliError::usage(format!("params.class: {e}")))?;
    }
    f.message = buildstate_core::clean_text(&f.message, buildstate_core::MAX_MESSAGE_BYTES);
    Ok(f)
}

fn code_of(v: &Value) -> Result<StateCode, CliError> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.trim().parse().map_err(|e| CliError::usage(format!("params.state `{text}`: {e}")))
}

/// The build a `get` of this resource wrote into `DIR/FROM/build.json`.
fn build_in(dir: &Path, from: &str) -> Result<String, CliError> {
    let rel = Path::new(from);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(CliError::usage(format!(
            "params.from `{from}` must be an input's name inside the step's directory"
        )));
    }
    let path = dir.join(rel).join("build.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::usage(format!("cannot read {}: {e}", path.display()))
            .with_hint("`from` names the directory of a `get` of this resource")
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        CliError::new(Exit::BadDocument, format!("{} is not a build document: {e}", path.display()))
    })?;
    // The export document (`buildstate.build/v1`) names its build at the top.
    doc.get("build_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CliError::new(Exit::BadDocument, format!("{} names no build", path.display())))
}

async fn create(
    r: &Resource,
    p: &PutParams,
    concourse_build: &str,
    key: &str,
    actor: &str,
    meta: &BuildMeta,
) -> Result<Build, CliError> {
    let (Some(platform), Some(os), Some(image)) = (&r.platform, &r.os, &r.image) else {
        return Err(CliError::usage("create needs source.platform, source.os and source.image"));
    };
    let number = match &p.number {
        Some(n) => n.clone(),
        None => format!("{os}-{image}-{platform}-cc{concourse_build}").to_ascii_lowercase(),
    };
    let number = BuildNumber::new(&number).map_err(|e| CliError::usage(format!("params.number: {e}")))?;
    let mut metadata = BTreeMap::new();
    if let Some(pipeline) = &r.pipeline {
        let k = MetaKey::new(PIPELINE_KEY).map_err(|e| CliError::internal(e.to_string()))?;
        let v = MetaValue::new(&k, pipeline.as_str()).map_err(|e| CliError::internal(e.to_string()))?;
        metadata.insert(k, v);
    }
    let new = NewBuild {
        platform: platform.clone(),
        os: os.clone(),
        image_type: image.clone(),
        number: Some(number.clone()),
        catalog: StateCatalog::default_catalog(),
        created_by: actor.to_owned(),
        ci_url: meta.page(),
        metadata,
    };
    match r.store.create_build(&new).await {
        Ok(b) => {
            eprintln!("created build {}", b.number);
            Ok(b)
        }
        // A retried put: the build is the one this Concourse build created.
        Err(StoreError::AlreadyExists { .. }) => {
            let b = r.store.find_build(number.as_str()).await?;
            if b.created_by.contains(key) {
                eprintln!(
                    "build {} was created by this Concourse build already: nothing written again",
                    b.number
                );
                Ok(b)
            } else {
                Err(CliError::new(
                    Exit::Conflict,
                    format!("build {} exists and was not created by this put", b.number),
                )
                .with_hint("give another params.number, or put to it with params.build"))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The builds the source selects, in the store's order.
async fn candidates(r: &Resource) -> Result<Vec<Build>, CliError> {
    let filter = BuildFilter {
        platform: r.platform.clone(),
        os: r.os.clone(),
        image_type: r.image.clone(),
        ..BuildFilter::default()
    };
    let builds = r.store.list_builds(&filter).await?;
    Ok(builds
        .into_iter()
        .filter(|b| {
            r.pipeline.as_ref().is_none_or(|p| {
                b.metadata.iter().any(|(k, v)| k.as_str() == PIPELINE_KEY && v.as_str() == p.as_str())
            })
        })
        .collect())
}

/// The version's build, if the version is one of the resource's now (or the `not yet`
/// version of one of its builds, as `out` gives it before any build is past the
/// milestone). Gone: the build was deleted, is not this resource's (another cell or
/// pipeline), was rewound to the milestone or below, or the version was never given.
async fn still_there(r: &Resource, v: &Version) -> Result<Build, CliError> {
    let gone = |why: String| {
        CliError::not_found(format!("version {} no longer exists: {why}", v.build))
            .with_hint("Concourse checks again and offers the versions that exist")
    };
    let id: BuildId = v.id.parse().map_err(|_| gone(format!("`{}` is not a build id", v.id)))?;
    let b = match r.store.build(id).await {
        Ok(b) => b,
        Err(StoreError::BuildNotFound(_)) => return Err(gone("the build is not in the store".into())),
        Err(e) => return Err(e.into()),
    };
    if !candidates(r).await?.iter().any(|c| c.id == b.id) {
        return Err(gone(format!("build {} is not a build of this resource's source", b.number)));
    }
    if v.at == NOT_YET || versions(r).await?.contains(v) {
        return Ok(b);
    }
    let history = r.store.history(b.id).await?;
    let why = match history.iter().rev().find(|e| e.kind == EventKind::Rewound) {
        Some(rewind)
            if reached_at(&history, &b.catalog, r.until).is_none() || rewind.at.to_string() > v.at =>
        {
            format!("build {} was rewound to {} at {}", b.number, rewind.state, rewind.at)
        }
        _ => format!(
            "build {} is not past {} at {}: this resource never gave that version",
            b.number, r.until, v.at
        ),
    };
    Err(gone(why))
}

fn metadata(b: &Build) -> Value {
    let mut m = vec![
        json!({"name": "build", "value": b.number.to_string()}),
        json!({"name": "state", "value": format!("{} ({})", b.state, b.state_name())}),
        json!({"name": "status", "value": b.status.to_string()}),
    ];
    if let Some(url) = &b.ci_url {
        m.push(json!({"name": "ci_url", "value": url}));
    }
    Value::Array(m)
}

fn pretty(v: &impl Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(v)
        .map(|t| format!("{t}\n"))
        .map_err(|e| CliError::internal(format!("cannot encode JSON: {e}")))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), CliError> {
    let path = dir.join(name);
    std::fs::write(&path, text)
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", path.display())))
}
