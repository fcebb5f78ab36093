//! The `[archive]` table: where finished lectures' archives are kept, and for how long.

use super::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// Which object store holds the archives.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A folder on this node (`dir`). Only this node can serve its archives.
    #[default]
    Local,
    /// An S3-compatible bucket every node reads, so any node serves any archive.
    S3,
}

/// The `[archive]` table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveSettings {
    /// `"local"` (default) or `"s3"`.
    pub store: StoreKind,
    /// The local store's folder; none: `archive` beside `[media] recording_dir`.
    pub dir: Option<PathBuf>,
    /// The S3 endpoint (`https://s3.ap-northeast-1.amazonaws.com`, `http://127.0.0.1:9000`);
    /// none: AWS's own for `region`.
    pub endpoint: Option<String>,
    /// The S3 bucket.
    pub bucket: Option<String>,
    /// The S3 region (`us-east-1` when none).
    pub region: Option<String>,
    /// The S3 access key id; better given as `ARCHIVE_S3_ACCESS_KEY_ID` in the environment.
    pub access_key_id: Option<String>,
    /// The S3 secret key; better given as `ARCHIVE_S3_SECRET_ACCESS_KEY` in the environment.
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint (a store on the nodes' own network, tests).
    pub allow_http: bool,
    /// How long an archive is kept when the portal set no end date for its lecture (days).
    pub retention_days: u32,
    /// How often expired archives are looked for (seconds).
    pub sweep_interval_secs: u64,
    /// Recording stops cleanly (and the archive keeps what was written) when the recording
    /// folder's file system has less than this many megabytes free.
    pub min_free_mb: u64,
    /// How long the archive room's signed media URLs stay good (seconds); the page asks for
    /// fresh ones when they run out.
    pub media_url_ttl_secs: u64,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            store: StoreKind::Local,
            dir: None,
            endpoint: None,
            bucket: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            retention_days: 365,
            sweep_interval_secs: 3600,
            min_free_mb: 512,
            media_url_ttl_secs: 3600,
        }
    }
}

impl ArchiveSettings {
    /// Fills the S3 keys from `ARCHIVE_S3_ACCESS_KEY_ID` and `ARCHIVE_S3_SECRET_ACCESS_KEY`
    /// when set (they win over the file), and checks the table is complete.
    pub(super) fn resolve(mut self) -> Result<Self, ConfigError> {
        if let Ok(id) = std::env::var("ARCHIVE_S3_ACCESS_KEY_ID") {
            self.access_key_id = Some(id);
        }
        if let Ok(key) = std::env::var("ARCHIVE_S3_SECRET_ACCESS_KEY") {
            self.secret_access_key = Some(key);
        }
        if self.store == StoreKind::S3 && self.bucket.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::Archive("store = \"s3\" needs a bucket"));
        }
        if self.sweep_interval_secs == 0 {
            return Err(ConfigError::Archive(
                "sweep_interval_secs must be at least 1",
            ));
        }
        if !(10..=86_400).contains(&self.media_url_ttl_secs) {
            return Err(ConfigError::Archive(
                "media_url_ttl_secs must be between 10 and 86400",
            ));
        }
        Ok(self)
    }
}
