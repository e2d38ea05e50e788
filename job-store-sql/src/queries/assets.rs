//! Targets, credentials and target groups, and the helpers every document table shares.

use async_trait::async_trait;
use job_core::ids::{CredentialId, GroupId, TargetId, TeamId};
use job_core::model::{Credential, Target, TargetGroup, TargetMode, TargetSelector};
use job_core::store::{
    AssetFilter, CredentialStore, Page, PageRequest, TargetGroupStore, TargetStore, TeamScope,
    checks,
};
use job_core::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::QueryBuilder;
use sqlx::types::Json;
use uuid::Uuid;

use super::SqlStore;
use super::db::{
    Db, Pool, db, db_error, get, get_json, get_ts, page, push_name_contains, push_scope, ts,
};

/// Reads the `doc` of row `id` in `table` if its team is visible.
pub(crate) async fn get_doc<T: DeserializeOwned>(
    pool: &Pool,
    table: &str,
    what: &str,
    id: Uuid,
    scope: &TeamScope,
) -> Result<T> {
    let mut qb = QueryBuilder::<Db>::new(format!("SELECT doc FROM {table} WHERE id = "));
    qb.push_bind(id);
    push_scope(&mut qb, "team_id", scope);
    let row = qb
        .build()
        .fetch_optional(pool)
        .await
        .map_err(|e| db_error(&format!("read {what}"), e))?;
    match row {
        Some(r) => get_json(&r, "doc"),
        None => Err(Error::not_found(format!("{what} {id}"))),
    }
}

/// Deletes row `id` of `table` if its team is visible.
pub(crate) async fn delete_row(
    pool: &Pool,
    table: &str,
    what: &str,
    id: Uuid,
    scope: &TeamScope,
) -> Result<()> {
    let mut qb = QueryBuilder::<Db>::new(format!("DELETE FROM {table} WHERE id = "));
    qb.push_bind(id);
    push_scope(&mut qb, "team_id", scope);
    let done = qb
        .build()
        .execute(pool)
        .await
        .map_err(|e| db_error(&format!("delete {what}"), e))?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found(format!("{what} {id}")));
    }
    Ok(())
}

/// Lists the `doc`s of `table` visible in `scope`, newest first.
pub(crate) async fn list_docs<T, K>(
    pool: &Pool,
    table: &str,
    scope: &TeamScope,
    filter: &AssetFilter,
    page_req: PageRequest<K>,
    uuid_of: impl Fn(K) -> Uuid,
    key_of: impl Fn(&T) -> K,
) -> Result<Page<T, K>>
where
    T: DeserializeOwned,
{
    let limit = page_req.clamped_limit();
    let mut qb = QueryBuilder::<Db>::new(format!("SELECT doc FROM {table} WHERE 1 = 1"));
    push_scope(&mut qb, "team_id", scope);
    if let Some(team) = filter.team_id {
        qb.push(" AND team_id = ").push_bind(team.as_uuid());
    }
    push_name_contains(&mut qb, "name", filter.name_contains.as_deref());
    if let Some(after) = page_req.after {
        qb.push(" AND id < ").push_bind(uuid_of(after));
    }
    qb.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = qb
        .build()
        .fetch_all(pool)
        .await
        .map_err(|e| db_error(&format!("list {table}"), e))?;
    let items = rows
        .iter()
        .map(|r| get_json(r, "doc"))
        .collect::<Result<Vec<T>>>()?;
    Ok(page(items, limit, key_of))
}

/// Checks a document for the column `field` and wraps it for binding.
pub(crate) fn doc<T: Serialize>(field: &str, value: &T) -> Result<Json<serde_json::Value>> {
    checks::json(field, value).map(Json)
}

fn credential_of(target: &Target) -> Option<Uuid> {
    match &target.mode {
        TargetMode::Agentless { credential_id, .. } => Some(credential_id.as_uuid()),
        _ => None,
    }
}

