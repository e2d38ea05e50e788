//! Scripts and their versions, playbooks and their versions, staged files.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use job_core::ids::{FileId, PlaybookId, PlaybookVersionId, ScriptId, ScriptVersionId};
use job_core::model::{Playbook, PlaybookVersion, Script, ScriptStatus, ScriptVersion, StagedFile};
use job_core::store::{
    AssetFilter, Page, PageRequest, PlaybookStore, ScriptStore, StagedFileStore, TeamScope, checks,
};
use job_core::{Error, Result};
use sqlx::QueryBuilder;

use super::SqlStore;
use super::assets::{delete_row, doc, get_doc, list_docs};
use super::db::{Db, Row, db, enum_of, enum_text, get, get_json, push_scope, ts};

fn script_version_from(row: &Row) -> Result<ScriptVersion> {
    let mut v: ScriptVersion = get_json(row, "doc")?;
    v.status = enum_of("status", get(row, "status")?)?;
    Ok(v)
}

impl SqlStore {
    /// Fails with NotFound unless the row `id` of `table` exists in `scope`.
    async fn ensure_visible(
        &self,
        table: &str,
        what: &str,
        id: uuid::Uuid,
        scope: &TeamScope,
    ) -> Result<()> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT 1 FROM {table} WHERE id = "));
        qb.push_bind(id);
        push_scope(&mut qb, "team_id", scope);
        match qb
            .build()
            .fetch_optional(self.reader())
            .await
            .map_err(db("read"))?
        {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("{what} {id}"))),
        }
    }
}

#[async_trait]
impl ScriptStore for SqlStore {
    async fn create_script(&self, script: &Script, first: &ScriptVersion) -> Result<()> {
        if first.script_id != script.id {
            return Err(Error::invalid(
                "script_id",
                "the first version must belong to the script",
            ));
        }
        let sd = doc("script", script)?;
        let vd = doc("script version", first)?;
        let mut tx = self.writer().begin().await.map_err(db("create script"))?;
        sqlx::query("INSERT INTO scripts (id, team_id, name, doc) VALUES ($1, $2, $3, $4)")
            .bind(script.id.as_uuid())
            .bind(script.team_id.as_uuid())
            .bind(script.name.as_str())
            .bind(sd)
            .execute(&mut *tx)
            .await
            .map_err(db("create script"))?;
        sqlx::query("INSERT INTO script_versions (id, script_id, version, status, doc) VALUES ($1, $2, $3, $4, $5)")
            .bind(first.id.as_uuid())
            .bind(first.script_id.as_uuid())
            .bind(i64::from(first.version))
            .bind(enum_text(&first.status))
            .bind(vd)
            .execute(&mut *tx)
            .await
            .map_err(db("create script version"))?;
        tx.commit().await.map_err(db("create script"))?;
        Ok(())
    }

    async fn get_script(&self, scope: &TeamScope, id: ScriptId) -> Result<Script> {
        get_doc(self.reader(), "scripts", "script", id.as_uuid(), scope).await
    }

