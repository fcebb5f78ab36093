//! The live lecture room node.
//!
//! # Layout
//! - [`room`]: the lecture room as a sans-IO state machine (no tokio, no clock, no locks).
//! - [`node`]: the composition root ([`Node`]) and [`run`]; `room_task` drives one room per
//!   lecture; `session` runs one client connection; `routes` are the HTTP endpoints.
//! - [`ticket`]: signed room tickets. [`config`]: flags, environment and the TOML file.
//! - [`clock`]: the one source of wall-clock time. [`demo`]: the demo lecture and people.

pub mod clock;
pub mod config;
pub mod demo;
pub mod node;
pub mod room;
mod room_task;
pub mod routes;
mod session;
pub mod ticket;

pub use node::{Node, run};
