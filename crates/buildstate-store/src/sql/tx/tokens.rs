//! API token records in SQL: one row per token, the secret's hash only.

use buildstate_core::{Name, Scopes, TokenId, TokenRecord};

use super::{SqlTx, SqlValue, ValueRow, column};
use crate::StoreResult;
use crate::sql::conn::{SqlConn, SqlWrite};
use crate::sql_rows::ColumnReader;

const COLUMNS: &str = "id, name, scopes, secret_sha256, created_at, expires_at, revoked_at";

const WHAT: &str = "read a token";

fn token(r: &[SqlValue]) -> StoreResult<TokenRecord> {
    let row = ValueRow(r);
    let bad = |e: String| crate::StoreError::Backend { context: WHAT, source: e.into() };
    Ok(TokenRecord {
        id: column(WHAT, row.text(0))?.parse::<TokenId>().map_err(|e| bad(e.to_string()))?,
        name: Name::try_from(column(WHAT, row.text(1))?).map_err(|e| bad(e.to_string()))?,
        scopes: column(WHAT, row.text(2))?.parse::<Scopes>().map_err(|e| bad(e.to_string()))?,
        secret_sha256: column(WHAT, row.text(3))?,
        created_at: column(WHAT, row.time(4))?,
        expires_at: column(WHAT, row.opt_time(5))?,
        revoked_at: column(WHAT, row.opt_time(6))?,
    })
}

impl<C: SqlConn> SqlTx<C> {
    pub(super) async fn sql_tokens(&mut self) -> StoreResult<Vec<TokenRecord>> {
        self.all(&format!("SELECT {COLUMNS} FROM tokens"), &[], token).await
    }

    pub(super) async fn sql_token(&mut self, id: &TokenId) -> StoreResult<Option<TokenRecord>> {
        self.first(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1"), &[id.as_str().into()], token).await
    }

    pub(super) async fn sql_put_token(&mut self, t: &TokenRecord) -> StoreResult<()> {
        let values: Vec<SqlValue> = vec![
            t.id.as_str().into(),
            t.name.as_str().into(),
            t.scopes.to_string().into(),
            t.secret_sha256.as_str().into(),
            t.created_at.into(),
            t.expires_at.into(),
            t.revoked_at.into(),
        ];
        // Names are unique: on PostgreSQL a concurrent create of the same name can commit
        // after this transaction checked; the violation then runs the work again, which
        // finds the name taken.
        self.conn.write(SqlWrite::new(PUT_TOKEN, "write a token", values).racing()).await
    }
}

/// A token's row, written whole (`$1`..`$7` in column order).
const PUT_TOKEN: &str = "INSERT INTO tokens (id, name, scopes, secret_sha256, created_at, expires_at, revoked_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
     scopes = excluded.scopes, secret_sha256 = excluded.secret_sha256, created_at = excluded.created_at, \
     expires_at = excluded.expires_at, revoked_at = excluded.revoked_at";
