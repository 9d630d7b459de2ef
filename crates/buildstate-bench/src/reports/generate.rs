//! The data set of (h): a deterministic year of image builds, each one made by the real
//! transition rules (`buildstate_core::apply`) at explicit timestamps, so that what the
//! reports read is exactly what a year of `buildstate run` would have left behind.
//!
//! Two passes. [`plan`] decides, in one seeded sequence, each build's cell (platform ×
//! OS × image type, weighted like a real fleet), its creation time (spread evenly over
//! the 12 months before the anchor), its number and its fate. [`document`] then plays
//! one planned build through the rules with its own generator, seeded by the build's
//! index — so any number of importers can make builds in any order and get the same
//! data set.
//!
//! The mix, per build: most run 0 → 100 (21 milestones); about 3 % of attempts fail
//! transiently and are retried (`fail` transient, `retry`, `start`, `complete`); 1 %
//! end failed for good, needing a person (a persistent failure); 0.5 % needed a person
//! who fixed the cause and resumed them (`retry --force`); 2 % were cancelled; a few
//! were left failed awaiting a retry, left running by a runner that died, or never
//! started. The newest builds are still queued or under way at the anchor, as they
//! would be. Milestone durations are seconds to minutes, scaled by platform and image
//! type, with a long tail (a build takes 30–90 minutes).

use std::collections::{BTreeMap, HashMap};

use buildstate_core::{
    Artifact, ArtifactKind, Build, BuildId, BuildNumber, BuildParts, BuildStatus, CatalogItem, Command,
    FailureClass, FailureInfo, FailureType, HistoryEvent, ImageType, MetaKey, MetaValue, Name, NewBuild,
    OsVersion, Platform, StateCatalog, StateCode,
};
use buildstate_store::report::PIPELINE_KEY;
use jiff::{SignedDuration, Timestamp};

/// A platform of the catalog, how much longer than `aws-commercial` its milestones take,
/// and its share of the builds.
struct PlatformRow {
    name: &'static str,
    display: &'static str,
    provider: &'static str,
    region: Option<&'static str>,
    factor: f64,
    share: u32,
}

struct OsRow {
    name: &'static str,
    display: &'static str,
    family: &'static str,
    major: u32,
    minor: Option<u32>,
    share: u32,
}

struct ImageRow {
    name: &'static str,
    display: &'static str,
    description: &'static str,
    factor: f64,
    share: u32,
}

const PLATFORMS: [PlatformRow; 6] = [
    PlatformRow {
        name: "aws-commercial",
        display: "AWS Commercial",
        provider: "aws",
        region: Some("us-east-1"),
        factor: 1.0,
        share: 30,
    },
    PlatformRow {
        name: "azure",
        display: "Azure",
        provider: "azure",
        region: Some("eastus"),
        factor: 1.2,
        share: 25,
    },
    PlatformRow {
        name: "gcp",
        display: "Google Cloud",
        provider: "gcp",
        region: Some("us-central1"),
        factor: 0.9,
        share: 15,
    },
    PlatformRow {
        name: "openstack",
        display: "OpenStack",
        provider: "openstack",
        region: Some("datacenter-1"),
        factor: 1.4,
        share: 12,
    },
    PlatformRow {
        name: "aws-govcloud",
        display: "AWS GovCloud",
        provider: "aws",
        region: Some("us-gov-east-1"),
        factor: 1.1,
        share: 10,
    },
    PlatformRow {
        name: "cloudfoundry",
        display: "Cloud Foundry",
        provider: "cloudfoundry",
        region: None,
        factor: 1.3,
        share: 8,
    },
];

