//! Conformance cases for scripts, playbooks and staged files.

use chrono::Duration;

use super::fixtures::*;
use crate::ids::*;
use crate::model::*;
use crate::store::{AssetFilter, PageRequest, Store, TeamScope};
use crate::values::*;

/// A script is created with its first version; versions are immutable and numbered once.
pub async fn scripts_keep_their_versions(store: &dyn Store) {
    let a = team(store, "scripts-a").await;
    let b = team(store, "scripts-b").await;
    let (mut s, v1) = script(a.id, "rotate logs");
    store.create_script(&s, &v1).await.expect("create");
    assert_eq!(store.get_script(&scope(a.id), s.id).await.expect("get"), s);
    let mut v2 = v1.clone();
    v2.id = ScriptVersionId::new();
    v2.version = 2;
    v2.content = ScriptContent::parse("content", "echo v2").expect("content");
    store
        .add_script_version(&scope(a.id), &v2)
        .await
        .expect("add");
    let mut dup = v2.clone();
    dup.id = ScriptVersionId::new();
    assert_conflict(store.add_script_version(&scope(a.id), &dup).await);
    assert_not_found(store.add_script_version(&scope(b.id), &dup).await);
    store
        .set_script_version_status(&scope(a.id), v2.id, ScriptStatus::Online)
        .await
        .expect("online");
    v2.status = ScriptStatus::Online;
    assert_eq!(
        store
            .get_script_version(&scope(a.id), v2.id)
            .await
            .expect("get"),
        v2
    );
    assert_eq!(
        store
            .list_script_versions(&scope(a.id), s.id)
            .await
            .expect("list"),
        vec![v1.clone(), v2.clone()]
    );
    assert_not_found(store.get_script_version(&scope(b.id), v2.id).await);
    assert_not_found(store.list_script_versions(&scope(b.id), s.id).await);
    assert_not_found(
        store
            .set_script_version_status(&scope(b.id), v2.id, ScriptStatus::Offline)
            .await,
    );
    s.description = Description::parse("description", "keeps /var/log small").expect("d");
    store.update_script(&scope(a.id), &s).await.expect("update");
    assert_eq!(store.get_script(&scope(a.id), s.id).await.expect("get"), s);
    let (dup_name, dup_v) = script(a.id, "rotate logs");
    assert_conflict(store.create_script(&dup_name, &dup_v).await);
    assert_not_found(store.get_script(&scope(a.id), dup_name.id).await);
    store
        .delete_script(&scope(a.id), s.id)
        .await
        .expect("delete");
    assert_not_found(store.get_script_version(&scope(a.id), v1.id).await);
}

/// Playbook versions are kept in order and belong to their playbook's team.
pub async fn playbooks_keep_their_versions(store: &dyn Store) {
    let a = team(store, "pb-a").await;
    let b = team(store, "pb-b").await;
    let p = Playbook {
        id: PlaybookId::new(),
        team_id: a.id,
        name: name("patch"),
        description: Description::default(),
        created_at: now(),
    };
    store.create_playbook(&p).await.expect("create");
    let v = PlaybookVersion {
        id: PlaybookVersionId::new(),
        playbook_id: p.id,
        version: 1,
        blob_key: "playbooks/patch-1.zip".to_owned(),
        sha256: Sha256Hex::parse("sha256", &"cd".repeat(32)).expect("sha"),
        size: 1024,
        playbook_yml: "- hosts: all\n  tasks:\n    - ping: {}\n".to_owned(),
        readme: Some("# Patch\n".to_owned()),
        params: Vec::new(),
        created_by: None,
        created_at: now(),
    };
    store
        .add_playbook_version(&scope(a.id), &v)
        .await
        .expect("add");
    assert_conflict(
        store
            .add_playbook_version(
                &scope(a.id),
                &PlaybookVersion {
                    id: PlaybookVersionId::new(),
                    ..v.clone()
                },
            )
            .await,
    );
    assert_eq!(
        store
            .get_playbook_version(&scope(a.id), v.id)
            .await
            .expect("get"),
        v
    );
    assert_eq!(
        store
            .list_playbook_versions(&scope(a.id), p.id)
            .await
            .expect("list"),
        vec![v.clone()]
    );
    assert_not_found(store.get_playbook_version(&scope(b.id), v.id).await);
    assert_not_found(store.get_playbook(&scope(b.id), p.id).await);
    let page = store
        .list_playbooks(
            &scope(a.id),
            &AssetFilter::default(),
            PageRequest::first(10),
        )
        .await
        .expect("list");
    assert_eq!(page.items, vec![p.clone()]);
    store
        .delete_playbook(&scope(a.id), p.id)
        .await
        .expect("delete");
    assert_not_found(store.get_playbook_version(&scope(a.id), v.id).await);
}

/// Staged files are listed by team and handed to the purge when due.
pub async fn staged_files_are_listed_and_due_for_expiry(store: &dyn Store) {
    let a = team(store, "files-a").await;
    let t0 = now();
    let old = staged(a.id, "old.tar.gz", t0 - Duration::days(1));
    let fresh = staged(
        a.id,
        "fresh.tar.gz",
        StagedFile::expiry(t0, ExpireDays::DEFAULT),
    );
    store.create_staged_file(&old).await.expect("create");
    store.create_staged_file(&fresh).await.expect("create");
    assert_eq!(
        store
            .get_staged_file(&scope(a.id), fresh.id)
            .await
            .expect("get"),
        fresh
    );
    let due = store.staged_files_due(t0, 1000).await.expect("due");
    assert!(due.iter().any(|f| f.id == old.id));
    assert!(!due.iter().any(|f| f.id == fresh.id));
    let filter = AssetFilter {
        name_contains: Some("FRESH".to_owned()),
        ..AssetFilter::default()
    };
    let page = store
        .list_staged_files(&scope(a.id), &filter, PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(page.items, vec![fresh.clone()]);
    store
        .delete_staged_file(&TeamScope::All, old.id)
        .await
        .expect("purge");
    assert!(
        !store
            .staged_files_due(t0, 1000)
            .await
            .expect("due")
            .iter()
            .any(|f| f.id == old.id)
    );
}
