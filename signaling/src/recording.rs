//! Recording the instructor's tracks for the archive: one file per published track (VP8 in IVF,
//! Opus in Ogg) and an `index.json` mapping media time to the node's wall clock, so an archive
//! player can replay the chat (whose events carry Unix-millisecond times) in step.
//!
//! A recorder is a sink on the fan-out like a subscriber: the reader hands it each packet
//! without waiting (a full queue drops the packet, counts it, and the video file resumes at
//! the next keyframe), and a thread of the blocking pool does all the file work, so the disk
//! never slows forwarding. See the crate docs for the file formats.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtc::rtp::Packet;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::broadcast::{Inner, TrackInfo};
use crate::stats::{Counters, TaskGuard};

/// The version tag of `index.json`.
const INDEX_FORMAT: &str = "live-lecture-recording/1";
/// Wall-clock spacing of the sync points of a track.
const SYNC_EVERY_MS: u64 = 1000;
/// `index.json` is rewritten every this many sync points (and when a track starts or ends),
/// so a node that dies mid-lecture leaves an index at most this many seconds behind.
const INDEX_REWRITE_EVERY: usize = 10;

/// Milliseconds since the Unix epoch on the node's clock, the clock the chat's times use.
pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The recording of one broadcast: its folder (chosen when the first track starts) and its
/// index, shared by the tracks' recorders.
#[derive(Debug)]
pub(crate) struct Recording {
    root: PathBuf,
    id: String,
    state: Mutex<RecordingState>,
}

#[derive(Debug, Default)]
struct RecordingState {
    /// `root/id` (or `root/id-2`… if that was taken), once created.
    dir: Option<PathBuf>,
    index: Index,
}

/// `index.json`.
#[derive(Debug, Default, Serialize)]
struct Index {
    format: &'static str,
    recording: String,
    created_unix_ms: u64,
    tracks: Vec<TrackIndex>,
}

/// One file's entry in `index.json`.
#[derive(Debug, Clone, Serialize)]
struct TrackIndex {
    /// File name, relative to the recording folder.
    file: String,
    /// `video` or `audio`.
    kind: &'static str,
    /// `VP8` or `opus`.
    codec: &'static str,
    /// The publisher's stream and track ids (the camera stream holds video and microphone; a
    /// screen share is a stream of its own).
    stream_id: String,
    track_id: String,
    /// RTP clock rate of the track (90000 for VP8, 48000 for Opus).
    clock_rate: u32,
    /// RTP timestamp of the first packet: media time 0 of the file.
    first_rtp_timestamp: Option<u32>,
    /// When the first packet reached the node (Unix ms): the wall-clock time of media time 0.
    first_unix_ms: Option<u64>,
    /// When the last packet reached the node (Unix ms).
    last_unix_ms: Option<u64>,
    /// Media time of the last packet, ms since media time 0.
    last_media_ms: u64,
    /// Frames (IVF) or Opus packets (Ogg) written.
    frames: u64,
    /// `true` once the file is closed (the track ended); `false` in an index left by a node
    /// that stopped mid-lecture.
    complete: bool,
    /// `[media_ms, unix_ms]` pairs, one per second of wall clock, the first at `[0,
    /// first_unix_ms]`: media time of a packet and when it reached the node.
    sync: Vec<[u64; 2]>,
}

impl Recording {
    pub(crate) fn new(root: PathBuf, id: String) -> Self {
        Self {
            root,
            id,
            state: Mutex::new(RecordingState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RecordingState> {
        // Each update leaves the state consistent; a panic elsewhere does not spoil it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The recording's folder, once the first track has created it.
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        self.lock().dir.clone()
    }

    /// Creates the folder on first use, lists a new track in the index and creates its file.
    fn open_track(&self, entry: TrackIndex) -> io::Result<(usize, File)> {
        let mut state = self.lock();
        let dir = match &state.dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = create_unique_dir(&self.root, &self.id)?;
                state.index = Index {
                    format: INDEX_FORMAT,
                    recording: dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    created_unix_ms: unix_ms_now(),
                    tracks: Vec::new(),
                };
                state.dir = Some(dir.clone());
                dir
            }
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(&entry.file))?;
        state.index.tracks.push(entry);
        let slot = state.index.tracks.len() - 1;
        write_index(&dir, &state.index)?;
        Ok((slot, file))
    }

    /// Replaces a track's entry; rewrites `index.json` if `write`.
    fn update(&self, slot: usize, entry: &TrackIndex, write: bool) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(existing) = state.index.tracks.get_mut(slot) {
            existing.clone_from(entry);
        }
        match (&state.dir, write) {
            (Some(dir), true) => write_index(dir, &state.index),
            _ => Ok(()),
        }
    }
}

