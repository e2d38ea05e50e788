//! Conformance cases for leases and output.

use chrono::Duration;

use super::fixtures::*;
use crate::ids::ExecutionId;
use crate::model::{Execution, OutputStream};
use crate::status::ExecutionStatus as S;
use crate::store::{ClaimedExecution, Lease, NewOutput, Store, Transition, truncation_marker};

fn lease(node: &str, now: chrono::DateTime<chrono::Utc>, secs: i64) -> Lease {
    Lease {
        node: node.to_owned(),
        now,
        until: now + Duration::seconds(secs),
    }
}

/// Claims until nothing is left, keeping only the claims of `mine`.
async fn claim_mine(store: &dyn Store, l: &Lease, mine: &[ExecutionId]) -> Vec<ClaimedExecution> {
    let mut out = Vec::new();
    loop {
        let got = store.claim_executions(l, 1000).await.expect("claim");
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().filter(|c| mine.contains(&c.execution.id)));
    }
}

async fn pending(store: &dyn Store, team: crate::ids::TeamId, n: usize) -> Vec<Execution> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(create_execution(store, team, 1).await);
    }
    out
}

/// Two nodes claiming at once never get the same execution, and together get them all.
pub async fn two_claimers_never_get_the_same_execution(store: &dyn Store) {
    let a = team(store, "claims").await;
    let execs = pending(store, a.id, 40).await;
    let ids: Vec<_> = execs.iter().map(|e| e.id).collect();
    let t = now();
    let la = lease("node-a", t, 60);
    let lb = lease("node-b", t, 60);
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for _ in 0..100 {
        let r = join_all(vec![
            store.claim_executions(&la, 7),
            store.claim_executions(&lb, 7),
        ])
        .await;
        let mut r = r.into_iter();
        let ra = r.next().expect("a").expect("claim a");
        let rb = r.next().expect("b").expect("claim b");
        if ra.is_empty() && rb.is_empty() {
            break;
        }
        got_a.extend(
            ra.into_iter()
                .filter(|c| ids.contains(&c.execution.id))
                .map(|c| c.execution.id),
        );
        got_b.extend(
            rb.into_iter()
                .filter(|c| ids.contains(&c.execution.id))
                .map(|c| c.execution.id),
        );
    }
    assert!(
        got_a.iter().all(|id| !got_b.contains(id)),
        "an execution was claimed twice"
    );
    let mut all: Vec<_> = got_a.iter().chain(&got_b).copied().collect();
    all.sort();
    assert_eq!(all, ids, "every execution claimed exactly once");
    assert!(
        claim_mine(store, &lease("node-c", t, 60), &ids)
            .await
            .is_empty(),
        "held leases are not claimable"
    );
}

