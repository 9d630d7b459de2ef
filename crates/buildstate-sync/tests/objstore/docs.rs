//! Real build documents, made by the core's own rules (no hand-written JSON): a
//! `Lineage` is one build moving forward; clone it to give two writers the same build.

use std::collections::BTreeMap;

use buildstate_core::{
    Build, BuildDocument, BuildId, BuildNumber, BuildParts, Command, HistoryEvent, Name, NewBuild,
    StateCatalog, apply,
};
use jiff::Timestamp;

#[derive(Clone, Debug)]
pub struct Lineage {
    build: Build,
    history: Vec<HistoryEvent>,
    provider: Option<String>,
    clock: i64,
}

fn name(s: &str) -> Name {
    Name::new(s).expect("test names are valid")
}

impl Lineage {
    /// A new build (version 1) numbered `number`, on provider `aws`.
    pub fn new(number: &str) -> Self {
        let new = NewBuild {
            platform: name("aws-commercial"),
            os: name("rhel-9.4"),
            image_type: name("base"),
            number: None,
            catalog: StateCatalog::default_catalog(),
            created_by: "objstore-test".into(),
            ci_url: None,
            metadata: BTreeMap::new(),
        };
        let id = BuildId::generate(1_770_000_000_000, fastrand::u128(..));
        let number = BuildNumber::new(number).expect("valid test number");
        let (build, created) = Build::create(id, number, new, at(0));
        Lineage { build, history: vec![created], provider: Some("aws".into()), clock: 0 }
    }

    pub fn with_provider(mut self, provider: Option<&str>) -> Self {
        self.provider = provider.map(str::to_owned);
        self
    }

    fn run(&mut self, command: Command) -> &mut Self {
        self.clock += 1;
        let outcome = apply(&self.build, &command, at(self.clock))
            .unwrap_or_else(|e| panic!("{} must be accepted: {e}", command.name()));
        self.build = outcome.build;
        self.history.extend(outcome.events);
        self
    }

    /// Completes the current milestone (one more version).
    pub fn complete(&mut self) -> &mut Self {
        let state = self.build.state;
        self.run(Command::Complete { state, actor: "runner-a".into(), exit_code: Some(0), log: None })
    }

    /// Skips the current milestone: the same number of versions as `complete`, but a
    /// different document — what a second worker that diverged would hold.
    pub fn skip(&mut self) -> &mut Self {
        let state = self.build.state;
        self.run(Command::Skip { state, actor: "runner-b".into(), reason: "not in this pipeline".into() })
    }

    pub fn doc(&self) -> BuildDocument {
        BuildDocument::from_parts(BuildParts {
            build: self.build.clone(),
            provider: self.provider.clone(),
            history: self.history.clone(),
            failures: Vec::new(),
            artifacts: Vec::new(),
        })
    }
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_770_000_000 + second).expect("valid test time")
}
