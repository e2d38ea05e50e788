//! Pushes and pulls on the agent's side: files come from and go to the files bucket, and
//! are written and read by the local transport (temporary name, sha256 check, rename).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use job_core::transport::{
    HostTarget, PullSpec, PushOutcome, PushSource, PushSpec, TransportError,
};
use job_core::values::Sha256Hex;
use serde::Serialize;

use super::Agent;
use crate::wire::{PullReply, PullRequest, PushReply, PushRequest, WireError};

/// Serves push and pull requests, forever; each request runs on its own task.
pub(super) async fn serve(agent: Arc<Agent>) {
    let ns = &agent.config.namespace;
    let id = &agent.config.agent_id;
    let subscribe = |subject: String| {
        let client = agent.client.clone();
        async move {
            loop {
                match client.subscribe(subject.clone()).await {
                    Ok(sub) => return sub,
                    Err(e) => {
                        tracing::warn!(error = %e, %subject, "cannot subscribe; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    };
    let mut pushes = subscribe(ns.push_subject(id)).await;
    let mut pulls = subscribe(ns.pull_subject(id)).await;
    loop {
        tokio::select! {
            Some(msg) = pushes.next() => {
                let agent = agent.clone();
                tokio::spawn(async move {
                    let reply = match serde_json::from_slice::<PushRequest>(&msg.payload) {
                        Ok(req) => push(&agent, req).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring a push request that is not valid JSON");
                            PushReply::Failed { error: WireError::from_error(&TransportError::invalid("request", e.to_string())) }
                        }
                    };
                    respond(&agent, msg.reply, &reply).await;
                });
            }
            Some(msg) = pulls.next() => {
                let agent = agent.clone();
                tokio::spawn(async move {
                    let reply = match serde_json::from_slice::<PullRequest>(&msg.payload) {
                        Ok(req) => pull(&agent, req).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring a pull request that is not valid JSON");
                            PullReply::Failed { error: WireError::from_error(&TransportError::invalid("request", e.to_string())) }
                        }
                    };
                    respond(&agent, msg.reply, &reply).await;
                });
            }
            else => return,
        }
    }
}

async fn respond(agent: &Agent, reply: Option<async_nats::Subject>, body: &impl Serialize) {
    let Some(reply) = reply else {
        return;
    };
    match serde_json::to_vec(body) {
        Ok(payload) => {
            if let Err(e) = agent.client.publish(reply, payload.into()).await {
                tracing::warn!(error = %e, "cannot answer a file request");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode a file reply"),
    }
}

/// Downloads the object to the incoming directory, then lets the local transport write it
/// into place, checked against the expected digest.
async fn push(agent: &Agent, req: PushRequest) -> PushReply {
    let fail = |e: TransportError| PushReply::Failed {
        error: WireError::from_error(&e),
    };
    if uuid::Uuid::parse_str(&req.transfer_id).is_err() {
        return fail(TransportError::invalid("transfer_id", "must be a UUID"));
    }
    let expected = match Sha256Hex::parse("sha256", &req.sha256) {
        Ok(d) => d,
        Err(e) => return fail(TransportError::invalid("sha256", e.to_string())),
    };
    let cancel = agent.register(&req.transfer_id);
    let incoming = agent
        .config
        .work_dir
        .join("incoming")
        .join(&req.transfer_id);
    let download = async {
        let mut object = agent.jet.files.get(&req.object).await.map_err(|e| {
            TransportError::failed(format!("file {} is not in the files bucket", req.object), e)
        })?;
        let mut file = tokio::fs::File::create(&incoming)
            .await
            .map_err(|e| TransportError::failed("cannot stage the incoming file", e))?;
        tokio::io::copy(&mut object, &mut file)
            .await
            .map_err(|e| TransportError::failed("the download was interrupted", e))?;
        file.sync_all()
            .await
            .map_err(|e| TransportError::failed("cannot stage the incoming file", e))?;
        Ok::<_, TransportError>(())
    };
    let downloaded = tokio::select! {
        r = download => r,
        () = cancel.cancelled() => Err(TransportError::Cancelled),
    };
    let result = match downloaded {
        Ok(()) => {
            let mut spec = PushSpec::new(PushSource::LocalFile(incoming.clone()), &req.destination)
                .with_if_exists(req.if_exists.into())
                .with_sha256(expected);
            spec.mode = req.mode;
            agent
                .config
                .runner
                .push(&HostTarget::local(), &spec, &cancel)
                .await
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&incoming).await;
    agent.forget(&req.transfer_id);
    match result {
        Ok(PushOutcome::Written { bytes, sha256 }) => PushReply::Written {
            bytes,
            sha256: sha256.as_str().to_owned(),
        },
        Ok(PushOutcome::Skipped) => PushReply::Skipped,
        Err(e) => fail(e),
    }
}

/// Reads the file with the local transport and leaves its bytes in the files bucket.
async fn pull(agent: &Agent, req: PullRequest) -> PullReply {
    let fail = |e: TransportError| PullReply::Failed {
        error: WireError::from_error(&e),
    };
    if uuid::Uuid::parse_str(&req.transfer_id).is_err() {
        return fail(TransportError::invalid("transfer_id", "must be a UUID"));
    }
    let cancel = agent.register(&req.transfer_id);
    let spec = PullSpec::new(&req.path).with_max_bytes(req.max_bytes);
    let result = agent
        .config
        .runner
        .pull(&HostTarget::local(), &spec, &cancel)
        .await;
    let reply = match result {
        Ok(pulled) => {
            let object = format!("pull/{}", req.transfer_id);
            let mut data = pulled.data.as_slice();
            match agent.jet.files.put(object.as_str(), &mut data).await {
                Ok(_) => PullReply::Ready {
                    object,
                    bytes: pulled.data.len() as u64,
                    sha256: pulled.sha256.as_str().to_owned(),
                },
                Err(e) => fail(TransportError::failed(
                    "cannot store the pulled file in the files bucket",
                    e,
                )),
            }
        }
        Err(e) => fail(e),
    };
    agent.forget(&req.transfer_id);
    reply
}
