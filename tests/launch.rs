//! Launching executions (Quick Execute, re-execute) against a real SQLite store, then
//! running them with the engine on the control node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use job::core::bus::InProcessBus;
use job::core::clock::SystemClock;
use job::core::engine::{Engine, EngineConfig, LocalConnector};
use job::core::ids::RuleId;
use job::core::ids::{TargetId, TeamId, UserId};
use job::core::launch::{ScriptLaunch, launch_script, re_execute};
use job::core::model::{
    Actor, ActorKind, CommandRule, Os, ParamDef, Role, Rolling, RuleLevel, ScriptLanguage, Target,
    TargetMode, TargetSelector, TaskSnapshot, Team, TriggerSource,
};
use job::core::status::ExecutionStatus;
use job::core::store::{Store, StoreExt, TeamScope};
use job::core::values::{Address, Description, Name, ScriptContent, Tag, TimeoutSecs};
use job::core::{Error, transport::Transport};
use job::store_sqlite::SqliteStore;
use job::transport_local::LocalTransport;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    /// The bus launches signal on (these tests run the engine themselves).
    bus: Arc<InProcessBus>,
    team: TeamId,
    other_team: TeamId,
    web: TargetId,
    db: TargetId,
    foreign: TargetId,
}

fn actor(team: TeamId, role: Role) -> Actor {
    Actor {
        kind: ActorKind::User {
            user_id: UserId::new(),
            username: "alice".into(),
        },
        is_admin: false,
        teams: BTreeMap::from([(team, role)]),
    }
}

fn target(team: TeamId, name: &str, address: &str, tags: &[&str]) -> Target {
    Target {
        id: TargetId::new(),
        team_id: team,
        name: Name::parse("name", name).unwrap(),
        address: Address::parse("address", address).unwrap(),
        os: Os::Linux,
        tags: tags
            .iter()
            .map(|t| Tag::parse("tags", t).unwrap())
            .collect(),
        mode: TargetMode::Local,
        description: Description::default(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("j.db")).await.unwrap());
    let mut ids = Vec::new();
    for name in ["ops", "other"] {
        let t = Team {
            id: TeamId::new(),
            name: Name::parse("name", name).unwrap(),
            description: Description::default(),
            created_at: Utc::now(),
        };
        store.create_team(&t).await.unwrap();
        ids.push(t.id);
    }
    let (team, other_team) = (ids[0], ids[1]);
    let web = target(team, "web-1", "127.0.0.1", &["role=web", "env=prod"]);
    let db = target(team, "db-1", "127.0.0.2", &["role=db", "env=prod"]);
    let foreign = target(other_team, "theirs", "127.0.0.3", &["role=web"]);
    for t in [&web, &db, &foreign] {
        store.create_target(t).await.unwrap();
    }
    World {
        _dir: dir,
        store,
        bus: Arc::new(InProcessBus::default()),
        team,
        other_team,
        web: web.id,
        db: db.id,
        foreign: foreign.id,
    }
}

fn quick(team: TeamId, script: &str, targets: TargetSelector) -> ScriptLaunch {
    ScriptLaunch {
        team_id: team,
        name: Name::parse("name", "quick").unwrap(),
        language: ScriptLanguage::Bash,
        content: ScriptContent::parse("script_content", script).unwrap(),
        param_defs: Vec::new(),
        params: BTreeMap::new(),
        script_version_id: None,
        targets,
        timeout: TimeoutSecs::new("timeout", 60).unwrap(),
        confirm: false,
        callback_url: None,
        trigger_source: TriggerSource::Manual,
        cron_job_id: None,
        rolling: None,
    }
}

fn by_ids(ids: &[TargetId]) -> TargetSelector {
    TargetSelector {
        target_ids: ids.to_vec(),
        ..TargetSelector::default()
    }
}

