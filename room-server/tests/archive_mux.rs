//! The recording made into an archive: the WebM files parse back (with a reader apart from the
//! writer), hold VP8 and Opus with monotonic timestamps, start at a keyframe, are trimmed to
//! the live span, last as long as the frames within one frame, carry Cues for seeking; a
//! recording cut off mid-write (a node that died) still makes a playable archive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use matroska_demuxer::{Frame, MatroskaFile, TrackType};
use protocol::LectureId;
use room_server::archive::{ArchiveStore, Manifest, TrackKind, make_archive};
use std::path::Path;

/// A VP8 frame: keyframes carry the start code and a 320×240 size (RFC 6386 9.1).
fn vp8(key: bool, n: u32) -> Vec<u8> {
    let mut f = if key {
        vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]
    } else {
        vec![0x11, 0x02, 0x00]
    };
    f.extend_from_slice(&n.to_le_bytes());
    f.resize(200, 0x55);
    f
}

fn write_ivf(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(b"DKIF");
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"VP80");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&1000u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    for (ms, f) in frames {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&ms.to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

fn ogg_page(out: &mut Vec<u8>, packet: &[u8], granule: u64, seq: u32) {
    out.extend_from_slice(b"OggS");
    out.push(0);
    out.push(if seq == 0 { 2 } else { 0 });
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&7u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the reader does not check the CRC
    out.push(1);
    out.push(packet.len() as u8);
    out.extend_from_slice(packet);
}

/// Opus packets of 20 ms (TOC 0xfc: CELT FB 20 ms, one frame) starting at each `ms`.
fn write_ogg(path: &Path, starts_ms: &[u64]) {
    let mut out = Vec::new();
    ogg_page(
        &mut out,
        b"OpusHead\x01\x02\x00\x00\x80\xbb\x00\x00\x00\x00\x00",
        0,
        0,
    );
    ogg_page(&mut out, b"OpusTags\x00\x00\x00\x00\x00\x00\x00\x00", 0, 1);
    for (i, ms) in starts_ms.iter().enumerate() {
        let packet = [0xfc, 0xff, 0xfe, i as u8];
        ogg_page(&mut out, &packet, ms * 48 + 960, i as u32 + 2);
    }
    std::fs::write(path, out).unwrap();
}

struct Track<'a> {
    file: &'a str,
    kind: &'a str,
    stream: &'a str,
    id: &'a str,
    first_unix_ms: u64,
}

