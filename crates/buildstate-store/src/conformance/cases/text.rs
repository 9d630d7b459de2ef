use buildstate_core::{
    Artifact, BuildDocument, CatalogItem, CatalogKind, Command, FailureClass, ImageType, MAX_MESSAGE_BYTES,
    MAX_NOTE_BYTES, MetaValue, Platform, clean_text,
};

use crate::conformance::Harness;
use crate::{BuildFilter, FailureFilter, Guard, StoreError};

use super::support::*;

pub async fn hostile_text_round_trips_by_policy(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let new = seed(st).await;
    // A bystander whose data must not be damaged by anything below.
    let bystander = rich_build(st).await;
    let bystander_doc = export(st, bystander.id).await;
    let catalog_before: Vec<Vec<CatalogItem>> = {
        let mut v = Vec::new();
        for kind in CatalogKind::ALL {
            v.push(st.catalog(*kind).await.expect("list catalog"));
        }
        v
    };

    let b = create(st, &new).await;
    let mut info = failure("ansible", FailureClass::Transient, HOSTILE);
    info.component = Some(HOSTILE.into());
    info.details.insert("log_tail".into(), serde_json::json!(HOSTILE));
    let failed = run(st, b.id, fail_with(0, info.clone(), 5)).await;
    let stored_message = clean_text(HOSTILE, MAX_MESSAGE_BYTES);
    let last = history(st, b.id).await.pop().expect("history is not empty");
    assert_eq!(
        last.message.as_deref(),
        Some(stored_message.as_str()),
        "error messages are stored cleaned, else verbatim"
    );
    assert!(stored_message.contains("'; DROP TABLE builds; --") && stored_message.contains("\\u{0}nul"));
    let rec = &st
        .failures(&FailureFilter { build: Some(b.id), ..FailureFilter::default() })
        .await
        .expect("failures")[0];
    assert_eq!(rec, &failed.failures[0], "the failure record is stored as the rules made it");
    assert_eq!(rec.info.message, stored_message);
    assert_eq!(rec.info.component.as_deref(), Some(clean_text(HOSTILE.trim(), MAX_NOTE_BYTES).as_str()));
    assert_eq!(rec.info.details, info.details, "details JSON round-trips exactly");

    run(st, b.id, retry(false, Some(HOSTILE))).await;
    let reason = clean_text(HOSTILE.trim(), MAX_NOTE_BYTES);
    let last = history(st, b.id).await.pop().expect("history is not empty");
    assert_eq!(last.message.as_deref(), Some(reason.as_str()), "reasons are stored cleaned");
    run(st, b.id, set_meta("note", Some(HOSTILE))).await;
    run(st, b.id, set_meta("sql", Some("'); DELETE FROM builds; --"))).await;
    let meta = reload(st, b.id).await.metadata;
    assert_eq!(meta.get(&key("note")).map(MetaValue::as_str), Some(clean_text(HOSTILE, usize::MAX).as_str()));
    assert_eq!(meta.get(&key("sql")).map(MetaValue::as_str), Some("'); DELETE FROM builds; --"));

    // A 1 MiB message: bounded to MAX_MESSAGE_BYTES, keeping its head and its tail.
    let huge = format!("HEAD {} \0 {} TAIL", "x".repeat(512 * 1024), "é".repeat(256 * 1024));
    assert!(huge.len() > 1024 * 1024);
    run(st, b.id, start(0)).await;
    run(st, b.id, fail_with(0, failure("script", FailureClass::Transient, &huge), 5)).await;
    let expected = clean_text(&huge, MAX_MESSAGE_BYTES);
    let last = history(st, b.id).await.pop().expect("history is not empty");
    let got = last.message.expect("a failed event has a message");
    assert!(got.len() <= MAX_MESSAGE_BYTES, "a stored message is at most {MAX_MESSAGE_BYTES} bytes");
    assert!(got.starts_with("HEAD ") && got.ends_with(" TAIL"), "head and tail are kept");
    assert_eq!(got, expected, "the 1 MiB message is stored as clean_text made it");
    let newest = FailureFilter { build: Some(b.id), limit: Some(1), ..FailureFilter::default() };
    assert_eq!(st.failures(&newest).await.expect("failures")[0].info.message, expected);

    run(st, b.id, cancel(HOSTILE)).await;
    let doc = export(st, b.id).await;
    let text = serde_json::to_string(&doc).expect("a document serializes");
    assert_eq!(
        BuildDocument::from_parts(BuildDocument::parse(&text).expect("parses")),
        doc,
        "hostile text exports losslessly"
    );

    // Quotes and SQL in catalog and artifact text are data.
    let quoted = CatalogItem::ImageType(ImageType {
        name: name("quoted"),
        display_name: "Bobby'); DROP TABLE builds; --".into(),
        description: "\"double\" and 'single' and `back` quotes; 100% _wild_".into(),
    });
    st.add_catalog_item(&quoted).await.expect("add an image type with quotes");
    assert_eq!(st.catalog_item(CatalogKind::ImageType, &name("quoted")).await.expect("show"), quoted);
    let art =
        Artifact { name: "it's; DROP TABLE artifacts; --".into(), ..artifact("x", "s3://b/k?x='1'&y=\"2\"") };
    st.add_artifact(b.id, &art, Guard::none()).await.expect("add an artifact with quotes");
    let stored = recorded_at(&art, i64::from(reload(st, b.id).await.state.get()));
    assert!(unstamped(st.artifacts(b.id).await.expect("artifacts")).contains(&stored));

    assert_eq!(export(st, bystander.id).await, bystander_doc, "the bystander build is undamaged");
    assert_eq!(st.list_builds(&BuildFilter::default()).await.expect("list").len(), 2);
    for (kind, before) in CatalogKind::ALL.iter().zip(&catalog_before) {
        let now = st.catalog(*kind).await.expect("list catalog");
        assert!(before.iter().all(|i| now.contains(i)), "the {kind} catalog is undamaged");
    }
}

