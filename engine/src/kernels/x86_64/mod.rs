//! x86-64 kernels: AVX2 + FMA, AVX-512 (F/BW/VL), VNNI and VBMI.

pub(crate) mod fconv;
pub(crate) mod passes;
pub(crate) mod qconv;

use super::{Isa, Table};

/// Every feature the kernels compiled for `isa` enable.
pub(super) fn available(isa: Isa) -> bool {
    use std::arch::is_x86_feature_detected as has;
    let avx2 = || has!("avx2") && has!("fma");
    let avx512 = || avx2() && has!("avx512f") && has!("avx512bw") && has!("avx512vl");
    match isa {
        Isa::Avx2 => avx2(),
        Isa::Avx512 => avx512(),
        Isa::Avx512Vnni => avx512() && has!("avx512vnni"),
        Isa::Avx512Vbmi => avx512() && has!("avx512vnni") && has!("avx512vbmi"),
        _ => false,
    }
}

/// Fills the table with the best kernels this CPU runs.
pub(super) fn plug(t: &mut Table) {
    if Isa::Avx2.available() {
        *t = Table {
            fconv: Some(Isa::Avx2),
            qconv: Some(Isa::Avx2),
            passes: Isa::Avx2,
        };
    }
    if Isa::Avx512.available() {
        t.fconv = Some(Isa::Avx512);
    }
    for isa in [Isa::Avx512Vnni, Isa::Avx512Vbmi] {
        if isa.available() {
            t.qconv = Some(isa);
        }
    }
}
