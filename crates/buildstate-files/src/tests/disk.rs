//! The files on disk: the export format, the layout, the format marker.

use buildstate_core::{Artifact, ArtifactKind, BuildDocument, CatalogKind};
use buildstate_store::{Store, StoreError, now};

use super::*;
use crate::layout::{FORMAT_VERSION, Layout};

#[test]
fn a_build_file_is_its_export_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let (store, b) = store_with_build(dir.path()).await;
        let artifact = Artifact {
            name: "ami/us-east-1".into(),
            kind: ArtifactKind::Image,
            uri: "ami-0abc".into(),
            region: None,
            cloud: Some("aws".into()),
            size_bytes: None,
            sha256: None,
            created_at: now(),
            milestone: None,
            invalidated_at: None,
        };
        store.add_artifact(b.id, &artifact, buildstate_store::Guard::none()).await.expect("add artifact");
        let path = dir.path().join("builds").join(format!("{}.json", b.number));
        let text = std::fs::read_to_string(&path).expect("the build's file is named after its number");
        let parts = BuildDocument::parse(&text).expect("the file parses as an export document");
        let exported = store.export_build(b.id).await.expect("export");
        assert_eq!(BuildDocument::from_parts(parts), exported, "the file is exactly the export");
        assert!(text.contains("\n  \"current_state\": 15,"), "pretty, with the state at top level:\n{text}");
        assert_eq!(exported.provider.as_deref(), Some("aws"));
        // The store stamps when it recorded the artifact, and the milestone the build is at.
        let at = exported.artifacts.first().map_or(artifact.created_at, |a| a.created_at);
        let recorded = Artifact { milestone: Some(b.state), created_at: at, ..artifact };
        assert_eq!(exported.artifacts, vec![recorded], "recorded at the build's milestone");
    });
}

#[test]
fn open_creates_the_documented_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("a/b/store");
    let store = FileStore::open(&root).expect("open creates missing directories");
    assert_eq!(store.dir(), root);
    let files: Vec<String> = all_files(&root).iter().map(|p| p.display().to_string()).collect();
    assert_eq!(files, [".lock", "catalog.json", "format", "index.json"]);
    assert!(root.join("builds").is_dir() && root.join("leases").is_dir());
    let marker = std::fs::read_to_string(root.join("format")).expect("marker");
    assert_eq!(marker, format!("buildstate-files/{FORMAT_VERSION}\n"));
    let catalog = runtime().block_on(store.catalog(CatalogKind::Platform)).expect("empty catalog");
    assert!(catalog.is_empty());
    FileStore::open(&root).expect("reopen");
}

#[test]
fn a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("format"), "buildstate-files/2\n").expect("write marker");
    match FileStore::open(dir.path()) {
        Err(StoreError::Unavailable { location, reason }) => {
            assert_eq!(location, dir.path().display().to_string());
            assert!(reason.contains("newer buildstate") && reason.contains("format 2"), "{reason}");
        }
        other => panic!("a newer format → Unavailable, got {other:?}"),
    }
    assert_eq!(all_files(dir.path()), [PathBuf::from("format")], "nothing was created");
    std::fs::write(dir.path().join("format"), "SQLite format 3\0").expect("write junk");
    assert!(matches!(FileStore::open(dir.path()), Err(StoreError::Unavailable { .. })));
}

#[test]
fn a_path_that_is_a_file_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("buildstate.db");
    std::fs::write(&file, "not a directory").expect("write");
    assert!(matches!(FileStore::open(&file), Err(StoreError::Unavailable { .. })));
}

#[test]
fn writes_leave_no_temporary_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let (store, b) = store_with_build(dir.path()).await;
        let lease = buildstate_core::LeaseRequest {
            owner: "ci".into(),
            host: "h".into(),
            pid: 1,
            ttl: std::time::Duration::from_secs(30),
        };
        let l = store.acquire_lease(b.id, &lease).await.expect("acquire");
        store.release_lease(b.id, l.token).await.expect("release");
    });
    let files = all_files(dir.path());
    assert!(
        files.iter().all(|f| !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))),
        "temporary files left behind: {files:?}"
    );
    assert_eq!(files.len(), 6, "format, catalog, index, lock, one build, one lease: {files:?}");
}

#[cfg(unix)]
#[test]
fn files_get_the_usual_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    FileStore::open(dir.path()).expect("open");
    let reference = dir.path().join("reference");
    std::fs::write(&reference, "x").expect("write");
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let layout = Layout::new(dir.path());
    assert_eq!(mode(&layout.catalog_file()), mode(&reference), "the umask decides, not tempfile's 0600");
}
