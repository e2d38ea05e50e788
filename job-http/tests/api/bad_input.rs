//! Bad input: each a clear 4xx naming the field, and nothing stored.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Api;

#[tokio::test]
async fn bad_quick_execute_requests_are_refused_naming_the_field_and_store_nothing() {
    let api = Api::start_with(job_http::HttpConfig {
        max_body_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    let alice = api.login("alice").await;
    let count = || async {
        api.login("admin")
            .await
            .get("/api/v1/executions")
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count().await;
    let good = || {
        json!({
            "script_type": "bash",
            "script_content": "echo hi",
            "targets": {"target_ids": [api.local_a]},
        })
    };
    let with = |k: &str, v: Value| {
        let mut b = good();
        b[k] = v;
        b
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("unknown field", with("bogus", json!(1)), "bogus"),
        (
            "unknown nested field",
            with("targets", json!({"hosts": []})),
            "targets.hosts",
        ),
        ("wrong type", with("timeout", json!("soon")), "timeout"),
        (
            "wrong type of a list",
            with("targets", json!({"target_ids": "x"})),
            "targets.target_ids",
        ),
        (
            "unknown target id",
            with(
                "targets",
                json!({"target_ids": ["0190f5c4-0000-7000-8000-000000000000"]}),
            ),
            "targets.target_ids[0]",
        ),
        (
            "not a uuid",
            with("targets", json!({"target_ids": ["nope"]})),
            "targets.target_ids[0]",
        ),
        ("no target", with("targets", json!({})), "targets"),
        ("timeout 0", with("timeout", json!(0)), "timeout"),
        (
            "timeout of a year",
            with("timeout", json!(31_536_000)),
            "timeout",
        ),
        (
            "unknown script type",
            with("script_type", json!("cobol")),
            "script_type",
        ),
        (
            "unsupported code",
            with("script_type", json!(3)),
            "script_type",
        ),
        ("unknown code", with("script_type", json!(9)), "script_type"),
        (
            "empty script",
            with("script_content", json!("")),
            "script_content",
        ),
        (
            "private callback",
            with("callback_url", json!("http://10.0.0.1/hook")),
            "callback_url",
        ),
        (
            "loopback callback",
            with("callback_url", json!("http://localhost:9/hook")),
            "callback_url",
        ),
        (
            "metadata callback",
            with("callback_url", json!("http://169.254.169.254/")),
            "callback_url",
        ),
        (
            "odd scheme",
            with("callback_url", json!("file:///etc/passwd")),
            "callback_url",
        ),
        ("team id not a uuid", with("team_id", json!("x")), "team_id"),
    ];
    for (what, body, field) in cases {
        let r = alice.post("/api/v1/executions/quick", body).await;
        assert!(
            r.status.is_client_error(),
            "{what}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(r.field(), field, "{what}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {}",
            r.body
        );
    }
    let malformed = alice
        .post_raw("/api/v1/executions/quick", "{\"script_type\": \"bash\",")
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.code(), "invalid");
    assert_eq!(malformed.field(), "body");
    assert!(
        malformed.text.contains("malformed JSON"),
        "{}",
        malformed.text
    );
    let empty = alice.post_raw("/api/v1/executions/quick", "").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    let mut huge = good();
    huge["script_content"] = json!("x".repeat(100 * 1024));
    let big = alice.post("/api/v1/executions/quick", huge).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.body);
    assert_eq!(big.code(), "too_large");
    assert_eq!(big.field(), "body");

    assert_eq!(
        count().await,
        before,
        "a refused request stored an execution"
    );
}

#[tokio::test]
async fn bad_queries_and_ids_are_refused_naming_them() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    for (path, field) in [
        ("/api/v1/executions?status=done", "status"),
        ("/api/v1/executions?created_from=yesterday", "created_from"),
        ("/api/v1/executions?limit=0", "limit"),
        ("/api/v1/executions?after=xyz", "after"),
        ("/api/v1/executions?colour=blue", "colour"),
        ("/api/v1/executions/not-an-id", "id"),
        ("/api/v1/targets?mode=psychic", "mode"),
        ("/api/v1/targets?tag=bad%20key%3Dx", "tag"),
    ] {
        let r = alice.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.field(), field, "{path}: {}", r.body);
    }
    let id = alice.quick("echo x", api.local_a).await;
    let r = alice
        .get(&format!(
            "/api/v1/executions/{id}/stream?last_event_id=garbage"
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.field(), "last_event_id");
    let r = alice.get("/api/v1/no/such/route").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
}

#[tokio::test]
async fn a_member_of_several_teams_must_name_the_team() {
    let api = Api::start().await;
    let admin = api.login("admin").await;
    let alice_id = api.users["alice"];
    let r = admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/teams/{}/members/{alice_id}", api.beta),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let alice = api.login("alice").await;
    let body = json!({"script_type": "bash", "script_content": "echo hi", "targets": {"target_ids": [api.local_a]}});
    let r = alice.post("/api/v1/executions/quick", body.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "team_id");
    let mut named = body;
    named["team_id"] = json!(api.alpha);
    let r = alice.post("/api/v1/executions/quick", named).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
