//! `build create|list|show|cancel`.

use std::path::PathBuf;

use buildstate_core::{
    Build, BuildNumber, BuildStatus, CatalogKind, Command, MetaKey, MetaValue, Name, NewBuild, StateCatalog,
    StateCode, attempts,
};
use buildstate_files::UnreadableBuilds;
use buildstate_store::{BuildFilter, FailureFilter, StoreError};
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::output::{self, BuildView};
use crate::{catalog_hint, ci_env, input};

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Create a build at state 0 and print its build number
    Create(CreateArgs),
    /// List builds, newest first
    List(ListArgs),
    /// Show a build: fields, metadata, current artifacts, attempts and history
    Show {
        /// Build id, build number, or a unique prefix of either
        reference: String,
        /// Also show the artifacts a rewind invalidated, marked with when
        #[arg(long)]
        all: bool,
    },
    /// Cancel a build (terminal until rewound)
    Cancel {
        reference: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    platform: Name,
    #[arg(long)]
    os: Name,
    #[arg(long, visible_alias = "image-type")]
    image: Name,
    /// A chosen build number [default: <os>-<image>-<platform>-<yyyymmdd>-NNN]
    #[arg(long, value_parser = BuildNumber::new)]
    number: Option<BuildNumber>,
    /// Who created the build [default: --actor]
    #[arg(long, value_parser = input::label)]
    created_by: Option<String>,
    /// The CI job [default: read from GitHub Actions, GitLab, Jenkins or Concourse variables]
    #[arg(long, value_parser = input::uri)]
    ci_url: Option<String>,
    /// Metadata entry; repeat for more
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = input::meta_pair)]
    meta: Vec<(MetaKey, MetaValue)>,
    /// The build's milestones: a file in the syntax of a pipeline's `catalog:` (YAML or
    /// JSON: `default`, `{insert: [...]}` or a list of {code, name}) [default: 0, 5, … 100]
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Add a platform, OS or image type missing from the catalog if it is a well-known
    /// one (the sample catalog's, with its attributes)
    #[arg(long)]
    add_missing: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    status: Option<BuildStatus>,
    #[arg(long)]
    platform: Option<Name>,
    #[arg(long)]
    os: Option<Name>,
    #[arg(long, visible_alias = "image-type")]
    image: Option<Name>,
    /// Builds at this state code
    #[arg(long, allow_negative_numbers = true)]
    state: Option<StateCode>,
    /// Created at or after: a date, an RFC 3339 time, or how long ago (90d, 36h), as
    /// for reports and the API
    #[arg(long, value_parser = input::since_or_ago, allow_negative_numbers = true)]
    since: Option<input::Since>,
    /// Only builds that need a person
    #[arg(long)]
    needs_intervention: bool,
    #[arg(long)]
    limit: Option<usize>,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::Create(a) => create(a, ctx).await,
        Args::List(a) => list(a, ctx).await,
        Args::Show { reference, all } => show(&reference, all, ctx).await,
        Args::Cancel { reference, reason } => {
            let b = ctx.find(&reference).await?;
            let cmd = Command::Cancel { actor: ctx.actor.clone(), reason };
            let out = ctx.store.apply(b.id, &cmd, ctx.guard).await?;
            let b = out.build;
            output::build_or_line(
                ctx.json,
                &b,
                format!("cancelled build {} at {}", b.number, output::state_label(&b)),
            )
        }
    }
}

async fn create(a: CreateArgs, ctx: &Ctx) -> Result<(), CliError> {
    // Read the file before touching the store: a bad catalog changes nothing.
    let catalog = match &a.catalog {
        Some(path) => input::catalog(path)?,
        None => StateCatalog::default_catalog(),
    };
    let names =
        [(CatalogKind::Platform, &a.platform), (CatalogKind::Os, &a.os), (CatalogKind::ImageType, &a.image)];
    catalog_hint::ensure(ctx.store.as_ref(), &names, a.add_missing).await?;
    let new = NewBuild {
        platform: a.platform,
        os: a.os,
        image_type: a.image,
        number: a.number,
        catalog,
        created_by: a.created_by.unwrap_or_else(|| ctx.actor.clone()),
        ci_url: a.ci_url.or_else(ci_env::from_process_env),
        metadata: a.meta.into_iter().collect(),
    };
    let b = ctx.store.create_build(&new).await?;
    // The number alone, so that `B=$(buildstate build create …)` works.
    output::build_or_line(ctx.json, &b, b.number.as_str())
}

