//! GEMM micro-kernels of the exact int8 convolution ([`crate::qconv`]) on
//! aarch64: MR output pixels x J vectors of output channels, i32
//! accumulators, fused fp32 requantization.
//!
//! - [`neon`] (any aarch64, the Pi 4's A72): the input bytes `u` (0..=255)
//!   widened to i16 and the i16 weights multiplied by `smlal` by element
//!   into i32: exact whatever the weights (no i16 sums).
//! - [`dot`] (the Pi 5's A76, `dotprod`): `sdot` by element, four i8 x i8
//!   products per i32 lane, on `s = u ^ 0x80 = u - 128`; the packing adds
//!   `128 * Σw` to each channel's initial sum.
//!
//! The signed kernels ([`neon_c8`], [`dot`]) read `s` as the input packing
//! wrote it (flipped once per byte, [`signed_input`]), or flip at each load
//! the bytes of a previous layer read in place. Each pixel's input pointer
//! advances by 16 bytes a step (post-indexed loads, no address arithmetic).
//!
//! A row's whole tiles ([`neon_c8_full`], [`dot_full`]) pay no per-tile
//! set-up (pointers advance by MR pixels, constants stay in registers);
//! bytes are stored through [`ByteQ`]'s saturating narrows, as XNNPACK's
//! kernels do, f32 as before. The row's last part tile and panels of
//! fewer channels take the general tile.

// Register tiles read clearest as acc[pixel][vector] with both indexes.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;
use std::arch::asm;

use crate::kernels::Isa;
use crate::qconv::{Job, OutElem, Weights};

/// Arguments of one micro-kernel call. The pointers are valid for the reads
/// the packing allows: each pixel's segments of `seg_len` bytes at
/// `a + segs[s] + offs[p]`, the packed weights of the panel, its `init` and
/// `m` lanes; `y` for the `np` pixels' `nc` channels, `ops` elements apart.
pub(crate) struct Tile<'a, const MR: usize> {
    pub a: *const u8,
    pub offs: [usize; MR],
    pub np: usize,
    pub segs: &'a [usize],
    pub seg_len: usize,
    pub w: *const u8,
    pub init: *const i32,
    pub m: *const f32,
    pub nc: usize,
    pub lo: f32,
    pub hi: f32,
    /// `zp_out + 128`, for byte outputs.
    pub zp: f32,
    pub y: *mut u8,
    pub ops: usize,
    /// The input has slack past each segment (padded copy): whole vectors
    /// may be loaded there (the packed weights are zero).
    pub slack: bool,
}

/// Loads `n` <= `N` bytes (the rest zero) without reading past them.
#[inline(always)]
unsafe fn partial<const N: usize>(src: *const u8, n: usize) -> [u8; N] {
    let mut b = [0u8; N];
    // SAFETY: the caller guarantees `n` readable bytes at `src`, n <= N.
    unsafe { std::ptr::copy_nonoverlapping(src, b.as_mut_ptr(), n.min(N)) };
    b
}

/// NEON: i16 weights `[seg][k padded to 8][4 * H lanes]`; for each k,
/// one `smlal` by element per (pixel, 4 channels). H = 1 serves up to 4
/// output channels without wasting half the lanes.
///
/// # Safety
/// See [`Tile`]; NEON is always present on aarch64.
#[inline(always)]
unsafe fn neon_tile<O: OutElem, const MR: usize, const H: usize>(t: &Tile<MR>) {
    // SAFETY: reads as allowed by `Tile`: groups of 8 bytes inside the
    // segment or into the slack, else through `partial`; weights padded.
    unsafe {
        let mut acc = [[vdupq_n_s32(0); H]; MR];
        for h in 0..H {
            let v = vld1q_s32(t.init.add(4 * h));
            for a in acc.iter_mut() {
                a[h] = v;
            }
        }
        let mut wp = t.w as *const i16;
        for &seg in t.segs {
            let ap = t.a.add(seg);
            for kc in 0..t.seg_len.div_ceil(8) {
                let left = t.seg_len - 8 * kc;
                let x: [int16x8_t; MR] = std::array::from_fn(|p| {
                    let src = ap.add(t.offs[p] + 8 * kc);
                    let b = if left >= 8 || t.slack {
                        vld1_u8(src)
                    } else {
                        vld1_u8(partial::<8>(src, left).as_ptr())
                    };
                    vreinterpretq_s16_u16(vmovl_u8(b))
                });
                macro_rules! step {
                    ($($l:literal)*) => {$(
                        if H == 1 {
                            let w = vld1_s16(wp);
                            for p in 0..MR {
                                acc[p][0] = vmlal_laneq_s16::<$l>(acc[p][0], w, x[p]);
                            }
                        } else {
                            let w: [int16x8_t; H] =
                                std::array::from_fn(|h| vld1q_s16(wp.add(8 * (h / 2))));
                            for p in 0..MR {
                                for h in 0..H {
                                    let a = acc[p][h];
                                    acc[p][h] = if h % 2 == 0 {
                                        vmlal_laneq_s16::<$l>(a, vget_low_s16(w[h]), x[p])
                                    } else {
                                        vmlal_high_laneq_s16::<$l>(a, w[h], x[p])
                                    };
                                }
                            }
                        }
                        wp = wp.add(4 * H);
                    )*};
                }
                step!(0 1 2 3 4 5 6 7);
            }
        }
        store_tile::<O, MR, H>(t, &acc, 0);
    }
}

