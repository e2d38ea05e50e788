//! Quick Execute end to end on the control node's local target.

use chrono::Utc;
use job_core::ids::RuleId;
use job_core::model::{CommandRule, RuleLevel};
use job_core::values::{Description, Name};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Api;

#[tokio::test]
async fn quick_execute_runs_on_a_local_target_and_records_hosts_and_output() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let r = alice
        .post(
            "/api/v1/executions/quick",
            json!({
                "name": "hello",
                "script_type": 1,
                "script_content": "echo hello {{ who }}\necho oops >&2\nexit 0",
                "params": {"who": "world"},
                "targets": {"target_ids": [api.local_a]},
                "timeout": 60,
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let done = alice.wait_final(&id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["name"], "hello");
    assert_eq!(done["trigger_source"], "manual");
    assert_eq!(done["timeout"], 60);
    assert_eq!(done["counters"]["success"], 1);
    let host = &done["hosts"][0];
    assert_eq!(host["index"], 0);
    assert_eq!(host["target_id"], api.local_a.to_string());
    assert_eq!(host["name"], "local-a");
    assert_eq!(host["address"], "127.0.0.1");
    assert_eq!(host["status"], "success");
    assert_eq!(host["exit_code"], 0);
    assert_eq!(host["stdout_bytes"], 12);
    assert_eq!(host["stderr_bytes"], 5);
    assert_eq!(host["output_truncated"], false);
    assert!(host["started_at"].is_string() && host["finished_at"].is_string());

    let out = alice
        .get(&format!("/api/v1/executions/{id}/output?host=0"))
        .await;
    assert_eq!(out.status, StatusCode::OK);
    let items = out.body["items"].as_array().unwrap();
    let stdout: String = items
        .iter()
        .filter(|i| i["stream"] == "stdout")
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    let stderr: String = items
        .iter()
        .filter(|i| i["stream"] == "stderr")
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    assert_eq!(stdout, "hello world\n");
    assert_eq!(stderr, "oops\n");

    // Listed, and found by its filters.
    let list = alice
        .get("/api/v1/executions?status=success,failed&name=hel")
        .await;
    assert_eq!(list.body["items"][0]["id"], id.as_str(), "{}", list.body);
    let none = alice.get("/api/v1/executions?status=failed").await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn listings_page_with_a_keyset_cursor() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(alice.quick(&format!("echo {i}"), api.local_a).await);
    }
    let first = alice.get("/api/v1/executions?limit=2").await;
    let items = first.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], ids[2].as_str());
    let next = first.body["next"].as_str().expect("a next cursor");
    let second = alice
        .get(&format!("/api/v1/executions?limit=2&after={next}"))
        .await;
    let items = second.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ids[0].as_str());
    let from = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = alice
        .get(&format!(
            "/api/v1/executions?created_from={}",
            from.replace('+', "%2B")
        ))
        .await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.body);
    assert!(later.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn cancelling_a_long_run_ends_it_cancelled_and_a_second_cancel_conflicts() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let id = alice.quick("echo started; sleep 300", api.local_a).await;
    alice
        .wait_until(&id, "running", |e| e["hosts"][0]["status"] == "running")
        .await;
    let r = alice
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(["cancelling", "cancelled"].contains(&r.body["status"].as_str().unwrap()));
    let done = alice.wait_final(&id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["hosts"][0]["status"], "cancelled");
    let again = alice
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "conflict");
}

#[tokio::test]
async fn a_finished_execution_can_be_re_executed() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let id = alice.quick("echo again", api.local_a).await;
    alice.wait_final(&id).await;
    let r = alice
        .post(&format!("/api/v1/executions/{id}/re-execute"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let new_id = r.body["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    let done = alice.wait_final(&new_id).await;
    assert_eq!(done["status"], "success");
    assert_eq!(done["re_executed_from"], id.as_str());
    assert_eq!(alice.stored_text(&new_id).await, "again\n");
    // An empty body is fine too.
    let r = alice
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/executions/{id}/re-execute"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_forbidden_command_is_refused_with_the_rules_that_matched() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let before = alice.get("/api/v1/executions").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    for confirm in [false, true] {
        let r = alice
            .post(
                "/api/v1/executions/quick",
                json!({
                    "script_type": "bash",
                    "script_content": "rm -rf /",
                    "targets": {"target_ids": [api.local_a]},
                    "confirm": confirm,
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.code(), "policy_violation");
        let hits = r.body["error"]["hits"].as_array().unwrap();
        assert!(!hits.is_empty());
        assert!(hits.iter().any(|h| h["level"] == "forbidden"), "{hits:?}");
        assert!(hits[0]["pattern"].as_str().is_some_and(|p| !p.is_empty()));
        assert!(!r.text.contains("confirm: true"), "{}", r.text);
    }
    let after = alice.get("/api/v1/executions").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_confirm_level_hit_runs_only_with_confirm() {
    let api = Api::start().await;
    api.store
        .create_command_rule(&CommandRule {
            id: RuleId::new(),
            name: Name::parse("name", "announce").unwrap(),
            pattern: r"echo\s+deploying".to_owned(),
            level: RuleLevel::Confirm,
            enabled: true,
            built_in: false,
            team_id: Some(api.alpha),
            description: Description::default(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let alice = api.login("alice").await;
    let body = |confirm: bool| {
        json!({
            "script_type": "shell",
            "script_content": "echo deploying",
            "targets": {"target_ids": [api.local_a]},
            "confirm": confirm,
        })
    };
    let r = alice.post("/api/v1/executions/quick", body(false)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let hits = r.body["error"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["level"], "confirm");
    assert_eq!(hits[0]["name"], "announce");
    assert_eq!(hits[0]["pattern"], r"echo\s+deploying");
    assert!(r.text.contains("confirm: true"), "{}", r.text);

    let r = alice.post("/api/v1/executions/quick", body(true)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let done = alice.wait_final(r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "success");
    assert_eq!(done["confirmation"]["hits"][0]["rule"], "announce");
}
