//! The SQLite side of the dialect seam: concrete types, how an instant is stored, the text
//! search function, row locks (none: the single writer serializes writes), the claim of
//! executions, and the dashboard's day and duration arithmetic on integer instants.

use chrono::{DateTime, NaiveDate, Utc};
use job_core::Result;
use job_core::store::{Lease, checks};
use sqlx::{QueryBuilder, Row as _};
use uuid::Uuid;

use crate::common::db;

/// The database this backend speaks.
pub(crate) type Db = sqlx::Sqlite;
/// A row of [`Db`].
pub(crate) type Row = sqlx::sqlite::SqliteRow;
/// The pool type of [`Db`].
pub(crate) type Pool = sqlx::SqlitePool;
/// A connection of [`Db`] (what a transaction derefs to).
pub(crate) type Conn = sqlx::SqliteConnection;
/// How an instant is stored: microseconds since the Unix epoch.
pub(crate) type Ts = i64;

/// What a `SELECT` of rows about to be changed ends with: nothing, as writes are
/// serialized by the single writer connection.
pub(crate) const ROW_LOCK: &str = "";
/// The lock of a parent row whose children are about to change: none, as for [`ROW_LOCK`].
pub(crate) const NO_KEY_LOCK: &str = "";
/// What a claim's `SELECT` ends with: nothing, the single writer already excludes others.
pub(crate) const SKIP_LOCKED: &str = "";

/// The day (days since the Unix epoch) of `created_at`, as column `d`.
pub(crate) const DAY_OF_CREATED: &str = "created_at / 86400000000 AS d";
/// A day's successes and failures, as columns `ok` and `bad`.
pub(crate) const TREND_COUNTS: &str = "SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS ok, \
     SUM(CASE WHEN status IN ('failed', 'timeout') THEN 1 ELSE 0 END) AS bad";
/// The average of `finished_at - started_at` in milliseconds, as column `avg_ms`.
pub(crate) const AVG_DURATION_MS: &str = "AVG(finished_at - started_at) / 1000.0 AS avg_ms";

/// An instant as stored.
pub(crate) fn ts(t: DateTime<Utc>) -> Ts {
    t.timestamp_micros()
}

/// An optional instant as stored.
pub(crate) fn opt_ts(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(ts)
}

/// An instant back from column `col` as stored.
pub(crate) fn from_ts(col: &str, v: Ts) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| checks::corrupt(col, "instant out of range"))
}

/// Reads the day column [`DAY_OF_CREATED`] wrote.
pub(crate) fn get_day(row: &Row, col: &str) -> Result<NaiveDate> {
    let days: i64 = row.try_get(col).map_err(|e| checks::corrupt(col, e))?;
    NaiveDate::default()
        .checked_add_signed(chrono::Duration::days(days))
        .ok_or_else(|| checks::corrupt(col, "day out of range"))
}

/// The function giving the 1-based position of a text in another (0: not in it).
pub(crate) const POSITION_FN: &str = "instr";

/// Leases to `lease.node` up to `limit` executions, taking the rows that match each of
/// `conditions` in turn (each ends with its `ORDER BY`; `$3` is `lease.now`). Returns each
/// leased row of `cols` with whether it was taken over (leased before, or not pending).
///
/// One transaction on the single writer: select the candidates, then lease them with one
/// `UPDATE … RETURNING`; no other write can come between.
pub(crate) async fn claim_executions(
    writer: &Pool,
    lease: &Lease,
    conditions: &[&str],
    limit: i64,
    cols: &str,
) -> Result<Vec<(Row, bool)>> {
    let mut tx = writer.begin().await.map_err(db("claim executions"))?;
    let mut candidates = Vec::new();
    for condition in conditions {
        let room = limit - candidates.len() as i64;
        if room <= 0 {
            break;
        }
        candidates.extend(
            sqlx::query(&format!(
                "SELECT id, status, lease_owner FROM executions WHERE {condition} LIMIT $4"
            ))
            .bind(lease.node.as_str())
            .bind(ts(lease.until))
            .bind(ts(lease.now))
            .bind(room)
            .fetch_all(&mut *tx)
            .await
            .map_err(db("claim executions"))?,
        );
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut taken_over = Vec::with_capacity(candidates.len());
    let mut qb = QueryBuilder::<Db>::new("UPDATE executions SET lease_owner = ");
    qb.push_bind(lease.node.as_str())
        .push(", lease_expires_at = ")
        .push_bind(ts(lease.until))
        .push(" WHERE id IN (");
    let mut list = qb.separated(", ");
    for c in &candidates {
        let col = |name: &'static str| move |e| checks::corrupt(name, e);
        let id: Uuid = c.try_get("id").map_err(col("id"))?;
        let owner: Option<String> = c.try_get("lease_owner").map_err(col("lease_owner"))?;
        let status: String = c.try_get("status").map_err(col("status"))?;
        taken_over.push((id, owner.is_some() || status != "pending"));
        list.push_bind(id);
    }
    list.push_unseparated(")");
    qb.push(format!(" RETURNING {cols}"));
    let rows = qb
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(db("claim executions"))?;
    tx.commit().await.map_err(db("claim executions"))?;
    rows.into_iter()
        .map(|r| {
            let id: Uuid = r.try_get("id").map_err(|e| checks::corrupt("id", e))?;
            let t = taken_over.iter().any(|(c, t)| *c == id && *t);
            Ok((r, t))
        })
        .collect()
}

/// What the tokens of the migrations render to on SQLite.
pub(crate) fn schema_token(name: &str, argument: Option<&str>) -> Option<String> {
    let text = match (name, argument) {
        ("schema_note", None) => {
            "-- The job platform's schema for SQLite. Ids are UUIDs stored as 16-byte blobs; instants are\n\
             -- microseconds since the Unix epoch (UTC); `doc` columns hold the whole object as JSON text,\n\
             -- with the columns queries need copied out of it."
        }
        ("uuid" | "bytes", None) => "BLOB",
        ("instant" | "int" | "bool", None) => "INTEGER",
        ("json", None) => "TEXT",
        ("false", None) => "0",
        // A covering index holds the extra columns as trailing key columns.
        ("covering", None) => ", ",
        // SQLite adds one column per `ALTER TABLE`.
        ("also_alter", Some(table)) => return Some(format!(";\nALTER TABLE {table} ")),
        _ => return None,
    };
    Some(text.to_owned())
}

/// The schema's migrations rendered for SQLite.
pub(crate) async fn migrator() -> Result<sqlx::migrate::Migrator> {
    crate::migrations::migrator(schema_token).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rendered_migrations_match_the_checksums_databases_recorded() {
        // The SHA-384 sums of 0001_initial.sql and 0002_rolling.sql as SQLite databases
        // recorded them before the migrations were written once.
        assert_eq!(
            crate::migrations::checksums(super::schema_token),
            [
                (1, "24c1845b1ac165ae93f0878cb9e65c418c6a5259601b6bcb8658dd37854f22327446d1b901ece2b16cfac1a69d74a865".to_owned()),
                (2, "21454e4ef83db3117c7a686d47c38faacbfd3774a4a99588d91f6b6131459a6758a8244a9d0481b4019c135e0378a175".to_owned()),
            ]
        );
    }
}
