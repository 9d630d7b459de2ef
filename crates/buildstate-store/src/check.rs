//! Input checks every backend applies before writing: the bounds that the domain types
//! leave to the store (free-text catalog fields, artifact fields). Written once here so
//! that no backend accepts what another refuses.

use buildstate_core::{Artifact, CatalogItem, LeaseRequest, MAX_NOTE_BYTES, NewBuild, WorkerBeat};

use crate::{StoreError, StoreResult};

/// Free-text fields of catalog items: bounded, and single-line except descriptions.
fn check_text(field: &str, value: &str, multi_line: bool) -> StoreResult<()> {
    if value.len() > MAX_NOTE_BYTES {
        return Err(StoreError::InvalidInput(format!("the {field} is longer than {MAX_NOTE_BYTES} bytes")));
    }
    if value.chars().any(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\t'))) {
        return Err(StoreError::InvalidInput(format!("the {field} must not contain control characters")));
    }
    Ok(())
}

/// How deeply failure details may nest: far more than any tool writes, and well inside
/// what every JSON reader of an exported document (serde's 128) takes back.
pub const MAX_DETAILS_DEPTH: usize = 32;

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks a command before it is applied: what the rules leave to the store. A
/// failure's details are bounded in size and depth, however they arrived (the CLI
/// parses them bounded; the API takes them as JSON), so that whatever is stored exports
/// and imports back.
pub fn check_command(cmd: &buildstate_core::Command) -> StoreResult<()> {
    let buildstate_core::Command::Fail { failure, .. } = cmd else { return Ok(()) };
    let size = serde_json::to_string(&failure.details).map_or(usize::MAX, |s| s.len());
    if size > buildstate_core::MAX_DETAILS_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "the failure's details are {size} bytes of JSON; the limit is {} bytes",
            buildstate_core::MAX_DETAILS_BYTES
        )));
    }
    if failure.details.values().map(depth).max().unwrap_or(0) >= MAX_DETAILS_DEPTH {
        return Err(StoreError::InvalidInput(format!(
            "the failure's details nest deeper than {MAX_DETAILS_DEPTH} levels"
        )));
    }
    Ok(())
}

/// Checks a catalog item before `add_catalog_item` stores it.
pub fn check_catalog_item(item: &CatalogItem) -> StoreResult<()> {
    check_text("display name", item.display_name(), false)?;
    match item {
        CatalogItem::Platform(p) => {
            check_text("provider", &p.provider, false)?;
            p.region.as_deref().map_or(Ok(()), |r| check_text("region", r, false))
        }
        CatalogItem::Os(o) => check_text("family", &o.family, false),
        CatalogItem::ImageType(i) => check_text("description", &i.description, true),
    }
}

/// Checks the fields of an artifact that its types do not bound.
pub fn check_artifact(a: &Artifact) -> StoreResult<()> {
    let field = |what: &str, value: &str, max: usize| {
        if value.trim().is_empty() {
            Err(StoreError::InvalidInput(format!("the artifact {what} is empty")))
        } else if value.len() > max {
            Err(StoreError::InvalidInput(format!("the artifact {what} is longer than {max} bytes")))
        } else if value.chars().any(char::is_control) {
            Err(StoreError::InvalidInput(format!("the artifact {what} must not contain control characters")))
        } else {
            Ok(())
        }
    };
    field("name", &a.name, 256)?;
    field("URI", &a.uri, 4096)?;
    if let Some(region) = &a.region {
        field("region", region, 128)?;
    }
    if let Some(cloud) = &a.cloud {
        field("cloud", cloud, 128)?;
    }
    // Every backend stores sizes as signed 64-bit integers (SQLite, PostgreSQL `bigint`).
    if a.size_bytes.is_some_and(|s| i64::try_from(s).is_err()) {
        return Err(StoreError::InvalidInput("the artifact size does not fit in 63 bits".into()));
    }
    Ok(())
}

/// Checks the free-form fields of a new build that the types do not bound.
pub fn check_new_build(new: &NewBuild) -> StoreResult<()> {
    if new.created_by.len() > 256 {
        return Err(StoreError::InvalidInput("created-by is longer than 256 bytes".into()));
    }
    if let Some(url) = &new.ci_url
        && (url.len() > 2048 || url.chars().any(char::is_control))
    {
        return Err(StoreError::InvalidInput(
            "the CI URL must be at most 2048 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// Checks who asks for a lease: the owner and host name the holder in messages and
/// tables, so they must be short, single-line and not blank.
pub fn check_lease_request(request: &LeaseRequest) -> StoreResult<()> {
    for (what, value) in [("owner", &request.owner), ("host", &request.host)] {
        let value = value.trim();
        if value.is_empty() {
            return Err(StoreError::InvalidInput(format!("the lease {what} is empty")));
        }
        if value.len() > 256 {
            return Err(StoreError::InvalidInput(format!("the lease {what} is longer than 256 bytes")));
        }
        if value.chars().any(char::is_control) {
            return Err(StoreError::InvalidInput(format!(
                "the lease {what} must not contain control characters"
            )));
        }
    }
    Ok(())
}

/// Checks what a worker says about itself before its record is written: the name and
/// host are what `workers` lists, bounded like a lease's holder (a worker's name is the
/// owner of its leases).
pub fn check_worker_beat(beat: &WorkerBeat) -> StoreResult<()> {
    for (what, value) in [("name", &beat.name), ("host", &beat.host)] {
        if value.trim().is_empty() {
            return Err(StoreError::InvalidInput(format!("the worker {what} is empty")));
        }
        if value.len() > 256 {
            return Err(StoreError::InvalidInput(format!("the worker {what} is longer than 256 bytes")));
        }
        if value.chars().any(char::is_control) {
            return Err(StoreError::InvalidInput(format!(
                "the worker {what} must not contain control characters"
            )));
        }
    }
    Ok(())
}