fn write_index(dir: &Path, tracks: &[Track<'_>]) {
    let tracks: Vec<_> = tracks
        .iter()
        .map(|t| {
            serde_json::json!({
                "file": t.file, "kind": t.kind, "codec": if t.kind == "video" { "VP8" } else { "opus" },
                "stream_id": t.stream, "track_id": t.id,
                "clock_rate": if t.kind == "video" { 90000 } else { 48000 },
                "first_rtp_timestamp": 0, "first_unix_ms": t.first_unix_ms,
                "last_unix_ms": null, "last_media_ms": 0, "frames": 0, "complete": false,
                "sync": [[0, t.first_unix_ms]],
            })
        })
        .collect();
    let index = serde_json::json!({
        "format": "live-lecture-recording/1", "recording": "l1", "created_unix_ms": 0,
        "tracks": tracks,
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Video every 33 ms for `secs` seconds, a keyframe every second.
fn video_frames(secs: u64) -> Vec<(u64, Vec<u8>)> {
    (0..secs * 30)
        .map(|i| (i * 33, vp8(i % 30 == 0, i as u32)))
        .collect()
}

struct Parsed {
    duration_ms: f64,
    codecs: Vec<String>,
    frames: Vec<Frame>,
    has_cues: bool,
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut mkv = MatroskaFile::open(std::io::Cursor::new(bytes.to_vec())).expect("parses");
    assert_eq!(mkv.ebml_header().doc_type(), "webm");
    let scale = mkv.info().timestamp_scale().get() as f64;
    let duration_ms = mkv.info().duration().unwrap_or(0.0) * scale / 1e6;
    let codecs = mkv
        .tracks()
        .iter()
        .map(|t| t.codec_id().to_owned())
        .collect();
    assert!(
        mkv.tracks()
            .iter()
            .any(|t| t.track_type() == TrackType::Video)
    );
    let mut frames = Vec::new();
    let mut f = Frame::default();
    while mkv.next_frame(&mut f).unwrap() {
        frames.push(f.clone());
    }
    let has_cues = bytes.windows(4).any(|w| w == [0x1c, 0x53, 0xbb, 0x6b]);
    Parsed {
        duration_ms,
        codecs,
        frames,
        has_cues,
    }
}

async fn object(store: &ArchiveStore, lecture: &LectureId, name: &str) -> Vec<u8> {
    store
        .get_range(lecture, name, None)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

fn check_monotonic(frames: &[Frame]) {
    for track in [1, 2] {
        let ts: Vec<u64> = frames
            .iter()
            .filter(|f| f.track == track)
            .map(|f| f.timestamp)
            .collect();
        assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "track {track} not monotonic"
        );
    }
}

const T0: u64 = 1_700_000_000_000;

#[tokio::test]
async fn camera_and_screen_sessions_on_one_timeline_trimmed_to_live() {
    let tmp = tempdir();
    let rec = tmp.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    // Camera from T0 for 10 s with audio; the lecture is live from T0+2000 to T0+9000.
    write_ivf(&rec.join("track-1-video.ivf"), &video_frames(10));
    write_ogg(
        &rec.join("track-2-audio.ogg"),
        &(0..500).map(|i| i * 20).collect::<Vec<_>>(),
    );
    // Two screen-share sessions: T0+3000 for 2 s, T0+6000 for 2 s.
    write_ivf(&rec.join("track-3-video.ivf"), &video_frames(2));
    write_ivf(&rec.join("track-4-video.ivf"), &video_frames(2));
    write_index(
        &rec,
        &[
            Track {
                file: "track-1-video.ivf",
                kind: "video",
                stream: "cam",
                id: "v",
                first_unix_ms: T0,
            },
            Track {
                file: "track-2-audio.ogg",
                kind: "audio",
                stream: "cam",
                id: "a",
                first_unix_ms: T0,
            },
            Track {
                file: "track-3-video.ivf",
                kind: "video",
                stream: "scr",
                id: "s1",
                first_unix_ms: T0 + 3000,
            },
            Track {
                file: "track-4-video.ivf",
                kind: "video",
                stream: "scr2",
                id: "s2",
                first_unix_ms: T0 + 6000,
            },
        ],
    );
    let store = ArchiveStore::local(&tmp.join("archive")).unwrap();
    let lecture = LectureId::from("l1");
    let manifest = make_archive(&rec, &lecture, T0 + 2000, T0 + 9000, &store)
        .await
        .unwrap();
    assert_eq!(manifest.format, "live-lecture-archive/1");
    assert_eq!(manifest.started_at_ms, T0 + 2000);
    assert_eq!(manifest.duration_ms, 7000);
    let kinds: Vec<(TrackKind, &str)> = manifest
        .tracks
        .iter()
        .map(|t| (t.kind, t.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (TrackKind::Camera, "camera.webm"),
            (TrackKind::Screen, "screen-1.webm"),
            (TrackKind::Screen, "screen-2.webm")
        ]
    );
    // Keyframes every 990 ms: the first at or after 2000 ms is frame 90 (2970 ms); audio
    // starts at 2000 ms. The camera file starts with its first frame (audio) at 0.
    let cam = &manifest.tracks[0];
    assert_eq!(cam.start_ms, 0);
    assert!(cam.duration_ms.abs_diff(7000) <= 33, "{}", cam.duration_ms);
    assert_eq!(manifest.tracks[1].start_ms, 1000);
    assert_eq!(manifest.tracks[2].start_ms, 4000);

    let parsed = parse(&object(&store, &lecture, "camera.webm").await);
    assert_eq!(parsed.codecs, ["V_VP8", "A_OPUS"]);
    assert!(parsed.has_cues, "camera.webm has Cues");
    assert!(
        (parsed.duration_ms - cam.duration_ms as f64).abs() <= 33.0,
        "{}",
        parsed.duration_ms
    );
    check_monotonic(&parsed.frames);
    let video: Vec<&Frame> = parsed.frames.iter().filter(|f| f.track == 1).collect();
    assert_eq!(
        video[0].is_keyframe,
        Some(true),
        "video starts at a keyframe"
    );
    assert_eq!(video[0].timestamp, 2970 - 2000);
    let last_video = video.last().unwrap().timestamp;
    assert!(last_video <= 7000 && last_video > 7000 - 40, "{last_video}");
    let audio = parsed.frames.iter().filter(|f| f.track == 2).count();
    assert_eq!(
        audio, 351,
        "audio from 2000 to 9000 ms inclusive, 20 ms apart"
    );

    let screen = parse(&object(&store, &lecture, "screen-2.webm").await);
    assert_eq!(screen.codecs, ["V_VP8"]);
    assert!(screen.has_cues);
    assert!(
        (screen.duration_ms - 1980.0).abs() <= 33.0,
        "{}",
        screen.duration_ms
    );

    let stored: Manifest = store
        .get_json(&lecture, "manifest.json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, manifest);
    // Idempotent: made again, the same.
    let again = make_archive(&rec, &lecture, T0 + 2000, T0 + 9000, &store)
        .await
        .unwrap();
    assert_eq!(again, manifest);
}

#[tokio::test]
async fn a_recording_cut_off_mid_write_still_makes_an_archive() {
    let tmp = tempdir();
    let rec = tmp.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let ivf = rec.join("track-1-video.ivf");
    write_ivf(&ivf, &video_frames(4));
    let ogg = rec.join("track-2-audio.ogg");
    write_ogg(&ogg, &(0..200).map(|i| i * 20).collect::<Vec<_>>());
    // Cut both files in the middle of a frame / page, as a killed node leaves them.
    for (path, cut) in [(&ivf, 101), (&ogg, 17)] {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() - cut]).unwrap();
    }
    // An index a few seconds behind: one sync point, no last times.
    write_index(&rec, &camera_tracks());
    let store = ArchiveStore::local(&tmp.join("archive")).unwrap();
    let lecture = LectureId::from("l2");
    // The lecture never ended properly: the span reaches past what was written.
    let manifest = make_archive(&rec, &lecture, T0, T0 + 60_000, &store)
        .await
        .unwrap();
    let parsed = parse(&object(&store, &lecture, "camera.webm").await);
    check_monotonic(&parsed.frames);
    let video = parsed.frames.iter().filter(|f| f.track == 1).count();
    let audio = parsed.frames.iter().filter(|f| f.track == 2).count();
    assert_eq!(video, 119, "every whole frame but the cut one");
    assert_eq!(audio, 199, "every whole page but the cut one");
    assert!(manifest.tracks[0].duration_ms.abs_diff(4000) <= 33);
}

/// The camera's two tracks (video and audio, one stream) as the recorder indexes them, both
/// starting at `T0`.
fn camera_tracks() -> [Track<'static>; 2] {
    [
        Track {
            file: "track-1-video.ivf",
            kind: "video",
            stream: "cam",
            id: "v",
            first_unix_ms: T0,
        },
        Track {
            file: "track-2-audio.ogg",
            kind: "audio",
            stream: "cam",
            id: "a",
            first_unix_ms: T0,
        },
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// Any camera recording (frames 20–80 ms apart, keyframes every 1–10 frames) trimmed to
    /// any live span inside it makes a camera.webm that parses, starts at a keyframe, keeps its
    /// timestamps rising and inside the span, and lasts what the manifest says within a frame.
    #[test]
    fn any_recording_and_live_span_make_a_file_that_parses_and_lasts_its_span(
        gaps in proptest::collection::vec(20u64..=80, 30..150),
        key_every in 1usize..=10,
        from in 0.0f64..0.5,
        to in 0.6f64..1.1,
    ) {
        let mut at = 0;
        let frames: Vec<(u64, Vec<u8>)> = gaps
            .iter()
            .enumerate()
            .map(|(i, gap)| {
                let frame = (at, vp8(i % key_every == 0, i as u32));
                at += gap;
                frame
            })
            .collect();
        let last = frames.last().unwrap().0;
        let since = T0 + (last as f64 * from) as u64;
        let until = T0 + (last as f64 * to) as u64;
        let tmp = tempdir();
        let rec = tmp.join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        write_ivf(&rec.join("track-1-video.ivf"), &frames);
        write_ogg(&rec.join("track-2-audio.ogg"), &(0..=last / 20).map(|i| i * 20).collect::<Vec<_>>());
        write_index(&rec, &camera_tracks());
        let store = ArchiveStore::local(&tmp.join("archive")).unwrap();
        let lecture = LectureId::from("lp");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (manifest, bytes) = runtime.block_on(async {
            let manifest = make_archive(&rec, &lecture, since, until, &store).await.unwrap();
            let bytes = object(&store, &lecture, "camera.webm").await;
            (manifest, bytes)
        });
        let parsed = parse(&bytes);
        check_monotonic(&parsed.frames);
        let video: Vec<&Frame> = parsed.frames.iter().filter(|f| f.track == 1).collect();
        proptest::prop_assert_eq!(video.first().and_then(|f| f.is_keyframe), Some(true));
        let span = until.min(T0 + last) - since;
        for f in &parsed.frames {
            proptest::prop_assert!(f.timestamp <= span + 20, "{} past the span {span}", f.timestamp);
        }
        let longest_gap = *gaps.iter().max().unwrap() as f64;
        proptest::prop_assert!(
            (parsed.duration_ms - manifest.tracks[0].duration_ms as f64).abs() <= longest_gap,
            "file {} ms, manifest {} ms", parsed.duration_ms, manifest.tracks[0].duration_ms
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

fn tempdir() -> std::path::PathBuf {
    let mut n = [0u8; 8];
    getrandom::fill(&mut n).unwrap();
    let dir = std::env::temp_dir().join(format!("archive-mux-{:016x}", u64::from_le_bytes(n)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
