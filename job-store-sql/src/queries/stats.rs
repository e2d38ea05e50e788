//! Dashboard aggregates.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use job_core::Result;
use job_core::status::ExecutionStatus;
use job_core::store::{
    DayTrend, StatsStore, SuccessRate, TeamScope, TimeRange, Totals, checks, fill_trend,
};
use sqlx::QueryBuilder;

use super::SqlStore;
use super::db::{
    AVG_DURATION_MS, DAY_OF_CREATED, Db, TREND_COUNTS, db, get, get_day, push_scope, ts,
};

fn range_where(
    qb: &mut QueryBuilder<'_, Db>,
    scope: &TeamScope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    qb.push(" WHERE created_at >= ")
        .push_bind(ts(from))
        .push(" AND created_at < ")
        .push_bind(ts(to));
    push_scope(qb, "team_id", scope);
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

impl SqlStore {
    async fn rate(&self, scope: &TeamScope, range: TimeRange) -> Result<Option<f64>> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT COALESCE(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), 0) AS ok, \
             COALESCE(SUM(CASE WHEN status IN ('success', 'failed', 'timeout') THEN 1 ELSE 0 END), 0) AS ended \
             FROM executions",
        );
        range_where(&mut qb, scope, range.from(), range.to());
        let row = qb
            .build()
            .fetch_one(self.reader())
            .await
            .map_err(db("success rate"))?;
        let ok = checks::u64_of("ok", get(&row, "ok")?)?;
        let ended = checks::u64_of("ended", get(&row, "ended")?)?;
        Ok(SuccessRate::rate(ok, ended))
    }
}

#[async_trait]
impl StatsStore for SqlStore {
    async fn totals(&self, scope: &TeamScope, range: TimeRange) -> Result<Totals> {
        // One pass of conditional counts: cheaper than grouping, which has to sort.
        let mut sql = String::from("SELECT COUNT(*) AS n");
        for s in ExecutionStatus::ALL {
            sql.push_str(&format!(
                ", COALESCE(SUM(CASE WHEN status = '{s}' THEN 1 ELSE 0 END), 0) AS s_{s}"
            ));
        }
        for t in Totals::JOB_TYPES {
            sql.push_str(&format!(
                ", COALESCE(SUM(CASE WHEN job_type = '{t}' THEN 1 ELSE 0 END), 0) AS t_{t}"
            ));
        }
        sql.push_str(" FROM executions");
        let mut qb = QueryBuilder::<Db>::new(sql);
        range_where(&mut qb, scope, range.from(), range.to());
        let row = qb
            .build()
            .fetch_one(self.reader())
            .await
            .map_err(db("totals"))?;
        let count = |col: String| -> Result<u64> { checks::u64_of("totals", get(&row, &col)?) };
        let by_status = ExecutionStatus::ALL
            .iter()
            .map(|s| Ok((*s, count(format!("s_{s}"))?)))
            .collect::<Result<Vec<_>>>()?;
        let by_type = Totals::JOB_TYPES
            .iter()
            .map(|t| Ok((*t, count(format!("t_{t}"))?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Totals::from_counts(by_status, by_type))
    }

    async fn daily_trend(
        &self,
        scope: &TeamScope,
        first_day: NaiveDate,
        days: u32,
    ) -> Result<Vec<DayTrend>> {
        let days = days.clamp(1, job_core::store::MAX_TREND_DAYS);
        let from = day_start(first_day);
        let to = from + chrono::Duration::days(i64::from(days));
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {DAY_OF_CREATED}, COUNT(*) AS n, {TREND_COUNTS} FROM executions"
        ));
        range_where(&mut qb, scope, from, to);
        qb.push(" GROUP BY d");
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("daily trend"))?;
        let mut counts = Vec::with_capacity(rows.len());
        for r in &rows {
            counts.push(DayTrend {
                day: get_day(r, "d")?,
                total: checks::u64_of("n", get(r, "n")?)?,
                success: checks::u64_of("ok", get(r, "ok")?)?,
                failed: checks::u64_of("bad", get(r, "bad")?)?,
            });
        }
        Ok(fill_trend(first_day, days, counts))
    }

    async fn average_duration_ms(
        &self,
        scope: &TeamScope,
        range: TimeRange,
    ) -> Result<Option<f64>> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {AVG_DURATION_MS} FROM executions"));
        range_where(&mut qb, scope, range.from(), range.to());
        qb.push(" AND started_at IS NOT NULL AND finished_at IS NOT NULL");
        let row = qb
            .build()
            .fetch_one(self.reader())
            .await
            .map_err(db("average duration"))?;
        get::<Option<f64>>(&row, "avg_ms")
    }

    async fn success_rate(&self, scope: &TeamScope, range: TimeRange) -> Result<SuccessRate> {
        Ok(SuccessRate {
            current: self.rate(scope, range).await?,
            previous: self.rate(scope, range.previous()).await?,
        })
    }
}
