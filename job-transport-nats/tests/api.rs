//! The NATS open interfaces against a real nats-server: a SQLite store in a temporary
//! directory, a running engine with the control node's local transport, and requests sent
//! with a plain NATS client exactly as another platform service would.

#[path = "common/api_rig.rs"]
mod api_rig;
mod common;

use std::sync::Arc;

use api_rig::{Rig, callback_guard, message_without};
use job_core::bus::InProcessBus;
use job_core::clock::SystemClock;
use job_transport_nats::Namespace;
use job_transport_nats::api::ApiServer;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_executed_over_nats_runs_to_success_with_its_host_results() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let task_id = rig.execute("echo hello from nats").await;
    let detail = rig
        .wait_for_status(&task_id, &["success", "failed", "cancelled", "timeout"])
        .await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(detail["task_id"], task_id.as_str());
    assert_eq!(detail["trigger_source"], "api");
    let hosts = detail["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["status"], "success");
    assert_eq!(hosts[0]["exit_code"], 0);
    assert!(
        hosts[0]["stdout"]
            .as_str()
            .unwrap()
            .contains("hello from nats"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_form_with_args_and_kwargs_launches_like_a_plain_object() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let reply = rig
        .call(
            "job_script_execute",
            json!({
                "args": [{
                    "script_type": "shell",
                    "script_content": "echo {{ who }}",
                    "targets": {"target_ids": [rig.ops_target]},
                    "params": {"who": "from args"},
                }],
                "kwargs": {"team": "ops", "operator": "cmdb-sync", "params": {"who": "kwargs"}},
            }),
        )
        .await;
    assert_eq!(reply["result"], true, "{reply}");
    let task_id = reply["data"]["task_id"].as_str().unwrap();
    let detail = rig
        .wait_for_status(task_id, &["success", "failed", "cancelled", "timeout"])
        .await;
    assert_eq!(detail["status"], "success", "{detail}");
    assert_eq!(detail["executor"]["label"], "nats:cmdb-sync");
    assert!(
        detail["hosts"][0]["stdout"]
            .as_str()
            .unwrap()
            .contains("kwargs"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_running_sleep_cancels_it_and_a_second_terminate_is_refused() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let task_id = rig.execute("sleep 300").await;
    rig.wait_for_status(&task_id, &["running"]).await;
    let reply = rig
        .call(
            "job_task_terminate",
            json!({"team": "ops", "task_id": task_id}),
        )
        .await;
    assert_eq!(reply["result"], true, "{reply}");
    assert_eq!(reply["data"]["status"], "cancelling", "{reply}");
    let detail = rig
        .wait_for_status(&task_id, &["cancelled", "success", "failed", "timeout"])
        .await;
    assert_eq!(detail["status"], "cancelled", "{detail}");

    let again = rig
        .call(
            "job_task_terminate",
            json!({"team": "ops", "task_id": task_id}),
        )
        .await;
    assert_eq!(again["result"], false, "{again}");
    assert_eq!(again["code"], "conflict");
    assert!(
        again["message"].as_str().unwrap().contains("cancelled"),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_status_answers_the_teams_tasks_and_treats_others_as_missing() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let first = rig.execute("echo one").await;
    let second = rig.execute("echo two").await;
    let foreign = rig.web_task().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let reply = rig
        .call(
            "job_status_batch_query",
            json!({"team": "ops", "task_ids": [first, second, foreign, missing]}),
        )
        .await;
    assert_eq!(reply["result"], true, "{reply}");
    let tasks = reply["data"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    assert_eq!(tasks[0]["task_id"], first.as_str());
    assert_eq!(tasks[0]["found"], true);
    assert!(tasks[0]["status"].is_string());
    assert_eq!(tasks[1]["found"], true);
    assert_eq!(tasks[2]["found"], false);
    assert_eq!(tasks[3]["found"], false);
    assert_eq!(
        tasks[2].as_object().unwrap().keys().collect::<Vec<_>>(),
        tasks[3].as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_eq!(
        message_without(&tasks[2], &foreign),
        message_without(&tasks[3], &missing)
    );

    let too_many: Vec<String> = (0..101).map(|_| missing.clone()).collect();
    let refused = rig
        .call(
            "job_status_batch_query",
            json!({"team": "ops", "task_ids": too_many}),
        )
        .await;
    assert_eq!(refused["result"], false);
    assert_eq!(
        refused["message"],
        "invalid task_ids: must name 1 to 100 tasks, got 101"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_list_shows_only_the_teams_own_targets() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let ops = rig.call("job_target_list", json!({"team": "ops"})).await;
    assert_eq!(ops["result"], true, "{ops}");
    let ids: Vec<&str> = ops["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [rig.ops_target.to_string()]);

    let web = rig
        .call(
            "job_target_list",
            json!({"team_id": rig.web.id, "limit": 10}),
        )
        .await;
    assert_eq!(web["result"], true, "{web}");
    let items = web["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], rig.web_target.to_string());
    assert_eq!(items[0]["team_id"], rig.web.id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_teams_task_answers_detail_and_terminate_like_a_missing_one() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let foreign = rig.web_task().await;
    let missing = uuid::Uuid::now_v7().to_string();
    for method in ["job_detail_query", "job_task_terminate"] {
        let theirs = rig
            .call(method, json!({"team": "ops", "task_id": foreign}))
            .await;
        let nobodys = rig
            .call(method, json!({"team": "ops", "task_id": missing}))
            .await;
        assert_eq!(theirs["result"], false, "{method}: {theirs}");
        assert_eq!(theirs["code"], "not_found", "{method}: {theirs}");
        assert_eq!(theirs["code"], nobodys["code"]);
        assert_eq!(
            message_without(&theirs, &foreign),
            message_without(&nobodys, &missing),
            "{method}"
        );
    }
    // The web team's task was left alone by the ops team's terminate.
    let own = rig
        .call(
            "job_detail_query",
            json!({"team": "web", "task_id": foreign}),
        )
        .await;
    assert_eq!(own["result"], true, "{own}");
    assert_ne!(own["data"]["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_naming_the_problem_and_create_nothing() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let before = rig.execution_count().await;
    let target = rig.ops_target;
    let valid = |extra: Value| {
        let mut body = json!({
            "team": "ops",
            "script_type": 1,
            "script_content": "echo fine",
            "targets": {"target_ids": [target]},
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };

    let not_json = rig
        .call_raw("job_script_execute", b"{team: ops".to_vec())
        .await;
    assert_eq!(not_json["result"], false);
    assert!(
        not_json["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request: the body is not valid JSON"),
        "{not_json}"
    );

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "missing team",
            valid(json!({"team": null})),
            "invalid team: this field is required",
        ),
        (
            "unknown team",
            valid(json!({"team": "nobody"})),
            "invalid team: no team named `nobody`",
        ),
        (
            "unknown team id",
            valid(json!({"team": null, "team_id": uuid::Uuid::now_v7()})),
            "invalid team_id: no team",
        ),
        (
            "missing script_content",
            valid(json!({"script_content": null})),
            "invalid script_content: this field is required",
        ),
        (
            "unknown target id",
            valid(json!({"targets": {"target_ids": [uuid::Uuid::now_v7()]}})),
            "targets.target_ids[0]: target",
        ),
        (
            "another team's target",
            valid(json!({"targets": {"target_ids": [rig.web_target]}})),
            "targets.target_ids[0]: target",
        ),
        (
            "forbidden command",
            valid(json!({"script_content": "rm -rf /"})),
            "refused by high-risk rules: forbidden rule `rm -rf /` matched `rm -rf /`",
        ),
        (
            "zero timeout",
            valid(json!({"timeout": 0})),
            "invalid timeout:",
        ),
        (
            "team and team_id naming different teams",
            valid(json!({"team_id": rig.web.id})),
            "invalid team: names another team than `team_id`",
        ),
        (
            "perl script type",
            valid(json!({"script_type": 3})),
            "invalid script_type: 3 (perl) is not supported",
        ),
        (
            "callback that is not http",
            valid(json!({"callback_url": "file:///etc/passwd"})),
            "invalid callback_url: scheme `file` is not http or https",
        ),
        (
            "unknown field",
            valid(json!({"colour": "red"})),
            "invalid colour: unknown field for this method",
        ),
    ];
    for (case, body, expected) in cases {
        let reply = rig.call("job_script_execute", body).await;
        assert_eq!(reply["result"], false, "{case}: {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{case}: `{message}` does not say `{expected}`"
        );
    }

    let forbidden = rig
        .call(
            "job_script_execute",
            valid(json!({"script_content": "rm -rf /"})),
        )
        .await;
    assert_eq!(forbidden["code"], "policy_violation", "{forbidden}");

    // File distributions: each bad input named, nothing created. `/etc` is denied.
    rig.store
        .create_path_rule(&job_core::model::PathRule {
            id: job_core::ids::RuleId::new(),
            name: job_core::values::Name::parse("name", "no etc").unwrap(),
            pattern: "/etc".into(),
            match_type: job_core::model::PathMatchType::Prefix,
            kind: job_core::model::PathRuleKind::Deny,
            level: job_core::model::RuleLevel::Forbidden,
            windows: false,
            enabled: true,
            built_in: false,
            team_id: None,
            description: Default::default(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let good_source = json!([{"target_id": rig.ops_target, "file_list": ["/etc/hostname"]}]);
    let distribute = |extra: Value| {
        let mut body = json!({
            "team": "ops",
            "file_source_list": good_source.clone(),
            "file_target_path": "/tmp/jobd-dist",
            "targets": {"target_ids": [rig.ops_target]},
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    for (case, body, expected) in [
        (
            "no sources",
            distribute(json!({"file_source_list": null})),
            "file_source_list: this field is required",
        ),
        (
            "empty sources",
            distribute(json!({"file_source_list": []})),
            "file_source_list: name at least one file",
        ),
        (
            "relative source",
            distribute(
                json!({"file_source_list": [{"target_id": rig.ops_target, "file_list": ["etc/hostname"]}]}),
            ),
            "file_source_list[0].file_list[0]",
        ),
        (
            "another team's source target",
            distribute(
                json!({"file_source_list": [{"target_id": rig.web_target, "file_list": ["/etc/hostname"]}]}),
            ),
            "not found",
        ),
        (
            "unknown source field",
            distribute(
                json!({"file_source_list": [{"target_id": rig.ops_target, "file_list": ["/a"], "server": 1}]}),
            ),
            "file_source_list[0].server: unknown field",
        ),
        (
            "two files of one name",
            distribute(
                json!({"file_source_list": [{"target_id": rig.ops_target, "file_list": ["/a/x", "/b/x"]}]}),
            ),
            "a second file named `x`",
        ),
        (
            "no destination",
            distribute(json!({"file_target_path": null})),
            "file_target_path",
        ),
        (
            "relative destination",
            distribute(json!({"file_target_path": "tmp/x"})),
            "file_target_path",
        ),
        (
            "destination with ..",
            distribute(json!({"file_target_path": "/tmp/../etc"})),
            "file_target_path",
        ),
        (
            "another team's target",
            distribute(json!({"targets": {"target_ids": [rig.web_target]}})),
            "not found",
        ),
        (
            "overwrite not a flag",
            distribute(json!({"overwrite": "yes"})),
            "overwrite: expected true or false",
        ),
        (
            "unknown field",
            distribute(json!({"colour": "red"})),
            "colour",
        ),
        (
            "a destination the path rules deny",
            distribute(json!({"file_target_path": "/etc/jobd"})),
            "forbidden rule `no etc` matched `/etc/jobd`",
        ),
    ] {
        let reply = rig.call("job_file_distribute", body).await;
        assert_eq!(reply["result"], false, "{case}: {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{case}: `{message}` does not say `{expected}`"
        );
    }

    assert_eq!(rig.execution_count().await, before, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_ids_that_are_missing_or_malformed_are_named_by_every_method() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let cases = [
        (
            "job_task_terminate",
            json!({"team": "ops"}),
            "invalid task_id: this field is required",
        ),
        (
            "job_detail_query",
            json!({"team": "ops", "task_id": "42"}),
            "invalid task_id: not a valid execution id (expected a UUID)",
        ),
        (
            "job_detail_query",
            json!({"team": "ops", "task_id": 42}),
            "invalid task_id: expected a task id string, got a number",
        ),
        (
            "job_status_batch_query",
            json!({"team": "ops", "task_ids": []}),
            "invalid task_ids: must name 1 to 100 tasks, got 0",
        ),
        (
            "job_status_batch_query",
            json!({"team": "ops", "task_ids": [uuid::Uuid::now_v7(), "nope"]}),
            "invalid task_ids[1]: not a valid execution id (expected a UUID)",
        ),
        (
            "job_target_list",
            json!({"team": "ops", "limit": 0}),
            "invalid limit: must be between 1 and 1000, got 0",
        ),
    ];
    for (method, body, expected) in cases {
        let reply = rig.call(method, body).await;
        assert_eq!(reply["result"], false, "{method}: {reply}");
        assert_eq!(reply["message"], expected, "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_control_nodes_in_the_queue_group_answer_each_request_once() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let second_client = async_nats::connect(rig.server.url()).await.unwrap();
    let second = ApiServer::bind(
        second_client,
        Namespace::default(),
        rig.store.clone(),
        Arc::new(InProcessBus::default()),
        Arc::new(SystemClock),
        callback_guard(),
    )
    .await
    .unwrap();
    let mut stopped = rig.stop.subscribe();
    tokio::spawn(second.run(async move {
        let _ = stopped.wait_for(|v| *v).await;
    }));

    let before = rig.execution_count().await;
    let mut task_ids = Vec::new();
    for _ in 0..10 {
        task_ids.push(rig.execute("echo once").await);
    }
    task_ids.sort();
    task_ids.dedup();
    assert_eq!(task_ids.len(), 10);
    assert_eq!(rig.execution_count().await, before + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_distribution_over_nats_copies_the_files_and_reports_each_one() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("app.conf");
    std::fs::write(&source, "port = 8080\n").unwrap();
    let destination = dir.path().join("deployed");
    let launched = rig
        .call(
            "job_file_distribute",
            json!({
                "args": [{
                    "file_source_list": [{"target_id": rig.ops_target,
                                          "file_list": [source.to_str().unwrap()]}],
                    "file_target_path": destination.to_str().unwrap(),
                    "targets": {"target_ids": [rig.ops_target]},
                }],
                "kwargs": {"team": "ops"},
            }),
        )
        .await;
    assert_eq!(launched["result"], true, "{launched}");
    let task_id = launched["data"]["task_id"].as_str().unwrap().to_owned();
    let detail = rig.wait_for_status(&task_id, &["success", "failed"]).await;
    assert_eq!(detail["status"], "success", "{detail:#}");
    assert_eq!(
        std::fs::read_to_string(destination.join("app.conf")).unwrap(),
        "port = 8080\n"
    );
    let stdout = detail["hosts"][0]["stdout"].as_str().unwrap();
    assert!(
        stdout.contains("app.conf: written, 12 bytes, sha256 "),
        "{stdout}"
    );

    // Again without overwrite: the file is kept, and the host says so.
    std::fs::write(destination.join("app.conf"), "edited by hand\n").unwrap();
    let launched = rig
        .call(
            "job_file_distribute",
            json!({
                "team": "ops",
                "file_source_list": [{"target_id": rig.ops_target,
                                      "file_list": [source.to_str().unwrap()]}],
                "file_target_path": destination.to_str().unwrap(),
                "targets": {"target_ids": [rig.ops_target]},
                "overwrite": false,
            }),
        )
        .await;
    let task_id = launched["data"]["task_id"].as_str().unwrap().to_owned();
    let detail = rig.wait_for_status(&task_id, &["success", "failed"]).await;
    assert_eq!(detail["status"], "success", "{detail:#}");
    assert!(
        detail["hosts"][0]["stdout"]
            .as_str()
            .unwrap()
            .contains("kept, it exists"),
        "{detail:#}"
    );
    assert_eq!(
        std::fs::read_to_string(destination.join("app.conf")).unwrap(),
        "edited by hand\n"
    );

    // A source that does not exist fails the host, naming it.
    let launched = rig
        .call(
            "job_file_distribute",
            json!({
                "team": "ops",
                "file_source_list": [{"target_id": rig.ops_target,
                                      "file_list": ["/nonexistent/jobd-missing.txt"]}],
                "file_target_path": destination.to_str().unwrap(),
                "targets": {"target_ids": [rig.ops_target]},
            }),
        )
        .await;
    let task_id = launched["data"]["task_id"].as_str().unwrap().to_owned();
    let detail = rig.wait_for_status(&task_id, &["success", "failed"]).await;
    assert_eq!(detail["status"], "failed", "{detail:#}");
    let error = detail["hosts"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("/nonexistent/jobd-missing.txt"),
        "{detail:#}"
    );
}