const OS_VERSIONS: [OsRow; 10] = [
    OsRow { name: "rhel-8.8", display: "RHEL 8.8", family: "rhel", major: 8, minor: Some(8), share: 6 },
    OsRow { name: "rhel-8.10", display: "RHEL 8.10", family: "rhel", major: 8, minor: Some(10), share: 10 },
    OsRow { name: "rhel-9.2", display: "RHEL 9.2", family: "rhel", major: 9, minor: Some(2), share: 8 },
    OsRow { name: "rhel-9.6", display: "RHEL 9.6", family: "rhel", major: 9, minor: Some(6), share: 18 },
    OsRow { name: "sles-15", display: "SLES 15", family: "sles", major: 15, minor: None, share: 4 },
    OsRow { name: "sles-15.6", display: "SLES 15 SP6", family: "sles", major: 15, minor: Some(6), share: 10 },
    OsRow { name: "sles-15.7", display: "SLES 15 SP7", family: "sles", major: 15, minor: Some(7), share: 12 },
    OsRow {
        name: "ubuntu-20.04",
        display: "Ubuntu 20.04 LTS",
        family: "ubuntu",
        major: 20,
        minor: Some(4),
        share: 5,
    },
    OsRow {
        name: "ubuntu-22.04",
        display: "Ubuntu 22.04 LTS",
        family: "ubuntu",
        major: 22,
        minor: Some(4),
        share: 12,
    },
    OsRow {
        name: "ubuntu-24.04",
        display: "Ubuntu 24.04 LTS",
        family: "ubuntu",
        major: 24,
        minor: Some(4),
        share: 15,
    },
];

const IMAGE_TYPES: [ImageRow; 4] = [
    ImageRow { name: "base", display: "Base", description: "hardened base image", factor: 0.8, share: 50 },
    ImageRow {
        name: "hana",
        display: "SAP HANA",
        description: "SAP HANA database server",
        factor: 1.5,
        share: 20,
    },
    ImageRow {
        name: "sapapp",
        display: "SAP Application",
        description: "SAP application server",
        factor: 1.3,
        share: 20,
    },
    ImageRow {
        name: "openvpn",
        display: "OpenVPN",
        description: "OpenVPN access server",
        factor: 0.9,
        share: 10,
    },
];

/// Seconds a milestone of the default catalog takes on an `aws-commercial` base image
/// (about 45 minutes in all), indexed like the catalog's codes 0, 5, …, 100.
const BASE_SECONDS: [f64; 21] = [
    2.0, 420.0, 150.0, 120.0, 180.0, 240.0, 90.0, 150.0, 60.0, 90.0, 75.0, 120.0, 180.0, 45.0, 300.0, 60.0,
    45.0, 30.0, 240.0, 120.0, 180.0,
];

/// How prone each milestone is to transient failures (mirrors, provider APIs, the
/// kickstart's SSH wait), relative to the mean: scaled so that the mean over the
/// catalog makes [`TRANSIENT_RATE`].
const FLAKINESS: [f64; 21] =
    [0.0, 2.5, 1.0, 1.2, 2.0, 1.0, 0.8, 1.5, 1.0, 0.6, 0.6, 0.8, 1.0, 0.4, 1.2, 0.4, 0.4, 0.6, 0.6, 0.6, 2.0];

/// Share of attempts that fail transiently (and are retried).
const TRANSIENT_RATE: f64 = 0.03;
/// The retry policy's limit: the third failed attempt at a milestone needs a person.
const MAX_ATTEMPTS: u32 = 3;

/// Where persistent failures happen: (milestone code, weight).
const PERSISTENT_AT: [(u8, u32); 8] =
    [(70, 30), (90, 20), (25, 15), (45, 10), (55, 10), (15, 5), (60, 5), (85, 5)];

const TRANSIENT: [(&str, &str, &str); 5] = [
    ("network", "mirror", "connection reset by peer while downloading packages from the mirror"),
    ("infrastructure", "provider-api", "rate limited by the provider API (HTTP 429), retry later"),
    ("packer", "ssh", "timed out waiting for SSH to become available"),
    ("network", "dns", "temporary failure in name resolution"),
    ("publish", "gallery", "image gallery replication did not finish in time"),
];

const PERSISTENT: [(&str, &str, &str); 5] = [
    ("ansible", "role", "task failed: a package in the playbook is no longer in the repository"),
    ("test", "smoke", "integration test failed: the service did not answer on its port"),
    ("validation", "cis", "compliance scan below threshold: 3 controls failed"),
    ("ansible", "vault", "could not read the secret: permission denied"),
    ("script", "lvm", "volume group not found on the data disk"),
];

/// What a generated data set is made of.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub builds: usize,
    pub seed: u64,
    /// The end of the 12 months; every timestamp is at or before it.
    pub anchor: Timestamp,
}

