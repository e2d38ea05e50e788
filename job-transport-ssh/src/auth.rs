//! How we authenticate to a target.

use std::fmt;
use std::sync::Arc;

use job_core::model::CredentialSecret;
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, decode_secret_key};

use crate::SshError;
use crate::host_key::Verifier;

/// A decrypted login secret, held only in memory for as long as a connection needs it.
#[derive(Clone)]
pub enum SshAuth {
    /// Password authentication.
    Password(String),
    /// Public-key authentication with a private key (OpenSSH or PEM; ed25519, RSA, ECDSA).
    PrivateKey {
        /// The key text.
        pem: String,
        /// Its passphrase, if it is encrypted.
        passphrase: Option<String>,
    },
}

impl fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("SshAuth::Password(******)"),
            Self::PrivateKey { .. } => f.write_str("SshAuth::PrivateKey(******)"),
        }
    }
}

impl From<&CredentialSecret> for SshAuth {
    fn from(s: &CredentialSecret) -> Self {
        match s {
            CredentialSecret::Password { password } => Self::Password(password.clone()),
            CredentialSecret::PrivateKey {
                private_key,
                passphrase,
            } => Self::PrivateKey {
                pem: private_key.clone(),
                passphrase: passphrase.clone(),
            },
        }
    }
}

impl SshAuth {
    /// Decodes the private key, refusing a malformed key or a wrong passphrase.
    pub(crate) fn private_key(
        pem: &str,
        passphrase: Option<&str>,
    ) -> Result<Arc<PrivateKey>, SshError> {
        decode_secret_key(pem, passphrase)
            .map(Arc::new)
            .map_err(|e| SshError::AuthFailed(format!("the private key cannot be used: {e}")))
    }

    /// A key with the RSA hash the server prefers.
    pub(crate) fn with_hash(
        key: Arc<PrivateKey>,
        hash: Option<russh::keys::HashAlg>,
    ) -> PrivateKeyWithHashAlg {
        PrivateKeyWithHashAlg::new(key, hash)
    }

    /// A short, secret-free identity for pooling: the kind and a digest of the secret.
    pub(crate) fn pool_tag(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        match self {
            Self::Password(p) => {
                h.update(b"password\0");
                h.update(p.as_bytes());
            }
            Self::PrivateKey { pem, passphrase } => {
                h.update(b"key\0");
                h.update(pem.as_bytes());
                h.update(b"\0");
                h.update(passphrase.as_deref().unwrap_or("").as_bytes());
            }
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// Authenticates an open connection as `user` with `auth`; a refusal is
/// [`SshError::AuthFailed`].
pub(crate) async fn authenticate(
    handle: &mut client::Handle<Verifier>,
    user: &str,
    auth: &SshAuth,
) -> Result<(), SshError> {
    let result = match auth {
        SshAuth::Password(pw) => handle
            .authenticate_password(user, pw.clone())
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))?,
        SshAuth::PrivateKey { pem, passphrase } => {
            let key = SshAuth::private_key(pem, passphrase.as_deref())?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?
                .flatten();
            handle
                .authenticate_publickey(user, SshAuth::with_hash(key, hash))
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?
        }
    };
    if result.success() {
        Ok(())
    } else {
        Err(SshError::AuthFailed(format!(
            "the target refused the {} for user `{user}`",
            match auth {
                SshAuth::Password(_) => "password",
                SshAuth::PrivateKey { .. } => "key",
            }
        )))
    }
}
