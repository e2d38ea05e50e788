//! Credentials of agentless targets. The secret is write-only: sealed on the way in, never
//! part of any answer.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use job_core::ids::{CredentialId, TeamId};
use job_core::model::{Credential, CredentialSecret};
use job_core::policy::{Access, authorize};
use job_core::secret::seal_credential;
use job_core::store::TeamScope;
use job_core::values::Name;
use serde::Deserialize;

use crate::AppState;
use crate::api::{PageOut, asset_filter, page_request, pick_team};
use crate::auth::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams};

/// `POST /api/v1/credentials` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCredential {
    name: String,
    team_id: Option<TeamId>,
    kind: String,
    password: Option<String>,
    private_key: Option<String>,
    passphrase: Option<String>,
}

impl std::fmt::Debug for CreateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateCredential")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Listing query of credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    team_id: Option<String>,
    name: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

fn secret_of(body: CreateCredential) -> ApiResult<CredentialSecret> {
    let secret = match body.kind.as_str() {
        "password" => {
            if body.private_key.is_some() || body.passphrase.is_some() {
                return Err(ApiError::invalid(
                    "private_key",
                    "invalid private_key: a password credential takes only `password`",
                ));
            }
            CredentialSecret::Password {
                password: body.password.ok_or_else(|| {
                    ApiError::invalid("password", "invalid password: required for kind `password`")
                })?,
            }
        }
        "private_key" => {
            if body.password.is_some() {
                return Err(ApiError::invalid(
                    "password",
                    "invalid password: a private_key credential takes `private_key` and `passphrase`",
                ));
            }
            CredentialSecret::PrivateKey {
                private_key: body.private_key.ok_or_else(|| {
                    ApiError::invalid(
                        "private_key",
                        "invalid private_key: required for kind `private_key`",
                    )
                })?,
                passphrase: body.passphrase.filter(|p| !p.is_empty()),
            }
        }
        other => {
            return Err(ApiError::invalid(
                "kind",
                format!("invalid kind: `{other}`; expected `password` or `private_key`"),
            ));
        }
    };
    secret.validate()?;
    Ok(secret)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateCredential>,
) -> ApiResult<(StatusCode, Json<Credential>)> {
    let name = Name::parse("name", &body.name)?;
    let team_id = pick_team(&caller.actor, body.team_id)?;
    authorize(
        &caller.actor,
        team_id,
        Access::Change,
        &format!("team {team_id}"),
    )
    .map_err(|e| ApiError::from(e).with_field("team_id"))?;
    let kind = body.kind.clone();
    let secret = secret_of(body)?;
    let credential = Credential {
        id: CredentialId::new(),
        team_id,
        name,
        kind,
        secret_ciphertext: seal_credential(state.secrets(), &secret)?,
        created_at: state.now(),
    };
    state.store().create_credential(&credential).await?;
    Ok((StatusCode::CREATED, Json(credential)))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<PageOut<Credential>>> {
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), |v| {
        CredentialId::parse_field("after", v)
    })?;
    let filter = asset_filter(q.team_id.as_deref(), q.name)?;
    let got = state
        .store()
        .list_credentials(&TeamScope::of(&caller.actor), &filter, page)
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
) -> ApiResult<Json<Credential>> {
    let id = CredentialId::parse_field("id", &id)?;
    Ok(Json(
        state
            .store()
            .get_credential(&TeamScope::of(&caller.actor), id)
            .await?,
    ))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = CredentialId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let credential = state.store().get_credential(&scope, id).await?;
    authorize(
        &caller.actor,
        credential.team_id,
        Access::Change,
        &format!("credential {id}"),
    )?;
    state.store().delete_credential(&scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