impl SqlStore {
    async fn check_credential_team(&self, target: &Target) -> Result<()> {
        let Some(cred) = credential_of(target) else {
            return Ok(());
        };
        let team: Option<Uuid> =
            sqlx::query_scalar("SELECT team_id FROM credentials WHERE id = $1")
                .bind(cred)
                .fetch_optional(self.reader())
                .await
                .map_err(db("read credential"))?;
        if team != Some(target.team_id.as_uuid()) {
            return Err(Error::invalid(
                "credential_id",
                format!("credential {cred} is not a credential of the target's team"),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl TargetStore for SqlStore {
    async fn create_target(&self, target: &Target) -> Result<()> {
        let d = doc("target", target)?;
        self.check_credential_team(target).await?;
        sqlx::query(
            "INSERT INTO targets (id, team_id, name, address, credential_id, doc) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(target.id.as_uuid())
        .bind(target.team_id.as_uuid())
        .bind(target.name.as_str())
        .bind(target.address.as_str())
        .bind(credential_of(target))
        .bind(d)
        .execute(self.writer())
        .await
        .map_err(db("create target"))?;
        Ok(())
    }

    async fn get_target(&self, scope: &TeamScope, id: TargetId) -> Result<Target> {
        get_doc(self.reader(), "targets", "target", id.as_uuid(), scope).await
    }

    async fn update_target(&self, scope: &TeamScope, target: &Target) -> Result<()> {
        let d = doc("target", target)?;
        self.check_credential_team(target).await?;
        let mut qb = QueryBuilder::<Db>::new("UPDATE targets SET name = ");
        qb.push_bind(target.name.as_str().to_owned())
            .push(", address = ")
            .push_bind(target.address.as_str().to_owned())
            .push(", credential_id = ")
            .push_bind(credential_of(target))
            .push(", doc = ")
            .push_bind(d)
            .push(" WHERE id = ")
            .push_bind(target.id.as_uuid())
            .push(" AND team_id = ")
            .push_bind(target.team_id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db("update target"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("target {}", target.id)));
        }
        Ok(())
    }

    async fn delete_target(&self, scope: &TeamScope, id: TargetId) -> Result<()> {
        delete_row(self.writer(), "targets", "target", id.as_uuid(), scope).await
    }

    async fn list_targets(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<TargetId>,
    ) -> Result<Page<Target, TargetId>> {
        list_docs(
            self.reader(),
            "targets",
            scope,
            filter,
            page,
            |k| k.as_uuid(),
            |t: &Target| t.id,
        )
        .await
    }

    async fn targets_matching(
        &self,
        team: TeamId,
        selector: &TargetSelector,
    ) -> Result<Vec<Target>> {
        let mut qb = QueryBuilder::<Db>::new("SELECT doc FROM targets WHERE team_id = ");
        qb.push_bind(team.as_uuid());
        if selector.tags.is_empty() {
            if selector.target_ids.is_empty() && selector.ips.is_empty() {
                return Ok(Vec::new());
            }
            qb.push(" AND (1 = 0");
            if !selector.target_ids.is_empty() {
                qb.push(" OR id IN (");
                let mut list = qb.separated(", ");
                for id in &selector.target_ids {
                    list.push_bind(id.as_uuid());
                }
                list.push_unseparated(")");
            }
            if !selector.ips.is_empty() {
                qb.push(" OR address IN (");
                let mut list = qb.separated(", ");
                for ip in &selector.ips {
                    list.push_bind(ip.as_str().to_owned());
                }
                list.push_unseparated(")");
            }
            qb.push(")");
        }
        qb.push(" ORDER BY id");
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("resolve targets"))?;
        let mut out = Vec::new();
        for row in &rows {
            let t: Target = get_json(row, "doc")?;
            if selector.target_ids.contains(&t.id) || selector.matches_by_attributes(&t) {
                out.push(t);
            }
        }
        Ok(out)
    }
}

fn credential_from(row: &super::db::Row) -> Result<Credential> {
    Ok(Credential {
        id: CredentialId::from_uuid(get(row, "id")?),
        team_id: TeamId::from_uuid(get(row, "team_id")?),
        name: job_core::values::Name::parse("name", &get::<String>(row, "name")?)
            .map_err(|e| checks::corrupt("name", e))?,
        kind: get(row, "kind")?,
        secret_ciphertext: get(row, "secret")?,
        created_at: get_ts(row, "created_at")?,
    })
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn create_credential(&self, c: &Credential) -> Result<()> {
        checks::text("kind", &c.kind, checks::MAX_KEY_BYTES)?;
        sqlx::query(
            "INSERT INTO credentials (id, team_id, name, kind, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.id.as_uuid())
        .bind(c.team_id.as_uuid())
        .bind(c.name.as_str())
        .bind(c.kind.as_str())
        .bind(c.secret_ciphertext.as_slice())
        .bind(ts(c.created_at))
        .execute(self.writer())
        .await
        .map_err(db("create credential"))?;
        Ok(())
    }

    async fn get_credential(&self, scope: &TeamScope, id: CredentialId) -> Result<Credential> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, team_id, name, kind, secret, created_at FROM credentials WHERE id = ",
        );
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        let row = qb
            .build()
            .fetch_optional(self.reader())
            .await
            .map_err(db("read credential"))?;
        match row {
            Some(r) => credential_from(&r),
            None => Err(Error::not_found(format!("credential {id}"))),
        }
    }

    async fn delete_credential(&self, scope: &TeamScope, id: CredentialId) -> Result<()> {
        delete_row(
            self.writer(),
            "credentials",
            "credential",
            id.as_uuid(),
            scope,
        )
        .await
    }

    async fn list_credentials(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page_req: PageRequest<CredentialId>,
    ) -> Result<Page<Credential, CredentialId>> {
        let limit = page_req.clamped_limit();
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, team_id, name, kind, secret, created_at FROM credentials WHERE 1 = 1",
        );
        push_scope(&mut qb, "team_id", scope);
        if let Some(team) = filter.team_id {
            qb.push(" AND team_id = ").push_bind(team.as_uuid());
        }
        push_name_contains(&mut qb, "name", filter.name_contains.as_deref());
        if let Some(after) = page_req.after {
            qb.push(" AND id < ").push_bind(after.as_uuid());
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("list credentials"))?;
        let items = rows
            .iter()
            .map(credential_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |c| c.id))
    }
}

#[async_trait]
impl TargetGroupStore for SqlStore {
    async fn create_group(&self, g: &TargetGroup) -> Result<()> {
        let d = doc("target group", g)?;
        sqlx::query("INSERT INTO target_groups (id, team_id, name, doc) VALUES ($1, $2, $3, $4)")
            .bind(g.id.as_uuid())
            .bind(g.team_id.as_uuid())
            .bind(g.name.as_str())
            .bind(d)
            .execute(self.writer())
            .await
            .map_err(db("create target group"))?;
        Ok(())
    }

