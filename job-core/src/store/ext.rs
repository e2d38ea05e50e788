//! Conveniences built on the required capabilities, for every store.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::{MAX_PAGE, PageRequest, Store, TeamScope};
use crate::ids::{ExecutionId, GroupId, TeamId};
use crate::model::{HostRun, Target, TargetSelector};
use crate::{Error, Result};

/// How deep group references may nest in a selector.
pub const MAX_GROUP_DEPTH: usize = 16;

/// Conveniences over any [`Store`], implemented for all of them.
#[async_trait]
pub trait StoreExt: Store {
    /// The targets of `team` that `selector` names, with groups expanded recursively;
    /// each target once, in the order first named. A group of another team is not found;
    /// a cycle of groups is refused.
    async fn resolve_selector(
        &self,
        team: TeamId,
        selector: &TargetSelector,
    ) -> Result<Vec<Target>> {
        let scope = TeamScope::team(team);
        let mut seen_groups = BTreeSet::new();
        let mut out: Vec<Target> = Vec::new();
        let mut stack: Vec<(TargetSelector, Vec<GroupId>)> = vec![(selector.clone(), Vec::new())];
        while let Some((sel, path)) = stack.pop() {
            for t in self.targets_matching(team, &sel).await? {
                if !out.iter().any(|o| o.id == t.id) {
                    out.push(t);
                }
            }
            for gid in &sel.group_ids {
                if path.contains(gid) {
                    return Err(Error::invalid(
                        "targets.group_ids",
                        format!("group {gid} contains itself"),
                    ));
                }
                if path.len() >= MAX_GROUP_DEPTH {
                    return Err(Error::invalid(
                        "targets.group_ids",
                        "groups nest too deeply",
                    ));
                }
                if !seen_groups.insert(*gid) {
                    continue;
                }
                let group = self.get_group(&scope, *gid).await?;
                let mut p = path.clone();
                p.push(*gid);
                stack.push((group.selector, p));
            }
        }
        Ok(out)
    }

    /// Every host run of a visible execution, in index order.
    async fn all_host_runs(&self, scope: &TeamScope, id: ExecutionId) -> Result<Vec<HostRun>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(MAX_PAGE);
        loop {
            let got = self.list_host_runs(scope, id, None, page).await?;
            out.extend(got.items);
            match got.next {
                Some(next) => page = PageRequest::after(next, MAX_PAGE),
                None => return Ok(out),
            }
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
