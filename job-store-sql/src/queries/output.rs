//! Host output: appended in batches under a per-host cap, read back in order.

use std::collections::BTreeMap;

use async_trait::async_trait;
use job_core::ids::ExecutionId;
use job_core::model::{OutputChunk, OutputStream};
use job_core::store::{
    AppendedOutput, NewOutput, OutputCursor, OutputStore, TeamScope, checks, truncation_marker,
};
use job_core::{Error, Result};
use sqlx::QueryBuilder;

use super::SqlStore;
use super::db::{
    Db, INSERT_CHUNK, ROW_LOCK, Row, Ts, db, ensure_execution_visible, enum_of, enum_text, get,
    get_ts, ts,
};

/// One row to insert.
struct Stored<'a> {
    host: u32,
    seq: i64,
    stream: OutputStream,
    data: &'a [u8],
    ts: Ts,
}

/// A host run's output state, as read and then written back.
#[derive(Default)]
struct HostState {
    next_seq: i64,
    stored: i64,
    stdout: i64,
    stderr: i64,
    truncated: bool,
}

fn chunk_from(row: &Row, id: ExecutionId) -> Result<OutputChunk> {
    Ok(OutputChunk {
        execution_id: id,
        host_index: checks::u32_of("host_idx", get(row, "host_idx")?)?,
        seq: checks::u64_of("seq", get(row, "seq")?)?,
        stream: enum_of("stream", get(row, "stream")?)?,
        data: get(row, "data")?,
        ts: get_ts(row, "ts")?,
    })
}