/// What happens to a build, decided up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Runs to the end (unless the anchor or exhausted retries stop it first).
    Deliver,
    /// A persistent failure at this catalog index; the build waits for a person.
    NeedsPerson(usize),
    /// A persistent failure at this index, fixed and resumed with `retry --force`.
    FixedByPerson(usize),
    /// Cancelled before this index.
    Cancelled(usize),
    /// A transient failure at this index that nobody retried (yet).
    AwaitingRetry(usize),
    /// Started at this index by a runner that died: an open attempt, long ago.
    Abandoned(usize),
    /// Created and never started.
    NeverStarted,
    /// A flaky milestone at this index that a person kept forcing on: six to nine
    /// transient failures there (what `excessive-failures` looks for), then delivered.
    Stubborn(usize),
}

/// One build of the plan.
#[derive(Clone, Debug)]
pub struct Planned {
    index: usize,
    platform: usize,
    os: usize,
    image: usize,
    created: Timestamp,
    sequence: u32,
    fate: Fate,
}

/// A generated build and how many attempts (completed or failed) it holds.
#[derive(Debug)]
pub struct Generated {
    pub parts: BuildParts,
    pub attempts: u64,
}

fn name(s: &str) -> Result<Name, String> {
    Name::new(s).map_err(|e| e.to_string())
}

/// The catalog of the data set: 6 platforms, 10 OS versions, 4 image types.
pub fn catalog() -> Result<Vec<CatalogItem>, String> {
    let mut items = Vec::new();
    for p in &PLATFORMS {
        items.push(CatalogItem::Platform(Platform {
            name: name(p.name)?,
            display_name: p.display.into(),
            provider: p.provider.into(),
            region: p.region.map(Into::into),
        }));
    }
    for o in &OS_VERSIONS {
        items.push(CatalogItem::Os(OsVersion {
            name: name(o.name)?,
            display_name: o.display.into(),
            family: o.family.into(),
            major: o.major,
            minor: o.minor,
        }));
    }
    for i in &IMAGE_TYPES {
        items.push(CatalogItem::ImageType(ImageType {
            name: name(i.name)?,
            display_name: i.display.into(),
            description: i.description.into(),
        }));
    }
    Ok(items)
}

fn weighted(rng: &mut fastrand::Rng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut pick = rng.u32(0..total.max(1));
    for (i, w) in weights.enumerate() {
        if pick < w {
            return i;
        }
        pick -= w;
    }
    0
}

const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;

/// Every build's cell, creation time, number and fate, in creation order.
pub fn plan(spec: &Spec) -> Vec<Planned> {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let step = YEAR_MS as f64 / spec.builds.max(1) as f64;
    let start = spec.anchor.as_millisecond() - YEAR_MS;
    let mut sequences: HashMap<(usize, usize, usize, i64), u32> = HashMap::new();
    (0..spec.builds)
        .map(|index| {
            let platform = weighted(&mut rng, PLATFORMS.iter().map(|p| p.share));
            let os = weighted(&mut rng, OS_VERSIONS.iter().map(|o| o.share));
            let image = weighted(&mut rng, IMAGE_TYPES.iter().map(|i| i.share));
            // Evenly spread with jitter inside the slot, so creation order is index order.
            let at = start + ((index as f64 + rng.f64()) * step) as i64;
            let created = Timestamp::from_millisecond(at).unwrap_or(spec.anchor);
            let day = at.div_euclid(24 * 3600 * 1000);
            let sequence = sequences.entry((platform, os, image, day)).or_insert(0);
            *sequence += 1;
            let roll = rng.f64();
            let anywhere = rng.usize(1..21);
            let fate = if roll < 0.010 {
                Fate::NeedsPerson(persistent_index(&mut rng))
            } else if roll < 0.015 {
                Fate::FixedByPerson(persistent_index(&mut rng))
            } else if roll < 0.035 {
                Fate::Cancelled(anywhere)
            } else if roll < 0.037 {
                Fate::AwaitingRetry(anywhere)
            } else if roll < 0.039 {
                Fate::Abandoned(anywhere)
            } else if roll < 0.040 {
                Fate::NeverStarted
            } else if roll < 0.041 {
                Fate::Stubborn(anywhere)
            } else {
                Fate::Deliver
            };
            Planned { index, platform, os, image, created, sequence: *sequence, fate }
        })
        .collect()
}

