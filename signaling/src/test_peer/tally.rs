//! What a receiving test peer counts, per feed: every sequence number (holes), loss as RFC 3550
//! counts it, bytes, payloads changed on the way, and when the first keyframe came.

use std::collections::BTreeSet;
use std::time::Instant;

use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

use super::Feed;
use super::media::is_plain;

/// Counts one RTP stream's packets from its sequence numbers: expected is the span from the
/// first packet to the highest one (16-bit numbers extended across wrap-around), lost is
/// expected minus received (as RFC 3550's receiver reports count it; duplicates offset losses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqCounter {
    first: Option<u64>,
    highest: u64,
    received: u64,
}

impl SeqCounter {
    /// Counts a packet with sequence number `seq`.
    pub fn record(&mut self, seq: u16) {
        self.received += 1;
        let Some(first) = self.first else {
            // Start one cycle up so early reordering below the first number stays positive.
            let ext = (1 << 16) + u64::from(seq);
            self.first = Some(ext);
            self.highest = ext;
            return;
        };
        // The extended number nearest the highest so far.
        let cycle = self.highest & !0xffff;
        let mut ext = cycle | u64::from(seq);
        if ext + (1 << 15) < self.highest {
            ext += 1 << 16;
        } else if ext > self.highest + (1 << 15) && ext >= 1 << 16 {
            ext -= 1 << 16;
        }
        self.highest = self.highest.max(ext);
        if ext < first {
            // Reordered ahead of the first: the span starts earlier.
            self.first = Some(ext);
        }
    }

    /// Packets expected from the first to the highest.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest - f + 1)
    }

    /// Packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Expected minus received (0 if duplicates outnumber losses).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

/// What arrived of one feed (every track of it: each screen-share session's, say).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Every distinct sequence number.
    pub seqs: BTreeSet<u16>,
    /// Loss from the sequence numbers, duplicates included.
    pub loss: SeqCounter,
    /// RTP payload plus 12-byte header bytes.
    pub bytes: u64,
    /// Payloads differing from what the plain synthetic media
    /// ([`Synthetic::keyframes`](super::Synthetic::keyframes), [`Synthetic::opus`](super::Synthetic::opus))
    /// sends with their sequence number: meaningful when the publisher sends that.
    pub altered: usize,
    /// When the first packet starting a VP8 keyframe arrived.
    pub first_keyframe: Option<Instant>,
}

impl Tally {
    /// Distinct packets received.
    pub fn count(&self) -> usize {
        self.seqs.len()
    }

    /// True if no sequence number is missing between the smallest and the largest received.
    pub fn contiguous(&self) -> bool {
        match (self.seqs.first(), self.seqs.last()) {
            (Some(first), Some(last)) => usize::from(last - first) + 1 == self.seqs.len(),
            _ => true,
        }
    }

    fn record(&mut self, video: bool, packet: &rtc::rtp::Packet, at: Instant) {
        let seq = packet.header.sequence_number;
        self.seqs.insert(seq);
        self.loss.record(seq);
        self.bytes += 12 + packet.payload.len() as u64;
        if !is_plain(video, seq, &packet.payload) {
            self.altered += 1;
        }
        if video && self.first_keyframe.is_none() && starts_vp8_keyframe(&packet.payload) {
            self.first_keyframe = Some(at);
        }
    }
}

/// What a receiving test peer got so far, per feed.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// The camera's video.
    pub camera: Tally,
    /// The microphone's audio.
    pub microphone: Tally,
    /// The screen share's video, every session of it.
    pub screen: Tally,
}

impl Received {
    /// Packets received, every feed, duplicates included.
    pub fn packets(&self) -> u64 {
        self.feeds().map(|t| t.loss.received()).sum()
    }

    /// Packets expected, every feed.
    pub fn expected(&self) -> u64 {
        self.feeds().map(|t| t.loss.expected()).sum()
    }

    /// Bytes received, every feed.
    pub fn bytes(&self) -> u64 {
        self.feeds().map(|t| t.bytes).sum()
    }

    /// Payloads changed on the way, every feed.
    pub fn altered(&self) -> usize {
        self.feeds().map(|t| t.altered).sum()
    }

    /// When the first keyframe of any video feed arrived.
    pub fn first_keyframe(&self) -> Option<Instant> {
        self.feeds().filter_map(|t| t.first_keyframe).min()
    }

    pub(super) fn record(&mut self, feed: Feed, packet: &rtc::rtp::Packet, at: Instant) {
        let tally = match feed {
            Feed::Camera => &mut self.camera,
            Feed::Microphone => &mut self.microphone,
            Feed::Screen => &mut self.screen,
        };
        tally.record(feed != Feed::Microphone, packet, at);
    }

    fn feeds(&self) -> impl Iterator<Item = &Tally> {
        [&self.camera, &self.microphone, &self.screen].into_iter()
    }
}

/// True if a VP8 RTP payload starts a keyframe: the descriptor marks the start of partition 0,
/// and the frame tag's P bit is clear.
pub(super) fn starts_vp8_keyframe(payload: &bytes::Bytes) -> bool {
    let mut descriptor = Vp8Packet::default();
    let Ok(frame) = descriptor.depacketize(payload) else {
        return false;
    };
    descriptor.s == 1 && descriptor.pid == 0 && frame.first().is_some_and(|tag| tag & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_across_wrap_around() {
        let mut c = SeqCounter::default();
        for seq in (65_530u16..=65_535).chain(0..10) {
            if seq != 2 && seq != 65_533 {
                c.record(seq);
            }
        }
        assert_eq!(c.expected(), 16);
        assert_eq!(c.received(), 14);
        assert_eq!(c.lost(), 2);
    }

    #[test]
    fn reordering_is_not_loss() {
        let mut c = SeqCounter::default();
        for seq in [100u16, 102, 101, 99, 103] {
            c.record(seq);
        }
        assert_eq!(c.expected(), 5);
        assert_eq!(c.lost(), 0);
        // A late packet from before a wrap.
        let mut c = SeqCounter::default();
        for seq in [65_534u16, 0, 65_535, 1] {
            c.record(seq);
        }
        assert_eq!((c.expected(), c.lost()), (4, 0));
    }

    #[test]
    fn a_hole_is_seen() {
        let mut t = Tally::default();
        for seq in [7u16, 8, 10] {
            t.seqs.insert(seq);
        }
        assert!(!t.contiguous());
        t.seqs.insert(9);
        assert!(t.contiguous());
        assert_eq!(t.count(), 4);
    }
}
