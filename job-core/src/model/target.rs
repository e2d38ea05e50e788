use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CredentialId, GroupId, TargetId, TeamId};
use crate::values::{Address, Description, Name, Port, Tag};
use crate::{Error, Result};

/// A target host's operating system; it decides interpreters and path rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Os {
    /// Linux and other POSIX systems.
    #[default]
    Linux,
    /// Windows.
    Windows,
}

/// How the platform reaches a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TargetMode {
    /// Agentless: over SSH with a stored credential.
    Agentless {
        /// SSH port.
        port: Port,
        /// Remote login user.
        user: Name,
        /// The credential to authenticate with.
        credential_id: CredentialId,
    },
    /// A resident `jobd agent` on the host, reached over NATS.
    Agent {
        /// The agent's id, as it registers itself.
        agent_id: Name,
    },
    /// The control node itself (runs as a local process).
    Local,
}

impl TargetMode {
    /// Wire name of the mode: `agentless`, `agent` or `local`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Agentless { .. } => "agentless",
            Self::Agent { .. } => "agent",
            Self::Local => "local",
        }
    }
}

/// A host that runs tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Its id.
    pub id: TargetId,
    /// Owner team.
    pub team_id: TeamId,
    /// Name, unique within the team.
    pub name: Name,
    /// Where it is reached.
    pub address: Address,
    /// Its operating system.
    pub os: Os,
    /// `key=value` tags for selection.
    pub tags: Vec<Tag>,
    /// How it is reached.
    #[serde(flatten)]
    pub mode: TargetMode,
    /// Free text.
    #[serde(default)]
    pub description: Description,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Target {
    /// Whether the target carries `tag` (same key and value).
    pub fn has_tag(&self, tag: &Tag) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// The secret half of a credential. Never serialized: it is write-only over every API.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialSecret {
    /// A password.
    Password {
        /// The password.
        password: String,
    },
    /// A private key in OpenSSH or PEM format, optionally encrypted with a passphrase.
    PrivateKey {
        /// The key text.
        private_key: String,
        /// Its passphrase, if the key is encrypted.
        #[serde(default)]
        passphrase: Option<String>,
    },
}

impl CredentialSecret {
    /// Wire name of the kind: `password` or `private_key`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Password { .. } => "password",
            Self::PrivateKey { .. } => "private_key",
        }
    }

    /// Refuses an empty secret, naming the field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Password { password } if password.is_empty() => {
                Err(Error::invalid("password", "must not be empty"))
            }
            Self::PrivateKey { private_key, .. } if !private_key.contains("PRIVATE KEY") => Err(
                Error::invalid("private_key", "is not a PEM or OpenSSH private key"),
            ),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialSecret::{}(******)", self.kind())
    }
}

/// A login credential for agentless targets. The secret is stored encrypted and is
/// write-only: no API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Its id.
    pub id: CredentialId,
    /// Owner team.
    pub team_id: TeamId,
    /// Name, unique within the team.
    pub name: Name,
    /// `password` or `private_key`.
    pub kind: String,
    /// The encrypted secret (nonce + ciphertext). Never serialized.
    #[serde(skip_serializing, default)]
    pub secret_ciphertext: Vec<u8>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Which targets a run or a group addresses. The parts add up (union); the result must
/// not be empty when it is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSelector {
    /// Explicit targets.
    #[serde(default)]
    pub target_ids: Vec<TargetId>,
    /// Other groups, resolved recursively (cycles are refused).
    #[serde(default)]
    pub group_ids: Vec<GroupId>,
    /// Tag expressions: every tag of one entry must match (AND); entries add up (OR).
    #[serde(default)]
    pub tags: Vec<Vec<Tag>>,
    /// Targets by address.
    #[serde(default)]
    pub ips: Vec<Address>,
}

impl TargetSelector {
    /// Whether the selector names nothing at all.
    pub fn is_empty(&self) -> bool {
        self.target_ids.is_empty()
            && self.group_ids.is_empty()
            && self.tags.is_empty()
            && self.ips.is_empty()
    }

    /// Refuses a selector that names nothing, as the field `field`.
    pub fn require_some(&self, field: &str) -> Result<()> {
        if self.is_empty() {
            return Err(Error::invalid(
                field,
                "must name at least one target, group, tag expression or ip",
            ));
        }
        Ok(())
    }

    /// Whether `target` is matched by the tag expressions or the ips of this selector
    /// (explicit ids and groups are resolved by the store).
    pub fn matches_by_attributes(&self, target: &Target) -> bool {
        self.ips.contains(&target.address)
            || self
                .tags
                .iter()
                .any(|all| !all.is_empty() && all.iter().all(|t| target.has_tag(t)))
    }
}

/// A named, reusable target selector owned by a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// Its id.
    pub id: GroupId,
    /// Owner team.
    pub team_id: TeamId,
    /// Name, unique within the team.
    pub name: Name,
    /// Which targets it holds.
    pub selector: TargetSelector,
    /// Free text.
    #[serde(default)]
    pub description: Description,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = CredentialSecret::Password {
            password: "hunter2".into(),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn an_empty_selector_is_refused_naming_the_field() {
        let err = TargetSelector::default()
            .require_some("targets")
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid targets:"), "{err}");
    }

    #[test]
    fn unknown_selector_fields_are_refused() {
        let err = serde_json::from_str::<TargetSelector>(r#"{"hosts":[]}"#).unwrap_err();
        assert!(err.to_string().contains("hosts"), "{err}");
    }
}
