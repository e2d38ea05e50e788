//! What to run, and where.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::TransportError;
use crate::model::{CredentialSecret, Os};
use crate::values::{Address, Port, TimeoutSecs};

/// One host as a transport needs it: a name for messages, its OS and how to reach it,
/// secrets already decrypted (in memory only).
#[derive(Debug, Clone)]
pub struct HostTarget {
    /// The target's name, for messages and logs.
    pub name: String,
    /// Its operating system.
    pub os: Os,
    /// How it is reached; a transport refuses kinds it does not serve with
    /// [`TransportError::Unsupported`].
    pub access: HostAccess,
}

impl HostTarget {
    /// The control node itself.
    pub fn local() -> Self {
        Self {
            name: "localhost".to_owned(),
            os: if cfg!(windows) {
                Os::Windows
            } else {
                Os::Linux
            },
            access: HostAccess::Local,
        }
    }

    /// Refuses a target that this transport (`kind`) does not serve.
    pub fn unsupported_by(&self, kind: &str) -> TransportError {
        TransportError::unsupported(format!(
            "the {kind} transport cannot reach target `{}` ({} access)",
            self.name,
            self.access.as_str()
        ))
    }
}

/// How a transport reaches a host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HostAccess {
    /// The control node itself, as local processes.
    Local,
    /// Agentless, over SSH.
    Ssh(SshAccess),
    /// A resident `jobd agent`.
    Agent {
        /// The agent's id, as it registers itself.
        agent_id: String,
    },
}

impl HostAccess {
    /// Wire name: `local`, `ssh`, `agent`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Ssh(_) => "ssh",
            Self::Agent { .. } => "agent",
        }
    }
}

/// Where and as whom to log in over SSH. The secret is decrypted, in memory only; `Debug`
/// masks it.
#[derive(Debug, Clone)]
pub struct SshAccess {
    /// The host's address.
    pub address: Address,
    /// Its SSH port.
    pub port: Port,
    /// The login user.
    pub user: String,
    /// The password or private key.
    pub secret: CredentialSecret,
}

/// One script to run on one target: the interpreter, the script, its environment,
/// working directory and timeout.
///
/// The script is handed to the interpreter as a private temporary file (readable by the
/// run's user only, removed after the run): the command is
/// `program args… <script-file> script_args…`, with an empty stdin. The script never
/// appears on a command line. `Debug` shows the script's length and the environment's
/// names, never their text: a rendered script may hold decrypted secrets.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskSpec {
    /// The interpreter: a program name looked up in the target's `PATH`, or a path.
    pub program: String,
    /// Arguments before the script file (e.g. `-NoProfile -File` for `pwsh`).
    pub args: Vec<String>,
    /// The script's text, already rendered.
    pub script: String,
    /// The script file's extension without the dot (`sh`, `py`, `ps1`; empty for none):
    /// some interpreters insist on one.
    pub script_extension: String,
    /// Arguments after the script file: the script's positional parameters.
    pub script_args: Vec<String>,
    /// Environment variables set for the script, on top of the transport's base
    /// environment.
    pub env: BTreeMap<String, String>,
    /// The working directory on the target; `None` is the transport's default (the login
    /// user's home for SSH, the control node's working directory for local runs).
    pub workdir: Option<String>,
    /// How long the run may take, counted from the call to [`super::Transport::run`].
    pub timeout: Duration,
    /// At most this many bytes of each stream are sent as events; the rest is read and
    /// counted, not sent. `None`: everything is sent.
    pub output_limit: Option<u64>,
    /// A stable name for this one run of the task on this one target, given by the caller
    /// (the engine uses `<execution id>-<host index>`): a transport whose runs outlive the
    /// control node (the agent transport) names the run by it, so that
    /// [`super::Transport::resume`] can find it again after a restart. Letters, digits and
    /// `-` only. `None`: the transport picks a name of its own.
    pub run_key: Option<String>,
}

