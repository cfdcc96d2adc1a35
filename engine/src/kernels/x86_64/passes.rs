//! The element-wise int8 passes' portable code compiled for AVX2: the
//! compiler vectorizes it 8 lanes wide (the same arithmetic: Rust never
//! fuses a multiply and an add by itself).

use crate::qconv::OutElem;
use crate::quant::Requant;
use crate::wires::ByteAdd;

/// # Safety
/// The CPU has AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn requant(r: &Requant, a: &[f32], b: &[f32], y: &mut [f32]) {
    r.apply_portable(a, b, y)
}

/// # Safety
/// The CPU has AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn byte_add<O: OutElem>(r: &ByteAdd, a: &[u8], b: &[u8], y: &mut [O]) {
    r.apply_portable(a, b, y)
}