/// NEON, weights in [-127, 127]: i8 weights `[seg][k / 16][NC][16]`,
/// 16 k per (pixel, channel): `smull` + `smlal2` pair two products of
/// `s = u ^ 0x80` by `w` in i16 (|s·w| <= 128 · 127, two fit), `sadalp`
/// adds the pairs into four i32 lanes, summed at the end. Three
/// instructions per 16 products against four per 16 for [`neon`].
///
/// # Safety
/// See [`Tile`]; no weight is -128 (checked at packing).
#[inline(always)]
unsafe fn neon_c8_tile<O: OutElem, const MR: usize, const NC: usize, const FLIP: bool>(
    t: &Tile<MR>,
) {
    // SAFETY: reads as allowed by `Tile`: 16-byte loads inside the
    // segment or into the slack, else through `partial`; weights padded
    // to 16 k.
    unsafe {
        let mut acc = [[vdupq_n_s32(0); NC]; MR];
        let mut wp = t.w as *const i8;
        let (full, tail) = chunks::<16, MR>(t);
        for &seg in t.segs {
            // One pointer per pixel, advanced by 16: post-indexed loads,
            // no address arithmetic per step.
            let mut src: [*const u8; MR] = std::array::from_fn(|p| t.a.add(seg + t.offs[p]));
            for _ in 0..full {
                let x = next16::<MR, FLIP>(&mut src);
                c8_step::<MR, NC>(&mut acc, &x, wp);
                wp = wp.add(16 * NC);
            }
            if tail > 0 {
                let x = std::array::from_fn(|p| {
                    signed::<FLIP>(vld1q_u8(partial::<16>(src[p], tail).as_ptr()))
                });
                c8_step::<MR, NC>(&mut acc, &x, wp);
                wp = wp.add(16 * NC);
            }
        }
        // Each accumulator's four lanes summed: one vector of 4 channels
        // per pixel, plus `init`.
        let init = vld1q_s32(t.init);
        let sums: [[int32x4_t; 1]; MR] = std::array::from_fn(|p| {
            let a: [int32x4_t; 4] =
                std::array::from_fn(|c| if c < NC { acc[p][c] } else { vdupq_n_s32(0) });
            let s = vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3]));
            [vaddq_s32(s, init)]
        });
        store_tile::<O, MR, 1>(t, &sums, 0);
    }
}

/// A whole tile of [`neon_c8_tile`] (MR pixels, 4 channels, slack):
/// pixel `p` reads from `a + pofs[p]`, writes at `y + p * ys`. The first step starts the sums (`saddlp`), so there is
/// nothing to zero; `init` is added to the reduced sums.
///
/// # Safety
/// As [`neon_c8_tile`] for the tile at `a`/`y`, which is whole and has
/// slack (every 16-byte load stays within `u`).
#[inline(always)]
unsafe fn neon_c8_full<O: OutElem, const MR: usize, const FLIP: bool>(
    t: &Tile<MR>,
    h: &Hoisted<MR, 1>,
    a: *const u8,
    y: *mut u8,
) {
    // SAFETY: the loads are those of `neon_c8_tile` with slack (whole
    // 16-byte steps, weights padded to 16 k); the stores those of
    // `store_tile` for a whole tile.
    unsafe {
        let steps = t.seg_len.div_ceil(16);
        let mut wp = t.w as *const i8;
        let mut src: [*const u8; MR] = std::array::from_fn(|p| a.add(h.first[p]));
        let x = next16::<MR, FLIP>(&mut src);
        let mut acc = c8_first::<MR>(&x, wp);
        wp = wp.add(64);
        for _ in 1..steps {
            let x = next16::<MR, FLIP>(&mut src);
            c8_step::<MR, 4>(&mut acc, &x, wp);
            wp = wp.add(64);
        }
        for &seg in &t.segs[1..] {
            src = std::array::from_fn(|p| a.add(seg + h.pofs[p]));
            for _ in 0..steps {
                let x = next16::<MR, FLIP>(&mut src);
                c8_step::<MR, 4>(&mut acc, &x, wp);
                wp = wp.add(64);
            }
        }
        let sums: [[int32x4_t; 1]; MR] = std::array::from_fn(|p| {
            let [a0, a1, a2, a3] = acc[p];
            [vaddq_s32(addp(addp(a0, a1), addp(a2, a3)), h.init[0])]
        });
        store_full::<O, MR, 1>(y, h, &sums);
    }
}

/// The first 16 k of each (pixel, channel) of [`c8_step`], into fresh
/// sums (`saddlp` instead of `sadalp` onto zeros).
///
/// # Safety
/// `wp` points at 64 readable weight bytes.
#[inline(always)]
unsafe fn c8_first<const MR: usize>(x: &[int8x16_t; MR], wp: *const i8) -> [[int32x4_t; 4]; MR] {
    // SAFETY: the weight loads are as the caller guarantees; the rest is
    // register arithmetic.
    unsafe {
        let w: [int8x16_t; 4] = std::array::from_fn(|c| vld1q_s8(wp.add(16 * c)));
        std::array::from_fn(|p| {
            std::array::from_fn(|c| {
                let pr = vmull_s8(vget_low_s8(x[p]), vget_low_s8(w[c]));
                vpaddlq_s16(vmlal_high_s8(pr, x[p], w[c]))
            })
        })
    }
}

