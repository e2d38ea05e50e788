use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{PlaybookId, PlaybookVersionId, TeamId, UserId};
use crate::model::ParamDef;
use crate::values::{Description, Name, Sha256Hex};

/// An Ansible playbook in the library. Its archives live in [`PlaybookVersion`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playbook {
    /// Its id.
    pub id: PlaybookId,
    /// Owner team.
    pub team_id: TeamId,
    /// Name, unique within the team.
    pub name: Name,
    /// Free text.
    #[serde(default)]
    pub description: Description,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One uploaded archive of a playbook. Each run snapshots the version it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookVersion {
    /// Its id.
    pub id: PlaybookVersionId,
    /// The playbook it belongs to.
    pub playbook_id: PlaybookId,
    /// 1, 2, 3… within the playbook.
    pub version: u32,
    /// Key of the ZIP archive in the blob store.
    pub blob_key: String,
    /// Digest of the archive.
    pub sha256: Sha256Hex,
    /// Size of the archive in bytes.
    pub size: u64,
    /// The text of `playbook.yml`.
    pub playbook_yml: String,
    /// The text of `README.md`, if the archive has one.
    pub readme: Option<String>,
    /// Params parsed from the playbook's variables.
    pub params: Vec<ParamDef>,
    /// Who uploaded it.
    pub created_by: Option<UserId>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}
