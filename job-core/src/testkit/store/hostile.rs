//! Conformance cases for hostile values: stored unchanged when the schema can hold them,
//! refused naming the field when it cannot.

use super::fixtures::*;
use crate::ids::*;
use crate::model::*;
use crate::store::{AssetFilter, PageRequest, Store, TeamScope};
use crate::values::{Description, ScriptContent};

/// Hostile text is stored and read back unchanged, and `%`, `_` and quotes are plain text
/// in name searches.
pub async fn hostile_values_are_stored_and_read_back_unchanged(store: &dyn Store) {
    let a = team(store, "hostile").await;
    let weird = [
        "Robert'); DROP TABLE targets;--",
        "数据库-サーバー-🚀",
        "100% _of_ \"quoted\" \\backslash\\",
        "ﬁ ligature Ⅻ ß ΣΑΣ",
        "\u{202e}rtl override\u{200b}zero width",
    ];
    let mut ids = Vec::new();
    for (i, w) in weird.iter().enumerate() {
        let mut t = target(a.id, w, &format!("10.66.0.{i}"));
        t.description = Description::parse("description", &format!("{w}\n\t{}", "é".repeat(4000)))
            .expect("description");
        store.create_target(&t).await.expect("create");
        assert_eq!(store.get_target(&scope(a.id), t.id).await.expect("get"), t);
        ids.push(t.id);
    }
    let search = |s: &'static str| async move {
        let f = AssetFilter {
            name_contains: Some(s.to_owned()),
            ..AssetFilter::default()
        };
        store
            .list_targets(&scope(a.id), &f, PageRequest::first(100))
            .await
            .expect("list")
            .items
            .len()
    };
    assert_eq!(search("%").await, 1);
    assert_eq!(search("_").await, 1);
    assert_eq!(search("'").await, 1);
    assert_eq!(search("\"quoted\"").await, 1);
    assert_eq!(search("🚀").await, 1);
    assert_eq!(search("drop table").await, 1);

    let (s, mut v) = script(a.id, "big unicode script");
    let line = "echo '数据库 🚀 \"$HOME\" `id` $(whoami)' \\\n";
    v.content = ScriptContent::parse(
        "content",
        &line.repeat(ScriptContent::MAX_BYTES / line.len()),
    )
    .expect("content");
    store.create_script(&s, &v).await.expect("create");
    assert_eq!(
        store
            .get_script_version(&scope(a.id), v.id)
            .await
            .expect("get"),
        v
    );

    let (mut e, runs) = execution(a.id, 2, now());
    e.name = crate::values::Name::parse("name", &"名".repeat(128)).expect("name");
    e.callback_url = Some("https://hooks.example.com/cb?q='\"&x=数据".to_owned());
    e.task = TaskSnapshot::Script {
        language: ScriptLanguage::Python,
        rendered: "print('''\u{1F680}\\x00 \"\"\" ''')".to_owned(),
        script_version_id: Some(v.id),
        params: [
            ("password".to_owned(), "******".to_owned()),
            ("路径".to_owned(), "/tmp/a b/'c'".to_owned()),
        ]
        .into_iter()
        .collect(),
    };
    store.create_execution(&e, &runs).await.expect("create");
    assert_eq!(
        store.get_execution(&scope(a.id), e.id).await.expect("get"),
        e
    );
}

/// Values the schema cannot hold are refused with an error naming the field.
pub async fn values_the_schema_cannot_hold_are_refused_naming_the_field(store: &dyn Store) {
    let a = team(store, "refused").await;
    let (mut e, runs) = execution(a.id, 1, now());
    e.task = TaskSnapshot::Script {
        language: ScriptLanguage::Bash,
        rendered: "echo".to_owned(),
        script_version_id: None,
        params: [("p".to_owned(), "nul\0".to_owned())].into_iter().collect(),
    };
    assert_invalid(store.create_execution(&e, &runs).await, "task");
    assert_not_found(store.get_execution(&TeamScope::All, e.id).await);

    let (mut s, v) = script(a.id, "tagged");
    s.tags = vec!["nul\0tag".to_owned()];
    assert_invalid(store.create_script(&s, &v).await, "script");
    assert_not_found(store.get_script(&TeamScope::All, s.id).await);

    let mut job = cron_job(a.id, "long callback");
    job.callback_url = Some(format!(
        "https://x.example/{}",
        "a".repeat(crate::store::checks::MAX_URL_BYTES)
    ));
    assert_invalid(store.create_cron_job(&job).await, "callback_url");

    let mut f = StagedFile {
        id: FileId::new(),
        team_id: a.id,
        name: name("huge.bin"),
        blob_key: "files/huge".to_owned(),
        sha256: crate::values::Sha256Hex::parse("sha256", &"0".repeat(64)).expect("sha"),
        size: u64::MAX,
        uploaded_by: None,
        created_at: now(),
        expire_at: now(),
    };
    assert_invalid(store.create_staged_file(&f).await, "size");
    f.size = 1;
    f.blob_key = "k".repeat(crate::store::checks::MAX_KEY_BYTES + 1);
    assert_invalid(store.create_staged_file(&f).await, "blob_key");
    let e = create_execution(store, a.id, 1).await;
    let mut u =
        crate::store::HostRunUpdate::finished(0, crate::status::HostStatus::Failed, Some(1), now());
    u.error = Some("x\0y".to_owned());
    assert_invalid(store.update_host_runs(e.id, &[u]).await, "hosts[0].error");
    assert_invalid(
        store
            .claim_cron_occurrence(job.id, now(), None, "node\0")
            .await,
        "node",
    );
    let missing_team = target(TeamId::new(), "orphan", "10.0.0.9");
    assert!(
        store.create_target(&missing_team).await.is_err(),
        "a target of a missing team is refused"
    );
}