#[async_trait]
impl OutputStore for SqlStore {
    async fn append_output(
        &self,
        id: ExecutionId,
        chunks: &[NewOutput],
        cap_bytes: u64,
    ) -> Result<AppendedOutput> {
        let cap = checks::i64_of("cap_bytes", cap_bytes)?;
        if chunks.is_empty() {
            return Ok(AppendedOutput::default());
        }
        let marker = truncation_marker(cap_bytes).into_bytes();
        let mut tx = self.writer().begin().await.map_err(db("append output"))?;
        // Read (and, where the backend locks rows, lock) each host once, in index order.
        let wanted: std::collections::BTreeSet<u32> = chunks.iter().map(|c| c.host_index).collect();
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT idx, next_seq, stored_bytes, stdout_bytes, stderr_bytes, output_truncated \
             FROM host_runs WHERE execution_id = ",
        );
        qb.push_bind(id.as_uuid()).push(" AND idx IN (");
        let mut list = qb.separated(", ");
        for idx in &wanted {
            list.push_bind(i64::from(*idx));
        }
        list.push_unseparated(")");
        qb.push(" ORDER BY idx").push(ROW_LOCK);
        let rows = qb
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(db("append output"))?;
        let mut hosts: BTreeMap<u32, HostState> = BTreeMap::new();
        for row in &rows {
            hosts.insert(
                checks::u32_of("idx", get(row, "idx")?)?,
                HostState {
                    next_seq: get(row, "next_seq")?,
                    stored: get(row, "stored_bytes")?,
                    stdout: get(row, "stdout_bytes")?,
                    stderr: get(row, "stderr_bytes")?,
                    truncated: get(row, "output_truncated")?,
                },
            );
        }
        if let Some(missing) = wanted.iter().find(|i| !hosts.contains_key(i)) {
            return Err(Error::invalid(
                "host_index",
                format!("execution {id} has no host {missing}"),
            ));
        }
        let mut out = AppendedOutput::default();
        let mut rows: Vec<Stored<'_>> = Vec::with_capacity(chunks.len());
        for c in chunks {
            let Some(h) = hosts.get_mut(&c.host_index) else {
                continue;
            };
            let len = i64::try_from(c.data.len())
                .map_err(|_| Error::invalid("data", "chunk too large"))?;
            match c.stream {
                OutputStream::Stdout => h.stdout += len,
                OutputStream::Stderr => h.stderr += len,
                OutputStream::System => {}
            }
            if h.truncated {
                out.seqs.push(None);
                continue;
            }
            let room = cap - h.stored;
            if len <= room {
                out.seqs.push(Some(h.next_seq as u64));
                rows.push(Stored {
                    host: c.host_index,
                    seq: h.next_seq,
                    stream: c.stream,
                    data: &c.data,
                    ts: ts(c.ts),
                });
                h.next_seq += 1;
                h.stored += len;
                continue;
            }
            if room > 0 {
                out.seqs.push(Some(h.next_seq as u64));
                rows.push(Stored {
                    host: c.host_index,
                    seq: h.next_seq,
                    stream: c.stream,
                    data: &c.data[..room as usize],
                    ts: ts(c.ts),
                });
                h.next_seq += 1;
                h.stored += room;
            } else {
                out.seqs.push(None);
            }
            rows.push(Stored {
                host: c.host_index,
                seq: h.next_seq,
                stream: OutputStream::System,
                data: &marker,
                ts: ts(c.ts),
            });
            h.next_seq += 1;
            h.truncated = true;
            out.truncated_hosts.push(c.host_index);
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO output_chunks (execution_id, host_idx, seq, stream, data, ts) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(id.as_uuid())
                    .push_bind(i64::from(r.host))
                    .push_bind(r.seq)
                    .push_bind(enum_text(&r.stream))
                    .push_bind(r.data)
                    .push_bind(r.ts);
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(db("append output"))?;
        }
        let hosts: Vec<(u32, HostState)> = hosts.into_iter().collect();
        for part in hosts.chunks(INSERT_CHUNK / 4) {
            let mut qb = QueryBuilder::<Db>::new("UPDATE host_runs SET ");
            let columns: [(&str, fn(&HostState) -> i64); 4] = [
                ("next_seq", |h| h.next_seq),
                ("stored_bytes", |h| h.stored),
                ("stdout_bytes", |h| h.stdout),
                ("stderr_bytes", |h| h.stderr),
            ];
            for (col, value) in columns {
                qb.push(col).push(" = CASE idx");
                for (idx, h) in part {
                    qb.push(" WHEN ")
                        .push_bind(i64::from(*idx))
                        .push(" THEN ")
                        .push_bind(value(h));
                }
                qb.push(" END, ");
            }
            qb.push("output_truncated = CASE idx");
            for (idx, h) in part {
                qb.push(" WHEN ")
                    .push_bind(i64::from(*idx))
                    .push(" THEN ")
                    .push_bind(h.truncated);
            }
            qb.push(" END WHERE execution_id = ")
                .push_bind(id.as_uuid())
                .push(" AND idx IN (");
            let mut list = qb.separated(", ");
            for (idx, _) in part {
                list.push_bind(i64::from(*idx));
            }
            list.push_unseparated(")");
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(db("append output"))?;
        }
        tx.commit().await.map_err(db("append output"))?;
        Ok(out)
    }

    async fn read_output(
        &self,
        scope: &TeamScope,
        id: ExecutionId,
        host: Option<u32>,
        after: Option<OutputCursor>,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        ensure_execution_visible(self.reader(), id, scope).await?;
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT host_idx, seq, stream, data, ts FROM output_chunks WHERE execution_id = ",
        );
        qb.push_bind(id.as_uuid());
        if let Some(h) = host {
            qb.push(" AND host_idx = ").push_bind(i64::from(h));
        }
        if let Some((h, s)) = after {
            let s = checks::i64_of("after", s)?;
            qb.push(" AND (host_idx > ")
                .push_bind(i64::from(h))
                .push(" OR (host_idx = ")
                .push_bind(i64::from(h))
                .push(" AND seq > ")
                .push_bind(s)
                .push("))");
        }
        qb.push(" ORDER BY host_idx, seq LIMIT ")
            .push_bind(i64::from(limit.clamp(1, job_core::store::MAX_PAGE)));
        let rows = qb
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("read output"))?;
        rows.iter().map(|r| chunk_from(r, id)).collect()
    }
}
