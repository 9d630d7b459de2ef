//! `completions SHELL` and `man`: generated from the command line's own declaration
//! (clap_complete, clap_mangen), so they never drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::{CliError, io_error};
use crate::output;

const BIN: &str = "buildstate";

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write a page for every command into DIR (buildstate.1, buildstate-run.1, …)
    /// instead of printing buildstate(1)
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// `buildstate completions bash > /etc/bash_completion.d/buildstate`, `… zsh > _buildstate`,
/// `… fish > ~/.config/fish/completions/buildstate.fish`.
pub fn completions(a: &CompletionsArgs) -> Result<(), CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), BIN, &mut buf);
    output::raw(&buf)
}

pub fn man(a: &ManArgs) -> Result<(), CliError> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match &a.out_dir {
        None => {
            let mut buf = Vec::new();
            page(&cmd, true, &mut buf).map_err(|e| io_error("render the manual page", &e))?;
            output::raw(&buf)
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| io_error(&format!("create {}", dir.display()), &e))?;
            let mut written = Vec::new();
            write_pages(&cmd, dir, true, &mut written)?;
            if !output::quiet() {
                for p in &written {
                    output::line(p.display().to_string())?;
                }
            }
            Ok(())
        }
    }
}

fn write_pages(
    cmd: &clap::Command,
    dir: &Path,
    top: bool,
    written: &mut Vec<PathBuf>,
) -> Result<(), CliError> {
    let path = dir.join(clap_mangen::Man::new(cmd.clone()).get_filename());
    let mut buf = Vec::new();
    page(cmd, top, &mut buf).map_err(|e| io_error("render a manual page", &e))?;
    std::fs::write(&path, buf).map_err(|e| io_error(&format!("write {}", path.display()), &e))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, false, written)?;
    }
    Ok(())
}

/// clap_mangen's sections, with FILES and ENVIRONMENT (the layers of `config show`)
/// on the top page before VERSION.
fn page(cmd: &clap::Command, top: bool, w: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    if cmd.has_subcommands() {
        man.render_subcommands_section(w)?;
    }
    if top {
        w.write_all(EXTRA.as_bytes())?;
    }
    man.render_version_section(w)?;
    Ok(())
}

/// Roff: `\-` is a minus sign (so that copied options work), `\fB…\fR` bold.
const EXTRA: &str = r#".SH FILES
.TP
\fI$XDG_CONFIG_HOME/buildstate/config.toml\fR (\fI~/.config/buildstate/config.toml\fR)
The config file, unless \fB\-\-config\fR or \fBBUILDSTATE_CONFIG\fR names another. Its keys: db, sync, actor, lease_ttl, grace, logs_dir, color and [retry.RANGE] tables. \fBbuildstate config show\fR prints every effective setting and where it came from.
.TP
\fI$XDG_DATA_HOME/buildstate/buildstate.db\fR (\fI~/.local/share/buildstate/buildstate.db\fR)
The default store.
.SH ENVIRONMENT
Settings are read in layers: built\-in defaults, the config file, these variables, then flags. An empty variable counts as unset.
.TP
\fBBUILDSTATE_CONFIG\fR
The config file to read.
.TP
\fBBUILDSTATE_DB\fR, \fBBUILDSTATE_SYNC\fR, \fBBUILDSTATE_ACTOR\fR
The store, the object\-storage target, who is acting (as \fB\-\-db\fR, \fB\-\-sync\fR, \fB\-\-actor\fR).
.TP
\fBBUILDSTATE_LEASE_TTL\fR, \fBBUILDSTATE_GRACE\fR, \fBBUILDSTATE_LOGS_DIR\fR
Defaults of \fB\-\-lease\-ttl\fR, \fB\-\-grace\fR and \fB\-\-logs\-dir\fR of run, exec and worker.
.TP
\fBBUILDSTATE_COLOR\fR, \fBNO_COLOR\fR
When to colour (auto, always, never); a non\-empty \fBNO_COLOR\fR turns auto off.
.TP
\fBBUILDSTATE_LOG\fR
The level of diagnostics on stderr: error, warn (the default), info, debug or trace.
"#;
