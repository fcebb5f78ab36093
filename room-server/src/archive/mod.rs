//! A lecture's archive: what a learner replays after the lecture.
//!
//! - [`timeline`]: the chat, calls, announcements and reaction tallies on the recording's
//!   clock (`timeline.json`).

// Built by the origin when the archive is made; the serving side comes next.
#[allow(dead_code)]
pub(crate) mod timeline;
