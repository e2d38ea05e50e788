//! Pushes and pulls on the control side: the bytes travel through the files bucket, the
//! agent is asked over request/reply.

use std::time::Duration;

use async_nats::RequestErrorKind;
use job_core::transport::{
    Cancel, PullSpec, PulledFile, PushOutcome, PushSource, PushSpec, TransportError,
};
use job_core::values::Sha256Hex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::NatsTransport;
use crate::naming::AgentId;
use crate::wire::{PullReply, PullRequest, PushReply, PushRequest};

/// Uploads the source (once per content: objects are named by their sha256), then asks the
/// agent to write it.
pub(super) async fn push(
    t: &NatsTransport,
    agent: &AgentId,
    file: &PushSpec,
    cancel: &Cancel,
) -> Result<PushOutcome, TransportError> {
    if cancel.is_cancelled() {
        return Err(TransportError::Cancelled);
    }
    if !file.destination.starts_with('/') {
        return Err(TransportError::invalid(
            "destination",
            "must be an absolute path",
        ));
    }
    let digest = tokio::select! {
        d = upload(t, &file.source) => d?,
        () = cancel.cancelled() => return Err(TransportError::Cancelled),
    };
    let transfer_id = uuid::Uuid::now_v7().to_string();
    let request = PushRequest {
        transfer_id: transfer_id.clone(),
        object: object_name(&digest),
        destination: file.destination.clone(),
        if_exists: file.if_exists.into(),
        mode: file.mode,
        sha256: file
            .sha256
            .as_ref()
            .map_or_else(|| digest.clone(), |d| d.as_str().to_owned()),
    };
    let subject = t.config.namespace.push_subject(agent);
    let reply: PushReply = ask(t, agent, &subject, &request, &transfer_id, cancel).await?;
    match reply {
        PushReply::Written { bytes, sha256 } => Ok(PushOutcome::Written {
            bytes,
            sha256: parse_digest(&sha256)?,
        }),
        PushReply::Skipped => Ok(PushOutcome::Skipped),
        PushReply::Failed { error } => Err(error.into_error()),
    }
}

/// Asks the agent to leave the file's bytes in the files bucket, fetches and checks them,
/// then removes the object.
pub(super) async fn pull(
    t: &NatsTransport,
    agent: &AgentId,
    file: &PullSpec,
    cancel: &Cancel,
) -> Result<PulledFile, TransportError> {
    if cancel.is_cancelled() {
        return Err(TransportError::Cancelled);
    }
    let transfer_id = uuid::Uuid::now_v7().to_string();
    let request = PullRequest {
        transfer_id: transfer_id.clone(),
        path: file.path.clone(),
        max_bytes: file.max_bytes,
    };
    let subject = t.config.namespace.pull_subject(agent);
    let reply: PullReply = ask(t, agent, &subject, &request, &transfer_id, cancel).await?;
    let (object, bytes, sha256) = match reply {
        PullReply::Ready {
            object,
            bytes,
            sha256,
        } => (object, bytes, sha256),
        PullReply::Failed { error } => return Err(error.into_error()),
    };
    if bytes > file.max_bytes {
        return Err(TransportError::TooLarge {
            path: file.path.clone(),
            limit: file.max_bytes,
        });
    }
    let fetch = async {
        let mut reader =
            t.jet.files.get(&object).await.map_err(|e| {
                TransportError::failed("the pulled file is not in the files bucket", e)
            })?;
        let mut data = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
        (&mut reader)
            .take(file.max_bytes.saturating_add(1))
            .read_to_end(&mut data)
            .await
            .map_err(|e| TransportError::failed("cannot read the pulled file", e))?;
        Ok::<_, TransportError>(data)
    };
    let data = tokio::select! {
        d = fetch => d,
        () = cancel.cancelled() => Err(TransportError::Cancelled),
    };
    if let Err(e) = t.jet.files.delete(&object).await {
        tracing::debug!(error = %e, %object, "pulled object not removed (it expires)");
    }
    let data = data?;
    let expected = parse_digest(&sha256)?;
    let actual = parse_digest(&hex::encode(Sha256::digest(&data)))?;
    if actual != expected {
        return Err(TransportError::ChecksumMismatch {
            path: file.path.clone(),
            expected,
            actual,
        });
    }
    Ok(PulledFile {
        data,
        sha256: actual,
    })
}

fn object_name(digest: &str) -> String {
    format!("sha256/{digest}")
}

fn parse_digest(hex: &str) -> Result<Sha256Hex, TransportError> {
    Sha256Hex::parse("sha256", hex).map_err(|e| TransportError::Failed {
        reason: format!("the agent sent a malformed digest: {e}"),
        source: None,
    })
}

/// Puts the source in the files bucket under its digest unless it is already there, and
/// returns the digest.
async fn upload(t: &NatsTransport, source: &PushSource) -> Result<String, TransportError> {
    let digest = match source {
        PushSource::Bytes(b) => hex::encode(Sha256::digest(b)),
        PushSource::LocalFile(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut file = std::fs::File::open(&path)?;
                let mut hasher = Sha256::new();
                std::io::copy(&mut file, &mut hasher)?;
                Ok::<_, std::io::Error>(hex::encode(hasher.finalize()))
            })
            .await
            .map_err(|e| TransportError::failed("hashing the source was interrupted", e))?
            .map_err(|e| TransportError::failed("cannot read the source file", e))?
        }
    };
    let name = object_name(&digest);
    if t.jet.files.info(&name).await.is_ok() {
        return Ok(digest);
    }
    let stored = match source {
        PushSource::Bytes(b) => {
            let mut slice: &[u8] = b;
            t.jet.files.put(name.as_str(), &mut slice).await
        }
        PushSource::LocalFile(path) => {
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| TransportError::failed("cannot read the source file", e))?;
            t.jet.files.put(name.as_str(), &mut file).await
        }
    };
    stored.map_err(|e| TransportError::unreachable("cannot store the file in NATS", e))?;
    Ok(digest)
}

/// Sends `request` to the agent and waits for its answer, the file timeout or a cancel
/// (which is passed on to the agent).
async fn ask<Q: Serialize, A: DeserializeOwned>(
    t: &NatsTransport,
    agent: &AgentId,
    subject: &str,
    request: &Q,
    transfer_id: &str,
    cancel: &Cancel,
) -> Result<A, TransportError> {
    let payload =
        serde_json::to_vec(request).map_err(|e| TransportError::failed("cannot encode", e))?;
    let timeout = t.config.file_timeout.max(Duration::from_secs(1));
    let sent = t.client.send_request(
        subject.to_owned(),
        async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(timeout)),
    );
    let answer = tokio::select! {
        a = sent => a,
        () = cancel.cancelled() => {
            t.send_cancel(agent, transfer_id).await;
            return Err(TransportError::Cancelled);
        }
    };
    let msg = answer.map_err(|e| match e.kind() {
        RequestErrorKind::NoResponders => TransportError::Unreachable {
            reason: format!("agent {agent} is not listening (offline or restarting)"),
            source: None,
        },
        RequestErrorKind::TimedOut => TransportError::Failed {
            reason: format!("agent {agent} did not finish the transfer within {timeout:?}"),
            source: None,
        },
        _ => TransportError::unreachable(format!("cannot reach agent {agent}"), e),
    })?;
    serde_json::from_slice(&msg.payload).map_err(|e| TransportError::Failed {
        reason: format!("agent {agent} sent a malformed reply: {e}"),
        source: None,
    })
}
