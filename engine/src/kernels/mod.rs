//! Kernels: one home per CPU architecture (`x86_64/`, `aarch64/`, `arm/`),
//! each tested against the portable code of the op it serves.
//!
//! (Being moved here: the x86 kernels still live in their ops' files.)

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
