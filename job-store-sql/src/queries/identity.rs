//! Teams, users with their memberships, and hashed API tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use job_core::ids::{TeamId, TokenId, UserId};
use job_core::model::{ApiToken, Membership, Role, Team, User};
use job_core::store::{IdentityStore, Page, PageRequest, TeamScope, checks};
use job_core::values::{Description, Name, Username};
use job_core::{Error, Result};
use sqlx::QueryBuilder;

use super::SqlStore;
use super::db::{
    Db, Row, db, enum_of, enum_text, get, get_opt_ts, get_ts, opt_ts, page, push_scope, ts,
};

const USER_COLS: &str = "id, username, display_name, password_hash, is_admin, disabled, created_at";
const TOKEN_COLS: &str =
    "id, name, team_id, created_by, token_hash, expires_at, revoked_at, created_at, last_used_at";

fn name_of(row: &Row, col: &str) -> Result<Name> {
    Name::parse(col, &get::<String>(row, col)?).map_err(|e| checks::corrupt(col, e))
}

fn team_from(row: &Row) -> Result<Team> {
    Ok(Team {
        id: TeamId::from_uuid(get(row, "id")?),
        name: name_of(row, "name")?,
        description: Description::parse("description", &get::<String>(row, "description")?)
            .map_err(|e| checks::corrupt("description", e))?,
        created_at: get_ts(row, "created_at")?,
    })
}

fn user_from(row: &Row) -> Result<User> {
    Ok(User {
        id: UserId::from_uuid(get(row, "id")?),
        username: Username::parse("username", &get::<String>(row, "username")?)
            .map_err(|e| checks::corrupt("username", e))?,
        display_name: name_of(row, "display_name")?,
        password_hash: get(row, "password_hash")?,
        is_admin: get(row, "is_admin")?,
        disabled: get(row, "disabled")?,
        memberships: Vec::new(),
        created_at: get_ts(row, "created_at")?,
    })
}

fn token_from(row: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: TokenId::from_uuid(get(row, "id")?),
        name: name_of(row, "name")?,
        team_id: TeamId::from_uuid(get(row, "team_id")?),
        created_by: UserId::from_uuid(get(row, "created_by")?),
        token_hash: get(row, "token_hash")?,
        expires_at: get_opt_ts(row, "expires_at")?,
        revoked_at: get_opt_ts(row, "revoked_at")?,
        created_at: get_ts(row, "created_at")?,
        last_used_at: get_opt_ts(row, "last_used_at")?,
    })
}

fn check_user(u: &User) -> Result<()> {
    checks::text("password_hash", &u.password_hash, checks::MAX_KEY_BYTES)
}

