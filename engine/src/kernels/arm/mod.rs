//! armv7 (32-bit Pi OS on a Pi 2/3/Zero 2): NEON intrinsics are not stable
//! in Rust there, so the portable code runs, vectorized by the compiler when
//! the build enables NEON (`cross/config.toml`).

use super::Table;

pub(super) fn plug(_t: &mut Table) {}
