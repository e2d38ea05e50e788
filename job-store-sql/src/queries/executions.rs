//! Executions with their host runs: the batched create, compare-and-set moves, host
//! updates that keep the counters true, and leases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use job_core::ids::{CronJobId, ExecutionId, TeamId};
use job_core::model::{Execution, HostRun};
use job_core::status::{ExecutionStatus, HostCounters, HostStatus};
use job_core::store::{
    ClaimedExecution, ExecutionFilter, ExecutionStore, HostRunUpdate, Lease, Page, PageRequest,
    TeamScope, Transition, checks,
};
use job_core::values::{Name, TimeoutSecs};
use job_core::{Error, Result};
use sqlx::QueryBuilder;
use sqlx::types::Json;
use uuid::Uuid;

use super::SqlStore;
use super::db::{
    Conn, Db, INSERT_CHUNK, Row, claim_executions, db, ensure_execution_visible, enum_of,
    enum_text, get, get_json, get_opt_json, get_opt_ts, get_ts, opt_ts, page, push_name_contains,
    push_scope, ts,
};
use super::host_runs::{HOST_COLS, apply_host_updates, check_updates, host_run_from};
use super::outbox::{check_outbox, insert_outbox};

/// The columns [`execution_from`] reads.
pub(crate) const EXEC_COLS: &str = "id, team_id, name, job_type, trigger_source, executor, task, \
    timeout_secs, status, n_total, n_pending, n_running, n_success, n_failed, n_timeout, \
    n_cancelled, callback_url, re_executed_from, cron_job_id, confirmation, created_at, \
    started_at, finished_at, cancel_requested_at, lease_owner, rolling, paused_at";

/// What a claim takes, in turn: expired (or released) leases first, then pending executions
/// nobody claimed yet, each read through its own partial index. Each ends with its
/// `ORDER BY`; `$3` is the claim's `now`.
const CLAIMABLE: [&str; 2] = [
    "status IN ('pending', 'running', 'cancelling') AND lease_expires_at <= $3 \
     AND paused_at IS NULL ORDER BY lease_expires_at, id",
    "status = 'pending' AND lease_expires_at IS NULL ORDER BY id",
];

fn corrupt(field: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| checks::corrupt(field, e)
}

/// Reads an execution from a row of [`EXEC_COLS`].
pub(crate) fn execution_from(row: &Row) -> Result<Execution> {
    let n = |col: &str| -> Result<u32> { checks::u32_of(col, get::<i64>(row, col)?) };
    Ok(Execution {
        id: ExecutionId::from_uuid(get(row, "id")?),
        team_id: TeamId::from_uuid(get(row, "team_id")?),
        name: Name::parse("name", &get::<String>(row, "name")?).map_err(corrupt("name"))?,
        job_type: enum_of("job_type", get(row, "job_type")?)?,
        trigger_source: enum_of("trigger_source", get(row, "trigger_source")?)?,
        executor: get_json(row, "executor")?,
        task: get_json(row, "task")?,
        timeout: TimeoutSecs::new("timeout", get(row, "timeout_secs")?)
            .map_err(corrupt("timeout"))?,
        status: get::<String>(row, "status")?
            .parse()
            .map_err(corrupt("status"))?,
        counters: HostCounters {
            total: n("n_total")?,
            pending: n("n_pending")?,
            running: n("n_running")?,
            success: n("n_success")?,
            failed: n("n_failed")?,
            timeout: n("n_timeout")?,
            cancelled: n("n_cancelled")?,
        },
        callback_url: get(row, "callback_url")?,
        re_executed_from: get::<Option<Uuid>>(row, "re_executed_from")?.map(ExecutionId::from_uuid),
        cron_job_id: get::<Option<Uuid>>(row, "cron_job_id")?.map(CronJobId::from_uuid),
        confirmation: get_opt_json(row, "confirmation")?,
        created_at: get_ts(row, "created_at")?,
        started_at: get_opt_ts(row, "started_at")?,
        finished_at: get_opt_ts(row, "finished_at")?,
        cancel_requested_at: get_opt_ts(row, "cancel_requested_at")?,
        rolling: get_opt_json(row, "rolling")?,
        paused_at: get_opt_ts(row, "paused_at")?,
    })
}

async fn read_execution(conn: &mut Conn, id: ExecutionId) -> Result<Execution> {
    let row = sqlx::query(&format!("SELECT {EXEC_COLS} FROM executions WHERE id = $1"))
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db("read execution"))?;
    match row {
        Some(r) => execution_from(&r),
        None => Err(Error::not_found(format!("execution {id}"))),
    }
}

