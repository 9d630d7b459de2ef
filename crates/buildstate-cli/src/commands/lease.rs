//! `lease list|break`: which runner is running which build, and freeing a build whose
//! runner is gone.
//!
//! Runners take leases through the store; people only look at them and, when a runner
//! died without releasing its lease and nobody wants to wait for the expiry, break them.

use buildstate_core::Lease;
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Builds leased by a runner: holder, token, expiry (expired leases included)
    List,
    /// Release a build's lease now; its runner's further writes are refused
    Break {
        /// Build id, build number, or a unique prefix of either
        reference: String,
    },
}

/// A lease as scripts read it: the lease, its build's number, and whether it expired.
#[derive(Debug, Serialize)]
struct LeaseView<'a> {
    build_id: String,
    build: String,
    owner: &'a str,
    host: &'a str,
    pid: u32,
    /// Which grant of the build's lease this is; the token itself is the runner's secret.
    generation: u64,
    acquired_at: Timestamp,
    renewed_at: Timestamp,
    expires_at: Timestamp,
    expired: bool,
}

impl<'a> LeaseView<'a> {
    fn new(l: &'a Lease, build: String, now: Timestamp) -> Self {
        LeaseView {
            build_id: l.build_id.to_string(),
            build,
            owner: &l.owner,
            host: &l.host,
            pid: l.pid,
            generation: l.token.generation(),
            acquired_at: l.acquired_at,
            renewed_at: l.renewed_at,
            expires_at: l.expires_at,
            expired: l.is_expired(now),
        }
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::List => list(ctx).await,
        Args::Break { reference } => break_lease(&reference, ctx).await,
    }
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let leases = ctx.store.leases().await?;
    // One read per lease for its number: leases are few (one per running build).
    let mut numbers = Vec::with_capacity(leases.len());
    for l in &leases {
        numbers.push(ctx.store.build(l.build_id).await?.number.to_string());
    }
    let now = buildstate_store::now();
    if ctx.json {
        let views: Vec<LeaseView<'_>> =
            leases.iter().zip(numbers).map(|(l, n)| LeaseView::new(l, n, now)).collect();
        return output::json(&views);
    }
    if leases.is_empty() {
        return output::line("no build is leased");
    }
    let mut t = output::table(&["BUILD", "OWNER", "HOST", "PID", "TOKEN", "EXPIRES", "EXPIRED"]);
    for (l, number) in leases.iter().zip(numbers) {
        t.add_row(vec![
            number,
            output::cell(&l.owner, 30),
            output::cell(&l.host, 30),
            l.pid.to_string(),
            l.token.to_string(),
            output::time(l.expires_at),
            if l.is_expired(now) { "yes" } else { "no" }.to_owned(),
        ]);
    }
    output::print_table(&t)
}

async fn break_lease(reference: &str, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(reference).await?;
    let broken = ctx.store.break_lease(b.id).await?;
    if let Some(l) = broken.as_ref().filter(|l| {
        l.host == buildstate_runner::dispatch::hostname() && buildstate_runner::dispatch::pid_alive(l.pid)
    }) {
        // Breaking is still right (the person decided), but they should know that the
        // runner is alive: it notices within seconds and stops its step.
        output::warning(format!(
            "pid {} on this host ({}) is still running build {}; it will notice the broken lease within a few seconds and stop its step",
            l.pid,
            l.holder(),
            b.number
        ));
    }
    let now = buildstate_store::now();
    if ctx.json {
        return output::json(&broken.as_ref().map(|l| LeaseView::new(l, b.number.to_string(), now)));
    }
    let Some(l) = broken else {
        return output::line(format!("no lease held on build {}; nothing to break", b.number));
    };
    let expiry = if l.is_expired(now) { "expired" } else { "would have expired" };
    output::line(format!(
        "broke lease token {} of build {}, held by {} ({expiry} {}); that runner's writes are refused from now on",
        l.token,
        b.number,
        l.holder(),
        output::time(l.expires_at)
    ))
}