impl SqlStore {
    async fn with_memberships(&self, mut users: Vec<User>) -> Result<Vec<User>> {
        for u in &mut users {
            let rows = sqlx::query(
                "SELECT team_id, role FROM memberships WHERE user_id = $1 ORDER BY team_id",
            )
            .bind(u.id.as_uuid())
            .fetch_all(self.reader())
            .await
            .map_err(db("read memberships"))?;
            u.memberships = rows
                .iter()
                .map(|r| {
                    Ok(Membership {
                        team_id: TeamId::from_uuid(get(r, "team_id")?),
                        role: enum_of::<Role>("role", get(r, "role")?)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        }
        Ok(users)
    }

    async fn one_user(&self, row: Option<Row>, what: String) -> Result<User> {
        let Some(row) = row else {
            return Err(Error::not_found(what));
        };
        let users = self.with_memberships(vec![user_from(&row)?]).await?;
        users
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("user"))
    }
}

#[async_trait]
impl IdentityStore for SqlStore {
    async fn create_team(&self, t: &Team) -> Result<()> {
        sqlx::query(
            "INSERT INTO teams (id, name, description, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(t.id.as_uuid())
        .bind(t.name.as_str())
        .bind(t.description.as_str())
        .bind(ts(t.created_at))
        .execute(self.writer())
        .await
        .map_err(db("create team"))?;
        Ok(())
    }

    async fn get_team(&self, scope: &TeamScope, id: TeamId) -> Result<Team> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, name, description, created_at FROM teams WHERE id = ",
        );
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, "id", scope);
        match qb
            .build()
            .fetch_optional(self.reader())
            .await
            .map_err(db("read team"))?
        {
            Some(r) => team_from(&r),
            None => Err(Error::not_found(format!("team {id}"))),
        }
    }

    async fn list_teams(&self, scope: &TeamScope) -> Result<Vec<Team>> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, name, description, created_at FROM teams WHERE 1 = 1",
        );
        push_scope(&mut qb, "id", scope);
        qb.push(" ORDER BY name");
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("list teams"))?;
        rows.iter().map(team_from).collect()
    }

    async fn delete_team(&self, id: TeamId) -> Result<()> {
        let done = sqlx::query("DELETE FROM teams WHERE id = $1")
            .bind(id.as_uuid())
            .execute(self.writer())
            .await
            .map_err(db("delete team"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("team {id}")));
        }
        Ok(())
    }

    async fn create_user(&self, u: &User) -> Result<()> {
        check_user(u)?;
        let mut tx = self.writer().begin().await.map_err(db("create user"))?;
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(u.id.as_uuid())
        .bind(u.username.as_str())
        .bind(u.display_name.as_str())
        .bind(u.password_hash.as_str())
        .bind(u.is_admin)
        .bind(u.disabled)
        .bind(ts(u.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db("create user"))?;
        for m in &u.memberships {
            sqlx::query("INSERT INTO memberships (user_id, team_id, role) VALUES ($1, $2, $3)")
                .bind(u.id.as_uuid())
                .bind(m.team_id.as_uuid())
                .bind(enum_text(&m.role))
                .execute(&mut *tx)
                .await
                .map_err(db("create membership"))?;
        }
        tx.commit().await.map_err(db("create user"))?;
        Ok(())
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(self.reader())
            .await
            .map_err(db("read user"))?;
        self.one_user(row, format!("user {id}")).await
    }

    async fn get_user_by_username(&self, username: &Username) -> Result<User> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db("read user"))?;
        self.one_user(row, format!("user {username}")).await
    }

    async fn update_user(&self, u: &User) -> Result<()> {
        check_user(u)?;
        let done = sqlx::query(
            "UPDATE users SET display_name = $1, password_hash = $2, is_admin = $3, disabled = $4 WHERE id = $5",
        )
        .bind(u.display_name.as_str())
        .bind(u.password_hash.as_str())
        .bind(u.is_admin)
        .bind(u.disabled)
        .bind(u.id.as_uuid())
        .execute(self.writer())
        .await
        .map_err(db("update user"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("user {}", u.id)));
        }
        Ok(())
    }

    async fn list_users(&self, page_req: PageRequest<UserId>) -> Result<Page<User, UserId>> {
        let limit = page_req.clamped_limit();
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {USER_COLS} FROM users WHERE 1 = 1"));
        if let Some(after) = page_req.after {
            qb.push(" AND id < ").push_bind(after.as_uuid());
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("list users"))?;
        let users = rows.iter().map(user_from).collect::<Result<Vec<_>>>()?;
        let p = page(users, limit, |u| u.id);
        Ok(Page {
            items: self.with_memberships(p.items).await?,
            next: p.next,
        })
    }

    async fn set_membership(&self, user: UserId, team: TeamId, role: Option<Role>) -> Result<()> {
        match role {
            Some(role) => {
                sqlx::query(
                    "INSERT INTO memberships (user_id, team_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, team_id) DO UPDATE SET role = excluded.role",
                )
                .bind(user.as_uuid())
                .bind(team.as_uuid())
                .bind(enum_text(&role))
                .execute(self.writer())
                .await
                .map_err(|e| match super::db::db_error("set membership", e) {
                    Error::Conflict { .. } => {
                        Error::not_found(format!("user {user} or team {team}"))
                    }
                    other => other,
                })?;
            }
            None => {
                sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND team_id = $2")
                    .bind(user.as_uuid())
                    .bind(team.as_uuid())
                    .execute(self.writer())
                    .await
                    .map_err(db("remove membership"))?;
            }
        }
        Ok(())
    }

    async fn create_token(&self, t: &ApiToken) -> Result<()> {
        checks::text("token_hash", &t.token_hash, checks::MAX_KEY_BYTES)?;
        sqlx::query(&format!(
            "INSERT INTO api_tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(t.id.as_uuid())
        .bind(t.name.as_str())
        .bind(t.team_id.as_uuid())
        .bind(t.created_by.as_uuid())
        .bind(t.token_hash.as_str())
        .bind(opt_ts(t.expires_at))
        .bind(opt_ts(t.revoked_at))
        .bind(ts(t.created_at))
        .bind(opt_ts(t.last_used_at))
        .execute(self.writer())
        .await
        .map_err(db("create token"))?;
        Ok(())
    }

    async fn get_token_by_hash(&self, token_hash: &str) -> Result<ApiToken> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await
        .map_err(db("read token"))?;
        match row {
            Some(r) => token_from(&r),
            None => Err(Error::not_found("token")),
        }
    }

    async fn list_tokens(&self, scope: &TeamScope) -> Result<Vec<ApiToken>> {
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE 1 = 1"));
        push_scope(&mut qb, "team_id", scope);
        qb.push(" ORDER BY id DESC");
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("list tokens"))?;
        rows.iter().map(token_from).collect()
    }

    async fn revoke_token(&self, scope: &TeamScope, id: TokenId, at: DateTime<Utc>) -> Result<()> {
        let mut qb =
            QueryBuilder::<Db>::new("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ");
        qb.push_bind(ts(at))
            .push(") WHERE id = ")
            .push_bind(id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db("revoke token"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("token {id}")));
        }
        Ok(())
    }

    async fn touch_token(&self, id: TokenId, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(ts(at))
            .bind(id.as_uuid())
            .execute(self.writer())
            .await
            .map_err(db("touch token"))?;
        Ok(())
    }
}