fn create_unique_dir(root: &Path, id: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(root)?;
    let mut last_error = None;
    for attempt in 1..=100u32 {
        let name = if attempt == 1 {
            id.to_owned()
        } else {
            format!("{id}-{attempt}")
        };
        let dir = root.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free recording folder name")))
}

/// Writes `index.json` whole, through a temporary file and a rename, so a reader never sees
/// half of it.
fn write_index(dir: &Path, index: &Index) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(index).map_err(io::Error::other)?;
    let tmp = dir.join("index.json.tmp");
    fs::write(&tmp, json)?;
    fs::rename(tmp, dir.join("index.json"))
}

/// Keeps only characters that are safe in a file or folder name (a recording id may come
/// from outside).
pub(crate) fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if cleaned.is_empty() {
        "recording".to_owned()
    } else {
        cleaned
    }
}

/// A packet and when it reached the node.
struct Arrival {
    packet: Packet,
    unix_ms: u64,
}

/// The recorder's queue, held by the published track next to the subscribers' sinks.
#[derive(Debug)]
pub(crate) struct RecordSink {
    tx: mpsc::Sender<Arrival>,
    /// Set when a packet was dropped: the recorder restarts the video at a keyframe.
    lost: Arc<AtomicBool>,
}

impl std::fmt::Debug for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrival")
            .field("seq", &self.packet.header.sequence_number)
            .field("unix_ms", &self.unix_ms)
            .finish()
    }
}

impl RecordSink {
    /// Queues a copy of `packet`; `false` if the queue is full (the packet is not recorded).
    pub(crate) fn offer(&self, packet: &Packet, unix_ms: u64) -> bool {
        let arrival = Arrival {
            packet: packet.clone(),
            unix_ms,
        };
        match self.tx.try_send(arrival) {
            Ok(()) | Err(TrySendError::Closed(_)) => true,
            Err(TrySendError::Full(_)) => {
                self.lost.store(true, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Starts recording a published track: its queue, and the blocking-pool thread that writes
/// it. The thread ends, closing the file, when the sink is dropped (the track is retired).
pub(crate) fn start(
    inner: &Arc<Inner>,
    recording: &Arc<Recording>,
    info: &TrackInfo,
    config: &crate::SignalingConfig,
) -> RecordSink {
    let (tx, rx) = mpsc::channel(config.recording_queue_packets.max(1));
    let lost = Arc::new(AtomicBool::new(false));
    let guard = TaskGuard::new(&inner.counters);
    let job = Job {
        inner: Arc::downgrade(inner),
        counters: Arc::clone(&inner.counters),
        recording: Arc::clone(recording),
        info: info.clone(),
        lost: Arc::clone(&lost),
        min_free_bytes: config.recording_min_free_bytes,
        reorder: config.recording_reorder_packets,
    };
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        job.run(rx);
    });
    RecordSink { tx, lost }
}

struct Job {
    inner: Weak<Inner>,
    counters: Arc<Counters>,
    recording: Arc<Recording>,
    info: TrackInfo,
    lost: Arc<AtomicBool>,
    min_free_bytes: u64,
    reorder: usize,
}

/// Whether the file system holding `dir` has fewer than `min` bytes free for us.
#[allow(
    clippy::useless_conversion,
    reason = "statvfs's field types differ between platforms"
)]
fn disk_low(dir: &Path, min: u64) -> bool {
    if min == 0 {
        return false;
    }
    match nix::sys::statvfs::statvfs(dir) {
        Ok(st) => {
            let free =
                u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
            free < min
        }
        // Unknown: let the writes themselves tell.
        Err(_) => false,
    }
}

/// Puts a track's packets back in sequence order: a packet is held until the ones before it
/// came, or until more than `window` packets wait (the missing one is then lost, and the
/// packets after it go on). A packet older than what was already let out is late: skipped.
#[derive(Debug)]
pub(crate) struct Reorder<T> {
    window: usize,
    /// The last sequence number seen, and its unwrapped value.
    last: Option<(u16, i64)>,
    /// The next unwrapped sequence number to let out.
    next: i64,
    held: BTreeMap<i64, T>,
}

impl<T> Reorder<T> {
    pub(crate) fn new(window: usize) -> Self {
        Self {
            window,
            last: None,
            next: 0,
            held: BTreeMap::new(),
        }
    }

