//! The host run of a file distribution: every source file, read once per execution from
//! the target that holds it (at most 64 MiB a file and [`MAX_TOTAL_BYTES`] in all, held in
//! memory and shared by the hosts), is pushed to `<destination>/<file name>` on the host.

use std::sync::Arc;

use super::host::Shared;
use super::writer::Write;
use crate::launch::SOURCE_SEPARATOR;
use crate::model::{OutputStream, TargetSnapshot, TaskSnapshot};
use crate::store::{NewOutput, TeamScope};
use crate::transport::{
    Cancel, IfExists, OutputCounts, PullSpec, PushOutcome, PushSource, PushSpec, RunOutcome,
    TransportError,
};

/// A source file, read.
#[derive(Debug)]
pub(crate) struct SourceFile {
    name: String,
    data: Arc<[u8]>,
    sha256: crate::values::Sha256Hex,
}

/// The sources of a distribution, read once by the first host that needs them (or why they
/// could not be read).
pub(crate) type Sources = tokio::sync::OnceCell<Result<Vec<SourceFile>, String>>;

/// Pushes every source to the host at `index`; the outcome is a success when every file
/// landed (or was kept, without overwrite), a failure naming the first file that did not.
pub(crate) async fn distribute(
    shared: &Shared,
    index: u32,
    target: &TargetSnapshot,
    cancel: &Cancel,
) -> RunOutcome {
    let TaskSnapshot::FileDistribution {
        destination,
        overwrite,
        ..
    } = &shared.execution.task
    else {
        return RunOutcome::from_error(TransportError::unsupported("not a file distribution"));
    };
    let read = shared
        .sources
        .get_or_init(|| async {
            read_sources(shared, cancel)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
    let files = match read {
        Ok(files) => files,
        Err(_) if cancel.is_cancelled() => {
            return RunOutcome::from_error(TransportError::Cancelled);
        }
        Err(reason) => {
            return RunOutcome::from_error(TransportError::Failed {
                reason: reason.clone(),
                source: None,
            });
        }
    };
    let (transport, host) = match shared
        .inner
        .connector
        .connect(&shared.execution, target)
        .await
    {
        Ok(c) => c,
        Err(e) => return RunOutcome::from_error(e),
    };
    let mut counts = OutputCounts::default();
    for file in files {
        let path = format!("{}/{}", destination.trim_end_matches('/'), file.name);
        let spec = PushSpec::new(PushSource::Bytes(file.data.clone()), path.clone())
            .with_sha256(file.sha256.clone())
            .with_if_exists(if *overwrite {
                IfExists::Overwrite
            } else {
                IfExists::Skip
            });
        let line = match transport.push(&host, &spec, cancel).await {
            Ok(PushOutcome::Written { .. }) => format!(
                "{path}: written, {} bytes, sha256 {}\n",
                file.data.len(),
                file.sha256.as_str()
            ),
            Ok(PushOutcome::Skipped) => format!("{path}: kept, it exists (overwrite is off)\n"),
            Err(e) => {
                say(
                    shared,
                    index,
                    &format!("{path}: not written: {e}\n"),
                    &mut counts,
                )
                .await;
                return RunOutcome::ended_by(e, None, counts);
            }
        };
        say(shared, index, &line, &mut counts).await;
    }
    RunOutcome::exited(0, counts)
}

/// Stores one line of the host's output.
async fn say(shared: &Shared, index: u32, line: &str, counts: &mut OutputCounts) {
    counts.stdout_bytes += line.len() as u64;
    shared
        .writer
        .send(Write::Output(NewOutput {
            host_index: index,
            stream: OutputStream::Stdout,
            data: line.as_bytes().to_vec(),
            ts: shared.inner.clock.now(),
        }))
        .await;
}

/// The most bytes one distribution's sources may hold together: they are kept in memory
/// while the hosts are served.
pub(crate) const MAX_TOTAL_BYTES: u64 = 256 * 1024 * 1024;

/// Reads every source from the target that holds it.
async fn read_sources(shared: &Shared, cancel: &Cancel) -> Result<Vec<SourceFile>, TransportError> {
    let TaskSnapshot::FileDistribution { sources, .. } = &shared.execution.task else {
        return Ok(Vec::new());
    };
    let mut files = Vec::with_capacity(sources.len());
    for source in sources {
        let (id, path) = source.split_once(SOURCE_SEPARATOR).ok_or_else(|| {
            TransportError::invalid("sources", format!("`{source}` is not <target id>:<path>"))
        })?;
        let id = crate::ids::TargetId::parse_field("sources", id)
            .map_err(|e| TransportError::invalid("sources", e.to_string()))?;
        let team = TeamScope::team(shared.execution.team_id);
        let holder = shared
            .inner
            .store
            .get_target(&team, id)
            .await
            .map_err(|e| {
                TransportError::failed(format!("the source target {id} of {path} is gone"), e)
            })?;
        let snapshot = TargetSnapshot {
            target_id: holder.id,
            name: holder.name.clone(),
            address: holder.address.clone(),
            os: holder.os,
            mode: holder.mode.as_str().to_owned(),
        };
        let (transport, host) = shared
            .inner
            .connector
            .connect(&shared.execution, &snapshot)
            .await?;
        let used: u64 = files.iter().map(|f: &SourceFile| f.data.len() as u64).sum();
        let room = MAX_TOTAL_BYTES.saturating_sub(used);
        let limit = room.min(PullSpec::DEFAULT_MAX_BYTES);
        let pulled = transport
            .pull(&host, &PullSpec::new(path).with_max_bytes(limit), cancel)
            .await
            .map_err(|e| match e {
                TransportError::Cancelled => e,
                other => TransportError::failed(
                    format!("cannot read the source {path} on {}", holder.name),
                    other,
                ),
            })?;
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        files.push(SourceFile {
            name,
            data: pulled.data.into(),
            sha256: pulled.sha256,
        });
    }
    Ok(files)
}