async fn list(a: ListArgs, ctx: &Ctx) -> Result<(), CliError> {
    let filter = BuildFilter {
        status: a.status,
        platform: a.platform,
        os: a.os,
        image_type: a.image,
        state: a.state,
        since: a.since.map(|s| s.at(buildstate_store::now())),
        needs_intervention: a.needs_intervention.then_some(true),
        after: None,
        limit: a.limit,
    };
    let (builds, unreadable) = match ctx.store.list_builds(&filter).await {
        Ok(builds) => (builds, Vec::new()),
        // A JSON-file store with damaged documents: list what can be read, then fail
        // naming the rest, so that neither is hidden and scripts see the exit code.
        Err(StoreError::Backend { context, source }) => match source.downcast::<UnreadableBuilds>() {
            Ok(partial) => (partial.builds, partial.unreadable),
            Err(source) => return Err(StoreError::Backend { context, source }.into()),
        },
        Err(e) => return Err(e.into()),
    };
    print_list(ctx, &builds)?;
    if unreadable.is_empty() {
        return Ok(());
    }
    let reasons: Vec<&str> = unreadable.iter().map(|(_, why)| why.as_str()).collect();
    let (count, verb) = match unreadable.len() {
        1 => ("1 build document".to_owned(), "is"),
        n => (format!("{n} build documents"), "are"),
    };
    let message =
        format!("{count} in {} cannot be read and {verb} not listed: {}", ctx.location, reasons.join("; "));
    Err(CliError::new(Exit::BadDocument, message).with_hint(
        "the other builds are listed; restore or fix each file named, or move it out of the store's builds/ directory",
    ))
}

fn print_list(ctx: &Ctx, builds: &[Build]) -> Result<(), CliError> {
    if ctx.json {
        return output::json(&builds.iter().map(BuildView::new).collect::<Vec<_>>());
    }
    let now = buildstate_store::now();
    let mut t =
        output::table(&["BUILD", "STATE", "STATUS", "PLATFORM", "OS", "IMAGE", "CREATED", "DURATION"]);
    for b in builds {
        t.add_row(vec![
            b.number.to_string(),
            output::state_label(b),
            output::status_label(b),
            b.platform.to_string(),
            b.os.to_string(),
            b.image_type.to_string(),
            output::time(b.created_at),
            output::opt_duration(b.duration_ms(now)),
        ]);
    }
    output::print_table(&t)
}

#[derive(Serialize)]
struct Shown<'a> {
    build: BuildView<'a>,
    attempts: Vec<buildstate_core::Attempt>,
    history: Vec<buildstate_core::HistoryEvent>,
    failures: Vec<buildstate_core::FailureRecord>,
    artifacts: Vec<buildstate_core::Artifact>,
}

async fn show(reference: &str, all: bool, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(reference).await?;
    let history = ctx.store.history(b.id).await?;
    let failures =
        ctx.store.failures(&FailureFilter { build: Some(b.id), ..FailureFilter::default() }).await?;
    let (artifacts, hidden) = super::artifact::shown(&ctx.store.artifacts(b.id).await?, all);
    let shown =
        Shown { build: BuildView::new(&b), attempts: attempts(&history), history, failures, artifacts };
    if ctx.json {
        return output::json(&shown);
    }
    print_fields(&b)?;
    if !b.metadata.is_empty() {
        output::line("\nmetadata:")?;
        let mut t = output::table(&["KEY", "VALUE"]);
        for (k, v) in &b.metadata {
            t.add_row(vec![k.to_string(), output::cell(v.as_str(), 80)]);
        }
        output::print_table(&t)?;
    }
    if !shown.artifacts.is_empty() {
        output::line("\nartifacts:")?;
        output::print_table(&super::artifact::table(&b, &shown.artifacts, all))?;
    }
    if hidden > 0 {
        if shown.artifacts.is_empty() {
            output::progress_line("");
        }
        super::artifact::hidden_note(hidden);
    }
    output::line("\nattempts:")?;
    let mut t = output::table(&["STATE", "ATTEMPT", "STATUS", "STARTED", "DURATION", "EXIT", "ERROR"]);
    for a in &shown.attempts {
        t.add_row(vec![
            format!("{} ({})", a.state, b.catalog.name_of(a.state)),
            a.number.to_string(),
            a.status.to_string(),
            output::time(a.started_at),
            output::opt_duration(a.duration_ms),
            a.exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            output::cell(a.error.as_deref().unwrap_or("-"), 60),
        ]);
    }
    output::print_table(&t)?;
    output::line("\nhistory:")?;
    output::print_table(&super::history::table(&b, &shown.history))
}

fn print_fields(b: &Build) -> Result<(), CliError> {
    let mut t = output::table(&["FIELD", "VALUE"]);
    let rows: [(&str, String); 12] = [
        ("build", b.number.to_string()),
        ("id", b.id.to_string()),
        ("platform", b.platform.to_string()),
        ("os", b.os.to_string()),
        ("image type", b.image_type.to_string()),
        ("state", output::state_label(b)),
        ("status", output::status_label(b)),
        ("created", format!("{} by {}", output::time(b.created_at), b.created_by)),
        ("started", output::opt_time(b.started_at)),
        ("ended", output::opt_time(b.ended_at)),
        ("duration", output::opt_duration(b.duration_ms(buildstate_store::now()))),
        ("ci", b.ci_url.clone().unwrap_or_else(|| "-".to_owned())),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    output::print_table(&t)
}
