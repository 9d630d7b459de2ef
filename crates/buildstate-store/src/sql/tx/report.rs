//! The report primitives in the database: one statement each, filtered, counted and
//! grouped there, so that a report reads only the rows it shows or aggregates.

use buildstate_core::{Build, BuildId, EventKind, FailureRecord, HistoryEvent};

use super::super::text;
use super::{SqlTx, SqlValue, ValueRow, column, decode};
use crate::report::{
    BuildCount, DurationRow, FailureGroup, Group, ReportFilter, STAT_EVENTS, Saving, StatKind, StatRow,
    aggregate, delivery_ms,
};
use crate::sql::conn::SqlConn;
use crate::sql_rows::ColumnReader;
use crate::{StoreResult, Tx};

/// The filter's conditions on `builds` columns, numbering their placeholders after the
/// values already in `values` (to which theirs are added). Every value is bound.
fn conditions(f: &ReportFilter, values: &mut Vec<SqlValue>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cond = |sql: &str, v: SqlValue, values: &mut Vec<SqlValue>| {
        values.push(v);
        out.push(sql.replace('$', &format!("${}", values.len())));
    };
    if let Some(t) = f.since {
        cond("created_at >= $", t.into(), values);
    }
    if let Some(p) = &f.platform {
        cond("platform = $", p.as_str().into(), values);
    }
    if let Some(o) = &f.os {
        cond("os = $", o.as_str().into(), values);
    }
    if let Some(i) = &f.image_type {
        cond("image_type = $", i.as_str().into(), values);
    }
    if let Some(p) = &f.pipeline {
        cond(text::PIPELINE_IS, p.as_str().into(), values);
    }
    if let Some(n) = f.more_failures_than {
        cond("failure_count > $", n.into(), values);
    }
    if !f.statuses.is_empty() {
        let marks: Vec<String> = f
            .statuses
            .iter()
            .map(|s| {
                values.push(s.as_str().into());
                format!("${}", values.len())
            })
            .collect();
        out.push(format!("status IN ({})", marks.join(", ")));
    }
    out
}

fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) }
}

/// ` AND build_id IN (SELECT id FROM builds WHERE …)`, or nothing without a filter.
fn of_builds(f: &ReportFilter, values: &mut Vec<SqlValue>) -> String {
    let conds = conditions(f, values);
    if conds.is_empty() {
        return String::new();
    }
    format!(" AND build_id IN (SELECT id FROM builds{})", where_clause(&conds))
}

impl<C: SqlConn> SqlTx<C> {
    pub(super) async fn sql_report_builds(&mut self, f: &ReportFilter) -> StoreResult<Vec<Build>> {
        let mut values = Vec::new();
        let sql = format!("{}{}", text::SELECT_BUILDS, where_clause(&conditions(f, &mut values)));
        self.all(&sql, &values, decode::build).await
    }

    pub(super) async fn sql_latest_builds(&mut self, f: &ReportFilter) -> StoreResult<Vec<Build>> {
        // For each cell, its newest build by the cell's index (`ORDER BY … LIMIT 1`, read
        // backwards), rather than a max over every build.
        let mut values = Vec::new();
        let outer = conditions(f, &mut values);
        let and: String = outer.iter().map(|c| format!(" AND {c}")).collect();
        let cells = self.dialect.distinct_cells.replace("{w}", &where_clause(&outer)).replace("{and}", &and);
        let mut inner = conditions(f, &mut values);
        inner.extend([
            "n.platform = c.platform".into(),
            "n.os = c.os".into(),
            "n.image_type = c.image_type".into(),
        ]);
        let sql = format!(
            "{} WHERE id IN (SELECT (SELECT id FROM builds n WHERE {} ORDER BY created_at DESC, id DESC LIMIT 1) \
             FROM ({cells}) c)",
            text::SELECT_BUILDS,
            inner.join(" AND "),
        );
        self.all(&sql, &values, decode::build).await
    }

