//! Where archives are kept: a local folder or an S3-compatible bucket, behind one handle.
//!
//! Objects are named `{lecture}/{name}` (`lecture-7/camera.webm`). Both kinds go through the
//! `object_store` crate, so range reads, listing and deletion behave the same on either.

use crate::config::{ArchiveSettings, StoreKind};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, aws::AmazonS3Builder,
    buffered::BufWriter, local::LocalFileSystem, path::Path as StorePath,
};
use protocol::LectureId;
use serde::{Serialize, de::DeserializeOwned};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// No such object (or lecture).
    #[error("no such archive object")]
    NotFound,
    /// A lecture id or object name that cannot be a path segment (`/`, `..`, empty, long).
    #[error("not a usable archive name: {0:?}")]
    BadName(String),
    /// The asked range starts at or after the end of the object.
    #[error("range not satisfiable (object is {total_len} bytes)")]
    RangeNotSatisfiable {
        /// The object's length.
        total_len: u64,
    },
    /// The `[archive]` settings do not make a store.
    #[error("archive store configuration: {0}")]
    Config(String),
    /// The object store failed.
    #[error("archive store: {0}")]
    Store(#[source] object_store::Error),
    /// A local file (the recording, a file to upload) could not be read or written.
    #[error("archive file: {0}")]
    Io(#[from] std::io::Error),
    /// A JSON object did not parse.
    #[error("archive JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The recording could not be made into an archive.
    #[error("archive muxing: {0}")]
    Mux(String),
}

impl From<object_store::Error> for ArchiveError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

/// What to store: bytes in memory or a file (streamed, in parts on S3).
#[derive(Debug)]
pub enum Body {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A local file, read as it is sent.
    File(PathBuf),
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::Bytes(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b.into())
    }
}

impl From<PathBuf> for Body {
    fn from(p: PathBuf) -> Self {
        Self::File(p)
    }
}

impl From<&Path> for Body {
    fn from(p: &Path) -> Self {
        Self::File(p.to_owned())
    }
}

/// An object's bytes as they arrive from the store.
pub type ByteStream = BoxStream<'static, Result<Bytes, ArchiveError>>;

/// A (range of an) object: its whole length, the bytes served, and the bytes.
pub struct Ranged {
    /// The whole object's length (for `Content-Range`).
    pub total_len: u64,
    /// Which bytes `body` holds (the asked range clipped to the object).
    pub range: Range<u64>,
    /// The bytes.
    pub body: ByteStream,
}

impl std::fmt::Debug for Ranged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranged")
            .field("total_len", &self.total_len)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Ranged {
    /// All the bytes in memory (for small objects and tests).
    pub async fn bytes(self) -> Result<Bytes, ArchiveError> {
        let parts: Vec<Bytes> = self.body.try_collect().await?;
        Ok(parts.concat().into())
    }
}

/// The archives' store: a cheaply cloneable handle.
#[derive(Clone, Debug)]
pub struct ArchiveStore {
    inner: Arc<dyn ObjectStore>,
    kind: StoreKind,
    /// The local store's folder.
    local_root: Option<PathBuf>,
}

/// The longest lecture id or object name accepted.
const MAX_NAME: usize = 128;

fn segment(s: &str) -> Result<&str, ArchiveError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s)
    } else {
        Err(ArchiveError::BadName(s.chars().take(MAX_NAME).collect()))
    }
}

fn object(lecture: &LectureId, name: &str) -> Result<StorePath, ArchiveError> {
    Ok(StorePath::from(format!(
        "{}/{}",
        segment(lecture.as_str())?,
        segment(name)?
    )))
}

impl ArchiveStore {
    /// The store the `[archive]` table names. `recording_dir` places the default local
    /// folder (`archive` beside it; `archive` in the working folder without one).
    pub fn from_settings(
        settings: &ArchiveSettings,
        recording_dir: Option<&Path>,
    ) -> Result<Self, ArchiveError> {
        match settings.store {
            StoreKind::Local => {
                let dir = settings.dir.clone().unwrap_or_else(|| {
                    recording_dir
                        .and_then(Path::parent)
                        .map(|p| p.join("archive"))
                        .unwrap_or_else(|| PathBuf::from("archive"))
                });
                Self::local(&dir)
            }
            StoreKind::S3 => {
                let bucket = settings
                    .bucket
                    .as_deref()
                    .ok_or_else(|| ArchiveError::Config("store = \"s3\" needs a bucket".into()))?;
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
                    .with_allow_http(settings.allow_http);
                if let Some(endpoint) = &settings.endpoint {
                    b = b.with_endpoint(endpoint);
                }
                if let Some(id) = &settings.access_key_id {
                    b = b.with_access_key_id(id);
                }
                if let Some(key) = &settings.secret_access_key {
                    b = b.with_secret_access_key(key);
                }
                let s3 = b.build().map_err(|e| ArchiveError::Config(e.to_string()))?;
                Ok(Self {
                    inner: Arc::new(s3),
                    kind: StoreKind::S3,
                    local_root: None,
                })
            }
        }
    }

