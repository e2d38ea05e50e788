//! Host runs: reading them, and applying host updates that only move forward while keeping
//! the execution's counters equal to them.

use job_core::ids::{ExecutionId, TargetId};
use job_core::model::{HostRun, Os, TargetSnapshot};
use job_core::status::{HostCounters, HostStatus};
use job_core::store::{HostRunUpdate, checks};
use job_core::values::{Address, Name};
use job_core::{Error, Result};

use super::db::{Conn, NO_KEY_LOCK, Row, db, enum_of, get, get_opt_ts, opt_ts};

fn corrupt(field: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| checks::corrupt(field, e)
}

/// The columns [`host_run_from`] reads.
pub(crate) const HOST_COLS: &str = "execution_id, idx, target_id, target_name, address, os, mode, status, \
    exit_code, error, started_at, finished_at, stdout_bytes, stderr_bytes, output_truncated";

/// Reads a host run from a row of [`HOST_COLS`].
pub(crate) fn host_run_from(row: &Row) -> Result<HostRun> {
    Ok(HostRun {
        execution_id: ExecutionId::from_uuid(get(row, "execution_id")?),
        index: checks::u32_of("idx", get(row, "idx")?)?,
        target: TargetSnapshot {
            target_id: TargetId::from_uuid(get(row, "target_id")?),
            name: Name::parse("name", &get::<String>(row, "target_name")?)
                .map_err(corrupt("target_name"))?,
            address: Address::parse("address", &get::<String>(row, "address")?)
                .map_err(corrupt("address"))?,
            os: enum_of::<Os>("os", get(row, "os")?)?,
            mode: get(row, "mode")?,
        },
        status: get::<String>(row, "status")?
            .parse()
            .map_err(corrupt("status"))?,
        exit_code: get::<Option<i64>>(row, "exit_code")?
            .map(|c| i32::try_from(c).map_err(|_| checks::corrupt("exit_code", "out of range")))
            .transpose()?,
        error: get(row, "error")?,
        started_at: get_opt_ts(row, "started_at")?,
        finished_at: get_opt_ts(row, "finished_at")?,
        stdout_bytes: checks::u64_of("stdout_bytes", get(row, "stdout_bytes")?)?,
        stderr_bytes: checks::u64_of("stderr_bytes", get(row, "stderr_bytes")?)?,
        output_truncated: get(row, "output_truncated")?,
    })
}

/// Refuses host updates a backend cannot hold, naming the field.
pub(crate) fn check_updates(updates: &[HostRunUpdate]) -> Result<()> {
    for (i, u) in updates.iter().enumerate() {
        checks::opt_text(
            &format!("hosts[{i}].error"),
            u.error.as_deref(),
            checks::MAX_TEXT_BYTES,
        )?;
    }
    Ok(())
}

/// Applies host updates inside a transaction and recounts the execution's counters.
pub(crate) async fn apply_host_updates(
    conn: &mut Conn,
    id: ExecutionId,
    updates: &[HostRunUpdate],
) -> Result<u32> {
    if updates.is_empty() {
        return Ok(0);
    }
    let total: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT n_total FROM executions WHERE id = $1{NO_KEY_LOCK}"
    ))
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("read execution"))?;
    let Some(total) = total else {
        return Err(Error::not_found(format!("execution {id}")));
    };
    let mut applied = 0u32;
    for u in updates {
        if i64::from(u.index) >= total {
            return Err(Error::invalid(
                "host",
                format!(
                    "host {} is not part of this execution of {total} hosts",
                    u.index
                ),
            ));
        }
        let sql = match u.status {
            HostStatus::Pending => continue,
            HostStatus::Running => {
                "UPDATE host_runs SET status = $1, exit_code = COALESCE($2, exit_code), error = COALESCE($3, error), \
                 started_at = COALESCE(started_at, $4), finished_at = COALESCE($5, finished_at) \
                 WHERE execution_id = $6 AND idx = $7 AND status = 'pending'"
            }
            _ => {
                "UPDATE host_runs SET status = $1, exit_code = COALESCE($2, exit_code), error = COALESCE($3, error), \
                 started_at = COALESCE(started_at, $4), finished_at = COALESCE($5, finished_at) \
                 WHERE execution_id = $6 AND idx = $7 AND status IN ('pending', 'running')"
            }
        };
        let done = sqlx::query(sql)
            .bind(u.status.as_str())
            .bind(u.exit_code.map(i64::from))
            .bind(u.error.as_deref())
            .bind(opt_ts(u.started_at))
            .bind(opt_ts(u.finished_at))
            .bind(id.as_uuid())
            .bind(i64::from(u.index))
            .execute(&mut *conn)
            .await
            .map_err(db("update host run"))?;
        applied += done.rows_affected() as u32;
    }
    if applied > 0 {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM host_runs WHERE execution_id = $1 GROUP BY status",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .map_err(db("count host runs"))?;
        let mut c = HostCounters::default();
        for r in &rows {
            let status: HostStatus = get::<String>(r, "status")?
                .parse()
                .map_err(corrupt("status"))?;
            let n = checks::u32_of("n", get(r, "n")?)?;
            c.total += n;
            match status {
                HostStatus::Pending => c.pending = n,
                HostStatus::Running => c.running = n,
                HostStatus::Success => c.success = n,
                HostStatus::Failed => c.failed = n,
                HostStatus::Timeout => c.timeout = n,
                HostStatus::Cancelled => c.cancelled = n,
            }
        }
        sqlx::query(
            "UPDATE executions SET n_pending = $1, n_running = $2, n_success = $3, n_failed = $4, \
             n_timeout = $5, n_cancelled = $6 WHERE id = $7",
        )
        .bind(i64::from(c.pending))
        .bind(i64::from(c.running))
        .bind(i64::from(c.success))
        .bind(i64::from(c.failed))
        .bind(i64::from(c.timeout))
        .bind(i64::from(c.cancelled))
        .bind(id.as_uuid())
        .execute(&mut *conn)
        .await
        .map_err(db("update counters"))?;
    }
    Ok(applied)
}
