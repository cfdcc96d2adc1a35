//! The int8 convolutions' input packing on aarch64 NEON ([`crate::qconv`]'s
//! `to_grid` and `copy_xor`): f32 integers to bytes, checked exact, and
//! byte rows copied (flipped).

use std::arch::aarch64::*;

use crate::qconv::to_grid_body;

/// `dst = (src + off) as u8 ^ xor`; `false` unless every `src + off` is
/// an integer in [0, 255] (as [`to_grid_body`]). 16 values a step:
/// `fcvtzu` (saturating, NaN to 0) then `ucvtf` must give the value back
/// (NaN, fractions and negatives other than -0 fail), and the largest
/// integer, checked once at the end, must be at most 255. The compiler's
/// loop clamped each value twice and tested each lane (49 instructions per
/// 16 values, 37 here).
pub(crate) fn to_grid_u8(src: &[f32], off: f32, dst: &mut [u8], xor: u8) -> bool {
    let n = src.len().min(dst.len());
    let whole = n - n % 16;
    // SAFETY: NEON (always present on aarch64); each step reads 16 values
    // and writes 16 bytes below `whole` <= both lengths.
    let ok = unsafe {
        let (o, x) = (vdupq_n_f32(off), vdupq_n_u8(xor));
        let (mut eq, mut max) = (vdupq_n_u32(u32::MAX), vdupq_n_u32(0));
        for i in (0..whole).step_by(16) {
            let s = src.as_ptr().add(i);
            let q: [uint32x4_t; 4] = std::array::from_fn(|k| {
                let v = vaddq_f32(vld1q_f32(s.add(4 * k)), o);
                let q = vcvtq_u32_f32(v);
                eq = vandq_u32(eq, vceqq_f32(vcvtq_f32_u32(q), v));
                max = vmaxq_u32(max, q);
                q
            });
            let h0 = vmovn_high_u32(vmovn_u32(q[0]), q[1]);
            let h1 = vmovn_high_u32(vmovn_u32(q[2]), q[3]);
            let b = vmovn_high_u16(vmovn_u16(h0), h1);
            vst1q_u8(dst.as_mut_ptr().add(i), veorq_u8(b, x));
        }
        vminvq_u32(eq) == u32::MAX && vmaxvq_u32(max) <= 255
    };
    ok & to_grid_body(&src[whole..n], off, &mut dst[whole..n], xor)
}

/// `dst = src ^ xor`, 128 bytes a step with four-register loads and
/// stores: the compiler's own loop takes 32, with more address arithmetic
/// (the depthwise layers' padded copies).
pub(crate) fn copy_xor_u8(dst: &mut [u8], src: &[u8], xor: u8) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let whole = n - n % 128;
    // SAFETY: NEON (always present on aarch64); each step reads and writes
    // 128 bytes below `whole` <= the length of both slices.
    unsafe {
        let x = vdupq_n_u8(xor);
        let flip = |v: uint8x16x4_t| {
            uint8x16x4_t(
                veorq_u8(v.0, x),
                veorq_u8(v.1, x),
                veorq_u8(v.2, x),
                veorq_u8(v.3, x),
            )
        };
        for i in (0..whole).step_by(128) {
            let (s, d) = (src.as_ptr().add(i), dst.as_mut_ptr().add(i));
            let (a, b) = (vld1q_u8_x4(s), vld1q_u8_x4(s.add(64)));
            vst1q_u8_x4(d, flip(a));
            vst1q_u8_x4(d.add(64), flip(b));
        }
    }
    for (d, &s) in dst[whole..].iter_mut().zip(&src[whole..]) {
        *d = s ^ xor;
    }
}