    pub(super) async fn sql_count_builds(
        &mut self,
        f: &ReportFilter,
        by: Group,
    ) -> StoreResult<Vec<BuildCount>> {
        let key = match by {
            Group::All => None,
            Group::Platform => Some("platform"),
            Group::Os => Some("os"),
            Group::ImageType => Some("image_type"),
            Group::State => Some("state"),
            Group::Month => Some(self.dialect.month_created),
        };
        let mut values = Vec::new();
        let conds = where_clause(&conditions(f, &mut values));
        let sql = match key {
            Some(k) => format!(
                "SELECT {k}, status, needs_intervention, count(*) FROM builds{conds} GROUP BY 1, 2, 3"
            ),
            None => format!("SELECT status, needs_intervention, count(*) FROM builds{conds} GROUP BY 1, 2"),
        };
        let rows = self.rows(&sql, &values).await?;
        let first = usize::from(key.is_some());
        rows.iter()
            .map(|r| {
                let row = ValueRow(r);
                let key = match by {
                    Group::All => String::new(),
                    Group::State => column("read a report count", row.int(0))?.to_string(),
                    _ => column("read a report count", row.text(0))?,
                };
                let status = column("read a report count", row.text(first))?;
                Ok(BuildCount {
                    key,
                    status: status.parse().map_err(|e| crate::StoreError::Backend {
                        context: "read a report count",
                        source: Box::new(e),
                    })?,
                    needs_intervention: column("read a report count", row.bool(first + 1))?,
                    builds: column("read a report count", row.int(first + 2))?.max(0) as u64,
                })
            })
            .collect()
    }

    pub(super) async fn sql_report_events(
        &mut self,
        f: &ReportFilter,
        kinds: &[EventKind],
    ) -> StoreResult<Vec<(BuildId, HistoryEvent)>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut values: Vec<SqlValue> = kinds.iter().map(|k| k.as_str().into()).collect();
        let marks: Vec<String> = (1..=kinds.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "{} WHERE kind IN ({}){} ORDER BY build_id, seq",
            text::SELECT_ALL_EVENTS,
            marks.join(", "),
            of_builds(f, &mut values)
        );
        self.all(&sql, &values, |r| Ok((column("read an event", ValueRow(r).id(0))?, decode::event(r)?)))
            .await
    }

    pub(super) async fn sql_failure_groups(&mut self, f: &ReportFilter) -> StoreResult<Vec<FailureGroup>> {
        let what = "read failure groups";
        let mut values = Vec::new();
        let restrict = of_builds(f, &mut values);
        let sql = format!("{}{restrict}{}", text::FAILURE_GROUPS, text::FAILURE_GROUPS_END);
        let groups = self.rows(&sql, &values).await?;
        let mut out = Vec::with_capacity(groups.len());
        for g in &groups {
            let row = ValueRow(g);
            let (state, kind, at) = (g[0].clone(), g[1].clone(), g[4].clone());
            let mut latest_values = vec![state, kind, at];
            let restrict = of_builds(f, &mut latest_values);
            let latest_sql =
                format!("{}{restrict}{}", text::LATEST_OF_FAILURE_GROUP, text::LATEST_OF_FAILURE_GROUP_END);
            let Some(latest) = self.first(&latest_sql, &latest_values, decode::failure).await? else {
                continue;
            };
            out.push(FailureGroup {
                state: latest.state,
                failure_type: latest.info.failure_type.clone(),
                failures: column(what, row.int(2))?.max(0) as u64,
                builds: column(what, row.int(3))?.max(0) as u64,
                latest,
            });
        }
        Ok(out)
    }

    pub(super) async fn sql_custom_catalogs(&mut self) -> StoreResult<Vec<buildstate_core::StateCatalog>> {
        let what = "read the builds' own catalogs";
        let rows = self.rows(text::CUSTOM_CATALOGS, &[]).await?;
        let mut out: Vec<buildstate_core::StateCatalog> = Vec::new();
        for r in &rows {
            let Some(text) = column(what, ValueRow(r).opt_text(0))? else { continue };
            let catalog: buildstate_core::StateCatalog = serde_json::from_str(&text)
                .map_err(|e| crate::StoreError::Backend { context: what, source: e.into() })?;
            // Texts that differ in spacing or order are the same catalog.
            if !out.contains(&catalog) {
                out.push(catalog);
            }
        }
        Ok(out)
    }

    pub(super) async fn sql_delivery_times(
        &mut self,
        f: &ReportFilter,
    ) -> StoreResult<Vec<(buildstate_core::Name, u64)>> {
        let what = "read delivery times";
        let mut values = Vec::new();
        let mut sql = text::DELIVERY_TIMES.to_owned();
        for c in conditions(f, &mut values) {
            sql.push_str(" AND ");
            sql.push_str(&c);
        }
        self.all(&sql, &values, |r| {
            let row = ValueRow(r);
            let platform: buildstate_core::Name =
                column(what, row.text(0))?.parse().map_err(|e: buildstate_core::NameError| {
                    crate::StoreError::Backend { context: what, source: e.into() }
                })?;
            Ok((platform, delivery_ms(column(what, row.opt_time(1))?, column(what, row.opt_time(2))?)))
        })
        .await
    }

    pub(super) async fn sql_report_failures(&mut self, f: &ReportFilter) -> StoreResult<Vec<FailureRecord>> {
        let mut values = Vec::new();
        let sql = format!("{} WHERE true{}", text::SELECT_FAILURES, of_builds(f, &mut values));
        self.all(&sql, &values, decode::failure).await
    }
}

