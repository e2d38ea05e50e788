//! Runs one task as a local process group: spawn, stream, time out, cancel, clean up.

use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use job_core::model::OutputStream;
use job_core::transport::{
    Cancel, EventSender, MAX_OUTPUT_CHUNK, OutputEmitter, RunOutcome, TaskSpec, TransportError,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::LocalConfig;
use crate::group::{KillOnDrop, ProcessGroup};
use crate::records::RunRecord;

/// Used when the control node's own environment has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why the run was stopped before the script ended on its own.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Timeout,
    Cancelled,
}

/// How the main process ended.
#[derive(Debug)]
struct Ended {
    status: io::Result<ExitStatus>,
    stop: Option<Stop>,
}

/// Runs `task` on the control node. See the crate docs for the kill semantics.
pub(crate) async fn run(
    config: &LocalConfig,
    task: &TaskSpec,
    events: EventSender,
    cancel: &Cancel,
) -> Result<RunOutcome, TransportError> {
    task.validate()?;
    let deadline = Instant::now() + task.timeout;
    if let Some(dir) = &task.workdir {
        check_workdir(dir).await?;
    }
    let script = ScriptFile::write(config, task).await?;
    if cancel.is_cancelled() {
        script.remove().await;
        return Ok(RunOutcome::ended_by(
            TransportError::Cancelled,
            None,
            Default::default(),
        ));
    }

    let env = base_env(config);
    let mut command = Command::new(resolve_program(&task.program, &env, &task.env));
    command
        .args(&task.args)
        .arg(&script.path)
        .args(&task.script_args)
        .env_clear()
        .envs(env)
        .envs(&task.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = &task.workdir {
        command.current_dir(dir);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            script.remove().await;
            return Err(spawn_error(task, e));
        }
    };
    let Some(group) = child.id().and_then(ProcessGroup::led_by) else {
        script.remove().await;
        return Err(TransportError::Failed {
            reason: "the script's process has no pid".to_owned(),
            source: None,
        });
    };
    let mut guard = KillOnDrop::new(group);
    // Dropped (the record removed) when the run is over, however it ends.
    let _record = RunRecord::write(config.run_records.as_deref(), group);
    tracing::debug!(pgid = group.id(), program = %task.program, "local run started");

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut emitter = OutputEmitter::new(events, task.output_limit);
    emitter.started().await;
    let (exited_tx, exited_rx) = watch::channel(None);
    let read_chunk = config.read_chunk.clamp(1, MAX_OUTPUT_CHUNK);
    let (ended, ()) = tokio::join!(
        supervise(
            &mut child,
            group,
            deadline,
            cancel,
            config.kill_grace,
            exited_tx
        ),
        pump(stdout, stderr, &mut emitter, read_chunk, exited_rx),
    );
    guard.disarm();
    script.remove().await;
    let counts = emitter.counts();
    drop(emitter);

    let exit_code = ended.status.as_ref().ok().and_then(ExitStatus::code);
    Ok(match (ended.stop, ended.status) {
        (Some(Stop::Timeout), _) => RunOutcome::ended_by(
            TransportError::Timeout {
                after: task.timeout,
            },
            exit_code,
            counts,
        ),
        (Some(Stop::Cancelled), _) => {
            RunOutcome::ended_by(TransportError::Cancelled, exit_code, counts)
        }
        (None, Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => RunOutcome::exited(code, counts),
            (None, signal) => RunOutcome::ended_by(
                TransportError::Killed {
                    signal: signal.unwrap_or_default(),
                },
                None,
                counts,
            ),
        },
        (None, Err(e)) => return Err(TransportError::failed("waiting for the script failed", e)),
    })
}

