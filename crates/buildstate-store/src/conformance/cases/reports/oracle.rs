//! Every report computed again, independently, from exported documents: the meaning of
//! each report, said plainly and slowly, against which every backend's answer is
//! checked. It shares nothing with `crate::report` but the cell type.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use buildstate_core::{
    BuildDocument, BuildStatus, EventKind, FailureClass, FailureRecord, HistoryEvent, Lease, StateCatalog,
    StateCode,
};
use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};

use crate::report::{Cell, ReportName, ReportRequest};

pub struct Expected {
    pub rows: Vec<Vec<Cell>>,
    pub summary: Vec<(&'static str, Cell)>,
}

fn rows(rows: Vec<Vec<Cell>>) -> Expected {
    Expected { rows, summary: Vec::new() }
}

fn matches(req: &ReportRequest, d: &BuildDocument) -> bool {
    let f = &req.filter;
    f.since.is_none_or(|t| d.created_at >= t)
        && f.platform.as_ref().is_none_or(|p| &d.platform == p)
        && f.os.as_ref().is_none_or(|o| &d.os == o)
        && f.image_type.as_ref().is_none_or(|i| &d.image_type == i)
        && f.pipeline.as_ref().is_none_or(|p| {
            d.metadata.iter().any(|(k, v)| k.as_str() == "pipeline" && v.as_str() == p.as_str())
        })
        && (f.statuses.is_empty() || f.statuses.contains(&d.status))
}

fn ms(a: Timestamp, b: Timestamp) -> u64 {
    (b.as_millisecond() - a.as_millisecond()).max(0) as u64
}

fn pct(sorted: &[u64], p: usize) -> u64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn avg(v: &[u64]) -> u64 {
    let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
    let n = v.len() as u128;
    ((sum * 2 + n) / (n * 2)) as u64
}

/// A milestone duration as reports give its percentiles: the lower bound of its 1 %
/// bucket (a definition, shared like the cell type).
fn coarse(ms: u64) -> u64 {
    crate::report::bucket_floor(crate::report::bucket(ms))
}

/// A duration as ETAs read it: the lower bound of its 10 % bucket.
fn coarser(ms: u64) -> u64 {
    crate::report::coarse_floor(crate::report::coarse(crate::report::bucket(ms)))
}

/// count, mean, then min, p50, p90, max to their buckets' lower bounds.
fn six_coarse(mut v: Vec<u64>) -> Vec<Cell> {
    v.sort_unstable();
    vec![
        Cell::count(v.len()),
        Cell::count(avg(&v)),
        Cell::count(coarse(v[0])),
        Cell::count(coarse(pct(&v, 50))),
        Cell::count(coarse(pct(&v, 90))),
        Cell::count(coarse(v[v.len() - 1])),
    ]
}

/// count, mean, min, p50, p90, max.
fn six(mut v: Vec<u64>) -> Vec<Cell> {
    v.sort_unstable();
    vec![
        Cell::count(v.len()),
        Cell::count(avg(&v)),
        Cell::count(v[0]),
        Cell::count(pct(&v, 50)),
        Cell::count(pct(&v, 90)),
        Cell::count(v[v.len() - 1]),
    ]
}

fn name_of(docs: &[BuildDocument], code: u8) -> String {
    let state = StateCode::new(i64::from(code)).expect("a code");
    if let Some(m) = StateCatalog::default_catalog().get(state) {
        return m.name.clone();
    }
    docs.iter().find_map(|d| d.catalog.get(state).map(|m| m.name.clone())).unwrap_or_default()
}

fn ident(d: &BuildDocument) -> Vec<Cell> {
    vec![
        Cell::text(d.build_number.as_str()),
        Cell::text(d.platform.as_str()),
        Cell::text(d.os.as_str()),
        Cell::text(d.image_type.as_str()),
        Cell::count(d.current_state.get()),
        Cell::text(d.state_name.clone()),
    ]
}

fn last_failure(d: &BuildDocument) -> Option<&FailureRecord> {
    d.errors.iter().max_by_key(|f| f.number)
}

fn failure_cells(f: Option<&FailureRecord>) -> Vec<Cell> {
    match f {
        Some(f) => vec![
            Cell::Time(f.at),
            Cell::text(f.info.failure_type.as_str()),
            Cell::text(f.info.class.as_str()),
            Cell::text(f.info.message.clone()),
        ],
        None => vec![Cell::Null; 4],
    }
}

fn retry(d: &BuildDocument) -> String {
    if d.needs_intervention {
        format!("buildstate retry {} --force --reason \"…\"", d.build_number)
    } else {
        format!("buildstate retry {}", d.build_number)
    }
}

fn attempts(d: &BuildDocument) -> impl Iterator<Item = &HistoryEvent> {
    d.history.iter().filter(|e| matches!(e.kind, EventKind::Completed | EventKind::Failed))
}

fn tally(ds: &[&BuildDocument]) -> Vec<Cell> {
    let n = |s: BuildStatus| Cell::count(ds.iter().filter(|d| d.status == s).count());
    let mut c = vec![Cell::count(ds.len())];
    c.extend(BuildStatus::ALL.iter().map(|&s| n(s)));
    c.push(Cell::count(ds.iter().filter(|d| d.needs_intervention).count()));
    c
}

/// What `req` must answer over `all` (every build in the store), with `leases` held and
/// the store's clock at `now`.
pub fn expected(req: &ReportRequest, all: &[BuildDocument], leases: &[Lease], now: Timestamp) -> Expected {
    let docs: Vec<&BuildDocument> = all.iter().filter(|d| matches(req, d)).collect();
    match req.name {
        ReportName::Overview => rows(vec![tally(&docs)]),
        ReportName::Platforms | ReportName::Os | ReportName::Images => {
            let key = |d: &BuildDocument| match req.name {
                ReportName::Platforms => d.platform.to_string(),
                ReportName::Os => d.os.to_string(),
                _ => d.image_type.to_string(),
            };
            let mut groups: BTreeMap<String, Vec<&BuildDocument>> = BTreeMap::new();
            for d in &docs {
                groups.entry(key(d)).or_default().push(d);
            }
            let mut g: Vec<_> = groups.into_iter().collect();
            g.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
            rows(g.into_iter().map(|(k, ds)| [vec![Cell::Text(k)], tally(&ds)].concat()).collect())
        }
        ReportName::States => {
            let mut groups: BTreeMap<u8, Vec<&BuildDocument>> = BTreeMap::new();
            for d in &docs {
                groups.entry(d.current_state.get()).or_default().push(d);
            }
            rows(
                groups
                    .into_iter()
                    .map(|(code, ds)| {
                        let n = |s: BuildStatus| Cell::count(ds.iter().filter(|d| d.status == s).count());
                        vec![
                            Cell::count(code),
                            Cell::Text(name_of(all, code)),
                            Cell::count(ds.len()),
                            n(BuildStatus::Pending),
                            n(BuildStatus::Running),
                            n(BuildStatus::Failed),
                            Cell::count(ds.iter().filter(|d| d.needs_intervention).count()),
                            n(BuildStatus::Completed),
                            n(BuildStatus::Cancelled),
                        ]
                    })
                    .collect(),
            )
        }
        ReportName::Matrix => {
            let mut cells: BTreeMap<(String, String, String), &BuildDocument> = BTreeMap::new();
            for d in &docs {
                let k = (d.image_type.to_string(), d.os.to_string(), d.platform.to_string());
                let newer =
                    cells.get(&k).is_none_or(|h| (d.created_at, d.build_id) > (h.created_at, h.build_id));
                if newer {
                    cells.insert(k, d);
                }
            }
            rows(
                cells
                    .into_values()
                    .map(|d| {
                        vec![
                            Cell::text(d.image_type.as_str()),
                            Cell::text(d.os.as_str()),
                            Cell::text(d.platform.as_str()),
                            Cell::text(d.build_number.as_str()),
                            Cell::count(d.current_state.get()),
                            Cell::text(d.state_name.clone()),
                            Cell::text(d.status.as_str()),
                            Cell::Flag(d.needs_intervention),
                            Cell::Time(d.updated_at),
                        ]
                    })
                    .collect(),
            )
        }
        ReportName::SuccessRate => {
            let this = now.to_zoned(TimeZone::UTC).date().first_of_month();
            let first = this.checked_sub(11.months()).expect("a date");
            let mut out = Vec::new();
            for i in 0..12 {
                let m = first.checked_add(i.months()).expect("a date");
                let in_month: Vec<&&BuildDocument> = docs
                    .iter()
                    .filter(|d| d.created_at.to_zoned(TimeZone::UTC).date().first_of_month() == m)
                    .collect();
                let n = |s: BuildStatus| in_month.iter().filter(|d| d.status == s).count() as u64;
                out.push(vec![
                    Cell::Text(m.strftime("%Y-%m").to_string()),
                    Cell::count(in_month.len()),
                    Cell::count(n(BuildStatus::Completed)),
                    Cell::count(n(BuildStatus::Failed)),
                    Cell::count(n(BuildStatus::Cancelled)),
                    Cell::percent(
                        n(BuildStatus::Completed),
                        n(BuildStatus::Completed) + n(BuildStatus::Failed) + n(BuildStatus::Cancelled),
                    ),
                ]);
            }
            rows(out)
        }
        ReportName::Attention | ReportName::Resumable => {
            let mut failed: Vec<&&BuildDocument> = docs
                .iter()
                .filter(|d| d.status == BuildStatus::Failed)
                .filter(|d| {
                    req.name == ReportName::Attention
                        || (!d.needs_intervention && req.from.is_none_or(|s| d.current_state == s))
                })
                .collect();
            failed.sort_by(|a, b| {
                b.needs_intervention
                    .cmp(&a.needs_intervention)
                    .then(last_failure(b).map(|f| f.at).cmp(&last_failure(a).map(|f| f.at)))
                    .then(a.build_number.as_str().cmp(b.build_number.as_str()))
            });
            let out: Vec<Vec<Cell>> = failed
                .iter()
                .map(|d| {
                    let mut row = ident(d);
                    if req.name == ReportName::Attention {
                        row.extend([
                            Cell::Flag(d.needs_intervention),
                            Cell::count(d.attempt),
                            Cell::count(d.errors.len()),
                        ]);
                    } else {
                        row.push(Cell::count(d.attempt));
                    }
                    row.extend(failure_cells(last_failure(d)));
                    row.push(Cell::Text(retry(d)));
                    row
                })
                .collect();
            let mut e = rows(out);
            if req.name == ReportName::Attention {
                e.summary = vec![
                    ("failed", Cell::count(failed.len())),
                    ("needs_person", Cell::count(failed.iter().filter(|d| d.needs_intervention).count())),
                ];
            }
            e
        }
        ReportName::ExcessiveFailures => {
            let mut many: Vec<&&BuildDocument> =
                docs.iter().filter(|d| d.errors.len() > req.threshold as usize).collect();
            many.sort_by(|a, b| {
                b.errors.len().cmp(&a.errors.len()).then(a.build_number.as_str().cmp(b.build_number.as_str()))
            });
            let mut e = rows(
                many.iter()
                    .map(|d| {
                        let mut row = ident(d);
                        row.extend([Cell::text(d.status.as_str()), Cell::count(d.errors.len())]);
                        row.extend(failure_cells(last_failure(d)));
                        row
                    })
                    .collect(),
            );
            e.summary = vec![("threshold", Cell::count(req.threshold))];
            e
        }
        ReportName::Ready => {
            let mut ready: Vec<&&BuildDocument> = docs
                .iter()
                .filter(|d| {
                    matches!(d.status, BuildStatus::Pending | BuildStatus::Failed) && !d.needs_intervention
                })
                .collect();
            ready.sort_by_key(|d| (d.created_at, d.build_id));
            rows(
                ready
                    .iter()
                    .map(|d| {
                        let mut row = ident(d);
                        let command = if d.status == BuildStatus::Failed {
                            retry(d)
                        } else {
                            format!("buildstate resume {}", d.build_number)
                        };
                        row.extend([
                            Cell::text(d.status.as_str()),
                            Cell::Time(d.created_at),
                            Cell::opt_text(d.ci_url.clone()),
                            Cell::Text(command),
                        ]);
                        row
                    })
                    .collect(),
            )
        }
        ReportName::Failures => {
            let mut groups: BTreeMap<(u8, String), Vec<&FailureRecord>> = BTreeMap::new();
            for f in docs.iter().flat_map(|d| &d.errors) {
                groups.entry((f.state.get(), f.info.failure_type.to_string())).or_default().push(f);
            }
            let total: usize = groups.values().map(Vec::len).sum();
            let mut g: Vec<_> = groups.into_iter().collect();
            g.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
            let mut e = rows(
                g.into_iter()
                    .map(|((state, kind), fs)| {
                        let latest = fs.iter().max_by_key(|f| (f.at, f.build_id, f.number)).expect("one");
                        let builds: BTreeSet<_> = fs.iter().map(|f| f.build_id).collect();
                        vec![
                            Cell::count(state),
                            Cell::Text(name_of(all, state)),
                            Cell::Text(kind),
                            Cell::count(fs.len()),
                            Cell::count(builds.len()),
                            Cell::Time(latest.at),
                            Cell::text(latest.info.class.as_str()),
                            Cell::text(latest.info.message.clone()),
                        ]
                    })
                    .collect(),
            );
            e.summary = vec![("failures", Cell::count(total))];
            e
        }
        ReportName::Durations => {
            let mut by: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
            for e in docs.iter().flat_map(|d| &d.history).filter(|e| e.kind == EventKind::Completed) {
                by.entry(e.state.get()).or_default().push(e.duration_ms.unwrap_or(0));
            }
            rows(
                by.into_iter()
                    .map(|(s, v)| [vec![Cell::count(s), Cell::Text(name_of(all, s))], six_coarse(v)].concat())
                    .collect(),
            )
        }
        ReportName::PlatformDurations => {
            let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for d in docs.iter().filter(|d| d.status == BuildStatus::Completed) {
                let took = ms(d.started_at.expect("started"), d.ended_at.expect("ended"));
                by.entry(d.platform.to_string()).or_default().push(took);
            }
            let mut g: Vec<_> = by.into_iter().collect();
            g.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
            rows(g.into_iter().map(|(p, v)| [vec![Cell::Text(p)], six(v)].concat()).collect())
        }
        ReportName::Running | ReportName::Eta => running(req, all, &docs, leases, now),
        ReportName::TimeSaved => time_saved(req, &docs),
        ReportName::Cost => cost(req, &docs),
        ReportName::Flaky => flaky(all, &docs),
    }
}

/// The remaining time of a running build, p50 and p90, how it was learnt, and the
/// milestones nobody has completed yet.
fn remaining(all: &[BuildDocument], d: &BuildDocument, now: Timestamp) -> (u64, u64, &'static str, u32) {
    let completed = |same_cell: bool, code: StateCode| -> Vec<u64> {
        let mut v: Vec<u64> = all
            .iter()
            .filter(|o| {
                !same_cell || (o.platform == d.platform && o.os == d.os && o.image_type == d.image_type)
            })
            .flat_map(|o| &o.history)
            .filter(|e| e.kind == EventKind::Completed && e.state == code)
            .map(|e| e.duration_ms.unwrap_or(0))
            .collect();
        v.sort_unstable();
        v
    };
    let spent = d.attempt_started_at.map_or(0, |t| ms(t, now));
    let (mut p50, mut p90, mut cell, mut any, mut none) = (0, 0, 0, 0, 0u32);
    for code in d.catalog.codes().filter(|c| *c >= d.current_state) {
        let own = completed(true, code);
        let v = if own.is_empty() { completed(false, code) } else { own.clone() };
        if v.is_empty() {
            none += 1;
            continue;
        }
        if own.is_empty() {
            any += 1;
        } else {
            cell += 1;
        }
        let used = if code == d.current_state { spent } else { 0 };
        p50 += coarser(pct(&v, 50)).saturating_sub(used);
        p90 += coarser(pct(&v, 90)).saturating_sub(used);
    }
    let basis = match (cell, any) {
        (0, 0) => "none",
        (_, 0) => "cell",
        (0, _) => "all",
        _ => "mixed",
    };
    (p50, p90, basis, none)
}

fn running(
    req: &ReportRequest,
    all: &[BuildDocument],
    docs: &[&BuildDocument],
    leases: &[Lease],
    now: Timestamp,
) -> Expected {
    let mut run: Vec<&&BuildDocument> = docs.iter().filter(|d| d.status == BuildStatus::Running).collect();
    run.sort_by_key(|d| (d.started_at, d.build_id));
    let after =
        |basis: &str, ms: u64| (basis != "none").then(|| now + SignedDuration::from_millis(ms as i64));
    rows(
        run.iter()
            .map(|d| {
                let (p50, p90, basis, none) = remaining(all, d, now);
                let mut row = ident(d);
                let elapsed = d.started_at.map(|s| ms(s, now));
                if req.name == ReportName::Eta {
                    let known = |ms: u64| if basis == "none" { Cell::Null } else { Cell::count(ms) };
                    row.extend([
                        Cell::opt_count(elapsed),
                        known(p50),
                        known(p90),
                        Cell::opt_time(after(basis, p50)),
                        Cell::opt_time(after(basis, p90)),
                        Cell::text(basis),
                        Cell::count(none),
                    ]);
                } else {
                    let lease = leases.iter().find(|l| l.build_id == d.build_id);
                    row.extend([
                        Cell::count(d.attempt),
                        Cell::opt_count(elapsed),
                        Cell::opt_count(d.attempt_started_at.map(|t| ms(t, now))),
                        Cell::opt_text(lease.map(Lease::holder)),
                        Cell::opt_time(lease.map(|l| l.expires_at)),
                        Cell::opt_time(after(basis, p50)),
                    ]);
                }
                row
            })
            .collect(),
    )
}

/// Replays a history: each attempt after a failure is a resume and saved the latest
/// durations of the milestones completed below its own (a rewind forgets those from its
/// target up).
fn saved(history: &[HistoryEvent]) -> (u32, u64) {
    let mut done: BTreeMap<u8, u64> = BTreeMap::new();
    let (mut resumes, mut total, mut pending) = (0, 0, false);
    for e in history {
        let attempt = matches!(e.kind, EventKind::Started | EventKind::Completed | EventKind::Failed);
        if attempt && pending {
            pending = false;
            resumes += 1;
            total += done.iter().filter(|(s, _)| **s < e.state.get()).map(|(_, d)| d).sum::<u64>();
        }
        match e.kind {
            EventKind::Completed => {
                done.insert(e.state.get(), e.duration_ms.unwrap_or(0));
            }
            EventKind::Failed => pending = true,
            EventKind::Rewound => done.retain(|s, _| *s < e.state.get()),
            _ => {}
        }
    }
    (resumes, total)
}

fn time_saved(req: &ReportRequest, docs: &[&BuildDocument]) -> Expected {
    let mut found: Vec<(&BuildDocument, u32, u64)> = docs
        .iter()
        .filter(|d| !d.errors.is_empty())
        .map(|d| {
            let (r, s) = saved(&d.history);
            (*d, r, s)
        })
        .filter(|(_, r, _)| *r > 0)
        .collect();
    found.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.build_number.as_str().cmp(b.0.build_number.as_str())));
    let price =
        |d: &BuildDocument, ms: u64| req.rates.get(d.platform.as_str()).map(|r| ms as f64 / 3_600_000.0 * r);
    let total_ms: u64 = found.iter().map(|f| f.2).sum();
    let all_priced = found.iter().all(|(d, _, _)| req.rates.contains_key(d.platform.as_str()));
    let total_cost: f64 = found.iter().filter_map(|(d, _, s)| price(d, *s)).sum();
    Expected {
        rows: found
            .iter()
            .map(|(d, r, s)| {
                vec![
                    Cell::text(d.build_number.as_str()),
                    Cell::text(d.platform.as_str()),
                    Cell::text(d.os.as_str()),
                    Cell::text(d.image_type.as_str()),
                    Cell::count(*r),
                    Cell::count(*s),
                    Cell::money(price(d, *s)),
                ]
            })
            .collect(),
        summary: vec![
            ("builds", Cell::count(found.len())),
            ("saved_ms", Cell::count(total_ms)),
            ("saved_cost", if all_priced { Cell::money(Some(total_cost)) } else { Cell::Null }),
        ],
    }
}

