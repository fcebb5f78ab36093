//! The live lecture room node.
//!
//! # Layout
//! - [`room`]: the lecture room as a sans-IO state machine (no tokio, no clock, no locks).
pub mod room;
