//! A row of [`SqlValue`]s as the shared decoders read it: both drivers' representations
//! of a time (SQLite's integer microseconds, PostgreSQL's `timestamptz`), a JSON
//! document (text, `jsonb`) and an id (text, `uuid`) decode to the same value.

use buildstate_core::{BuildId, CatalogItem, CatalogKind, ImageType, Name, OsVersion, Platform};
use jiff::Timestamp;

use super::SqlValue;
use crate::sql_rows::ColumnReader;
use crate::{StoreError, StoreResult};

/// One row.
#[derive(Debug)]
pub struct ValueRow<'r>(pub &'r [SqlValue]);

impl ValueRow<'_> {
    fn at(&self, i: usize) -> Result<&SqlValue, String> {
        self.0.get(i).ok_or_else(|| format!("no column {i}"))
    }

    fn opt<T>(&self, i: usize, f: impl Fn(&Self, usize) -> Result<T, String>) -> Result<Option<T>, String> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            _ => f(self, i).map(Some),
        }
    }
}

fn unexpected(v: &SqlValue, wanted: &str) -> String {
    format!("expected {wanted}, found {v:?}")
}

impl ColumnReader for ValueRow<'_> {
    const CORRUPT: &'static str = "corrupt row in the store";

    fn text(&self, i: usize) -> Result<String, String> {
        match self.at(i)? {
            SqlValue::Text(s) => Ok(s.clone()),
            v => Err(unexpected(v, "text")),
        }
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        self.opt(i, Self::text)
    }

    fn int(&self, i: usize) -> Result<i64, String> {
        match self.at(i)? {
            SqlValue::Int(n) => Ok(*n),
            v => Err(unexpected(v, "an integer")),
        }
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        self.opt(i, Self::int)
    }

    fn bool(&self, i: usize) -> Result<bool, String> {
        match self.at(i)? {
            SqlValue::Bool(b) => Ok(*b),
            SqlValue::Int(0) => Ok(false),
            SqlValue::Int(1) => Ok(true),
            v => Err(unexpected(v, "a boolean")),
        }
    }

    fn time(&self, i: usize) -> Result<Timestamp, String> {
        match self.at(i)? {
            SqlValue::Time(t) => Ok(*t),
            SqlValue::Int(us) => Timestamp::from_microsecond(*us).map_err(|e| e.to_string()),
            v => Err(unexpected(v, "a time")),
        }
    }

    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, String> {
        self.opt(i, Self::time)
    }

    fn json(&self, i: usize) -> Result<Option<serde_json::Value>, String> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            SqlValue::Json(text) | SqlValue::Text(text) => {
                serde_json::from_str(text).map(Some).map_err(|e| e.to_string())
            }
            v => Err(unexpected(v, "JSON")),
        }
    }

    fn id(&self, i: usize) -> Result<BuildId, String> {
        match self.at(i)? {
            SqlValue::Id(id) => Ok(*id),
            SqlValue::Text(s) => s.parse().map_err(|e: <BuildId as std::str::FromStr>::Err| e.to_string()),
            v => Err(unexpected(v, "a build id")),
        }
    }

    fn opt_id(&self, i: usize) -> Result<Option<BuildId>, String> {
        self.opt(i, Self::id)
    }

    fn build_label(&self, i: usize) -> String {
        self.id(i).map_or_else(
            |_| self.text(i).unwrap_or_else(|_| "(unreadable id)".to_owned()),
            |id| id.to_string(),
        )
    }
}

/// Decodes a row of a catalog table (`text::KindSql` column order).
pub fn catalog_item(kind: CatalogKind, row: &ValueRow<'_>) -> StoreResult<CatalogItem> {
    let raw_name = row.text(0).unwrap_or_else(|_| "(unreadable name)".to_owned());
    let unsigned = |n: i64| u32::try_from(n).map_err(|_| format!("{n} is out of range"));
    let decode = || -> Result<CatalogItem, String> {
        let name = Name::new(&raw_name).map_err(|e| e.to_string())?;
        let display_name = row.text(1)?;
        Ok(match kind {
            CatalogKind::Platform => CatalogItem::Platform(Platform {
                name,
                display_name,
                provider: row.text(2)?,
                region: row.opt_text(3)?,
            }),
            CatalogKind::Os => CatalogItem::Os(OsVersion {
                name,
                display_name,
                family: row.text(2)?,
                major: unsigned(row.int(3)?)?,
                minor: row.opt_int(4)?.map(unsigned).transpose()?,
            }),
            CatalogKind::ImageType => {
                CatalogItem::ImageType(ImageType { name, display_name, description: row.text(2)? })
            }
        })
    };
    decode().map_err(|e| StoreError::Backend {
        context: "corrupt catalog row in the store",
        source: format!("{kind} `{raw_name}`: {e}").into(),
    })
}
