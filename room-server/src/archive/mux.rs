//! The recording made into WebM files on one timeline, and `manifest.json`.
//!
//! The recording folder (written by `signaling`'s recorder) holds VP8 in IVF and Opus in Ogg,
//! one file per published track, and `index.json` mapping each file's media time to the
//! node's wall clock. Here every frame is placed on the archive's timeline (0 = the moment
//! the lecture went live; the clock is `unix_ms - started_at_ms`), frames outside the live
//! span are trimmed, and the frames are copied (never re-encoded) into WebM through libwebm's
//! muxer, which writes `Cues` and `Duration` so browsers seek on range requests:
//! - `camera.webm`: the camera's video with the instructor's audio (every track of the
//!   streams that carry audio, reconnects joined on the timeline);
//! - `screen-1.webm`, `screen-2.webm`…: each screen-share session (a video track of another
//!   stream), its own file with its offset in the manifest.
//!
//! Truncated input (a node that stopped mid-lecture) is read up to its last whole frame, and
//! an `index.json` a few seconds behind its files is extrapolated from its last sync point.

use super::store::{ArchiveError, ArchiveStore};
use super::{CAMERA_NAME, MANIFEST_NAME, screen_name};
use protocol::LectureId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The manifest's format tag.
pub const MANIFEST: &str = "live-lecture-archive/1";

/// `manifest.json`: the archive's files on its timeline.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`MANIFEST`].
    pub format: String,
    /// The lecture.
    pub lecture: String,
    /// Unix ms of the timeline's 0 (the lecture went live).
    pub started_at_ms: u64,
    /// The timeline's length (the lecture's live span), ms.
    pub duration_ms: u64,
    /// The files, camera first, then the screen shares in order.
    pub tracks: Vec<ManifestTrack>,
}

/// One file of the archive.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestTrack {
    /// Camera (with audio) or a screen share.
    pub kind: TrackKind,
    /// Its object name (`camera.webm`, `screen-1.webm`).
    pub name: String,
    /// Where the file's time 0 falls on the timeline, ms.
    pub start_ms: u64,
    /// The file's length, ms.
    pub duration_ms: u64,
}

/// What a file shows.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    /// The camera with the instructor's audio.
    Camera,
    /// One screen-share session.
    Screen,
}

/// `index.json` as written by the recorder (only what is read here).
#[derive(Debug, Deserialize)]
struct Index {
    tracks: Vec<IndexTrack>,
}

#[derive(Debug, Deserialize)]
struct IndexTrack {
    file: String,
    kind: String,
    stream_id: String,
    track_id: String,
    first_unix_ms: Option<u64>,
    #[serde(default)]
    sync: Vec<[u64; 2]>,
}

impl IndexTrack {
    /// Wall-clock time of media time `media_ms`: from the last sync point at or before it
    /// (the first one for times before every sync point, extrapolated past the last).
    fn unix_ms(&self, media_ms: u64) -> Option<u64> {
        let i = self.sync.partition_point(|[m, _]| *m <= media_ms);
        match i.checked_sub(1).and_then(|i| self.sync.get(i)) {
            Some([m, at]) => Some(at + (media_ms - m)),
            None => self.first_unix_ms.map(|at| at + media_ms),
        }
    }
}

/// A frame on the archive's timeline.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    /// Timeline ms.
    pub at_ms: u64,
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// Reads VP8 frames from an IVF file: `(media ms, frame)`, up to the last whole frame.
pub(crate) fn read_ivf(path: &Path) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let bytes = std::fs::read(path)?;
    let mut out = Vec::new();
    if bytes.len() < 32 || &bytes[0..4] != b"DKIF" {
        return Ok(out);
    }
    let header_len = usize::from(u16::from_le_bytes([bytes[6], bytes[7]])).max(32);
    let mut at = header_len;
    while let Some(head) = bytes.get(at..at + 12) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&head[4..12]);
        let Some(frame) = bytes.get(at + 12..at + 12 + len) else {
            break; // cut off mid-frame
        };
        if !frame.is_empty() {
            out.push((u64::from_le_bytes(ts), frame.to_vec()));
        }
        at += 12 + len;
    }
    Ok(out)
}

