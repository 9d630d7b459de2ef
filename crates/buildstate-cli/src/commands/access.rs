//! What each command does with the store, which decides whether a missing store is an
//! error or is created (see `open.rs`).

use super::{Command, build, catalog, sync};
use crate::open::Access;

impl Command {
    /// Commands that can only act on what is already stored — every read, and every
    /// write to an existing build, catalog item or failure — need an existing store:
    /// creating an empty one for them would only hide a mistyped `--db`. Only the
    /// commands that can put the first things in a store may create it; a new command
    /// group must be placed here (the match names every one).
    pub fn access(&self) -> Access {
        use Access::{Create, Existing, Init};
        match self {
            Command::Init(_) => Init,
            Command::Platform(catalog::Args::Add(_))
            | Command::Os(catalog::Args::Add(_))
            | Command::ImageType(catalog::Args::Add(_))
            | Command::Build(build::Args::Create(_))
            | Command::Run(_)
            | Command::Enqueue(_)
            | Command::Worker(_)
            | Command::Sync(sync::Args::Pull { .. })
            | Command::Import(_) => Create,
            // `--from` pulls the build into the store first: a fresh machine's first command.
            Command::Resume(a) if a.pulls() => Create,
            Command::Platform(_)
            | Command::Os(_)
            | Command::ImageType(_)
            | Command::Build(_)
            | Command::State(_)
            | Command::Retry(_)
            | Command::Rewind(_)
            | Command::Resume(_)
            | Command::Wait(_)
            | Command::Exec(_)
            | Command::Packer(_)
            | Command::Kept(_)
            | Command::AnsiblePlaybook(_)
            | Command::Ansible(_)
            | Command::Logs(_)
            | Command::Workers
            | Command::Sync(_)
            | Command::Report(_)
            | Command::History(_)
            | Command::Failure(_)
            | Command::Lease(_)
            | Command::Meta(_)
            | Command::Artifact(_)
            | Command::Export(_)
            | Command::Prune(_)
            // A server needs tokens, which need a store: a mistyped --db is an error,
            // not a new, empty store served to the world.
            | Command::Serve(_)
            | Command::Token(_)
            | Command::Webhook(_) => Existing,
            // Run before any store is opened (`run_without_store`, `cli::run`).
            Command::Demo(_) | Command::Concourse(_) | Command::Config(_) | Command::Completions(_) | Command::Man(_) | Command::New(_) | Command::Generate(_) => Existing,
        }
    }
}
