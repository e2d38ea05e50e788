//! Team access: the one decision every use case makes before touching an asset.

use std::fmt;

use crate::ids::TeamId;
use crate::model::{Actor, Role};
use crate::{Error, Result};

/// What an actor wants to do with an asset of a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// See it (any role).
    Read,
    /// Run it or launch a run with it, cancel runs (operator or maintainer).
    Use,
    /// Create, change or delete it (maintainer).
    Change,
}

impl Access {
    /// The least role that grants this access.
    pub fn least_role(self) -> Role {
        match self {
            Self::Read => Role::Viewer,
            Self::Use => Role::Operator,
            Self::Change => Role::Maintainer,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Use => "use",
            Self::Change => "change",
        })
    }
}

/// Decides whether `actor` may `access` an asset owned by `team`; `what` names the asset
/// for the error (`"script 0193…"`).
///
/// - Administrators may do everything.
/// - An actor with no role in `team` gets exactly the [`Error::NotFound`] a missing asset
///   gets (`"{what} not found"`), so a reference cannot tell "exists elsewhere" from
///   "does not exist".
/// - A member whose role is too low gets [`Error::Forbidden`]: they can already see the
///   asset, so this reveals nothing.
pub fn authorize(actor: &Actor, team: TeamId, access: Access, what: &str) -> Result<()> {
    match actor.role_in(team) {
        None => Err(Error::not_found(what)),
        Some(role) if role >= access.least_role() => Ok(()),
        Some(role) => Err(Error::forbidden(format!(
            "{} may not {access} {what}: needs role {} in its team, has {}",
            actor.label(),
            access.least_role().as_str(),
            role.as_str()
        ))),
    }
}

/// Looks an asset up and authorizes it in one step: `found` is what the store returned,
/// `team_of` says which team owns it. A missing asset and one the actor may not see both
/// yield the same [`Error::NotFound`] naming `what`.
pub fn authorize_found<T>(
    actor: &Actor,
    found: Option<T>,
    team_of: impl FnOnce(&T) -> TeamId,
    access: Access,
    what: &str,
) -> Result<T> {
    let asset = found.ok_or_else(|| Error::not_found(what))?;
    authorize(actor, team_of(&asset), access, what)?;
    Ok(asset)
}