/// A statistics row as read back.
fn stat_row(r: &[SqlValue]) -> StoreResult<StatRow> {
    let row = ValueRow(r);
    let name = |i| -> StoreResult<buildstate_core::Name> {
        let text = column(STATS, row.text(i))?;
        text.parse().map_err(|e: buildstate_core::NameError| crate::StoreError::Backend {
            context: STATS,
            source: e.into(),
        })
    };
    stat_row_named(r, (name(0)?, name(1)?, name(2)?))
}

const STATS: &str = "read attempt statistics";

/// A statistics row whose platform, OS and image type were read already.
fn stat_row_named(
    r: &[SqlValue],
    (platform, os, image_type): (buildstate_core::Name, buildstate_core::Name, buildstate_core::Name),
) -> StoreResult<StatRow> {
    let row = ValueRow(r);
    let state = column(STATS, row.int(3))?;
    let kind = match r.get(4) {
        Some(SqlValue::Text(k)) => StatKind::parse(k),
        _ => None,
    };
    Ok(StatRow {
        platform,
        os,
        image_type,
        state: buildstate_core::StateCode::new(state)
            .map_err(|e| crate::StoreError::Backend { context: STATS, source: e.into() })?,
        kind: kind
            .ok_or_else(|| crate::StoreError::Backend { context: STATS, source: "an unknown kind".into() })?,
        bucket: u32::try_from(column(STATS, row.int(5))?).unwrap_or(0),
        attempts: column(STATS, row.int(6))?,
        total_ms: column(STATS, row.int(7))?,
        retries: column(STATS, row.int(8))?,
    })
}

/// A row of [`text::SELECT_RESUME_SAVINGS`], its strings moved out.
fn saving(mut r: Vec<SqlValue>) -> StoreResult<Saving> {
    const WHAT: &str = "read resume savings";
    let bad = |e: String| crate::StoreError::Backend { context: WHAT, source: e.into() };
    let row = ValueRow(&r);
    let (resumes, saved_ms) = (column(WHAT, row.int(4))?, column(WHAT, row.int(5))?);
    let mut take = |i: usize| match r.get_mut(i).map(|v| std::mem::replace(v, SqlValue::Null)) {
        Some(SqlValue::Text(t)) => Ok(t),
        _ => Err(bad(format!("column {i} is not text"))),
    };
    let name = |t: String| buildstate_core::Name::try_from(t).map_err(|e| bad(e.to_string()));
    Ok(Saving {
        number: buildstate_core::BuildNumber::try_from(take(0)?).map_err(|e| bad(e.to_string()))?,
        platform: name(take(1)?)?,
        os: name(take(2)?)?,
        image_type: name(take(3)?)?,
        resumes: u32::try_from(resumes).unwrap_or(0),
        saved_ms: saved_ms.max(0) as u64,
    })
}

impl<C: SqlConn> SqlTx<C> {
    /// From the `attempt_stats` table when the filter is by platform, OS and image
    /// type only (what the table is keyed by); otherwise from the histories.
    pub(super) async fn sql_attempt_stats(&mut self, f: &ReportFilter) -> StoreResult<Vec<StatRow>> {
        if f.since.is_some()
            || f.pipeline.is_some()
            || !f.statuses.is_empty()
            || f.more_failures_than.is_some()
        {
            let builds = self.sql_report_builds(f).await?;
            let events = self.sql_report_events(f, STAT_EVENTS).await?;
            return Ok(aggregate(&builds, events));
        }
        let mut values = Vec::new();
        let mut sql = text::SELECT_ATTEMPT_STATS.to_owned();
        for c in conditions(f, &mut values) {
            sql.push_str(" AND ");
            sql.push_str(&c);
        }
        self.all(&sql, &values, stat_row).await
    }

