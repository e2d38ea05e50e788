//! The PostgreSQL side of the dialect seam: concrete types, instants as `timestamptz`, the
//! text search function, row locks, the one-statement `SKIP LOCKED` claim of executions, and
//! the dashboard's day and duration arithmetic on `timestamptz`.

use chrono::{DateTime, NaiveDate, Utc};
use job_core::Result;
use job_core::store::{Lease, checks};
use sqlx::Row as _;

use crate::common::db;

/// The database this backend speaks.
pub(crate) type Db = sqlx::Postgres;
/// A row of [`Db`].
pub(crate) type Row = sqlx::postgres::PgRow;
/// The pool type of [`Db`].
pub(crate) type Pool = sqlx::PgPool;
/// A connection of [`Db`] (what a transaction derefs to).
pub(crate) type Conn = sqlx::PgConnection;
/// How an instant is stored: `timestamptz` (microsecond precision).
pub(crate) type Ts = DateTime<Utc>;

/// What a `SELECT` of rows about to be changed ends with: a row lock held until commit.
pub(crate) const ROW_LOCK: &str = " FOR UPDATE";
/// The lock of a parent row whose children are about to change: it keeps other writers of
/// the row out but lets foreign-key checks of its children through.
pub(crate) const NO_KEY_LOCK: &str = " FOR NO KEY UPDATE";
/// What a claim's `SELECT` ends with: lock the rows, skipping those another node holds.
pub(crate) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

/// The UTC day of `created_at`, as column `d`.
pub(crate) const DAY_OF_CREATED: &str = "(created_at AT TIME ZONE 'UTC')::DATE AS d";
/// A day's successes and failures, as columns `ok` and `bad` (filtered counts).
pub(crate) const TREND_COUNTS: &str = "COUNT(*) FILTER (WHERE status = 'success') AS ok, \
     COUNT(*) FILTER (WHERE status IN ('failed', 'timeout')) AS bad";
/// The average of `finished_at - started_at` in milliseconds, as column `avg_ms`.
pub(crate) const AVG_DURATION_MS: &str =
    "(EXTRACT(EPOCH FROM AVG(finished_at - started_at)) * 1000)::FLOAT8 AS avg_ms";

/// An instant as stored.
pub(crate) fn ts(t: DateTime<Utc>) -> Ts {
    t
}

/// An optional instant as stored.
pub(crate) fn opt_ts(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t
}

/// An instant back from a column as stored (always in range).
pub(crate) fn from_ts(_col: &str, v: Ts) -> Result<DateTime<Utc>> {
    Ok(v)
}

/// Reads the day column [`DAY_OF_CREATED`] wrote.
pub(crate) fn get_day(row: &Row, col: &str) -> Result<NaiveDate> {
    row.try_get(col).map_err(|e| checks::corrupt(col, e))
}

/// The function giving the 1-based position of a text in another (0: not in it).
pub(crate) const POSITION_FN: &str = "strpos";

/// Leases to `lease.node` up to `limit` executions, taking the rows that match each of
/// `conditions` in turn (each ends with its `ORDER BY`; `$3` is `lease.now`). Returns each
/// leased row of `cols` with whether it was taken over (leased before, or not pending).
///
/// Each condition is one statement that locks the rows no other node has locked, leases
/// them and returns who held them before; concurrent nodes never wait for each other.
pub(crate) async fn claim_executions(
    writer: &Pool,
    lease: &Lease,
    conditions: &[&str],
    limit: i64,
    cols: &str,
) -> Result<Vec<(Row, bool)>> {
    let mut out = Vec::new();
    for condition in conditions {
        let room = limit - out.len() as i64;
        if room <= 0 {
            break;
        }
        let rows = sqlx::query(&format!(
            "UPDATE executions SET lease_owner = $1, lease_expires_at = $2 \
             FROM (SELECT id AS claim_id, status AS prev_status, lease_owner AS prev_owner \
                   FROM executions WHERE {condition} LIMIT $4 \
                   FOR NO KEY UPDATE SKIP LOCKED) AS c \
             WHERE executions.id = c.claim_id \
             RETURNING {cols}, c.prev_status, c.prev_owner"
        ))
        .bind(lease.node.as_str())
        .bind(ts(lease.until))
        .bind(ts(lease.now))
        .bind(room)
        .fetch_all(writer)
        .await
        .map_err(db("claim executions"))?;
        for r in rows {
            let owner: Option<String> = r
                .try_get("prev_owner")
                .map_err(|e| checks::corrupt("prev_owner", e))?;
            let status: String = r
                .try_get("prev_status")
                .map_err(|e| checks::corrupt("prev_status", e))?;
            let taken_over = owner.is_some() || status != "pending";
            out.push((r, taken_over));
        }
    }
    Ok(out)
}

/// What the tokens of the migrations render to on PostgreSQL.
pub(crate) fn schema_token(name: &str, argument: Option<&str>) -> Option<String> {
    let text = match (name, argument) {
        ("schema_note", None) => {
            "-- The job platform's schema for PostgreSQL. Ids are UUIDs; instants are timestamptz;\n\
             -- `doc` columns hold the whole object as jsonb, with the columns queries need copied out of\n\
             -- it; counts are bigint."
        }
        ("uuid", None) => "UUID",
        ("bytes", None) => "BYTEA",
        ("instant", None) => "TIMESTAMPTZ",
        ("int", None) => "BIGINT",
        ("bool", None) => "BOOLEAN",
        ("json", None) => "JSONB",
        ("false", None) => "FALSE",
        // A covering index holds the extra columns as non-key columns.
        ("covering", None) => ") INCLUDE (",
        // PostgreSQL adds several columns in one `ALTER TABLE`.
        ("also_alter", Some(_)) => ", ",
        _ => return None,
    };
    Some(text.to_owned())
}

/// The schema's migrations rendered for PostgreSQL.
pub(crate) async fn migrator() -> Result<sqlx::migrate::Migrator> {
    crate::migrations::migrator(schema_token).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rendered_migrations_match_the_checksums_databases_recorded() {
        // The SHA-384 sums of 0001_initial.sql and 0002_rolling.sql as PostgreSQL databases
        // recorded them before the migrations were written once.
        assert_eq!(
            crate::migrations::checksums(super::schema_token),
            [
                (1, "5dc9029c73a5dbe7420495645e83770e987387f9051be2a4058e4e67d1ad4fcf574c11ca263e9d60204a35d5d5303436".to_owned()),
                (2, "de12fadb1c4dab5761e73a087acfb61e4cb61e4c6a34243da2d0201a8b92f335305d30a509a97465aff5ffda301965e1".to_owned()),
            ]
        );
    }
}