fn persistent_index(rng: &mut fastrand::Rng) -> usize {
    let code = PERSISTENT_AT[weighted(rng, PERSISTENT_AT.iter().map(|p| p.1))].0;
    usize::from(code / 5)
}

/// One planned build, played through the transition rules.
pub fn document(spec: &Spec, p: &Planned) -> Result<Generated, String> {
    // Its own stream, from the build's index: independent of who generates it when.
    let mut rng =
        fastrand::Rng::with_seed(spec.seed ^ (p.index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let PlatformRow { name: platform, provider, region, factor: platform_factor, .. } = PLATFORMS[p.platform];
    let os = OS_VERSIONS[p.os].name;
    let ImageRow { name: image, factor: image_factor, .. } = IMAGE_TYPES[p.image];
    let stem = BuildNumber::stem(os, image, platform, &p.created.strftime("%Y%m%d").to_string());
    let number = BuildNumber::with_sequence(&stem, p.sequence).map_err(|e| e.to_string())?;
    let id = BuildId::generate(u64::try_from(p.created.as_millisecond()).unwrap_or(0), rng.u128(..));
    let key = MetaKey::new(PIPELINE_KEY).map_err(|e| e.to_string())?;
    let pipeline = MetaValue::new(&key, &format!("pipelines/{image}.yaml")).map_err(|e| e.to_string())?;
    let new = NewBuild {
        platform: name(platform)?,
        os: name(os)?,
        image_type: name(image)?,
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: "ci".into(),
        ci_url: Some(format!("https://ci.example.invalid/job/images/{}", p.index + 1)),
        metadata: BTreeMap::from([(key, pipeline)]),
    };
    let (build, created) = Build::create(id, number, new, p.created);
    let mut sim = Sim {
        build,
        history: vec![created],
        failures: Vec::new(),
        attempts: 0,
        anchor: spec.anchor,
        actor: format!("runner-{:02}", rng.u32(1..=12)),
    };
    let scale = platform_factor * image_factor;
    let mut t = p.created.as_millisecond() + queue_delay(&mut rng);
    let milestones = sim.build.catalog.milestones().len().min(BASE_SECONDS.len());
    let mut delivered_at = None;
    if p.fate != Fate::NeverStarted {
        delivered_at = run(&mut sim, &mut rng, p.fate, milestones, scale, &mut t)?;
    }
    let artifacts = match delivered_at {
        Some(at) => vec![image_artifact(&mut rng, platform, region, at)?],
        None => Vec::new(),
    };
    Ok(Generated {
        parts: BuildParts {
            build: sim.build,
            provider: Some(provider.to_owned()),
            history: sim.history,
            failures: sim.failures,
            artifacts,
        },
        attempts: sim.attempts,
    })
}

/// How long a build waits for a runner: usually under two minutes, sometimes an hour.
fn queue_delay(rng: &mut fastrand::Rng) -> i64 {
    if rng.f64() < 0.05 { rng.i64(600_000..3_600_000) } else { rng.i64(5_000..120_000) }
}

/// One attempt's length: the milestone's base, scaled, with noise and a long tail.
fn duration_ms(rng: &mut fastrand::Rng, k: usize, scale: f64) -> i64 {
    let noise = 0.75 + 0.5 * rng.f64();
    let tail = if rng.f64() < 0.05 { 2.0 + 2.0 * rng.f64() } else { 1.0 };
    (BASE_SECONDS[k] * scale * noise * tail * 1000.0).max(200.0) as i64
}

struct Sim {
    build: Build,
    history: Vec<HistoryEvent>,
    failures: Vec<buildstate_core::FailureRecord>,
    attempts: u64,
    anchor: Timestamp,
    actor: String,
}

impl Sim {
    /// Applies `cmd` at `at` unless `at` is after the anchor (then `false`: the build is
    /// caught in flight there).
    fn apply(&mut self, cmd: Command, at: i64) -> Result<bool, String> {
        let when = Timestamp::from_millisecond(at).map_err(|e| e.to_string())?;
        if when > self.anchor {
            return Ok(false);
        }
        let out = buildstate_core::apply(&self.build, &cmd, when)
            .map_err(|e| format!("the generator broke a rule: {e}"))?;
        self.attempts += out
            .events
            .iter()
            .filter(|e| {
                matches!(e.kind, buildstate_core::EventKind::Completed | buildstate_core::EventKind::Failed)
            })
            .count() as u64;
        self.build = out.build;
        self.history.extend(out.events);
        self.failures.extend(out.failures);
        Ok(true)
    }

    fn start(&mut self, at: i64) -> Result<bool, String> {
        let state = self.build.state;
        self.apply(Command::Start { state, actor: self.actor.clone(), log: None, force: false }, at)
    }

    fn fail(&mut self, rng: &mut fastrand::Rng, class: FailureClass, at: i64) -> Result<bool, String> {
        let (kind, component, message) = match class {
            FailureClass::Transient => TRANSIENT[rng.usize(..TRANSIENT.len())],
            FailureClass::Persistent => PERSISTENT[rng.usize(..PERSISTENT.len())],
        };
        let failure = FailureInfo {
            failure_type: kind.parse::<FailureType>().map_err(|e| e.to_string())?,
            class,
            component: Some(component.into()),
            message: message.into(),
            details: BTreeMap::new(),
            exit_code: Some(if class == FailureClass::Transient { 1 } else { 2 }),
        };
        let state = self.build.state;
        let cmd = Command::Fail {
            state,
            actor: self.actor.clone(),
            failure,
            max_attempts: MAX_ATTEMPTS,
            log: None,
        };
        self.apply(cmd, at)
    }
}

/// Runs the milestones from 0 as `fate` says; returns when the build was delivered.
fn run(
    sim: &mut Sim,
    rng: &mut fastrand::Rng,
    fate: Fate,
    milestones: usize,
    scale: f64,
    t: &mut i64,
) -> Result<Option<Timestamp>, String> {
    let mean_flakiness = FLAKINESS.iter().sum::<f64>() / FLAKINESS.len() as f64;
    // The planned persistent failure happens once: a fixed build's next attempt passes.
    let mut persistent_due = matches!(fate, Fate::NeedsPerson(_) | Fate::FixedByPerson(_));
    let mut stubborn_left = if matches!(fate, Fate::Stubborn(_)) { rng.u32(6..=9) } else { 0 };
    for (k, flakiness) in FLAKINESS.iter().enumerate().take(milestones) {
        if fate == Fate::Cancelled(k) {
            let reason = "superseded by a newer build of the same image".to_owned();
            sim.apply(Command::Cancel { actor: "ci".into(), reason }, *t)?;
            return Ok(None);
        }
        loop {
            if !sim.start(*t)? {
                return Ok(None);
            }
            if fate == Fate::Abandoned(k) {
                return Ok(None);
            }
            let took = duration_ms(rng, k, scale);
            let persistent =
                persistent_due && matches!(fate, Fate::NeedsPerson(i) | Fate::FixedByPerson(i) if i == k);
            persistent_due &= !persistent;
            let stubborn = stubborn_left > 0 && fate == Fate::Stubborn(k);
            stubborn_left -= u32::from(stubborn);
            let transient = stubborn
                || fate == Fate::AwaitingRetry(k)
                || rng.f64() < TRANSIENT_RATE * flakiness / mean_flakiness;
            if persistent || transient {
                let end = *t + (took as f64 * (0.1 + 0.8 * rng.f64())) as i64;
                let class = if persistent { FailureClass::Persistent } else { FailureClass::Transient };
                if !sim.fail(rng, class, end)? {
                    return Ok(None);
                }
                *t = end;
                // Whether a person forces this build on when it needs one.
                let fixed = (matches!(fate, Fate::FixedByPerson(i) if i == k) && persistent) || stubborn;
                if fate == Fate::AwaitingRetry(k) || (sim.build.needs_intervention && !fixed) {
                    return Ok(None);
                }
                // A transient failure waits out the policy's backoff; a person takes
                // hours to days.
                let (wait, reason, force) = if sim.build.needs_intervention && stubborn {
                    (rng.i64(600_000..3_600_000), Some("flaky again, retrying".to_owned()), true)
                } else if sim.build.needs_intervention {
                    (rng.i64(2 * 3_600_000..72 * 3_600_000), Some("fixed the cause".to_owned()), true)
                } else {
                    (rng.i64(30_000..120_000), None, false)
                };
                *t += wait;
                let actor = if force { "ops".to_owned() } else { sim.actor.clone() };
                if !sim.apply(Command::Retry { actor, reason, force }, *t)? {
                    return Ok(None);
                }
                *t += rng.i64(500..3_000);
                continue;
            }
            let end = *t + took;
            let state = sim.build.state;
            let done = Command::Complete { state, actor: sim.actor.clone(), exit_code: Some(0), log: None };
            if !sim.apply(done, end)? {
                // Still running at the anchor: the open attempt stays.
                return Ok(None);
            }
            *t = end + rng.i64(300..5_000);
            break;
        }
    }
    Ok(sim.build.ended_at.filter(|_| sim.build.status == BuildStatus::Completed))
}

fn image_artifact(
    rng: &mut fastrand::Rng,
    platform: &str,
    region: Option<&str>,
    delivered: Timestamp,
) -> Result<Artifact, String> {
    let uri = match platform {
        "aws-commercial" | "aws-govcloud" => format!("ami-{:017x}", rng.u64(..) >> 4),
        "azure" => format!(
            "/subscriptions/bench/resourceGroups/images/providers/Microsoft.Compute/images/img-{:012x}",
            rng.u64(..) >> 16
        ),
        "gcp" => format!("projects/bench/global/images/img-{:012x}", rng.u64(..) >> 16),
        _ => format!("image-{:016x}", rng.u64(..)),
    };
    let at = delivered.checked_sub(SignedDuration::from_millis(rng.i64(1_000..30_000))).unwrap_or(delivered);
    Ok(Artifact {
        name: "image".into(),
        kind: ArtifactKind::Image,
        uri,
        region: region.map(Into::into),
        cloud: None,
        size_bytes: Some(rng.u64(2_000_000_000..12_000_000_000)),
        sha256: None,
        created_at: at,
        milestone: Some(StateCode::DELIVERED),
        invalidated_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(builds: usize) -> Spec {
        let anchor = Timestamp::from_second(1_800_000_000).expect("a valid time");
        Spec { builds, seed: 7, anchor }
    }

    #[test]
    fn the_same_spec_makes_the_same_builds_in_any_order() {
        let spec = spec(300);
        let plan = plan(&spec);
        let forward: Vec<BuildParts> =
            plan.iter().map(|p| document(&spec, p).expect("generates").parts).collect();
        let mut backward: Vec<BuildParts> =
            plan.iter().rev().map(|p| document(&spec, p).expect("generates").parts).collect();
        backward.reverse();
        assert_eq!(forward, backward);
        assert_eq!(plan.len(), 300);
    }

    #[test]
    fn the_mix_is_the_one_the_issue_asks_for() {
        let spec = spec(20_000);
        let (mut attempts, mut failed_attempts, mut needs_person, mut delivered) = (0u64, 0u64, 0u64, 0u64);
        let mut numbers = std::collections::HashSet::new();
        for p in plan(&spec) {
            let g = document(&spec, &p).expect("generates");
            let b = &g.parts.build;
            b.check_invariants().expect("a reachable build");
            assert!(b.updated_at <= spec.anchor, "{}: after the anchor", b.number);
            assert!(numbers.insert(b.number.clone()), "{}: a number twice", b.number);
            attempts += g.attempts;
            failed_attempts += g.parts.failures.len() as u64;
            needs_person += u64::from(b.needs_intervention);
            delivered += u64::from(b.is_delivered());
        }
        let share = |n: u64, of: u64| n as f64 / of as f64;
        assert!((0.02..0.045).contains(&share(failed_attempts, attempts)), "{failed_attempts} of {attempts}");
        assert!((0.008..0.015).contains(&share(needs_person, 20_000)), "{needs_person}");
        assert!((0.93..0.98).contains(&share(delivered, 20_000)), "{delivered}");
        // 21 milestones: about 20 attempts a build, 2 million for 100,000 builds.
        assert!((19.0..23.0).contains(&share(attempts, 20_000)), "{attempts}");
    }
}