    /// A store in the local folder `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<Self, ArchiveError> {
        std::fs::create_dir_all(dir)?;
        let fs = LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self {
            inner: Arc::new(fs),
            kind: StoreKind::Local,
            local_root: Some(dir.to_owned()),
        })
    }

    /// Which kind of store this is.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Stores `body` as `name` in `lecture`'s archive, replacing what was there.
    pub async fn put(
        &self,
        lecture: &LectureId,
        name: &str,
        body: impl Into<Body>,
    ) -> Result<(), ArchiveError> {
        let path = object(lecture, name)?;
        match body.into() {
            Body::Bytes(b) => {
                self.inner.put(&path, PutPayload::from(b)).await?;
            }
            Body::File(file) => {
                let mut src = tokio::fs::File::open(&file).await?;
                let mut dst = BufWriter::new(Arc::clone(&self.inner), path);
                if let Err(e) = tokio::io::copy(&mut src, &mut dst).await {
                    // Parts already sent are dropped with the upload.
                    let _ = dst.abort().await;
                    return Err(e.into());
                }
                dst.shutdown().await?;
            }
        }
        Ok(())
    }

    /// `name` of `lecture`'s archive, or the bytes `range` of it (clipped to its end).
    pub async fn get_range(
        &self,
        lecture: &LectureId,
        name: &str,
        range: Option<Range<u64>>,
    ) -> Result<Ranged, ArchiveError> {
        let path = object(lecture, name)?;
        if let Some(r) = &range {
            // The store's own answer to an empty or out-of-bounds range differs by kind.
            let total_len = self
                .head(lecture, name)
                .await?
                .ok_or(ArchiveError::NotFound)?;
            if r.start >= total_len || r.start >= r.end {
                return Err(ArchiveError::RangeNotSatisfiable { total_len });
            }
        }
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self.inner.get_opts(&path, opts).await?;
        let total_len = got.meta.size;
        let range = got.range.clone();
        let body = got.into_stream().map_err(ArchiveError::from).boxed();
        Ok(Ranged {
            total_len,
            range,
            body,
        })
    }

    /// The length of `name` in `lecture`'s archive; none: no such object.
    pub async fn head(&self, lecture: &LectureId, name: &str) -> Result<Option<u64>, ArchiveError> {
        match self.inner.head(&object(lecture, name)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every lecture with at least one object in the store.
    pub async fn list_lectures(&self) -> Result<Vec<LectureId>, ArchiveError> {
        let listed = self.inner.list_with_delimiter(None).await?;
        let mut out: Vec<LectureId> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.parts().next().map(|s| LectureId::from(s.as_ref())))
            .collect();
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }

    /// Deletes every object of `lecture`'s archive (none there: nothing to do).
    pub async fn delete_lecture(&self, lecture: &LectureId) -> Result<(), ArchiveError> {
        let prefix = StorePath::from(segment(lecture.as_str())?);
        let names: Vec<StorePath> = self
            .inner
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for name in names {
            match self.inner.delete(&name).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(root) = &self.local_root {
            // The local store leaves the emptied folder behind, and listing would name it.
            let _ = tokio::fs::remove_dir(root.join(lecture.as_str())).await;
        }
        Ok(())
    }

    /// `name` of `lecture`'s archive as JSON; none: no such object.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        lecture: &LectureId,
        name: &str,
    ) -> Result<Option<T>, ArchiveError> {
        match self.get_range(lecture, name, None).await {
            Ok(got) => Ok(Some(serde_json::from_slice(&got.bytes().await?)?)),
            Err(ArchiveError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `value` as JSON under `name` in `lecture`'s archive.
    pub async fn put_json<T: Serialize>(
        &self,
        lecture: &LectureId,
        name: &str,
        value: &T,
    ) -> Result<(), ArchiveError> {
        let bytes = serde_json::to_vec_pretty(value)?;
        self.put(lecture, name, bytes).await
    }
}
