//! Starting a step: the command line, its own process group, and failure messages that
//! say what was wrong and how to fix it.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::Program;

/// The shell for `Program::Shell`.
const SHELL: &str = "/bin/sh";

/// `ENOEXEC`: the kernel does not recognise the file as something it can run.
const ENOEXEC: i32 = 8;

/// What to execute, resolved against the working directory.
#[derive(Debug)]
struct Target {
    /// The program as given to `exec`: a bare name (looked up on `PATH`) or an absolute
    /// path.
    program: PathBuf,
    args: Vec<String>,
    /// How to name the program in messages.
    shown: String,
}

/// Spawns the step as the leader of a new process group, stdin from `/dev/null`, stdout
/// and stderr piped. Returns a message for `StepEnd::SpawnFailed` on failure.
pub(crate) fn spawn(
    program: &Program,
    workdir: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Child, String> {
    // An absolute working directory makes relative program paths unambiguous: they are
    // resolved against it here, not by the platform's exec rules.
    let workdir = std::path::absolute(workdir)
        .map_err(|e| format!("cannot resolve the working directory {}: {e}", workdir.display()))?;
    check_workdir(&workdir)?;
    let target = resolve(program, &workdir)?;

    let mut command = Command::new(&target.program);
    command
        .args(&target.args)
        .current_dir(&workdir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout or an interruption can signal the
        // step and everything it started at once (see kill.rs) — and so that the
        // terminal's Ctrl-C reaches only us; we decide how the step is stopped.
        .process_group(0)
        // Only a last resort if the executor itself is dropped; KillOnDrop handles the
        // group.
        .kill_on_drop(true);
    command.spawn().map_err(|e| spawn_error(&e, program, &target))
}

fn check_workdir(workdir: &Path) -> Result<(), String> {
    match std::fs::metadata(workdir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "the working directory {} is not a directory; fix `workdir` in the pipeline",
            workdir.display()
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "the working directory {} does not exist; create it or fix `workdir` in the pipeline",
            workdir.display()
        )),
        Err(e) => Err(format!("cannot use the working directory {}: {e}", workdir.display())),
    }
}

fn resolve(program: &Program, workdir: &Path) -> Result<Target, String> {
    match program {
        // The absolute path, so that a step's own `PATH` cannot lose the shell.
        Program::Shell(line) => Ok(Target {
            program: PathBuf::from(SHELL),
            args: vec!["-c".to_owned(), line.clone()],
            shown: SHELL.to_owned(),
        }),
        Program::Argv(argv) => {
            let Some((first, rest)) = argv.split_first() else {
                return Err("the step's argv is empty; give at least the program to run".to_owned());
            };
            if first.is_empty() {
                return Err("the step's program name is empty".to_owned());
            }
            // A bare name is looked up on PATH; anything with a slash is a path,
            // relative to the working directory like in a shell that `cd`ed there.
            let program = if first.contains('/') { workdir.join(first) } else { PathBuf::from(first) };
            Ok(Target { program, args: rest.to_vec(), shown: first.clone() })
        }
        Program::Script(path) => {
            let full = workdir.join(path);
            check_script(&full)?;
            Ok(Target { shown: full.display().to_string(), program: full, args: Vec::new() })
        }
        // The dispatcher expands a tool step into its wrapper's argv (`Program::expanded`)
        // before the step gets here: only it knows the build and the binary.
        Program::Tool(tool) => Err(format!("the {} step was not expanded into a command", tool.name())),
    }
}

/// Checks a script before running it, for messages better than the kernel's.
fn check_script(path: &Path) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "the script {} does not exist; check the path (relative paths start at the working directory)",
                path.display()
            ));
        }
        Err(e) => return Err(format!("cannot read the script {}: {e}", path.display())),
    };
    if meta.is_dir() {
        return Err(format!("the script {} is a directory, not a file", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("the script {} is not executable; chmod +x it", path.display()));
    }
    Ok(())
}

fn spawn_error(e: &io::Error, program: &Program, target: &Target) -> String {
    let shown = &target.shown;
    if let Program::Shell(_) = program {
        return format!("cannot run {SHELL} for a shell step: {e}");
    }
    match e.kind() {
        io::ErrorKind::NotFound if !target.program.is_absolute() => {
            format!("program `{shown}` not found on PATH; install it or give its full path")
        }
        // The file exists but exec says ENOENT: its #! interpreter is missing.
        io::ErrorKind::NotFound if target.program.exists() => format!(
            "cannot run {shown}: the interpreter on its #! line was not found; install it or fix that line"
        ),
        io::ErrorKind::NotFound => format!("program {shown} does not exist; check the path"),
        io::ErrorKind::PermissionDenied => {
            format!("{shown} is not executable (permission denied); chmod +x it")
        }
        _ if e.raw_os_error() == Some(ENOEXEC) => format!(
            "{shown} is not a program this machine can run (no #! line, or built for another platform)"
        ),
        _ => format!("cannot start {shown}: {e}"),
    }
}
