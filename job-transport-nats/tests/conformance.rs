//! The transport conformance suite from `job_core::testkit::transport`, against a real
//! agent (run in-process) on a throwaway nats-server: every case as its own test, and the
//! whole suite in one go.

mod common;

use job_core::testkit::transport::{self as suite, TestHost};

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(rig) = common::Rig::start("conformance").await else { return };
                let host = TestHost { target: rig.target(), scratch_dir: rig.scratch_dir() };
                suite::$case(&rig.transport, &host).await;
            }
        )*
    };
}

cases!(
    echo_streams_stdout_and_stderr_separately_with_gap_free_seq,
    exit_code_propagates_and_non_zero_fails,
    timeout_kills_the_process_group_and_reports_timeout,
    cancel_kills_the_process_group_and_reports_cancelled,
    a_run_cancelled_before_it_starts_ends_cancelled,
    a_script_that_forks_a_daemon_and_exits_ends_the_run,
    output_is_streamed_while_the_script_runs,
    large_output_arrives_whole_in_bounded_chunks,
    output_past_the_limit_is_counted_but_not_sent,
    script_text_arrives_verbatim,
    the_script_gets_an_empty_stdin_and_its_file_is_removed,
    env_workdir_and_script_args_are_honoured,
    a_missing_workdir_fails_the_run,
    push_writes_atomically_and_verifies_the_checksum,
    push_overwrites_or_skips_an_existing_file,
    push_sets_the_file_mode,
    pull_returns_the_bytes_and_refuses_missing_or_oversized_files,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_against_a_resident_agent() {
    let Some(rig) = common::Rig::start("whole-suite").await else {
        return;
    };
    let host = TestHost {
        target: rig.target(),
        scratch_dir: rig.scratch_dir(),
    };
    suite::run_all(&rig.transport, &host).await;
}