    /// Takes a packet; returns the packets now in order, and whether this one was too late.
    pub(crate) fn push(&mut self, seq: u16, item: T) -> (Vec<T>, bool) {
        let ext = match self.last {
            None => {
                self.next = 0;
                0
            }
            Some((last_seq, last_ext)) => last_ext + i64::from(seq.wrapping_sub(last_seq) as i16),
        };
        if self.last.is_none_or(|(_, last_ext)| ext > last_ext) {
            self.last = Some((seq, ext));
        }
        if ext < self.next || self.held.contains_key(&ext) {
            return (Vec::new(), true);
        }
        self.held.insert(ext, item);
        let mut out = Vec::new();
        loop {
            if let Some(item) = self.held.remove(&self.next) {
                out.push(item);
                self.next += 1;
            } else if self.held.len() > self.window {
                // Give up on the missing one.
                if let Some((first, item)) = self.held.pop_first() {
                    out.push(item);
                    self.next = first + 1;
                }
            } else {
                break;
            }
        }
        (out, false)
    }

    /// Every packet still held, in order (the track ended).
    pub(crate) fn drain(&mut self) -> Vec<T> {
        std::mem::take(&mut self.held).into_values().collect()
    }
}

impl Job {
    /// The disk is nearly full: this track records no more (its file is closed as usual,
    /// so what was written plays).
    fn stop_for_disk(&self, file: &str) -> bool {
        tracing::warn!(
            file,
            min_free_bytes = self.min_free_bytes,
            "recording stopped: disk space low"
        );
        Counters::add(&self.counters.recording_disk_stops);
        true
    }

    fn run(self, mut rx: mpsc::Receiver<Arrival>) {
        let video = self.info.kind == RtpCodecKind::Video;
        let (extension, kind, codec, clock_rate) = if video {
            ("ivf", "video", "VP8", 90_000)
        } else {
            ("ogg", "audio", "opus", 48_000)
        };
        let mut entry = TrackIndex {
            file: format!("track-{}-{kind}.{extension}", self.info.key.0),
            kind,
            codec,
            stream_id: self.info.stream_id.clone(),
            track_id: self.info.track_id.clone(),
            clock_rate,
            first_rtp_timestamp: None,
            first_unix_ms: None,
            last_unix_ms: None,
            last_media_ms: 0,
            frames: 0,
            complete: false,
            sync: Vec::new(),
        };
        let opened = self
            .recording
            .open_track(entry.clone())
            .and_then(|(slot, file)| {
                let file = BufWriter::new(file);
                let media = if video {
                    Media::Vp8(IvfFile::new(file)?)
                } else {
                    Media::Opus(OggFile::new(file, self.info.key.0)?)
                };
                Ok((slot, media))
            });
        let (slot, mut media) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                tracing::warn!(%err, key = self.info.key.0, "cannot start recording a track");
                Counters::add(&self.counters.recording_errors);
                // Drain so the reader's sends keep succeeding; nothing is written.
                while rx.blocking_recv().is_some() {}
                return;
            }
        };
        self.counters
            .recording_tracks
            .fetch_add(1, Ordering::Relaxed);
        let mut clock = MediaClock::new(clock_rate);
        let mut failed = false;
        let mut stopped = false;
        let mut reorder = Reorder::new(self.reorder);
        let dir = self.recording.dir();
        if dir
            .as_deref()
            .is_some_and(|d| disk_low(d, self.min_free_bytes))
        {
            stopped = self.stop_for_disk(&entry.file);
        }
        let mut ended = false;
        while !ended {
            let (ready, late) = match rx.blocking_recv() {
                Some(arrival) => {
                    let seq = arrival.packet.header.sequence_number;
                    reorder.push(seq, arrival)
                }
                None => {
                    ended = true;
                    (reorder.drain(), false)
                }
            };
            if late {
                Counters::add(&self.counters.recording_late_packets);
            }
            for arrival in ready {
                if failed || stopped {
                    continue;
                }
                let header = &arrival.packet.header;
                let lost = self.lost.swap(false, Ordering::Relaxed);
                let Some(step) = clock.step(header.sequence_number, header.timestamp, lost) else {
                    continue;
                };
                if entry.first_unix_ms.is_none() {
                    entry.first_unix_ms = Some(arrival.unix_ms);
                    entry.first_rtp_timestamp = Some(header.timestamp);
                }
                entry.last_unix_ms = Some(arrival.unix_ms);
                entry.last_media_ms = entry.last_media_ms.max(step.media_ms);
                let mut rewrite = false;
                let due = entry
                    .sync
                    .last()
                    .is_none_or(|[_, at]| arrival.unix_ms >= at + SYNC_EVERY_MS);
                if due {
                    entry.sync.push([step.media_ms, arrival.unix_ms]);
                    rewrite = entry.sync.len() % INDEX_REWRITE_EVERY == 1;
                    if dir
                        .as_deref()
                        .is_some_and(|d| disk_low(d, self.min_free_bytes))
                    {
                        stopped = self.stop_for_disk(&entry.file);
                        let _ = self.recording.update(slot, &entry, true);
                        continue;
                    }
                }
                match media.write(&arrival.packet, &step) {
                    Ok(Written::Nothing) => {}
                    Ok(Written::Frame) => entry.frames += 1,
                    Ok(Written::NeedKeyframe) => {
                        if let Some(inner) = self.inner.upgrade() {
                            inner.request_keyframe(self.info.key);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, file = %entry.file, "recording stopped: write failed");
                        Counters::add(&self.counters.recording_errors);
                        failed = true;
                        continue;
                    }
                }
                Counters::add(&self.counters.recorded_packets);
                if rewrite && let Err(err) = self.recording.update(slot, &entry, true) {
                    tracing::debug!(%err, "rewriting index.json");
                }
            }
        }
        if let Err(err) = media.close() {
            tracing::warn!(%err, file = %entry.file, "closing a recording");
            Counters::add(&self.counters.recording_errors);
        }
        entry.complete = !failed;
        if let Err(err) = self.recording.update(slot, &entry, true) {
            tracing::warn!(%err, "writing index.json");
            Counters::add(&self.counters.recording_errors);
        }
        self.counters
            .recording_tracks
            .fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(file = %entry.file, frames = entry.frames, "recording closed");
    }
}

