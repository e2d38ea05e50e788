//! Local pushes and pulls beyond the conformance suite: file sources, cancels, bad paths.

use std::sync::Arc;

use job_core::transport::{
    Cancel, HostTarget, PushOutcome, PushSource, PushSpec, Transport, TransportError,
};
use job_transport_local::LocalTransport;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn push_from_a_local_file_copies_it_and_verifies_the_checksum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("staged.bin");
    let content: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &content).expect("write source");
    let dest = dir.path().join("out/copy.bin");
    let outcome = LocalTransport::new()
        .push(
            &HostTarget::local(),
            &PushSpec::new(PushSource::LocalFile(source), dest.to_string_lossy()),
            &Cancel::new(),
        )
        .await
        .expect("push");
    match outcome {
        PushOutcome::Written { bytes, sha256 } => {
            assert_eq!(bytes, content.len() as u64);
            assert_eq!(sha256.as_str(), hex(&Sha256::digest(&content)));
        }
        PushOutcome::Skipped => panic!("nothing was there to skip"),
    }
    assert_eq!(std::fs::read(&dest).expect("read back"), content);
}

#[tokio::test]
async fn a_cancelled_push_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cancel = Cancel::new();
    cancel.cancel();
    let result = LocalTransport::new()
        .push(
            &HostTarget::local(),
            &PushSpec::new(
                PushSource::Bytes(Arc::from(&b"data"[..])),
                dir.path().join("f.txt").to_string_lossy(),
            ),
            &cancel,
        )
        .await;
    assert!(
        matches!(result, Err(TransportError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
}

#[tokio::test]
async fn relative_or_directory_destinations_are_refused() {
    for dest in ["relative/path.txt", "/tmp/dir/"] {
        let result = LocalTransport::new()
            .push(
                &HostTarget::local(),
                &PushSpec::new(PushSource::Bytes(Arc::from(&b"x"[..])), dest),
                &Cancel::new(),
            )
            .await;
        assert!(
            matches!(result, Err(TransportError::Invalid { ref field, .. }) if field == "destination"),
            "{dest}: {result:?}"
        );
    }
}