/// `addp v.4s`: pairwise sums, `[a0 + a1, a2 + a3, b0 + b1, b2 + b3]`.
/// As `asm!` because LLVM rewrites two levels of `vpaddq_s32` into
/// `uzp1`/`uzp2`/`add`, 24 instructions per 4x4 tile instead of 12.
#[inline(always)]
fn addp(a: int32x4_t, b: int32x4_t) -> int32x4_t {
    let r;
    // SAFETY: register-only NEON arithmetic (always present on aarch64).
    unsafe {
        asm!(
            "addp {r:v}.4s, {a:v}.4s, {b:v}.4s",
            r = lateout(vreg) r,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    r
}

/// A whole tile of [`dot_tile`] (MR pixels, `4 * J` channels, slack),
/// laid out as [`neon_c8_full`].
///
/// # Safety
/// As [`dot_tile`] for the tile at `a`/`y`, which is whole and has slack;
/// the CPU has `dotprod`.
#[inline(always)]
unsafe fn dot_full<O: OutElem, const MR: usize, const J: usize, const FLIP: bool>(
    t: &Tile<MR>,
    h: &Hoisted<MR, J>,
    a: *const u8,
    y: *mut u8,
) {
    // SAFETY: the loads are those of `dot_tile` with slack, the stores
    // those of `store_tile` for a whole tile.
    unsafe {
        let mut acc = [h.init; MR];
        let mut wp = t.w as *const i8;
        let (full, tail) = (t.seg_len / 16, t.seg_len % 16);
        let mut src: [*const u8; MR] = std::array::from_fn(|p| a.add(h.first[p]));
        for (i, &seg) in t.segs.iter().enumerate() {
            if i > 0 {
                src = std::array::from_fn(|p| a.add(seg + h.pofs[p]));
            }
            for _ in 0..full {
                let x = next16::<MR, FLIP>(&mut src);
                dot_steps::<MR, J>(&mut acc, &x, &mut wp, 4);
            }
            if tail > 0 {
                let x = next16::<MR, FLIP>(&mut src);
                dot_steps::<MR, J>(&mut acc, &x, &mut wp, tail.div_ceil(4));
            }
        }
        store_full::<O, MR, J>(y, h, &acc);
    }
}

/// The byte store of whole tiles: XNNPACK's "fp32" requantization with
/// integer saturation, `b = clamp(sat(fcvtns(acc * m)) + zp, blo, bhi)`
/// (`fcvtns` rounds to nearest even like `frintn`; `sqxtn`, `sqadd zp`,
/// `sqxtun` narrow with saturation; one `umax`/`umin` per 16 bytes).
///
/// Why it equals [`requant`] + [`store`] bit for bit. Let `r` be the
/// rounded `acc * m` (an integer, or +-inf; never NaN: `acc` and `m` are
/// finite) and `B(x) = sat_u8(trunc(x + zp))` the old store (f32 add,
/// `fcvtzu`, `uqxtn`). `B` is non-decreasing, so for `lo <= hi` the old
/// result is `B(clamp(r, lo, hi)) = clamp(B(r), B(lo), B(hi))`. For an
/// integer `r`, `r + zp` is exact where it matters (below 2^24; beyond,
/// both saturate alike), so `B(r) = clamp(r + zp, 0, 255)`. The new
/// chain gives the same: with `zp` in [0, 255], saturating `r` to i32
/// and then i16 does not move `r + zp` across [0, 255], `sqadd` and
/// `sqxtun` clamp it to [0, 255], and `blo = B(lo)`, `bhi = B(hi)` are
/// bytes computed by the old store itself ([`ByteQ::new`]), so non-integer
/// bounds (a RELU6) round as before.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ByteQ {
    zp: i16,
    lo: u8,
    hi: u8,
}

impl ByteQ {
    /// Zero point 0, bounds [0, 255].
    pub(crate) const IDENTITY: ByteQ = ByteQ {
        zp: 0,
        lo: 0,
        hi: 255,
    };

    /// `None` where the proof above does not hold (`lo > hi` or NaN, `zp`
    /// not an integer in [0, 255], a scale in `m` not finite).
    pub(crate) fn new(lo: f32, hi: f32, zp: f32, m: &[f32]) -> Option<ByteQ> {
        let ok = lo <= hi
            && (0.0..=255.0).contains(&zp)
            && zp.fract() == 0.0
            && m.iter().all(|v| v.is_finite());
        // The old store's own byte: `as` truncates and saturates like
        // `fcvtzu` + `uqxtn`.
        let b = |v: f32| (v + zp) as u8;
        ok.then(|| ByteQ {
            zp: zp as i16,
            lo: b(lo),
            hi: b(hi),
        })
    }

    /// Zero point 0 and bounds [0, 255]: adding the zero point and the
    /// byte clamp change nothing ([`narrow16`] without them).
    pub(crate) fn is_identity(self) -> bool {
        self == Self::IDENTITY
    }

    #[inline(always)]
    pub(crate) fn regs(self) -> ByteRegs {
        // SAFETY: NEON register splats (always present on aarch64).
        unsafe {
            ByteRegs {
                zp: vdupq_n_s16(self.zp),
                lo: vdupq_n_u8(self.lo),
                hi: vdupq_n_u8(self.hi),
            }
        }
    }
}

/// [`ByteQ`] splatted.
#[derive(Clone, Copy)]
pub(crate) struct ByteRegs {
    zp: int16x8_t,
    lo: uint8x16_t,
    hi: uint8x16_t,
}

/// `acc * m` rounded to nearest even, saturated to i32.
#[inline(always)]
pub(crate) fn rne_i32(acc: int32x4_t, m: float32x4_t) -> int32x4_t {
    // SAFETY: NEON register arithmetic (always present on aarch64).
    unsafe { vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(acc), m)) }
}

/// Sixteen requantized bytes from four vectors of [`rne_i32`]. Without
/// `CLAMP` the zero point and the byte clamp are left out: the same bytes
/// when [`ByteQ::is_identity`] (adding 0 is the identity, and the u8
/// narrow already gives [0, 255]).
#[inline(always)]
pub(crate) fn narrow16<const CLAMP: bool>(v: [int32x4_t; 4], q: &ByteRegs) -> uint8x16_t {
    // SAFETY: NEON register arithmetic (always present on aarch64).
    unsafe {
        let mut a = vqmovn_high_s32(vqmovn_s32(v[0]), v[1]);
        let mut b = vqmovn_high_s32(vqmovn_s32(v[2]), v[3]);
        if CLAMP {
            (a, b) = (vqaddq_s16(a, q.zp), vqaddq_s16(b, q.zp));
        }
        let u = vqmovun_high_s16(vqmovun_s16(a), b);
        if CLAMP {
            vminq_u8(vmaxq_u8(u, q.lo), q.hi)
        } else {
            u
        }
    }
}

