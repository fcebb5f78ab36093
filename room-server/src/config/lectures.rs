//! The `[[lectures]]` tables: lectures written in the config file.

use super::ConfigError;
use crate::gate::model::{Lecture, LectureStatus, StaffMember, validate_lecture};
use protocol::UnixMillis;
use protocol::server::Emotion;
use serde::Deserialize;

/// A lecture as written in the config file (`[[lectures]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LectureEntry {
    /// Lecture id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Start, RFC 3339 (`2026-12-01T19:00:00+09:00`).
    pub starts_at: String,
    /// End, RFC 3339.
    pub ends_at: String,
    /// Seat grid rows.
    pub rows: u16,
    /// Seat grid columns.
    pub cols: u16,
    /// Emotion buttons; the default five when left out.
    #[serde(default)]
    pub emotions: Vec<Emotion>,
    /// Instructors and moderators (`{ account = "…", role = "instructor" }`).
    #[serde(default)]
    pub staff: Vec<StaffMember>,
}

fn parse_time(id: &str, field: &str, value: &str) -> Result<UnixMillis, ConfigError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|e| ConfigError::Lecture {
            id: id.to_owned(),
            message: format!("{field} `{value}` is not an RFC 3339 time: {e}"),
        })?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms)
        .map(UnixMillis)
        .map_err(|_| ConfigError::Lecture {
            id: id.to_owned(),
            message: format!("{field} is before 1970"),
        })
}

impl LectureEntry {
    /// The lecture this entry describes, checked.
    pub fn to_lecture(&self) -> Result<Lecture, ConfigError> {
        let lecture = Lecture {
            id: self.id.clone(),
            title: self.title.clone(),
            starts_at: parse_time(&self.id, "starts_at", &self.starts_at)?,
            ends_at: parse_time(&self.id, "ends_at", &self.ends_at)?,
            rows: self.rows,
            cols: self.cols,
            emotions: self.emotions.clone(),
            archive_available_at: None,
            status: LectureStatus::Scheduled,
            cancel_reason: None,
            started_at: None,
            ended_at: None,
            staff: self.staff.clone(),
        };
        validate_lecture(&lecture.info()).map_err(|e| ConfigError::Lecture {
            id: lecture.id.to_string(),
            message: e.to_string(),
        })?;
        Ok(lecture)
    }
}
