//! `buildstate-bench`: the figures of issue 2, each against a baseline measured in the
//! same run (these machines are noisy, so only ratios mean anything):
//!
//! (a) transitions per second through the `Store` API against raw SQLite executing the
//!     same statements with the same durability settings (target ≥ 0.85);
//! (b) one `buildstate state complete` process, end to end, against one `sqlite3`
//!     command-line call doing the equivalent update and insert (target ≤ 1.4×);
//! (c) the CLI's peak resident memory;
//! (d) the runner's overhead per milestone: `buildstate run` of a 21-milestone pipeline
//!     of `true` steps against spawning `true` 21 times (target ≤ 5 ms per milestone);
//! (e) transitions per second with 1, 4 and 16 concurrent writers (distinct builds, and
//!     one shared build) on PostgreSQL (when `BUILDSTATE_TEST_POSTGRES_URL` is set) next
//!     to SQLite.
//!
//! (f) the latency object-storage copies add per transition (directory target, and S3
//!     when `BUILDSTATE_TEST_S3_ENDPOINT` is set), against no copy, in the same run.
//! (g) the PostgreSQL store's transitions/s (from (e), distinct builds) against `pgbench`
//!     running the same statements with the same number of clients (target ≥ 0.7).
//! (h) with `--reports` (and only then; the others do not run): every report and `build
//!     list` of the newest 50, median of 5 runs, on a generated year of 100,000 builds
//!     and about 2 million attempts in SQLite and PostgreSQL (targets: every report
//!     < 100 ms on SQLite, < 200 ms on PostgreSQL; overview and matrix < 50 ms; the list
//!     < 20 ms), with the generation rate through the store engine. The JSON-file store
//!     is measured at 5,000 builds: its reports read every build's document, so their
//!     time grows linearly with the builds, and the run prints up to how many builds
//!     they stay under 100 ms. `--quick` shrinks the data set to 5,000 builds (1,000 in
//!     files). `--reports-db PATH` keeps the SQLite data set there and reuses it on the
//!     next run (so does `--reports-pg-schema NAME` for PostgreSQL), for re-measuring
//!     after a change without regenerating.
//!
//! (i) with `--http` (only it), and in the full run: transitions/s through the HTTP API
//!     (`buildstate serve`, the real binary) with 1, 16 and 64 concurrent clients on
//!     distinct builds against the store in this process at the same concurrency
//!     (target ≥ 0.5 at 16 clients), p50 and p99 latency through the API (target p99
//!     < 20 ms at 16 clients), and the server's peak RSS under that load (< 100 MB).
//!
//! (j) with `--ansible` (only it): a 200-task playbook on localhost with the buildstate
//!     Ansible callback recording a build and without it, alternating, median of 7
//!     (target: overhead ≤ 10 %; printed, never asserted).
//!
//! Usage: `cargo build --release --workspace && target/release/buildstate-bench [--quick]`,
//! or `cargo build --release -p buildstate-bench && target/release/buildstate-bench
//! --reports [--quick] [--reports-db PATH] [--reports-pg-schema NAME]`

mod ansible_overhead;
mod api_vs_raw;
mod cli_vs_sqlite3;
mod fixture;
mod http_load;
mod pgbench;
mod reports;
mod runner_overhead;
mod stats;
mod sync_latency;
mod writers;

use std::path::PathBuf;
use std::process::ExitCode;

struct Options {
    quick: bool,
    cli: PathBuf,
    /// `Some`: run only the report benchmark (h).
    reports: Option<reports::Options>,
    /// Run only the HTTP benchmark (i).
    http: bool,
    /// Run only the Ansible callback benchmark (j).
    ansible: bool,
}