fn check_new(execution: &Execution, hosts: &[HostRun]) -> Result<()> {
    if execution.status != ExecutionStatus::Pending {
        return Err(Error::invalid(
            "status",
            "a new execution must be `pending`",
        ));
    }
    if hosts.is_empty() {
        return Err(Error::invalid(
            "targets",
            "an execution needs at least one host",
        ));
    }
    checks::opt_text(
        "callback_url",
        execution.callback_url.as_deref(),
        checks::MAX_URL_BYTES,
    )?;
    for (i, h) in hosts.iter().enumerate() {
        if h.execution_id != execution.id || h.index as usize != i {
            return Err(Error::invalid(
                format!("hosts[{i}]"),
                "host runs must belong to the execution and be indexed 0..n in order",
            ));
        }
        if h.status != HostStatus::Pending {
            return Err(Error::invalid(
                format!("hosts[{i}].status"),
                "a new host run must be `pending`",
            ));
        }
        checks::text(
            &format!("hosts[{i}].mode"),
            &h.target.mode,
            checks::MAX_KEY_BYTES,
        )?;
        checks::opt_text(
            &format!("hosts[{i}].error"),
            h.error.as_deref(),
            checks::MAX_TEXT_BYTES,
        )?;
    }
    Ok(())
}

fn push_filter(qb: &mut QueryBuilder<'_, Db>, scope: &TeamScope, f: &ExecutionFilter) {
    push_scope(qb, "team_id", scope);
    if let Some(team) = f.team_id {
        qb.push(" AND team_id = ").push_bind(team.as_uuid());
    }
    if !f.statuses.is_empty() {
        qb.push(" AND status IN (");
        let mut list = qb.separated(", ");
        for s in &f.statuses {
            list.push_bind(s.as_str());
        }
        list.push_unseparated(")");
    }
    if let Some(t) = f.job_type {
        qb.push(" AND job_type = ").push_bind(t.as_str());
    }
    if let Some(t) = f.trigger_source {
        qb.push(" AND trigger_source = ").push_bind(t.as_str());
    }
    if let Some(c) = f.cron_job_id {
        qb.push(" AND cron_job_id = ").push_bind(c.as_uuid());
    }
    if let Some(from) = f.created_from {
        qb.push(" AND created_at >= ").push_bind(ts(from));
    }
    if let Some(to) = f.created_to {
        qb.push(" AND created_at < ").push_bind(ts(to));
    }
    push_name_contains(qb, "name", f.name_contains.as_deref());
}

#[async_trait]
impl ExecutionStore for SqlStore {
    async fn create_execution(&self, e: &Execution, hosts: &[HostRun]) -> Result<()> {
        check_new(e, hosts)?;
        let executor = Json(checks::json("executor", &e.executor)?);
        let task = Json(checks::json("task", &e.task)?);
        let confirmation = e
            .confirmation
            .as_ref()
            .map(|c| checks::json("confirmation", c).map(Json))
            .transpose()?;
        let rolling = e
            .rolling
            .as_ref()
            .map(|r| checks::json("rolling", r).map(Json))
            .transpose()?;
        let n =
            i64::try_from(hosts.len()).map_err(|_| Error::invalid("targets", "too many hosts"))?;
        let mut tx = self
            .writer()
            .begin()
            .await
            .map_err(db("create execution"))?;
        sqlx::query(
            "INSERT INTO executions (id, team_id, name, job_type, trigger_source, executor, task, \
             timeout_secs, status, n_total, n_pending, n_running, n_success, n_failed, n_timeout, \
             n_cancelled, callback_url, re_executed_from, cron_job_id, confirmation, created_at, \
             rolling) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, 0, 0, 0, $12, $13, $14, $15, $16, $17)",
        )
        .bind(e.id.as_uuid())
        .bind(e.team_id.as_uuid())
        .bind(e.name.as_str())
        .bind(e.job_type.as_str())
        .bind(e.trigger_source.as_str())
        .bind(executor)
        .bind(task)
        .bind(i64::from(e.timeout.secs()))
        .bind(ExecutionStatus::Pending.as_str())
        .bind(n)
        .bind(n)
        .bind(e.callback_url.as_deref())
        .bind(e.re_executed_from.map(|x| x.as_uuid()))
        .bind(e.cron_job_id.map(|x| x.as_uuid()))
        .bind(confirmation)
        .bind(ts(e.created_at))
        .bind(rolling)
        .execute(&mut *tx)
        .await
        .map_err(db("create execution"))?;
        for chunk in hosts.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO host_runs (execution_id, idx, target_id, target_name, address, os, mode, \
                 status, exit_code, error, started_at, finished_at) ",
            );
            qb.push_values(chunk, |mut b, h| {
                b.push_bind(h.execution_id.as_uuid())
                    .push_bind(i64::from(h.index))
                    .push_bind(h.target.target_id.as_uuid())
                    .push_bind(h.target.name.as_str())
                    .push_bind(h.target.address.as_str())
                    .push_bind(enum_text(&h.target.os))
                    .push_bind(h.target.mode.as_str())
                    .push_bind(h.status.as_str())
                    .push_bind(h.exit_code.map(i64::from))
                    .push_bind(h.error.as_deref())
                    .push_bind(opt_ts(h.started_at))
                    .push_bind(opt_ts(h.finished_at));
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(db("create host runs"))?;
        }
        tx.commit().await.map_err(db("create execution"))?;
        Ok(())
    }