/// Requantizes and stores all `4 * V` channels of each of the MR pixels
/// as bytes (see [`ByteQ`]), pixel `p` at `y + p * ops`.
///
/// # Safety
/// `y` is valid for those writes.
#[inline(always)]
unsafe fn store_bytes<const MR: usize, const V: usize>(
    y: *mut u8,
    ops: usize,
    acc: &[[int32x4_t; V]; MR],
    m: &[float32x4_t; V],
    q: &ByteRegs,
) {
    const { assert!(V >= 1 && V <= 4) };
    let r: [[int32x4_t; V]; MR] =
        std::array::from_fn(|p| std::array::from_fn(|v| rne_i32(acc[p][v], m[v])));
    // SAFETY: whole stores of each pixel's `4 * V` bytes.
    unsafe {
        match V {
            // Four pixels per vector, 4 bytes each.
            1 => {
                for g in 0..MR.div_ceil(4) {
                    let px = |i: usize| (4 * g + i).min(MR - 1);
                    let b = vreinterpretq_u32_u8(narrow16::<true>(
                        std::array::from_fn(|i| r[px(i)][0]),
                        q,
                    ));
                    let lanes = [
                        vgetq_lane_u32::<0>(b),
                        vgetq_lane_u32::<1>(b),
                        vgetq_lane_u32::<2>(b),
                        vgetq_lane_u32::<3>(b),
                    ];
                    for (i, &w) in lanes.iter().enumerate().take(MR - 4 * g) {
                        (y.add((4 * g + i) * ops) as *mut u32).write_unaligned(w);
                    }
                }
            }
            // Two pixels per vector, 8 bytes each.
            2 => {
                for g in 0..MR.div_ceil(2) {
                    let (p0, p1) = (2 * g, (2 * g + 1).min(MR - 1));
                    let b = narrow16::<true>([r[p0][0], r[p0][V - 1], r[p1][0], r[p1][V - 1]], q);
                    vst1_u8(y.add(p0 * ops), vget_low_u8(b));
                    if 2 * g + 1 < MR {
                        vst1_u8(y.add(p1 * ops), vget_high_u8(b));
                    }
                }
            }
            // 12 bytes a pixel: 8 + 4.
            3 => {
                for p in 0..MR {
                    let b = narrow16::<true>([r[p][0], r[p][1 % V], r[p][2 % V], r[p][2 % V]], q);
                    vst1_u8(y.add(p * ops), vget_low_u8(b));
                    let w = vgetq_lane_u32::<2>(vreinterpretq_u32_u8(b));
                    (y.add(p * ops + 8) as *mut u32).write_unaligned(w);
                }
            }
            _ => {
                for p in 0..MR {
                    let b = narrow16::<true>(std::array::from_fn(|v| r[p][v % V]), q);
                    vst1q_u8(y.add(p * ops), b);
                }
            }
        }
    }
}

/// Whole `N`-byte steps of a segment, and the bytes left for a last,
/// partial step (none when the slack allows a whole load there: the
/// packed weights past the segment are zero).
#[inline(always)]
fn chunks<const N: usize, const MR: usize>(t: &Tile<MR>) -> (usize, usize) {
    if t.slack {
        (t.seg_len.div_ceil(N), 0)
    } else {
        (t.seg_len / N, t.seg_len % N)
    }
}

/// The next 16 input bytes of each pixel as signed values; each pointer
/// moves on by 16 (post-indexed loads).
///
/// # Safety
/// 16 bytes are readable at each pointer.
#[inline(always)]
unsafe fn next16<const MR: usize, const FLIP: bool>(src: &mut [*const u8; MR]) -> [int8x16_t; MR] {
    std::array::from_fn(|p| {
        // SAFETY: as the caller guarantees.
        let b = unsafe { vld1q_u8(src[p]) };
        src[p] = src[p].wrapping_add(16);
        signed::<FLIP>(b)
    })
}

/// The signed values `s = u - 128`: packed so already (`FLIP` = false), or
/// flipped here (bytes read in place).
#[inline(always)]
fn signed<const FLIP: bool>(b: uint8x16_t) -> int8x16_t {
    // SAFETY: NEON register arithmetic, always present on aarch64.
    unsafe {
        if FLIP {
            vreinterpretq_s8_u8(veorq_u8(b, vdupq_n_u8(0x80)))
        } else {
            vreinterpretq_s8_u8(b)
        }
    }
}

/// 16 k for each (pixel, channel): `smull` + `smlal2` + `sadalp`.
///
/// # Safety
/// `wp` points at `16 * NC` readable weight bytes.
#[inline(always)]
unsafe fn c8_step<const MR: usize, const NC: usize>(
    acc: &mut [[int32x4_t; NC]; MR],
    x: &[int8x16_t; MR],
    wp: *const i8,
) {
    // SAFETY: the weight loads are as the caller guarantees; the rest is
    // register arithmetic.
    unsafe {
        for c in 0..NC {
            let w = vld1q_s8(wp.add(16 * c));
            for p in 0..MR {
                let pr = vmull_s8(vget_low_s8(x[p]), vget_low_s8(w));
                let pr = vmlal_high_s8(pr, x[p], w);
                acc[p][c] = vpadalq_s16(acc[p][c], pr);
            }
        }
    }
}