    async fn get_group(&self, scope: &TeamScope, id: GroupId) -> Result<TargetGroup> {
        get_doc(
            self.reader(),
            "target_groups",
            "target group",
            id.as_uuid(),
            scope,
        )
        .await
    }

    async fn update_group(&self, scope: &TeamScope, g: &TargetGroup) -> Result<()> {
        let d = doc("target group", g)?;
        let mut qb = QueryBuilder::<Db>::new("UPDATE target_groups SET name = ");
        qb.push_bind(g.name.as_str().to_owned())
            .push(", doc = ")
            .push_bind(d)
            .push(" WHERE id = ")
            .push_bind(g.id.as_uuid())
            .push(" AND team_id = ")
            .push_bind(g.team_id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db("update target group"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("target group {}", g.id)));
        }
        Ok(())
    }

    async fn delete_group(&self, scope: &TeamScope, id: GroupId) -> Result<()> {
        delete_row(
            self.writer(),
            "target_groups",
            "target group",
            id.as_uuid(),
            scope,
        )
        .await
    }

    async fn list_groups(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<GroupId>,
    ) -> Result<Page<TargetGroup, GroupId>> {
        list_docs(
            self.reader(),
            "target_groups",
            scope,
            filter,
            page,
            |k| k.as_uuid(),
            |g: &TargetGroup| g.id,
        )
        .await
    }
}