impl TaskSpec {
    /// A script run by `program` (no extra arguments, no extension), with the default
    /// timeout of 600 s.
    pub fn new(program: impl Into<String>, script: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            script: script.into(),
            script_extension: String::new(),
            script_args: Vec::new(),
            env: BTreeMap::new(),
            workdir: None,
            timeout: TimeoutSecs::DEFAULT.as_duration(),
            output_limit: None,
            run_key: None,
        }
    }

    /// The same task with the run key `key` (see [`TaskSpec::run_key`]).
    pub fn with_run_key(mut self, key: impl Into<String>) -> Self {
        self.run_key = Some(key.into());
        self
    }

    /// A bash script.
    pub fn bash(script: impl Into<String>) -> Self {
        Self::new("bash", script).with_extension("sh")
    }

    /// A Python 3 script.
    pub fn python3(script: impl Into<String>) -> Self {
        Self::new("python3", script).with_extension("py")
    }

    /// A PowerShell script, run by `pwsh` without profile or prompts.
    pub fn pwsh(script: impl Into<String>) -> Self {
        Self::new("pwsh", script)
            .with_args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
            .with_extension("ps1")
    }

    /// The same task with interpreter arguments `args` (before the script file).
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The same task with the script file extension `ext` (without the dot).
    pub fn with_extension(mut self, ext: impl Into<String>) -> Self {
        self.script_extension = ext.into();
        self
    }

    /// The same task with positional parameters `args` for the script.
    pub fn with_script_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.script_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The same task with the environment variable `name` set to `value`.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// The same task run in `dir`.
    pub fn with_workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// The same task with the timeout `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same task sending at most `bytes` of each stream.
    pub fn with_output_limit(mut self, bytes: u64) -> Self {
        self.output_limit = Some(bytes);
        self
    }

    /// Checks what every transport relies on: a program, no NUL bytes in anything that
    /// becomes an argument, a path or an environment entry, environment names without
    /// `=`, a plain extension, a timeout above zero.
    pub fn validate(&self) -> Result<(), TransportError> {
        fn no_nul(field: &str, value: &str) -> Result<(), TransportError> {
            if value.contains('\0') {
                return Err(TransportError::invalid(field, "must not contain NUL bytes"));
            }
            Ok(())
        }
        if self.program.trim().is_empty() {
            return Err(TransportError::invalid("program", "must not be empty"));
        }
        no_nul("program", &self.program)?;
        for (i, a) in self.args.iter().enumerate() {
            no_nul(&format!("args[{i}]"), a)?;
        }
        for (i, a) in self.script_args.iter().enumerate() {
            no_nul(&format!("script_args[{i}]"), a)?;
        }
        for (name, value) in &self.env {
            let field = format!("env.{name}");
            if name.is_empty() || name.contains('=') {
                return Err(TransportError::invalid(
                    field,
                    "a variable name must be non-empty and without `=`",
                ));
            }
            no_nul(&field, name)?;
            no_nul(&field, value)?;
        }
        if let Some(dir) = &self.workdir {
            if dir.is_empty() {
                return Err(TransportError::invalid("workdir", "must not be empty"));
            }
            no_nul("workdir", dir)?;
        }
        if self.script_extension.len() > 16
            || !self
                .script_extension
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(TransportError::invalid(
                "script_extension",
                "must be at most 16 letters or digits",
            ));
        }
        if self.timeout.is_zero() {
            return Err(TransportError::invalid("timeout", "must be above zero"));
        }
        Ok(())
    }

    /// The script file's name: `script` plus the extension, if any.
    pub fn script_file_name(&self) -> String {
        if self.script_extension.is_empty() {
            "script".to_owned()
        } else {
            format!("script.{}", self.script_extension)
        }
    }
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("script", &format_args!("<{} bytes>", self.script.len()))
            .field("script_extension", &self.script_extension)
            .field("script_args", &self.script_args.len())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("workdir", &self.workdir)
            .field("timeout", &self.timeout)
            .field("output_limit", &self.output_limit)
            .field("run_key", &self.run_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_script_or_env_values() {
        let task = TaskSpec::bash("echo hunter2").with_env("DB_PASSWORD", "s3cret");
        let shown = format!("{task:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("DB_PASSWORD"), "{shown}");
    }

    #[test]
    fn malformed_specs_are_refused_naming_the_field() {
        let field = |t: TaskSpec| match t.validate() {
            Err(TransportError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(field(TaskSpec::new(" ", "x")), "program");
        assert_eq!(field(TaskSpec::bash("x").with_env("A=B", "1")), "env.A=B");
        assert_eq!(
            field(TaskSpec::bash("x").with_extension("../sh")),
            "script_extension"
        );
        assert_eq!(
            field(TaskSpec::bash("x").with_timeout(Duration::ZERO)),
            "timeout"
        );
        assert_eq!(
            field(TaskSpec::bash("x").with_script_args(["a\0b"])),
            "script_args[0]"
        );
        assert!(TaskSpec::pwsh("Write-Output 1").validate().is_ok());
    }
}
