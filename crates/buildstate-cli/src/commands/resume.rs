//! `resume REF`: what to run next for a build, and why. The answer is also the exit
//! code, so that a pipeline step can branch on it without parsing:
//! 0 run the state printed, 10 delivered, 11 needs a person, 12 cancelled.

use buildstate_core::{Build, BuildStatus, FailureClass, FailureRecord};
use buildstate_store::FailureFilter;
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// First pull the build's copy from object storage (s3://, az://, gs://, file://):
    /// a fresh machine with an empty store continues a build from another cloud
    #[arg(long, value_name = "URL")]
    from: Option<String>,
}

impl Args {
    /// `--from` pulls the build into the store first, so it may be the store's first write.
    pub fn pulls(&self) -> bool {
        self.from.is_some()
    }
}

/// Why `resume` answered as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Run the current milestone: nothing has been attempted at it yet.
    Next,
    /// An attempt at the current milestone is already open (another runner, or a crash).
    AttemptOpen,
    /// The last attempt failed and may be retried (`buildstate retry` first).
    Retry,
    Delivered,
    NeedsIntervention,
    Cancelled,
}

impl Reason {
    fn exit(self) -> Exit {
        match self {
            Reason::Next | Reason::AttemptOpen | Reason::Retry => Exit::Ok,
            Reason::Delivered => Exit::Delivered,
            Reason::NeedsIntervention => Exit::NeedsIntervention,
            Reason::Cancelled => Exit::Cancelled,
        }
    }
}

/// The answer, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub build: String,
    pub id: String,
    /// Whether there is a milestone to run (exit 0).
    pub run: bool,
    pub state: u8,
    pub state_name: String,
    pub status: BuildStatus,
    pub reason: Reason,
    /// Attempts made at `state` so far.
    pub attempts: u32,
    pub message: String,
    /// The command to run next, if any.
    pub next_command: Option<String>,
    pub exit_code: u8,
}

pub fn plan(b: &Build, last_failure: Option<&FailureRecord>) -> Plan {
    let n = &b.number;
    let here = output::state_label(b);
    let failed_because = last_failure.map_or_else(String::new, |f| {
        format!(" ({} {}: {})", f.info.class, f.info.failure_type, output::cell(&f.info.message, 80))
    });
    let (reason, message, next_command) = match b.status {
        BuildStatus::Completed => (Reason::Delivered, format!("nothing to do: build {n} is delivered"), None),
        BuildStatus::Cancelled => (
            Reason::Cancelled,
            format!("build {n} was cancelled at {here}; to run it again, rewind it"),
            Some(format!("buildstate rewind {n} --to {} --reason \"…\"", b.state)),
        ),
        BuildStatus::Failed if b.needs_intervention => {
            let why = match last_failure.map(|f| f.info.class) {
                Some(FailureClass::Persistent) => "the failure is persistent",
                _ => "its retries are used up",
            };
            (
                Reason::NeedsIntervention,
                format!(
                    "build {n} needs a person: attempt {} at {here} failed{failed_because} and {why}; fix the cause, then override with a recorded retry",
                    b.attempt
                ),
                Some(format!("buildstate retry {n} --force --reason \"…\"")),
            )
        }
        BuildStatus::Failed => (
            Reason::Retry,
            format!(
                "retry: attempt {} failed{failed_because}; re-open the build with `buildstate retry {n}`, then run it",
                b.attempt
            ),
            Some(format!("buildstate retry {n}")),
        ),
        BuildStatus::Running if b.attempt_open() => (
            Reason::AttemptOpen,
            format!(
                "attempt {} is already open since {}; complete or fail it, or start again with --force to abandon it",
                b.attempt,
                output::opt_time(b.attempt_started_at)
            ),
            Some(format!("buildstate state complete {n} {}", b.state)),
        ),
        BuildStatus::Pending | BuildStatus::Running => (
            Reason::Next,
            match b.catalog.codes().filter(|c| *c < b.state).last() {
                Some(prev) => format!("next milestone, after {prev} ({})", b.catalog.name_of(prev)),
                None => "first milestone: the build has not started".to_owned(),
            },
            Some(format!("buildstate state start {n} {}", b.state)),
        ),
    };
    Plan {
        build: n.to_string(),
        id: b.id.to_string(),
        run: reason.exit() == Exit::Ok,
        state: b.state.get(),
        state_name: b.state_name().to_owned(),
        status: b.status,
        reason,
        attempts: b.attempt,
        message,
        next_command,
        exit_code: reason.exit().code(),
    }
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    let b = match &a.from {
        Some(url) => pull(url, &a.reference, ctx).await?,
        None => ctx.find(&a.reference).await?,
    };
    let last_failure = if b.status == BuildStatus::Failed {
        let filter = FailureFilter { build: Some(b.id), limit: Some(1), ..FailureFilter::default() };
        ctx.store.failures(&filter).await?.into_iter().next()
    } else {
        None
    };
    let p = plan(&b, last_failure.as_ref());
    if ctx.json {
        output::json(&p)?;
    } else if p.run {
        output::line(format!("{} {}\n{}", p.state, p.state_name, p.message))?;
    } else {
        output::line(&p.message)?;
        if let Some(c) = &p.next_command {
            output::line(format!("next: {c}"))?;
        }
    }
    Ok(p.reason.exit())
}

/// `--from URL`: the build's copy, imported unless the local store has it as new.
async fn pull(url: &str, reference: &str, ctx: &Ctx) -> Result<Build, CliError> {
    let syncer = crate::remote::syncer(url, &ctx.db_path)?;
    let number = match ctx.store.find_build(reference).await {
        Ok(local) => local.number,
        Err(_) => buildstate_core::BuildNumber::new(reference).map_err(|e| {
            CliError::usage(e.to_string())
                .with_hint("with --from, give the full build number of a build not in the local store")
        })?,
    };
    let doc = syncer
        .pull(&number, None)
        .await
        .map_err(|e| {
            crate::remote::sync_error(e, &format!("cannot pull {number} from {}", syncer.target().url()))
        })?
        .ok_or_else(|| {
            CliError::not_found(format!("{} has no copy of build {number}", syncer.target().url()))
        })?;
    super::sync::import_if_newer(ctx, doc).await
}

#[cfg(test)]
mod tests {
    use buildstate_core::{BuildId, BuildNumber, Name, NewBuild, StateCatalog};

    use super::*;

    fn build() -> Build {
        let name = |s: &str| Name::new(s).expect("valid name");
        let new = NewBuild {
            platform: name("gcp"),
            os: name("rhel-9.6"),
            image_type: name("base"),
            number: None,
            catalog: StateCatalog::default_catalog(),
            created_by: "t".into(),
            ci_url: None,
            metadata: Default::default(),
        };
        let number = BuildNumber::new("b-1").expect("valid number");
        Build::create(BuildId::generate(1, 7), number, new, jiff::Timestamp::UNIX_EPOCH).0
    }

    #[test]
    fn each_status_has_its_answer_and_exit_code() {
        let mut b = build();
        let p = plan(&b, None);
        assert_eq!((p.reason, p.exit_code, p.run), (Reason::Next, 0, true));
        b.status = BuildStatus::Failed;
        b.attempt = 1;
        assert_eq!(plan(&b, None).reason, Reason::Retry);
        b.needs_intervention = true;
        assert_eq!(plan(&b, None).exit_code, 11);
        b.needs_intervention = false;
        b.status = BuildStatus::Cancelled;
        assert_eq!(plan(&b, None).exit_code, 12);
        b.status = BuildStatus::Completed;
        assert_eq!(plan(&b, None).exit_code, 10);
    }
}
