//! The data directory and what `jobd` keeps in it that is not in the database: the master
//! key (mode 0600), and this node's id, so a restarted node recognises its own executions.

use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hmac::{Hmac, Mac};
use job_core::secret::{MASTER_KEY_LEN, MasterKey};
use sha2::Sha256;

/// The environment variable that supplies the master key (64 hex characters) instead of the
/// key file.
pub(crate) const MASTER_KEY_ENV: &str = "JOBD_MASTER_KEY";

/// Creates the data directory (mode 0700) when it is missing; an existing one is left as it is.
pub(crate) fn prepare_data_dir(dir: &Path) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))
}

/// The raw master key. `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct MasterKeyBytes([u8; MASTER_KEY_LEN]);

impl fmt::Debug for MasterKeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKeyBytes(******)")
    }
}

/// Where the master key came from, for the log (never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `JOBD_MASTER_KEY`.
    Environment,
    /// The key file, which existed.
    File,
    /// The key file, generated now.
    Generated,
}

impl MasterKeyBytes {
    /// The key that seals and opens secrets.
    pub(crate) fn master_key(&self) -> Result<MasterKey, String> {
        MasterKey::from_bytes(&self.0).map_err(|e| e.to_string())
    }

    /// The key `job-http` signs sessions with: HMAC-SHA256(master key, "jobd session v1"),
    /// so it is stable across restarts and independent of the sealing key's use.
    pub(crate) fn session_key(&self) -> [u8; 32] {
        derive(&self.0, b"jobd session v1")
    }
}

fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The master key: `env_value` (the value of `JOBD_MASTER_KEY`) when given, else the key
/// file, else a new random key written to the key file with mode 0600. A key file that its
/// group or others may read is refused.
pub(crate) fn load_master_key(
    env_value: Option<&str>,
    file: &Path,
) -> Result<(MasterKeyBytes, KeySource), String> {
    if let Some(text) = env_value {
        let bytes = parse_hex_key(text)
            .ok_or_else(|| format!("{MASTER_KEY_ENV} must be 64 hexadecimal characters"))?;
        return Ok((MasterKeyBytes(bytes), KeySource::Environment));
    }
    match read_key_file(file)? {
        Some(bytes) => Ok((MasterKeyBytes(bytes), KeySource::File)),
        None => {
            let bytes = MasterKey::generate_bytes();
            match write_new_key_file(file, &bytes) {
                Ok(()) => Ok((MasterKeyBytes(bytes), KeySource::Generated)),
                // Another process wrote it first: use theirs.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => read_key_file(file)?
                    .map(|b| (MasterKeyBytes(b), KeySource::File))
                    .ok_or_else(|| format!("the master key file {} vanished", file.display())),
                Err(e) => Err(format!(
                    "cannot write the master key file {}: {e}",
                    file.display()
                )),
            }
        }
    }
}

fn read_key_file(file: &Path) -> Result<Option<[u8; MASTER_KEY_LEN]>, String> {
    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the master key file {}: {e}",
                file.display()
            ));
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the master key file {} may be read by its group or others (mode {mode:04o}); \
             refusing to use it: run `chmod 600 {}`",
            file.display(),
            file.display()
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the master key file {}: {e}", file.display()))?;
    parse_hex_key(&text).map(Some).ok_or_else(|| {
        format!(
            "the master key file {} does not hold 64 hexadecimal characters",
            file.display()
        )
    })
}

fn write_new_key_file(file: &Path, bytes: &[u8; MASTER_KEY_LEN]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    let written = f
        .write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
        .and_then(|()| f.sync_all());
    if let Err(e) = written {
        // Never leave a half-written key behind for the next start to trip on.
        let _ = std::fs::remove_file(file);
        return Err(e);
    }
    Ok(())
}

fn parse_hex_key(text: &str) -> Option<[u8; MASTER_KEY_LEN]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

/// This node's id: read from `data_dir/node-id`, or made and written there on first start.
/// Stable across restarts, so the engine can take back what an earlier life of this node
/// left running.
pub(crate) fn node_id(data_dir: &Path, fresh: impl FnOnce() -> String) -> Result<String, String> {
    let file = data_dir.join("node-id");
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    }
    let id = fresh();
    std::fs::write(&file, format!("{id}\n"))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use job_core::secret::SecretBox;

    #[test]
    fn a_generated_key_file_is_private_and_the_same_key_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let (first, source) = load_master_key(None, &file).unwrap();
        assert_eq!(source, KeySource::Generated);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, source) = load_master_key(None, &file).unwrap();
        assert_eq!(source, KeySource::File);
        let sealed = first.master_key().unwrap().seal(b"x").unwrap();
        assert_eq!(again.master_key().unwrap().open(&sealed).unwrap(), b"x");
        assert_eq!(first.session_key(), again.session_key());
        assert!(!format!("{first:?}").contains(&hex::encode(first.0)));
    }

    #[test]
    fn a_key_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        load_master_key(None, &file).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_master_key(None, &file).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_key_from_the_environment_must_be_64_hex_characters() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let hexkey = "ab".repeat(32);
        let (_, source) = load_master_key(Some(&hexkey), &file).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert!(!file.exists());
        let err = load_master_key(Some("abcd"), &file).unwrap_err();
        assert!(err.contains(MASTER_KEY_ENV), "{err}");
    }

    #[test]
    fn the_session_key_differs_from_the_master_key() {
        let key = MasterKeyBytes([7; 32]);
        assert_ne!(key.session_key(), [7; 32]);
    }

    #[test]
    fn the_node_id_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = node_id(dir.path(), || "node-a".into()).unwrap();
        let b = node_id(dir.path(), || "node-b".into()).unwrap();
        assert_eq!(a, "node-a");
        assert_eq!(b, "node-a");
    }
}
