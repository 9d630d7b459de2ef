//! The shared data set of the report cases: builds in every status, retries, a rewind,
//! skipped milestones, a custom catalog, cancelled and needing-a-person builds, spread
//! over several months. Each build's history is made by the real transition rules at
//! chosen times and stored through `import_build`, so that months apart need no
//! waiting.

use std::collections::BTreeMap;

use buildstate_core::{
    Build, BuildId, BuildNumber, BuildParts, Command, FailureClass, FailureInfo, FailureRecord, FailureType,
    HistoryEvent, LeaseRequest, Milestone, NewBuild, StateCatalog, StateCode, apply,
};
use jiff::{SignedDuration, Timestamp};

use super::super::support::{ACTOR, code, image, key, name, os, platform, value};
use crate::{ImportMode, Store, StoreError};

const DAY: i64 = 86_400;

/// One build's life, made of commands at advancing times.
struct Life {
    b: Build,
    history: Vec<HistoryEvent>,
    failures: Vec<FailureRecord>,
    at: Timestamp,
    /// Spreads durations so that percentiles have something to pick from.
    salt: i64,
}

impl Life {
    fn new(n: u32, triple: (&str, &str, &str), days_ago: i64, now: Timestamp, catalog: StateCatalog) -> Life {
        let created = now - SignedDuration::from_secs(days_ago * DAY + i64::from(n) * 60);
        let id = BuildId::generate(created.as_millisecond() as u64, u128::from(n) * 7919 + 1);
        let (p, o, i) = triple;
        let number = BuildNumber::new(&format!("{o}-{i}-{p}-report-{n:03}")).expect("a valid number");
        let mut metadata = BTreeMap::new();
        if n.is_multiple_of(3) {
            metadata.insert(key("pipeline"), value("pipeline", "images"));
        }
        let new = NewBuild {
            platform: name(p),
            os: name(o),
            image_type: name(i),
            number: None,
            catalog,
            created_by: ACTOR.into(),
            ci_url: Some(format!("https://ci.example.invalid/jobs/{n}")),
            metadata,
        };
        let (b, created_event) = Build::create(id, number, new, created);
        Life { b, history: vec![created_event], failures: Vec::new(), at: created, salt: i64::from(n) * 37 }
    }

    fn cmd(&mut self, cmd: Command, took_ms: i64) -> &mut Self {
        self.at += SignedDuration::from_millis(took_ms);
        let out = apply(&self.b, &cmd, self.at).unwrap_or_else(|e| panic!("fixture {}: {e}", self.b.number));
        self.b = out.build;
        self.history.extend(out.events);
        self.failures.extend(out.failures);
        self
    }

    fn took(&self, state: StateCode) -> i64 {
        60_000 + i64::from(state.get()) * 1_000 + self.salt
    }

    fn start(&mut self) -> &mut Self {
        let state = self.b.state;
        self.cmd(Command::Start { state, actor: ACTOR.into(), log: None, force: false }, 1_000)
    }

    fn complete(&mut self) -> &mut Self {
        let state = self.b.state;
        let took = self.took(state);
        self.cmd(Command::Complete { state, actor: ACTOR.into(), exit_code: Some(0), log: None }, took)
    }

    /// Start and complete milestones until the build is at `to` (or delivered).
    fn run_to(&mut self, to: i64) -> &mut Self {
        while self.b.state < code(to) && self.b.status != buildstate_core::BuildStatus::Completed {
            self.start().complete();
        }
        self
    }

    fn deliver(&mut self) -> &mut Self {
        self.run_to(100);
        self.start().complete()
    }

    fn fail(&mut self, class: FailureClass, message: &str) -> &mut Self {
        let state = self.b.state;
        let failure = FailureInfo {
            failure_type: (if class == FailureClass::Transient { "network" } else { "ansible" })
                .parse::<FailureType>()
                .expect("a known type"),
            class,
            component: None,
            message: message.into(),
            details: BTreeMap::new(),
            exit_code: Some(2),
        };
        let took = self.took(state) / 2;
        self.start();
        self.cmd(Command::Fail { state, actor: ACTOR.into(), failure, max_attempts: 10, log: None }, took)
    }

    fn retry(&mut self) -> &mut Self {
        self.cmd(Command::Retry { actor: ACTOR.into(), reason: None, force: false }, 30_000)
    }

    fn parts(&self) -> BuildParts {
        BuildParts {
            build: self.b.clone(),
            provider: None,
            history: self.history.clone(),
            failures: self.failures.clone(),
            artifacts: Vec::new(),
        }
    }
}

const AWS_RHEL_BASE: (&str, &str, &str) = ("aws-commercial", "rhel-9.6", "base");

