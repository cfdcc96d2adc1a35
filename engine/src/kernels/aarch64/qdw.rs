//! Depthwise int8 convolution of [`crate::qconv`] on aarch64 NEON, 16
//! channels per step, fused requantization. Two kernels:
//!
//! - signed (every weight in [-127, 127], as TFLite's int8 spec has them):
//!   the input as `s = u - 128 = u ^ 0x80` (flipped by `pack_input` for
//!   free, or by one `eor` per load when read in place), i8 weights held in
//!   registers for 3x3; `smull` of one tap and `smlal` of the next into
//!   i16 (|s·w| <= 128·127, so two products fit in i16), then
//!   `saddw`/`saddw2` into i32: two instructions per 8 lanes per tap, as
//!   XNNPACK's `mla8` depthwise kernels (the initial sum holds `128·Σw`,
//!   see `pack_depthwise`);
//! - exact fallback when a weight is -128 (two products of 128·128 would
//!   overflow i16): input bytes `u` widened to i16, i16 weights, `smlal`
//!   into i32.
//!
//! Byte outputs with integer bounds inside the byte range requantize as
//! XNNPACK's fp32 path (`fcvtns`, saturating narrows, zero point added
//! with `sqadd`, one clamp on bytes); the others in f32 as the GEMM
//! kernels do.

use std::arch::aarch64::*;
use std::arch::asm;
use std::ops::Range;

use super::qgemm::{requant, store};
use crate::qconv::OutElem;

/// One depthwise convolution over a padded input (`pack_input`'s layout,
/// or the unpadded bytes when there is no padding).
pub(crate) struct Dw<'a> {
    /// `[n][hp][wp][c]` bytes.
    pub u: &'a [u8],
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    pub hp: usize,
    pub wp: usize,
    pub ho: usize,
    pub wo: usize,
    /// i16 weights `[tap][cpad]` of the fallback, `init` and `m` per
    /// channel (`cpad` lanes, `cpad` = `c` rounded up to 16).
    pub w16: &'a [i16],
    /// i8 weights `[tap][cpad]` of the signed kernel (`init` then holds
    /// `128·Σw` more, see `pack_depthwise`); empty: the fallback.
    pub w8: &'a [i8],
    /// `u` holds `u ^ 0x80` (only with `w8`).
    pub flipped: bool,
    pub init: &'a [i32],
    pub m: &'a [f32],
    pub lo: f32,
    pub hi: f32,
    /// `zp_out + 128`, for byte outputs.
    pub zp: f32,
}

impl Dw<'_> {
    fn cpad(&self) -> usize {
        self.c.next_multiple_of(16)
    }
}

/// Output rows `rows` (over the batch) into `yc` (their slice of the
/// output). 3x3 keeps its weights in registers; other sizes reload them.
/// This function and those below it up to [`signed`] are the fallback.
pub(crate) fn rows<O: OutElem>(d: &Dw, rows: Range<usize>, yc: &mut [O]) {
    let cpad = d.cpad();
    let taps = d.kh * d.kw;
    if rows.is_empty() || d.wo == 0 || d.c == 0 {
        return;
    }
    if !d.w8.is_empty() {
        return signed::rows(d, rows, yc);
    }
    assert!(!d.flipped, "the fallback reads unsigned bytes");
    // The bounds every read and write below relies on: the last row's
    // last tap, and columns within a padded row.
    let (b, yo) = ((rows.end - 1) / d.ho, (rows.end - 1) % d.ho);
    let last_row = b * d.hp + yo * d.stride.0 + (d.kh - 1) * d.dilation.0;
    let last_col = (d.wo - 1) * d.stride.1 + (d.kw - 1) * d.dilation.1;
    assert!(last_col < d.wp && (last_row * d.wp + last_col + 1) * d.c <= d.u.len());
    assert!(d.w16.len() >= taps * cpad && d.init.len() >= cpad && d.m.len() >= cpad);
    assert!(yc.len() >= rows.len() * d.wo * d.c);
    // SAFETY: the assertions above bound every tap of every output pixel
    // (rows within the batch, columns within `wp`); channel blocks read at
    // most `c - c0` bytes (`load16`), and store `min(16, c - c0)` outputs.
    unsafe {
        if taps == 9 {
            rows_n::<O, 9>(d, rows, yc)
        } else {
            rows_any(d, rows, yc)
        }
    }
}

