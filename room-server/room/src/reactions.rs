//! Emotion presses: the per-learner limit, the per-tick tally, the rolling meter, the totals.

use protocol::server::{Emotion, Meter, SeatReaction};
use protocol::{EmotionKey, Seat, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Counts of accepted presses: this tick, the rolling window and all time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReactionTally {
    keys: Vec<EmotionKey>,
    /// Presses in the current tick, by emotion index.
    tick: Vec<u32>,
    /// The last seat-level reaction of each seat in the current tick.
    by_seat: BTreeMap<Seat, usize>,
    /// Per-tick counts of the ticks inside the rolling window, oldest first.
    window: VecDeque<Vec<u32>>,
    window_ticks: usize,
    /// Sum of `window`, kept so a tick costs O(emotions), not O(window).
    rolling: Vec<u32>,
    totals: Vec<u64>,
    /// Whether the meter still shows something (a non-empty window); decides whether the
    /// instructor gets a meter this tick.
    rolling_nonzero: bool,
}

impl ReactionTally {
    pub(crate) fn new(emotions: &[Emotion], window_ms: u64, tick_ms: u64) -> Self {
        let n = emotions.len();
        Self {
            keys: emotions.iter().map(|e| e.key.clone()).collect(),
            tick: vec![0; n],
            by_seat: BTreeMap::new(),
            window: VecDeque::new(),
            window_ticks: usize::try_from(window_ms / tick_ms.max(1))
                .unwrap_or(usize::MAX)
                .max(1),
            rolling: vec![0; n],
            totals: vec![0; n],
            rolling_nonzero: false,
        }
    }

    pub(crate) fn index_of(&self, key: &EmotionKey) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }

    /// Counts one accepted press.
    pub(crate) fn record(&mut self, emotion: usize, seat: Option<Seat>) {
        self.tick[emotion] += 1;
        self.totals[emotion] += 1;
        if let Some(seat) = seat {
            self.by_seat.insert(seat, emotion);
        }
    }

    fn to_map<T: Copy + PartialEq + Default>(&self, counts: &[T]) -> BTreeMap<EmotionKey, T> {
        self.keys
            .iter()
            .zip(counts)
            .filter(|(_, c)| **c != T::default())
            .map(|(k, c)| (k.clone(), *c))
            .collect()
    }

    /// Closes the tick: returns the learners' burst (empty when nobody pressed) and the
    /// instructor's meter (none when the meter has nothing to show), and starts a new tick.
    pub(crate) fn close_tick(
        &mut self,
        at: UnixMillis,
        window_ms: u64,
    ) -> (BTreeMap<EmotionKey, u32>, Option<Meter>) {
        let pressed = self.tick.iter().any(|c| *c > 0);
        for (sum, c) in self.rolling.iter_mut().zip(&self.tick) {
            *sum += c;
        }
        let finished = std::mem::replace(&mut self.tick, vec![0; self.keys.len()]);
        self.window.push_back(finished);
        if self.window.len() > self.window_ticks
            && let Some(old) = self.window.pop_front()
        {
            for (sum, c) in self.rolling.iter_mut().zip(old) {
                *sum -= c;
            }
        }
        let burst = self.to_map(self.window.back().map_or(&[][..], Vec::as_slice));
        let show_meter = pressed || self.rolling_nonzero;
        self.rolling_nonzero = self.rolling.iter().any(|c| *c > 0);
        let by_seat = std::mem::take(&mut self.by_seat);
        let meter = show_meter.then(|| Meter {
            at,
            tally: burst.clone(),
            rolling: self.to_map(&self.rolling),
            window_ms,
            totals: self.to_map(&self.totals),
            seats: by_seat
                .into_iter()
                .map(|(seat, e)| SeatReaction {
                    seat,
                    emotion: self.keys[e].clone(),
                })
                .collect(),
        });
        (burst, meter)
    }

    #[cfg(test)]
    pub(crate) fn total(&self, key: &EmotionKey) -> u64 {
        self.index_of(key).map_or(0, |i| self.totals[i])
    }

    #[cfg(test)]
    pub(crate) fn grand_total(&self) -> u64 {
        self.totals.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_window_forgets_old_ticks() {
        let emotions = crate::spec::default_emotions();
        let mut tally = ReactionTally::new(&emotions, 1000, 250);
        tally.record(0, None);
        let (burst, meter) = tally.close_tick(UnixMillis(250), 1000);
        assert_eq!(burst.values().sum::<u32>(), 1);
        assert_eq!(
            meter
                .expect("a press shows the meter")
                .rolling
                .values()
                .sum::<u32>(),
            1
        );
        for i in 2..=4 {
            let (burst, meter) = tally.close_tick(UnixMillis(250 * i), 1000);
            assert!(burst.is_empty());
            assert_eq!(
                meter
                    .expect("window still holds the press")
                    .rolling
                    .values()
                    .sum::<u32>(),
                1
            );
        }
        let (_, meter) = tally.close_tick(UnixMillis(1250), 1000);
        assert!(
            meter
                .expect("one last meter shows it empty")
                .rolling
                .is_empty()
        );
        assert!(
            tally.close_tick(UnixMillis(1500), 1000).1.is_none(),
            "then the meter goes quiet"
        );
        assert_eq!(tally.total(&EmotionKey::from("good")), 1);
    }
}
