//! The methods: each reads its fields, calls the job-core use case or store read scoped to
//! the caller's team, and returns the reply's `data`.

use std::collections::BTreeMap;

use job_core::Error;
use job_core::engine::request_cancel;
use job_core::ids::{ExecutionId, TargetId};
use job_core::launch::{
    FileLaunch, FileSource, ScriptLaunch, launch_file_distribution, launch_script,
};
use job_core::model::Os;
use job_core::model::{Execution, OutputStream, ScriptLanguage, TargetSelector, TriggerSource};
use job_core::policy::TargetPath;
use job_core::store::{AssetFilter, MAX_PAGE, PageRequest, StoreExt};
use job_core::values::{CallbackUrl, Name, ScriptContent, TimeoutSecs};
use serde_json::{Value, json};

use super::Context;
use super::request::{Caller, Fields, kind};

/// The most task ids one `job_status_batch_query` may name.
pub const MAX_BATCH: usize = 100;

/// `job_script_execute`: launches a script on the team's targets; answers `{"task_id"}`
/// as soon as the execution is stored (it runs afterwards).
pub(crate) async fn script_execute(ctx: &Context, mut f: Fields) -> Result<Value, Error> {
    let caller = Caller::take(&mut f, ctx.store.as_ref()).await?;
    let name = f.optional_text("name")?;
    let name = Name::parse("name", name.as_deref().unwrap_or("NATS script execution"))?;
    let language = script_type(f.take("script_type"))?;
    let content = ScriptContent::parse("script_content", &f.text("script_content")?)?;
    let targets = target_selector(f.take("targets"))?;
    let params = param_values(f.take("params"))?;
    let timeout = match f.optional_integer("timeout")? {
        None => TimeoutSecs::DEFAULT,
        Some(t) => TimeoutSecs::new("timeout", t)?,
    };
    let confirm = f.flag("confirm")?;
    let callback_url = callback_url(ctx, f.optional_text("callback_url")?).await?;
    let rolling = f
        .take("rolling")
        .map(|v| {
            serde_json::from_value(v)
                .map_err(|e| Error::invalid("rolling", format!("{e}; expected {{\"batch\": 5 | \"10%\", \"mode\": \"continue\" | \"pause_on_failure\"}}")))
        })
        .transpose()?;
    f.finish()?;
    let request = ScriptLaunch {
        team_id: caller.team,
        name,
        language,
        content,
        param_defs: Vec::new(),
        params,
        script_version_id: None,
        targets,
        timeout,
        confirm,
        callback_url,
        trigger_source: TriggerSource::Api,
        cron_job_id: None,
        rolling,
    };
    let execution = launch_script(
        ctx.store.as_ref(),
        ctx.bus.as_ref(),
        &caller.actor,
        request,
        ctx.clock.now(),
    )
    .await?;
    tracing::info!(task_id = %execution.id, by = %caller.actor.label(), "script execution launched over NATS");
    Ok(json!({ "task_id": execution.id }))
}

/// `job_file_distribute`: copies files from targets of the team to targets of the team;
/// answers `{"task_id"}` as soon as the execution is stored.
///
/// `file_source_list`: `[{"target_id": "…", "file_list": ["/abs/path", …]}, …]`;
/// `file_target_path`: the absolute destination directory (checked against the path
/// rules); `overwrite` (default `true`); `targets`, `timeout`, `confirm`, `callback_url`
/// and `name` as for `job_script_execute`.
pub(crate) async fn file_distribute(ctx: &Context, mut f: Fields) -> Result<Value, Error> {
    let caller = Caller::take(&mut f, ctx.store.as_ref()).await?;
    let name = f.optional_text("name")?;
    let name = Name::parse("name", name.as_deref().unwrap_or("NATS file distribution"))?;
    let sources = file_sources(f.take("file_source_list"))?;
    let destination =
        TargetPath::parse("file_target_path", &f.text("file_target_path")?, Os::Linux)?;
    let overwrite = match f.take("overwrite") {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(Error::invalid(
                "overwrite",
                format!("expected true or false, got {}", kind(&other)),
            ));
        }
    };
    let targets = target_selector(f.take("targets"))?;
    let timeout = match f.optional_integer("timeout")? {
        None => TimeoutSecs::DEFAULT,
        Some(t) => TimeoutSecs::new("timeout", t)?,
    };
    let confirm = f.flag("confirm")?;
    let callback_url = callback_url(ctx, f.optional_text("callback_url")?).await?;
    f.finish()?;
    let request = FileLaunch {
        team_id: caller.team,
        name,
        sources,
        destination,
        overwrite,
        targets,
        timeout,
        confirm,
        callback_url,
        trigger_source: TriggerSource::Api,
    };
    let execution = launch_file_distribution(
        ctx.store.as_ref(),
        ctx.bus.as_ref(),
        &caller.actor,
        request,
        ctx.clock.now(),
    )
    .await?;
    tracing::info!(task_id = %execution.id, by = %caller.actor.label(), "file distribution launched over NATS");
    Ok(json!({ "task_id": execution.id }))
}