/// 16 input bytes widened to two i16 vectors; fewer (zero-filled) at the
/// last block of channels.
#[inline(always)]
unsafe fn load16(src: *const u8, left: usize) -> (int16x8_t, int16x8_t) {
    // SAFETY: `left` bytes are readable at `src` (the caller's bounds).
    unsafe {
        let v = if left >= 16 {
            vld1q_u8(src)
        } else {
            let mut b = [0u8; 16];
            std::ptr::copy_nonoverlapping(src, b.as_mut_ptr(), left);
            vld1q_u8(b.as_ptr())
        };
        (
            vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))),
            vreinterpretq_s16_u16(vmovl_high_u8(v)),
        )
    }
}

/// `acc += x * w` on 16 lanes: `smlal`/`smlal2` on i16 written out, since
/// LLVM otherwise widens both sides to i32 and uses `mla.4s` (twice the
/// instructions, and the i32 weights no longer fit in registers).
#[inline(always)]
fn mac(acc: &mut [int32x4_t; 4], x: (int16x8_t, int16x8_t), w: &[int16x8_t; 2]) {
    // SAFETY: register-only NEON arithmetic (always present on aarch64).
    unsafe {
        asm!(
            "smlal {a0:v}.4s, {x0:v}.4h, {w0:v}.4h",
            "smlal2 {a1:v}.4s, {x0:v}.8h, {w0:v}.8h",
            "smlal {a2:v}.4s, {x1:v}.4h, {w1:v}.4h",
            "smlal2 {a3:v}.4s, {x1:v}.8h, {w1:v}.8h",
            a0 = inout(vreg) acc[0],
            a1 = inout(vreg) acc[1],
            a2 = inout(vreg) acc[2],
            a3 = inout(vreg) acc[3],
            x0 = in(vreg) x.0,
            x1 = in(vreg) x.1,
            w0 = in(vreg) w[0],
            w1 = in(vreg) w[1],
            options(pure, nomem, nostack, preserves_flags),
        );
    }
}

/// Requantizes 16 channels (`m` their multipliers) and stores the first `n`.
#[inline(always)]
unsafe fn put16<O: OutElem>(
    d: &Dw,
    y: *mut O,
    m: &[float32x4_t; 4],
    acc: &[int32x4_t; 4],
    n: usize,
) {
    // SAFETY: `y` takes `n` values.
    unsafe {
        let lo = vdupq_n_f32(d.lo);
        let hi = vdupq_n_f32(d.hi);
        let f: [float32x4_t; 4] = std::array::from_fn(|v| requant(acc[v], m[v], lo, hi));
        store::<O, 4>(y, &f, n, vdupq_n_f32(d.zp));
    }
}

/// The multipliers of channels `c0..c0 + 16` (`m` has `cpad` lanes).
#[inline(always)]
unsafe fn m16(d: &Dw, c0: usize) -> [float32x4_t; 4] {
    // SAFETY: `c0 + 16 <= cpad <= m.len()` (checked by [`rows`]).
    std::array::from_fn(|v| unsafe { vld1q_f32(d.m.as_ptr().add(c0 + 4 * v)) })
}

/// The byte offset of tap `t` from a pixel's first tap.
fn tap_off(d: &Dw, t: usize) -> usize {
    ((t / d.kw) * d.dilation.0 * d.wp + (t % d.kw) * d.dilation.1) * d.c
}

