//! Launching executions: the use case behind Quick Execute, the open APIs, cron and
//! re-execute.
//!
//! A launch checks, in order: the actor may use the team's assets; the target selector
//! names at least one of the team's targets, and every explicitly named target or address
//! exists in the team (another team's target answers exactly like a missing one); the script
//! renders with its parameters; the rendered script passes the high-risk command rules
//! (`confirm`-level hits only with an explicit confirmation, which is recorded). Only then
//! is a `pending` execution stored with one host run per target — snapshots of the targets
//! and of the rendered script, secrets masked — and the engines are woken through the bus
//! ([`EventBus::notify_pending`]) to pick it up.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::bus::EventBus;
use crate::ids::{CronJobId, ExecutionId, ScriptVersionId, TeamId};
use crate::model::{
    Actor, ConfirmationRecord, Execution, ExecutorSnapshot, HostRun, JobType, ParamDef, Rolling,
    ScriptLanguage, Target, TargetSelector, TargetSnapshot, TaskSnapshot, TriggerSource,
};
use crate::policy::{Access, CommandPolicy, authorize, builtin_command_rules};
use crate::status::{ExecutionStatus, HostCounters, HostStatus};
use crate::store::{Store, StoreExt, TeamScope};
use crate::template::{Params, render_script};
use crate::values::{CallbackUrl, Name, ScriptContent, TimeoutSecs};
use crate::{Error, Result};

/// A request to run a script now.
#[derive(Debug, Clone)]
pub struct ScriptLaunch {
    /// The team whose targets and rules apply.
    pub team_id: TeamId,
    /// A name for the execution.
    pub name: Name,
    /// The script's language.
    pub language: ScriptLanguage,
    /// The script template (Jinja2 syntax).
    pub content: ScriptContent,
    /// Parameter definitions (from a library script version); empty for an inline script,
    /// whose `params` are then plain values.
    pub param_defs: Vec<ParamDef>,
    /// Parameter values by name.
    pub params: BTreeMap<String, String>,
    /// The library version the script came from, if any.
    pub script_version_id: Option<ScriptVersionId>,
    /// Where to run it.
    pub targets: TargetSelector,
    /// Timeout of each host run.
    pub timeout: TimeoutSecs,
    /// The caller explicitly confirms `confirm`-level rule hits.
    pub confirm: bool,
    /// Where to post the result when it is final (checked by a
    /// [`CallbackGuard`](crate::callback::CallbackGuard) at the edge).
    pub callback_url: Option<CallbackUrl>,
    /// How it was started.
    pub trigger_source: TriggerSource,
    /// The cron job that fires it, if any.
    pub cron_job_id: Option<CronJobId>,
    /// Run the hosts in batches (see [`Rolling`]); `None` runs them all at once.
    pub rolling: Option<Rolling>,
}

/// Stores a `pending` script execution after every check described in the [module
/// documentation](self); returns it.
pub async fn launch_script(
    store: &dyn Store,
    bus: &dyn EventBus,
    actor: &Actor,
    request: ScriptLaunch,
    now: DateTime<Utc>,
) -> Result<Execution> {
    authorize(actor, request.team_id, Access::Use, "team")?;
    let params = if request.param_defs.is_empty() {
        Params::plain(&request.params)?
    } else {
        Params::resolve(&request.param_defs, &request.params)?
    };
    let rendered = render_script(request.language, request.content.as_str(), &params)?;
    if rendered.script() != rendered.snapshot() {
        // The engine runs the stored snapshot, in which secrets are masked; running it
        // would silently pass `******` to the script. Refuse until dispatch-time decryption
        // exists.
        return Err(Error::invalid(
            "params",
            "encrypted parameters cannot be run by this version yet",
        ));
    }
    // Refuse a shebang that names a program outside the whitelist, or another language's
    // interpreter, now rather than when the hosts run it.
    crate::interpreter::select(request.language, rendered.snapshot())?;
    let prepared = Prepared {
        team_id: request.team_id,
        name: request.name,
        language: request.language,
        rendered: rendered.snapshot().to_owned(),
        masked_params: rendered.masked_params().clone(),
        script_version_id: request.script_version_id,
        targets: request.targets,
        timeout: request.timeout,
        confirm: request.confirm,
        callback_url: request.callback_url.map(CallbackUrl::into_string),
        trigger_source: request.trigger_source,
        cron_job_id: request.cron_job_id,
        re_executed_from: None,
        rolling: request.rolling,
    };
    store_launch(store, bus, actor, prepared, now).await
}