/// A lease is renewed by its holder only, released, and taken over once it expired.
pub async fn leases_are_renewed_released_and_taken_over_when_expired(store: &dyn Store) {
    let a = team(store, "leases").await;
    let execs = pending(store, a.id, 2).await;
    let ids: Vec<_> = execs.iter().map(|e| e.id).collect();
    let t = now();
    let claimed = claim_mine(store, &lease("node-a", t, 30), &ids).await;
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|c| !c.taken_over && c.execution.status == S::Pending)
    );
    let e0 = ids[0];
    store
        .transition(e0, &Transition::new(S::Pending, S::Running, t))
        .await
        .expect("start");
    store
        .renew_lease(e0, &lease("node-a", t + Duration::seconds(20), 30))
        .await
        .expect("renew");
    assert_conflict(store.renew_lease(e0, &lease("node-b", t, 30)).await);
    assert_not_found(
        store
            .renew_lease(ExecutionId::new(), &lease("node-a", t, 30))
            .await,
    );

    // node-a dies: at t+40 the lease of e1 (until t+30) expired, e0's (until t+50) did not.
    let later = claim_mine(store, &lease("node-b", t + Duration::seconds(40), 30), &ids).await;
    assert_eq!(
        later.iter().map(|c| c.execution.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    assert!(later[0].taken_over);
    // At t+60 e0 is taken over too, running as it was.
    let later = claim_mine(store, &lease("node-b", t + Duration::seconds(60), 30), &ids).await;
    assert_eq!(later.len(), 1);
    assert_eq!(
        (
            later[0].execution.id,
            later[0].execution.status,
            later[0].taken_over
        ),
        (e0, S::Running, true)
    );
    assert_conflict(
        store
            .renew_lease(e0, &lease("node-a", t + Duration::seconds(61), 30))
            .await,
    );

    store
        .release_lease(ids[1], "node-a")
        .await
        .expect("release by a non-holder is a no-op");
    assert!(
        claim_mine(store, &lease("node-c", t + Duration::seconds(61), 30), &ids)
            .await
            .is_empty()
    );
    store
        .release_lease(ids[1], "node-b")
        .await
        .expect("release");
    let again = claim_mine(store, &lease("node-c", t + Duration::seconds(61), 30), &ids).await;
    assert_eq!(
        again.iter().map(|c| c.execution.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    store
        .transition(ids[1], &Transition::new(S::Pending, S::Cancelled, t))
        .await
        .expect("cancel");
    assert!(
        claim_mine(store, &lease("node-d", t + Duration::days(1), 30), &ids)
            .await
            .iter()
            .all(|c| c.execution.id != ids[1]),
        "final executions are never claimed"
    );
    assert_conflict(store.renew_lease(ids[1], &lease("node-c", t, 30)).await);
}

fn out(host: u32, stream: OutputStream, data: &[u8]) -> NewOutput {
    NewOutput {
        host_index: host,
        stream,
        data: data.to_vec(),
        ts: now(),
    }
}

/// Output keeps its order per host across batches and reads back in `(host, seq)` order.
pub async fn output_keeps_sequence_order_per_host(store: &dyn Store) {
    let a = team(store, "output").await;
    let e = create_execution(store, a.id, 3).await;
    let first = store
        .append_output(
            e.id,
            &[
                out(0, OutputStream::Stdout, b"a0\n"),
                out(1, OutputStream::Stdout, b"b0\n"),
                out(0, OutputStream::Stderr, b"a1\n"),
            ],
            1 << 20,
        )
        .await
        .expect("append");
    assert_eq!(first.seqs, vec![Some(0), Some(0), Some(1)]);
    let second = store
        .append_output(
            e.id,
            &[
                out(0, OutputStream::Stdout, b"a2\n"),
                out(2, OutputStream::System, b"connected"),
            ],
            1 << 20,
        )
        .await
        .expect("append");
    assert_eq!(second.seqs, vec![Some(2), Some(0)]);
    assert!(second.truncated_hosts.is_empty());
    let all = store
        .read_output(&scope(a.id), e.id, None, None, 100)
        .await
        .expect("read");
    let order: Vec<_> = all
        .iter()
        .map(|c| (c.host_index, c.seq, c.data.clone()))
        .collect();
    assert_eq!(
        order,
        vec![
            (0, 0, b"a0\n".to_vec()),
            (0, 1, b"a1\n".to_vec()),
            (0, 2, b"a2\n".to_vec()),
            (1, 0, b"b0\n".to_vec()),
            (2, 0, b"connected".to_vec())
        ]
    );
    assert_eq!(all[1].stream, OutputStream::Stderr);
    let after = store
        .read_output(&scope(a.id), e.id, None, Some((0, 1)), 2)
        .await
        .expect("resume");
    assert_eq!(
        after
            .iter()
            .map(|c| (c.host_index, c.seq))
            .collect::<Vec<_>>(),
        vec![(0, 2), (1, 0)]
    );
    let host0 = store
        .read_output(&scope(a.id), e.id, Some(0), Some((0, 0)), 100)
        .await
        .expect("host 0");
    assert_eq!(host0.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2]);
    let hosts = store
        .list_host_runs(
            &scope(a.id),
            e.id,
            None,
            crate::store::PageRequest::first(10),
        )
        .await
        .expect("hosts")
        .items;
    assert_eq!(
        (
            hosts[0].stdout_bytes,
            hosts[0].stderr_bytes,
            hosts[2].stdout_bytes
        ),
        (6, 3, 0)
    );
    assert_invalid(
        store
            .append_output(e.id, &[out(7, OutputStream::Stdout, b"x")], 1 << 20)
            .await,
        "host_index",
    );
}

/// Output past the per-host cap is cut there, marked, and counted but not stored.
pub async fn output_past_the_cap_is_cut_with_a_visible_marker(store: &dyn Store) {
    let a = team(store, "output-cap").await;
    let e = create_execution(store, a.id, 2).await;
    let cap = 10;
    let r = store
        .append_output(
            e.id,
            &[
                out(0, OutputStream::Stdout, b"123456"),
                out(1, OutputStream::Stdout, b"ok"),
            ],
            cap,
        )
        .await
        .expect("append");
    assert_eq!(r.seqs, vec![Some(0), Some(0)]);
    let r = store
        .append_output(
            e.id,
            &[
                out(0, OutputStream::Stdout, b"789abc"),
                out(0, OutputStream::Stderr, b"dropped"),
                out(1, OutputStream::Stdout, b"fine"),
            ],
            cap,
        )
        .await
        .expect("append");
    assert_eq!(r.seqs, vec![Some(1), None, Some(1)]);
    assert_eq!(r.truncated_hosts, vec![0]);
    let r = store
        .append_output(e.id, &[out(0, OutputStream::Stdout, b"more")], cap)
        .await
        .expect("append");
    assert_eq!((r.seqs, r.truncated_hosts), (vec![None], vec![]));
    let host0 = store
        .read_output(&scope(a.id), e.id, Some(0), None, 100)
        .await
        .expect("read");
    let data: Vec<_> = host0
        .iter()
        .map(|c| (c.seq, c.stream, c.data.clone()))
        .collect();
    assert_eq!(
        data,
        vec![
            (0, OutputStream::Stdout, b"123456".to_vec()),
            (1, OutputStream::Stdout, b"789a".to_vec()),
            (2, OutputStream::System, truncation_marker(cap).into_bytes())
        ]
    );
    let hosts = store
        .list_host_runs(
            &scope(a.id),
            e.id,
            None,
            crate::store::PageRequest::first(10),
        )
        .await
        .expect("hosts")
        .items;
    assert_eq!(
        (
            hosts[0].stdout_bytes,
            hosts[0].stderr_bytes,
            hosts[0].output_truncated
        ),
        (16, 7, true)
    );
    assert_eq!(
        (hosts[1].stdout_bytes, hosts[1].output_truncated),
        (6, false)
    );
}

/// Concurrent appends to one host get gapless sequence numbers, each batch in its order.
pub async fn concurrent_appends_to_one_host_get_gapless_sequences(store: &dyn Store) {
    let a = team(store, "output-race").await;
    let e = create_execution(store, a.id, 2).await;
    let batches: Vec<Vec<NewOutput>> = (0..12u8)
        .map(|w| {
            (0..5u8)
                .map(|i| out(u32::from(w % 2), OutputStream::Stdout, &[w, i]))
                .collect()
        })
        .collect();
    let results = join_all(
        batches
            .iter()
            .map(|b| store.append_output(e.id, b, 1 << 20))
            .collect(),
    )
    .await;
    for r in &results {
        let seqs: Vec<u64> = r
            .as_ref()
            .expect("append")
            .seqs
            .iter()
            .map(|s| s.expect("stored"))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "a batch is stored contiguously: {seqs:?}"
        );
    }
    for host in 0..2u32 {
        let chunks = store
            .read_output(&scope(a.id), e.id, Some(host), None, 1000)
            .await
            .expect("read");
        assert_eq!(
            chunks.iter().map(|c| c.seq).collect::<Vec<_>>(),
            (0..30).collect::<Vec<u64>>()
        );
        for w in chunks.chunks(5) {
            let writer = w[0].data[0];
            assert_eq!(
                w.iter().map(|c| c.data.clone()).collect::<Vec<_>>(),
                (0..5u8).map(|i| vec![writer, i]).collect::<Vec<_>>()
            );
        }
    }
}

/// Output is untrusted bytes: NULs, invalid UTF-8 and escape sequences come back unchanged.
pub async fn output_bytes_are_stored_unchanged(store: &dyn Store) {
    let a = team(store, "output-bytes").await;
    let e = create_execution(store, a.id, 1).await;
    let nasty: Vec<Vec<u8>> = vec![
        b"\0\0nul\0".to_vec(),
        vec![0xff, 0xfe, 0xc3, 0x28, 0x80],
        b"\x1b[31mred\x1b[0m\r\n'; DROP TABLE output_chunks; --".to_vec(),
        "数据库 🚀 naïve".as_bytes().to_vec(),
        (0..=255u8).collect(),
        Vec::new(),
    ];
    let batch: Vec<_> = nasty
        .iter()
        .map(|d| out(0, OutputStream::Stdout, d))
        .collect();
    store
        .append_output(e.id, &batch, 1 << 20)
        .await
        .expect("append");
    let got = store
        .read_output(&scope(a.id), e.id, Some(0), None, 100)
        .await
        .expect("read");
    assert_eq!(
        got.iter().map(|c| c.data.clone()).collect::<Vec<_>>(),
        nasty
    );
}
