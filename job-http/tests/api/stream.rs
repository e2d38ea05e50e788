//! Live output over SSE: followed to the end, resumed with Last-Event-ID, final snapshots.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Api, output_text};

/// A script printing `n` numbered lines, `pause` seconds apart.
fn lines_script(n: u32, pause: &str) -> (String, String) {
    let script = format!("for i in $(seq 1 {n}); do echo line-$i; sleep {pause}; done");
    let expected: String = (1..=n).map(|i| format!("line-{i}\n")).collect();
    (script, expected)
}

/// Checks that per-host sequence numbers arrive in order, from 0, without gaps or repeats.
fn assert_gapless(events: &[crate::harness::SseEvent], start: &BTreeMap<u64, u64>) {
    let mut next: BTreeMap<u64, u64> = start.iter().map(|(h, s)| (*h, s + 1)).collect();
    for e in events.iter().filter(|e| e.event == "output") {
        let host = e.data["host"].as_u64().unwrap();
        let seq = e.data["seq"].as_u64().unwrap();
        let want = next.entry(host).or_insert(0);
        assert_eq!(seq, *want, "host {host}: got seq {seq}, expected {want}");
        *want += 1;
        let id = e.id.as_deref().expect("output events carry an id");
        assert!(
            id.contains(&format!("{host}:{seq}")),
            "id {id} for {host}:{seq}"
        );
    }
}

#[tokio::test]
async fn a_stream_followed_to_the_end_carries_every_line_exactly_once() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let (script, expected) = lines_script(30, "0.02");
    let id = alice.quick(&script, api.local_a).await;
    let events = alice.stream(&id, None).await.collect().await;
    assert_eq!(output_text(&events), expected);
    assert_gapless(&events, &BTreeMap::new());
    let end = events.last().expect("events");
    assert_eq!(end.event, "end", "{events:?}");
    assert_eq!(end.data["status"], "success");
    assert_eq!(end.data["counters"]["success"], 1);
    assert_eq!(events.iter().filter(|e| e.event == "end").count(), 1);
    assert!(events.iter().any(|e| e.event == "status"));
    // What streamed is what was stored.
    assert_eq!(alice.stored_text(&id).await, expected);
}

#[tokio::test]
async fn a_stream_resumed_with_last_event_id_mid_run_has_no_gaps_and_no_repeats() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let (script, expected) = lines_script(40, "0.05");
    let id = alice.quick(&script, api.local_a).await;

    let mut first = alice.stream(&id, None).await;
    let mut part1 = Vec::new();
    while part1
        .iter()
        .filter(|e: &&crate::harness::SseEvent| e.event == "output")
        .count()
        < 8
    {
        part1.push(first.next().await.expect("the run is still going"));
    }
    drop(first);
    let last_id = part1
        .iter()
        .rev()
        .find_map(|e| e.id.clone())
        .expect("an event id");
    let cursor: BTreeMap<u64, u64> = last_id
        .split(',')
        .map(|p| {
            let (h, s) = p.split_once(':').unwrap();
            (h.parse().unwrap(), s.parse().unwrap())
        })
        .collect();
    // Let more output happen while nobody listens.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let part2 = alice.stream(&id, Some(&last_id)).await.collect().await;
    assert_gapless(&part2, &cursor);
    let text = output_text(&part1) + &output_text(&part2);
    assert_eq!(text, expected);
    assert_eq!(part2.last().unwrap().event, "end");

    // Resuming a finished run from the same cursor gives the same tail, then `end`.
    let again = alice
        .stream_query(&id, &format!("?last_event_id={last_id}"), None)
        .await
        .collect()
        .await;
    assert_eq!(output_text(&again), output_text(&part2));
    // And from the very end: nothing but `end`.
    let tail_id = part2.iter().rev().find_map(|e| e.id.clone()).unwrap();
    let nothing = alice.stream(&id, Some(&tail_id)).await.collect().await;
    assert_eq!(output_text(&nothing), "");
    assert_eq!(nothing.last().unwrap().event, "end");
}