async fn run_to_end(store: Arc<dyn Store>) -> ExecutionStatus {
    let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let engine = Engine::new(
        store,
        Arc::new(LocalConnector::new(local)),
        Arc::new(InProcessBus::default()),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    let claimed = engine
        .claim()
        .await
        .unwrap()
        .pop()
        .expect("something to run");
    engine.run_claimed(claimed).await.unwrap()
}

#[tokio::test]
async fn a_launch_resolves_tags_snapshots_targets_and_runs() {
    let w = world().await;
    let sel = TargetSelector {
        tags: vec![vec![Tag::parse("tags", "env=prod").unwrap()]],
        ..TargetSelector::default()
    };
    let mut req = quick(w.team, "echo {{ greeting }} from $(hostname)", sel);
    req.params
        .insert("greeting".into(), "it's me; touch /tmp/pwned".into());
    let e = launch_script(
        &*w.store,
        &*w.bus,
        &actor(w.team, Role::Operator),
        req,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(e.status, ExecutionStatus::Pending);
    let hosts = w.store.all_host_runs(&TeamScope::All, e.id).await.unwrap();
    let names: BTreeSet<_> = hosts.iter().map(|h| h.target.name.to_string()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["web-1".to_owned(), "db-1".to_owned()])
    );
    assert!(hosts.iter().all(|h| h.target.mode == "local"));
    // The parameter was quoted for the shell: it is data, not code.
    let TaskSnapshot::Script { rendered, .. } = &e.task else {
        panic!()
    };
    assert_eq!(
        rendered,
        "echo 'it'\\''s me; touch /tmp/pwned' from $(hostname)"
    );
    assert_eq!(run_to_end(w.store.clone()).await, ExecutionStatus::Success);
}

#[tokio::test]
async fn another_teams_target_is_refused_exactly_like_a_missing_one() {
    let w = world().await;
    let a = actor(w.team, Role::Operator);
    let foreign = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.team, "id", by_ids(&[w.foreign])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    let missing = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.team, "id", by_ids(&[TargetId::new()])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(foreign, Error::NotFound { .. }), "{foreign:?}");
    assert_eq!(foreign.code(), missing.code());
    assert!(
        foreign.to_string().contains("targets.target_ids[0]"),
        "{foreign}"
    );
    // Launching for a team the actor is not in looks like a missing team.
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.other_team, "id", by_ids(&[w.foreign])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // Nothing was stored.
    assert!(run_to_end_nothing(&w).await);
}

async fn run_to_end_nothing(w: &World) -> bool {
    let page = w
        .store
        .list_executions(
            &TeamScope::All,
            &Default::default(),
            job::core::store::PageRequest::first(10),
        )
        .await
        .unwrap();
    page.items.is_empty()
}

#[tokio::test]
async fn a_viewer_cannot_launch_and_an_empty_selection_is_refused() {
    let w = world().await;
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &actor(w.team, Role::Viewer),
        quick(w.team, "id", by_ids(&[w.web])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &actor(w.team, Role::Operator),
        quick(w.team, "id", TargetSelector::default()),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("invalid targets"), "{err}");
    let none = TargetSelector {
        tags: vec![vec![Tag::parse("tags", "role=nothing").unwrap()]],
        ..TargetSelector::default()
    };
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &actor(w.team, Role::Operator),
        quick(w.team, "id", none),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("matches no target"), "{err}");
    assert!(run_to_end_nothing(&w).await);
}

#[tokio::test]
async fn forbidden_commands_are_refused_and_confirm_level_ones_need_confirmation() {
    let w = world().await;
    let a = actor(w.team, Role::Operator);
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.team, "sudo rm -rf /", by_ids(&[w.web])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    let Error::PolicyViolation { hits } = &err else {
        panic!("{err:?}")
    };
    assert!(hits.iter().any(|h| h.level == RuleLevel::Forbidden));

    let err = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.team, "systemctl restart nginx", by_ids(&[w.web])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::PolicyViolation { .. }), "{err:?}");
    assert!(run_to_end_nothing(&w).await);

    let mut req = quick(w.team, "systemctl restart nginx", by_ids(&[w.web]));
    req.confirm = true;
    let e = launch_script(&*w.store, &*w.bus, &a, req, Utc::now())
        .await
        .unwrap();
    let confirmation = e.confirmation.expect("the confirmation is recorded");
    assert_eq!(confirmation.by, "user:alice");
    assert_eq!(confirmation.hits[0].level, RuleLevel::Confirm);
}