/// `sdot acc.4s, w.16b, x.4b[L]`: lane i of `acc` += the dot product of
/// bytes 4i..4i+4 of `w` with bytes 4L..4L+4 of `x` (all signed).
#[inline(always)]
unsafe fn sdot<const L: i32>(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut a = acc;
    // SAFETY: register-only arithmetic; the caller runs on a CPU with the
    // dot product (only [`dot`], compiled with `dotprod`, calls this).
    unsafe {
        asm!(
            "sdot {a:v}.4s, {w:v}.16b, {x:v}.4b[{l}]",
            a = inout(vreg) a,
            w = in(vreg) w,
            x = in(vreg) x,
            l = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    a
}

/// Dot product: i8 weights `[seg][k / 4][J * 4 lanes][4]`; 16 input bytes
/// per pixel (4 groups of 4 k) serve 4 steps, each one `sdot` per
/// (pixel, vector of 4 channels).
///
/// # Safety
/// See [`Tile`]; the CPU has `dotprod`.
#[inline(always)]
unsafe fn dot_tile<O: OutElem, const MR: usize, const J: usize, const FLIP: bool>(t: &Tile<MR>) {
    // SAFETY: reads as allowed by `Tile`: 16-byte loads inside the
    // segment or into the slack, the tail through `partial`; weights
    // padded to 4 k.
    unsafe {
        let mut acc = [[vdupq_n_s32(0); J]; MR];
        for j in 0..J {
            let v = vld1q_s32(t.init.add(4 * j));
            for a in acc.iter_mut() {
                a[j] = v;
            }
        }
        let mut wp = t.w as *const i8;
        // Weights come in groups of 4 k: the tail takes only its groups.
        let (full, tail) = (t.seg_len / 16, t.seg_len % 16);
        for &seg in t.segs {
            let mut src: [*const u8; MR] = std::array::from_fn(|p| t.a.add(seg + t.offs[p]));
            for _ in 0..full {
                let x = next16::<MR, FLIP>(&mut src);
                dot_steps::<MR, J>(&mut acc, &x, &mut wp, 4);
            }
            if tail > 0 {
                let x = std::array::from_fn(|p| {
                    let b = if t.slack {
                        vld1q_u8(src[p])
                    } else {
                        vld1q_u8(partial::<16>(src[p], tail).as_ptr())
                    };
                    signed::<FLIP>(b)
                });
                dot_steps::<MR, J>(&mut acc, &x, &mut wp, tail.div_ceil(4));
            }
        }
        store_tile::<O, MR, J>(t, &acc, 0);
    }
}

/// `groups` (1..=4) `sdot` steps over the 16 input bytes `x` of each pixel.
///
/// # Safety
/// `*wp` points at `groups * 16 * J` readable weight bytes; the CPU has
/// `dotprod`.
#[inline(always)]
unsafe fn dot_steps<const MR: usize, const J: usize>(
    acc: &mut [[int32x4_t; J]; MR],
    x: &[int8x16_t; MR],
    wp: &mut *const i8,
    groups: usize,
) {
    macro_rules! step {
        ($l:literal) => {
            // SAFETY: within the weights the caller guarantees.
            let w: [int8x16_t; J] = std::array::from_fn(|j| unsafe { vld1q_s8(wp.add(16 * j)) });
            for p in 0..MR {
                for j in 0..J {
                    // SAFETY: the CPU has `dotprod` (the caller's contract).
                    acc[p][j] = unsafe { sdot::<$l>(acc[p][j], w[j], x[p]) };
                }
            }
            // SAFETY: stays within (or one past) the weights.
            *wp = unsafe { wp.add(16 * J) };
        };
    }
    step!(0);
    if groups > 1 {
        step!(1);
    }
    if groups > 2 {
        step!(2);
    }
    if groups > 3 {
        step!(3);
    }
}

/// A row of tiles: the first tile's fields and how the pixels advance.
pub(crate) struct RowTiles<'a, const MR: usize> {
    pub t: Tile<'a, MR>,
    /// Pixels in the row, bytes between pixels in `a`, bytes readable
    /// from `a` (slack included), the last segment's offset.
    pub wo: usize,
    pub ps: usize,
    pub avail: usize,
    pub last_seg: usize,
    /// Size of one output element (`O`), to advance `y`.
    pub osz: usize,
    /// Byte outputs whose whole tiles may take [`store_bytes`].
    pub bq: Option<ByteQ>,
}

impl<'a, const MR: usize> RowTiles<'a, MR> {
    /// The tile of pixels `x0..x0 + MR` (fewer at the row's end).
    #[inline(always)]
    fn tile(&self, x0: usize) -> Tile<'a, MR> {
        let t = &self.t;
        let np = (self.wo - x0).min(MR);
        // Whole 16-byte vectors of the last segment of the last pixel
        // stay within `u` (the padded copy's slack).
        let end = (x0 + np - 1) * self.ps + self.last_seg + t.seg_len.next_multiple_of(16);
        Tile {
            slack: end <= self.avail,
            offs: std::array::from_fn(|p| (x0 + p.min(np - 1)) * self.ps),
            np,
            y: t.y.wrapping_add(x0 * t.ops * self.osz),
            ..*t
        }
    }

    /// How many tiles from the row's start are whole (MR pixels) with
    /// slack: every 16-byte load of their last pixel stays within `u`
    /// (the condition of [`RowTiles::tile`], which grows with `x0`).
    #[inline(always)]
    fn full_tiles(&self) -> usize {
        let need = self.last_seg + self.t.seg_len.next_multiple_of(16);
        if self.avail < need || self.ps == 0 {
            return 0;
        }
        ((self.avail - need) / self.ps + 1).min(self.wo) / MR
    }
}

