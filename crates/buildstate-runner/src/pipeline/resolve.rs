//! From the serde shape to a validated [`Pipeline`]: names, catalog, matrix, steps.
//!
//! Checks run in file order (name, catalog, matrix, defaults, states) and stop at the
//! first error, which points at the node that caused it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use buildstate_core::{CatalogError, Milestone, Name, StateCatalog, StateCode, StateCodeError};
use serde_saphyr::Location;

use super::error::Source;
use super::matrix::{self, name};
use super::raw::{RawCatalog, RawMilestone, RawPipeline, S};
use super::step::Context;
use super::{Pipeline, PipelineError, Program, RetryDefaults, Step};

const TOP_KEYS: &str = "name, catalog, matrix, defaults, states";
const STEP_KEYS: &str = "workdir, timeout, env, platform_env, retry";

pub(super) fn resolve(
    text: &str,
    file: &Path,
    retry_base: &RetryDefaults,
) -> Result<Pipeline, PipelineError> {
    let src = Source { file };
    let abs_file = std::path::absolute(file)
        .map_err(|e| PipelineError::read(file, format!("cannot make the path absolute: {e}")))?;
    let dir = abs_file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);

    if is_blank(text) {
        return Err(src.invalid(
            Location::UNKNOWN,
            format!("the file is empty; expected a pipeline with keys {TOP_KEYS}"),
        ));
    }
    let raw: S<RawPipeline> = serde_saphyr::from_str(text).map_err(|e| PipelineError::yaml(file, &e))?;
    let root = raw.referenced;
    let raw = raw.value;

    let name = match &raw.name {
        Some(n) => name(src, n, "pipeline name")?,
        None => {
            return Err(src
                .invalid(root, "missing key `name`; expected the pipeline's name, such as rhel-sap-images"));
        }
    };
    let catalog = catalog(src, raw.catalog.as_ref())?;
    let cells = matrix::expand(src, raw.matrix.as_ref(), root)?;
    let mut platforms: Vec<Name> = Vec::new();
    for cell in &cells {
        if !platforms.contains(&cell.platform) {
            platforms.push(cell.platform.clone());
        }
    }
    let cx = Context { src, dir: &dir, platforms: &platforms, retry_base };
    let defaults = cx.defaults(raw.defaults.as_ref())?;

    let Some(states) = raw.states.as_ref().filter(|s| !s.value.0.is_empty()) else {
        let at = raw.states.as_ref().map_or(root, |s| s.referenced);
        return Err(src.invalid(
            at,
            "no states; expected `states:` with at least one state code and what it runs, such as `0: {run: \"true\"}`",
        ));
    };
    let mut steps = BTreeMap::new();
    let mut seen: BTreeMap<StateCode, Location> = BTreeMap::new();
    let mut mapped_at: BTreeMap<StateCode, Location> = BTreeMap::new();
    for (key, step) in &states.value.0 {
        let code = state_code(src, key)?;
        if !catalog.contains(code) {
            let hint = if catalog.is_default() {
                format!(" (or add it to the catalog: `catalog: {{insert: [{{code: {code}, name: …}}]}}`)")
            } else {
                String::new()
            };
            return Err(src.invalid(
                key.referenced,
                format!("state {code} is not in the catalog; expected one of: {}{hint}", catalog.code_list()),
            ));
        }
        if let Some(first) = seen.insert(code, key.referenced) {
            return Err(src.invalid(
                key.referenced,
                format!(
                    "state {code} is listed twice (first at line {}); expected each state once",
                    first.line()
                ),
            ));
        }
        let Some(step) = step else {
            return Err(src.invalid(
                key.referenced,
                format!("state {code} is empty; expected what it runs: `run`, `script`, `packer` or `ansible`, and optionally {STEP_KEYS}"),
            ));
        };
        steps.insert(code, cx.step(code, step.referenced, &step.value, &defaults)?);
        mapped_at.insert(code, step.referenced);
    }
    tool_maps(src, &catalog, &steps, &mapped_at)?;

    Ok(Pipeline { name, file: abs_file, dir, catalog, matrix: cells, steps })
}

/// Whether the text holds no YAML content: only blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines().map(str::trim).all(|l| l.is_empty() || l.starts_with('#') || l == "---" || l == "...")
}

