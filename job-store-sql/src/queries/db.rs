//! What the queries need from the database they are compiled for: the dialect's types and
//! statements, row access, team scoping, and the database-independent helpers.
//!
//! Compiled once per backend (`#[path]` from `sqlite/mod.rs` and `postgres/mod.rs`), so
//! `Db`, `Row` and `Ts` are that backend's concrete types.

use chrono::{DateTime, Utc};
use job_core::ids::ExecutionId;
use job_core::store::{TeamScope, checks};
use job_core::{Error, Result};
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row as _};

pub(crate) use super::dialect::{
    AVG_DURATION_MS, Conn, DAY_OF_CREATED, Db, NO_KEY_LOCK, POSITION_FN, Pool, ROW_LOCK, Row,
    SKIP_LOCKED, TREND_COUNTS, Ts, claim_executions, get_day, opt_ts, ts,
};
pub(crate) use crate::common::{INSERT_CHUNK, db, db_error, enum_of, enum_text, page};

/// Reads column `col`.
pub(crate) fn get<'r, T>(row: &'r Row, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(col).map_err(|e| checks::corrupt(col, e))
}

/// Reads the instant in column `col`.
pub(crate) fn get_ts(row: &Row, col: &str) -> Result<DateTime<Utc>> {
    super::dialect::from_ts(col, get::<Ts>(row, col)?)
}

/// Reads the optional instant in column `col`.
pub(crate) fn get_opt_ts(row: &Row, col: &str) -> Result<Option<DateTime<Utc>>> {
    get::<Option<Ts>>(row, col)?
        .map(|v| super::dialect::from_ts(col, v))
        .transpose()
}

/// Reads the JSON document in column `col` as a `T`.
pub(crate) fn get_json<T: DeserializeOwned>(row: &Row, col: &str) -> Result<T> {
    Ok(get::<Json<T>>(row, col)?.0)
}

/// Reads the optional JSON document in column `col` as a `T`.
pub(crate) fn get_opt_json<T: DeserializeOwned>(row: &Row, col: &str) -> Result<Option<T>> {
    Ok(get::<Option<Json<T>>>(row, col)?.map(|j| j.0))
}

/// Appends ` AND <col> IN (<visible teams>)` (nothing for every team, a false condition
/// for none).
pub(crate) fn push_scope(qb: &mut QueryBuilder<'_, Db>, col: &str, scope: &TeamScope) {
    if let Some(teams) = scope.teams() {
        if teams.is_empty() {
            qb.push(" AND 1 = 0");
            return;
        }
        qb.push(" AND ").push(col).push(" IN (");
        let mut list = qb.separated(", ");
        for t in teams {
            list.push_bind(t.as_uuid());
        }
        list.push_unseparated(")");
    }
}

/// Appends a case-insensitive "name contains" condition in which `%` and `_` are plain.
pub(crate) fn push_name_contains(qb: &mut QueryBuilder<'_, Db>, col: &str, text: Option<&str>) {
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        if text.contains('\0') {
            qb.push(" AND 1 = 0");
            return;
        }
        qb.push(" AND ")
            .push(POSITION_FN)
            .push("(lower(")
            .push(col)
            .push("), lower(")
            .push_bind(text.to_owned())
            .push(")) > 0");
    }
}

/// Fails with NotFound unless execution `id` exists in `scope`.
pub(crate) async fn ensure_execution_visible(
    pool: &Pool,
    id: ExecutionId,
    scope: &TeamScope,
) -> Result<()> {
    let mut qb = QueryBuilder::<Db>::new("SELECT 1 FROM executions WHERE id = ");
    qb.push_bind(id.as_uuid());
    push_scope(&mut qb, "team_id", scope);
    match qb
        .build()
        .fetch_optional(pool)
        .await
        .map_err(db("read execution"))?
    {
        Some(_) => Ok(()),
        None => Err(Error::not_found(format!("execution {id}"))),
    }
}