/// Stores the data set; returns how many builds it holds.
pub async fn seed_reports(s: &dyn Store) -> usize {
    for item in [
        platform("aws-commercial", "aws", Some("us-east-1")),
        platform("azure", "azure", Some("westeurope")),
        platform("gcp", "gcp", None),
        os("rhel-9.6", Some(6)),
        os("ubuntu-24.04", Some(4)),
        image("base"),
        image("hana"),
    ] {
        match s.add_catalog_item(&item).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("adding {} to the catalog: {e}", item.name()),
        }
    }
    let now = crate::now();
    let default = StateCatalog::default_catalog;
    let mut lives = Vec::new();
    // Delivered straight through, five months ago.
    let mut l = Life::new(1, AWS_RHEL_BASE, 150, now, default());
    l.deliver();
    lives.push(l);
    // Delivered after a transient failure at 20 and a retry.
    let mut l = Life::new(2, ("azure", "ubuntu-24.04", "base"), 95, now, default());
    l.run_to(20).fail(FailureClass::Transient, "timeout after 31s on 10.0.3.7").retry().deliver();
    lives.push(l);
    // Failed at 45, needs a person.
    let mut l = Life::new(3, ("gcp", "rhel-9.6", "hana"), 60, now, default());
    l.run_to(45).fail(FailureClass::Persistent, "TASK [storage : create LVM volume group] failed");
    lives.push(l);
    // Failed transiently at 30, retryable.
    let mut l = Life::new(4, ("aws-commercial", "ubuntu-24.04", "hana"), 32, now, default());
    l.run_to(30).fail(FailureClass::Transient, "timeout after 29s on 10.0.3.9");
    lives.push(l);
    // Running, an attempt open at 50 (a lease is taken below).
    let mut l = Life::new(5, ("azure", "rhel-9.6", "base"), 1, now, default());
    l.run_to(50).start();
    lives.push(l);
    // Running between milestones (40 is next).
    let mut l = Life::new(6, ("gcp", "ubuntu-24.04", "base"), 0, now, default());
    l.run_to(40);
    lives.push(l);
    // Pending.
    lives.push(Life::new(7, ("aws-commercial", "rhel-9.6", "hana"), 0, now, default()));
    // Cancelled at 25, four months ago.
    let mut l = Life::new(8, ("azure", "ubuntu-24.04", "hana"), 120, now, default());
    l.run_to(25).cmd(Command::Cancel { actor: ACTOR.into(), reason: "superseded".into() }, 5_000);
    lives.push(l);
    // Rewound from 60 to 40, then delivered; six months ago.
    let mut l = Life::new(9, ("gcp", "rhel-9.6", "base"), 185, now, default());
    l.run_to(60)
        .cmd(Command::Rewind { to: code(40), actor: ACTOR.into(), reason: "new kernel".into() }, 1_000);
    l.deliver();
    lives.push(l);
    // Skips 35 and 40, then a transient failure at 55, a retry and delivery.
    let mut l = Life::new(10, ("aws-commercial", "ubuntu-24.04", "base"), 61, now, default());
    l.run_to(35);
    for _ in 0..2 {
        let state = l.b.state;
        l.cmd(Command::Skip { state, actor: ACTOR.into(), reason: "not on this image".into() }, 500);
    }
    l.run_to(55).fail(FailureClass::Transient, "429 Too Many Requests").retry().deliver();
    lives.push(l);
    // Six transient failures at 15, still failed: excessive.
    let mut l = Life::new(11, AWS_RHEL_BASE, 33, now, default());
    l.run_to(15);
    for i in 0..6 {
        if i > 0 {
            l.retry();
        }
        l.fail(FailureClass::Transient, &format!("mirror {i} unreachable"));
    }
    lives.push(l);
    // A catalog with 12 (hardening) inserted, delivered.
    let hardening =
        Milestone { code: code(12), name: "hardening".into(), meaning: String::new(), tool: String::new() };
    let custom = StateCatalog::default_catalog().with_inserted(vec![hardening]).expect("12 is free");
    let mut l = Life::new(12, ("azure", "rhel-9.6", "hana"), 10, now, custom);
    l.deliver();
    lives.push(l);
    // A newer build of the first cell, running: the matrix shows this one.
    let mut l = Life::new(13, AWS_RHEL_BASE, 0, now, default());
    l.run_to(10);
    lives.push(l);

    let count = lives.len();
    let mut running_with_lease = None;
    for l in &lives {
        s.import_build(l.parts(), ImportMode::CreateOnly)
            .await
            .unwrap_or_else(|e| panic!("importing fixture build {}: {e}", l.b.number));
        if l.b.attempt_open() {
            running_with_lease = Some(l.b.id);
        }
    }
    if let Some(id) = running_with_lease {
        let request = LeaseRequest {
            owner: "runner-7@ci-host".into(),
            host: "ci-host".into(),
            pid: 4242,
            ttl: std::time::Duration::from_secs(3600),
        };
        s.acquire_lease(id, &request).await.expect("a lease on a fixture build");
    }
    count
}