/// Where a packet falls in the file's media time.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// RTP timestamp units since the first packet (unwrapped).
    ticks: u64,
    /// The same in milliseconds.
    media_ms: u64,
    /// A packet was lost just before this one.
    gap: bool,
}

/// Unwraps RTP timestamps and sequence numbers against the first packet, and notices loss.
/// Packets reach it in order ([`Reorder`] put them back); one later than the reorder window
/// is skipped, and the video resumes at a keyframe.
#[derive(Debug)]
struct MediaClock {
    clock_rate: u64,
    last_seq: Option<u16>,
    last_timestamp: u32,
    /// Unwrapped timestamp of the last packet relative to the first.
    ticks: i64,
}

impl MediaClock {
    fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: u64::from(clock_rate).max(1),
            last_seq: None,
            last_timestamp: 0,
            ticks: 0,
        }
    }

    /// `None` for a packet to skip (late, duplicate, or before media time 0).
    fn step(&mut self, seq: u16, timestamp: u32, lost: bool) -> Option<Step> {
        let mut gap = lost;
        if let Some(last) = self.last_seq {
            // Reinterpreting the difference as signed tells ahead from behind across the wrap.
            let ahead = seq.wrapping_sub(last) as i16;
            if ahead <= 0 {
                return None;
            }
            gap |= ahead > 1;
            self.ticks += i64::from(timestamp.wrapping_sub(self.last_timestamp) as i32);
        }
        self.last_seq = Some(seq);
        self.last_timestamp = timestamp;
        let ticks = u64::try_from(self.ticks).ok()?;
        Some(Step {
            ticks,
            media_ms: ticks * 1000 / self.clock_rate,
            gap,
        })
    }
}

enum Written {
    Nothing,
    Frame,
    /// The video cannot continue before a keyframe (start, or after a loss).
    NeedKeyframe,
}

enum Media {
    Vp8(IvfFile),
    Opus(OggFile),
}

impl Media {
    fn write(&mut self, packet: &Packet, step: &Step) -> io::Result<Written> {
        match self {
            Self::Vp8(ivf) => ivf.write(packet, step),
            Self::Opus(ogg) => ogg.write(&packet.payload, step),
        }
    }