/// `p` unchanged, through an empty `asm!`: LLVM then derives a tile's
/// input pointers from it afresh instead of keeping one induction
/// pointer per pixel and segment across tiles (7 adds and spills a
/// [`neon_c8_full`] tile; no gain for [`dot_full`], measured).
#[inline(always)]
// The asm reads and writes no memory: it only hides the pointer's value.
#[allow(clippy::pointers_in_nomem_asm_block)]
fn opaque(mut p: *const u8) -> *const u8 {
    // SAFETY: an empty asm block; the register keeps its value.
    unsafe { asm!("/* {p} */", p = inout(reg) p, options(pure, nomem, nostack, preserves_flags)) };
    p
}

/// What every whole tile of a row shares, in registers: the pixels'
/// offsets from the tile's first, the first segment's, the panel's
/// constants.
struct Hoisted<const MR: usize, const V: usize> {
    pofs: [usize; MR],
    first: [usize; MR],
    init: [int32x4_t; V],
    m: [float32x4_t; V],
    q: ByteRegs,
    /// f32 outputs: the clamp.
    lo: float32x4_t,
    hi: float32x4_t,
    /// Bytes from pixel to pixel in `y`; tile to tile in `a` and `y`.
    ys: usize,
    da: usize,
    dy: usize,
}

impl<const MR: usize, const V: usize> Hoisted<MR, V> {
    /// # Safety
    /// `init` and `m` hold `4 * V` lanes (the packing pads them).
    #[inline(always)]
    unsafe fn new(r: &RowTiles<MR>, q: ByteQ) -> Self {
        let t = &r.t;
        let pofs = std::array::from_fn(|p| p * r.ps);
        let ys = t.ops * r.osz;
        // SAFETY: as the caller guarantees.
        unsafe {
            Hoisted {
                pofs,
                first: std::array::from_fn(|p| t.segs[0] + pofs[p]),
                init: std::array::from_fn(|v| vld1q_s32(t.init.add(4 * v))),
                m: std::array::from_fn(|v| vld1q_f32(t.m.add(4 * v))),
                q: q.regs(),
                lo: vdupq_n_f32(t.lo),
                hi: vdupq_n_f32(t.hi),
                ys,
                da: MR * r.ps,
                dy: MR * ys,
            }
        }
    }
}

/// Whether the row's whole tiles take the `_full` kernels: always for f32
/// outputs (the byte constants then unused), for bytes where [`ByteQ`]
/// is exact.
#[inline(always)]
fn whole<O: OutElem, const MR: usize>(r: &RowTiles<MR>) -> Option<ByteQ> {
    if O::BYTES {
        r.bq
    } else {
        Some(ByteQ {
            zp: 0,
            lo: 0,
            hi: 255,
        })
    }
}

/// Requantizes and stores all `4 * V` channels of the tile's MR pixels:
/// bytes through [`store_bytes`], f32 as [`requant`] + [`store`] do.
///
/// # Safety
/// `y` is valid for the tile's writes.
#[inline(always)]
unsafe fn store_full<O: OutElem, const MR: usize, const V: usize>(
    y: *mut u8,
    h: &Hoisted<MR, V>,
    acc: &[[int32x4_t; V]; MR],
) {
    // SAFETY: whole stores of each pixel's `4 * V` outputs.
    unsafe {
        if O::BYTES {
            store_bytes::<MR, V>(y, h.ys, acc, &h.m, &h.q);
        } else {
            for p in 0..MR {
                let y = y.add(p * h.ys) as *mut f32;
                for v in 0..V {
                    vst1q_f32(y.add(4 * v), requant(acc[p][v], h.m[v], h.lo, h.hi));
                }
            }
        }
    }
}

