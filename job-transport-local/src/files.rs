//! Push and pull on the control node's own file system: blocking I/O, run on the blocking
//! pool by the caller.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use job_core::transport::{
    Cancel, IfExists, PullSpec, PulledFile, PushOutcome, PushSource, PushSpec, TransportError,
};
use job_core::values::Sha256Hex;
use sha2::{Digest, Sha256};

/// Size of one read or write while copying and hashing.
const BLOCK: usize = 256 * 1024;

/// Makes temporary names unique within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `spec` to its destination: a temporary name in the same directory, the sha256 of
/// what landed checked, then renamed (or, to skip an existing file without a race,
/// hard-linked) into place.
pub(crate) fn push(spec: &PushSpec, cancel: &Cancel) -> Result<PushOutcome, TransportError> {
    let dest = absolute_path("destination", &spec.destination)?;
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(TransportError::invalid(
            "destination",
            "must name a file, not a directory",
        ));
    };
    if spec.destination.ends_with('/') {
        return Err(TransportError::invalid(
            "destination",
            "must name a file, not a directory",
        ));
    }
    check_cancel(cancel)?;
    fs::create_dir_all(parent)
        .map_err(|e| io_failed(&format!("cannot create {}", parent.display()), e))?;
    if spec.if_exists == IfExists::Skip && dest.symlink_metadata().is_ok() {
        return Ok(PushOutcome::Skipped);
    }

    let temp = TempPath(parent.join(format!(
        ".{}.jobd-{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp.0)
        .map_err(|e| io_failed(&format!("cannot create {}", temp.0.display()), e))?;
    let (bytes, source_digest) = copy_source(&spec.source, &mut file, cancel)?;
    file.sync_all()
        .map_err(|e| io_failed(&format!("cannot write {}", temp.0.display()), e))?;
    drop(file);

    let expected = match &spec.sha256 {
        Some(expected) => expected.clone(),
        None => source_digest,
    };
    let actual = sha256_of_file(&temp.0)?;
    if actual != expected {
        return Err(TransportError::ChecksumMismatch {
            path: spec.destination.clone(),
            expected,
            actual,
        });
    }
    fs::set_permissions(&temp.0, fs::Permissions::from_mode(spec.mode_or_default()))
        .map_err(|e| io_failed(&format!("cannot set the mode of {}", temp.0.display()), e))?;
    check_cancel(cancel)?;

    match spec.if_exists {
        IfExists::Overwrite => fs::rename(&temp.0, &dest)
            .map_err(|e| io_failed(&format!("cannot move the file into {}", dest.display()), e))?,
        IfExists::Skip => match fs::hard_link(&temp.0, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(PushOutcome::Skipped),
            // File systems without hard links: check, then rename (a narrow race).
            Err(_) if dest.symlink_metadata().is_ok() => return Ok(PushOutcome::Skipped),
            Err(_) => fs::rename(&temp.0, &dest).map_err(|e| {
                io_failed(&format!("cannot move the file into {}", dest.display()), e)
            })?,
        },
    }
    // Make the rename durable; a failure here does not undo a complete, verified file.
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
    Ok(PushOutcome::Written {
        bytes,
        sha256: actual,
    })
}

/// Reads the file `spec.path`, refusing one larger than `spec.max_bytes`.
pub(crate) fn pull(spec: &PullSpec, cancel: &Cancel) -> Result<PulledFile, TransportError> {
    let path = absolute_path("path", &spec.path)?;
    check_cancel(cancel)?;
    let file = File::open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => TransportError::NotFound {
            path: spec.path.clone(),
        },
        _ => io_failed(&format!("cannot open {}", spec.path), e),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| io_failed(&format!("cannot read {}", spec.path), e))?;
    if meta.is_dir() {
        return Err(TransportError::invalid(
            "path",
            format!("{} is a directory", spec.path),
        ));
    }
    let too_large = || TransportError::TooLarge {
        path: spec.path.clone(),
        limit: spec.max_bytes,
    };
    if meta.len() > spec.max_bytes {
        return Err(too_large());
    }
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(spec.max_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| io_failed(&format!("cannot read {}", spec.path), e))?;
    if data.len() as u64 > spec.max_bytes {
        return Err(too_large());
    }
    let sha256 = hex_digest(Sha256::digest(&data).as_slice())?;
    Ok(PulledFile { data, sha256 })
}

fn copy_source(
    source: &PushSource,
    out: &mut File,
    cancel: &Cancel,
) -> Result<(u64, Sha256Hex), TransportError> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let write_err = |e| io_failed("cannot write the temporary file", e);
    match source {
        PushSource::Bytes(data) => {
            for block in data.chunks(BLOCK) {
                check_cancel(cancel)?;
                out.write_all(block).map_err(write_err)?;
                hasher.update(block);
                bytes += block.len() as u64;
            }
        }
        PushSource::LocalFile(path) => {
            let mut input = File::open(path)
                .map_err(|e| io_failed(&format!("cannot open the source {}", path.display()), e))?;
            let mut buf = vec![0; BLOCK];
            loop {
                check_cancel(cancel)?;
                let n = match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(io_failed(
                            &format!("cannot read the source {}", path.display()),
                            e,
                        ));
                    }
                };
                out.write_all(&buf[..n]).map_err(write_err)?;
                hasher.update(&buf[..n]);
                bytes += n as u64;
            }
        }
    }
    Ok((bytes, hex_digest(hasher.finalize().as_slice())?))
}

fn sha256_of_file(path: &Path) -> Result<Sha256Hex, TransportError> {
    let read_err = |e| io_failed(&format!("cannot read back {}", path.display()), e);
    let mut file = File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; BLOCK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    hex_digest(hasher.finalize().as_slice())
}

/// Lowercase hex of a digest, as the core's checked type.
pub(crate) fn hex_digest(digest: &[u8]) -> Result<Sha256Hex, TransportError> {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    Sha256Hex::parse("sha256", &hex).map_err(|e| TransportError::failed("bad digest", e))
}

fn absolute_path(field: &str, path: &str) -> Result<PathBuf, TransportError> {
    if path.contains('\0') {
        return Err(TransportError::invalid(field, "must not contain NUL bytes"));
    }
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(TransportError::invalid(field, "must be an absolute path"));
    }
    Ok(p)
}

fn check_cancel(cancel: &Cancel) -> Result<(), TransportError> {
    if cancel.is_cancelled() {
        return Err(TransportError::Cancelled);
    }
    Ok(())
}

fn io_failed(what: &str, e: io::Error) -> TransportError {
    TransportError::failed(format!("{what}: {e}"), e)
}

/// A temporary file that is removed when dropped, unless it was renamed away.
#[derive(Debug)]
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        // After a rename the name no longer exists; after a hard link it must go.
        let _ = fs::remove_file(&self.0);
    }
}
