//! The outbox of callbacks and alerts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use job_core::ids::{DeliveryId, ExecutionId, TeamId};
use job_core::model::{OutboxEntry, OutboxKind};
use job_core::store::{OutboxOutcome, OutboxStore, TeamScope, checks};
use job_core::{Error, Result};
use sqlx::QueryBuilder;
use sqlx::types::Json;
use uuid::Uuid;

use super::SqlStore;
use super::db::{
    Conn, Db, INSERT_CHUNK, Row, SKIP_LOCKED, db, ensure_execution_visible, enum_of, enum_text,
    get, get_json, get_ts, push_scope, ts,
};

const OUTBOX_COLS: &str = "delivery_id, team_id, execution_id, kind, payload, state, attempts, \
    next_attempt_at, last_error, created_at";

/// Refuses outbox entries a backend cannot hold, naming the field.
pub(crate) fn check_outbox(entries: &[OutboxEntry]) -> Result<()> {
    for (i, e) in entries.iter().enumerate() {
        match &e.kind {
            OutboxKind::Callback { url } => {
                checks::text(&format!("outbox[{i}].url"), url, checks::MAX_URL_BYTES)?
            }
            OutboxKind::Alert { message } => {
                checks::text(
                    &format!("outbox[{i}].message"),
                    message,
                    checks::MAX_TEXT_BYTES,
                )?;
            }
        }
        checks::json(&format!("outbox[{i}].payload"), &e.payload)?;
        checks::opt_text(
            &format!("outbox[{i}].last_error"),
            e.last_error.as_deref(),
            checks::MAX_TEXT_BYTES,
        )?;
    }
    Ok(())
}

/// Inserts outbox entries inside a transaction.
pub(crate) async fn insert_outbox(conn: &mut Conn, entries: &[OutboxEntry]) -> Result<()> {
    for chunk in entries.chunks(INSERT_CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO outbox ({OUTBOX_COLS}) "));
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.delivery_id.as_uuid())
                .push_bind(e.team_id.as_uuid())
                .push_bind(e.execution_id.map(|x| x.as_uuid()))
                .push_bind(Json(&e.kind))
                .push_bind(Json(&e.payload))
                .push_bind(enum_text(&e.state))
                .push_bind(i64::from(e.attempts))
                .push_bind(ts(e.next_attempt_at))
                .push_bind(e.last_error.as_deref())
                .push_bind(ts(e.created_at));
        });
        qb.build()
            .execute(&mut *conn)
            .await
            .map_err(db("enqueue outbox entries"))?;
    }
    Ok(())
}

fn entry_from(row: &Row) -> Result<OutboxEntry> {
    Ok(OutboxEntry {
        delivery_id: DeliveryId::from_uuid(get(row, "delivery_id")?),
        team_id: TeamId::from_uuid(get(row, "team_id")?),
        execution_id: get::<Option<Uuid>>(row, "execution_id")?.map(ExecutionId::from_uuid),
        kind: get_json(row, "kind")?,
        payload: get_json(row, "payload")?,
        state: enum_of("state", get(row, "state")?)?,
        attempts: checks::u32_of("attempts", get(row, "attempts")?)?,
        next_attempt_at: get_ts(row, "next_attempt_at")?,
        last_error: get(row, "last_error")?,
        created_at: get_ts(row, "created_at")?,
    })
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn enqueue_outbox(&self, entries: &[OutboxEntry]) -> Result<()> {
        check_outbox(entries)?;
        let mut tx = self
            .writer()
            .begin()
            .await
            .map_err(db("enqueue outbox entries"))?;
        insert_outbox(&mut tx, entries).await?;
        tx.commit().await.map_err(db("enqueue outbox entries"))?;
        Ok(())
    }

    async fn claim_due_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        let mut tx = self
            .writer()
            .begin()
            .await
            .map_err(db("claim outbox entries"))?;
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, delivery_id LIMIT $2{SKIP_LOCKED}"
        ))
        .bind(ts(now))
        .bind(i64::from(limit.clamp(1, job_core::store::MAX_PAGE)))
        .fetch_all(&mut *tx)
        .await
        .map_err(db("claim outbox entries"))?;
        let entries = rows.iter().map(entry_from).collect::<Result<Vec<_>>>()?;
        if entries.is_empty() {
            return Ok(entries);
        }
        let mut qb = QueryBuilder::<Db>::new("UPDATE outbox SET next_attempt_at = ");
        qb.push_bind(ts(lease_until))
            .push(" WHERE delivery_id IN (");
        let mut list = qb.separated(", ");
        for e in &entries {
            list.push_bind(e.delivery_id.as_uuid());
        }
        list.push_unseparated(")");
        qb.build()
            .execute(&mut *tx)
            .await
            .map_err(db("claim outbox entries"))?;
        tx.commit().await.map_err(db("claim outbox entries"))?;
        Ok(entries)
    }

    async fn record_outbox_attempt(&self, id: DeliveryId, outcome: &OutboxOutcome) -> Result<()> {
        let (state, next, error) = match outcome {
            OutboxOutcome::Delivered => ("delivered", None, None),
            OutboxOutcome::Retry {
                next_attempt_at,
                error,
            } => ("pending", Some(ts(*next_attempt_at)), Some(error)),
            OutboxOutcome::GaveUp { error } => ("failed", None, Some(error)),
        };
        checks::opt_text(
            "last_error",
            error.map(String::as_str),
            checks::MAX_TEXT_BYTES,
        )?;
        let done = sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + 1, \
             next_attempt_at = COALESCE($2, next_attempt_at), last_error = COALESCE($3, last_error) \
             WHERE delivery_id = $4",
        )
        .bind(state)
        .bind(next)
        .bind(error.map(String::as_str))
        .bind(id.as_uuid())
        .execute(self.writer())
        .await
        .map_err(db("record outbox attempt"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("outbox entry {id}")));
        }
        Ok(())
    }

    async fn get_outbox_entry(&self, scope: &TeamScope, id: DeliveryId) -> Result<OutboxEntry> {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE delivery_id = "
        ));
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        match qb
            .build()
            .fetch_optional(self.reader())
            .await
            .map_err(db("read outbox entry"))?
        {
            Some(r) => entry_from(&r),
            None => Err(Error::not_found(format!("outbox entry {id}"))),
        }
    }

    async fn list_outbox_for_execution(
        &self,
        scope: &TeamScope,
        id: ExecutionId,
    ) -> Result<Vec<OutboxEntry>> {
        ensure_execution_visible(self.reader(), id, scope).await?;
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE execution_id = $1 ORDER BY created_at, delivery_id"
        ))
        .bind(id.as_uuid())
        .fetch_all(self.reader())
        .await
        .map_err(db("list outbox entries"))?;
        rows.iter().map(entry_from).collect()
    }
}