    async fn update_script(&self, scope: &TeamScope, s: &Script) -> Result<()> {
        let d = doc("script", s)?;
        let mut qb = QueryBuilder::<Db>::new("UPDATE scripts SET name = ");
        qb.push_bind(s.name.as_str().to_owned())
            .push(", doc = ")
            .push_bind(d)
            .push(" WHERE id = ")
            .push_bind(s.id.as_uuid())
            .push(" AND team_id = ")
            .push_bind(s.team_id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db("update script"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("script {}", s.id)));
        }
        Ok(())
    }

    async fn delete_script(&self, scope: &TeamScope, id: ScriptId) -> Result<()> {
        delete_row(self.writer(), "scripts", "script", id.as_uuid(), scope).await
    }

    async fn list_scripts(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<ScriptId>,
    ) -> Result<Page<Script, ScriptId>> {
        list_docs(
            self.reader(),
            "scripts",
            scope,
            filter,
            page,
            |k| k.as_uuid(),
            |s: &Script| s.id,
        )
        .await
    }

    async fn add_script_version(&self, scope: &TeamScope, v: &ScriptVersion) -> Result<()> {
        let d = doc("script version", v)?;
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO script_versions (id, script_id, version, status, doc) SELECT ",
        );
        qb.push_bind(v.id.as_uuid())
            .push(", ")
            .push_bind(v.script_id.as_uuid())
            .push(", ")
            .push_bind(i64::from(v.version))
            .push(", ")
            .push_bind(enum_text(&v.status))
            .push(", ")
            .push_bind(d)
            .push(" WHERE EXISTS (SELECT 1 FROM scripts WHERE id = ")
            .push_bind(v.script_id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        qb.push(")");
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db("add script version"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("script {}", v.script_id)));
        }
        Ok(())
    }

    async fn get_script_version(
        &self,
        scope: &TeamScope,
        id: ScriptVersionId,
    ) -> Result<ScriptVersion> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT v.doc, v.status FROM script_versions v JOIN scripts s ON s.id = v.script_id WHERE v.id = ",
        );
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, "s.team_id", scope);
        match qb
            .build()
            .fetch_optional(self.reader())
            .await
            .map_err(db("read script version"))?
        {
            Some(r) => script_version_from(&r),
            None => Err(Error::not_found(format!("script version {id}"))),
        }
    }

    async fn list_script_versions(
        &self,
        scope: &TeamScope,
        script: ScriptId,
    ) -> Result<Vec<ScriptVersion>> {
        self.ensure_visible("scripts", "script", script.as_uuid(), scope)
            .await?;
        let rows = sqlx::query(
            "SELECT doc, status FROM script_versions WHERE script_id = $1 ORDER BY version",
        )
        .bind(script.as_uuid())
        .fetch_all(self.reader())
        .await
        .map_err(db("list script versions"))?;
        rows.iter().map(script_version_from).collect()
    }

    async fn set_script_version_status(
        &self,
        scope: &TeamScope,
        id: ScriptVersionId,
        status: ScriptStatus,
    ) -> Result<()> {
        let mut qb = QueryBuilder::<Db>::new("UPDATE script_versions SET status = ");
        qb.push_bind(enum_text(&status))
            .push(" WHERE id = ")
            .push_bind(id.as_uuid())
            .push(" AND script_id IN (SELECT id FROM scripts WHERE 1 = 1");
        push_scope(&mut qb, "team_id", scope);
        qb.push(")");
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db("set script version status"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("script version {id}")));
        }
        Ok(())
    }
}

#[async_trait]
impl PlaybookStore for SqlStore {
    async fn create_playbook(&self, p: &Playbook) -> Result<()> {
        let d = doc("playbook", p)?;
        sqlx::query("INSERT INTO playbooks (id, team_id, name, doc) VALUES ($1, $2, $3, $4)")
            .bind(p.id.as_uuid())
            .bind(p.team_id.as_uuid())
            .bind(p.name.as_str())
            .bind(d)
            .execute(self.writer())
            .await
            .map_err(db("create playbook"))?;
        Ok(())
    }

    async fn get_playbook(&self, scope: &TeamScope, id: PlaybookId) -> Result<Playbook> {
        get_doc(self.reader(), "playbooks", "playbook", id.as_uuid(), scope).await
    }

    async fn delete_playbook(&self, scope: &TeamScope, id: PlaybookId) -> Result<()> {
        delete_row(self.writer(), "playbooks", "playbook", id.as_uuid(), scope).await
    }

    async fn list_playbooks(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<PlaybookId>,
    ) -> Result<Page<Playbook, PlaybookId>> {
        list_docs(
            self.reader(),
            "playbooks",
            scope,
            filter,
            page,
            |k| k.as_uuid(),
            |p: &Playbook| p.id,
        )
        .await
    }

