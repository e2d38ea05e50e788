//! Files pushed to and pulled from a target.

use std::path::PathBuf;
use std::sync::Arc;

use crate::values::Sha256Hex;

/// Where the bytes of a push come from.
#[derive(Clone)]
pub enum PushSource {
    /// Bytes in memory, shared cheaply between the targets of one distribution.
    Bytes(Arc<[u8]>),
    /// A file on the control node (a staged file's blob), read in pieces, never whole.
    LocalFile(PathBuf),
}

impl std::fmt::Debug for PushSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::LocalFile(p) => f.debug_tuple("LocalFile").field(p).finish(),
        }
    }
}

/// What a push does when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfExists {
    /// Replace it (atomically: readers see the old file or the new one, never a mix).
    #[default]
    Overwrite,
    /// Leave it as it is and report [`PushOutcome::Skipped`].
    Skip,
}

/// One file to write to a target.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushSpec {
    /// The bytes to write.
    pub source: PushSource,
    /// The absolute destination path on the target. Missing parent directories are
    /// created.
    pub destination: String,
    /// What to do when the destination exists.
    pub if_exists: IfExists,
    /// Permission bits of the written file; `None` means `0o644`.
    pub mode: Option<u32>,
    /// The expected sha256 of the source (a staged file's recorded digest). When `None`,
    /// the transport computes it while reading the source. Either way, what landed on the
    /// target is checked against it before the rename.
    pub sha256: Option<Sha256Hex>,
}

impl PushSpec {
    /// A push of `source` to `destination`, overwriting, mode `0o644`, digest computed.
    pub fn new(source: PushSource, destination: impl Into<String>) -> Self {
        Self {
            source,
            destination: destination.into(),
            if_exists: IfExists::Overwrite,
            mode: None,
            sha256: None,
        }
    }

    /// The same push with `if_exists`.
    pub fn with_if_exists(mut self, if_exists: IfExists) -> Self {
        self.if_exists = if_exists;
        self
    }

    /// The same push with permission bits `mode`.
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The same push, checked against the expected digest `sha256`.
    pub fn with_sha256(mut self, sha256: Sha256Hex) -> Self {
        self.sha256 = Some(sha256);
        self
    }

    /// The permission bits to write (`0o644` unless set).
    pub fn mode_or_default(&self) -> u32 {
        self.mode.unwrap_or(0o644) & 0o7777
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The file was written and verified.
    Written {
        /// Its size.
        bytes: u64,
        /// Its sha256, as verified on the target.
        sha256: Sha256Hex,
    },
    /// The destination existed and [`IfExists::Skip`] kept it.
    Skipped,
}

/// One file to read from a target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullSpec {
    /// The absolute path on the target.
    pub path: String,
    /// The largest file accepted, in bytes; larger ones fail with
    /// [`super::TransportError::TooLarge`].
    pub max_bytes: u64,
}

impl PullSpec {
    /// The default size limit, 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

    /// A pull of `path` with the default size limit.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }

    /// The same pull with the size limit `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// The bytes of a pulled file.
#[derive(Clone, PartialEq, Eq)]
pub struct PulledFile {
    /// The content.
    pub data: Vec<u8>,
    /// Its sha256.
    pub sha256: Sha256Hex,
}

impl std::fmt::Debug for PulledFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulledFile")
            .field("bytes", &self.data.len())
            .field("sha256", &self.sha256.as_str())
            .finish()
    }
}
