//! Sessions, CSRF and API tokens.

use chrono::{Duration, Utc};
use job_core::ids::TokenId;
use job_core::model::ApiToken;
use job_core::values::Name;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Api, PASSWORD};

#[tokio::test]
async fn login_sets_a_protected_session_cookie_and_logout_ends_the_session() {
    let api = Api::start().await;
    let anon = api.anonymous();
    let r = anon
        .post(
            "/api/v1/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user"]["username"], "alice");
    assert!(r.body["user"].get("password_hash").is_none());
    let csrf = r.body["csrf_token"].as_str().unwrap().to_owned();
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("jobd_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    assert!(!session.contains("Secure"), "{session}");
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("jobd_csrf="))
        .unwrap();
    assert!(csrf_cookie.contains(&csrf) && !csrf_cookie.contains("HttpOnly"));
    let session_value = session
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("jobd_session=")
        .to_owned();

    // The cookie jar now authenticates; /auth/me tells who and repeats the CSRF token.
    let me = anon.get("/api/v1/auth/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["username"], "alice");
    assert_eq!(me.body["csrf_token"], csrf.as_str());
    assert_eq!(me.body["teams"][0]["role"], "maintainer");
    assert_eq!(me.body["teams"][0]["team_id"], api.alpha.to_string());

    let r = anon
        .request(Method::POST, "/api/v1/auth/logout")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie, replayed by hand, is refused.
    let replay = reqwest::Client::new()
        .get(api.url("/api/v1/auth/me"))
        .header("cookie", format!("jobd_session={session_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anon.get("/api/v1/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn secure_cookies_when_configured() {
    let api = Api::start_with(job_http::HttpConfig {
        cookie_secure: true,
        ..Default::default()
    })
    .await;
    let r = api
        .anonymous()
        .post(
            "/api/v1/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    for c in r.headers.get_all("set-cookie") {
        assert!(c.to_str().unwrap().contains("; Secure"), "{c:?}");
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let api = Api::start().await;
    let anon = api.anonymous();
    let wrong = anon
        .post(
            "/api/v1/auth/login",
            json!({"username": "alice", "password": "nope"}),
        )
        .await;
    let unknown = anon
        .post(
            "/api/v1/auth/login",
            json!({"username": "mallory", "password": "nope"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "unauthenticated");
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn a_disabled_user_and_a_changed_password_end_sessions() {
    let api = Api::start().await;
    let admin = api.login("admin").await;
    let alice = api.login("alice").await;
    let alice_id = api.users["alice"];
    let r = admin
        .send(
            Method::PUT,
            &format!("/api/v1/users/{alice_id}"),
            Some(json!({"password": "a brand new password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        alice.get("/api/v1/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );

    let victor = api.login("victor").await;
    let victor_id = api.users["victor"];
    admin
        .send(
            Method::PUT,
            &format!("/api/v1/users/{victor_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        victor.get("/api/v1/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = api
        .anonymous()
        .post(
            "/api/v1/auth/login",
            json!({"username": "victor", "password": PASSWORD}),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_token() {
    let api = Api::start().await;
    let mut alice = api.login("alice").await;
    let token = alice.csrf.take().unwrap();
    let body = json!({"name": "x", "team_id": api.alpha, "kind": "password", "password": "pw"});

    let missing = alice.post("/api/v1/credentials", body.clone()).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert_eq!(missing.code(), "csrf");
    alice.csrf = Some("00".repeat(32));
    let wrong = alice.post("/api/v1/credentials", body.clone()).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.code(), "csrf");
    // Reads need none.
    alice.csrf = None;
    assert_eq!(
        alice.get("/api/v1/credentials").await.status,
        StatusCode::OK
    );

    alice.csrf = Some(token);
    let ok = alice.post("/api/v1/credentials", body).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}

#[tokio::test]
async fn api_tokens_work_as_bearer_and_api_authorization_without_csrf() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let r = alice
        .post("/api/v1/tokens", json!({"name": "ci", "expires_days": 30}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let secret = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(r.body["team_id"], api.alpha.to_string());
    assert!(r.body.get("token_hash").is_none());
    // The secret is shown once: listings never carry it.
    let list = alice.get("/api/v1/tokens").await;
    assert!(!list.text.contains(&secret));
    assert_eq!(list.body["items"][0]["name"], "ci");

    for client in [api.bearer(&secret), api.api_authorization(&secret)] {
        let me = client.get("/api/v1/auth/me").await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        assert_eq!(me.body["via"], "token");
        assert_eq!(me.body["teams"][0]["role"], "maintainer");
        // A write without any CSRF token.
        let id = client.quick("echo via-token", api.local_a).await;
        let done = client.wait_final(&id).await;
        assert_eq!(done["status"], "success");
        assert_eq!(done["trigger_source"], "api");
        assert_eq!(done["executor"]["label"], "token:ci");
    }
    let listed = alice.get("/api/v1/tokens").await;
    assert!(
        !listed.body["items"][0]["last_used_at"].is_null(),
        "{}",
        listed.body
    );
}

#[tokio::test]
async fn expired_revoked_and_unknown_tokens_are_refused_saying_why() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let r = alice.post("/api/v1/tokens", json!({"name": "short"})).await;
    let secret = r.body["token"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.bearer(&secret).get("/api/v1/targets").await.status,
        StatusCode::OK
    );

    let revoke = alice
        .send(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.body);
    let refused = api.bearer(&secret).get("/api/v1/targets").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.code(), "unauthenticated");
    assert!(refused.text.contains("revoked"), "{}", refused.text);

    // An expired token (stored directly: no clock is moved in this test).
    let (secret, hash) = job_http::auth::new_api_token();
    api.store
        .create_token(&ApiToken {
            id: TokenId::new(),
            name: Name::parse("name", "old").unwrap(),
            team_id: api.alpha,
            created_by: api.users["alice"],
            token_hash: hash,
            expires_at: Some(Utc::now() - Duration::minutes(1)),
            revoked_at: None,
            created_at: Utc::now() - Duration::days(2),
            last_used_at: None,
        })
        .await
        .unwrap();
    let expired = api.api_authorization(&secret).get("/api/v1/targets").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.text.contains("expired"), "{}", expired.text);

    let unknown = api.bearer("jobd_nonsense").get("/api/v1/targets").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.text.contains("unknown"), "{}", unknown.text);
    let malformed = api
        .anonymous()
        .request(Method::GET, "/api/v1/targets")
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.anonymous().get("/api/v1/targets").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn admin_endpoints_refuse_non_admins() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let admin = api.login("admin").await;
    let team = json!({"name": "gamma"});
    let user = json!({"username": "carol", "password": "long enough pw"});
    let alice_id = api.users["alice"];
    let member_path = format!("/api/v1/teams/{}/members/{alice_id}", api.beta);
    for (method, path, body) in [
        (Method::POST, "/api/v1/teams".to_owned(), Some(team.clone())),
        (Method::DELETE, format!("/api/v1/teams/{}", api.beta), None),
        (Method::GET, "/api/v1/users".to_owned(), None),
        (Method::POST, "/api/v1/users".to_owned(), Some(user.clone())),
        (
            Method::PUT,
            format!("/api/v1/users/{alice_id}"),
            Some(json!({"is_admin": true})),
        ),
        (
            Method::PUT,
            member_path.clone(),
            Some(json!({"role": "viewer"})),
        ),
        (Method::DELETE, member_path.clone(), None),
    ] {
        let r = alice.send(method.clone(), &path, body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            r.body
        );
        assert_eq!(r.code(), "forbidden");
    }
    // Members see only their own teams.
    let teams = alice.get("/api/v1/teams").await;
    assert_eq!(teams.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(teams.body["items"][0]["name"], "alpha");

    // The administrator can do all of it.
    assert_eq!(
        admin.post("/api/v1/teams", team).await.status,
        StatusCode::CREATED
    );
    let carol = admin.post("/api/v1/users", user).await;
    assert_eq!(carol.status, StatusCode::CREATED, "{}", carol.body);
    assert!(carol.body.get("password_hash").is_none());
    let r = admin
        .send(Method::PUT, &member_path, Some(json!({"role": "viewer"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let alice = api.login("alice").await;
    assert_eq!(
        alice.get("/api/v1/teams").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        admin.get("/api/v1/users").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let api = Api::start().await;
    let anon = api.anonymous();
    let h = anon.get("/healthz").await;
    assert_eq!((h.status, h.text.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(anon.get("/readyz").await.status, StatusCode::OK);
    api.state.set_ready(false);
    let not_ready = anon.get("/readyz").await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.code(), "unavailable");
    api.state.set_ready(true);
    assert_eq!(anon.get("/readyz").await.status, StatusCode::OK);
    let doc = anon.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
}
