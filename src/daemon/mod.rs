//! The daemon: wires the stages together in their own threads.
//! (being written)
pub mod notify;