/// `T` taps with their weights held in registers along a row.
unsafe fn rows_n<O: OutElem, const T: usize>(d: &Dw, rows: Range<usize>, yc: &mut [O]) {
    let (c, cpad) = (d.c, d.cpad());
    let offs: [usize; T] = std::array::from_fn(|t| tap_off(d, t));
    // SAFETY: bounds checked by [`rows`].
    unsafe {
        for (i, ro) in rows.enumerate() {
            let (b, yo) = (ro / d.ho, ro % d.ho);
            let row0 = (b * d.hp + yo * d.stride.0) * d.wp * c;
            let yrow = yc.as_mut_ptr().add(i * d.wo * c);
            for c0 in (0..c).step_by(16) {
                let left = c - c0;
                let w: [[int16x8_t; 2]; T] = std::array::from_fn(|t| {
                    let p = d.w16.as_ptr().add(t * cpad + c0);
                    [vld1q_s16(p), vld1q_s16(p.add(8))]
                });
                let init: [int32x4_t; 4] =
                    std::array::from_fn(|v| vld1q_s32(d.init.as_ptr().add(c0 + 4 * v)));
                let m = m16(d, c0);
                let (src, y) = (d.u.as_ptr().add(row0 + c0), yrow.add(c0));
                // A whole block of 16 channels: no test per tap.
                if left >= 16 {
                    pixels::<O, T, true>(d, src, y, &offs, &w, &init, &m, 16);
                } else {
                    pixels::<O, T, false>(d, src, y, &offs, &w, &init, &m, left);
                }
            }
        }
    }
}

/// One row's pixels for one block of channels (`src`, `y` at its first
/// channel), `left` of them present (16 when `FULL`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pixels<O: OutElem, const T: usize, const FULL: bool>(
    d: &Dw,
    src: *const u8,
    y: *mut O,
    offs: &[usize; T],
    w: &[[int16x8_t; 2]; T],
    init: &[int32x4_t; 4],
    m: &[float32x4_t; 4],
    left: usize,
) {
    let left = if FULL { 16 } else { left };
    // SAFETY: bounds checked by [`rows`] for every pixel of the row.
    unsafe {
        for xo in 0..d.wo {
            let src = src.add(xo * d.stride.1 * d.c);
            let mut acc = *init;
            for t in 0..T {
                mac(&mut acc, load16(src.add(offs[t]), left), &w[t]);
            }
            put16(d, y.add(xo * d.c), m, &acc, left.min(16));
        }
    }
}

/// Any kernel size: weights loaded per tap.
unsafe fn rows_any<O: OutElem>(d: &Dw, rows: Range<usize>, yc: &mut [O]) {
    let (c, cpad) = (d.c, d.cpad());
    let offs: Vec<usize> = (0..d.kh * d.kw).map(|t| tap_off(d, t)).collect();
    // SAFETY: bounds checked by [`rows`].
    unsafe {
        for (i, ro) in rows.enumerate() {
            let (b, yo) = (ro / d.ho, ro % d.ho);
            let row0 = (b * d.hp + yo * d.stride.0) * d.wp * c;
            let yrow = yc.as_mut_ptr().add(i * d.wo * c);
            for xo in 0..d.wo {
                let src = d.u.as_ptr().add(row0 + xo * d.stride.1 * c);
                for c0 in (0..c).step_by(16) {
                    let left = c - c0;
                    let mut acc: [int32x4_t; 4] =
                        std::array::from_fn(|v| vld1q_s32(d.init.as_ptr().add(c0 + 4 * v)));
                    for (t, &off) in offs.iter().enumerate() {
                        let p = d.w16.as_ptr().add(t * cpad + c0);
                        let w = [vld1q_s16(p), vld1q_s16(p.add(8))];
                        mac(&mut acc, load16(src.add(off + c0), left), &w);
                    }
                    put16(d, yrow.add(xo * c + c0), &m16(d, c0), &acc, left.min(16));
                }
            }
        }
    }
}

mod signed;
