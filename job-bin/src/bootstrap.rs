//! First start: the team `default`, the user `admin`, and the control node as a local target,
//! so a new operator can log in and run a command within a minute of starting `jobd`.

use chrono::Utc;
use job_core::ids::{TargetId, TeamId, UserId};
use job_core::model::{Membership, Os, Role, Target, TargetMode, Team, User};
use job_core::store::{AssetFilter, PageRequest, Store, TeamScope};
use job_core::values::{Address, Description, Name, Tag, Username};
use job_core::{Error, Result};

/// The team every first start creates.
pub(crate) const DEFAULT_TEAM: &str = "default";
/// The administrator every first start creates.
pub(crate) const ADMIN_USER: &str = "admin";
/// The shortest admin password accepted (the same rule as the users API).
const MIN_PASSWORD_CHARS: usize = 8;

/// What the first start did, for the caller to tell the operator.
#[derive(Debug, Default)]
pub(crate) struct Bootstrapped {
    /// The generated admin password, when one was generated; shown once, never logged.
    pub(crate) generated_password: Option<String>,
    /// Whether the admin user was created now (with the supplied or generated password).
    pub(crate) admin_created: bool,
    /// Whether the control node was registered as a target now.
    pub(crate) local_target_created: bool,
}

/// What the first start needs from the configuration.
#[derive(Debug)]
pub(crate) struct BootstrapPlan<'a> {
    /// `JOBD_ADMIN_PASSWORD`, if given.
    pub(crate) admin_password: Option<&'a str>,
    /// The control node's target name, when it is to be registered.
    pub(crate) local_target: Option<&'a Name>,
}

/// Creates what a fresh store lacks: with no users yet, the team `default` and the user
/// `admin` (administrator, maintainer of `default`); and the control node as a local target
/// of `default` when none of that name exists there. Safe to run on every start.
pub(crate) async fn bootstrap(store: &dyn Store, plan: &BootstrapPlan<'_>) -> Result<Bootstrapped> {
    let mut done = Bootstrapped::default();
    let no_users = store
        .list_users(PageRequest::first(1))
        .await?
        .items
        .is_empty();
    let team = if no_users {
        let team = default_team(store, true).await?;
        let password = match plan.admin_password {
            Some(p) if p.chars().count() >= MIN_PASSWORD_CHARS => p.to_owned(),
            Some(_) => {
                return Err(Error::invalid(
                    "JOBD_ADMIN_PASSWORD",
                    format!("must be at least {MIN_PASSWORD_CHARS} characters"),
                ));
            }
            None => {
                let generated = generate_password();
                done.generated_password = Some(generated.clone());
                generated
            }
        };
        let user = User {
            id: UserId::new(),
            username: Username::parse("username", ADMIN_USER)?,
            display_name: Name::parse("display_name", "Administrator")?,
            password_hash: job_http::auth::hash_password(&password)?,
            is_admin: true,
            disabled: false,
            memberships: team
                .as_ref()
                .map(|t| {
                    vec![Membership {
                        team_id: t.id,
                        role: Role::Maintainer,
                    }]
                })
                .unwrap_or_default(),
            created_at: Utc::now(),
        };
        match store.create_user(&user).await {
            Ok(()) => {
                done.admin_created = true;
                tracing::info!(
                    user = ADMIN_USER,
                    team = DEFAULT_TEAM,
                    "first start: created the administrator and the default team"
                );
            }
            // Another node sharing the database bootstrapped at the same moment.
            Err(Error::Conflict { .. }) => done.generated_password = None,
            Err(e) => return Err(e),
        }
        team
    } else {
        default_team(store, false).await?
    };
    if let (Some(name), Some(team)) = (plan.local_target, team) {
        done.local_target_created = register_control_node(store, team.id, name).await?;
    }
    Ok(done)
}

/// The team `default`: found, or (when `create`) created.
async fn default_team(store: &dyn Store, create: bool) -> Result<Option<Team>> {
    let teams = store.list_teams(&TeamScope::All).await?;
    if let Some(team) = teams.into_iter().find(|t| t.name.as_str() == DEFAULT_TEAM) {
        return Ok(Some(team));
    }
    if !create {
        return Ok(None);
    }
    let team = Team {
        id: TeamId::new(),
        name: Name::parse("name", DEFAULT_TEAM)?,
        description: Description::parse("description", "Created on first start")?,
        created_at: Utc::now(),
    };
    match store.create_team(&team).await {
        Ok(()) => Ok(Some(team)),
        // Another node sharing the database created it at the same moment.
        Err(Error::Conflict { .. }) => Ok(store
            .list_teams(&TeamScope::All)
            .await?
            .into_iter()
            .find(|t| t.name.as_str() == DEFAULT_TEAM)),
        Err(e) => Err(e),
    }
}

/// Registers the control node as the local target `name` of `team`, unless a target of that
/// name is already there. Returns whether it was created.
async fn register_control_node(store: &dyn Store, team: TeamId, name: &Name) -> Result<bool> {
    let filter = AssetFilter {
        team_id: Some(team),
        name_contains: Some(name.as_str().to_owned()),
    };
    let existing = store
        .list_targets(&TeamScope::All, &filter, PageRequest::first(1000))
        .await?;
    if existing.items.iter().any(|t| t.name == *name) {
        return Ok(false);
    }
    let now = Utc::now();
    let target = Target {
        id: TargetId::new(),
        team_id: team,
        name: name.clone(),
        address: Address::parse("address", "127.0.0.1")?,
        os: Os::Linux,
        tags: vec![Tag::new("tags", "role", "control-node")?],
        mode: TargetMode::Local,
        description: Description::parse(
            "description",
            "The control node itself: runs as local processes of jobd",
        )?,
        created_at: now,
        updated_at: now,
    };
    match store.create_target(&target).await {
        Ok(()) => {
            tracing::info!(target = %name, "registered the control node as a local target");
            Ok(true)
        }
        // Another node of the cluster registered it meanwhile.
        Err(Error::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A random password: 24 hex characters (96 bits) from the system's CSPRNG.
fn generate_password() -> String {
    let bytes = job_core::secret::MasterKey::generate_bytes();
    hex::encode(&bytes[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate_password());
    }
}
