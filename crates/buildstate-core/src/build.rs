use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    BuildId, BuildNumber, BuildStatus, EventKind, HistoryEvent, MetaKey, MetaValue, Name, StateCatalog,
    StateCode,
};

/// A build of one (OS × image type × platform): where it is and how it stands.
///
/// `state` is how far the build got: the milestone it is working on, or failed at.
/// `status` is how it stands. The two are independent on purpose: a build failed at 45
/// keeps 45, and a retry resumes there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Build {
    pub id: BuildId,
    pub number: BuildNumber,
    pub platform: Name,
    pub os: Name,
    pub image_type: Name,
    pub catalog: StateCatalog,
    pub state: StateCode,
    pub status: BuildStatus,
    /// Retries exhausted or the failure is persistent: a person must decide.
    pub needs_intervention: bool,
    /// Attempts made at `state` since the build reached it (or was rewound to it).
    pub attempt: u32,
    /// When the open attempt at `state` started; `None` when no attempt is running.
    pub attempt_started_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub ci_url: Option<String>,
    pub metadata: BTreeMap<MetaKey, MetaValue>,
    /// Bumped by every change: the compare-and-swap token of stores and object-store copies.
    pub version: u64,
    /// Number of history events; the next event gets `history_len + 1`.
    pub history_len: u64,
    /// Number of failure records; the next failure gets `failure_count + 1`.
    pub failure_count: u32,
}

/// What a caller supplies to create a build; the store allocates the id and number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewBuild {
    pub platform: Name,
    pub os: Name,
    pub image_type: Name,
    /// A chosen build number; `None` lets the store allocate `<os>-<image>-<platform>-<date>-NNN`.
    pub number: Option<BuildNumber>,
    pub catalog: StateCatalog,
    pub created_by: String,
    pub ci_url: Option<String>,
    pub metadata: BTreeMap<MetaKey, MetaValue>,
}

impl Build {
    /// A new build at milestone 0, pending, with its `created` event.
    pub fn create(id: BuildId, number: BuildNumber, new: NewBuild, at: Timestamp) -> (Build, HistoryEvent) {
        let created_by = crate::clean_text(&new.created_by, 256);
        let build = Build {
            id,
            number,
            platform: new.platform,
            os: new.os,
            image_type: new.image_type,
            catalog: new.catalog,
            state: StateCode::INITIAL,
            status: BuildStatus::Pending,
            needs_intervention: false,
            attempt: 0,
            attempt_started_at: None,
            created_at: at,
            started_at: None,
            ended_at: None,
            updated_at: at,
            created_by: created_by.clone(),
            ci_url: new.ci_url,
            metadata: new.metadata,
            version: 1,
            history_len: 1,
            failure_count: 0,
        };
        let event = HistoryEvent::new(1, at, EventKind::Created, StateCode::INITIAL, &created_by);
        (build, event)
    }

    /// Name of the current milestone.
    pub fn state_name(&self) -> &str {
        self.catalog.name_of(self.state)
    }

    /// An attempt at `state` has started and not ended.
    pub fn attempt_open(&self) -> bool {
        self.attempt_started_at.is_some()
    }

    /// Delivered: milestone 100 completed.
    pub fn is_delivered(&self) -> bool {
        self.status == BuildStatus::Completed
    }

    /// Wall time from first start to end (or to `now` while in flight).
    pub fn duration_ms(&self, now: Timestamp) -> Option<u64> {
        let start = self.started_at?;
        let end = self.ended_at.unwrap_or(now);
        u64::try_from(end.as_millisecond() - start.as_millisecond()).ok()
    }

    /// The invariants every reachable build satisfies. The store checks them before
    /// writing; the property tests check them after every command.
    pub fn check_invariants(&self) -> Result<(), String> {
        let fail = |m: &str| Err(format!("build {}: {m}", self.number));
        if !self.catalog.contains(self.state) {
            return fail("state is not in its catalog");
        }
        if self.attempt_open() && self.status != BuildStatus::Running {
            return fail("an open attempt on a build that is not running");
        }
        if self.attempt_open() && self.attempt == 0 {
            return fail("an open attempt numbered 0");
        }
        if self.needs_intervention && self.status != BuildStatus::Failed {
            return fail("needs intervention but is not failed");
        }
        if self.status == BuildStatus::Completed && self.state != StateCode::DELIVERED {
            return fail("completed below 100");
        }
        if self.status == BuildStatus::Failed && self.attempt == 0 {
            return fail("failed without an attempt");
        }
        if self.status == BuildStatus::Pending && (self.attempt > 0 || self.started_at.is_some()) {
            return fail("pending after an attempt");
        }
        if self.status.is_terminal() != self.ended_at.is_some() {
            return fail("end time does not match a terminal status");
        }
        if self.version == 0 || self.history_len == 0 {
            return fail("version and history start at 1");
        }
        Ok(())
    }
}

/// A build of the default catalog at milestone 0, for the crate's own tests.
#[cfg(test)]
pub(crate) fn test_build() -> Build {
    let name = |s: &str| Name::new(s).expect("valid name");
    let new = NewBuild {
        platform: name("gcp"),
        os: name("rhel-9.6"),
        image_type: name("base"),
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: "t".into(),
        ci_url: None,
        metadata: Default::default(),
    };
    let number = BuildNumber::new("b-1").expect("valid number");
    Build::create(BuildId::generate(1, 7), number, new, Timestamp::UNIX_EPOCH).0
}
