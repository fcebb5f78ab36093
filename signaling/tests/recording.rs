//! Recording for the archive, with real webrtc-crate peers on loopback: the instructor sends
//! camera-shaped VP8 and Opus for about two seconds and shares the screen twice; the files
//! and `index.json` on disk are then parsed.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Instructor, Learner, loopback_config, wait_until};
use rtc::media::io::ogg_reader::OggReader;
use serde_json::Value;
use signaling::{Broadcast, SignalingConfig};

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A fresh folder under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "signaling-{name}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One IVF file: header fields and every frame's (timestamp, data).
struct Ivf {
    fourcc: [u8; 4],
    width: u16,
    height: u16,
    timebase: (u32, u32),
    header_frames: u32,
    frames: Vec<(u64, Vec<u8>)>,
}

fn parse_ivf(path: &Path) -> Ivf {
    let bytes = fs::read(path).unwrap();
    assert!(bytes.len() >= 32, "{path:?}: shorter than an IVF header");
    assert_eq!(&bytes[0..4], b"DKIF", "{path:?}: IVF signature");
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!(u16_at(6), 32, "header size");
    let mut frames = Vec::new();
    let mut at = 32;
    while at < bytes.len() {
        assert!(at + 12 <= bytes.len(), "{path:?}: truncated frame header");
        let len = u32_at(at) as usize;
        let timestamp = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap());
        assert!(at + 12 + len <= bytes.len(), "{path:?}: truncated frame");
        frames.push((timestamp, bytes[at + 12..at + 12 + len].to_vec()));
        at += 12 + len;
    }
    Ivf {
        fourcc: bytes[8..12].try_into().unwrap(),
        width: u16_at(12),
        height: u16_at(14),
        timebase: (u32_at(16), u32_at(20)),
        header_frames: u32_at(24),
        frames,
    }
}

/// One Ogg page: header type, granule position, payload.
struct Page {
    header_type: u8,
    granule: u64,
    sequence: u32,
    payload: Vec<u8>,
}

fn parse_ogg(path: &Path) -> Vec<Page> {
    let bytes = fs::read(path).unwrap();
    let mut pages = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(
            &bytes[at..at + 4],
            b"OggS",
            "{path:?}: page {} signature",
            pages.len()
        );
        let segments = usize::from(bytes[at + 26]);
        let lacing = &bytes[at + 27..at + 27 + segments];
        let len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let start = at + 27 + segments;
        pages.push(Page {
            header_type: bytes[at + 5],
            granule: u64::from_le_bytes(bytes[at + 6..at + 14].try_into().unwrap()),
            sequence: u32::from_le_bytes(bytes[at + 18..at + 22].try_into().unwrap()),
            payload: bytes[start..start + len].to_vec(),
        });
        at = start + len;
    }
    // An independent reader, checking every page's CRC.
    let (mut reader, head) = OggReader::new(fs::File::open(path).unwrap(), true).unwrap();
    assert_eq!(head.sample_rate, 48_000);
    let mut checked = 1;
    while reader.parse_next_page().is_ok() {
        checked += 1;
    }
    assert_eq!(
        checked,
        pages.len(),
        "{path:?}: pages failing the CRC check"
    );
    pages
}

