//! The seat grid as a learner gets it (protocol v2): seats by number, the whole grid as two
//! bitmaps, and a tick's changes as lists of numbers. A lecture hall of 5,000 seats is two
//! bitmaps of 625 bytes, and a seat taken costs a learner three bytes, not a nickname and an id.

use crate::ids::Seat;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A seat by its number: `row × cols + col`, counting row by row from 0 at the front left.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS,
)]
pub struct SeatNumber(pub u32);

impl Seat {
    /// This seat's number in a grid of `cols` columns.
    pub fn number(self, cols: u16) -> SeatNumber {
        SeatNumber(u32::from(self.row) * u32::from(cols) + u32::from(self.col))
    }

    /// The seat numbered `number` in a grid of `rows` × `cols`, if the grid has it.
    pub fn from_number(number: SeatNumber, rows: u16, cols: u16) -> Option<Seat> {
        let cols = u32::from(cols);
        if cols == 0 {
            return None;
        }
        let row = u16::try_from(number.0 / cols).ok()?;
        let col = u16::try_from(number.0 % cols).ok()?;
        (row < rows).then_some(Seat { row, col })
    }
}

/// One bit per seat, by seat number: seat `n` is bit `n % 8` (the least significant first) of
/// byte `n / 8`; bits past the last seat are 0. MessagePack carries the bytes as `bin`, JSON as
/// a base64 string (standard alphabet, padded).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SeatBits(pub Vec<u8>);

impl SeatBits {
    /// Every bit clear, for a grid of `seats` seats.
    pub fn new(seats: usize) -> Self {
        Self(vec![0; seats.div_ceil(8)])
    }

    /// Whether seat `n`'s bit is set (false past the end).
    pub fn get(&self, n: usize) -> bool {
        self.0.get(n / 8).is_some_and(|b| b & (1 << (n % 8)) != 0)
    }

    /// Sets or clears seat `n`'s bit (nothing past the end).
    pub fn set(&mut self, n: usize, on: bool) {
        if let Some(b) = self.0.get_mut(n / 8) {
            if on {
                *b |= 1 << (n % 8);
            } else {
                *b &= !(1 << (n % 8));
            }
        }
    }

    /// How many bits are set.
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The numbers of the seats whose bit is set, in order.
    pub fn iter_set(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, b)| {
            (0..8)
                .filter(move |bit| b & (1 << bit) != 0)
                .map(move |bit| i * 8 + bit)
        })
    }
}

impl fmt::Debug for SeatBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeatBits({} set of {})", self.count(), self.0.len() * 8)
    }
}

impl Serialize for SeatBits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for SeatBits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bits;
        impl<'de> serde::de::Visitor<'de> for Bits {
            type Value = SeatBits;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes, or a base64 string of them")
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SeatBits, E> {
                Ok(SeatBits(v.to_vec()))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<SeatBits, E> {
                Ok(SeatBits(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SeatBits, E> {
                STANDARD.decode(v).map(SeatBits).map_err(E::custom)
            }
        }
        d.deserialize_any(Bits)
    }
}

/// The whole grid, for a learner's welcome: which seats are taken, and which of those are held
/// for someone whose connection is gone. Both bitmaps cover `rows × cols` seats.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Occupancy {
    /// Seats someone sits in (including seats held for someone away).
    #[ts(type = "Uint8Array")]
    pub occupied: SeatBits,
    /// Seats held for someone whose connection is gone (a subset of `occupied`).
    #[ts(type = "Uint8Array")]
    pub away: SeatBits,
}

/// The nickname of someone sitting in a seat, in answer to `seat_names`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct SeatName {
    /// The seat.
    pub seat: SeatNumber,
    /// Who sits there (plain text, never HTML).
    pub nickname: crate::Nickname,
}

/// Most seats one `seat_names` may ask about: about a screenful of named cells.
pub const MAX_SEAT_NAMES: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;

    #[test]
    fn seat_numbers_count_row_by_row() {
        assert_eq!(Seat::new(0, 0).number(20), SeatNumber(0));
        assert_eq!(Seat::new(2, 5).number(20), SeatNumber(45));
        assert_eq!(
            Seat::from_number(SeatNumber(45), 10, 20),
            Some(Seat::new(2, 5))
        );
        assert_eq!(Seat::from_number(SeatNumber(200), 10, 20), None);
        assert_eq!(Seat::from_number(SeatNumber(0), 10, 0), None);
    }

    #[test]
    fn bits_are_bytes_in_messagepack_and_base64_in_json() {
        let mut bits = SeatBits::new(10);
        bits.set(0, true);
        bits.set(9, true);
        assert_eq!(bits.0, [0b0000_0001, 0b0000_0010]);
        assert_eq!(bits.iter_set().collect::<Vec<_>>(), [0, 9]);
        let grid = Occupancy {
            occupied: bits.clone(),
            away: SeatBits::new(10),
        };
        let json = serde_json::to_string(&grid).expect("encodes");
        assert_eq!(json, r#"{"occupied":"AQI=","away":"AAA="}"#);
        let packed = rmp_serde::to_vec_named(&grid).expect("encodes");
        // bin 8 of two bytes, not an array of numbers
        assert!(packed.windows(4).any(|w| w == [0xc4, 0x02, 0x01, 0x02]));
        for codec in Codec::ALL {
            let bytes = match codec {
                Codec::Json => json.clone().into_bytes(),
                Codec::MsgPack => packed.clone(),
            };
            let back: Occupancy = match codec {
                Codec::Json => serde_json::from_slice(&bytes).expect("decodes"),
                Codec::MsgPack => rmp_serde::from_slice(&bytes).expect("decodes"),
            };
            assert_eq!(back, grid, "{codec:?}");
        }
        assert!(serde_json::from_str::<SeatBits>(r#""not base64!""#).is_err());
    }
}