fn raw_controls(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Whatever a caller passes, no stored text keeps raw control characters (the policy
/// of `clean_text`): stores either clean it or refuse it with `InvalidInput`.
pub async fn no_raw_control_characters_are_stored(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let mut new = seed(st).await;
    new.created_by = "ci\0bot\x1b[2J".into();
    let id = match st.create_build(&new).await {
        Err(StoreError::InvalidInput(_)) => create(st, &seed(st).await).await.id,
        Ok(b) => b.id,
        Err(e) => {
            panic!("a created-by with control characters: clean it or InvalidInput, got {e}")
        }
    };
    let hostile_log = Command::Start {
        state: code(0),
        actor: "runner\0\x1b]0;pwned\x07".into(),
        log: Some("/var/log/build\0.log\x1b[2J".into()),
        force: false,
    };
    match st.apply(id, &hostile_log, Guard::none()).await {
        Ok(_) | Err(StoreError::InvalidInput(_)) => {}
        Err(e) => {
            panic!("a start with control characters in its log pointer: clean it or InvalidInput, got {e}")
        }
    }
    let art = Artifact {
        name: "disk\0.raw".into(),
        uri: "s3://b/\x1b[2J".into(),
        cloud: Some("aws\x1b]0;pwned\x07".into()),
        ..artifact("x", "y")
    };
    match st.add_artifact(id, &art, Guard::none()).await {
        Ok(()) | Err(StoreError::InvalidInput(_)) => {}
        Err(e) => {
            panic!("an artifact with control characters: clean it or InvalidInput, got {e}")
        }
    }
    let shouty = CatalogItem::Platform(Platform {
        name: name("shouty"),
        display_name: "Shouty\x1b[2J\x07".into(),
        provider: "aws\0".into(),
        region: Some("us-east-1\r".into()),
    });
    match st.add_catalog_item(&shouty).await {
        Ok(()) | Err(StoreError::InvalidInput(_)) => {}
        Err(e) => {
            panic!("a platform with control characters: clean it or InvalidInput, got {e}")
        }
    }
    let doc = export(st, id).await;
    let mut dirty = Vec::new();
    if let Ok(CatalogItem::Platform(p)) = st.catalog_item(CatalogKind::Platform, &name("shouty")).await {
        for text in [&p.display_name, &p.provider, p.region.as_ref().unwrap_or(&String::new())] {
            if raw_controls(text) {
                dirty.push(format!("platform field {text:?}"));
            }
        }
    }
    if raw_controls(&doc.created_by) {
        dirty.push(format!("created_by {:?}", doc.created_by));
    }
    for e in &doc.history {
        for (field, text) in
            [("actor", Some(&e.actor)), ("message", e.message.as_ref()), ("log", e.log.as_ref())]
        {
            if let Some(t) = text.filter(|t| raw_controls(t)) {
                dirty.push(format!("history {} {field} {t:?}", e.seq));
            }
        }
    }
    for a in &doc.artifacts {
        if raw_controls(&a.name) || raw_controls(&a.uri) || a.cloud.as_deref().is_some_and(raw_controls) {
            dirty.push(format!("artifact {:?} {:?} {:?}", a.name, a.uri, a.cloud));
        }
    }
    assert!(dirty.is_empty(), "stored text with raw control characters: {dirty:?}");
}

// ── concurrency: no lost update ──────────────────────────────────────────────────

/// Every text field, filled to its limit with control characters (which grow sixfold
/// when escaped), is either refused or stored so that every read of the store still
/// works: a row that cannot be read back breaks `build list`, `export` and the worker
/// for every build, not just this one.
pub async fn every_text_field_reads_back_at_its_limit(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let mut new = seed(st).await;
    let esc = |bytes: usize| "\x1b".repeat(bytes);
    new.created_by = esc(256);
    new.ci_url = Some(format!("https://ci.example/{}", esc(100)));
    let b = match st.create_build(&new).await {
        Ok(b) => b,
        Err(StoreError::InvalidInput(_)) => create(st, &seed(st).await).await,
        Err(e) => panic!("a create with hostile text is stored or refused as invalid, got {e}"),
    };
    let tries: Vec<Command> = vec![
        Command::Start { state: code(0), actor: esc(256), log: Some(esc(MAX_NOTE_BYTES)), force: false },
        Command::SetMeta {
            key: key("colour"),
            value: MetaValue::new(&key("colour"), &esc(MAX_NOTE_BYTES / 6)).ok(),
        },
        fail_with(
            0,
            {
                let mut f = failure("ansible", FailureClass::Transient, &esc(MAX_MESSAGE_BYTES));
                f.component = Some(esc(MAX_NOTE_BYTES));
                f.details.insert("tail".into(), serde_json::json!(esc(64 * 1024)));
                f
            },
            5,
        ),
        retry(false, Some(&esc(MAX_NOTE_BYTES))),
        skip(0, &esc(MAX_NOTE_BYTES)),
        rewind(0, &esc(MAX_NOTE_BYTES)),
        cancel(&esc(MAX_NOTE_BYTES)),
    ];
    for cmd in tries {
        let name = cmd.name();
        match st.apply(b.id, &cmd, Guard::none()).await {
            Ok(_) | Err(StoreError::Rejected(_)) | Err(StoreError::InvalidInput(_)) => {}
            Err(e) => panic!("{name} with hostile text is stored or refused, got {e}"),
        }
        readable(st, b.id, name).await;
    }
    let _ = st.resolve_failures(b.id, None, &esc(MAX_NOTE_BYTES), Guard::none()).await;
    readable(st, b.id, "resolve_failures").await;
    let mut a = artifact("disk", "file:///images/disk.raw");
    a.region = Some(esc(100));
    a.cloud = Some(esc(100));
    let _ = st.add_artifact(b.id, &a, Guard::none()).await;
    readable(st, b.id, "add_artifact").await;
}

/// Every way of reading the build works, and an export imports back as itself.
async fn readable(st: &dyn crate::Store, id: buildstate_core::BuildId, after: &str) {
    let listed = st.list_builds(&BuildFilter::default()).await;
    assert!(listed.is_ok(), "after {after}: list_builds fails: {listed:?}");
    let doc = st.export_build(id).await.unwrap_or_else(|e| panic!("after {after}: export fails: {e}"));
    let number = doc.build_number.to_string();
    st.find_build(&number).await.unwrap_or_else(|e| panic!("after {after}: find fails: {e}"));
    st.failures(&FailureFilter::default()).await.unwrap_or_else(|e| panic!("after {after}: failures: {e}"));
    let text = serde_json::to_string(&doc).expect("encode");
    let parts = BuildDocument::parse(&text)
        .unwrap_or_else(|e| panic!("after {after}: the export does not parse: {e}"));
    assert_eq!(BuildDocument::from_parts(parts), doc, "after {after}: the export is not a fixed point");
}