/// Reads Opus packets from an Ogg file: `(media ms, packet)`, up to the last whole page.
/// The two header packets are skipped; a packet's time is its page's granule position less
/// its own samples (one packet per page, as the recorder writes).
pub(crate) fn read_ogg(path: &Path) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut packets_seen = 0u64;
    let mut partial: Vec<u8> = Vec::new();
    while let Some(head) = bytes.get(at..at + 27) {
        if &head[0..4] != b"OggS" {
            break;
        }
        let mut g = [0u8; 8];
        g.copy_from_slice(&head[6..14]);
        let granule = u64::from_le_bytes(g);
        let segments = usize::from(head[26]);
        let Some(lacing) = bytes.get(at + 27..at + 27 + segments) else {
            break;
        };
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let body_at = at + 27 + segments;
        let Some(body) = bytes.get(body_at..body_at + body_len) else {
            break; // cut off mid-page
        };
        let mut offset = 0;
        for &l in lacing {
            partial.extend_from_slice(&body[offset..offset + usize::from(l)]);
            offset += usize::from(l);
            if l < 255 {
                let packet = std::mem::take(&mut partial);
                packets_seen += 1;
                if packets_seen > 2 && !packet.is_empty() {
                    let samples = signaling::opus_samples(&packet).unwrap_or(960);
                    let start = granule.saturating_sub(samples);
                    out.push((start / 48, packet));
                }
            }
        }
        at = body_at + body_len;
    }
    Ok(out)
}

fn vp8_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// Width and height from a VP8 keyframe (RFC 6386 9.1).
fn vp8_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((u32::from(width), u32::from(height)))
}

/// One output file's frames, before muxing.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    pub video: Vec<Frame>,
    pub audio: Vec<Frame>,
}

/// The live span, on the wall clock.
#[derive(Clone, Copy, Debug)]
struct Span {
    from_ms: u64,
    until_ms: u64,
}

impl Span {
    /// Timeline ms of a wall-clock time inside the span.
    fn place(self, unix_ms: u64) -> Option<u64> {
        (self.from_ms..=self.until_ms)
            .contains(&unix_ms)
            .then(|| unix_ms - self.from_ms)
    }
}

/// Places the frames of one recorded file on the timeline, trimmed to the live span; video
/// starts at a keyframe.
fn place(dir: &Path, track: &IndexTrack, span: Span) -> io::Result<(bool, Vec<Frame>)> {
    let video = track.kind == "video";
    let path = dir.join(&track.file);
    if track.file.contains('/') || track.file.contains("..") || !path.exists() {
        return Ok((video, Vec::new()));
    }
    let raw = if video {
        read_ivf(&path)?
    } else {
        read_ogg(&path)?
    };
    let mut frames = Vec::with_capacity(raw.len());
    let mut started = !video;
    for (media_ms, data) in raw {
        let Some(at_ms) = track.unix_ms(media_ms).and_then(|u| span.place(u)) else {
            continue;
        };
        let keyframe = !video || vp8_keyframe(&data);
        if !started {
            if !keyframe {
                continue;
            }
            started = true;
        }
        frames.push(Frame {
            at_ms,
            data,
            keyframe,
        });
    }
    Ok((video, frames))
}

/// Joins frames of several recorded files of one output track: in time order, each later
/// file's frames only after the earlier ones' (a frame going back in time is dropped), and a
/// video joined mid-way restarting at a keyframe.
fn join(mut parts: Vec<Vec<Frame>>) -> Vec<Frame> {
    parts.sort_by_key(|p| p.first().map_or(u64::MAX, |f| f.at_ms));
    let mut out: Vec<Frame> = Vec::new();
    for part in parts {
        let mut need_key = !out.is_empty();
        for f in part {
            if out.last().is_some_and(|last| f.at_ms <= last.at_ms) {
                need_key = true;
                continue;
            }
            if need_key {
                if !f.keyframe {
                    continue;
                }
                need_key = false;
            }
            out.push(f);
        }
    }
    out
}

