//! The host run of a file distribution: every source file (read once per execution, see
//! [`super::sources`]) is pushed to `<destination>/<file name>` on the host.

use super::shared::Shared;
use super::sources::read_sources;
use super::writer::Write;
use crate::model::{OutputStream, TargetSnapshot, TaskSnapshot};
use crate::store::NewOutput;
use crate::transport::{
    Cancel, IfExists, OutputCounts, PushOutcome, PushSource, PushSpec, RunOutcome, TransportError,
};

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
            read_sources(&shared.inner, &shared.execution, cancel)
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
