//! Secrets at rest: the [`SecretBox`] seam and its XChaCha20-Poly1305 implementation.
//!
//! Credentials (and, later, encrypted parameters) are stored sealed under a master key and
//! opened only in memory, at dispatch. The composition chooses where the key lives (`jobd`
//! keeps it in a 0600 file in its data directory); the store only ever sees ciphertext.
//!
//! ```
//! use job_core::secret::{MasterKey, SecretBox};
//!
//! let key = MasterKey::generate();
//! let sealed = key.seal(b"hunter2")?;
//! assert_ne!(&sealed[..], b"hunter2");
//! assert_eq!(key.open(&sealed)?, b"hunter2");
//! # Ok::<(), job_core::Error>(())
//! ```

use std::fmt;

use chacha20poly1305::aead::{Aead, Generate, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::Serialize;

use crate::model::CredentialSecret;
use crate::{Error, Result};

/// Seals and opens secrets. Implementations must authenticate what they seal: opening
/// anything altered, or sealed under another key, is an error.
pub trait SecretBox: Send + Sync + fmt::Debug {
    /// Encrypts `plaintext`; the result carries everything needed to open it but the key.
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>>;
    /// Decrypts what [`SecretBox::seal`] produced.
    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>>;
}

/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Version byte in front of every sealed value, so the format can change later.
const FORMAT_V1: u8 = 1;

/// A 256-bit master key; seals with XChaCha20-Poly1305 and a random 192-bit nonce per value
/// (`version byte ‖ nonce ‖ ciphertext+tag`).
#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&Key::generate()),
        }
    }

    /// The key from its raw bytes; anything but 32 bytes is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key = Key::try_from(bytes).map_err(|_| {
            Error::invalid(
                "master_key",
                format!("must be {MASTER_KEY_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// A new random key and its raw bytes (to be written somewhere private).
    pub fn generate_bytes() -> [u8; MASTER_KEY_LEN] {
        Key::generate().into()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(******)")
    }
}

impl SecretBox for MasterKey {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce = XNonce::generate();
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| Error::invalid("secret", "could not be encrypted"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        let refused = || {
            Error::invalid(
                "secret",
                "cannot be decrypted (altered, or sealed under another master key)",
            )
        };
        let (&version, rest) = sealed.split_first().ok_or_else(refused)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| refused())?;
        self.cipher
            .decrypt(&nonce, ciphertext)
            .map_err(|_| refused())
    }
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SecretWire<'a> {
    Password {
        password: &'a str,
    },
    PrivateKey {
        private_key: &'a str,
        passphrase: Option<&'a str>,
    },
}

/// Seals a credential's secret for storage in
/// [`Credential::secret_ciphertext`](crate::model::Credential::secret_ciphertext).
pub fn seal_credential(secrets: &dyn SecretBox, secret: &CredentialSecret) -> Result<Vec<u8>> {
    let wire = match secret {
        CredentialSecret::Password { password } => SecretWire::Password { password },
        CredentialSecret::PrivateKey {
            private_key,
            passphrase,
        } => SecretWire::PrivateKey {
            private_key,
            passphrase: passphrase.as_deref(),
        },
    };
    let plain =
        serde_json::to_vec(&wire).map_err(|_| Error::invalid("secret", "could not be encoded"))?;
    secrets.seal(&plain)
}

/// Opens what [`seal_credential`] sealed.
pub fn open_credential(secrets: &dyn SecretBox, sealed: &[u8]) -> Result<CredentialSecret> {
    let plain = secrets.open(sealed)?;
    serde_json::from_slice(&plain)
        .map_err(|_| Error::invalid("secret", "decrypted to something that is not a credential"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_under_its_own_key_and_unaltered() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"s3cret").unwrap();
        assert_eq!(key.open(&sealed).unwrap(), b"s3cret");
        assert!(MasterKey::generate().open(&sealed).is_err());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open(&altered).is_err());
        assert!(key.open(&[]).is_err());
        assert!(key.open(&[FORMAT_V1, 1, 2]).is_err());
        // Two seals of the same value differ (fresh nonce).
        assert_ne!(key.seal(b"s3cret").unwrap(), sealed);
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_by_name() {
        let err = MasterKey::from_bytes(&[0; 16]).unwrap_err().to_string();
        assert!(err.contains("master_key"), "{err}");
        let bytes = MasterKey::generate_bytes();
        let a = MasterKey::from_bytes(&bytes).unwrap();
        let b = MasterKey::from_bytes(&bytes).unwrap();
        assert_eq!(b.open(&a.seal(b"x").unwrap()).unwrap(), b"x");
    }

    #[test]
    fn credentials_round_trip_and_never_show_in_debug() {
        let key = MasterKey::generate();
        for secret in [
            CredentialSecret::Password {
                password: "pw".into(),
            },
            CredentialSecret::PrivateKey {
                private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\n…".into(),
                passphrase: Some("pp".into()),
            },
        ] {
            let sealed = seal_credential(&key, &secret).unwrap();
            assert_eq!(open_credential(&key, &sealed).unwrap(), secret);
        }
        assert_eq!(format!("{key:?}"), "MasterKey(******)");
    }
}