/// A tool step's map may only name milestones of the catalog after its own and before
/// the next step: those are the ones it covers.
fn tool_maps(
    src: Source<'_>,
    catalog: &StateCatalog,
    steps: &BTreeMap<StateCode, Step>,
    at: &BTreeMap<StateCode, Location>,
) -> Result<(), PipelineError> {
    for (code, step) in steps {
        let Program::Tool(tool) = &step.program else { continue };
        let next = steps
            .range((std::ops::Bound::Excluded(*code), std::ops::Bound::Unbounded))
            .next()
            .map(|(c, _)| *c);
        let place = at.get(code).copied().unwrap_or(Location::UNKNOWN);
        for m in tool.mapped() {
            if !catalog.contains(m) {
                return Err(src.invalid(
                    place,
                    format!("the {} map of state {code} names milestone {m}, which is not in the catalog; expected one of: {}", tool.name(), catalog.code_list()),
                ));
            }
            if m <= *code || next.is_some_and(|n| m >= n) {
                let upto = next.map_or_else(|| "100".to_owned(), |n| format!("the next step, {n}"));
                return Err(src.invalid(
                    place,
                    format!(
                        "the {} map of state {code} names milestone {m}; expected milestones after {code} and before {upto}: a tool step moves the build through the milestones that follow it",
                        tool.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn state_code(src: Source<'_>, raw: &S<String>) -> Result<StateCode, PipelineError> {
    raw.value.parse::<StateCode>().map_err(|e| {
        let message = match e {
            StateCodeError::NotANumber(text) => {
                format!("`{text}` is not a state code; expected a whole number from 0 to 100")
            }
            StateCodeError::OutOfRange(n) => {
                format!("state {n} is out of range; expected a code from 0 to 100")
            }
        };
        src.invalid(raw.referenced, message)
    })
}

/// A state catalog on its own: the text is what a pipeline file puts after `catalog:`.
pub(super) fn catalog_only(text: &str, file: &Path) -> Result<StateCatalog, PipelineError> {
    let src = Source { file };
    if is_blank(text) {
        return Err(src.invalid(
            Location::UNKNOWN,
            "the file is empty; expected a catalog: `default`, `{insert: [milestones]}` or a list of milestones",
        ));
    }
    let raw: S<RawCatalog> = serde_saphyr::from_str(text).map_err(|e| PipelineError::yaml(file, &e))?;
    catalog(src, Some(&raw))
}

fn catalog(src: Source<'_>, raw: Option<&S<RawCatalog>>) -> Result<StateCatalog, PipelineError> {
    let default = StateCatalog::default_catalog();
    let Some(raw) = raw else { return Ok(default) };
    match &raw.value {
        RawCatalog::Default => Ok(default),
        RawCatalog::Insert(list) => {
            let mut extra: Vec<Milestone> = Vec::with_capacity(list.len());
            for entry in list {
                let m = milestone(src, entry)?;
                if let Some(existing) =
                    default.get(m.code).or_else(|| extra.iter().find(|e| e.code == m.code))
                {
                    return Err(src.invalid(
                        code_at(entry),
                        format!(
                            "milestone {} is already in the catalog ({}); expected a new code, such as one between \
                             two existing ones",
                            m.code, existing.name
                        ),
                    ));
                }
                extra.push(m);
            }
            default.with_inserted(extra).map_err(|e| src.invalid(raw.referenced, catalog_error(&e)))
        }
        RawCatalog::Full(list) => {
            let mut milestones: Vec<Milestone> = Vec::with_capacity(list.len());
            for entry in list {
                let m = milestone(src, entry)?;
                if let Some(before) = milestones.last().filter(|before| before.code >= m.code) {
                    return Err(src.invalid(
                        code_at(entry),
                        format!(
                            "milestone {} follows {}; expected codes in ascending order, each once",
                            m.code, before.code
                        ),
                    ));
                }
                milestones.push(m);
            }
            StateCatalog::new(milestones).map_err(|e| src.invalid(raw.referenced, catalog_error(&e)))
        }
    }
}

fn code_at(entry: &S<RawMilestone>) -> Location {
    entry.value.code.as_ref().map_or(entry.referenced, |c| c.referenced)
}

fn catalog_error(e: &CatalogError) -> String {
    match e {
        CatalogError::MissingEnds => {
            "the catalog does not run from 0 to 100; expected milestones 0 (first) and 100 (last)".to_owned()
        }
        other => format!("invalid catalog: {other}"),
    }
}

fn milestone(src: Source<'_>, raw: &S<RawMilestone>) -> Result<Milestone, PipelineError> {
    let m = &raw.value;
    let missing = |key: &str| {
        src.invalid(
            raw.referenced,
            format!("milestone has no `{key}`; expected code and name (meaning and tool are optional)"),
        )
    };
    let code = state_code(src, m.code.as_ref().ok_or_else(|| missing("code"))?)?;
    let name = name(src, m.name.as_ref().ok_or_else(|| missing("name"))?, "milestone name")?;
    let text = |v: &Option<S<String>>| v.as_ref().map(|s| s.value.trim().to_owned()).unwrap_or_default();
    Ok(Milestone { code, name: name.as_str().to_owned(), meaning: text(&m.meaning), tool: text(&m.tool) })
}
