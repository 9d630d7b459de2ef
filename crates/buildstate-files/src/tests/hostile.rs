//! What a hostile hand can put in the store's directory: special files, links, huge
//! files, documents of nothing. Nothing hangs or reads without bound, and each is a bad
//! document naming its file.

use buildstate_store::{BuildFilter, FailureFilter};

use super::*;
use crate::atomic::{self, MAX_FILE_BYTES, Unreadable};

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn the_reader_refuses_what_is_not_a_bounded_regular_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name);
    mkfifo(&p("fifo"));
    std::os::unix::fs::symlink("/dev/zero", p("zero")).expect("link");
    std::fs::write(p("target"), "{}").expect("write");
    std::os::unix::fs::symlink(p("target"), p("link")).expect("link");
    std::fs::create_dir(p("dir")).expect("mkdir");
    let over = std::fs::File::create(p("over")).expect("create");
    over.set_len(MAX_FILE_BYTES + 1).expect("grow");
    std::fs::write(p("latin1"), b"caf\xe9").expect("write");

    for name in ["fifo", "zero", "link", "dir"] {
        assert!(matches!(atomic::read_text(&p(name)), Err(Unreadable::NotRegular(_))), "{name}");
    }
    assert!(matches!(atomic::read_text(&p("over")), Err(Unreadable::TooLarge)));
    assert!(matches!(atomic::read_text(&p("latin1")), Err(Unreadable::NotUtf8(_))));
    assert_eq!(atomic::read_text(&p("target")).expect("regular").as_deref(), Some("{}"));
    assert!(atomic::read_text(&p("missing")).expect("missing is no error").is_none());
}

/// A file the index does not cover and that holds no build: reported by every use that
/// needs it, never overwritten by a new build given its number.
#[test]
fn an_unreadable_file_is_reported_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, fine) = rt.block_on(store_with_build(dir.path()));
    let path = dir.path().join("builds/taken-1.json");
    std::fs::write(&path, "{}\n").expect("write");

    match rt.block_on(store.list_builds(&BuildFilter::default())) {
        Err(StoreError::Backend { source, .. }) => {
            let partial = source.downcast::<crate::UnreadableBuilds>().expect("partial");
            assert_eq!(partial.builds.iter().map(|b| b.id).collect::<Vec<_>>(), [fine.id]);
            assert_eq!(partial.unreadable.len(), 1);
            assert!(partial.unreadable[0].1.contains(&path.display().to_string()), "{partial:?}");
        }
        other => panic!("expected the partial listing, got {other:?}"),
    }
    document_naming(rt.block_on(store.find_build("taken-1")), &path);
    // Every failure but those of one build would be a wrong answer, not a partial one.
    document_naming(rt.block_on(store.failures(&FailureFilter::default())), &path);
    let mut new = rt.block_on(seed(&store));
    new.number = Some(buildstate_core::BuildNumber::new("taken-1").expect("number"));
    assert!(rt.block_on(store.create_build(&new)).is_err(), "the number is not free");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "{}\n", "the file is left as it was");
    // The store still works for its readable build.
    rt.block_on(store.build(fine.id)).expect("the readable build");
}
