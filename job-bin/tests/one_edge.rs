//! REST and the NATS open interfaces are one edge: the same bad input sent to the real
//! `jobd serve` through both is refused with the same code, field and reason, because both
//! call the same job-core functions (the callback guard, the script-type parser, launch
//! and cancel with their team checks).

mod common;

use common::{ADMIN_PASSWORD, Jobd, Session};
use job_core::ids::{ExecutionId, TargetId};
use job_testsupport::{NatsServer, require_service};
use serde_json::{Value, json};

/// How an edge refused a request: its error code and its message, which names the field
/// and the reason (`invalid callback_url: …`, `targets.target_ids[0]: … not found`).
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    code: String,
    message: String,
}

/// The refusal in a REST answer; for `invalid`, checks that the `field` it names is the
/// one the message starts with.
fn rest_refusal(case: &str, status: u16, body: &Value) -> Refusal {
    assert!(
        (400..500).contains(&status),
        "{case}: REST answered {status}: {body}"
    );
    let error = &body["error"];
    let refusal = Refusal {
        code: error["code"].as_str().unwrap_or_default().to_owned(),
        message: error["message"].as_str().unwrap_or_default().to_owned(),
    };
    if refusal.code == "invalid" {
        let field = error["field"].as_str().unwrap_or_default();
        assert!(
            refusal.message.starts_with(&format!("invalid {field}: ")),
            "{case}: field `{field}` is not the one of `{}`",
            refusal.message
        );
    }
    refusal
}

/// The refusal in a NATS reply.
fn nats_refusal(case: &str, reply: &Value) -> Refusal {
    assert_eq!(reply["result"], false, "{case}: NATS accepted it: {reply}");
    Refusal {
        code: reply["code"].as_str().unwrap_or_default().to_owned(),
        message: reply["message"].as_str().unwrap_or_default().to_owned(),
    }
}

/// `body` with `field` set to `value`.
fn with(body: &Value, field: &str, value: Value) -> Value {
    let mut body = body.clone();
    body[field] = value;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bad_input_gets_the_same_field_and_reason_over_rest_and_nats() {
    if !require_service("nats-server", NatsServer::available()) {
        return;
    }
    let nats = NatsServer::start().expect("nats-server");
    let (_dir, data) = common::data_dir();
    let server = Jobd::start_with(
        &data,
        &[
            ("JOBD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("JOBD_NATS_URL", &nats.url()),
        ],
    );
    let admin = Session::login(&server.base, "admin", ADMIN_PASSWORD).await;
    let client = job_transport_nats::async_nats::connect(nats.url())
        .await
        .expect("connect to NATS");
    let ask = |method: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let reply = client
                .request(format!("jobd.{method}"), body.to_string().into())
                .await
                .expect("a reply");
            serde_json::from_slice::<Value>(&reply.payload).expect("JSON reply")
        }
    };

    let (_, teams) = admin.get("/api/v1/teams").await;
    let default_team = teams
        .as_array()
        .or_else(|| teams["items"].as_array())
        .and_then(|t| t.iter().find(|t| t["name"] == "default"))
        .unwrap_or_else(|| panic!("no default team in {teams}"))["id"]
        .clone();
    let (_, listed) = admin.get("/api/v1/targets?limit=1000").await;
    let local = listed["items"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["mode"] == "local"))
        .unwrap_or_else(|| panic!("no control-node target in {listed}"))["id"]
        .clone();

    let rest_base = json!({
        "team_id": default_team,
        "script_type": "bash",
        "script_content": "echo hi",
        "targets": {"target_ids": [local]},
    });
    let nats_base = with(&rest_base, "team", json!("default"));
    let nats_base = {
        let mut b = nats_base;
        b.as_object_mut().unwrap().remove("team_id");
        b
    };
    let missing_target = TargetId::new().to_string();
    let cases: Vec<(&str, Value)> = vec![
        ("callback_url", json!("http://10.0.0.1/hook")),
        ("callback_url", json!("http://localhost:9000/hook")),
        ("callback_url", json!("http://metadata.google.internal/")),
        (
            "callback_url",
            json!("http://169.254.169.254/latest/meta-data"),
        ),
        ("callback_url", json!("http://[::ffff:127.0.0.1]/")),
        ("callback_url", json!("http://[64:ff9b::a9fe:a9fe]/")),
        ("callback_url", json!("http://2130706433/")),
        ("callback_url", json!("ftp://example.com/")),
        ("callback_url", json!("https://user:pw@example.com/")),
        ("script_type", json!(3)),
        ("script_type", json!(9)),
        ("script_type", json!("cobol")),
        ("script_type", json!(true)),
        ("script_content", json!("  ")),
        ("timeout", json!(0)),
        ("targets", json!({"target_ids": [missing_target]})),
        ("targets", json!({"ips": ["203.0.113.99"]})),
    ];
    for (field, value) in cases {
        let case = format!("{field} = {value}");
        let (status, body) = admin
            .post(
                "/api/v1/executions/quick",
                &with(&rest_base, field, value.clone()),
            )
            .await;
        let rest = rest_refusal(&case, status, &body);
        let nats = nats_refusal(
            &case,
            &ask("job_script_execute", with(&nats_base, field, value)).await,
        );
        assert_eq!(rest, nats, "{case}");
        assert!(rest.message.contains(field), "{case}: {rest:?}");
    }

    // Cancel: another team's execution answers exactly like a missing one, over both.
    let (status, other) = admin.post("/api/v1/teams", &json!({"name": "other"})).await;
    assert_eq!(status, 201, "{other}");
    let (status, user) = admin
        .post(
            "/api/v1/users",
            &json!({"username": "olga", "password": "Olga-Passw0rd-for-tests",
                    "memberships": [{"team_id": other["id"], "role": "operator"}]}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let olga = Session::login(&server.base, "olga", "Olga-Passw0rd-for-tests").await;
    let running = admin.quick(&[local.as_str().unwrap()], "sleep 60").await;
    let missing = ExecutionId::new().to_string();
    for id in [&running, &missing] {
        let case = format!(
            "cancel of {}",
            if *id == running {
                "another team's execution"
            } else {
                "a missing execution"
            }
        );
        let (status, body) = olga
            .post(&format!("/api/v1/executions/{id}/cancel"), &json!({}))
            .await;
        let rest = rest_refusal(&case, status, &body);
        let nats = nats_refusal(
            &case,
            &ask(
                "job_task_terminate",
                json!({"team": "other", "task_id": id}),
            )
            .await,
        );
        assert_eq!(rest, nats, "{case}");
        assert_eq!(
            rest,
            Refusal {
                code: "not_found".into(),
                message: format!("execution {id} not found"),
            },
            "{case}"
        );
    }
    // Its own team cancels it through NATS, with the same use case.
    let cancelled = ask(
        "job_task_terminate",
        json!({"team": "default", "task_id": running}),
    )
    .await;
    assert_eq!(cancelled["result"], true, "{cancelled}");
    let done = admin
        .wait_final(&running, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "cancelled", "{done:#}");
}
