//! Rows to domain values. A row that does not decode is reported as corrupt, naming the
//! build and the column, never unwrapped.

use std::collections::BTreeMap;
use std::str::FromStr;

use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, CatalogItem, CatalogKind, FailureInfo, FailureRecord,
    HistoryEvent, ImageType, Lease, LeaseToken, MetaKey, MetaValue, Name, OsVersion, Platform, Sha256Hex,
    StateCatalog, StateCode,
};
use buildstate_store::{LeaseRecord, StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Json};

use crate::error::{PgContext, corrupt};

/// Reads the columns of one row on behalf of one build, so that every decoding error
/// names the build and the column.
pub(crate) struct Cols<'r> {
    row: &'r Row,
    build: String,
}

impl<'r> Cols<'r> {
    /// `build_column`: the column holding the build's id, for messages.
    pub(crate) fn new(row: &'r Row, build_column: usize) -> Self {
        let build = row
            .try_get::<_, uuid::Uuid>(build_column)
            .map_or_else(|_| "(unreadable id)".to_owned(), |u| u.hyphenated().to_string());
        Cols { row, build }
    }

    pub(crate) fn for_build(row: &'r Row, build: &BuildId) -> Self {
        Cols { row, build: build.to_string() }
    }

    pub(crate) fn get<'a, T: FromSql<'a>>(&'a self, i: usize, column: &str) -> StoreResult<T> {
        self.row.try_get(i).map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn parse<T>(
        &self,
        i: usize,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> StoreResult<T> {
        let raw: &str = self.get(i, column)?;
        parse(raw).map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn word<T: FromStr<Err: std::fmt::Display>>(&self, i: usize, column: &str) -> StoreResult<T> {
        self.parse(i, column, |s| s.parse::<T>().map_err(|e| e.to_string()))
    }

    fn name(&self, i: usize, column: &str) -> StoreResult<Name> {
        self.parse(i, column, |s| Name::new(s).map_err(|e| e.to_string()))
    }

    fn number(&self, i: usize) -> StoreResult<BuildNumber> {
        self.parse(i, "number", |s| BuildNumber::new(s).map_err(|e| e.to_string()))
    }

    fn id(&self, i: usize, column: &str) -> StoreResult<BuildId> {
        self.get::<uuid::Uuid>(i, column).map(BuildId::from_uuid)
    }

    /// PostgreSQL integers are signed; counters are stored in their unsigned range.
    fn unsigned<T: TryFrom<i64>>(&self, i: usize, column: &str) -> StoreResult<T> {
        let n: i64 = self.get(i, column)?;
        T::try_from(n).map_err(|_| corrupt(&self.build, format!("column {column}: {n} is out of range")))
    }

    fn opt_unsigned<T: TryFrom<i64>>(&self, i: usize, column: &str) -> StoreResult<Option<T>> {
        let n: Option<i64> = self.get(i, column)?;
        n.map(|n| {
            T::try_from(n).map_err(|_| corrupt(&self.build, format!("column {column}: {n} is out of range")))
        })
        .transpose()
    }

    fn state(&self, i: usize, column: &str) -> StoreResult<StateCode> {
        let n: i16 = self.get(i, column)?;
        StateCode::new(i64::from(n)).map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn opt_state(&self, i: usize, column: &str) -> StoreResult<Option<StateCode>> {
        let n: Option<i16> = self.get(i, column)?;
        n.map(|n| StateCode::new(i64::from(n)))
            .transpose()
            .map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }
}

/// Decodes a row of `build_columns!` (see `sql.rs`).
pub(crate) fn build(row: &Row) -> StoreResult<Build> {
    let c = Cols::new(row, 0);
    let catalog: Option<Json<StateCatalog>> = c.get(5, "catalog")?;
    let metadata: Json<BTreeMap<MetaKey, MetaValue>> = c.get(17, "metadata")?;
    Ok(Build {
        id: c.id(0, "id")?,
        number: c.number(1)?,
        platform: c.name(2, "platform")?,
        os: c.name(3, "os")?,
        image_type: c.name(4, "image_type")?,
        catalog: catalog.map_or_else(StateCatalog::default_catalog, |Json(c)| c),
        state: c.state(6, "state")?,
        status: c.word(7, "status")?,
        needs_intervention: c.get(8, "needs_intervention")?,
        attempt: c.unsigned(9, "attempt")?,
        attempt_started_at: c.get(10, "attempt_started_at")?,
        created_at: c.get(11, "created_at")?,
        started_at: c.get(12, "started_at")?,
        ended_at: c.get(13, "ended_at")?,
        updated_at: c.get(14, "updated_at")?,
        created_by: c.get(15, "created_by")?,
        ci_url: c.get(16, "ci_url")?,
        metadata: metadata.0,
        version: c.unsigned(18, "version")?,
        history_len: c.unsigned(19, "history_len")?,
        failure_count: c.unsigned(20, "failure_count")?,
    })
}

/// `(id, number)` of a prefix candidate.
pub(crate) fn id_and_number(row: &Row) -> StoreResult<(BuildId, BuildNumber)> {
    let c = Cols::new(row, 0);
    Ok((c.id(0, "id")?, c.number(1)?))
}

/// Decodes a row of `event_columns!`.
pub(crate) fn event(row: &Row) -> StoreResult<HistoryEvent> {
    let c = Cols::new(row, 0);
    Ok(HistoryEvent {
        seq: c.unsigned(1, "seq")?,
        at: c.get(2, "at")?,
        kind: c.word(3, "kind")?,
        state: c.state(4, "state")?,
        attempt: c.unsigned(5, "attempt")?,
        actor: c.get(6, "actor")?,
        started_at: c.get(7, "started_at")?,
        duration_ms: c.opt_unsigned(8, "duration_ms")?,
        exit_code: c.get(9, "exit_code")?,
        message: c.get(10, "message")?,
        log: c.get(11, "log")?,
        from_state: c.opt_state(12, "from_state")?,
        forced: c.get(13, "forced")?,
    })
}

/// Decodes a row of `failure_columns!`.
pub(crate) fn failure(row: &Row) -> StoreResult<FailureRecord> {
    let c = Cols::new(row, 0);
    let details: Json<BTreeMap<String, serde_json::Value>> = c.get(9, "details")?;
    Ok(FailureRecord {
        build_id: c.id(0, "build_id")?,
        number: c.unsigned(1, "number")?,
        state: c.state(2, "state")?,
        attempt: c.unsigned(3, "attempt")?,
        at: c.get(4, "at")?,
        info: FailureInfo {
            failure_type: c.word(5, "failure_type")?,
            class: c.word(6, "class")?,
            component: c.get(7, "component")?,
            message: c.get(8, "message")?,
            details: details.0,
            exit_code: c.get(10, "exit_code")?,
        },
        resolved: c.get(11, "resolved")?,
        resolution: c.get(12, "resolution")?,
        resolved_at: c.get(13, "resolved_at")?,
    })
}

/// Decodes a row of `lease_columns!`.
pub(crate) fn lease(row: &Row) -> StoreResult<LeaseRecord> {
    let c = Cols::new(row, 0);
    Ok(LeaseRecord {
        lease: Lease {
            build_id: c.id(0, "build_id")?,
            owner: c.get(1, "owner")?,
            host: c.get(2, "host")?,
            pid: c.unsigned(3, "pid")?,
            token: LeaseToken::new(c.unsigned(4, "token")?),
            acquired_at: c.get(5, "acquired_at")?,
            renewed_at: c.get(6, "renewed_at")?,
            expires_at: c.get(7, "expires_at")?,
        },
        released: c.get(8, "released")?,
    })
}

/// A held lease and, after its columns, its build's number.
pub(crate) fn held_lease(row: &Row) -> StoreResult<(BuildNumber, Lease)> {
    Ok((Cols::new(row, 0).number(9)?, lease(row)?.lease))
}

/// Decodes a row of `artifact_columns!` for `build`.
pub(crate) fn artifact(build: &BuildId, row: &Row) -> StoreResult<Artifact> {
    let c = Cols::for_build(row, build);
    let sha256: Option<&str> = c.get(5, "sha256")?;
    Ok(Artifact {
        name: c.get(0, "name")?,
        kind: c.word(1, "kind")?,
        uri: c.get(2, "uri")?,
        region: c.get(3, "region")?,
        size_bytes: c.opt_unsigned(4, "size_bytes")?,
        sha256: sha256
            .map(Sha256Hex::new)
            .transpose()
            .map_err(|e| corrupt(&c.build, format!("column sha256: {e}")))?,
        created_at: c.get(6, "created_at")?,
    })
}

/// Decodes a row of a catalog table (`sql::KindSql` column order).
pub(crate) fn catalog_item(kind: CatalogKind, row: &Row) -> StoreResult<CatalogItem> {
    fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, String> {
        row.try_get(i).map_err(|e| e.to_string())
    }
    let raw_name: String = row.try_get(0).ctx("read a catalog name")?;
    let unsigned = |n: i64| u32::try_from(n).map_err(|_| format!("{n} is out of range"));
    let decode = || -> Result<CatalogItem, String> {
        let name = Name::new(&raw_name).map_err(|e| e.to_string())?;
        let display_name = col(row, 1)?;
        Ok(match kind {
            CatalogKind::Platform => CatalogItem::Platform(Platform {
                name,
                display_name,
                provider: col(row, 2)?,
                region: col(row, 3)?,
            }),
            CatalogKind::Os => CatalogItem::Os(OsVersion {
                name,
                display_name,
                family: col(row, 2)?,
                major: unsigned(col(row, 3)?)?,
                minor: col::<Option<i64>>(row, 4)?.map(unsigned).transpose()?,
            }),
            CatalogKind::ImageType => {
                CatalogItem::ImageType(ImageType { name, display_name, description: col(row, 2)? })
            }
        })
    };
    decode().map_err(|e| StoreError::Backend {
        context: "corrupt catalog row in the postgres store",
        source: format!("{kind} `{raw_name}`: {e}").into(),
    })
}

/// The one column of `sql::SERVER_CLOCK`.
pub(crate) fn clock(row: &Row) -> StoreResult<jiff::Timestamp> {
    row.try_get::<_, jiff::Timestamp>(0).ctx("read the server's clock")
}
