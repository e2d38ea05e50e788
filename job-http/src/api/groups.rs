//! Target groups: named, reusable target selectors of a team.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use job_core::ids::{GroupId, TeamId};
use job_core::model::{TargetGroup, TargetSelector};
use job_core::policy::{Access, authorize};
use job_core::store::{StoreExt, TeamScope};
use job_core::values::{Description, Name};
use serde::Deserialize;

use crate::AppState;
use crate::api::{PageOut, asset_filter, page_request, pick_team};
use crate::auth::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams};

/// `POST /api/v1/target-groups` and `PUT /api/v1/target-groups/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupBody {
    name: String,
    team_id: Option<TeamId>,
    selector: TargetSelector,
    description: Option<String>,
}

/// Listing query of groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    team_id: Option<String>,
    name: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// Checks that the selector names something, that its explicit targets are the team's,
/// and that its groups exist in the team without a cycle (`own` is the group being
/// changed, which may not contain itself).
async fn check_selector(
    state: &AppState,
    team: TeamId,
    selector: &TargetSelector,
    own: Option<GroupId>,
) -> ApiResult<()> {
    selector.require_some("selector")?;
    let scope = TeamScope::team(team);
    for (i, id) in selector.target_ids.iter().enumerate() {
        state
            .store()
            .get_target(&scope, *id)
            .await
            .map_err(|e| ApiError::from(e).with_field(format!("selector.target_ids[{i}]")))?;
    }
    if let Some(own) = own
        && selector.group_ids.contains(&own)
    {
        return Err(ApiError::invalid(
            "selector.group_ids",
            "invalid selector.group_ids: a group cannot contain itself",
        ));
    }
    state
        .store()
        .resolve_selector(team, selector)
        .await
        .map_err(|e| match e {
            job_core::Error::NotFound { .. } => ApiError::from(e).with_field("selector.group_ids"),
            other => other.into(),
        })?;
    Ok(())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<GroupBody>,
) -> ApiResult<(StatusCode, Json<TargetGroup>)> {
    let team = pick_team(&caller.actor, body.team_id)?;
    authorize(&caller.actor, team, Access::Change, &format!("team {team}"))
        .map_err(|e| ApiError::from(e).with_field("team_id"))?;
    let name = Name::parse("name", &body.name)?;
    let description = Description::parse("description", body.description.as_deref().unwrap_or(""))?;
    check_selector(&state, team, &body.selector, None).await?;
    let group = TargetGroup {
        id: GroupId::new(),
        team_id: team,
        name,
        selector: body.selector,
        description,
        created_at: state.now(),
    };
    state.store().create_group(&group).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TargetGroup>> {
    let id = GroupId::parse_field("id", &id)?;
    Ok(Json(
        state
            .store()
            .get_group(&TeamScope::of(&caller.actor), id)
            .await?,
    ))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GroupBody>,
) -> ApiResult<Json<TargetGroup>> {
    let id = GroupId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let existing = state.store().get_group(&scope, id).await?;
    authorize(
        &caller.actor,
        existing.team_id,
        Access::Change,
        &format!("target group {id}"),
    )?;
    if body.team_id.is_some_and(|t| t != existing.team_id) {
        return Err(ApiError::invalid(
            "team_id",
            "invalid team_id: a group cannot move to another team",
        ));
    }
    let group = TargetGroup {
        id,
        team_id: existing.team_id,
        name: Name::parse("name", &body.name)?,
        description: Description::parse("description", body.description.as_deref().unwrap_or(""))?,
        selector: body.selector,
        created_at: existing.created_at,
    };
    check_selector(&state, group.team_id, &group.selector, Some(id)).await?;
    state.store().update_group(&scope, &group).await?;
    Ok(Json(group))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = GroupId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let existing = state.store().get_group(&scope, id).await?;
    authorize(
        &caller.actor,
        existing.team_id,
        Access::Change,
        &format!("target group {id}"),
    )?;
    state.store().delete_group(&scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<PageOut<TargetGroup>>> {
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), |v| {
        GroupId::parse_field("after", v)
    })?;
    let filter = asset_filter(q.team_id.as_deref(), q.name)?;
    let got = state
        .store()
        .list_groups(&TeamScope::of(&caller.actor), &filter, page)
        .await?;
    Ok(Json(PageOut {
        items: got.items,
        next: got.next.map(|n| n.to_string()),
    }))
}
