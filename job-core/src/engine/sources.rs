//! The sources of a file distribution: every source file, read once per execution from the
//! target that holds it (at most 64 MiB a file and [`MAX_TOTAL_BYTES`] in all, held in
//! memory and shared by the hosts).

use std::sync::Arc;

use super::Inner;
use crate::model::{DistributionSource, Execution, TargetSnapshot, TaskSnapshot};
use crate::store::TeamScope;
use crate::transport::{Cancel, PullSpec, TransportError};

/// A source file, read.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub(crate) name: String,
    pub(crate) data: Arc<[u8]>,
    pub(crate) sha256: crate::values::Sha256Hex,
}

/// The sources of a distribution, read once by the first host that needs them (or why they
/// could not be read).
pub(crate) type Sources = tokio::sync::OnceCell<Result<Vec<SourceFile>, String>>;

/// The most bytes one distribution's sources may hold together: they are kept in memory
/// while the hosts are served.
pub(crate) const MAX_TOTAL_BYTES: u64 = 256 * 1024 * 1024;

/// Reads every source from the target that holds it.
pub(crate) async fn read_sources(
    inner: &Inner,
    execution: &Execution,
    cancel: &Cancel,
) -> Result<Vec<SourceFile>, TransportError> {
    let TaskSnapshot::FileDistribution { sources, .. } = &execution.task else {
        return Ok(Vec::new());
    };
    let mut files = Vec::with_capacity(sources.len());
    for source in sources {
        let DistributionSource::Target {
            target_id: id,
            path,
        } = source;
        let team = TeamScope::team(execution.team_id);
        let holder = inner.store.get_target(&team, *id).await.map_err(|e| {
            TransportError::failed(format!("the source target {id} of {path} is gone"), e)
        })?;
        let snapshot = TargetSnapshot {
            target_id: holder.id,
            name: holder.name.clone(),
            address: holder.address.clone(),
            os: holder.os,
            mode: holder.mode.as_str().to_owned(),
        };
        let (transport, host) = inner.connector.connect(execution, &snapshot).await?;
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
        let name = source.file_name().to_owned();
        files.push(SourceFile {
            name,
            data: pulled.data.into(),
            sha256: pulled.sha256,
        });
    }
    Ok(files)
}
