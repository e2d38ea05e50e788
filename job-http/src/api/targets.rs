//! Targets (hosts) of a team: agentless over SSH with a credential of the same team, agent
//! mode (administrators only: an agent belongs to no team until a target binds it), or the
//! control node itself (`local`, administrators only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use job_core::ids::{CredentialId, TargetId, TeamId};
use job_core::model::{Actor, Os, Target, TargetMode};
use job_core::policy::{Access, authorize};
use job_core::store::{MAX_PAGE, PageRequest, TeamScope};
use job_core::transport::AgentPresence;
use job_core::values::{Address, Description, Name, Port, Tag};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::{PageOut, asset_filter, page_request, pick_team};
use crate::auth::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams, parse_opt};

/// `POST /api/v1/targets` and `PUT /api/v1/targets/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetBody {
    name: String,
    address: String,
    os: Option<Os>,
    #[serde(default)]
    tags: Vec<String>,
    mode: String,
    port: Option<i64>,
    user: Option<String>,
    credential_id: Option<CredentialId>,
    agent_id: Option<String>,
    description: Option<String>,
    team_id: Option<TeamId>,
}

/// A target as the API shows it: agent-mode targets also say whether their agent is online.
#[derive(Debug, Serialize)]
pub(crate) struct TargetOut {
    #[serde(flatten)]
    target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<AgentOut>,
}