    async fn get_execution(&self, scope: &TeamScope, id: ExecutionId) -> Result<Execution> {
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {EXEC_COLS} FROM executions WHERE id = "));
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        match qb
            .build()
            .fetch_optional(self.reader())
            .await
            .map_err(db("read execution"))?
        {
            Some(r) => execution_from(&r),
            None => Err(Error::not_found(format!("execution {id}"))),
        }
    }

    async fn list_executions(
        &self,
        scope: &TeamScope,
        filter: &ExecutionFilter,
        page_req: PageRequest<ExecutionId>,
    ) -> Result<Page<Execution, ExecutionId>> {
        let limit = page_req.clamped_limit();
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {EXEC_COLS} FROM executions WHERE 1 = 1"));
        push_filter(&mut qb, scope, filter);
        if let Some(after) = page_req.after {
            qb.push(" AND id < ").push_bind(after.as_uuid());
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("list executions"))?;
        let items = rows
            .iter()
            .map(execution_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |e| e.id))
    }

    async fn list_host_runs(
        &self,
        scope: &TeamScope,
        id: ExecutionId,
        status: Option<HostStatus>,
        page_req: PageRequest<u32>,
    ) -> Result<Page<HostRun, u32>> {
        ensure_execution_visible(self.reader(), id, scope).await?;
        let limit = page_req.clamped_limit();
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {HOST_COLS} FROM host_runs WHERE execution_id = "
        ));
        qb.push_bind(id.as_uuid());
        if let Some(s) = status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(after) = page_req.after {
            qb.push(" AND idx > ").push_bind(i64::from(after));
        }
        qb.push(" ORDER BY idx LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("list host runs"))?;
        let items = rows.iter().map(host_run_from).collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |h| h.index))
    }

    async fn transition(&self, id: ExecutionId, t: &Transition) -> Result<Execution> {
        if !t.from.allows(t.to) {
            return Err(Error::invalid(
                "status",
                format!("an execution cannot move from `{}` to `{}`", t.from, t.to),
            ));
        }
        check_updates(&t.hosts)?;
        check_outbox(&t.outbox)?;
        let started = (t.to == ExecutionStatus::Running).then_some(ts(t.at));
        let cancel = (t.to == ExecutionStatus::Cancelling
            || (t.from == ExecutionStatus::Pending && t.to == ExecutionStatus::Cancelled))
            .then_some(ts(t.at));
        let finished = t.to.is_final().then_some(ts(t.at));
        let mut tx = self.writer().begin().await.map_err(db("move execution"))?;
        let done = sqlx::query(
            "UPDATE executions SET status = $1, started_at = COALESCE(started_at, $2), \
             cancel_requested_at = COALESCE(cancel_requested_at, $3), finished_at = COALESCE($4, finished_at), paused_at = NULL \
             WHERE id = $5 AND status = $6",
        )
        .bind(t.to.as_str())
        .bind(started)
        .bind(cancel)
        .bind(finished)
        .bind(id.as_uuid())
        .bind(t.from.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db("move execution"))?;
        if done.rows_affected() == 0 {
            let now: Option<String> =
                sqlx::query_scalar("SELECT status FROM executions WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db("read execution"))?;
            return Err(match now {
                None => Error::not_found(format!("execution {id}")),
                Some(s) => Error::conflict(format!(
                    "execution {id} is `{s}`, no longer `{}`; the move to `{}` was not applied",
                    t.from, t.to
                )),
            });
        }
        apply_host_updates(&mut tx, id, &t.hosts).await?;
        insert_outbox(&mut tx, &t.outbox).await?;
        let e = read_execution(&mut tx, id).await?;
        tx.commit().await.map_err(db("move execution"))?;
        Ok(e)
    }

    async fn update_host_runs(&self, id: ExecutionId, updates: &[HostRunUpdate]) -> Result<u32> {
        check_updates(updates)?;
        let mut tx = self
            .writer()
            .begin()
            .await
            .map_err(db("update host runs"))?;
        let n = apply_host_updates(&mut tx, id, updates).await?;
        tx.commit().await.map_err(db("update host runs"))?;
        Ok(n)
    }

    async fn claim_executions(&self, lease: &Lease, limit: u32) -> Result<Vec<ClaimedExecution>> {
        checks::text("node", &lease.node, checks::MAX_KEY_BYTES)?;
        let limit = i64::from(limit.clamp(1, job_core::store::MAX_PAGE));
        let rows = claim_executions(self.writer(), lease, &CLAIMABLE, limit, EXEC_COLS).await?;
        let mut out = rows
            .iter()
            .map(|(r, taken_over)| {
                Ok(ClaimedExecution {
                    execution: execution_from(r)?,
                    taken_over: *taken_over,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|c| c.execution.id);
        Ok(out)
    }

    async fn renew_lease(&self, id: ExecutionId, lease: &Lease) -> Result<()> {
        let done = sqlx::query(
            "UPDATE executions SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3 \
             AND status IN ('pending', 'running', 'cancelling')",
        )
        .bind(ts(lease.until))
        .bind(id.as_uuid())
        .bind(lease.node.as_str())
        .execute(self.writer())
        .await
        .map_err(db("renew lease"))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let row = sqlx::query("SELECT status, lease_owner FROM executions WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(self.writer())
            .await
            .map_err(db("read execution"))?;
        match row {
            None => Err(Error::not_found(format!("execution {id}"))),
            Some(r) => {
                let status: String = get(&r, "status")?;
                let owner: Option<String> = get(&r, "lease_owner")?;
                Err(Error::conflict(format!(
                    "the lease on execution {id} is not held by `{}` (status `{status}`, holder {})",
                    lease.node,
                    owner.as_deref().unwrap_or("none")
                )))
            }
        }
    }

    async fn release_lease(&self, id: ExecutionId, node: &str) -> Result<()> {
        sqlx::query(
            "UPDATE executions SET lease_owner = NULL, lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3",
        )
        .bind(ts(DateTime::UNIX_EPOCH))
        .bind(id.as_uuid())
        .bind(node)
        .execute(self.writer())
        .await
        .map_err(db("release lease"))?;
        Ok(())
    }
    async fn release_node_leases(&self, node: &str) -> Result<u64> {
        checks::text("node", node, checks::MAX_KEY_BYTES)?;
        let done = sqlx::query(
            "UPDATE executions SET lease_owner = NULL, lease_expires_at = $1 \
             WHERE lease_owner = $2 AND status IN ('pending', 'running', 'cancelling')",
        )
        .bind(ts(DateTime::UNIX_EPOCH))
        .bind(node)
        .execute(self.writer())
        .await
        .map_err(db("release leases"))?;
        Ok(done.rows_affected())
    }

    async fn pause_execution(&self, id: ExecutionId, at: DateTime<Utc>) -> Result<Execution> {
        let row = sqlx::query(&format!(
            "UPDATE executions SET paused_at = $1 \
             WHERE id = $2 AND status = 'running' AND paused_at IS NULL RETURNING {EXEC_COLS}"
        ))
        .bind(ts(at))
        .bind(id.as_uuid())
        .fetch_optional(self.writer())
        .await
        .map_err(db("pause execution"))?;
        match row {
            Some(r) => execution_from(&r),
            None => Err(self.not_pausable(id, "paused").await),
        }
    }

    async fn unpause_execution(&self, id: ExecutionId) -> Result<Execution> {
        let row = sqlx::query(&format!(
            "UPDATE executions SET paused_at = NULL \
             WHERE id = $1 AND status = 'running' AND paused_at IS NOT NULL RETURNING {EXEC_COLS}"
        ))
        .bind(id.as_uuid())
        .fetch_optional(self.writer())
        .await
        .map_err(db("resume execution"))?;
        match row {
            Some(r) => execution_from(&r),
            None => Err(self.not_pausable(id, "resumed").await),
        }
    }
}

impl SqlStore {
    /// Why execution `id` could not be paused or resumed: missing, or in the wrong state.
    async fn not_pausable(&self, id: ExecutionId, what: &str) -> Error {
        let row = sqlx::query("SELECT status, paused_at FROM executions WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(self.writer())
            .await;
        let row = match row {
            Ok(Some(r)) => r,
            Ok(None) => return Error::not_found(format!("execution {id}")),
            Err(e) => return db("read execution")(e),
        };
        let status: String = get(&row, "status").unwrap_or_default();
        let paused = get_opt_ts(&row, "paused_at").ok().flatten().is_some();
        Error::conflict(format!(
            "execution {id} is `{status}`{}; it cannot be {what}",
            if paused { " and paused" } else { "" }
        ))
    }
}
