//! High-risk command and path rules, cron jobs and their occurrences.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use job_core::ids::{CronJobId, RuleId, TeamId};
use job_core::model::{CommandRule, CronJob, PathRule};
use job_core::store::{AssetFilter, CronStore, Page, PageRequest, RuleStore, TeamScope, checks};
use job_core::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::QueryBuilder;

use super::SqlStore;
use super::assets::{delete_row, doc, get_doc, list_docs};
use super::db::{Db, ROW_LOCK, db, db_error, get, get_json, opt_ts, push_scope, ts};

/// Whether a rule of `team` (none = global) may be changed in `scope`.
fn changeable(scope: &TeamScope, team: Option<TeamId>) -> bool {
    match team {
        Some(t) => scope.contains(t),
        None => matches!(scope, TeamScope::All),
    }
}

impl SqlStore {
    async fn create_rule<T: Serialize>(
        &self,
        table: &str,
        id: RuleId,
        team: Option<TeamId>,
        built_in: bool,
        pattern: &str,
        rule: &T,
    ) -> Result<()> {
        checks::text("pattern", pattern, checks::MAX_TEXT_BYTES)?;
        let d = doc("rule", rule)?;
        let mut qb = QueryBuilder::<Db>::new(format!(
            "INSERT INTO {table} (id, team_id, built_in, doc) VALUES ("
        ));
        qb.push_bind(id.as_uuid())
            .push(", ")
            .push_bind(team.map(|t| t.as_uuid()))
            .push(", ")
            .push_bind(built_in)
            .push(", ")
            .push_bind(d)
            .push(")");
        qb.build()
            .execute(self.writer())
            .await
            .map_err(|e| db_error(&format!("create {table}"), e))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_rule<T: Serialize>(
        &self,
        table: &str,
        scope: &TeamScope,
        id: RuleId,
        team: Option<TeamId>,
        built_in: bool,
        pattern: &str,
        rule: &T,
    ) -> Result<()> {
        checks::text("pattern", pattern, checks::MAX_TEXT_BYTES)?;
        if !changeable(scope, team) {
            return Err(Error::not_found(format!("rule {id}")));
        }
        let d = doc("rule", rule)?;
        let mut qb = QueryBuilder::<Db>::new(format!("UPDATE {table} SET team_id = "));
        qb.push_bind(team.map(|t| t.as_uuid()))
            .push(", built_in = ")
            .push_bind(built_in)
            .push(", doc = ")
            .push_bind(d)
            .push(" WHERE id = ")
            .push_bind(id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(|e| db_error(&format!("update {table}"), e))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("rule {id}")));
        }
        Ok(())
    }

    async fn delete_rule(&self, table: &str, scope: &TeamScope, id: RuleId) -> Result<()> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT built_in FROM {table} WHERE id = "));
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        let row = qb
            .build()
            .fetch_optional(self.writer())
            .await
            .map_err(db("read rule"))?;
        let Some(row) = row else {
            return Err(Error::not_found(format!("rule {id}")));
        };
        if get::<bool>(&row, "built_in")? {
            return Err(Error::conflict(
                "a built-in rule cannot be deleted; disable it instead",
            ));
        }
        delete_row(self.writer(), table, "rule", id.as_uuid(), scope).await
    }

    async fn list_rules<T: DeserializeOwned>(
        &self,
        table: &str,
        scope: &TeamScope,
    ) -> Result<Vec<T>> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT doc FROM {table}"));
        if let Some(teams) = scope.teams() {
            qb.push(" WHERE team_id IS NULL");
            if !teams.is_empty() {
                qb.push(" OR team_id IN (");
                let mut list = qb.separated(", ");
                for t in teams {
                    list.push_bind(t.as_uuid());
                }
                list.push_unseparated(")");
            }
        }
        qb.push(" ORDER BY id");
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("list rules"))?;
        rows.iter().map(|r| get_json(r, "doc")).collect()
    }
}

#[async_trait]
impl RuleStore for SqlStore {
    async fn create_command_rule(&self, r: &CommandRule) -> Result<()> {
        self.create_rule("command_rules", r.id, r.team_id, r.built_in, &r.pattern, r)
            .await
    }

    async fn update_command_rule(&self, scope: &TeamScope, r: &CommandRule) -> Result<()> {
        self.update_rule(
            "command_rules",
            scope,
            r.id,
            r.team_id,
            r.built_in,
            &r.pattern,
            r,
        )
        .await
    }

    async fn delete_command_rule(&self, scope: &TeamScope, id: RuleId) -> Result<()> {
        self.delete_rule("command_rules", scope, id).await
    }

    async fn list_command_rules(&self, scope: &TeamScope) -> Result<Vec<CommandRule>> {
        self.list_rules("command_rules", scope).await
    }

    async fn create_path_rule(&self, r: &PathRule) -> Result<()> {
        self.create_rule("path_rules", r.id, r.team_id, r.built_in, &r.pattern, r)
            .await
    }

    async fn update_path_rule(&self, scope: &TeamScope, r: &PathRule) -> Result<()> {
        self.update_rule(
            "path_rules",
            scope,
            r.id,
            r.team_id,
            r.built_in,
            &r.pattern,
            r,
        )
        .await
    }

    async fn delete_path_rule(&self, scope: &TeamScope, id: RuleId) -> Result<()> {
        self.delete_rule("path_rules", scope, id).await
    }