/// The row's tiles in one call: the loop sits next to the kernel, no
/// call and no `Tile` in memory per tile.
macro_rules! row_kernel {
    ($(#[$a:meta])* $name:ident, $tile:ident $(, $flip:ident)?) => {
        $(#[$a])*
        pub(crate) unsafe fn $name<O: OutElem, const MR: usize, const X: usize
            $(, const $flip: bool)?>(r: &RowTiles<MR>) {
            for x0 in (0..r.wo).step_by(MR) {
                // SAFETY: each tile's reads and writes are those `RowTiles`
                // allows (checked by [`blocks`]).
                unsafe { $tile::<O, MR, X $(, $flip)?>(&r.tile(x0)) };
            }
        }
    };
}

row_kernel!(
    /// Rows of [`neon_tile`]. # Safety: see [`RowTiles`].
    neon, neon_tile
);

/// Rows of [`neon_c8_tile`]: whole tiles of 4 channels through
/// [`neon_c8_full`], the others (row end, fewer channels, bytes where
/// [`ByteQ`] declines) tile by tile.
///
/// # Safety
/// See [`RowTiles`]; no weight is -128.
pub(crate) unsafe fn neon_c8<O: OutElem, const MR: usize, const NC: usize, const FLIP: bool>(
    r: &RowTiles<MR>,
) {
    let mut x0 = 0;
    if let Some(q) = whole::<O, MR>(r).filter(|_| NC == 4 && r.t.nc == 4) {
        let n = r.full_tiles();
        // SAFETY: the panel pads `init` and `m` to 4 lanes; tiles
        // `0..n` are whole with slack ([`RowTiles::full_tiles`]), so each
        // tile's reads stay within `u` and its writes within the row
        // (checked by [`blocks`]).
        unsafe {
            let h = Hoisted::<MR, 1>::new(r, q);
            let (mut a, mut y) = (r.t.a, r.t.y);
            for _ in 0..n {
                neon_c8_full::<O, MR, FLIP>(&r.t, &h, opaque(a), y);
                a = a.add(h.da);
                y = y.add(h.dy);
            }
        }
        x0 = n * MR;
    }
    for x0 in (x0..r.wo).step_by(MR) {
        // SAFETY: each tile's reads and writes are those `RowTiles`
        // allows (checked by [`blocks`]).
        unsafe { neon_c8_tile::<O, MR, NC, FLIP>(&r.tile(x0)) };
    }
}

/// Rows of [`dot_tile`], whole tiles of `4 * J` channels through
/// [`dot_full`].
///
/// # Safety
/// See [`RowTiles`]; the CPU has `dotprod`.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn dot<O: OutElem, const MR: usize, const J: usize, const FLIP: bool>(
    r: &RowTiles<MR>,
) {
    let mut x0 = 0;
    if let Some(q) = whole::<O, MR>(r).filter(|_| r.t.nc == 4 * J) {
        let n = r.full_tiles();
        // SAFETY: as in [`neon_c8`]; the CPU has `dotprod`.
        unsafe {
            let h = Hoisted::<MR, J>::new(r, q);
            let (mut a, mut y) = (r.t.a, r.t.y);
            for _ in 0..n {
                dot_full::<O, MR, J, FLIP>(&r.t, &h, a, y);
                a = a.add(h.da);
                y = y.add(h.dy);
            }
        }
        x0 = n * MR;
    }
    for x0 in (x0..r.wo).step_by(MR) {
        // SAFETY: as in [`neon_c8`].
        unsafe { dot_tile::<O, MR, J, FLIP>(&r.tile(x0)) };
    }
}

/// Whether the packed kernel multiplies the signed `s = u - 128` (the
/// `smull` and `sdot` kernels), so its input can be packed flipped.
pub(crate) fn signed_input(pk: &crate::qconv::Packed) -> bool {
    match pk.kernel {
        Isa::NeonDot => true,
        Isa::Neon => matches!(pk.weights, Weights::I8(_)),
        _ => false,
    }
}

/// Requantizes and stores `V` vectors of 4 channels for each pixel, from
/// channel `c0` of the tile.
#[inline(always)]
unsafe fn store_tile<O: OutElem, const MR: usize, const V: usize>(
    t: &Tile<MR>,
    acc: &[[int32x4_t; V]; MR],
    c0: usize,
) {
    let n = t.nc.saturating_sub(c0).min(4 * V);
    if n == 0 {
        return;
    }
    // SAFETY: `m` has the panel's lanes (padded), `y` the tile's outputs.
    unsafe {
        let lo = vdupq_n_f32(t.lo);
        let hi = vdupq_n_f32(t.hi);
        let zp = vdupq_n_f32(t.zp);
        let m: [float32x4_t; V] = std::array::from_fn(|v| vld1q_f32(t.m.add(c0 + 4 * v)));
        for (p, a) in acc.iter().enumerate().take(t.np) {
            let f: [float32x4_t; V] = std::array::from_fn(|v| requant(a[v], m[v], lo, hi));
            let y = (t.y as *mut O).add(p * t.ops + c0);
            store::<O, V>(y, &f, n, zp);
        }
    }
}

/// XNNPACK's fp32 requantization of 4 lanes: `clamp(rne(acc as f32 * m))`
/// (`scvtf` rounds to nearest even, as `as f32` does).
#[inline(always)]
pub(crate) fn requant(
    acc: int32x4_t,
    m: float32x4_t,
    lo: float32x4_t,
    hi: float32x4_t,
) -> float32x4_t {
    // SAFETY: NEON arithmetic on registers (always present on aarch64).
    unsafe {
        let f = vrndnq_f32(vmulq_f32(vcvtq_f32_s32(acc), m));
        vminq_f32(vmaxq_f32(f, lo), hi)
    }
}

/// Stores the first `n` of the `4 * V` requantized values `f` at `y`: as
/// f32, or as bytes `v + zp` (saturated, as [`OutElem::put`] does).
///
/// # Safety
/// `y` is valid for `n` writes.
#[inline(always)]
pub(crate) unsafe fn store<O: OutElem, const V: usize>(
    y: *mut O,
    f: &[float32x4_t; V],
    n: usize,
    zp: float32x4_t,
) {
    // SAFETY: full stores only when `n` covers them, else through a buffer.
    unsafe {
        if !O::BYTES {
            let y = y as *mut f32;
            if n == 4 * V {
                for (v, &fv) in f.iter().enumerate() {
                    vst1q_f32(y.add(4 * v), fv);
                }
            } else {
                let mut b = [0f32; 16];
                for (v, &fv) in f.iter().enumerate() {
                    vst1q_f32(b.as_mut_ptr().add(4 * v), fv);
                }
                for (i, &v) in b.iter().enumerate().take(n) {
                    y.add(i).write(v);
                }
            }
            return;
        }
        let y = y as *mut u8;
        // Integers in [0, 255] once `zp` is added: fcvtzu is exact, the
        // narrowing saturates like `as u8`.
        let h: [uint16x4_t; V] =
            std::array::from_fn(|v| vqmovn_u32(vcvtq_u32_f32(vaddq_f32(f[v], zp))));
        const { assert!(V >= 1 && V <= 4) };
        let q: [uint8x8_t; 2] = std::array::from_fn(|pair| {
            let lo = h[(2 * pair).min(V - 1)];
            let hi = h[(2 * pair + 1).min(V - 1)];
            vqmovn_u16(vcombine_u16(lo, hi))
        });
        // A whole tile straight from the registers (no stack round trip).
        if n == 4 * V {
            match V {
                1 => (y as *mut u32).write_unaligned(vget_lane_u32::<0>(vreinterpret_u32_u8(q[0]))),
                2 => vst1_u8(y, q[0]),
                4 => vst1q_u8(y, vcombine_u8(q[0], q[1])),
                _ => {
                    vst1_u8(y, q[0]);
                    let w = vget_lane_u32::<0>(vreinterpret_u32_u8(q[1]));
                    (y.add(8) as *mut u32).write_unaligned(w);
                }
            }
            return;
        }
        let mut b = [0u8; 16];
        for (pair, &v) in q.iter().enumerate().take(V.div_ceil(2)) {
            vst1_u8(b.as_mut_ptr().add(8 * pair), v);
        }
        // No `memcpy` call for the usual 16, 8 or 4 channels.
        let mut i = 0;
        if n >= 16 {
            vst1q_u8(y, vld1q_u8(b.as_ptr()));
            i = 16;
        }
        if n - i >= 8 {
            vst1_u8(y.add(i), vld1_u8(b.as_ptr().add(i)));
            i += 8;
        }
        if n - i >= 4 {
            (y.add(i) as *mut u32)
                .write_unaligned((b.as_ptr().add(i) as *const u32).read_unaligned());
            i += 4;
        }
        while i < n {
            y.add(i).write(b[i]);
            i += 1;
        }
    }
}

/// One output row of one panel, in tiles of MR pixels.
///
/// # Safety
/// `Neon`/`NeonDot` resolved on this CPU; `u` holds u8 with the
/// packing's slack (or in place, segments a multiple of 4 bytes).
pub(crate) unsafe fn row<T: Copy, O: OutElem>(job: &Job<T>, y: &mut [O]) {
    // The micro-kernels read the input as bytes.
    assert_eq!(std::mem::size_of::<T>(), 1, "NEON input elements");
    // SAFETY: as the caller guarantees; the element size checked above.
    unsafe {
        if job.flipped {
            signed_rows::<T, O, false>(job, y)
        } else {
            match (job.pk.kernel, job.panel.j) {
                (Isa::Neon, _) if matches!(job.pk.weights, Weights::I8(_)) => {
                    signed_rows::<T, O, true>(job, y)
                }
                (Isa::Neon, _) if job.pk.lanes == 4 => blocks::<T, O, 12>(job, y, neon::<O, 12, 1>),
                (Isa::Neon, 1) => blocks::<T, O, 8>(job, y, neon::<O, 8, 2>),
                (Isa::Neon, _) => blocks::<T, O, 4>(job, y, neon::<O, 4, 4>),
                _ => signed_rows::<T, O, true>(job, y),
            }
        }
    }
}

/// The `smull` and `sdot` kernels; `FLIP`: `u` holds unsigned bytes.
///
/// # Safety
/// As for [`row`]; the kernel is one of [`signed_input`]'s.
unsafe fn signed_rows<T: Copy, O: OutElem, const FLIP: bool>(job: &Job<T>, y: &mut [O]) {
    // SAFETY: as the caller guarantees.
    unsafe {
        match (job.pk.kernel, job.panel.j) {
            (Isa::Neon, _) => match job.pk.lanes {
                1 => blocks::<T, O, 4>(job, y, neon_c8::<O, 4, 1, FLIP>),
                2 => blocks::<T, O, 4>(job, y, neon_c8::<O, 4, 2, FLIP>),
                3 => blocks::<T, O, 4>(job, y, neon_c8::<O, 4, 3, FLIP>),
                _ => blocks::<T, O, 4>(job, y, neon_c8::<O, 4, 4, FLIP>),
            },
            (_, 1) => blocks::<T, O, 8>(job, y, dot::<O, 8, 1, FLIP>),
            (_, 2) => blocks::<T, O, 8>(job, y, dot::<O, 8, 2, FLIP>),
            (_, 3) => blocks::<T, O, 6>(job, y, dot::<O, 6, 3, FLIP>),
            _ => blocks::<T, O, 4>(job, y, dot::<O, 4, 4, FLIP>),
        }
    }
}

/// # Safety
/// As for [`row`].
unsafe fn blocks<T: Copy, O: OutElem, const MR: usize>(
    job: &Job<T>,
    y: &mut [O],
    micro: unsafe fn(&RowTiles<MR>),
) {
    let pk = job.pk;
    let pn = job.panel;
    let w = match &pk.weights {
        Weights::I8(w) => w[pn.w_off..].as_ptr() as *const u8,
        Weights::I16(w) => w[pn.w_off..].as_ptr() as *const u8,
    };
    let nc = (job.cout - pn.c0).min(pn.j * pk.lanes);
    let last_seg = job.segs.last().copied().unwrap_or(0);
    if job.wo == 0 {
        return;
    }
    // Everything but the pixels is the same for the whole row: the slices
    // are checked once here (the last tile's outputs, the panel's lanes).
    assert!((job.wo - 1) * job.cout + pn.c0 + nc <= y.len());
    let yrow = y[pn.c0..].as_mut_ptr() as *mut u8;
    let r = RowTiles::<MR> {
        t: Tile {
            slack: false,
            a: job.u[job.base..].as_ptr() as *const u8,
            offs: [0; MR],
            np: 0,
            segs: job.segs,
            seg_len: job.seg_len,
            w,
            init: pk.init[pn.lane_off..].as_ptr(),
            m: pk.m[pn.lane_off..].as_ptr(),
            nc,
            lo: job.rq.lo,
            hi: job.rq.hi,
            zp: job.rq.zp,
            y: yrow,
            ops: job.cout,
        },
        wo: job.wo,
        ps: job.ps,
        avail: job.u.len() - job.base,
        last_seg,
        osz: std::mem::size_of::<O>(),
        bq: if O::BYTES {
            ByteQ::new(job.rq.lo, job.rq.hi, job.rq.zp, &pk.m[pn.lane_off..][..nc])
        } else {
            None
        },
    };
    // SAFETY: every tile's reads and writes are within `u` (packed with
    // slack, or whole segments in place) and `y` (the row's last output
    // checked above).
    unsafe { micro(&r) };
}