/// The most files one distribution may copy.
const MAX_SOURCES: usize = 100;

fn file_sources(value: Option<Value>) -> Result<Vec<FileSource>, Error> {
    const SHAPE: &str = "[{\"target_id\": \"…\", \"file_list\": [\"/absolute/path\", …]}, …]";
    let Some(Value::Array(items)) = value else {
        return Err(Error::invalid(
            "file_source_list",
            format!("this field is required: {SHAPE}"),
        ));
    };
    let mut sources = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("file_source_list[{i}]");
        let Value::Object(mut item) = item else {
            return Err(Error::invalid(
                field,
                format!("expected an object: {SHAPE}"),
            ));
        };
        let target_id = match item.remove("target_id") {
            Some(Value::String(id)) => TargetId::parse_field(&format!("{field}.target_id"), &id)?,
            _ => {
                return Err(Error::invalid(
                    format!("{field}.target_id"),
                    "this field is required: the id of the team's target holding the files",
                ));
            }
        };
        let Some(Value::Array(files)) = item.remove("file_list") else {
            return Err(Error::invalid(
                format!("{field}.file_list"),
                "this field is required: a list of absolute paths",
            ));
        };
        if let Some(unknown) = item.keys().next() {
            return Err(Error::invalid(
                format!("{field}.{unknown}"),
                "unknown field",
            ));
        }
        for (j, file) in files.into_iter().enumerate() {
            let at = format!("{field}.file_list[{j}]");
            let Value::String(path) = file else {
                return Err(Error::invalid(at, "expected a path"));
            };
            let path = TargetPath::parse(&at, &path, Os::Linux)?;
            if path.as_str() == "/" {
                return Err(Error::invalid(at, "a file, not the root directory"));
            }
            sources.push(FileSource { target_id, path });
        }
    }
    if sources.is_empty() {
        return Err(Error::invalid("file_source_list", "name at least one file"));
    }
    if sources.len() > MAX_SOURCES {
        return Err(Error::invalid(
            "file_source_list",
            format!("at most {MAX_SOURCES} files in one distribution"),
        ));
    }
    Ok(sources)
}

/// `job_task_terminate`: the console's cancel (same status machine): a pending task is
/// cancelled at once, a running one moves to `cancelling`.
pub(crate) async fn task_terminate(ctx: &Context, mut f: Fields) -> Result<Value, Error> {
    let caller = Caller::take(&mut f, ctx.store.as_ref()).await?;
    let id = task_id(&mut f)?;
    f.finish()?;
    let updated = request_cancel(
        ctx.store.as_ref(),
        ctx.bus.as_ref(),
        &caller.actor,
        id,
        ctx.clock.now(),
    )
    .await?;
    tracing::info!(task_id = %id, by = %caller.actor.label(), status = %updated.status, "cancel requested over NATS");
    Ok(json!({ "task_id": updated.id, "status": updated.status }))
}

