//! What the rest of the crate needs from SQLite: row access, instants, team scoping, pages
//! and the mapping of sqlx errors to [`job_core::Error`].

use chrono::{DateTime, Utc};
use job_core::Error;
use job_core::store::{Page, TeamScope, checks};
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row as _};

/// The database this crate speaks.
pub(crate) type Db = sqlx::Sqlite;
/// A row of [`Db`].
pub(crate) type Row = sqlx::sqlite::SqliteRow;
/// The pool type of [`Db`].
pub(crate) type Pool = sqlx::SqlitePool;
/// A connection of [`Db`] (what a transaction derefs to).
pub(crate) type Conn = sqlx::SqliteConnection;
/// What a `SELECT` of rows about to be changed ends with: nothing, as writes are
/// serialized by the single writer connection.
pub(crate) const ROW_LOCK: &str = "";
/// How an instant is stored: microseconds since the Unix epoch.
pub(crate) type Ts = i64;

/// An instant as stored.
pub(crate) fn ts(t: DateTime<Utc>) -> Ts {
    t.timestamp_micros()
}

/// An optional instant as stored.
pub(crate) fn opt_ts(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(ts)
}

fn from_ts(col: &str, v: Ts) -> job_core::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| checks::corrupt(col, "instant out of range"))
}

/// Reads column `col`.
pub(crate) fn get<'r, T>(row: &'r Row, col: &str) -> job_core::Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(col).map_err(|e| checks::corrupt(col, e))
}

/// Reads the instant in column `col`.
pub(crate) fn get_ts(row: &Row, col: &str) -> job_core::Result<DateTime<Utc>> {
    from_ts(col, get::<Ts>(row, col)?)
}

/// Reads the optional instant in column `col`.
pub(crate) fn get_opt_ts(row: &Row, col: &str) -> job_core::Result<Option<DateTime<Utc>>> {
    get::<Option<Ts>>(row, col)?
        .map(|v| from_ts(col, v))
        .transpose()
}

/// Reads the JSON document in column `col` as a `T`.
pub(crate) fn get_json<T: DeserializeOwned>(row: &Row, col: &str) -> job_core::Result<T> {
    Ok(get::<Json<T>>(row, col)?.0)
}

/// Reads the optional JSON document in column `col` as a `T`.
pub(crate) fn get_opt_json<T: DeserializeOwned>(
    row: &Row,
    col: &str,
) -> job_core::Result<Option<T>> {
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
        qb.push(" AND instr(lower(")
            .push(col)
            .push("), lower(")
            .push_bind(text.to_owned())
            .push(")) > 0");
    }
}

/// Turns `limit + 1` fetched items into a page of at most `limit` with its next cursor.
pub(crate) fn page<T, K>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Page<T, K> {
    let limit = limit as usize;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

/// Maps a sqlx error of the operation `what` to the platform's error.
pub(crate) fn db_error(what: &str, e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return Error::conflict(format!("{what}: it already exists"));
        }
        if d.is_foreign_key_violation() {
            return Error::conflict(format!(
                "{what}: it refers to something that does not exist, or is still referred to"
            ));
        }
        if d.is_check_violation() {
            return Error::invalid(what, d.message().to_owned());
        }
    }
    Error::unavailable(format!("{what} failed"), e)
}

/// [`db_error`] as a closure for `map_err`.
pub(crate) fn db(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| db_error(what, e)
}

/// The text of an enum by its serde name (`"snake_case"`).
pub(crate) fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// An enum back from its serde name.
pub(crate) fn enum_of<T: DeserializeOwned>(col: &str, text: String) -> job_core::Result<T> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| checks::corrupt(col, e))
}
