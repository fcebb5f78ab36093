//! The seat grid: one occupant per cell, one cell per learner.

use protocol::{Seat, UserId};
use std::collections::HashMap;

/// Rows × columns of cells. The only place seats are assigned, so the two indexes (cell →
/// learner, learner → cell) can never disagree.
#[derive(Clone, Debug)]
pub(crate) struct SeatGrid {
    rows: u16,
    cols: u16,
    /// Occupant of each cell, row-major.
    cells: Vec<Option<UserId>>,
    /// Cell of each seated learner: answers "where does X sit" without scanning the grid.
    seat_of: HashMap<UserId, Seat>,
}

/// Why a learner could not sit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SitError {
    OutOfRange,
    Taken,
}

impl SeatGrid {
    pub(crate) fn new(rows: u16, cols: u16) -> Self {
        Self {
            rows,
            cols,
            cells: vec![None; usize::from(rows) * usize::from(cols)],
            seat_of: HashMap::new(),
        }
    }

    fn index(&self, seat: Seat) -> Option<usize> {
        (seat.row < self.rows && seat.col < self.cols)
            .then(|| usize::from(seat.row) * usize::from(self.cols) + usize::from(seat.col))
    }

    pub(crate) fn occupant(&self, seat: Seat) -> Option<&UserId> {
        self.index(seat).and_then(|i| self.cells[i].as_ref())
    }

    pub(crate) fn seat_of(&self, user: &UserId) -> Option<Seat> {
        self.seat_of.get(user).copied()
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
        self.cells[index] = Some(user.clone());
        self.seat_of.insert(user.clone(), seat);
        Ok(left)
    }

    /// Frees `user`'s cell. Returns it, if they sat.
    pub(crate) fn stand(&mut self, user: &UserId) -> Option<Seat> {
        let seat = self.seat_of.remove(user)?;
        if let Some(i) = self.index(seat) {
            self.cells[i] = None;
        }
        Some(seat)
    }

    /// Every seated learner and their cell, in no particular order.
    pub(crate) fn occupied(&self) -> impl Iterator<Item = (&UserId, Seat)> {
        self.seat_of.iter().map(|(u, s)| (u, *s))
    }

    pub(crate) fn seated_count(&self) -> usize {
        self.seat_of.len()
    }

    /// Checks that the two indexes agree (for tests).
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        let mut filled = 0;
        for (i, cell) in self.cells.iter().enumerate() {
            if let Some(user) = cell {
                filled += 1;
                let seat = self.seat_of[user];
                assert_eq!(self.index(seat), Some(i), "{user:?} is in two places");
            }
        }
        assert_eq!(
            filled,
            self.seat_of.len(),
            "a learner holds more than one cell"
        );
    }
}
