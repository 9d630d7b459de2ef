//! Which builds a run drives: the pipeline's existing builds for each matrix cell
//! (so that re-running a pipeline resumes them), or new ones.

use buildstate_core::{Build, BuildNumber, BuildStatus, MetaKey, MetaValue, Name, NewBuild};
use buildstate_store::{BuildFilter, Store, StoreError, build_number_stem, now};

use super::{RunError, RunOptions};
use crate::pipeline::{MatrixCell, Pipeline};

/// The metadata key that ties a build to the pipeline that runs it.
pub const PIPELINE_KEY: &str = "pipeline";

#[derive(Clone, Debug)]
pub(super) struct Target {
    pub cell: MatrixCell,
    pub build: Build,
    pub created: bool,
}

pub(super) async fn targets(
    store: &dyn Store,
    pipeline: &Pipeline,
    opts: &RunOptions,
) -> Result<Vec<Target>, RunError> {
    if let Some(reference) = &opts.build {
        let build = store.find_build(reference).await?;
        let cell = MatrixCell {
            platform: build.platform.clone(),
            os: build.os.clone(),
            image_type: build.image_type.clone(),
        };
        return Ok(vec![Target { cell, build, created: false }]);
    }
    let mut out = Vec::new();
    for cell in super::select_cells(pipeline, &opts.filter)? {
        let existing = if opts.fresh { None } else { find(store, pipeline, cell).await? };
        let target = match existing {
            Some(build) => Target { cell: cell.clone(), build, created: false },
            None => Target {
                cell: cell.clone(),
                build: create(store, pipeline, cell, opts).await?,
                created: true,
            },
        };
        out.push(target);
    }
    Ok(out)
}

/// The newest build of this pipeline for this cell that is not cancelled.
async fn find(
    store: &dyn Store,
    pipeline: &Pipeline,
    cell: &MatrixCell,
) -> Result<Option<Build>, StoreError> {
    Ok(cell_builds(store, &pipeline.name, cell)
        .await?
        .into_iter()
        .find(|b| b.status != BuildStatus::Cancelled))
}

/// The builds of `pipeline` for `cell`, newest first.
async fn cell_builds(
    store: &dyn Store,
    pipeline: &Name,
    cell: &MatrixCell,
) -> Result<Vec<Build>, StoreError> {
    let filter = BuildFilter {
        platform: Some(cell.platform.clone()),
        os: Some(cell.os.clone()),
        image_type: Some(cell.image_type.clone()),
        ..BuildFilter::default()
    };
    Ok(store.list_builds(&filter).await?.into_iter().filter(|b| belongs(b, pipeline)).collect())
}

/// The build of `pipeline` for `cell` a run would drive (the newest not cancelled), or
/// else its newest cancelled one, so that a waiter learns it was cancelled.
pub async fn build_of_cell(
    store: &dyn Store,
    pipeline: &Name,
    cell: &MatrixCell,
) -> Result<Option<Build>, StoreError> {
    let mine = cell_builds(store, pipeline, cell).await?;
    let live = mine.iter().find(|b| b.status != BuildStatus::Cancelled).cloned();
    Ok(live.or_else(|| mine.into_iter().next()))
}

/// Every build of `pipeline` on record, one per matrix cell, as [`build_of_cell`] picks.
pub async fn builds_of(store: &dyn Store, pipeline: &Name) -> Result<Vec<Build>, StoreError> {
    let mut by_cell: std::collections::BTreeMap<(Name, Name, Name), Build> =
        std::collections::BTreeMap::new();
    // Newest first: the first seen of a cell is its newest.
    for b in store.list_builds(&BuildFilter::default()).await?.into_iter().filter(|b| belongs(b, pipeline)) {
        let key = (b.platform.clone(), b.os.clone(), b.image_type.clone());
        match by_cell.get(&key) {
            Some(kept) if kept.status != BuildStatus::Cancelled || b.status == BuildStatus::Cancelled => {}
            _ => {
                by_cell.insert(key, b);
            }
        }
    }
    Ok(by_cell.into_values().collect())
}

pub(super) fn belongs(build: &Build, pipeline: &Name) -> bool {
    build.metadata.iter().any(|(k, v)| k.as_str() == PIPELINE_KEY && v.as_str() == pipeline.as_str())
}

/// Creates the cell's build. Without `--new` the number is derived from the pipeline
/// (`<os>-<image>-<platform>-<date>-<pipeline>`), so that two runners started on the
/// same pipeline at once converge on one build instead of creating two: the loser of
/// the race gets `AlreadyExists` and picks up the winner's build.
async fn create(
    store: &dyn Store,
    pipeline: &Pipeline,
    cell: &MatrixCell,
    opts: &RunOptions,
) -> Result<Build, RunError> {
    let key = MetaKey::new(PIPELINE_KEY)?;
    let value = MetaValue::new(&key, pipeline.name.as_str())?;
    let mut new = NewBuild {
        platform: cell.platform.clone(),
        os: cell.os.clone(),
        image_type: cell.image_type.clone(),
        number: None,
        catalog: pipeline.catalog.clone(),
        created_by: opts.actor.clone(),
        ci_url: opts.ci_url.clone(),
        metadata: [(key, value)].into_iter().collect(),
    };
    if !opts.fresh {
        let number = format!("{}{}", build_number_stem(&new, now()), pipeline.name);
        if let Ok(number) = BuildNumber::new(&number) {
            new.number = Some(number.clone());
            match store.create_build(&new).await {
                Ok(build) => return Ok(build),
                Err(StoreError::AlreadyExists { .. }) => {
                    let build = store.find_build(number.as_str()).await?;
                    if build.status != BuildStatus::Cancelled && belongs(&build, &pipeline.name) {
                        return Ok(build);
                    }
                    // Taken by a cancelled or foreign build: fall back to a sequence number.
                    new.number = None;
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            new.number = None;
        }
    }
    Ok(store.create_build(&new).await?)
}
