//! Another team's objects answer exactly like missing ones; secrets never come back.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Api;

#[tokio::test]
async fn a_second_team_sees_404_for_the_first_teams_objects() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let bob = api.login("bob").await;
    let cred = alice
        .post(
            "/api/v1/credentials",
            json!({"name": "ssh", "kind": "password", "password": "pw-123"}),
        )
        .await;
    assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.body);
    let cred_id = cred.body["id"].as_str().unwrap().to_owned();
    let exec = alice.quick("sleep 300", api.local_a).await;
    let missing = "0190f5c4-0000-7000-8000-000000000000";

    let paths = [
        format!("/api/v1/executions/{exec}"),
        format!("/api/v1/executions/{exec}/output"),
        format!("/api/v1/executions/{exec}/stream"),
        format!("/api/v1/targets/{}", api.local_a),
        format!("/api/v1/credentials/{cred_id}"),
    ];
    for path in &paths {
        let theirs = bob.get(path).await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            theirs.body
        );
        assert_eq!(theirs.code(), "not_found");
    }
    // Exactly like a missing id (up to the id in the message).
    let mine_missing = bob.get(&format!("/api/v1/executions/{missing}")).await;
    let theirs = bob.get(&format!("/api/v1/executions/{exec}")).await;
    assert_eq!(
        mine_missing.text.replace(missing, "ID"),
        theirs.text.replace(&exec, "ID")
    );
    for (method, path) in [
        (Method::POST, format!("/api/v1/executions/{exec}/cancel")),
        (
            Method::POST,
            format!("/api/v1/executions/{exec}/re-execute"),
        ),
        (Method::DELETE, format!("/api/v1/targets/{}", api.local_a)),
        (Method::DELETE, format!("/api/v1/credentials/{cred_id}")),
    ] {
        let r = bob.send(method, &path, Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    // Launching on their target or listing finds nothing of theirs.
    let r = bob
        .post(
            "/api/v1/executions/quick",
            json!({"script_type": "bash", "script_content": "id", "targets": {"target_ids": [api.local_a]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.field(), "targets.target_ids[0]");
    assert!(
        bob.get("/api/v1/executions").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let targets = bob.get("/api/v1/targets").await;
    assert_eq!(targets.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(targets.body["items"][0]["name"], "local-b");
    // An agentless target of team beta may not use alpha's credential.
    let r = bob
        .post(
            "/api/v1/targets",
            json!({"name": "web", "address": "10.0.0.7", "mode": "agentless", "user": "root", "credential_id": cred_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.field(), "credential_id");

    // The run was untouched: alice can still cancel it.
    let r = alice
        .post(&format!("/api/v1/executions/{exec}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(alice.wait_final(&exec).await["status"], "cancelled");
}

#[tokio::test]
async fn a_credential_secret_never_appears_in_any_response() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let password = "s3cret-Passw0rd-xyz";
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAsecretkeymaterialZZZ\n-----END OPENSSH PRIVATE KEY-----\n";
    let mut texts = Vec::new();
    let a = alice
        .post(
            "/api/v1/credentials",
            json!({"name": "pw", "kind": "password", "password": password}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["kind"], "password");
    let b = alice
        .post(
            "/api/v1/credentials",
            json!({"name": "key", "kind": "private_key", "private_key": key, "passphrase": "pp-secret-pp"}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    texts.push(a.text.clone());
    texts.push(b.text.clone());
    let id = a.body["id"].as_str().unwrap();
    texts.push(alice.get(&format!("/api/v1/credentials/{id}")).await.text);
    texts.push(alice.get("/api/v1/credentials").await.text);
    let t = alice
        .post(
            "/api/v1/targets",
            json!({"name": "web", "address": "10.0.0.7", "mode": "agentless", "user": "deploy", "credential_id": id, "tags": ["role=web"]}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    assert_eq!(t.body["port"], 22);
    texts.push(t.text);
    texts.push(alice.get("/api/v1/targets?tag=role%3Dweb").await.text);
    // A bad credential answer does not echo the secret either.
    let bad = alice
        .post(
            "/api/v1/credentials",
            json!({"name": "k2", "kind": "private_key", "private_key": "AAAAsecretkeymaterialZZZ"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    texts.push(bad.text);
    for text in &texts {
        for secret in [password, "AAAAsecretkeymaterialZZZ", "pp-secret-pp"] {
            assert!(
                !text.contains(secret),
                "a response carried a secret: {text}"
            );
        }
        assert!(!text.contains("secret_ciphertext"), "{text}");
    }
}

#[tokio::test]
async fn targets_and_groups_are_managed_within_the_team() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let victor = api.login("victor").await;
    let cred = alice
        .post(
            "/api/v1/credentials",
            json!({"name": "c", "kind": "password", "password": "pw"}),
        )
        .await;
    let cred_id = cred.body["id"].as_str().unwrap();
    let body = json!({"name": "db-1", "address": "10.0.0.9", "mode": "agentless", "user": "root",
                      "credential_id": cred_id, "tags": ["role=db", "env=prod"], "port": 2222});
    // A viewer may read but not change.
    let r = victor.post("/api/v1/targets", body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = alice.post("/api/v1/targets", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Local targets are for administrators.
    let local = alice
        .post(
            "/api/v1/targets",
            json!({"name": "me", "address": "127.0.0.1", "mode": "local"}),
        )
        .await;
    assert_eq!(local.status, StatusCode::FORBIDDEN);
    let admin = api.login("admin").await;
    let local = admin
        .post(
            "/api/v1/targets",
            json!({"name": "me", "address": "127.0.0.1", "mode": "local", "team_id": api.alpha}),
        )
        .await;
    assert_eq!(local.status, StatusCode::CREATED, "{}", local.body);

    let listed = victor.get("/api/v1/targets?mode=agentless&q=10.0.0").await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );
    // A maintainer may not bind an agent (whose host belongs to no team) to the team; an
    // administrator may, and then only administrators change that target.
    let as_agent =
        json!({"name": "db-1", "address": "10.0.0.10", "mode": "agent", "agent_id": "db-1-agent"});
    let upd = alice
        .send(
            Method::PUT,
            &format!("/api/v1/targets/{id}"),
            Some(as_agent.clone()),
        )
        .await;
    assert_eq!(upd.status, StatusCode::FORBIDDEN, "{}", upd.body);
    let upd = admin
        .send(
            Method::PUT,
            &format!("/api/v1/targets/{id}"),
            Some(as_agent),
        )
        .await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.body);
    assert_eq!(upd.body["mode"], "agent");
    assert_eq!(upd.body["agent_id"], "db-1-agent");
    let back = alice
        .send(
            Method::PUT,
            &format!("/api/v1/targets/{id}"),
            Some(
                json!({"name": "db-1", "address": "10.0.0.10", "mode": "agentless", "user": "root",
                        "credential_id": cred_id}),
            ),
        )
        .await;
    assert_eq!(back.status, StatusCode::FORBIDDEN, "{}", back.body);

    let g = alice
        .post(
            "/api/v1/target-groups",
            json!({"name": "dbs", "selector": {"target_ids": [id], "tags": [["role=db"]]}}),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let theirs = alice
        .post(
            "/api/v1/target-groups",
            json!({"name": "x", "selector": {"target_ids": [api.local_b]}}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.field(), "selector.target_ids[0]");
    assert_eq!(
        alice
            .get(&format!("/api/v1/target-groups/{gid}"))
            .await
            .body["selector"]["target_ids"][0],
        id.as_str()
    );
    let bob = api.login("bob").await;
    assert_eq!(
        bob.get(&format!("/api/v1/target-groups/{gid}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let del = alice
        .send(
            Method::DELETE,
            &format!("/api/v1/target-groups/{gid}"),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let del = alice
        .send(Method::DELETE, &format!("/api/v1/targets/{id}"), None)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        alice.get(&format!("/api/v1/targets/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_agent_target_says_its_agent_cannot_be_seen_without_nats() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let admin = api.login("admin").await;
    let body = json!({"name": "edge-1", "address": "10.0.0.7", "mode": "agent", "agent_id": "edge-1",
                      "team_id": api.alpha});
    let r = alice.post("/api/v1/targets", body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // An id no agent could register under is refused by name.
    let mut dotted = body.clone();
    dotted["agent_id"] = json!("edge-1.example.com");
    let r = admin.post("/api/v1/targets", dotted).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "agent_id");
    let r = admin.post("/api/v1/targets", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let shown = alice.get(&format!("/api/v1/targets/{id}")).await;
    assert_eq!(shown.body["agent"]["online"], false, "{}", shown.body);
    assert!(shown.body["agent"]["last_seen"].is_null(), "{}", shown.body);
    assert!(
        shown.body["agent"]["error"]
            .as_str()
            .unwrap()
            .contains("nats.url"),
        "{}",
        shown.body
    );
    // Targets in other modes carry no agent field.
    let listed = alice.get("/api/v1/targets").await;
    for t in listed.body["items"].as_array().unwrap() {
        assert_eq!(t["agent"].is_object(), t["mode"] == "agent", "{t}");
    }
}