    /// From the table when nothing is filtered (it is over all builds); otherwise from
    /// the histories.
    pub(super) async fn sql_duration_histogram(&mut self, f: &ReportFilter) -> StoreResult<Vec<DurationRow>> {
        if *f != ReportFilter::default() {
            let events = self.sql_report_events(f, &[buildstate_core::EventKind::Completed]).await?;
            let events: Vec<HistoryEvent> = events.into_iter().map(|(_, e)| e).collect();
            return Ok(crate::report::sum_durations(crate::report::durations_of(&events)));
        }
        let what = "read the duration histogram";
        self.all(text::SELECT_DURATIONS, &[], |r| {
            let row = ValueRow(r);
            Ok(DurationRow {
                state: buildstate_core::StateCode::new(column(what, row.int(0))?)
                    .map_err(|e| crate::StoreError::Backend { context: what, source: e.into() })?,
                bucket: u32::try_from(column(what, row.int(1))?).unwrap_or(0),
                attempts: column(what, row.int(2))?,
                total_ms: column(what, row.int(3))?,
            })
        })
        .await
    }

    pub(super) async fn sql_add_duration_histogram(&mut self, rows: &[DurationRow]) -> StoreResult<()> {
        for r in rows {
            self.write(text::ADD_DURATION, "add to the duration histogram", super::value::duration_row(r))
                .await?;
        }
        Ok(())
    }

    pub(super) async fn sql_resume_savings(&mut self, f: &ReportFilter) -> StoreResult<Vec<Saving>> {
        let mut values = Vec::new();
        // Only builds that failed are resumed: the table holds nothing else, so that part of
        // the filter needs no look at the builds.
        let f = ReportFilter { more_failures_than: None, ..f.clone() };
        let sql = format!("{}{}", text::SELECT_RESUME_SAVINGS, of_builds(&f, &mut values));
        // Tens of thousands of rows: each one's strings move into the saving, uncopied.
        self.rows(&sql, &values).await?.into_iter().map(saving).collect()
    }

    pub(super) async fn sql_add_resume_savings(
        &mut self,
        id: BuildId,
        resumes: u32,
        saved_ms: u64,
    ) -> StoreResult<()> {
        let params = vec![id.into(), resumes.into(), super::value::to_i64("saved ms", saved_ms)?.into()];
        self.write(text::ADD_RESUME_SAVINGS, "add to the resume savings", params).await
    }

    pub(super) async fn sql_attempt_totals(
        &mut self,
        f: &ReportFilter,
        by_platform: bool,
    ) -> StoreResult<Vec<crate::report::StatTotal>> {
        if f.since.is_some()
            || f.pipeline.is_some()
            || !f.statuses.is_empty()
            || f.more_failures_than.is_some()
        {
            return Ok(crate::report::totals(self.sql_attempt_stats(f).await?, by_platform));
        }
        let what = "read attempt totals";
        let mut values = Vec::new();
        let w: String = conditions(f, &mut values).iter().map(|c| format!(" AND {c}")).collect();
        let sql = text::ATTEMPT_TOTALS
            .replace("{p}", if by_platform { "platform, " } else { "" })
            .replace("{w}", &w);
        let first = usize::from(by_platform);
        self.all(&sql, &values, |r| {
            let row = ValueRow(r);
            let platform = if by_platform {
                Some(column(what, row.text(0))?.parse().map_err(|e: buildstate_core::NameError| {
                    crate::StoreError::Backend { context: what, source: e.into() }
                })?)
            } else {
                None
            };
            let kind = column(what, row.text(first + 1))?;
            Ok(crate::report::StatTotal {
                platform,
                state: buildstate_core::StateCode::new(column(what, row.int(first))?)
                    .map_err(|e| crate::StoreError::Backend { context: what, source: e.into() })?,
                kind: StatKind::parse(&kind).ok_or_else(|| crate::StoreError::Backend {
                    context: what,
                    source: format!("kind `{kind}`").into(),
                })?,
                attempts: column(what, row.int(first + 2))?,
                total_ms: column(what, row.int(first + 3))?,
                retries: column(what, row.int(first + 4))?,
            })
        })
        .await
    }