fn options() -> Result<Options, String> {
    let mut quick = false;
    let mut cli = None;
    let mut wants_reports = false;
    let mut http = false;
    let mut ansible = false;
    let mut report_opts = reports::Options::default();
    let mut args = std::env::args().skip(1);
    let value = |args: &mut dyn Iterator<Item = String>, flag: &str| {
        args.next().ok_or_else(|| format!("{flag} needs a value; see --help"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--http" => http = true,
            "--ansible" => ansible = true,
            // Absolute: steps and the Ansible callback run it from other directories.
            "--cli" => {
                cli = args.next().map(|p| std::path::absolute(&p).unwrap_or_else(|_| PathBuf::from(p)))
            }
            "--reports" => wants_reports = true,
            "--reports-db" => report_opts.db = Some(PathBuf::from(value(&mut args, "--reports-db")?)),
            "--reports-pg-schema" => report_opts.pg_schema = Some(value(&mut args, "--reports-pg-schema")?),
            "--reports-backends" => {
                for b in value(&mut args, "--reports-backends")?.split(',').map(str::trim) {
                    if !reports::BACKENDS.contains(&b) {
                        return Err(format!(
                            "unknown backend `{b}` in --reports-backends; use some of {}",
                            reports::BACKENDS.join(", ")
                        ));
                    }
                    report_opts.backends.push(b.to_owned());
                }
            }
            "-h" | "--help" => {
                println!("usage: buildstate-bench [--quick] [--http | --ansible] [--cli PATH-TO-buildstate]");
                println!(
                    "       buildstate-bench --reports [--quick] [--reports-db PATH] [--reports-pg-schema NAME] [--reports-backends sqlite,postgres,files]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`; see --help")),
        }
    }
    if !wants_reports
        && (report_opts.db.is_some() || report_opts.pg_schema.is_some() || !report_opts.backends.is_empty())
    {
        return Err("--reports-db, --reports-pg-schema and --reports-backends go with --reports".into());
    }
    if wants_reports {
        report_opts.quick = quick;
        // The report benchmark never runs the CLI.
        if http || ansible {
            return Err("--reports, --http and --ansible are separate runs; give one".into());
        }
        return Ok(Options {
            quick,
            cli: cli.unwrap_or_default(),
            reports: Some(report_opts),
            http,
            ansible,
        });
    }
    let cli = match cli {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate this executable: {e}"))?
            .with_file_name("buildstate"),
    };
    if !cli.is_file() {
        return Err(format!(
            "{} does not exist; build it first (cargo build --release --workspace) or pass --cli PATH",
            cli.display()
        ));
    }
    if http && ansible {
        return Err("--http and --ansible are separate runs; give one".into());
    }
    Ok(Options { quick, cli, reports: None, http, ansible })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--memory-probe") {
        return match cli_vs_sqlite3::probe(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let opts = options()?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mode =
        if opts.quick { "quick (smoke run: too few samples for the figures to mean much)" } else { "full" };
    println!("buildstate benchmark — {mode}");
    println!("scratch: {}", dir.path().display());
    let pg = std::env::var("BUILDSTATE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());

    if let Some(report_opts) = &opts.reports {
        return reports::run(dir.path(), pg.as_deref(), report_opts);
    }

    if opts.http {
        return http(dir.path(), &opts);
    }

    if opts.ansible {
        return ansible(&rt, dir.path(), &opts);
    }

    let a = api_vs_raw::run(&rt, dir.path(), opts.quick)?;
    println!();
    println!("(a) transitions/s, Store API vs raw SQLite, same statements, WAL + synchronous=FULL");
    println!("    Store API : {:>9.0} transitions/s ({} transitions)", a.api_per_sec, a.transitions);
    println!("    raw SQLite: {:>9.0} transitions/s ({} transitions)", a.raw_per_sec, a.transitions);
    println!("    ratio     : {:>9.2}   (target ≥ 0.85)", a.api_per_sec / a.raw_per_sec);

    let b = cli_vs_sqlite3::run(&rt, dir.path(), &opts.cli, opts.quick)?;
    println!();
    println!(
        "(b) one `buildstate state complete` process vs one `sqlite3` call (update + insert), median of {}",
        b.samples
    );
    println!("    buildstate: {:>7.2} ms", stats::ms(b.cli));
    println!("    sqlite3   : {:>7.2} ms", stats::ms(b.sqlite3));
    println!("    ratio     : {:>7.2}   (target ≤ 1.40)", b.cli.as_secs_f64() / b.sqlite3.as_secs_f64());
    println!();
    println!("(c) peak memory of the `buildstate` CLI (max RSS over {} runs)", b.memory_runs);
    println!("    buildstate: {:>7.1} MiB", b.cli_max_rss_kib as f64 / 1024.0);

    let d = runner_overhead::run(&rt, dir.path(), &opts.cli, opts.quick)?;
    println!();
    println!(
        "(d) runner overhead per milestone: `buildstate run` of {} `true` steps vs spawning `true` {} times, median of {}",
        d.milestones, d.milestones, d.samples
    );
    println!("    buildstate run: {:>7.1} ms", stats::ms(d.run));
    println!("    21 × true     : {:>7.1} ms", stats::ms(d.spawn));
    println!(
        "    overhead      : {:>7.2} ms per milestone (target ≤ 5.00; ratio to target {:.2})",
        d.overhead_ms(),
        d.overhead_ms() / 5.0
    );

    let rows = writers::run(dir.path(), pg.as_deref(), opts.quick)?;
    let rows_e = &rows;
    println!();
    println!(
        "(e) transitions/s with concurrent writers (accepted transitions; shared = all writers on one build)"
    );
    if pg.is_none() {
        println!(
            "    PostgreSQL not measured: set BUILDSTATE_TEST_POSTGRES_URL (scripts/bench.sh starts it)"
        );
    }
    println!("    {:<9} {:>7} {:>12} {:>12}", "backend", "writers", "distinct/s", "shared/s");
    for r in &rows {
        println!(
            "    {:<9} {:>7} {:>12.0} {:>12.0}",
            r.backend, r.writers, r.distinct_per_sec, r.shared_per_sec
        );
    }
    for w in [1usize, 4, 16] {
        let get = |b: &str| rows.iter().find(|r| r.backend == b && r.writers == w);
        if let (Some(p), Some(s)) = (get("postgres"), get("sqlite")) {
            println!(
                "    {w:>2} writers: postgres/sqlite = {:.2} (distinct), {:.2} (shared)",
                p.distinct_per_sec / s.distinct_per_sec,
                p.shared_per_sec / s.shared_per_sec
            );
        }
    }

    println!();
    println!("(g) PostgreSQL store vs pgbench running the same statements, same clients (distinct builds)");
    match pg.as_deref() {
        None => println!("    not measured: set BUILDSTATE_TEST_POSTGRES_URL (scripts/bench.sh starts it)"),
        Some(url) => {
            let baselines = pgbench::run(dir.path(), url, opts.quick)?;
            println!("    {:>7} {:>12} {:>12} {:>7}", "clients", "store/s", "pgbench/s", "ratio");
            for b in &baselines {
                let store = rows_e.iter().find(|r| r.backend == "postgres" && r.writers == b.clients);
                if let Some(r) = store {
                    println!(
                        "    {:>7} {:>12.0} {:>12.0} {:>7.2}   (target ≥ 0.70)",
                        b.clients,
                        r.distinct_per_sec,
                        b.tps,
                        r.distinct_per_sec / b.tps
                    );
                }
            }
        }
    }

    let s3 = std::env::var("BUILDSTATE_TEST_S3_ENDPOINT").ok().filter(|u| !u.is_empty());
    let rows = sync_latency::run(dir.path(), s3.as_deref(), opts.quick)?;
    println!();
    println!("(f) latency per transition with object-storage copies (SQLite store, one writer)");
    let base = rows.first().map(|r| r.per_transition.as_secs_f64()).unwrap_or(0.0);
    for r in &rows {
        let added = (r.per_transition.as_secs_f64() - base) * 1000.0;
        println!("    {:<48} {:>7.2} ms  (+{added:.2} ms)", r.target, stats::ms(r.per_transition));
    }
    if s3.is_none() {
        println!(
            "    S3 not measured: set BUILDSTATE_TEST_S3_ENDPOINT (scripts/bench.sh starts the emulator)"
        );
    }
    http(dir.path(), &opts)
}

fn ansible(rt: &tokio::runtime::Runtime, dir: &std::path::Path, opts: &Options) -> Result<(), String> {
    let m = ansible_overhead::run(rt, dir, &opts.cli, opts.quick)?;
    println!();
    println!(
        "(j) a {}-task playbook on localhost (4 plays → 4 milestones, `debug` tasks) with and without the buildstate callback, alternating, median of {}",
        ansible_overhead::TASKS,
        m.samples
    );
    println!("    without callback: {:>8.1} ms", stats::ms(m.without));
    println!("    with callback   : {:>8.1} ms", stats::ms(m.with));
    println!(
        "    overhead        : {:>8.1} %  (ratio {:.3}; target ≤ 10 %, ratio to target {:.2})",
        m.overhead_pct(),
        m.with.as_secs_f64() / m.without.as_secs_f64(),
        m.overhead_pct().max(0.0) / 10.0
    );
    Ok(())
}

fn http(dir: &std::path::Path, opts: &Options) -> Result<(), String> {
    let m = http_load::run(dir, &opts.cli, opts.quick)?;
    println!();
    println!(
        "(i) transitions/s through the HTTP API (`buildstate serve`, SQLite) vs the store in this process, distinct builds"
    );
    println!(
        "    {:>7} {:>10} {:>13} {:>7} {:>8} {:>8}",
        "clients", "api/s", "in-process/s", "ratio", "p50 ms", "p99 ms"
    );
    for r in &m.rows {
        println!(
            "    {:>7} {:>10.0} {:>13.0} {:>7.2} {:>8.2} {:>8.2}",
            r.clients,
            r.http_per_sec,
            r.local_per_sec,
            r.http_per_sec / r.local_per_sec,
            stats::ms(r.p50),
            stats::ms(r.p99)
        );
    }
    if let Some(r) = m.rows.iter().find(|r| r.clients == 16) {
        println!(
            "    16 clients: ratio {:.2} (target ≥ 0.50), p99 {:.2} ms (target < 20.00)",
            r.http_per_sec / r.local_per_sec,
            stats::ms(r.p99)
        );
    }
    println!(
        "    server peak RSS: {:.1} MiB (target < 100 MB = 95.4 MiB)",
        m.server_peak_rss_kib as f64 / 1024.0
    );
    Ok(())
}