/// The `[media_ms, unix_ms]` pairs of a track entry.
fn sync_points(track: &Value) -> Vec<(u64, u64)> {
    track["sync"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instructors_tracks_are_recorded_with_a_wall_clock_index() {
    let root = TempDir::new("recording");
    let broadcast = Arc::new(Broadcast::with_recording_id(
        SignalingConfig {
            recording_dir: Some(root.0.clone()),
            ..loopback_config()
        },
        "lecture 42/../x",
    ));
    let started_ms = unix_ms();
    let mut instructor = Instructor::publish_frames(&broadcast).await;
    let mut learner = Learner::join(&broadcast, 1).await;
    learner.connected().await;

    // About two seconds of camera and microphone (100 packets a second in all).
    wait_until("about 2 s of camera and microphone are recorded", || {
        broadcast.stats().recorded_packets >= 200
    })
    .await;
    // Two screen-share sessions, a file each.
    for session in 1..=2 {
        instructor.share_screen(&broadcast).await;
        wait_until("the screen share is being recorded", || {
            broadcast.stats().recording_tracks == 3
        })
        .await;
        let before = broadcast.stats().recorded_packets;
        wait_until("some screen packets are recorded", || {
            broadcast.stats().recorded_packets >= before + 60
        })
        .await;
        instructor.stop_screen(&broadcast).await;
        wait_until("the screen recording is closed", || {
            broadcast.stats().recording_tracks == 2
        })
        .await;
        assert_eq!(broadcast.stats().recording_errors, 0, "session {session}");
    }
    assert!(
        learner.counts().0 > 0,
        "the learner received the camera meanwhile"
    );

    // The node closes the instructor's connection (a remote close is only noticed at the ICE
    // timeout): every track ends, every file is closed.
    broadcast.unpublish().await.unwrap();
    wait_until("every recording is closed", || {
        broadcast.stats().recording_tracks == 0
    })
    .await;
    instructor.close().await;
    broadcast.close().await;
    wait_until("every task has ended", || broadcast.stats().tasks == 0).await;
    let ended_ms = unix_ms();

    let stats = broadcast.stats();
    assert_eq!(stats.recording_errors, 0, "{stats:?}");
    assert_eq!(stats.recording_dropped_packets, 0, "{stats:?}");

    // The folder: named from the sanitized id, under the configured root.
    let dir = broadcast.recording_dir().unwrap();
    assert_eq!(dir, root.0.join("lecture_42____x"));
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["format"], "live-lecture-recording/1");
    let tracks = index["tracks"].as_array().unwrap();
    assert_eq!(
        tracks.len(),
        4,
        "camera, microphone, two screen shares: {index:#}"
    );
    let mut files: Vec<_> = tracks
        .iter()
        .map(|t| t["file"].as_str().unwrap().to_owned())
        .collect();
    files.sort();
    files.dedup();
    assert_eq!(files.len(), 4, "a file per track");

    for track in tracks {
        let file = dir.join(track["file"].as_str().unwrap());
        assert_eq!(track["complete"], true, "{track:#}");
        let first = track["first_unix_ms"].as_u64().unwrap();
        assert!(
            (started_ms..=ended_ms).contains(&first),
            "first packet at {first}, test ran {started_ms}..={ended_ms}"
        );
        let last = track["last_unix_ms"].as_u64().unwrap();
        assert!(first <= last && last <= ended_ms);
        let sync = sync_points(track);
        assert_eq!(sync[0], (0, first), "media time 0 is the first packet");
        for pair in sync.windows(2) {
            assert!(pair[0].0 < pair[1].0, "media time not increasing: {sync:?}");
            assert!(pair[0].1 < pair[1].1, "wall clock not increasing: {sync:?}");
        }
        let frames = track["frames"].as_u64().unwrap();
        assert!(frames > 0, "{track:#}");

        match track["kind"].as_str().unwrap() {
            "video" => {
                let ivf = parse_ivf(&file);
                assert_eq!(&ivf.fourcc, b"VP80");
                assert_eq!(ivf.timebase, (1000, 1), "millisecond timestamps");
                assert_eq!(ivf.header_frames as usize, ivf.frames.len());
                assert_eq!(ivf.frames.len() as u64, frames);
                assert_eq!((ivf.width, ivf.height), (640, 360));
                assert_eq!(
                    ivf.frames[0].1[0] & 0x01,
                    0,
                    "the first frame is a keyframe"
                );
                for pair in ivf.frames.windows(2) {
                    assert!(pair[0].0 < pair[1].0, "frame timestamps not increasing");
                }
                if track["stream_id"] == "camera" {
                    // Two packets of 300 bytes a frame, minus a 1-byte descriptor each.
                    assert!(ivf.frames.iter().all(|(_, f)| f.len() == 598));
                    assert!(ivf.frames.len() >= 40, "{} camera frames", ivf.frames.len());
                    // Frames 40 ms apart in media time, the timestamp wrap included.
                    assert!(ivf.frames.windows(2).all(|p| p[1].0 - p[0].0 == 40));
                }
            }
            "audio" => {
                let pages = parse_ogg(&file);
                assert_eq!(&pages[0].payload[..8], b"OpusHead");
                assert_eq!(pages[0].header_type, 2, "beginning of stream");
                assert_eq!(&pages[1].payload[..8], b"OpusTags");
                assert_eq!(pages.last().unwrap().header_type, 4, "end of stream");
                let audio = &pages[2..];
                assert_eq!(audio.len() as u64, frames);
                assert!(audio.len() >= 90, "{} audio packets", audio.len());
                for (i, page) in pages.iter().enumerate() {
                    assert_eq!(page.sequence as usize, i);
                }
                // 960 samples a packet, from the first one's end on.
                for (i, page) in audio.iter().enumerate() {
                    assert_eq!(page.granule, 960 * (i as u64 + 1));
                }
            }
            other => panic!("unknown kind {other}"),
        }

        // The pumps' timestamps follow the wall clock: media time and wall-clock time
        // since the first packet agree (the frame-shaped camera and microphone).
        if track["stream_id"] == "camera" {
            for (media_ms, at) in &sync {
                let wall = at - first;
                assert!(
                    media_ms.abs_diff(wall) < 300,
                    "media {media_ms} ms at {wall} ms of wall clock: {sync:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_recording_folder_nothing_is_recorded() {
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let instructor = Instructor::publish(&broadcast).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = broadcast.stats();
    assert_eq!(stats.recorded_packets, 0);
    assert_eq!(stats.recording_tracks, 0);
    assert!(broadcast.recording_dir().is_none());
    // Two readers and one keyframe requester: no recorder.
    assert_eq!(stats.tasks, 3);
    instructor.close().await;
    broadcast.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_stops_recording_cleanly() {
    let root = TempDir::new("disk-guard");
    let broadcast = Arc::new(Broadcast::with_recording_id(
        SignalingConfig {
            recording_dir: Some(root.0.clone()),
            // More free space than any disk has: the guard trips at once.
            recording_min_free_bytes: u64::MAX,
            ..loopback_config()
        },
        "full",
    ));
    let instructor = Instructor::publish_frames(&broadcast).await;
    wait_until("both tracks' recordings stop for the disk", || {
        broadcast.stats().recording_disk_stops >= 2
    })
    .await;
    broadcast.unpublish().await.unwrap();
    wait_until("every recording is closed", || {
        broadcast.stats().recording_tracks == 0
    })
    .await;
    instructor.close().await;
    broadcast.close().await;
    let stats = broadcast.stats();
    assert_eq!(stats.recording_errors, 0, "stopped, not failed: {stats:?}");
    assert_eq!(stats.recorded_packets, 0, "{stats:?}");
    let dir = broadcast.recording_dir().unwrap();
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    for track in index["tracks"].as_array().unwrap() {
        assert_eq!(track["complete"], true, "{track:#}");
        let file = dir.join(track["file"].as_str().unwrap());
        if track["kind"] == "video" {
            // A closed IVF: header only, zero frames.
            assert_eq!(parse_ivf(&file).frames.len(), 0);
        }
    }
}
