//! A throwaway `nats-server` with JetStream on a loopback port, for tests that need a real
//! one (never the shared server on 4222).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the harness looks for the server binary, after `$NATS_SERVER` and `$PATH`.
const KNOWN_PATHS: [&str; 3] = [
    "/usr/sbin/nats-server",
    "/usr/bin/nats-server",
    "/usr/local/bin/nats-server",
];

/// A running `nats-server -js` on 127.0.0.1 with its own store directory, killed when
/// dropped. [`NatsServer::restart`] stops it and starts it again on the same port with the
/// same store, as an operator restarting the service would.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// The server binary: `$NATS_SERVER`, else `nats-server` on `$PATH`, else a known
    /// install location. Use it with [`crate::require_service`].
    pub fn binary() -> Result<PathBuf, String> {
        if let Some(path) = std::env::var_os("NATS_SERVER") {
            return Ok(PathBuf::from(path));
        }
        if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let candidate = dir.join("nats-server");
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        KNOWN_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| "no nats-server binary ($NATS_SERVER, $PATH, /usr/sbin)".to_owned())
    }

    /// Whether a server can be started here, for [`crate::require_service`].
    pub fn available() -> Result<(), String> {
        Self::binary().map(|_| ())
    }

    /// Starts a server with JetStream on a free loopback port and waits until it accepts
    /// connections.
    pub fn start() -> Result<Self, String> {
        let binary = Self::binary()?;
        let dir = tempfile::tempdir().map_err(|e| format!("store dir: {e}"))?;
        let port = crate::free_port().map_err(|e| format!("free port: {e}"))?;
        let mut server = Self {
            child: None,
            binary,
            port,
            dir,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (SIGKILL: no goodbye to clients), leaving its store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again after [`NatsServer::stop`], on the same port with the same store;
    /// waits until it accepts connections.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }

    /// Stops it and starts it again on the same port with the same store.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let store = self.dir.path().join("store");
        let log = self.dir.path().join("nats-server.log");
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&store)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("nats-server exited with {status}: {log}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nats-server did not listen on 127.0.0.1:{} within 15 s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
