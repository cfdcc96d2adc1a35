//! aarch64 (Pi 3/4/5 in 64-bit mode): NEON is always there; the Pi 5's
//! Cortex-A76 adds the dot product (`sdot`) and fp16 arithmetic.

pub(crate) mod fconv;
pub(crate) mod grid;
pub(crate) mod qdw;
pub(crate) mod qgemm;

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

/// NEON kernels for both convolutions, the int8 one with `sdot` where the
/// CPU has it: fewer instructions than tract's convolution and than the
/// portable kernels for every layer of the official files (arm-cost on a
/// Cortex-A72: predict 287 -> 244 M, int8 transfer 980 -> 609 M and f16
/// transfer 881 -> 552 M at 256x448).
pub(super) fn plug(t: &mut Table) {
    t.fconv = Some(Isa::Neon);
    t.qconv = Some(if Isa::NeonDot.available() {
        Isa::NeonDot
    } else {
        Isa::Neon
    });
}
