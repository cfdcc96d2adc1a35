//! Input stage: the GPIO push-button and signals, turned into [`Command`]s.
//!
//! INTERFACE (fixed; the implementation is being written).

pub use crate::frame::Command;