/// Waits for the main process, stopping it at the deadline or on cancel; then empties the
/// group of whatever the script left behind, and tells the pump how long to keep draining.
async fn supervise(
    child: &mut Child,
    group: ProcessGroup,
    deadline: Instant,
    cancel: &Cancel,
    grace: Duration,
    exited: watch::Sender<Option<Instant>>,
) -> Ended {
    let mut stop = None;
    let status = tokio::select! {
        status = child.wait() => status,
        () = tokio::time::sleep_until(deadline) => {
            stop = Some(Stop::Timeout);
            terminate(child, group, grace).await
        }
        () = cancel.cancelled() => {
            stop = Some(Stop::Cancelled);
            terminate(child, group, grace).await
        }
    };
    // The main process is gone. The run owns its group: anything left in it (a
    // backgrounded child, a daemon that did not leave the group) is stopped now, so it can
    // neither keep the run open through an inherited stdout nor outlive it.
    group.empty(grace, stop.is_some()).await;
    // A process that left the group (setsid) may still hold the pipes: stop waiting for
    // their end after one more grace period.
    exited.send_replace(Some(Instant::now() + grace));
    Ended { status, stop }
}

/// SIGTERM to the group, SIGKILL after `grace` if the main process is still there.
async fn terminate(
    child: &mut Child,
    group: ProcessGroup,
    grace: Duration,
) -> io::Result<ExitStatus> {
    group.terminate();
    tokio::select! {
        status = child.wait() => status,
        () = tokio::time::sleep(grace) => {
            group.kill();
            child.wait().await
        }
    }
}

/// Reads stdout and stderr as they come and sends them through `emitter`, until both
/// reach their end or the drain deadline set by the supervisor passes.
async fn pump(
    mut stdout: Option<tokio::process::ChildStdout>,
    mut stderr: Option<tokio::process::ChildStderr>,
    emitter: &mut OutputEmitter,
    read_chunk: usize,
    mut exited: watch::Receiver<Option<Instant>>,
) {
    let mut out_buf = vec![0; read_chunk];
    let mut err_buf = vec![0; read_chunk];
    let mut drain_until: Option<Instant> = None;
    while stdout.is_some() || stderr.is_some() {
        if drain_until.is_some_and(|until| Instant::now() >= until) {
            tracing::debug!(
                "output pipes still open after the process group was emptied; stop reading"
            );
            return;
        }
        let Some(until) = drain_until else {
            // The group is alive: read both pipes fairly until it is emptied.
            tokio::select! {
                read = read_some(&mut stdout, &mut out_buf) => match read {
                    Ok(n) if n > 0 => emitter.output(OutputStream::Stdout, &out_buf[..n]).await,
                    _ => stdout = None,
                },
                read = read_some(&mut stderr, &mut err_buf) => match read {
                    Ok(n) if n > 0 => emitter.output(OutputStream::Stderr, &err_buf[..n]).await,
                    _ => stderr = None,
                },
                changed = exited.changed() => {
                    drain_until = *exited.borrow_and_update();
                    if changed.is_err() && drain_until.is_none() {
                        return;
                    }
                }
            }
            continue;
        };
        // The group is empty: drain what is left, output already in the pipes first.
        tokio::select! {
            biased;
            read = read_some(&mut stdout, &mut out_buf) => match read {
                Ok(n) if n > 0 => emitter.output(OutputStream::Stdout, &out_buf[..n]).await,
                _ => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buf) => match read {
                Ok(n) if n > 0 => emitter.output(OutputStream::Stderr, &err_buf[..n]).await,
                _ => stderr = None,
            },
            () = tokio::time::sleep_until(until) => {}
        }
    }
}