    async fn add_playbook_version(&self, scope: &TeamScope, v: &PlaybookVersion) -> Result<()> {
        checks::text("blob_key", &v.blob_key, checks::MAX_KEY_BYTES)?;
        checks::i64_of("size", v.size)?;
        let d = doc("playbook version", v)?;
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO playbook_versions (id, playbook_id, version, doc) SELECT ",
        );
        qb.push_bind(v.id.as_uuid())
            .push(", ")
            .push_bind(v.playbook_id.as_uuid())
            .push(", ")
            .push_bind(i64::from(v.version))
            .push(", ")
            .push_bind(d)
            .push(" WHERE EXISTS (SELECT 1 FROM playbooks WHERE id = ")
            .push_bind(v.playbook_id.as_uuid());
        push_scope(&mut qb, "team_id", scope);
        qb.push(")");
        let done = qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db("add playbook version"))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("playbook {}", v.playbook_id)));
        }
        Ok(())
    }

    async fn get_playbook_version(
        &self,
        scope: &TeamScope,
        id: PlaybookVersionId,
    ) -> Result<PlaybookVersion> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT v.doc FROM playbook_versions v JOIN playbooks p ON p.id = v.playbook_id WHERE v.id = ",
        );
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, "p.team_id", scope);
        match qb
            .build()
            .fetch_optional(self.reader())
            .await
            .map_err(db("read playbook version"))?
        {
            Some(r) => get_json(&r, "doc"),
            None => Err(Error::not_found(format!("playbook version {id}"))),
        }
    }

    async fn list_playbook_versions(
        &self,
        scope: &TeamScope,
        playbook: PlaybookId,
    ) -> Result<Vec<PlaybookVersion>> {
        self.ensure_visible("playbooks", "playbook", playbook.as_uuid(), scope)
            .await?;
        let rows = sqlx::query(
            "SELECT doc FROM playbook_versions WHERE playbook_id = $1 ORDER BY version",
        )
        .bind(playbook.as_uuid())
        .fetch_all(self.reader())
        .await
        .map_err(db("list playbook versions"))?;
        rows.iter().map(|r| get_json(r, "doc")).collect()
    }
}

#[async_trait]
impl StagedFileStore for SqlStore {
    async fn create_staged_file(&self, f: &StagedFile) -> Result<()> {
        checks::text("blob_key", &f.blob_key, checks::MAX_KEY_BYTES)?;
        checks::i64_of("size", f.size)?;
        let d = doc("file", f)?;
        sqlx::query("INSERT INTO staged_files (id, team_id, name, expire_at, doc) VALUES ($1, $2, $3, $4, $5)")
            .bind(f.id.as_uuid())
            .bind(f.team_id.as_uuid())
            .bind(f.name.as_str())
            .bind(ts(f.expire_at))
            .bind(d)
            .execute(self.writer())
            .await
            .map_err(db("create staged file"))?;
        Ok(())
    }

    async fn get_staged_file(&self, scope: &TeamScope, id: FileId) -> Result<StagedFile> {
        get_doc(self.reader(), "staged_files", "file", id.as_uuid(), scope).await
    }

    async fn delete_staged_file(&self, scope: &TeamScope, id: FileId) -> Result<()> {
        delete_row(self.writer(), "staged_files", "file", id.as_uuid(), scope).await
    }

    async fn list_staged_files(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<FileId>,
    ) -> Result<Page<StagedFile, FileId>> {
        list_docs(
            self.reader(),
            "staged_files",
            scope,
            filter,
            page,
            |k| k.as_uuid(),
            |f: &StagedFile| f.id,
        )
        .await
    }

    async fn staged_files_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<StagedFile>> {
        let rows = sqlx::query(
            "SELECT doc FROM staged_files WHERE expire_at <= $1 ORDER BY expire_at, id LIMIT $2",
        )
        .bind(ts(now))
        .bind(i64::from(limit.clamp(1, job_core::store::MAX_PAGE)))
        .fetch_all(self.reader())
        .await
        .map_err(db("list expired files"))?;
        rows.iter().map(|r| get_json(r, "doc")).collect()
    }
}
