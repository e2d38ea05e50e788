//! What several benchmarks share: a pending script execution of many hosts, built the way
//! a launch would store it.

use chrono::Utc;
use job_core::ids::{ExecutionId, TargetId, TeamId};
use job_core::model::{
    ActorKind, Execution, ExecutorSnapshot, HostRun, JobType, Os, ScriptLanguage, TargetSnapshot,
    TaskSnapshot, TriggerSource,
};
use job_core::status::{ExecutionStatus, HostCounters, HostStatus};
use job_core::values::{Address, Name, TimeoutSecs};

/// A `pending` shell execution named `name` running `script` on `n` hosts of `mode`
/// (`agentless`, `agent`, `local`); host `i` is called `host(i).0` at address `host(i).1`.
pub(crate) fn pending_execution(
    team: TeamId,
    name: &str,
    script: &str,
    n: usize,
    mode: &str,
    host: impl Fn(usize) -> (String, String),
) -> (Execution, Vec<HostRun>) {
    let id = ExecutionId::new();
    let e = Execution {
        id,
        team_id: team,
        name: Name::parse("name", name).unwrap(),
        job_type: JobType::Script,
        trigger_source: TriggerSource::Manual,
        executor: ExecutorSnapshot {
            actor: ActorKind::Scheduler,
            label: "bench".into(),
        },
        task: TaskSnapshot::Script {
            language: ScriptLanguage::Shell,
            rendered: script.into(),
            script_version_id: None,
            params: Default::default(),
        },
        timeout: TimeoutSecs::new("timeout", 300).unwrap(),
        status: ExecutionStatus::Pending,
        counters: HostCounters::all_pending(n as u32),
        callback_url: None,
        re_executed_from: None,
        cron_job_id: None,
        confirmation: None,
        created_at: Utc::now(),
        started_at: None,
        finished_at: None,
        cancel_requested_at: None,
        rolling: None,
        paused_at: None,
    };
    let hosts = (0..n)
        .map(|i| {
            let (name, address) = host(i);
            HostRun {
                execution_id: id,
                index: i as u32,
                target: TargetSnapshot {
                    target_id: TargetId::new(),
                    name: Name::parse("name", &name).unwrap(),
                    address: Address::parse("address", &address).unwrap(),
                    os: Os::Linux,
                    mode: mode.into(),
                },
                status: HostStatus::Pending,
                exit_code: None,
                error: None,
                started_at: None,
                finished_at: None,
                stdout_bytes: 0,
                stderr_bytes: 0,
                output_truncated: false,
            }
        })
        .collect();
    (e, hosts)
}
