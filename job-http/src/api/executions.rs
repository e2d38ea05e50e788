//! Executions: Quick Execute, listings, details with host runs, stored output, cancel and
//! re-execute. Live output is in [`crate::sse`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use job_core::ids::{ExecutionId, TeamId};
use job_core::launch::{ScriptLaunch, launch_script, re_execute as re_execute_use_case};
use job_core::model::{
    Execution, HostRun, JobType, Rolling, ScriptLanguage, TargetSelector, TriggerSource,
};
use job_core::policy::{Access, authorize};
use job_core::status::ExecutionStatus;
use job_core::store::{ExecutionFilter, MAX_PAGE, OutputCursor, StoreExt, TeamScope};
use job_core::values::{Name, ScriptContent, TimeoutSecs};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{PageOut, page_request, pick_team};
use crate::auth::caller::{Caller, Credentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, OptionalJsonBody, QueryParams, parse_opt};
use crate::sse::OutputOut;

/// `POST /api/v1/executions/quick` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuickBody {
    name: Option<String>,
    team_id: Option<TeamId>,
    /// A language wire name or BlueKing's integer code.
    script_type: Value,
    script_content: String,
    targets: TargetSelector,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    timeout: Option<i64>,
    #[serde(default)]
    confirm: bool,
    callback_url: Option<String>,
    /// Run the hosts in batches: `{"batch": 5 | "10%", "mode": "continue" | "pause_on_failure"}`.
    rolling: Option<Rolling>,
}

/// `POST /api/v1/executions/{id}/re-execute` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReExecuteBody {
    #[serde(default)]
    confirm: bool,
}

