//! The seat grid: one occupant per cell, one cell per learner; the grid as the learners' two
//! bitmaps; and what changed since the last tick.

use protocol::{Occupancy, Seat, SeatBits, SeatNumber, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Rows × columns of cells. The only place seats are assigned, so the indexes (cell → learner,
/// learner → cell, the bitmaps) can never disagree, and no change escapes the tick's batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SeatGrid {
    rows: u16,
    cols: u16,
    /// Occupant of each cell, row-major.
    cells: Vec<Option<UserId>>,
    /// Cell of each seated learner: answers "where does X sit" without scanning the grid.
    seat_of: HashMap<UserId, Seat>,
    /// The learners' picture of the grid, kept up to date so that a welcome copies it rather
    /// than walking thousands of seats for each of thousands of newcomers.
    occupancy: Occupancy,
    /// Cells changed since the last tick, each with who sat there when the tick began as the
    /// learners know it (`None` also once that person's nickname changed): tells a new
    /// occupant from the same one going away or coming back.
    changed: BTreeMap<Seat, Option<UserId>>,
}

/// Why a learner could not sit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SitError {
    OutOfRange,
    Taken,
}

impl SeatGrid {
    pub(crate) fn new(rows: u16, cols: u16) -> Self {
        let size = usize::from(rows) * usize::from(cols);
        Self {
            rows,
            cols,
            cells: vec![None; size],
            seat_of: HashMap::new(),
            occupancy: Occupancy {
                occupied: SeatBits::new(size),
                away: SeatBits::new(size),
            },
            changed: BTreeMap::new(),
        }
    }

    fn index(&self, seat: Seat) -> Option<usize> {
        (seat.row < self.rows && seat.col < self.cols)
            .then(|| usize::from(seat.row) * usize::from(self.cols) + usize::from(seat.col))
    }

    /// The seat's number on the wire.
    pub(crate) fn number(&self, seat: Seat) -> SeatNumber {
        seat.number(self.cols)
    }

    /// The seat numbered `number`, if the grid has it.
    pub(crate) fn seat_numbered(&self, number: SeatNumber) -> Option<Seat> {
        Seat::from_number(number, self.rows, self.cols)
    }

    pub(crate) fn occupant(&self, seat: Seat) -> Option<&UserId> {
        self.index(seat).and_then(|i| self.cells[i].as_ref())
    }

    pub(crate) fn seat_of(&self, user: &UserId) -> Option<Seat> {
        self.seat_of.get(user).copied()
    }

    /// Who sits in `seat` as the learners were last told (at the last tick): a seat changed
    /// since shows the one who sat there when the tick began, so a nickname given out now
    /// agrees with the grid the learner has, and the tick's changes tell it what to forget.
    pub(crate) fn occupant_as_told(&self, seat: Seat) -> Option<&UserId> {
        match self.changed.get(&seat) {
            Some(before) => before.as_ref(),
            None => self.occupant(seat),
        }
    }

    /// Whether the seat is held for an occupant whose connection is gone.
    pub(crate) fn is_away(&self, seat: Seat) -> bool {
        self.index(seat).is_some_and(|i| self.occupancy.away.get(i))
    }

    /// The grid as a learner's welcome shows it.
    pub(crate) fn occupancy(&self) -> Occupancy {
        self.occupancy.clone()
    }

    /// Notes that `seat` changes now; `before` sits there (as far as the tick's start knew).
    fn touch(&mut self, seat: Seat, before: Option<&UserId>) {
        self.changed.entry(seat).or_insert_with(|| before.cloned());
    }

    /// Seats `user` at `seat`, moving them from their current cell. Returns the cell they
    /// left, if any.
    pub(crate) fn sit(&mut self, user: &UserId, seat: Seat) -> Result<Option<Seat>, SitError> {
        let index = self.index(seat).ok_or(SitError::OutOfRange)?;
        match &self.cells[index] {
            Some(other) if other == user => return Ok(None),
            Some(_) => return Err(SitError::Taken),
            None => {}
        }
        let left = self.stand(user);
        self.touch(seat, None);
        self.cells[index] = Some(user.clone());
        self.seat_of.insert(user.clone(), seat);
        // Only a connected learner sits down.
        self.occupancy.occupied.set(index, true);
        self.occupancy.away.set(index, false);
        Ok(left)
    }

    /// Frees `user`'s cell. Returns it, if they sat.
    pub(crate) fn stand(&mut self, user: &UserId) -> Option<Seat> {
        let seat = self.seat_of.remove(user)?;
        self.touch(seat, Some(user));
        if let Some(i) = self.index(seat) {
            self.cells[i] = None;
            self.occupancy.occupied.set(i, false);
            self.occupancy.away.set(i, false);
        }
        Some(seat)
    }

    /// Marks `user`'s seat, if they sit, as held while they are away (`true`) or theirs again.
    pub(crate) fn set_away(&mut self, user: &UserId, away: bool) {
        let Some(seat) = self.seat_of(user) else {
            return;
        };
        let Some(i) = self.index(seat) else { return };
        if self.occupancy.away.get(i) != away {
            self.touch(seat, Some(user));
            self.occupancy.away.set(i, away);
        }
    }

    /// `user`'s nickname changed: learners must forget the one they have for their seat.
    pub(crate) fn renamed(&mut self, user: &UserId) {
        if let Some(seat) = self.seat_of(user) {
            self.changed.insert(seat, None);
        }
    }

    /// Whether any seat changed since the last tick.
    pub(crate) fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// The seats changed since the last tick, in seat order, each with who sat there when the
    /// tick began (see `changed`); the next tick starts afresh.
    pub(crate) fn take_changes(&mut self) -> BTreeMap<Seat, Option<UserId>> {
        std::mem::take(&mut self.changed)
    }

    /// Every seated learner and their cell, in no particular order.
    pub(crate) fn occupied(&self) -> impl Iterator<Item = (&UserId, Seat)> {
        self.seat_of.iter().map(|(u, s)| (u, *s))
    }

    pub(crate) fn seated_count(&self) -> usize {
        self.seat_of.len()
    }

    /// Checks that the indexes agree, and the bitmaps with them (for tests); `away` says
    /// whether a seated learner's connection is gone.
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self, away: impl Fn(&UserId) -> bool) {
        let mut filled = 0;
        for (i, cell) in self.cells.iter().enumerate() {
            assert_eq!(self.occupancy.occupied.get(i), cell.is_some(), "cell {i}");
            match cell {
                Some(user) => {
                    filled += 1;
                    let seat = self.seat_of[user];
                    assert_eq!(self.index(seat), Some(i), "{user:?} is in two places");
                    assert_eq!(self.occupancy.away.get(i), away(user), "{user:?} away");
                }
                None => assert!(!self.occupancy.away.get(i), "an empty cell {i} is away"),
            }
        }
        assert_eq!(
            filled,
            self.seat_of.len(),
            "a learner holds more than one cell"
        );
    }
}