/// `job_status_batch_query`: the status of up to [`MAX_BATCH`] tasks; an unknown task, or
/// one of another team, answers `found: false`.
pub(crate) async fn status_batch_query(ctx: &Context, mut f: Fields) -> Result<Value, Error> {
    let caller = Caller::take(&mut f, ctx.store.as_ref()).await?;
    let items = match f.take("task_ids") {
        None => return Err(Error::invalid("task_ids", "this field is required")),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Error::invalid(
                "task_ids",
                format!("expected an array of task ids, got {}", kind(&other)),
            ));
        }
    };
    f.finish()?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(Error::invalid(
            "task_ids",
            format!("must name 1 to {MAX_BATCH} tasks, got {}", items.len()),
        ));
    }
    let ids = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let field = format!("task_ids[{i}]");
            match v {
                Value::String(s) => ExecutionId::parse_field(&field, s),
                other => Err(Error::invalid(
                    field,
                    format!("expected a task id string, got {}", kind(other)),
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let scope = caller.scope();
    let mut tasks = Vec::with_capacity(ids.len());
    for id in ids {
        match ctx.store.get_execution(&scope, id).await {
            Ok(e) => tasks.push(summary(&e)),
            Err(Error::NotFound { what }) => tasks.push(json!({
                "task_id": id,
                "found": false,
                "message": format!("{what} not found"),
            })),
            Err(e) => return Err(e),
        }
    }
    Ok(json!({ "tasks": tasks }))
}

/// `job_detail_query`: one task with its host runs (and, with `with_output`, their
/// stored output).
pub(crate) async fn detail_query(ctx: &Context, mut f: Fields) -> Result<Value, Error> {
    let caller = Caller::take(&mut f, ctx.store.as_ref()).await?;
    let id = task_id(&mut f)?;
    let with_output = f.flag("with_output")?;
    f.finish()?;
    let scope = caller.scope();
    let execution = ctx.store.get_execution(&scope, id).await?;
    let hosts = ctx.store.all_host_runs(&scope, id).await?;
    let mut host_values = Vec::with_capacity(hosts.len());
    for host in &hosts {
        let mut value = encode(host)?;
        if with_output && let Value::Object(map) = &mut value {
            let chunks = ctx
                .store
                .read_output(&scope, id, Some(host.index), None, MAX_PAGE)
                .await?;
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            for chunk in &chunks {
                match chunk.stream {
                    OutputStream::Stdout => stdout.extend_from_slice(&chunk.data),
                    // Platform messages (truncation, connection errors) go with stderr.
                    OutputStream::Stderr | OutputStream::System => {
                        stderr.extend_from_slice(&chunk.data)
                    }
                }
            }
            map.insert("stdout".to_owned(), json!(String::from_utf8_lossy(&stdout)));
            map.insert("stderr".to_owned(), json!(String::from_utf8_lossy(&stderr)));
            map.insert(
                "output_complete".to_owned(),
                json!((chunks.len() as u32) < MAX_PAGE),
            );
        }
        host_values.push(value);
    }
    let mut out = encode(&execution)?;
    if let Value::Object(map) = &mut out {
        map.insert("task_id".to_owned(), json!(execution.id));
        map.insert("hosts".to_owned(), Value::Array(host_values));
    }
    Ok(out)
}

/// `job_target_list`: a page of the team's targets, by id; `next` is the `after` of the
/// next page.
pub(crate) async fn target_list(ctx: &Context, mut f: Fields) -> Result<Value, Error> {
    let caller = Caller::take(&mut f, ctx.store.as_ref()).await?;
    let limit = match f.optional_integer("limit")? {
        None => 50,
        Some(n) if (1..=i64::from(MAX_PAGE)).contains(&n) => n as u32,
        Some(n) => {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}, got {n}"),
            ));
        }
    };
    let after = f
        .optional_text("after")?
        .filter(|a| !a.trim().is_empty())
        .map(|a| TargetId::parse_field("after", &a))
        .transpose()?;
    let name_contains = f.optional_text("name")?.filter(|n| !n.is_empty());
    f.finish()?;
    let filter = AssetFilter {
        team_id: Some(caller.team),
        name_contains,
    };
    let page = ctx
        .store
        .list_targets(&caller.scope(), &filter, PageRequest { after, limit })
        .await?;
    Ok(json!({ "items": page.items, "next": page.next }))
}

/// The summary of one task in a batch status answer.
fn summary(e: &Execution) -> Value {
    json!({
        "task_id": e.id,
        "found": true,
        "name": e.name,
        "status": e.status,
        "counters": e.counters,
        "created_at": e.created_at,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::unavailable("encoding the reply", e))
}

fn task_id(f: &mut Fields) -> Result<ExecutionId, Error> {
    match f.take("task_id") {
        None => Err(Error::invalid("task_id", "this field is required")),
        Some(Value::String(s)) => ExecutionId::parse_field("task_id", &s),
        Some(other) => Err(Error::invalid(
            "task_id",
            format!("expected a task id string, got {}", kind(&other)),
        )),
    }
}

/// The language of `script_type` ([`ScriptLanguage::from_wire`], the parser REST uses).
fn script_type(value: Option<Value>) -> Result<ScriptLanguage, Error> {
    match value {
        None => Err(Error::invalid(
            "script_type",
            "this field is required; expected shell (1), bat (2), python (4) or powershell (5)",
        )),
        Some(value) => ScriptLanguage::from_wire("script_type", &value),
    }
}

fn target_selector(value: Option<Value>) -> Result<TargetSelector, Error> {
    let value = value.ok_or_else(|| {
        Error::invalid(
            "targets",
            "this field is required: {\"target_ids\": [...], \"group_ids\": [...], \"tags\": [[\"k=v\"]], \"ips\": [...]}",
        )
    })?;
    serde_json::from_value(value).map_err(|e| Error::invalid("targets", e.to_string()))
}

fn param_values(value: Option<Value>) -> Result<BTreeMap<String, String>, Error> {
    let map = match value {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(Error::invalid(
                "params",
                format!("expected an object of name: value, got {}", kind(&other)),
            ));
        }
    };
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(Error::invalid(
                        format!("params.{k}"),
                        format!("expected a string, number or boolean, got {}", kind(&other)),
                    ));
                }
            };
            Ok((k, text))
        })
        .collect()
}

/// Checks `callback_url` with the guard REST uses (absent or blank: no callback).
async fn callback_url(ctx: &Context, url: Option<String>) -> Result<Option<CallbackUrl>, Error> {
    match url.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(url) => ctx.callback.check("callback_url", url).await.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_type_is_required_and_parsed_like_rest() {
        assert_eq!(script_type(Some(json!(1))).unwrap(), ScriptLanguage::Shell);
        assert_eq!(
            script_type(Some(json!("python"))).unwrap(),
            ScriptLanguage::Python
        );
        let missing = script_type(None).unwrap_err();
        assert!(
            missing.to_string().starts_with("invalid script_type:"),
            "{missing}"
        );
    }
}