    async fn list_path_rules(&self, scope: &TeamScope) -> Result<Vec<PathRule>> {
        self.list_rules("path_rules", scope).await
    }
}

fn check_cron(job: &CronJob) -> Result<()> {
    checks::opt_text(
        "callback_url",
        job.callback_url.as_deref(),
        checks::MAX_URL_BYTES,
    )
}

#[async_trait]
impl CronStore for SqlStore {
    async fn create_cron_job(&self, job: &CronJob) -> Result<()> {
        check_cron(job)?;
        let d = doc("cron job", job)?;
        sqlx::query(
            "INSERT INTO cron_jobs (id, team_id, name, enabled, next_fire_at, last_fire_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(job.id.as_uuid())
        .bind(job.team_id.as_uuid())
        .bind(job.name.as_str())
        .bind(job.enabled)
        .bind(opt_ts(job.next_fire_at))
        .bind(opt_ts(job.last_fire_at))
        .bind(d)
        .execute(self.writer())
        .await
        .map_err(db("create cron job"))?;
        Ok(())
    }

    async fn get_cron_job(&self, scope: &TeamScope, id: CronJobId) -> Result<CronJob> {
        get_doc(self.reader(), "cron_jobs", "cron job", id.as_uuid(), scope).await
    }

    async fn update_cron_job(&self, scope: &TeamScope, job: &CronJob) -> Result<()> {
        check_cron(job)?;
        let mut tx = self.writer().begin().await.map_err(db("update cron job"))?;
        let mut qb = QueryBuilder::<Db>::new("SELECT doc FROM cron_jobs WHERE id = ");
        qb.push_bind(job.id.as_uuid())
            .push(" AND team_id = ")
            .push_bind(job.team_id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        qb.push(ROW_LOCK);
        let Some(row) = qb
            .build()
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("read cron job"))?
        else {
            return Err(Error::not_found(format!("cron job {}", job.id)));
        };
        let stored: CronJob = get_json(&row, "doc")?;
        // The last fire is the scheduler's to record; an edit never moves it back.
        let mut job = job.clone();
        job.last_fire_at = stored.last_fire_at;
        let d = doc("cron job", &job)?;
        sqlx::query("UPDATE cron_jobs SET name = $1, enabled = $2, next_fire_at = $3, doc = $4 WHERE id = $5")
            .bind(job.name.as_str())
            .bind(job.enabled)
            .bind(opt_ts(job.next_fire_at))
            .bind(d)
            .bind(job.id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db("update cron job"))?;
        tx.commit().await.map_err(db("update cron job"))?;
        Ok(())
    }

    async fn delete_cron_job(&self, scope: &TeamScope, id: CronJobId) -> Result<()> {
        delete_row(self.writer(), "cron_jobs", "cron job", id.as_uuid(), scope).await
    }

    async fn list_cron_jobs(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<CronJobId>,
    ) -> Result<Page<CronJob, CronJobId>> {
        list_docs(
            self.reader(),
            "cron_jobs",
            scope,
            filter,
            page,
            |k| k.as_uuid(),
            |j: &CronJob| j.id,
        )
        .await
    }

    async fn cron_jobs_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<CronJob>> {
        let rows = sqlx::query(
            "SELECT doc FROM cron_jobs WHERE enabled = $1 AND next_fire_at <= $2 ORDER BY next_fire_at, id LIMIT $3",
        )
        .bind(true)
        .bind(ts(now))
        .bind(i64::from(limit.clamp(1, job_core::store::MAX_PAGE)))
        .fetch_all(self.reader())
        .await
        .map_err(db("list due cron jobs"))?;
        rows.iter().map(|r| get_json(r, "doc")).collect()
    }

    async fn claim_cron_occurrence(
        &self,
        job: CronJobId,
        fire_at: DateTime<Utc>,
        next_fire_at: Option<DateTime<Utc>>,
        node: &str,
    ) -> Result<bool> {
        checks::text("node", node, checks::MAX_KEY_BYTES)?;
        let mut tx = self
            .writer()
            .begin()
            .await
            .map_err(db("claim cron occurrence"))?;
        let row = sqlx::query(&format!(
            "SELECT doc FROM cron_jobs WHERE id = $1{ROW_LOCK}"
        ))
        .bind(job.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read cron job"))?;
        let Some(row) = row else {
            return Err(Error::not_found(format!("cron job {job}")));
        };
        let inserted = sqlx::query(
            "INSERT INTO cron_occurrences (cron_job_id, fire_at, node) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(job.as_uuid())
        .bind(ts(fire_at))
        .bind(node)
        .execute(&mut *tx)
        .await
        .map_err(db("claim cron occurrence"))?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        let mut stored: CronJob = get_json(&row, "doc")?;
        stored.last_fire_at = Some(fire_at);
        stored.next_fire_at = next_fire_at;
        let d = doc("cron job", &stored)?;
        sqlx::query(
            "UPDATE cron_jobs SET last_fire_at = $1, next_fire_at = $2, doc = $3 WHERE id = $4",
        )
        .bind(ts(fire_at))
        .bind(opt_ts(next_fire_at))
        .bind(d)
        .bind(job.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db("claim cron occurrence"))?;
        tx.commit().await.map_err(db("claim cron occurrence"))?;
        Ok(true)
    }
}
