//! Host-key verification: against a known_hosts file, with trust-on-first-use only as an
//! explicit choice. There is no "off".

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::check_known_hosts_path;
use russh::keys::known_hosts::learn_known_hosts_path;

/// How a server's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key must already be in this known_hosts file.
    KnownHosts(PathBuf),
    /// A host not yet in this known_hosts file is trusted and recorded on first contact; a
    /// recorded key that changed is still refused.
    TrustOnFirstUse(PathBuf),
}

/// What the check concluded, kept so a failed connect can say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKeyVerdict {
    Trusted,
    Learned,
    Unknown,
    Changed,
    Unreadable,
}

// known_hosts is a shared file; serialize our own reads and appends of it.
static KNOWN_HOSTS_LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug)]
pub(crate) struct Verifier {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) policy: HostKeyPolicy,
    pub(crate) verdict: Arc<Mutex<Option<HostKeyVerdict>>>,
}

impl Verifier {
    fn decide(&self, key: &russh::keys::PublicKey) -> HostKeyVerdict {
        let _guard = KNOWN_HOSTS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (path, learn) = match &self.policy {
            HostKeyPolicy::KnownHosts(p) => (p, false),
            HostKeyPolicy::TrustOnFirstUse(p) => (p, true),
        };
        if learn && !path.exists() {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(path, b"");
        }
        match check_known_hosts_path(&self.host, self.port, key, path) {
            Ok(true) => HostKeyVerdict::Trusted,
            Ok(false) if learn => match learn_known_hosts_path(&self.host, self.port, key, path) {
                Ok(()) => HostKeyVerdict::Learned,
                Err(_) => HostKeyVerdict::Unreadable,
            },
            Ok(false) => HostKeyVerdict::Unknown,
            Err(russh::keys::Error::KeyChanged { .. }) => HostKeyVerdict::Changed,
            Err(_) => HostKeyVerdict::Unreadable,
        }
    }
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match server_public_key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => self.decide(key),
            // Host certificates are not supported yet: refuse rather than trust.
            russh::keys::PublicKeyOrCertificate::Certificate(_) => HostKeyVerdict::Unknown,
        };
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
        if verdict == HostKeyVerdict::Learned {
            tracing::warn!(host = %self.host, port = self.port, "trusted a new host key on first use");
        }
        Ok(matches!(
            verdict,
            HostKeyVerdict::Trusted | HostKeyVerdict::Learned
        ))
    }
}