/// Reads a recording folder into the files to write, on the timeline of the live span.
pub(crate) fn plan(
    dir: &Path,
    live_from_ms: u64,
    live_until_ms: u64,
) -> Result<(Planned, Vec<Planned>), ArchiveError> {
    let index: Index = serde_json::from_slice(&std::fs::read(dir.join("index.json"))?)?;
    let span = Span {
        from_ms: live_from_ms,
        until_ms: live_until_ms.max(live_from_ms),
    };
    // The camera is every stream that carries audio; without audio, the first video stream.
    let mut camera_streams: Vec<&str> = index
        .tracks
        .iter()
        .filter(|t| t.kind == "audio")
        .map(|t| t.stream_id.as_str())
        .collect();
    if camera_streams.is_empty()
        && let Some(t) = index.tracks.first()
    {
        camera_streams.push(&t.stream_id);
    }
    let mut cam_video = Vec::new();
    let mut cam_audio = Vec::new();
    // Screen sessions by (stream, track), in order of first appearance.
    let mut sessions: BTreeMap<usize, Vec<Vec<Frame>>> = BTreeMap::new();
    let mut session_keys: Vec<(&str, &str)> = Vec::new();
    for track in &index.tracks {
        let (video, frames) = place(dir, track, span)?;
        if camera_streams.contains(&track.stream_id.as_str()) {
            if video {
                cam_video.push(frames);
            } else {
                cam_audio.push(frames);
            }
        } else if video {
            let key = (track.stream_id.as_str(), track.track_id.as_str());
            let n = match session_keys.iter().position(|k| *k == key) {
                Some(n) => n,
                None => {
                    session_keys.push(key);
                    session_keys.len() - 1
                }
            };
            sessions.entry(n).or_default().push(frames);
        }
    }
    let camera = Planned {
        video: join(cam_video),
        audio: join(cam_audio),
    };
    let screens = sessions
        .into_values()
        .map(|parts| Planned {
            video: join(parts),
            audio: Vec::new(),
        })
        .filter(|p| !p.video.is_empty())
        .collect();
    Ok((camera, screens))
}

/// A 20 ms Opus frame's length, ms: the last audio frame's duration.
const OPUS_FRAME_MS: u64 = 20;

impl Planned {
    /// Timeline ms of the file's first frame, and its length.
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        let first = self
            .video
            .first()
            .map(|f| f.at_ms)
            .into_iter()
            .chain(self.audio.first().map(|f| f.at_ms))
            .min()?;
        let video_end = self.video.last().map(|f| {
            // The last frame shows for the typical frame interval.
            let n = self.video.len() as u64;
            let step = if n > 1 {
                (f.at_ms - self.video[0].at_ms) / (n - 1)
            } else {
                33
            };
            f.at_ms + step.max(1)
        });
        let audio_end = self.audio.last().map(|f| f.at_ms + OPUS_FRAME_MS);
        let end = video_end.into_iter().chain(audio_end).max()?;
        Some((first, end - first))
    }

    /// Writes the WebM file to `out`; returns (timeline start, duration) in ms. `None`: no
    /// frames (no file written).
    pub(crate) fn write_webm(&self, out: &Path) -> Result<Option<(u64, u64)>, ArchiveError> {
        use webm::mux::{AudioCodecId, SegmentBuilder, VideoCodecId, Writer};
        let Some((start, duration)) = self.span() else {
            return Ok(None);
        };
        let mux_err = |e: webm::mux::Error| ArchiveError::Mux(format!("{e:?}"));
        let file = std::fs::File::create(out)?;
        let mut builder = SegmentBuilder::new(Writer::new(file))
            .map_err(mux_err)?
            .set_writing_app("live-lecture")
            .map_err(mux_err)?;
        let mut video_track = None;
        let mut audio_track = None;
        if let Some(first) = self.video.first() {
            let (w, h) = self
                .video
                .iter()
                .find_map(|f| vp8_size(&f.data))
                .or_else(|| vp8_size(&first.data))
                .unwrap_or((640, 480));
            let (b, t) = builder
                .add_video_track(w.max(1), h.max(1), VideoCodecId::VP8, None)
                .map_err(mux_err)?;
            builder = b;
            video_track = Some(t);
        }
        if !self.audio.is_empty() {
            let (b, t) = builder
                .add_audio_track(48_000, 2, AudioCodecId::Opus, None)
                .map_err(mux_err)?;
            builder = b.set_codec_private(t, &opus_head()).map_err(mux_err)?;
            audio_track = Some(t);
        }
        let mut segment = builder.build();
        // Both tracks' frames in time order (libwebm needs timestamps monotonic overall);
        // video first on a tie, so a cluster starts at its keyframe.
        let (mut v, mut a) = (0usize, 0usize);
        loop {
            let next_video = self.video.get(v);
            let next_audio = self.audio.get(a);
            let take_video = match (next_video, next_audio) {
                (Some(fv), Some(fa)) => fv.at_ms <= fa.at_ms,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let (track, frame) = if take_video {
                v += 1;
                (video_track.map(Into::into), next_video)
            } else {
                a += 1;
                (audio_track.map(Into::into), next_audio)
            };
            if let (Some(track), Some(frame)) = (track, frame) {
                let ns = (frame.at_ms - start) * 1_000_000;
                let track: webm::mux::TrackNum = track;
                segment
                    .add_frame(track, &frame.data, ns, frame.keyframe)
                    .map_err(mux_err)?;
            }
        }
        segment
            .finalize(Some(duration))
            .map_err(|_| ArchiveError::Mux("finalizing the WebM segment".into()))?;
        Ok(Some((start, duration)))
    }
}

