//! aarch64 (Pi 3/4/5 in 64-bit mode): NEON is always there; the Pi 5's
//! Cortex-A76 adds the dot product (`sdot`) and fp16 arithmetic.

pub(crate) mod fconv;