async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match reader {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The environment every local run starts from: the variables named in the config, taken
/// from the control node's own environment, and a `PATH`.
fn base_env(config: &LocalConfig) -> Vec<(String, std::ffi::OsString)> {
    let mut env: Vec<(String, std::ffi::OsString)> = config
        .pass_env
        .iter()
        .filter_map(|name| std::env::var_os(name).map(|v| (name.clone(), v)))
        .collect();
    if !env.iter().any(|(name, _)| name == "PATH") {
        env.push(("PATH".to_owned(), DEFAULT_PATH.into()));
    }
    env
}

/// `program` as a path: a bare name (`sh`) is looked up in the `PATH` the script gets
/// (the task's own, else the base environment's), as `execvp` in the child would.
///
/// With a bare name and a changed `PATH`, the standard library cannot use `posix_spawn`
/// and forks the whole control process instead, whose cost grows with its memory: many
/// runs at once (an agent process serving a thousand hosts) then spend seconds of kernel
/// time copying and tearing down page tables. A name found nowhere is kept as it is, so the
/// spawn fails with the same "not found" as before.
fn resolve_program(
    program: &str,
    base: &[(String, std::ffi::OsString)],
    task_env: &std::collections::BTreeMap<String, String>,
) -> std::ffi::OsString {
    if program.is_empty() || program.contains('/') {
        return program.into();
    }
    let path = task_env
        .get("PATH")
        .map(std::ffi::OsString::from)
        .or_else(|| {
            base.iter()
                .find(|(name, _)| name == "PATH")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| DEFAULT_PATH.into());
    for dir in std::env::split_paths(&path) {
        // An empty or relative entry depends on the script's working directory: leave
        // that lookup to the child.
        if !dir.is_absolute() {
            return program.into();
        }
        let candidate = dir.join(program);
        let executable = std::fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable {
            return candidate.into_os_string();
        }
    }
    program.into()
}

async fn check_workdir(dir: &str) -> Result<(), TransportError> {
    let path = dir.to_owned();
    let meta = tokio::task::spawn_blocking(move || std::fs::metadata(path))
        .await
        .map_err(|e| TransportError::failed("checking the working directory was interrupted", e))?;
    match meta {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(TransportError::invalid(
            "workdir",
            format!("{dir} is not a directory"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(TransportError::NotFound {
            path: dir.to_owned(),
        }),
        Err(e) => Err(TransportError::failed(
            format!("cannot use {dir} as the working directory"),
            e,
        )),
    }
}

fn spawn_error(task: &TaskSpec, e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::NotFound => TransportError::unsupported(format!(
            "interpreter `{}` is not installed on this node",
            task.program
        )),
        _ => TransportError::failed(format!("cannot start `{}`", task.program), e),
    }
}

/// The script as a private file: mode 0600 in a fresh 0700 directory, removed after the
/// run.
#[derive(Debug)]
struct ScriptFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl ScriptFile {
    async fn write(config: &LocalConfig, task: &TaskSpec) -> Result<Self, TransportError> {
        let base = config.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let name = task.script_file_name();
        let text = task.script.clone();
        tokio::task::spawn_blocking(move || -> io::Result<Self> {
            use std::io::Write;
            let dir = tempfile::Builder::new()
                .prefix("jobd-run-")
                .permissions(std::fs::Permissions::from_mode(0o700))
                .tempdir_in(&base)?;
            let path = dir.path().join(name);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(text.as_bytes())?;
            file.flush()?;
            Ok(Self { dir, path })
        })
        .await
        .map_err(|e| TransportError::failed("writing the script file was interrupted", e))?
        .map_err(|e| {
            TransportError::failed("cannot write the script to a private temporary file", e)
        })
    }

    async fn remove(self) {
        let dir = self.dir;
        let removed = tokio::task::spawn_blocking(move || dir.close()).await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(error = %e, "cannot remove the script's temporary directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn path_env(path: &str) -> Vec<(String, std::ffi::OsString)> {
        vec![("PATH".to_owned(), path.into())]
    }

    #[test]
    fn a_bare_program_name_is_found_in_the_scripts_path_and_paths_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let not_executable = dir.path().join("data");
        std::fs::write(&not_executable, "").unwrap();
        let base = path_env(&format!("/nonexistent:{}", dir.path().display()));
        let none = BTreeMap::new();

        assert_eq!(resolve_program("tool", &base, &none), tool.into_os_string());
        assert_eq!(resolve_program("data", &base, &none), "data");
        assert_eq!(resolve_program("missing", &base, &none), "missing");
        assert_eq!(resolve_program("./tool", &base, &none), "./tool");
        // The task's own PATH wins over the base environment's.
        let task_env = BTreeMap::from([("PATH".to_owned(), "/nonexistent".to_owned())]);
        assert_eq!(resolve_program("tool", &base, &task_env), "tool");
        // A relative entry depends on the script's directory: left to the child.
        assert_eq!(
            resolve_program("tool", &path_env("bin:/usr/bin"), &none),
            "tool"
        );
    }
}