/// Launches a new execution with the same script, parameters, targets, timeout, callback and
/// rolling plan as the final execution `id`, re-checking team access, the targets (they must still exist
/// in the team) and the high-risk rules as they are now.
pub async fn re_execute(
    store: &dyn Store,
    bus: &dyn EventBus,
    actor: &Actor,
    id: ExecutionId,
    confirm: bool,
    now: DateTime<Utc>,
) -> Result<Execution> {
    let previous = store.get_execution(&TeamScope::of(actor), id).await?;
    authorize(
        actor,
        previous.team_id,
        Access::Use,
        &format!("execution {id}"),
    )?;
    previous.status.ensure_re_executable()?;
    let TaskSnapshot::Script {
        language,
        rendered,
        script_version_id,
        params,
    } = previous.task.clone()
    else {
        return Err(Error::invalid(
            "job_type",
            format!("{} executions cannot be re-executed yet", previous.job_type),
        ));
    };
    if params.values().any(|v| v == crate::template::MASK) {
        return Err(Error::invalid(
            "params",
            "an execution with encrypted parameters cannot be re-executed: its secrets were never stored",
        ));
    }
    let hosts = store.all_host_runs(&TeamScope::of(actor), id).await?;
    let targets = TargetSelector {
        target_ids: hosts.iter().map(|h| h.target.target_id).collect(),
        ..TargetSelector::default()
    };
    let prepared = Prepared {
        team_id: previous.team_id,
        name: previous.name,
        language,
        rendered,
        masked_params: params,
        script_version_id,
        targets,
        timeout: previous.timeout,
        confirm,
        callback_url: previous.callback_url,
        trigger_source: previous.trigger_source,
        cron_job_id: previous.cron_job_id,
        re_executed_from: Some(id),
        rolling: previous.rolling,
    };
    store_launch(store, bus, actor, prepared, now).await
}

/// One source of a file distribution: a file on one of the team's targets.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// The target the file is read from.
    pub target_id: crate::ids::TargetId,
    /// Its absolute path there.
    pub path: crate::policy::TargetPath,
}

/// A request to copy files from targets of the team to other targets of the team.
#[derive(Debug, Clone)]
pub struct FileLaunch {
    /// The team whose targets and rules apply.
    pub team_id: TeamId,
    /// A name for the execution.
    pub name: Name,
    /// The files to copy (each is read once per execution, at most 64 MiB).
    pub sources: Vec<FileSource>,
    /// The directory on each target the files are written into, under their own names.
    pub destination: crate::policy::TargetPath,
    /// Whether a file that exists at the destination is replaced (else it is kept).
    pub overwrite: bool,
    /// Where to copy them.
    pub targets: TargetSelector,
    /// Timeout of each host's copies.
    pub timeout: TimeoutSecs,
    /// The caller explicitly confirms `confirm`-level path rule hits.
    pub confirm: bool,
    /// Where to post the result when it is final (checked by a
    /// [`CallbackGuard`](crate::callback::CallbackGuard) at the edge).
    pub callback_url: Option<CallbackUrl>,
    /// How it was started.
    pub trigger_source: TriggerSource,
}

/// Stores a `pending` file distribution after the checks of [`launch_script`] that apply
/// (team access, targets) and these: every source target is one of the team's (another
/// team's answers exactly like a missing one), every source path and the destination are
/// absolute canonical paths, and the destination passes the team's path rules. Returns it.
pub async fn launch_file_distribution(
    store: &dyn Store,
    bus: &dyn EventBus,
    actor: &Actor,
    request: FileLaunch,
    now: DateTime<Utc>,
) -> Result<Execution> {
    authorize(actor, request.team_id, Access::Use, "team")?;
    if request.sources.is_empty() {
        return Err(Error::invalid("file_source_list", "name at least one file"));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, source) in request.sources.iter().enumerate() {
        let name = source.path.as_str().rsplit('/').next().unwrap_or_default();
        if !names.insert(name.to_owned()) {
            return Err(Error::invalid(
                format!("file_source_list[{i}]"),
                format!(
                    "a second file named `{name}`: they would land on the same destination path"
                ),
            ));
        }
    }
    let scope = TeamScope::team(request.team_id);
    for (i, source) in request.sources.iter().enumerate() {
        store
            .get_target(&scope, source.target_id)
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(format!(
                    "file_source_list[{i}].target_id: target {}",
                    source.target_id
                )),
                other => other,
            })?;
    }
    let targets = resolve_targets(store, request.team_id, &request.targets).await?;
    let rules = store.list_path_rules(&scope).await?;
    let confirmed = crate::policy::PathPolicy::compile(&rules)?.check(
        Some(request.team_id),
        &request.destination,
        request.confirm,
    )?;
    let id = ExecutionId::new();
    let hosts = host_runs(id, &targets);
    let task = TaskSnapshot::FileDistribution {
        sources: request
            .sources
            .iter()
            .map(|s| crate::model::DistributionSource::Target {
                target_id: s.target_id,
                path: s.path.to_string(),
            })
            .collect(),
        destination: request.destination.to_string(),
        overwrite: request.overwrite,
    };
    let mut execution = pending_execution(
        id,
        actor,
        (request.team_id, request.name),
        (JobType::FileDistribution, task),
        request.timeout,
        hosts.len(),
        confirmed,
        now,
    );
    execution.trigger_source = request.trigger_source;
    execution.callback_url = request.callback_url.map(CallbackUrl::into_string);
    store.create_execution(&execution, &hosts).await?;
    bus.notify_pending().await;
    Ok(execution)
}

