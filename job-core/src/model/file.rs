use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{FileId, TeamId, UserId};
use crate::values::{ExpireDays, Name, Sha256Hex};

/// A file uploaded for distribution. It always expires: there is no permanent retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Its id.
    pub id: FileId,
    /// Owner team.
    pub team_id: TeamId,
    /// The uploaded file name (no directories).
    pub name: Name,
    /// Key of the content in the blob store.
    pub blob_key: String,
    /// Digest of the content.
    pub sha256: Sha256Hex,
    /// Size in bytes.
    pub size: u64,
    /// Who uploaded it.
    pub uploaded_by: Option<UserId>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When it will be purged.
    pub expire_at: DateTime<Utc>,
}

impl StagedFile {
    /// The expiry instant for a file uploaded at `now` and kept for `days`.
    pub fn expiry(now: DateTime<Utc>, days: ExpireDays) -> DateTime<Utc> {
        now + Duration::days(i64::from(days.days()))
    }

    /// Whether the file is due for purging at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expire_at <= now
    }
}
