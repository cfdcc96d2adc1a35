//! The f32 direct convolution ([`crate::conv::DirectConv`]) on x86-64: the
//! portable kernels compiled for AVX-512 and AVX2 + FMA, and hand-written
//! 256-bit kernels for 8-channel blocks and dot products, where the
//! compiler's own AVX-512 code kept only 4 accumulators in registers.

// The kernels index several arrays (accumulators, pixels, weights) by the
// same counter; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::conv::{fconv_kernels, Geo, Packed, DOT, DOT_GROUP};
use crate::kernels::Isa;

fconv_kernels!(
    avx512,
    [target_feature(
        enable = "avx2,fma,avx512f,avx512bw,avx512vl"
    )],
    true,
    8,
    12,
    8
);
fconv_kernels!(avx2, [target_feature(enable = "avx2,fma")], true, 8, 6, 3);

/// One output row on `isa` ([`Isa::Avx512`] or [`Isa::Avx2`]).
///
/// # Safety
/// `isa` is available on this CPU; `x` and `out` as for the portable `row`.
pub(crate) unsafe fn row(isa: Isa, g: &Geo, p: &Packed, bias: &[f32], x: &[f32], out: &mut [f32]) {
    // SAFETY: the caller checked `isa`, which includes AVX2 + FMA.
    unsafe {
        match isa {
            _ if takes(p) => ymm_row(g, p, bias, x, out),
            Isa::Avx512 => avx512::row(g, p, bias, x, out),
            _ => avx2::row(g, p, bias, x, out),
        }
    }
}

/// Pixels per tile of the 256-bit kernels (AVX2 + FMA): 8-channel blocks
/// and dot products.
const P8: usize = 12;
const PDOT: usize = 3;

fn takes(p: &Packed) -> bool {
    matches!(p, Packed::Broadcast { cb: 8, .. } | Packed::Dot { .. })
}

#[target_feature(enable = "avx2,fma")]
unsafe fn ymm_row(g: &Geo, p: &Packed, bias: &[f32], x: &[f32], out: &mut [f32]) {
    // SAFETY: the caller checked AVX2 + FMA; `x` and `out` as for the portable `row`.
    unsafe {
        match p {
            Packed::Broadcast { w, bias, .. } => {
                let b = _mm256_loadu_ps(bias.as_ptr());
                let mut ox = 0;
                while ox + P8 <= g.ow {
                    tile8::<P8>(g, w, b, x, ox, out);
                    ox += P8;
                }
                while ox < g.ow {
                    tile8::<1>(g, w, b, x, ox, out);
                    ox += 1;
                }
            }
            Packed::Dot { run, w } => {
                let mut c0 = 0;
                while c0 < g.cout {
                    let mut ox = 0;
                    while ox + PDOT <= g.ow {
                        dot::<PDOT>(g, *run, w, bias, x, ox, c0, out);
                        ox += PDOT;
                    }
                    while ox < g.ow {
                        dot::<1>(g, *run, w, bias, x, ox, c0, out);
                        ox += 1;
                    }
                    c0 += DOT_GROUP;
                }
            }
        }
    }
}

/// One accumulator (8 channels) per pixel; a broadcast input value
/// times the kernel's 8 channels per step.
#[inline(always)]
unsafe fn tile8<const P: usize>(
    g: &Geo,
    w: &[f32],
    b: __m256,
    x: &[f32],
    ox: usize,
    out: &mut [f32],
) {
    // SAFETY: as for the portable `tile`: pixel reads stay within the `kh` input rows, weights within the 8-channel block.
    unsafe {
        let mut acc = [b; P];
        let xp = x.as_ptr().add(ox * g.px);
        for ky in 0..g.kh {
            let xr = xp.add(ky * g.in_row);
            let wr = w.as_ptr().add(ky * g.row * 8);
            for j in 0..g.row {
                let wv = _mm256_loadu_ps(wr.add(j * 8));
                for (p, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_broadcast_ss(&*xr.add(p * g.px + j)), wv, *a);
                }
            }
        }
        let (lo, hi) = (_mm256_set1_ps(g.lo), _mm256_set1_ps(g.hi));
        let n = g.cout.min(8);
        for (p, a) in acc.iter().enumerate() {
            let v = _mm256_min_ps(_mm256_max_ps(*a, lo), hi);
            let o = out.as_mut_ptr().add((ox + p) * g.cout);
            if n == 8 {
                _mm256_storeu_ps(o, v);
            } else {
                let mut t = [0f32; 8];
                _mm256_storeu_ps(t.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(t.as_ptr(), o, n);
            }
        }
    }
}

/// Channels `c0..c0 + DOT_GROUP` of `P` pixels: dot products of each
/// kernel row's contiguous patch with the packed kernel rows, 8 lanes
/// at a time, summed across lanes at the end.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dot<const P: usize>(
    g: &Geo,
    run: usize,
    w: &[f32],
    bias: &[f32],
    x: &[f32],
    ox: usize,
    c0: usize,
    out: &mut [f32],
) {
    // SAFETY: `row`'s contract, as for `broadcast`.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); DOT_GROUP]; P];
        let mut tail = [[0f32; DOT_GROUP]; P];
        let chunks = g.row / DOT;
        let xp = x.as_ptr().add(ox * g.px);
        for ky in 0..g.kh {
            let xr = xp.add(ky * g.in_row);
            let wr = w.as_ptr().add((c0 * g.kh + ky) * run);
            let ws = g.kh * run;
            for k in 0..chunks {
                let mut xv = [_mm256_setzero_ps(); P];
                for (p, v) in xv.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(xr.add(p * g.px + k * DOT));
                }
                for c in 0..DOT_GROUP {
                    let wv = _mm256_loadu_ps(wr.add(c * ws + k * DOT));
                    for p in 0..P {
                        acc[p][c] = _mm256_fmadd_ps(xv[p], wv, acc[p][c]);
                    }
                }
            }
            // Past the last whole chunk the input is the next pixel's, so
            // the remainder goes value by value.
            for j in chunks * DOT..g.row {
                for c in 0..DOT_GROUP {
                    let wv = *wr.add(c * ws + j);
                    for p in 0..P {
                        tail[p][c] = (*xr.add(p * g.px + j)).mul_add(wv, tail[p][c]);
                    }
                }
            }
        }
        let n = (g.cout - c0).min(DOT_GROUP);
        for p in 0..P {
            for c in 0..n {
                let mut l = [0f32; DOT];
                _mm256_storeu_ps(l.as_mut_ptr(), acc[p][c]);
                let s = l.iter().sum::<f32>() + tail[p][c] + bias[c0 + c];
                out[(ox + p) * g.cout + c0 + c] = s.max(g.lo).min(g.hi);
            }
        }
    }
}