/// A `pending` execution of `hosts` hosts launched by `actor` now, with the confirmed rule
/// hits recorded; manual, without callback, cron job, rolling plan or predecessor (the
/// caller sets those).
#[allow(clippy::too_many_arguments)]
fn pending_execution(
    id: ExecutionId,
    actor: &Actor,
    (team_id, name): (TeamId, Name),
    (job_type, task): (JobType, TaskSnapshot),
    timeout: TimeoutSecs,
    hosts: usize,
    confirmed: Vec<crate::PolicyHit>,
    now: DateTime<Utc>,
) -> Execution {
    Execution {
        id,
        team_id,
        name,
        job_type,
        trigger_source: TriggerSource::Manual,
        executor: ExecutorSnapshot {
            actor: actor.kind.clone(),
            label: actor.label(),
        },
        task,
        timeout,
        status: ExecutionStatus::Pending,
        counters: HostCounters::all_pending(hosts as u32),
        callback_url: None,
        re_executed_from: None,
        cron_job_id: None,
        confirmation: (!confirmed.is_empty()).then(|| ConfirmationRecord {
            by: actor.label(),
            at: now,
            hits: confirmed,
        }),
        created_at: now,
        started_at: None,
        finished_at: None,
        cancel_requested_at: None,
        rolling: None,
        paused_at: None,
    }
}

/// One pending host run per target, in order.
fn host_runs(id: ExecutionId, targets: &[Target]) -> Vec<HostRun> {
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| HostRun {
            execution_id: id,
            index: i as u32,
            target: TargetSnapshot {
                target_id: t.id,
                name: t.name.clone(),
                address: t.address.clone(),
                os: t.os,
                mode: t.mode.as_str().to_owned(),
            },
            status: HostStatus::Pending,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            stdout_bytes: 0,
            stderr_bytes: 0,
            output_truncated: false,
        })
        .collect()
}

/// A rendered script ready to be checked and stored.
struct Prepared {
    team_id: TeamId,
    name: Name,
    language: ScriptLanguage,
    rendered: String,
    masked_params: BTreeMap<String, String>,
    script_version_id: Option<ScriptVersionId>,
    targets: TargetSelector,
    timeout: TimeoutSecs,
    confirm: bool,
    callback_url: Option<String>,
    trigger_source: TriggerSource,
    cron_job_id: Option<CronJobId>,
    re_executed_from: Option<ExecutionId>,
    rolling: Option<Rolling>,
}

async fn store_launch(
    store: &dyn Store,
    bus: &dyn EventBus,
    actor: &Actor,
    p: Prepared,
    now: DateTime<Utc>,
) -> Result<Execution> {
    let targets = resolve_targets(store, p.team_id, &p.targets).await?;
    let confirmed = check_command_rules(store, p.team_id, &p.rendered, p.confirm, now).await?;

    let id = ExecutionId::new();
    let hosts = host_runs(id, &targets);
    let task = TaskSnapshot::Script {
        language: p.language,
        rendered: p.rendered,
        script_version_id: p.script_version_id,
        params: p.masked_params,
    };
    let mut execution = pending_execution(
        id,
        actor,
        (p.team_id, p.name),
        (JobType::Script, task),
        p.timeout,
        hosts.len(),
        confirmed,
        now,
    );
    execution.trigger_source = p.trigger_source;
    execution.callback_url = p.callback_url;
    execution.re_executed_from = p.re_executed_from;
    execution.cron_job_id = p.cron_job_id;
    execution.rolling = p.rolling;
    store.create_execution(&execution, &hosts).await?;
    bus.notify_pending().await;
    Ok(execution)
}

/// The team's targets the selector names. Every explicitly named id and address must be
/// one of them; another team's target is reported exactly as a missing one.
async fn resolve_targets(
    store: &dyn Store,
    team: TeamId,
    selector: &TargetSelector,
) -> Result<Vec<Target>> {
    selector.require_some("targets")?;
    let targets = store.resolve_selector(team, selector).await?;
    for (i, id) in selector.target_ids.iter().enumerate() {
        if !targets.iter().any(|t| t.id == *id) {
            return Err(Error::not_found(format!(
                "targets.target_ids[{i}]: target {id}"
            )));
        }
    }
    for (i, ip) in selector.ips.iter().enumerate() {
        if !targets.iter().any(|t| t.address == *ip) {
            return Err(Error::not_found(format!(
                "targets.ips[{i}]: a target with address {ip}"
            )));
        }
    }
    if targets.is_empty() {
        return Err(Error::invalid(
            "targets",
            "the selection matches no target of the team",
        ));
    }
    Ok(targets)
}

/// Checks the rendered script against the team's and the global command rules. A store
/// that was never seeded with the built-in presets still gets them.
async fn check_command_rules(
    store: &dyn Store,
    team: TeamId,
    script: &str,
    confirm: bool,
    now: DateTime<Utc>,
) -> Result<Vec<crate::PolicyHit>> {
    let mut rules = store.list_command_rules(&TeamScope::team(team)).await?;
    if !rules.iter().any(|r| r.built_in) {
        rules.extend(builtin_command_rules(now));
    }
    CommandPolicy::compile(&rules)?.check(Some(team), script, confirm)
}