    fn close(self) -> io::Result<()> {
        match self {
            Self::Vp8(ivf) => ivf.close(),
            Self::Opus(ogg) => ogg.close(),
        }
    }
}

/// VP8 frames in IVF: a 32-byte header, then per frame a 12-byte header (length, timestamp)
/// and the frame. The timebase is 1/1000: a frame's timestamp is its media time in ms.
struct IvfFile {
    out: BufWriter<File>,
    frames: u32,
    /// The frame being assembled and its RTP time.
    frame: Vec<u8>,
    frame_ticks: Option<u64>,
    frame_ms: u64,
    /// Nothing is written until a keyframe (start, or after a loss).
    need_keyframe: bool,
    /// From the first keyframe, written into the header on close.
    size: Option<(u16, u16)>,
}

impl IvfFile {
    fn new(mut out: BufWriter<File>) -> io::Result<Self> {
        let mut header = [0u8; 32];
        header[0..4].copy_from_slice(b"DKIF");
        header[4..6].copy_from_slice(&0u16.to_le_bytes()); // version
        header[6..8].copy_from_slice(&32u16.to_le_bytes()); // header size
        header[8..12].copy_from_slice(b"VP80");
        // 12..16: width and height, filled in on close.
        header[16..20].copy_from_slice(&1000u32.to_le_bytes()); // timebase denominator
        header[20..24].copy_from_slice(&1u32.to_le_bytes()); // timebase numerator
        // 24..28: frame count, filled in on close; 28..32 unused.
        out.write_all(&header)?;
        Ok(Self {
            out,
            frames: 0,
            frame: Vec::new(),
            frame_ticks: None,
            frame_ms: 0,
            need_keyframe: true,
            size: None,
        })
    }

    fn drop_frame(&mut self) {
        self.frame.clear();
        self.frame_ticks = None;
    }

    fn write(&mut self, packet: &Packet, step: &Step) -> io::Result<Written> {
        if step.gap {
            // The frame in progress, and every frame until a keyframe, would decode wrong.
            self.drop_frame();
            self.need_keyframe = true;
        }
        let mut descriptor = Vp8Packet::default();
        let Ok(data) = descriptor.depacketize(&packet.payload) else {
            self.drop_frame();
            self.need_keyframe = true;
            return Ok(Written::NeedKeyframe);
        };
        if self.frame_ticks.is_some_and(|t| t != step.ticks) {
            // A new frame began before the last one's marker: its end was lost.
            self.drop_frame();
            self.need_keyframe = true;
        }
        if self.frame_ticks.is_none() {
            if descriptor.s == 0 || descriptor.pid != 0 {
                // The middle of a frame whose start was lost.
                return Ok(self.waiting());
            }
            let keyframe = data.first().is_some_and(|b| b & 0x01 == 0);
            if self.need_keyframe && !keyframe {
                return Ok(Written::NeedKeyframe);
            }
            if keyframe {
                self.need_keyframe = false;
                if self.size.is_none() {
                    self.size = keyframe_size(&data);
                }
            }
            self.frame_ticks = Some(step.ticks);
            self.frame_ms = step.media_ms;
        }
        self.frame.extend_from_slice(&data);
        if !packet.header.marker {
            return Ok(Written::Nothing);
        }
        let len = u32::try_from(self.frame.len()).map_err(io::Error::other)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&self.frame_ms.to_le_bytes())?;
        self.out.write_all(&self.frame)?;
        self.frames += 1;
        self.drop_frame();
        Ok(Written::Frame)
    }

    fn waiting(&self) -> Written {
        if self.need_keyframe {
            Written::NeedKeyframe
        } else {
            Written::Nothing
        }
    }

    /// Fills in the header's size and frame count, and flushes. An unfinished last frame is
    /// left out.
    fn close(mut self) -> io::Result<()> {
        let (width, height) = self.size.unwrap_or((0, 0));
        self.out.seek(SeekFrom::Start(12))?;
        self.out.write_all(&width.to_le_bytes())?;
        self.out.write_all(&height.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(24))?;
        self.out.write_all(&self.frames.to_le_bytes())?;
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Width and height from a VP8 keyframe's header (RFC 6386 9.1): a 3-byte frame tag, the
/// start code `9d 01 2a`, then two 14-bit little-endian sizes.
fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width, height))
}

