//! Rows to domain values: [`ColumnReader`] over tokio-postgres rows (native
//! `timestamptz`, `jsonb`, `uuid` and integer types), and the shared decoders of
//! `buildstate_store::sql_rows`. Catalog rows and the clock are read here.

use buildstate_core::{CatalogItem, CatalogKind, ImageType, Name, OsVersion, Platform};
use buildstate_store::sql_rows::ColumnReader;
use buildstate_store::{StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Json, Type};

use crate::error::PgContext;

/// A row of a query, as the shared decoders read it.
struct PgRow<'r>(&'r Row);

impl PgRow<'_> {
    fn get<'a, T: FromSql<'a>>(&'a self, i: usize) -> Result<T, String> {
        self.0.try_get(i).map_err(|e| e.to_string())
    }

    /// The column's integer width: state codes are `smallint`, exit codes `integer`,
    /// counters `bigint`, and the driver converts each only to its own Rust type.
    fn width(&self, i: usize) -> Option<&Type> {
        self.0.columns().get(i).map(|c| c.type_())
    }
}

impl ColumnReader for PgRow<'_> {
    const CORRUPT: &'static str = "corrupt row in the postgres store";

    fn text(&self, i: usize) -> Result<String, String> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        self.get(i)
    }

    fn int(&self, i: usize) -> Result<i64, String> {
        match self.width(i) {
            Some(&Type::INT2) => self.get::<i16>(i).map(i64::from),
            Some(&Type::INT4) => self.get::<i32>(i).map(i64::from),
            _ => self.get(i),
        }
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        match self.width(i) {
            Some(&Type::INT2) => self.get::<Option<i16>>(i).map(|n| n.map(i64::from)),
            Some(&Type::INT4) => self.get::<Option<i32>>(i).map(|n| n.map(i64::from)),
            _ => self.get(i),
        }
    }

    fn bool(&self, i: usize) -> Result<bool, String> {
        self.get(i)
    }

    fn time(&self, i: usize) -> Result<jiff::Timestamp, String> {
        self.get(i)
    }

    fn opt_time(&self, i: usize) -> Result<Option<jiff::Timestamp>, String> {
        self.get(i)
    }

    fn json(&self, i: usize) -> Result<Option<serde_json::Value>, String> {
        self.get::<Option<Json<serde_json::Value>>>(i).map(|v| v.map(|Json(v)| v))
    }

    fn id(&self, i: usize) -> Result<buildstate_core::BuildId, String> {
        self.get::<uuid::Uuid>(i).map(buildstate_core::BuildId::from_uuid)
    }

    fn build_label(&self, i: usize) -> String {
        self.get::<uuid::Uuid>(i)
            .map_or_else(|_| "(unreadable id)".to_owned(), |u| u.hyphenated().to_string())
    }
}

buildstate_store::row_decoders!(Row, PgRow);

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
