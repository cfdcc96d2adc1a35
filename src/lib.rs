//! styleframe: a live art frame. Camera frames are downsized, run through
//! Magenta's arbitrary style-transfer network and shown full-screen.
//!
//! One module per pipeline stage, each behind one small trait:
//! [`capture`] → [`preprocess`] → [`inference`] (with [`styles`]) → [`display`],
//! steered by [`input`] and run by [`daemon`].

pub mod atomic;
pub mod capture;
pub mod config;
pub mod daemon;
pub mod display;
pub mod frame;
pub use styleframe_engine as inference;
pub mod input;
pub mod models;
pub mod mqtt;
pub mod preprocess;
pub mod process;
pub mod remote;
pub mod styles;
