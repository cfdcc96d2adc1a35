//! aarch64 (Pi 3/4/5 in 64-bit mode): NEON is always there; the Pi 5's
//! Cortex-A76 adds the dot product (`sdot`) and fp16 arithmetic.

use super::{Isa, Table};

pub(super) fn available(isa: Isa) -> bool {
    match isa {
        Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
        Isa::NeonDot => {
            std::arch::is_aarch64_feature_detected!("neon")
                && std::arch::is_aarch64_feature_detected!("dotprod")
        }
        _ => false,
    }
}

/// No aarch64 kernels of ours yet: the portable code, vectorized for NEON.
pub(super) fn plug(_t: &mut Table) {}