/// The `OpusHead` of WebRTC's Opus (RFC 7845 5.1): stereo, no pre-skip, 48 kHz.
fn opus_head() -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1);
    head.push(2);
    head.extend_from_slice(&0u16.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// Makes `lecture`'s archive from its recording folder `recording`, on the timeline of the
/// live span `live_from_ms..live_until_ms` (Unix ms), and stores it in `store`: the WebM
/// files, then `manifest.json` last (an archive without a manifest is not ready). Running
/// it again makes the same archive again (idempotent).
pub async fn make_archive(
    recording: &Path,
    lecture: &LectureId,
    live_from_ms: u64,
    live_until_ms: u64,
    store: &ArchiveStore,
) -> Result<Manifest, ArchiveError> {
    let began = std::time::Instant::now();
    let dir = recording.to_owned();
    let work = tempdir_in(&dir)?;
    let work_in_task = work.clone();
    let files = tokio::task::spawn_blocking(move || {
        let (camera, screens) = plan(&dir, live_from_ms, live_until_ms)?;
        let mut files: Vec<(TrackKind, String, PathBuf, u64, u64)> = Vec::new();
        let path = work_in_task.join(CAMERA_NAME);
        if let Some((start, duration)) = camera.write_webm(&path)? {
            files.push((
                TrackKind::Camera,
                CAMERA_NAME.to_owned(),
                path,
                start,
                duration,
            ));
        }
        for (i, screen) in screens.iter().enumerate() {
            let name = screen_name(i + 1);
            let path = work_in_task.join(&name);
            if let Some((start, duration)) = screen.write_webm(&path)? {
                files.push((TrackKind::Screen, name, path, start, duration));
            }
        }
        Ok::<_, ArchiveError>(files)
    })
    .await
    .map_err(|e| ArchiveError::Mux(format!("muxing task: {e}")))?;
    let result = async {
        let files = files?;
        let mut tracks = Vec::with_capacity(files.len());
        for (kind, name, path, start_ms, duration_ms) in files {
            store.put(lecture, &name, path.as_path()).await?;
            tracks.push(ManifestTrack {
                kind,
                name,
                start_ms,
                duration_ms,
            });
        }
        let manifest = Manifest {
            format: MANIFEST.to_owned(),
            lecture: lecture.as_str().to_owned(),
            started_at_ms: live_from_ms,
            duration_ms: live_until_ms.saturating_sub(live_from_ms),
            tracks,
        };
        store.put_json(lecture, MANIFEST_NAME, &manifest).await?;
        Ok(manifest)
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    match &result {
        Ok(m) => tracing::info!(
            lecture = %lecture.as_str(),
            files = m.tracks.len(),
            duration_ms = m.duration_ms,
            took_ms = began.elapsed().as_millis() as u64,
            "archive made"
        ),
        Err(err) => tracing::warn!(lecture = %lecture.as_str(), %err, "archive not made"),
    }
    result
}

/// A fresh working folder beside the recording (same file system, so no surprise on space).
fn tempdir_in(recording: &Path) -> io::Result<PathBuf> {
    let parent = recording.parent().unwrap_or(recording);
    let mut n = [0u8; 8];
    getrandom::fill(&mut n).map_err(io::Error::other)?;
    let dir = parent.join(format!(".archive-work-{:016x}", u64::from_le_bytes(n)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