/// The presence of an agent-mode target's agent.
#[derive(Debug, Serialize)]
struct AgentOut {
    #[serde(flatten)]
    presence: AgentPresence,
    /// Why the presence could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `target` with its agent's presence, when it is in agent mode.
async fn with_presence(state: &AppState, target: Target) -> TargetOut {
    let TargetMode::Agent { agent_id } = &target.mode else {
        return TargetOut {
            target,
            agent: None,
        };
    };
    let agent = match state.agents() {
        None => AgentOut {
            presence: AgentPresence::never_seen(),
            error: Some("agent mode needs NATS (nats.url) on this node".to_owned()),
        },
        Some(directory) => match directory.presence(agent_id.as_str()).await {
            Ok(presence) => AgentOut {
                presence,
                error: None,
            },
            Err(e) => {
                tracing::warn!(agent_id = %agent_id, error = %e, "agent presence unavailable");
                AgentOut {
                    presence: AgentPresence::never_seen(),
                    error: Some("the agents' registrations cannot be read now".to_owned()),
                }
            }
        },
    };
    TargetOut {
        target,
        agent: Some(agent),
    }
}

/// Listing query of targets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    team_id: Option<String>,
    /// `key=value`: only targets carrying this tag.
    tag: Option<String>,
    /// `agentless`, `agent` or `local`.
    mode: Option<String>,
    /// Text found in the name or the address (case-insensitive).
    q: Option<String>,
    /// Text found in the name.
    name: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// Checks a body into a target of `team`; `id` and `created_at` are the caller's.
async fn target_of(
    state: &AppState,
    actor: &Actor,
    team: TeamId,
    body: TargetBody,
    id: TargetId,
    created_at: chrono::DateTime<chrono::Utc>,
) -> ApiResult<Target> {
    let name = Name::parse("name", &body.name)?;
    let address = Address::parse("address", &body.address)?;
    let tags = body
        .tags
        .iter()
        .enumerate()
        .map(|(i, t)| Tag::parse(&format!("tags[{i}]"), t))
        .collect::<job_core::Result<Vec<_>>>()?;
    let refuse_extra = |field: &str, given: bool, mode: &str| -> ApiResult<()> {
        if given {
            Err(ApiError::invalid(
                field,
                format!("invalid {field}: not used by `{mode}` targets"),
            ))
        } else {
            Ok(())
        }
    };
    let mode = match body.mode.as_str() {
        "agentless" => {
            refuse_extra("agent_id", body.agent_id.is_some(), "agentless")?;
            let user = body.user.as_deref().ok_or_else(|| {
                ApiError::invalid("user", "invalid user: required for agentless targets")
            })?;
            let credential_id = body.credential_id.ok_or_else(|| {
                ApiError::invalid(
                    "credential_id",
                    "invalid credential_id: required for agentless targets",
                )
            })?;
            // Only a credential of the target's own team; another team's is "not found".
            state
                .store()
                .get_credential(&TeamScope::team(team), credential_id)
                .await
                .map_err(|e| ApiError::from(e).with_field("credential_id"))?;
            TargetMode::Agentless {
                port: body.port.map_or(Ok(Port::SSH), |p| Port::new("port", p))?,
                user: Name::parse("user", user)?,
                credential_id,
            }
        }
        "agent" => {
            // Agents are not owned by a team: whoever names an agent in a target can run
            // anything on its host. Binding an agent to a team is an administrator's call.
            if !actor.is_admin {
                return Err(ApiError::forbidden(
                    "only administrators may create or change `agent` targets: naming an agent binds its host to the team",
                )
                .with_field("mode"));
            }
            for (field, given) in [
                ("user", body.user.is_some()),
                ("credential_id", body.credential_id.is_some()),
                ("port", body.port.is_some()),
            ] {
                refuse_extra(field, given, "agent")?;
            }
            let agent_id = body.agent_id.as_deref().ok_or_else(|| {
                ApiError::invalid("agent_id", "invalid agent_id: required for agent targets")
            })?;
            // The id an agent registers under is one NATS subject token (its host name with
            // other characters turned into `-`): refuse anything that could never match.
            if agent_id.is_empty()
                || agent_id.len() > 128
                || !agent_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(ApiError::invalid(
                    "agent_id",
                    "invalid agent_id: 1 to 128 ASCII letters, digits, `_` or `-` (an agent on \
                     host `web-1.example.com` registers as `web-1-example-com` unless given an id)",
                ));
            }
            TargetMode::Agent {
                agent_id: Name::parse("agent_id", agent_id)?,
            }
        }
        "local" => {
            if !actor.is_admin {
                return Err(ApiError::forbidden(
                    "only administrators may create `local` targets: they run as jobd's own user on the control node",
                )
                .with_field("mode"));
            }
            for (field, given) in [
                ("user", body.user.is_some()),
                ("credential_id", body.credential_id.is_some()),
                ("port", body.port.is_some()),
                ("agent_id", body.agent_id.is_some()),
            ] {
                refuse_extra(field, given, "local")?;
            }
            TargetMode::Local
        }
        other => {
            return Err(ApiError::invalid(
                "mode",
                format!("invalid mode: `{other}`; expected agentless, agent or local"),
            ));
        }
    };
    Ok(Target {
        id,
        team_id: team,
        name,
        address,
        os: body.os.unwrap_or_default(),
        tags,
        mode,
        description: Description::parse("description", body.description.as_deref().unwrap_or(""))?,
        created_at,
        updated_at: state.now(),
    })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TargetBody>,
) -> ApiResult<(StatusCode, Json<Target>)> {
    let team = pick_team(&caller.actor, body.team_id)?;
    authorize(&caller.actor, team, Access::Change, &format!("team {team}"))
        .map_err(|e| ApiError::from(e).with_field("team_id"))?;
    let now = state.now();
    let target = target_of(&state, &caller.actor, team, body, TargetId::new(), now).await?;
    state.store().create_target(&target).await?;
    Ok((StatusCode::CREATED, Json(target)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TargetOut>> {
    let id = TargetId::parse_field("id", &id)?;
    let target = state
        .store()
        .get_target(&TeamScope::of(&caller.actor), id)
        .await?;
    Ok(Json(with_presence(&state, target).await))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TargetBody>,
) -> ApiResult<Json<Target>> {
    let id = TargetId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let existing = state.store().get_target(&scope, id).await?;
    authorize(
        &caller.actor,
        existing.team_id,
        Access::Change,
        &format!("target {id}"),
    )?;
    if body.team_id.is_some_and(|t| t != existing.team_id) {
        return Err(ApiError::invalid(
            "team_id",
            "invalid team_id: a target cannot move to another team",
        ));
    }
    if matches!(existing.mode, TargetMode::Local | TargetMode::Agent { .. })
        && !caller.actor.is_admin
    {
        return Err(ApiError::forbidden(format!(
            "only administrators may change `{}` targets",
            existing.mode.as_str()
        )));
    }
    let target = target_of(
        &state,
        &caller.actor,
        existing.team_id,
        body,
        id,
        existing.created_at,
    )
    .await?;
    state.store().update_target(&scope, &target).await?;
    Ok(Json(target))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = TargetId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let existing = state.store().get_target(&scope, id).await?;
    authorize(
        &caller.actor,
        existing.team_id,
        Access::Change,
        &format!("target {id}"),
    )?;
    state.store().delete_target(&scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists targets. The store filters by team and name; tag, mode and address search are
/// applied here while walking the store's pages, so `next` stays a keyset cursor.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<PageOut<TargetOut>>> {
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), |v| {
        TargetId::parse_field("after", v)
    })?;
    let tag = parse_opt(
        "tag",
        q.tag.as_deref(),
        |v| Tag::parse("tag", v).ok(),
        "a key=value tag",
    )?;
    let mode = parse_opt(
        "mode",
        q.mode.as_deref(),
        |v| {
            ["agentless", "agent", "local"]
                .contains(&v)
                .then(|| v.to_owned())
        },
        "agentless, agent or local",
    )?;
    let search =
        q.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
    let filter = asset_filter(q.team_id.as_deref(), q.name)?;
    let keep = |t: &Target| {
        tag.as_ref().is_none_or(|tag| t.has_tag(tag))
            && mode.as_deref().is_none_or(|m| t.mode.as_str() == m)
            && search.as_deref().is_none_or(|s| {
                t.name.as_str().to_lowercase().contains(s) || t.address.as_str().contains(s)
            })
    };
    let scope = TeamScope::of(&caller.actor);
    let want = page.limit as usize;
    let mut items = Vec::new();
    let mut cursor = page.after;
    let mut more = false;
    loop {
        let got = state
            .store()
            .list_targets(
                &scope,
                &filter,
                PageRequest {
                    after: cursor,
                    limit: MAX_PAGE,
                },
            )
            .await?;
        let n = got.items.len();
        for t in got.items {
            if items.len() == want {
                more = true;
                break;
            }
            cursor = Some(t.id);
            if keep(&t) {
                items.push(t);
            }
        }
        if more || got.next.is_none() || n == 0 {
            break;
        }
        if items.len() == want {
            more = true;
            break;
        }
    }
    let next = if more {
        items.last().map(|t: &Target| t.id.to_string())
    } else {
        None
    };
    let items =
        futures_util::future::join_all(items.into_iter().map(|t| with_presence(&state, t))).await;
    Ok(Json(PageOut { next, items }))
}