fn band_of(code: u8) -> (u8, &'static str) {
    match code {
        0..=14 => (0, "build"),
        15..=69 => (1, "configure"),
        70..=94 => (2, "test"),
        _ => (3, "publish"),
    }
}

fn cost(req: &ReportRequest, docs: &[&BuildDocument]) -> Expected {
    let mut groups: BTreeMap<(String, (u8, &'static str)), [u64; 4]> = BTreeMap::new();
    for d in docs {
        for e in attempts(d) {
            let g = groups.entry((d.platform.to_string(), band_of(e.state.get()))).or_default();
            let took = e.duration_ms.unwrap_or(0);
            g[0] += 1;
            g[1] += took;
            if e.kind == EventKind::Failed {
                g[2] += 1;
                g[3] += took;
            }
        }
    }
    let (mut total, mut failed) = (0.0, 0.0);
    let mut bands: BTreeMap<u8, (&'static str, f64)> = BTreeMap::new();
    let mut out = Vec::new();
    for ((p, (order, band)), [n, took, fnum, ftook]) in groups {
        let rate = req.rates.get(&p).copied();
        let price = |ms: u64| rate.map(|r| ms as f64 / 3_600_000.0 * r);
        if rate.is_some() {
            total += price(took).unwrap_or(0.0);
            failed += price(ftook).unwrap_or(0.0);
            bands.entry(order).or_insert((band, 0.0)).1 += price(took).unwrap_or(0.0);
        }
        out.push(vec![
            Cell::Text(p.clone()),
            Cell::text(band),
            Cell::count(n),
            Cell::count(took),
            Cell::money(rate),
            Cell::money(price(took)),
            Cell::count(fnum),
            Cell::count(ftook),
            Cell::money(price(ftook)),
        ]);
    }
    let mut summary = vec![("cost", Cell::money(Some(total))), ("failed_cost", Cell::money(Some(failed)))];
    for (band, cost) in bands.into_values() {
        let key = match band {
            "build" => "cost_build",
            "configure" => "cost_configure",
            "test" => "cost_test",
            _ => "cost_publish",
        };
        summary.push((key, Cell::money(Some(cost))));
    }
    Expected { rows: out, summary }
}

fn flaky(all: &[BuildDocument], docs: &[&BuildDocument]) -> Expected {
    #[derive(Default)]
    struct At {
        attempts: u64,
        retries: u64,
        transient: Vec<String>,
        recoveries: Vec<u64>,
    }
    let mut by: BTreeMap<u8, At> = BTreeMap::new();
    for d in docs {
        let tried: Vec<&HistoryEvent> = attempts(d).collect();
        for (i, e) in tried.iter().enumerate() {
            let at = by.entry(e.state.get()).or_default();
            at.attempts += 1;
            at.retries += u64::from(e.attempt > 1);
            if e.kind == EventKind::Failed {
                let next_ok =
                    tried[i + 1..].iter().find(|n| n.state == e.state && n.kind == EventKind::Completed);
                if let Some(n) = next_ok {
                    at.recoveries.push(ms(e.at, n.at));
                }
            }
        }
        for f in d.errors.iter().filter(|f| f.info.class == FailureClass::Transient) {
            let digits_as_hash: String = {
                let mut out = String::new();
                let mut prev_digit = false;
                for c in f.info.message.trim().chars() {
                    if c.is_ascii_digit() {
                        if !prev_digit {
                            out.push('#');
                        }
                    } else {
                        out.push(c);
                    }
                    prev_digit = c.is_ascii_digit();
                }
                out
            };
            by.entry(f.state.get()).or_default().transient.push(digits_as_hash);
        }
    }
    let mut list: Vec<(u8, At)> = by.into_iter().filter(|(_, a)| a.attempts > 0).collect();
    list.sort_by(|a, b| {
        let lhs = u128::from(b.1.retries) * u128::from(a.1.attempts);
        let rhs = u128::from(a.1.retries) * u128::from(b.1.attempts);
        lhs.cmp(&rhs).then(b.1.transient.len().cmp(&a.1.transient.len())).then(a.0.cmp(&b.0))
    });
    rows(
        list.into_iter()
            .map(|(s, a)| {
                let mut counts: HashMap<&str, u64> = HashMap::new();
                for p in &a.transient {
                    *counts.entry(p).or_default() += 1;
                }
                let common = counts.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)));
                vec![
                    Cell::count(s),
                    Cell::Text(name_of(all, s)),
                    Cell::count(a.attempts),
                    Cell::count(a.retries),
                    Cell::percent(a.retries, a.attempts),
                    Cell::count(a.transient.len()),
                    Cell::opt_text(common.map(|(p, _)| p.to_string())),
                    Cell::opt_count(common.map(|(_, n)| *n)),
                    Cell::opt_count((!a.recoveries.is_empty()).then(|| avg(&a.recoveries))),
                ]
            })
            .collect(),
    )
}
