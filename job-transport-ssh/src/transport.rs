//! [`SshTransport`]: the job platform's [`Transport`] over SSH.

use std::time::Duration;

use async_trait::async_trait;
use job_core::transport::{
    Cancel, EventSender, HostAccess, HostTarget, IfExists, OutputEmitter, PullSpec, PulledFile,
    PushOutcome, PushSource, PushSpec, RunOutcome, SshAccess, TaskSpec, Transport, TransportError,
};
use job_core::values::Sha256Hex;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::{Endpoint, RemoteScript, RunEnd, SshAuth, SshError, SshOptions, SshPool};

/// Reaches agentless targets over SSH, one pooled connection per target.
#[derive(Debug)]
pub struct SshTransport {
    pool: SshPool,
}

impl SshTransport {
    /// A transport connecting with `options`, closing connections idle for `idle_timeout`.
    pub fn new(options: SshOptions, idle_timeout: Duration) -> Self {
        Self {
            pool: SshPool::new(options, idle_timeout),
        }
    }

    /// The connection pool (for closing idle connections from a maintenance task).
    pub fn pool(&self) -> &SshPool {
        &self.pool
    }

    async fn connect(
        &self,
        target: &HostTarget,
    ) -> Result<std::sync::Arc<crate::SshConnection>, TransportError> {
        let HostAccess::Ssh(access) = &target.access else {
            return Err(target.unsupported_by("ssh"));
        };
        let (endpoint, auth) = endpoint(access);
        self.pool
            .get(&endpoint, &auth)
            .await
            .map_err(into_transport)
    }
}

fn endpoint(access: &SshAccess) -> (Endpoint, SshAuth) {
    (
        Endpoint {
            host: access.address.to_string(),
            port: access.port.get(),
            user: access.user.clone(),
        },
        SshAuth::from(&access.secret),
    )
}

/// Maps an SSH failure to the transport contract's kinds.
fn into_transport(e: SshError) -> TransportError {
    match e {
        SshError::Unreachable(reason) => TransportError::Unreachable {
            reason,
            source: None,
        },
        SshError::AuthFailed(reason) => TransportError::AuthenticationFailed { reason },
        SshError::HostKeyMismatch(reason) | SshError::HostKeyUnknown(reason) => {
            TransportError::HostKeyMismatch { reason }
        }
        SshError::NotFound(path) => TransportError::NotFound { path },
        SshError::Invalid(reason) => TransportError::invalid("task", reason),
        other => TransportError::failed(other.to_string(), other),
    }
}

fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG").to_ascii_uppercase().as_str() {
        n if n.contains("HUP") => 1,
        n if n.contains("INT") => 2,
        n if n.contains("QUIT") => 3,
        n if n.contains("ABRT") => 6,
        n if n.contains("KILL") => 9,
        n if n.contains("SEGV") => 11,
        n if n.contains("PIPE") => 13,
        n if n.contains("TERM") => 15,
        _ => 0,
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    async fn run(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        events: EventSender,
        cancel: &Cancel,
    ) -> Result<RunOutcome, TransportError> {
        task.validate()?;
        if cancel.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        let conn = tokio::select! {
            c = self.connect(target) => c?,
            () = cancel.cancelled() => return Err(TransportError::Cancelled),
        };
        let env: Vec<(String, String)> = task
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let script = RemoteScript {
            interpreter: &task.program,
            args: &task.args,
            body: task.script.as_bytes(),
            extension: &task.script_extension,
            script_args: &task.script_args,
            env: &env,
            workdir: task.workdir.as_deref(),
            timeout: task.timeout,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let mut emitter = OutputEmitter::new(events, task.output_limit);
        let forward = async {
            emitter.started().await;
            while let Some(piece) = rx.recv().await {
                let piece: crate::OutputPiece = piece;
                emitter.output(piece.stream, &piece.data).await;
            }
        };
        let run = async {
            let end = conn.run(&script, &tx, cancel.cancelled()).await;
            drop(tx);
            end
        };
        let (end, ()) = tokio::join!(run, forward);
        let counts = emitter.counts();
        match end.map_err(into_transport)? {
            RunEnd::Exited(code) => Ok(RunOutcome::exited(code, counts)),
            RunEnd::Signalled(name) => Ok(RunOutcome::ended_by(
                TransportError::Killed {
                    signal: signal_number(&name),
                },
                None,
                counts,
            )),
            RunEnd::TimedOut => Ok(RunOutcome::ended_by(
                TransportError::Timeout {
                    after: task.timeout,
                },
                None,
                counts,
            )),
            RunEnd::Cancelled => Ok(RunOutcome::ended_by(
                TransportError::Cancelled,
                None,
                counts,
            )),
        }
    }

    async fn push(
        &self,
        target: &HostTarget,
        file: &PushSpec,
        cancel: &Cancel,
    ) -> Result<PushOutcome, TransportError> {
        let content: std::borrow::Cow<'_, [u8]> = match &file.source {
            PushSource::Bytes(b) => std::borrow::Cow::Borrowed(b),
            PushSource::LocalFile(path) => {
                std::borrow::Cow::Owned(tokio::fs::read(path).await.map_err(|e| {
                    TransportError::failed(format!("cannot read {}", path.display()), e)
                })?)
            }
        };
        let actual = hex::encode(Sha256::digest(&content));
        if let Some(expected) = &file.sha256
            && expected.as_str() != actual
        {
            return Err(TransportError::ChecksumMismatch {
                path: file.destination.clone(),
                expected: expected.clone(),
                actual: Sha256Hex::parse("sha256", &actual)
                    .map_err(|e| TransportError::failed(e.to_string(), e))?,
            });
        }
        let conn = tokio::select! {
            c = self.connect(target) => c?,
            () = cancel.cancelled() => return Err(TransportError::Cancelled),
        };
        let overwrite = file.if_exists == IfExists::Overwrite;
        let pushed = tokio::select! {
            r = conn.push_with_digest(
                &file.destination,
                &content,
                &actual,
                overwrite,
                file.mode_or_default(),
            ) => r,
            () = cancel.cancelled() => return Err(TransportError::Cancelled),
        };
        match pushed {
            Ok(crate::PushOutcome::Written) => Ok(PushOutcome::Written {
                bytes: content.len() as u64,
                sha256: Sha256Hex::parse("sha256", &actual)
                    .map_err(|e| TransportError::failed(e.to_string(), e))?,
            }),
            Ok(crate::PushOutcome::Skipped) => Ok(PushOutcome::Skipped),
            Err(SshError::ChecksumMismatch { expected, actual }) => {
                match (
                    Sha256Hex::parse("sha256", &expected),
                    Sha256Hex::parse("sha256", &actual),
                ) {
                    (Ok(expected), Ok(actual)) => Err(TransportError::ChecksumMismatch {
                        path: file.destination.clone(),
                        expected,
                        actual,
                    }),
                    _ => Err(TransportError::failed(
                        format!("checksum mismatch writing {}", file.destination),
                        SshError::ChecksumMismatch { expected, actual },
                    )),
                }
            }
            Err(e) => Err(into_transport(e)),
        }
    }

    async fn pull(
        &self,
        target: &HostTarget,
        file: &PullSpec,
        cancel: &Cancel,
    ) -> Result<PulledFile, TransportError> {
        let conn = tokio::select! {
            c = self.connect(target) => c?,
            () = cancel.cancelled() => return Err(TransportError::Cancelled),
        };
        let max = usize::try_from(file.max_bytes).unwrap_or(usize::MAX);
        let data = tokio::select! {
            r = conn.pull(&file.path, max) => r,
            () = cancel.cancelled() => return Err(TransportError::Cancelled),
        };
        let data = data.map_err(|e| match e {
            SshError::TooLarge(path) => TransportError::TooLarge {
                path,
                limit: file.max_bytes,
            },
            other => into_transport(other),
        })?;
        let sum = hex::encode(Sha256::digest(&data));
        Ok(PulledFile {
            sha256: Sha256Hex::parse("sha256", &sum)
                .map_err(|e| TransportError::failed(e.to_string(), e))?,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signal_names_map_to_numbers() {
        assert_eq!(super::signal_number("KILL"), 9);
        assert_eq!(super::signal_number("SIGTERM"), 15);
        assert_eq!(super::signal_number("Custom(\"USR9\")"), 0);
    }
}