#[tokio::test]
async fn a_final_execution_streams_its_stored_snapshot_then_ends() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let id = alice
        .quick("echo one; echo two >&2; exit 3", api.local_a)
        .await;
    let done = alice.wait_final(&id).await;
    assert_eq!(done["status"], "failed");
    let events = alice.stream(&id, None).await.collect().await;
    assert_eq!(output_text(&events).lines().count(), 2);
    let streams: Vec<_> = events
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| e.data["stream"].as_str().unwrap().to_owned())
        .collect();
    assert!(streams.contains(&"stdout".to_owned()) && streams.contains(&"stderr".to_owned()));
    let end = events.last().unwrap();
    assert_eq!(end.event, "end");
    assert_eq!(end.data["status"], "failed");
    assert_eq!(end.data["counters"]["failed"], 1);
}

#[tokio::test]
async fn a_cancelled_run_ends_its_stream_with_cancelled() {
    let api = Api::start().await;
    let alice = api.login("alice").await;
    let id = alice.quick("echo begin; sleep 300", api.local_a).await;
    let mut s = alice.stream(&id, None).await;
    loop {
        let e = s.next().await.expect("output before the end");
        if e.event == "output" {
            assert_eq!(e.data["text"], "begin\n");
            break;
        }
    }
    let r = alice
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let rest = s.collect().await;
    let end = rest.last().expect("an end event");
    assert_eq!(end.event, "end", "{rest:?}");
    assert_eq!(end.data["status"], "cancelled");
}

#[tokio::test]
async fn live_events_lost_by_the_bus_are_filled_from_the_store_without_repeats() {
    let bus = std::sync::Arc::new(crate::harness::LossyBus::default());
    let api = Api::start_with_bus(job_http::HttpConfig::default(), bus.clone()).await;
    let alice = api.login("alice").await;
    let (script, expected) = lines_script(60, "0.01");
    let id = alice.quick(&script, api.local_a).await;
    let events = alice.stream(&id, None).await.collect().await;
    assert!(
        bus.dropped.load(std::sync::atomic::Ordering::SeqCst) > 5,
        "the bus lost too few events to test anything"
    );
    assert_gapless(&events, &BTreeMap::new());
    assert_eq!(output_text(&events), expected);
    assert_eq!(events.last().unwrap().event, "end");
}

#[tokio::test]
async fn a_multi_host_stream_resumes_per_host_and_can_follow_one_host() {
    let api = Api::start().await;
    let admin = api.login("admin").await;
    let second = admin
        .post(
            "/api/v1/targets",
            json!({"name": "local-a2", "address": "127.0.0.2", "mode": "local", "team_id": api.alpha}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let alice = api.login("alice").await;
    let (script, expected) = lines_script(20, "0.03");
    let r = alice
        .post(
            "/api/v1/executions/quick",
            json!({
                "script_type": "bash",
                "script_content": script,
                "targets": {"target_ids": [api.local_a, second.body["id"]]},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Follow both hosts for a while, then resume with the multi-host cursor.
    let mut s = alice.stream(&id, None).await;
    let mut part1 = Vec::new();
    while part1
        .iter()
        .filter(|e: &&crate::harness::SseEvent| e.event == "output")
        .count()
        < 10
    {
        part1.push(s.next().await.expect("still running"));
    }
    drop(s);
    let cursor_text = part1.iter().rev().find_map(|e| e.id.clone()).unwrap();
    let cursor: BTreeMap<u64, u64> = cursor_text
        .split(',')
        .map(|p| {
            let (h, s) = p.split_once(':').unwrap();
            (h.parse().unwrap(), s.parse().unwrap())
        })
        .collect();
    let part2 = alice.stream(&id, Some(&cursor_text)).await.collect().await;
    assert_gapless(&part2, &cursor);
    for host in [0u64, 1] {
        let text: String = part1
            .iter()
            .chain(part2.iter())
            .filter(|e| e.event == "output" && e.data["host"] == host)
            .map(|e| e.data["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(text, expected, "host {host}");
    }
    let last_id = part2.iter().rev().find_map(|e| e.id.clone()).unwrap();
    assert!(
        last_id.starts_with("0:") && last_id.contains(",1:"),
        "{last_id}"
    );

    // Following one host only.
    let one = alice
        .stream_query(&id, "?host=1", None)
        .await
        .collect()
        .await;
    assert!(
        one.iter()
            .filter(|e| e.event == "output" || e.event == "host")
            .all(|e| e.data["host"] == 1)
    );
    assert_eq!(output_text(&one), expected);
    assert_eq!(one.last().unwrap().event, "end");
}