#[tokio::test]
async fn a_team_rule_applies_to_its_team_only() {
    let w = world().await;
    let rule = CommandRule {
        id: RuleId::new(),
        name: Name::parse("name", "no curl").unwrap(),
        pattern: r"\bcurl\b".into(),
        level: RuleLevel::Forbidden,
        enabled: true,
        built_in: false,
        team_id: Some(w.team),
        description: Description::default(),
        created_at: Utc::now(),
    };
    w.store.create_command_rule(&rule).await.unwrap();
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &actor(w.team, Role::Operator),
        quick(w.team, "curl http://x", by_ids(&[w.web])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::PolicyViolation { .. }), "{err:?}");
    let ok = launch_script(
        &*w.store,
        &*w.bus,
        &actor(w.other_team, Role::Operator),
        quick(w.other_team, "curl http://x", by_ids(&[w.foreign])),
        Utc::now(),
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn a_missing_parameter_a_template_typo_and_a_foreign_shebang_are_refused() {
    let w = world().await;
    let a = actor(w.team, Role::Operator);
    let mut req = quick(w.team, "echo {{ port }}", by_ids(&[w.web]));
    req.param_defs = vec![ParamDef {
        name: "port".into(),
        label: String::new(),
        description: String::new(),
        default: None,
        is_encrypted: false,
        is_required: true,
    }];
    let err = launch_script(&*w.store, &*w.bus, &a, req, Utc::now())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.team, "#!/usr/bin/perl\nprint 1", by_ids(&[w.web])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("script_content"), "{err}");
    let err = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.team, "echo {{ prot }}", by_ids(&[w.web])),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("prot"), "{err}");
    assert!(run_to_end_nothing(&w).await);
}

#[tokio::test]
async fn re_execute_makes_a_new_run_from_a_final_one_and_rechecks_targets() {
    let w = world().await;
    let a = actor(w.team, Role::Operator);
    let first = launch_script(
        &*w.store,
        &*w.bus,
        &a,
        quick(w.team, "echo again", by_ids(&[w.web, w.db])),
        Utc::now(),
    )
    .await
    .unwrap();
    // Not final yet: refused.
    let err = re_execute(&*w.store, &*w.bus, &a, first.id, false, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(run_to_end(w.store.clone()).await, ExecutionStatus::Success);

    let second = re_execute(&*w.store, &*w.bus, &a, first.id, false, Utc::now())
        .await
        .unwrap();
    assert_eq!(second.re_executed_from, Some(first.id));
    assert_eq!(second.task, first.task);
    assert_eq!(second.counters.total, 2);
    // Another team cannot re-execute it, and sees nothing.
    let err = re_execute(
        &*w.store,
        &*w.bus,
        &actor(w.other_team, Role::Operator),
        first.id,
        false,
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // A deleted target makes the re-execution fail as not found.
    assert_eq!(run_to_end(w.store.clone()).await, ExecutionStatus::Success);
    w.store.delete_target(&TeamScope::All, w.db).await.unwrap();
    let err = re_execute(&*w.store, &*w.bus, &a, second.id, false, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_rolling_plan_is_stored_with_the_launch_and_kept_by_re_execute() {
    let w = world().await;
    let a = actor(w.team, Role::Operator);
    let plan: Rolling =
        serde_json::from_str(r#"{"batch": "50%", "mode": "pause_on_failure"}"#).unwrap();
    let mut request = quick(w.team, "echo rolling", by_ids(&[w.web, w.db]));
    request.rolling = Some(plan);
    let first = launch_script(&*w.store, &*w.bus, &a, request, Utc::now())
        .await
        .unwrap();
    let stored = w
        .store
        .get_execution(&TeamScope::team(w.team), first.id)
        .await
        .unwrap();
    assert_eq!(stored.rolling, Some(plan));
    assert_eq!(stored.paused_at, None);
    assert_eq!(run_to_end(w.store.clone()).await, ExecutionStatus::Success);
    let second = re_execute(&*w.store, &*w.bus, &a, first.id, false, Utc::now())
        .await
        .unwrap();
    assert_eq!(second.rolling, Some(plan));
    let json = serde_json::to_value(&second).unwrap();
    assert_eq!(json["rolling"]["batch"], "50%");
    assert_eq!(json["rolling"]["mode"], "pause_on_failure");
    assert!(json["paused_at"].is_null());
}

#[test]
fn invalid_rolling_values_are_refused_naming_the_field() {
    for (batch, mode, field) in [
        ("0", "continue", "rolling.batch"),
        ("0%", "continue", "rolling.batch"),
        ("101%", "continue", "rolling.batch"),
        ("half", "continue", "rolling.batch"),
        ("3", "stop", "rolling.mode"),
    ] {
        match Rolling::parse(batch, mode) {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{batch} {mode}"),
            other => panic!("{batch} {mode}: expected invalid {field}, got {other:?}"),
        }
    }
    for (body, field) in [
        (r#"{"batch": 0, "mode": "continue"}"#, "rolling.batch"),
        (r#"{"batch": "250%", "mode": "continue"}"#, "rolling.batch"),
        (r#"{"batch": 2, "mode": "sometimes"}"#, "rolling.mode"),
    ] {
        let err = serde_json::from_str::<Rolling>(body).unwrap_err();
        assert!(err.to_string().contains(field), "{body}: {err}");
    }
}
