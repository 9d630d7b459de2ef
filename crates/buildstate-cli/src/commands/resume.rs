//! `resume REF`: what to run next for a build, and why (`buildstate_core::resume_plan`,
//! which the API answers too). The answer is also the exit code, so that a pipeline
//! step can branch on it without parsing: 0 run the state printed, 10 delivered, 11
//! needs a person, 12 cancelled.

use buildstate_core::{Build, BuildStatus, ResumeReason, resume_plan};
use buildstate_store::FailureFilter;

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
    let p = resume_plan(&b, last_failure.as_ref());
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
    Ok(match p.reason {
        ResumeReason::Next | ResumeReason::AttemptOpen | ResumeReason::Retry => Exit::Ok,
        ResumeReason::Delivered => Exit::Delivered,
        ResumeReason::NeedsIntervention => Exit::NeedsIntervention,
        ResumeReason::Cancelled => Exit::Cancelled,
    })
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