/// `GET /api/v1/executions` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    job_type: Option<String>,
    trigger_source: Option<String>,
    team_id: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    name: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /api/v1/executions/{id}/output` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputQuery {
    host: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// A host run as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct HostOut<'a> {
    index: u32,
    target_id: job_core::ids::TargetId,
    name: &'a str,
    address: &'a str,
    mode: &'a str,
    status: job_core::status::HostStatus,
    exit_code: Option<i32>,
    error: Option<&'a str>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    stdout_bytes: u64,
    stderr_bytes: u64,
    output_truncated: bool,
}

impl<'a> From<&'a HostRun> for HostOut<'a> {
    fn from(h: &'a HostRun) -> Self {
        Self {
            index: h.index,
            target_id: h.target.target_id,
            name: h.target.name.as_str(),
            address: h.target.address.as_str(),
            mode: &h.target.mode,
            status: h.status,
            exit_code: h.exit_code,
            error: h.error.as_deref(),
            started_at: h.started_at,
            finished_at: h.finished_at,
            stdout_bytes: h.stdout_bytes,
            stderr_bytes: h.stderr_bytes,
            output_truncated: h.output_truncated,
        }
    }
}

fn param_values(params: BTreeMap<String, Value>) -> ApiResult<BTreeMap<String, String>> {
    params
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ApiError::invalid(
                        format!("params.{k}"),
                        format!("invalid params.{k}: expected a string, number or boolean"),
                    ));
                }
            };
            Ok((k, text))
        })
        .collect()
}

fn created(execution: &Execution) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({ "id": execution.id, "status": execution.status })),
    )
}

pub(crate) async fn quick(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<QuickBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let team_id = pick_team(&caller.actor, body.team_id)?;
    let language = ScriptLanguage::from_wire("script_type", &body.script_type)?;
    let content = ScriptContent::parse("script_content", &body.script_content)?;
    let name = Name::parse("name", body.name.as_deref().unwrap_or("Quick execute"))?;
    let timeout = match body.timeout {
        None => TimeoutSecs::DEFAULT,
        Some(t) => TimeoutSecs::new("timeout", t)?,
    };
    let callback_url = match body.callback_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => Some(
            state
                .config()
                .callback_guard
                .check("callback_url", url)
                .await?,
        ),
    };
    let request = ScriptLaunch {
        team_id,
        name,
        language,
        content,
        param_defs: Vec::new(),
        params: param_values(body.params)?,
        script_version_id: None,
        targets: body.targets,
        timeout,
        confirm: body.confirm,
        callback_url,
        trigger_source: match caller.via {
            Credentials::Token { .. } => TriggerSource::Api,
            Credentials::Session { .. } => TriggerSource::Manual,
        },
        cron_job_id: None,
        rolling: body.rolling,
    };
    let execution = launch_script(
        state.store(),
        state.bus().as_ref(),
        &caller.actor,
        request,
        state.now(),
    )
    .await?;
    Ok(created(&execution))
}

pub(crate) async fn re_execute(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<ReExecuteBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = ExecutionId::parse_field("id", &id)?;
    let execution = re_execute_use_case(
        state.store(),
        state.bus().as_ref(),
        &caller.actor,
        id,
        body.confirm,
        state.now(),
    )
    .await?;
    Ok(created(&execution))
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = ExecutionId::parse_field("id", &id)?;
    let updated = job_core::engine::request_cancel(
        state.store(),
        &**state.bus(),
        &caller.actor,
        id,
        state.now(),
    )
    .await?;
    Ok(Json(json!({ "id": updated.id, "status": updated.status })))
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = ExecutionId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let execution = state.store().get_execution(&scope, id).await?;
    authorize(
        &caller.actor,
        execution.team_id,
        Access::Use,
        &format!("execution {id}"),
    )?;
    let updated =
        job_core::engine::resume_execution(state.store(), &**state.bus(), &scope, id, state.now())
            .await?;
    Ok(Json(json!({ "id": updated.id, "status": updated.status })))
}

fn parse_time(field: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    parse_opt(
        field,
        value,
        |v| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        },
        "an RFC 3339 timestamp (2026-01-31T12:00:00Z)",
    )
}

fn parse_wire<T: serde::de::DeserializeOwned>(
    field: &str,
    value: Option<&str>,
    expected: &str,
) -> ApiResult<Option<T>> {
    parse_opt(
        field,
        value,
        |v| serde_json::from_value(Value::String(v.to_owned())).ok(),
        expected,
    )
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<PageOut<Execution>>> {
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), |v| {
        ExecutionId::parse_field("after", v)
    })?;
    let statuses = q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<ExecutionStatus>())
        .collect::<job_core::Result<Vec<_>>>()?;
    let filter = ExecutionFilter {
        statuses,
        job_type: parse_wire::<JobType>(
            "job_type",
            q.job_type.as_deref(),
            "script, file_distribution or playbook",
        )?,
        trigger_source: parse_wire::<TriggerSource>(
            "trigger_source",
            q.trigger_source.as_deref(),
            "manual, scheduled or api",
        )?,
        team_id: q
            .team_id
            .as_deref()
            .map(|t| TeamId::parse_field("team_id", t))
            .transpose()?,
        cron_job_id: None,
        created_from: parse_time("created_from", q.created_from.as_deref())?,
        created_to: parse_time("created_to", q.created_to.as_deref())?,
        name_contains: q.name.filter(|n| !n.is_empty()),
    };
    let got = state
        .store()
        .list_executions(&TeamScope::of(&caller.actor), &filter, page)
        .await?;
    Ok(Json(PageOut {
        items: got.items,
        next: got.next.map(|n| n.to_string()),
    }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = ExecutionId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let execution = state.store().get_execution(&scope, id).await?;
    let hosts = state.store().all_host_runs(&scope, id).await?;
    let mut out = serde_json::to_value(&execution)
        .map_err(|_| ApiError::unavailable("the execution could not be encoded"))?;
    if let Value::Object(map) = &mut out {
        let hosts: Vec<HostOut<'_>> = hosts.iter().map(HostOut::from).collect();
        map.insert("hosts".to_owned(), json!(hosts));
    }
    Ok(Json(out))
}

/// Parses an output cursor `host:seq`.
pub(crate) fn parse_output_cursor(field: &str, v: &str) -> ApiResult<OutputCursor> {
    v.trim()
        .split_once(':')
        .and_then(|(h, s)| Some((h.trim().parse().ok()?, s.trim().parse().ok()?)))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("invalid {field}: `{v}` is not a cursor `host:seq`"),
            )
        })
}

pub(crate) async fn output(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<OutputQuery>,
) -> ApiResult<Json<PageOut<OutputOut>>> {
    let id = ExecutionId::parse_field("id", &id)?;
    let host = parse_opt(
        "host",
        q.host.as_deref(),
        |v| v.parse::<u32>().ok(),
        "a host index",
    )?;
    let after = match q.after.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(parse_output_cursor("after", v)?),
    };
    let limit = page_request::<()>(q.limit.as_deref(), None, |_| Ok(()))?.limit;
    let scope = TeamScope::of(&caller.actor);
    // Check visibility first, so an empty page never stands for "not yours".
    state.store().get_execution(&scope, id).await?;
    let chunks = state
        .store()
        .read_output(&scope, id, host, after, limit.min(MAX_PAGE))
        .await?;
    let next = (chunks.len() as u32 >= limit)
        .then(|| chunks.last().map(|c| format!("{}:{}", c.host_index, c.seq)))
        .flatten();
    Ok(Json(PageOut {
        items: chunks.iter().map(OutputOut::from).collect(),
        next,
    }))
}
