//! The `Store` traits, split by capability; see docs/storage.md.
//!
//! Each capability trait groups the atomic use-case operations of one aggregate: creating an
//! execution writes it with all its host runs, a status move is a compare-and-set checked
//! against [`ExecutionStatus::allows`](crate::status::ExecutionStatus::allows), a move into a
//! final status writes its outbox entries in the same transaction, and so on. [`Store`] is
//! every capability at once; it is implemented for anything that implements them all.
//!
//! Team isolation is part of every read: listing and get methods take the [`TeamScope`] of
//! the actor, and an object of a team outside the scope is reported as
//! [`Error::NotFound`](crate::Error::NotFound) exactly like a missing one.
//!
//! The public conformance suite in `job_core::testkit::store` (feature `testkit`) holds every
//! backend to this contract.
//!
//! Conventions shared by every backend:
//! - timestamps are stored with microsecond precision;
//! - listings are keyset-paginated, newest first (ids are UUIDv7, ordered by creation), so a
//!   page never repeats or skips an item when new ones are inserted meanwhile;
//! - text fields refuse NUL characters and values longer than the limits in [`checks`], with
//!   [`Error::Invalid`](crate::Error::Invalid) naming the field; output data is bytes and
//!   may hold anything;
//! - a unique-key clash (a duplicate name within a team, an id used twice) is an
//!   [`Error::Conflict`](crate::Error::Conflict).

mod assets;
pub mod checks;
mod execution;
mod ext;
mod identity;
mod stats;

use std::collections::BTreeSet;

use crate::ids::TeamId;
use crate::model::Actor;

pub use assets::{
    CredentialStore, CronStore, PlaybookStore, RuleStore, ScriptStore, StagedFileStore,
    TargetGroupStore, TargetStore,
};
pub use execution::{
    AppendedOutput, ClaimedExecution, ExecutionFilter, ExecutionStore, HostRunUpdate, Lease,
    NewOutput, OutboxOutcome, OutboxStore, OutputCursor, OutputStore, Transition,
    truncation_marker,
};
pub use ext::{MAX_GROUP_DEPTH, StoreExt};
pub use identity::IdentityStore;
pub use stats::{DayTrend, MAX_TREND_DAYS, StatsStore, SuccessRate, TimeRange, Totals, fill_trend};

/// Which teams' objects a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamScope {
    /// Every team (administrators and system work such as purges).
    All,
    /// Only these teams. An empty set sees nothing.
    Teams(BTreeSet<TeamId>),
}

impl TeamScope {
    /// The scope of one team.
    pub fn team(id: TeamId) -> Self {
        Self::Teams(BTreeSet::from([id]))
    }

    /// The scope an actor acts in: every team for an administrator, else its teams.
    pub fn of(actor: &Actor) -> Self {
        if actor.is_admin {
            Self::All
        } else {
            Self::Teams(actor.teams.keys().copied().collect())
        }
    }

    /// Whether objects of `team` are visible.
    pub fn contains(&self, team: TeamId) -> bool {
        match self {
            Self::All => true,
            Self::Teams(teams) => teams.contains(&team),
        }
    }

    /// The visible teams, or `None` for every team.
    pub fn teams(&self) -> Option<&BTreeSet<TeamId>> {
        match self {
            Self::All => None,
            Self::Teams(teams) => Some(teams),
        }
    }
}

impl From<&Actor> for TeamScope {
    fn from(actor: &Actor) -> Self {
        Self::of(actor)
    }
}

/// Which page of a listing to read: the items after the cursor `after` (the last key of the
/// previous page), at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<K> {
    /// The last key of the previous page; `None` for the first page.
    pub after: Option<K>,
    /// How many items at most; clamped to `1..=`[`MAX_PAGE`].
    pub limit: u32,
}

/// The largest page a listing returns.
pub const MAX_PAGE: u32 = 1000;

impl<K> PageRequest<K> {
    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }

    /// The page of `limit` items after `after`.
    pub fn after(after: K, limit: u32) -> Self {
        Self {
            after: Some(after),
            limit,
        }
    }

    /// The limit clamped to `1..=MAX_PAGE`.
    pub fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_PAGE)
    }
}

impl<K> Default for PageRequest<K> {
    fn default() -> Self {
        Self {
            after: None,
            limit: 50,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// The cursor of the next page, when there may be one.
    pub next: Option<K>,
}

/// Filters of asset listings (targets, groups, credentials, scripts, playbooks, staged
/// files, cron jobs). Every filter narrows; the default lists everything in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetFilter {
    /// Only this team (still within the scope).
    pub team_id: Option<TeamId>,
    /// Only names containing this text (case-insensitive for ASCII; `%` and `_` are
    /// plain characters).
    pub name_contains: Option<String>,
}

/// Every storage capability of the platform at once.
///
/// Implemented for any type implementing every capability trait; backends implement those
/// and get `Store` for free, and use cases take `&dyn Store`.
pub trait Store:
    TargetStore
    + CredentialStore
    + TargetGroupStore
    + ScriptStore
    + PlaybookStore
    + StagedFileStore
    + RuleStore
    + CronStore
    + ExecutionStore
    + OutputStore
    + OutboxStore
    + IdentityStore
    + StatsStore
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: TargetStore
        + CredentialStore
        + TargetGroupStore
        + ScriptStore
        + PlaybookStore
        + StagedFileStore
        + RuleStore
        + CronStore
        + ExecutionStore
        + OutputStore
        + OutboxStore
        + IdentityStore
        + StatsStore
        + std::fmt::Debug
        + ?Sized
{
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{ActorKind, Role};

    #[test]
    fn an_actor_sees_its_teams_and_an_administrator_sees_all() {
        let (a, b) = (TeamId::new(), TeamId::new());
        let mut actor = Actor {
            kind: ActorKind::Scheduler,
            is_admin: false,
            teams: BTreeMap::from([(a, Role::Viewer)]),
        };
        let scope = TeamScope::of(&actor);
        assert!(scope.contains(a) && !scope.contains(b));
        actor.is_admin = true;
        assert_eq!(TeamScope::from(&actor), TeamScope::All);
        assert!(TeamScope::All.contains(b));
        assert!(!TeamScope::Teams(BTreeSet::new()).contains(a));
    }

    #[test]
    fn page_limits_are_clamped() {
        assert_eq!(PageRequest::<u32>::first(0).clamped_limit(), 1);
        assert_eq!(
            PageRequest::after(3u32, 1_000_000).clamped_limit(),
            MAX_PAGE
        );
    }
}
