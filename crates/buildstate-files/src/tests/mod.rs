//! Tests of what is particular to the file backend: the files on disk, crashes, hand
//! edits, and several processes on one directory. The contract itself is checked by
//! the conformance suite (`tests/conformance.rs`).

mod crash;
mod damage;
mod disk;
mod hostile;
mod waiting;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use buildstate_core::{Build, Command, Name, NewBuild, StateCode};
use buildstate_store::{Guard, Store, StoreError};

use crate::FileStore;

fn name(s: &str) -> Name {
    Name::new(s).expect("valid name")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn seed(store: &FileStore) -> NewBuild {
    buildstate_store::conformance::seed_sample_catalog(store, "tests").await
}

fn complete(state: StateCode) -> Command {
    Command::Complete { state, actor: "tests".into(), exit_code: Some(0), log: None }
}

/// A store in a fresh directory with one build moved a few milestones on.
async fn store_with_build(dir: &Path) -> (FileStore, Build) {
    let store = FileStore::open(dir).expect("open");
    let new = seed(&store).await;
    let b = store.create_build(&new).await.expect("create");
    for _ in 0..3 {
        let cur = store.build(b.id).await.expect("read");
        store.apply(b.id, &complete(cur.state), Guard::none()).await.expect("complete");
    }
    let b = store.build(b.id).await.expect("read");
    (store, b)
}

/// Every file under `dir`, recursively, relative to it.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("under dir").to_owned());
            }
        }
    }
    out.sort();
    out
}

/// The message of a `Backend` error, which must name `file`.
fn backend_naming(result: Result<impl std::fmt::Debug, StoreError>, file: &Path) -> String {
    match result {
        Err(e @ StoreError::Backend { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&file.display().to_string()), "the error names {}: {text}", file.display());
            text
        }
        other => panic!("expected a Backend error naming {}, got {other:?}", file.display()),
    }
}

/// The message of a bad-document error (exit 7 in the CLI, like a bad import), which
/// must name `file`: what a build's file that cannot be read as one gives.
fn document_naming(result: Result<impl std::fmt::Debug, StoreError>, file: &Path) -> String {
    match result {
        Err(e @ StoreError::Document(_)) => {
            let text = e.to_string();
            assert!(text.contains(&file.display().to_string()), "the error names {}: {text}", file.display());
            text
        }
        other => panic!("expected a Document error naming {}, got {other:?}", file.display()),
    }
}