/// Opus in Ogg (RFC 7845): an `OpusHead` page, an `OpusTags` page, then one page per Opus
/// packet whose granule position is the 48 kHz sample count at the packet's end. Pre-skip is
/// 0, so a packet's media time in ms is `(granule - its samples) / 48`; a gap in the stream
/// (loss, silence suppression) shows as a jump in the granule position, which keeps the file
/// in step with the wall clock.
struct OggFile {
    out: BufWriter<File>,
    serial: u32,
    sequence: u32,
    granule: u64,
    /// Held back one packet so the last one can go out on the end-of-stream page.
    pending: Option<(Bytes, u64)>,
}

const OGG_CONTINUATION: u8 = 0;
const OGG_BEGINNING: u8 = 2;
const OGG_END: u8 = 4;

impl OggFile {
    fn new(out: BufWriter<File>, serial: u64) -> io::Result<Self> {
        let mut ogg = Self {
            out,
            // Any number unique within the file; the track key is.
            serial: serial as u32,
            sequence: 0,
            granule: 0,
            pending: None,
        };
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(2); // channels: WebRTC's Opus is always negotiated as stereo
        head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
        head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family
        ogg.page(&head, OGG_BEGINNING, 0)?;
        let vendor = b"live-lecture";
        let mut tags = Vec::with_capacity(8 + 4 + vendor.len() + 4);
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        ogg.page(&tags, OGG_CONTINUATION, 0)?;
        Ok(ogg)
    }

    fn write(&mut self, payload: &Bytes, step: &Step) -> io::Result<Written> {
        // A page holds at most 255 segments of 255 bytes; no Opus packet comes close.
        if payload.is_empty() || payload.len() >= 255 * 255 {
            return Ok(Written::Nothing);
        }
        let samples = opus_samples(payload).unwrap_or(960);
        let end = (step.ticks + samples).max(self.granule);
        self.granule = end;
        if let Some((data, granule)) = self.pending.replace((payload.clone(), end)) {
            self.page(&data, OGG_CONTINUATION, granule)?;
        }
        Ok(Written::Frame)
    }

    fn close(mut self) -> io::Result<()> {
        let (data, granule) = self
            .pending
            .take()
            .unwrap_or_else(|| (Bytes::new(), self.granule));
        self.page(&data, OGG_END, granule)?;
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// One page holding one packet (or none: an empty end-of-stream page).
    fn page(&mut self, packet: &[u8], header_type: u8, granule: u64) -> io::Result<()> {
        let mut lacing = vec![255u8; packet.len() / 255];
        if !packet.is_empty() || header_type & OGG_END == 0 {
            lacing.push((packet.len() % 255) as u8);
        }
        let mut page = Vec::with_capacity(27 + lacing.len() + packet.len());
        page.extend_from_slice(b"OggS");
        page.push(0); // version
        page.push(header_type);
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&self.serial.to_le_bytes());
        page.extend_from_slice(&self.sequence.to_le_bytes());
        page.extend_from_slice(&[0; 4]); // checksum, below
        page.push(lacing.len() as u8);
        page.extend_from_slice(&lacing);
        page.extend_from_slice(packet);
        let crc = ogg_crc(&page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(&page)?;
        self.sequence += 1;
        Ok(())
    }
}

/// Ogg's CRC-32: polynomial 0x04c11db7, initial value 0, not reflected, no final xor.
fn ogg_crc(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut r = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
                bit += 1;
            }
            table[i] = r;
            i += 1;
        }
        table
    };
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from(((crc >> 24) as u8) ^ b)]
    })
}

/// Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716 3.1): the recording's
/// granule positions, and the archive's audio timestamps.
pub fn opus_samples(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let per_frame: u64 = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3f),
    };
    Some(per_frame * frames)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ogg_crc_matches_a_known_page() {
        // CRC-32 with Ogg's parameters: the check value of "123456789" is POSIX cksum's
        // (0x765e7680) without its final inversion.
        assert_eq!(ogg_crc(b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn opus_toc_durations() {
        assert_eq!(opus_samples(&[0xfc]), Some(960)); // CELT FB 20 ms, one frame
        assert_eq!(opus_samples(&[0x78 | 1]), Some(2 * 960)); // hybrid 20 ms, two frames
        assert_eq!(opus_samples(&[0x03, 0x03]), Some(3 * 480)); // SILK 10 ms, code 3, 3 frames
    }

    #[test]
    fn media_clock_unwraps_and_skips_late_packets() {
        let mut clock = MediaClock::new(90_000);
        let first = clock.step(65_535, u32::MAX - 899, false).unwrap();
        assert_eq!((first.ticks, first.media_ms, first.gap), (0, 0, false));
        let next = clock.step(0, 900, false).unwrap();
        assert_eq!((next.ticks, next.media_ms, next.gap), (1800, 20, false));
        assert!(clock.step(65_535, u32::MAX - 899, false).is_none());
        let after_loss = clock.step(2, 2700, false).unwrap();
        assert!(after_loss.gap);
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let mut r = Reorder::new(4);
        assert_eq!(r.push(10, 10), (vec![10], false));
        assert_eq!(r.push(12, 12), (vec![], false));
        assert_eq!(r.push(13, 13), (vec![], false));
        assert_eq!(r.push(11, 11), (vec![11, 12, 13], false));
        // A duplicate, and a packet older than what went out: late.
        assert_eq!(r.push(12, 99), (vec![], true));
        assert_eq!(r.push(9, 9), (vec![], true));
        assert_eq!(r.push(14, 14), (vec![14], false));
    }

    #[test]
    fn reordering_works_across_the_sequence_wrap() {
        let mut r = Reorder::new(4);
        assert_eq!(r.push(65_534, 1), (vec![1], false));
        assert_eq!(r.push(0, 3), (vec![], false));
        assert_eq!(r.push(65_535, 2), (vec![2, 3], false));
        assert_eq!(r.push(1, 4), (vec![4], false));
    }

    #[test]
    fn a_lost_packet_is_given_up_after_the_window() {
        let mut r = Reorder::new(2);
        assert_eq!(r.push(1, 1), (vec![1], false));
        // 2 is lost: 3 and 4 wait for it, 5 is one too many.
        assert_eq!(r.push(3, 3), (vec![], false));
        assert_eq!(r.push(4, 4), (vec![], false));
        assert_eq!(r.push(5, 5), (vec![3, 4, 5], false));
        assert_eq!(r.push(2, 2), (vec![], true), "too late now");
        assert_eq!(r.push(7, 7), (vec![], false));
        assert_eq!(
            r.drain(),
            vec![7],
            "held packets go out when the track ends"
        );
    }

    fn vp8_packet(seq: u16, timestamp: u32, key: bool) -> Packet {
        let mut packet = Packet::default();
        packet.header.sequence_number = seq;
        packet.header.timestamp = timestamp;
        packet.header.marker = true;
        // Payload descriptor: S=1, partition 0; then the frame tag (bit 0: 0 = keyframe).
        let mut payload = vec![0x10, if key { 0x10 } else { 0x11 }, 0x02, 0x00];
        if key {
            payload.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
        }
        payload.extend_from_slice(&[0x55; 20]);
        packet.payload = Bytes::from(payload);
        packet
    }

    #[test]
    fn after_a_loss_the_video_resumes_at_the_next_keyframe() {
        let dir = std::env::temp_dir().join(format!("rec-gap-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.ivf");
        let mut ivf = IvfFile::new(BufWriter::new(File::create(&path).unwrap())).unwrap();
        let mut clock = MediaClock::new(90_000);
        // Starts only at a keyframe: a delta first is not written.
        let plan: [(u16, bool, bool); 6] = [
            (1, false, false), // delta before any keyframe: waits
            (2, true, true),   // keyframe: written
            (3, false, true),  // delta: written
            (5, false, false), // 4 lost: this delta would decode wrong
            (6, false, false), // still no keyframe
            (7, true, true),   // keyframe: written again
        ];
        let mut written = Vec::new();
        for (seq, key, expect) in plan {
            let ts = u32::from(seq) * 3000;
            let step = clock.step(seq, ts, false).unwrap();
            let got = ivf.write(&vp8_packet(seq, ts, key), &step).unwrap();
            assert_eq!(matches!(got, Written::Frame), expect, "packet {seq}");
            if matches!(got, Written::Frame) {
                written.push(seq);
            }
        }
        ivf.close().unwrap();
        assert_eq!(written, [2, 3, 7]);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 3);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("../etc/passwd"), "___etc_passwd");
        assert_eq!(sanitize_name(""), "recording");
        assert_eq!(sanitize_name("lecture-42_a"), "lecture-42_a");
    }
}
