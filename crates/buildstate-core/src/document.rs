//! The export format: one JSON document per build (SPEC §2), lossless both ways.
//!
//! The same document is what object-storage copies hold, so importing validates
//! everything a hand edit or a torn upload could break, and refuses rather than guess.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    Artifact, Build, BuildId, BuildNumber, BuildStatus, FailureRecord, HistoryEvent, MAX_MESSAGE_BYTES,
    MAX_NOTE_BYTES, MetaKey, MetaValue, Name, StateCatalog, StateCode, clean_text,
};

/// The `format` field of every document this version writes.
pub const FORMAT: &str = "buildstate.build/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildDocument {
    pub format: String,
    pub build_id: BuildId,
    pub build_number: BuildNumber,
    pub current_state: StateCode,
    pub state_name: String,
    pub status: BuildStatus,
    pub needs_intervention: bool,
    pub attempt: u32,
    pub attempt_started_at: Option<Timestamp>,
    /// The platform's cloud provider, when the catalog knows it.
    pub provider: Option<String>,
    pub platform: Name,
    pub os: Name,
    pub image_type: Name,
    pub catalog: StateCatalog,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub ci_url: Option<String>,
    pub version: u64,
    pub metadata: BTreeMap<MetaKey, MetaValue>,
    pub history: Vec<HistoryEvent>,
    /// Every failure record ("error log"), resolved or not.
    pub errors: Vec<FailureRecord>,
    pub artifacts: Vec<Artifact>,
    /// `bs1:<build id>:<state>:<version>` — what a worker elsewhere needs to continue
    /// this exact build at this exact point, and a checksum of the fields it names.
    pub resume_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum DocumentError {
    #[error("not a buildstate build document: {0}")]
    Malformed(String),
    #[error("unsupported document format `{0}` (this buildstate reads `{FORMAT}`)")]
    Format(String),
    #[error("inconsistent build document: {0}")]
    Inconsistent(String),
}

impl BuildDocument {
    /// Text from a file gets the same policy as text from a person (`clean_text`). The
    /// policy is idempotent, so documents this program wrote come back unchanged.
    fn clean_text_fields(&mut self) {
        let note = |s: &mut String| *s = clean_text(s, MAX_NOTE_BYTES);
        let message = |s: &mut String| *s = clean_text(s, MAX_MESSAGE_BYTES);
        self.created_by = clean_text(&self.created_by, 256);
        if let Some(url) = &mut self.ci_url {
            note(url);
        }
        for e in &mut self.history {
            e.actor = clean_text(&e.actor, 256);
            e.message.as_mut().map(message);
            e.log.as_mut().map(note);
        }
        for f in &mut self.errors {
            message(&mut f.info.message);
            f.info.component.as_mut().map(note);
            f.resolution.as_mut().map(note);
        }
        for a in &mut self.artifacts {
            note(&mut a.name);
            note(&mut a.uri);
            a.region.as_mut().map(note);
            a.cloud.as_mut().map(note);
        }
    }
}

/// The parts of a build that a document carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildParts {
    pub build: Build,
    pub provider: Option<String>,
    pub history: Vec<HistoryEvent>,
    pub failures: Vec<FailureRecord>,
    pub artifacts: Vec<Artifact>,
}

fn resume_token(id: &BuildId, state: StateCode, version: u64) -> String {
    format!("bs1:{id}:{state}:{version}")
}

impl BuildDocument {
    pub fn from_parts(p: BuildParts) -> Self {
        let b = p.build;
        BuildDocument {
            format: FORMAT.to_owned(),
            resume_token: resume_token(&b.id, b.state, b.version),
            build_id: b.id,
            build_number: b.number.clone(),
            current_state: b.state,
            state_name: b.state_name().to_owned(),
            status: b.status,
            needs_intervention: b.needs_intervention,
            attempt: b.attempt,
            attempt_started_at: b.attempt_started_at,
            provider: p.provider,
            platform: b.platform,
            os: b.os,
            image_type: b.image_type,
            catalog: b.catalog,
            created_at: b.created_at,
            started_at: b.started_at,
            ended_at: b.ended_at,
            updated_at: b.updated_at,
            created_by: b.created_by,
            ci_url: b.ci_url,
            version: b.version,
            metadata: b.metadata,
            history: p.history,
            errors: p.failures,
            artifacts: p.artifacts,
        }
    }

    /// Parses and validates a document.
    pub fn parse(text: &str) -> Result<BuildParts, DocumentError> {
        let doc: BuildDocument =
            serde_json::from_str(text).map_err(|e| DocumentError::Malformed(e.to_string()))?;
        doc.into_parts()
    }

    /// Validates the document and splits it into what a store keeps.
    pub fn into_parts(mut self) -> Result<BuildParts, DocumentError> {
        self.clean_text_fields();
        let bad = |m: String| Err(DocumentError::Inconsistent(m));
        if self.format != FORMAT {
            return Err(DocumentError::Format(crate::text::shorten(&self.format, 40)));
        }
        if self.resume_token != resume_token(&self.build_id, self.current_state, self.version) {
            return bad("resume_token does not match build_id, current_state and version".into());
        }
        if !self.catalog.contains(self.current_state) {
            return bad(format!("current_state {} is not in the document's catalog", self.current_state));
        }
        if self.state_name != self.catalog.name_of(self.current_state) {
            return bad(format!(
                "state_name `{}` is not the catalog's name for {}",
                self.state_name, self.current_state
            ));
        }
        for (i, e) in self.history.iter().enumerate() {
            if e.seq != i as u64 + 1 {
                return bad(format!(
                    "history entry {} has seq {} (history must run 1, 2, 3, …)",
                    i + 1,
                    e.seq
                ));
            }
            if !self.catalog.contains(e.state) {
                return bad(format!("history entry {} names state {} outside the catalog", e.seq, e.state));
            }
        }
        for (i, f) in self.errors.iter().enumerate() {
            if f.number != i as u32 + 1 || f.build_id != self.build_id {
                return bad(format!("error {} is numbered {} or belongs to another build", i + 1, f.number));
            }
        }
        let history_len = self.history.len() as u64;
        if history_len == 0 {
            return bad("history is empty (every build has at least its `created` event)".into());
        }
        let build = Build {
            id: self.build_id,
            number: self.build_number,
            platform: self.platform,
            os: self.os,
            image_type: self.image_type,
            catalog: self.catalog,
            state: self.current_state,
            status: self.status,
            needs_intervention: self.needs_intervention,
            attempt: self.attempt,
            attempt_started_at: self.attempt_started_at,
            created_at: self.created_at,
            started_at: self.started_at,
            ended_at: self.ended_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            ci_url: self.ci_url,
            metadata: self.metadata,
            version: self.version,
            history_len,
            failure_count: self.errors.len() as u32,
        };
        build.check_invariants().map_err(DocumentError::Inconsistent)?;
        let parts = BuildParts {
            build,
            provider: self.provider,
            history: self.history,
            failures: self.errors,
            artifacts: self.artifacts,
        };
        crate::replay::check(&parts)?;
        Ok(parts)
    }
}