    /// The fallback from the duration histogram (a few thousand rows, coarsened in the
    /// database), the cells' own from their rows of `attempt_stats` by its key: an ETA
    /// reads the history of the cells it estimates for, not of all of them.
    pub(super) async fn sql_eta_percentiles(
        &mut self,
        cells: &[crate::report::CellKey],
    ) -> StoreResult<crate::report::EtaPercentiles> {
        let what = "read the ETA history";
        let coarse = crate::report::COARSE.to_string();
        let all_rows = self.rows(&text::ETA_ALL.replace("{c}", &coarse), &[]).await?;
        let mut all = Vec::with_capacity(all_rows.len());
        for r in &all_rows {
            let row = ValueRow(r);
            let state = u8::try_from(column(what, row.int(0))?).unwrap_or(u8::MAX);
            let bucket = u32::try_from(column(what, row.int(1))?).unwrap_or(0);
            all.push((state, bucket, column(what, row.int(2))?.max(0) as u64));
        }
        let mut cell = Vec::new();
        // A few hundred cells at most in practice; chunked to stay far below any limit on
        // bound parameters.
        for chunk in cells.chunks(300) {
            let mut values: Vec<SqlValue> = Vec::with_capacity(chunk.len() * 3);
            let mut marks = Vec::with_capacity(chunk.len());
            for (platform, os, image_type) in chunk {
                let n = values.len();
                marks.push(format!("(${}, ${}, ${})", n + 1, n + 2, n + 3));
                values.extend([platform.as_str().into(), os.as_str().into(), image_type.as_str().into()]);
            }
            let asked: std::collections::HashMap<(&str, &str, &str), &crate::report::CellKey> =
                chunk.iter().map(|c| ((c.0.as_str(), c.1.as_str(), c.2.as_str()), c)).collect();
            let sql = text::ETA_CELLS.replace("{cells}", &marks.join(", "));
            for r in &self.rows(&sql, &values).await? {
                let row = ValueRow(r);
                // The names are the ones asked for: take them from the request.
                let named = match (r.first(), r.get(1), r.get(2)) {
                    (Some(SqlValue::Text(a)), Some(SqlValue::Text(b)), Some(SqlValue::Text(c))) => {
                        asked.get(&(a.as_str(), b.as_str(), c.as_str()))
                    }
                    _ => None,
                };
                let Some((platform, os, image_type)) = named.copied() else { continue };
                let state = u8::try_from(column(what, row.int(3))?).unwrap_or(u8::MAX);
                let bucket = u32::try_from(column(what, row.int(4))?).unwrap_or(0);
                let n = column(what, row.int(5))?.max(0) as u64;
                cell.push(((platform.clone(), os.clone(), image_type.clone(), state), bucket, n));
            }
        }
        Ok(crate::report::EtaPercentiles {
            cell: crate::report::percentile_buckets(cell),
            all: crate::report::percentile_buckets(all),
        })
    }

    pub(super) async fn sql_transient_messages(
        &mut self,
        f: &ReportFilter,
    ) -> StoreResult<Vec<(buildstate_core::StateCode, String, u64)>> {
        let what = "read transient failure messages";
        let mut values = Vec::new();
        let restrict = of_builds(f, &mut values);
        let sql = format!("{}{restrict}{}", text::TRANSIENT_MESSAGES, text::TRANSIENT_MESSAGES_END);
        self.all(&sql, &values, |r| {
            let row = ValueRow(r);
            let state = buildstate_core::StateCode::new(column(what, row.int(0))?)
                .map_err(|e| crate::StoreError::Backend { context: what, source: e.into() })?;
            Ok((state, column(what, row.text(1))?, column(what, row.int(2))?.max(0) as u64))
        })
        .await
    }

    pub(super) async fn sql_add_attempt_stats(&mut self, rows: &[StatRow]) -> StoreResult<()> {
        for r in rows {
            self.write(
                text::ADD_ATTEMPT_STAT,
                "add to the attempt statistics",
                super::value::attempt_stat(r),
            )
            .await?;
        }
        Ok(())
    }
}

// Keeps `Tx` in scope for the default methods the SQL ones replace.
#[allow(unused_imports)]
use Tx as _;
