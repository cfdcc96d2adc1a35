//! The signed depthwise kernel of [`super`] (no weight is -128): per 16
//! channels and pair of taps, `smull` + `smlal` (and their `2` forms) into
//! i16, then `saddw`/`saddw2` into the four i32 accumulators.

use std::arch::aarch64::*;
use std::arch::asm;
use std::ops::Range;

use super::{m16, put16, tap_off, Dw};
use crate::kernels::aarch64::qgemm::{narrow16, rne_i32, ByteQ, ByteRegs};
use crate::qconv::OutElem;

/// Output pixels of a group of rows that share one load of each block of
/// channels' weights (rows of the late layers are 8 or 16 pixels wide).
const GROUP_PIXELS: usize = 64;

/// How the pixels are loaded and requantized (the same for the whole call).
struct Mode {
    /// 16-byte loads are in bounds for the last block of channels too.
    slack: bool,
    rq: Rq,
}

/// How outputs are requantized.
#[derive(Clone, Copy)]
enum Rq {
    /// In f32 as the GEMM kernels do ([`put16`]).
    Float,
    /// Bytes in integers as the GEMM's whole tiles ([`ByteQ`], [`put_bytes`]).
    Bytes(ByteQ),
    /// The same with zero point 0 and bounds [0, 255] (the prediction
    /// network's depthwise layers: int8 RELU6 over the whole int8 range),
    /// where adding the zero point and clamping change nothing.
    Full,
}

/// As [`super::rows`], for `d.w8`.
pub(super) fn rows<O: OutElem>(d: &Dw, rows: Range<usize>, yc: &mut [O]) {
    let (c, cpad, taps) = (d.c, d.cpad(), d.kh * d.kw);
    // The bounds every read and write below relies on: the last row's
    // last tap (rows of earlier pictures of the batch end before it, as
    // the second assertion says), and columns within a padded row.
    let (b, yo) = ((rows.end - 1) / d.ho, (rows.end - 1) % d.ho);
    let last_row = b * d.hp + yo * d.stride.0 + (d.kh - 1) * d.dilation.0;
    let last_col = (d.wo - 1) * d.stride.1 + (d.kw - 1) * d.dilation.1;
    let end = (last_row * d.wp + last_col + 1) * c;
    assert!(last_col < d.wp && end <= d.u.len());
    assert!((d.ho - 1) * d.stride.0 + (d.kh - 1) * d.dilation.0 < d.hp);
    assert!(d.w8.len() >= taps * cpad && d.init.len() >= cpad && d.m.len() >= cpad);
    assert!(yc.len() >= rows.len() * d.wo * c);
    // The last tap's last block of channels loaded whole: the bytes past
    // the last channel (the next pixel's, or the padded copy's slack) meet
    // zero weights, and only `c` outputs are stored.
    let slack = end - c + cpad <= d.u.len();
    let mode = Mode {
        slack,
        rq: match ByteQ::new(d.lo, d.hi, d.zp, &d.m[..cpad]).filter(|_| O::BYTES) {
            Some(q) if q.is_identity() => Rq::Full,
            Some(q) => Rq::Bytes(q),
            None => Rq::Float,
        },
    };
    // SAFETY: the assertions above bound every tap of every output pixel
    // (rows within the batch, columns within `wp`); channel blocks read 16
    // bytes only when `slack` or 16 channels are left (else `c - c0`), and
    // store `min(16, c - c0)` outputs.
    unsafe {
        match (taps, d.flipped) {
            (9, true) => blocks::<O, 9, false>(d, rows, yc, &mode),
            (9, false) => blocks::<O, 9, true>(d, rows, yc, &mode),
            (_, true) => blocks::<O, 0, false>(d, rows, yc, &mode),
            (_, false) => blocks::<O, 0, true>(d, rows, yc, &mode),
        }
    }
}

/// One block of 16 channels along one row.
struct Px<'a, const T: usize> {
    /// The first pixel's first tap, at the block's first channel.
    src: *const u8,
    /// Its output.
    y: *mut u8,
    /// Taps' offsets from a pixel's first tap (`T` of them, or any number
    /// when `T` is 0).
    offs: &'a [usize],
    /// The same in registers (`T` > 0).
    o: &'a [usize; T],
    /// Weights in registers (`T` > 0), else loaded from `wrow`, taps
    /// `cpad` apart.
    w: &'a [int8x16_t; T],
    wrow: *const i8,
    init: &'a [int32x4_t; 4],
    m: &'a [float32x4_t; 4],
    /// Channels present (the last block may have fewer than 16).
    left: usize,
}

/// `T` taps with their weights in registers (9: 3x3), or 0: any number,
/// weights loaded per tap. `FLIP`: `u` holds unsigned bytes (read in
/// place), flipped at each load.
///
/// # Safety
/// As checked by [`rows`].
unsafe fn blocks<O: OutElem, const T: usize, const FLIP: bool>(
    d: &Dw,
    rows: Range<usize>,
    yc: &mut [O],
    mode: &Mode,
) {
    let (c, cpad, osz) = (d.c, d.cpad(), std::mem::size_of::<O>());
    let offs: Vec<usize> = (0..d.kh * d.kw).map(|t| tap_off(d, t)).collect();
    let o: [usize; T] = std::array::from_fn(|t| offs[t]);
    let group = (GROUP_PIXELS / d.wo).max(1);
    let mut r0 = rows.start;
    // SAFETY: bounds checked by [`rows`].
    unsafe {
        while r0 < rows.end {
            let r1 = (r0 + group).min(rows.end);
            for c0 in (0..c).step_by(16) {
                let wrow = d.w8.as_ptr().add(c0);
                let w: [int8x16_t; T] = std::array::from_fn(|t| vld1q_s8(wrow.add(t * cpad)));
                let init: [int32x4_t; 4] =
                    std::array::from_fn(|v| vld1q_s32(d.init.as_ptr().add(c0 + 4 * v)));
                let m = m16(d, c0);
                let left = c - c0;
                for ro in r0..r1 {
                    let (b, yo) = (ro / d.ho, ro % d.ho);
                    let row0 = (b * d.hp + yo * d.stride.0) * d.wp * c;
                    let out = (ro - rows.start) * d.wo * c + c0;
                    let px = Px::<T> {
                        src: d.u.as_ptr().add(row0 + c0),
                        y: yc.as_mut_ptr().add(out) as *mut u8,
                        offs: &offs,
                        o: &o,
                        w: &w,
                        wrow,
                        init: &init,
                        m: &m,
                        left,
                    };
                    // Whole blocks need no test per tap or per store.
                    match (left >= 16, mode.slack) {
                        (true, _) => by_rq::<O, T, FLIP, true, true>(d, &px, mode.rq, osz),
                        (_, true) => by_rq::<O, T, FLIP, true, false>(d, &px, mode.rq, osz),
                        _ => by_rq::<O, T, FLIP, false, false>(d, &px, mode.rq, osz),
                    }
                }
            }
            r0 = r1;
        }
    }
}

/// [`pixels`] for the requantization `rq`.
#[inline(always)]
unsafe fn by_rq<O: OutElem, const T: usize, const FLIP: bool, const L16: bool, const S16: bool>(
    d: &Dw,
    px: &Px<T>,
    rq: Rq,
    osz: usize,
) {
    // SAFETY: as the caller's.
    unsafe {
        match rq {
            Rq::Float => pixels::<O, T, FLIP, L16, S16, 0>(d, px, None, osz),
            Rq::Bytes(q) => pixels::<O, T, FLIP, L16, S16, 1>(d, px, Some(q), osz),
            Rq::Full => pixels::<O, T, FLIP, L16, S16, 2>(d, px, None, osz),
        }
    }
}

/// One row of pixels for one block of channels. `L16`: 16-byte loads;
/// `S16`: 16 outputs stored (else `px.left`); `RQ`: 0 [`put16`], 1
/// [`put_bytes`] with `q`, 2 the same without zero point and clamp
/// ([`Rq::Full`]; `O` is u8 for 1 and 2).
#[inline(always)]
unsafe fn pixels<
    O: OutElem,
    const T: usize,
    const FLIP: bool,
    const L16: bool,
    const S16: bool,
    const RQ: u8,
>(
    d: &Dw,
    px: &Px<T>,
    q: Option<ByteQ>,
    osz: usize,
) {
    let n = if T > 0 { T } else { px.offs.len() };
    // Held in registers across the pixels (unused without `q`).
    let o = *px.o;
    let q = q.unwrap_or(ByteQ::IDENTITY).regs();
    let ps = d.stride.1 * d.c;
    let left = if S16 { 16 } else { px.left };
    let (mut src, mut y) = (px.src, px.y);
    // SAFETY: every tap of the row's pixels is within `u`, outputs within
    // `y` (checked by [`rows`]); the weight row has `n` taps `cpad` apart.
    unsafe {
        for _ in 0..d.wo {
            let x = |t: usize| {
                let off = if T > 0 {
                    o[t]
                } else {
                    *px.offs.get_unchecked(t)
                };
                load::<FLIP, L16>(src.add(off), left)
            };
            let w = |t: usize| {
                if T > 0 {
                    px.w[t]
                } else {
                    vld1q_s8(px.wrow.add(t * d.cpad()))
                }
            };
            let mut acc = if n >= 2 {
                pair::<true>(px.init, x(0), w(0), x(1), w(1))
            } else {
                single::<true>(px.init, x(0), w(0))
            };
            let mut t = 2;
            while t + 1 < n {
                acc = pair::<false>(&acc, x(t), w(t), x(t + 1), w(t + 1));
                t += 2;
            }
            if t < n {
                acc = single::<false>(&acc, x(t), w(t));
            }
            if RQ == 1 {
                put_bytes::<true>(y, &acc, px.m, &q, left);
            } else if RQ == 2 {
                put_bytes::<false>(y, &acc, px.m, &q, left);
            } else {
                put16::<O>(d, y as *mut O, px.m, &acc, left);
            }
            src = src.add(ps);
            y = y.add(d.c * osz);
        }
    }
}

/// 16 signed input bytes `s = u - 128`; fewer (the rest zero) at the last
/// block of channels unless `FULL`.
#[inline(always)]
unsafe fn load<const FLIP: bool, const FULL: bool>(src: *const u8, left: usize) -> int8x16_t {
    // SAFETY: 16 bytes (`FULL`) or `left` are readable at `src`.
    unsafe {
        let v = if FULL {
            vld1q_u8(src)
        } else {
            let mut b = [0u8; 16];
            std::ptr::copy_nonoverlapping(src, b.as_mut_ptr(), left.min(16));
            vld1q_u8(b.as_ptr())
        };
        // u ^ 0x80 = u - 128 as i8.
        vreinterpretq_s8_u8(if FLIP {
            veorq_u8(v, vdupq_n_u8(0x80))
        } else {
            v
        })
    }
}

/// Runs the products `$mul` (into i16 `t0` for lanes 0..8, `t1` for 8..16)
/// then `saddw`/`saddw2` of them into the four i32 vectors: from `init`
/// into new registers (`out` registers are never an input's, and every
/// input is read before the first `saddw` writes), or in place.
macro_rules! widen_add {
    (new $init:expr, [$($mul:literal),*], $($op:tt)*) => {{
        let (a0, a1, a2, a3);
        asm!(
            $($mul,)*
            "saddw {a0:v}.4s, {i0:v}.4s, {t0:v}.4h",
            "saddw2 {a1:v}.4s, {i1:v}.4s, {t0:v}.8h",
            "saddw {a2:v}.4s, {i2:v}.4s, {t1:v}.4h",
            "saddw2 {a3:v}.4s, {i3:v}.4s, {t1:v}.8h",
            t0 = out(vreg) _,
            t1 = out(vreg) _,
            a0 = out(vreg) a0,
            a1 = out(vreg) a1,
            a2 = out(vreg) a2,
            a3 = out(vreg) a3,
            i0 = in(vreg) $init[0],
            i1 = in(vreg) $init[1],
            i2 = in(vreg) $init[2],
            i3 = in(vreg) $init[3],
            $($op)*
            options(pure, nomem, nostack, preserves_flags),
        );
        [a0, a1, a2, a3]
    }};
    (acc $acc:expr, [$($mul:literal),*], $($op:tt)*) => {{
        let [mut a0, mut a1, mut a2, mut a3] = $acc;
        asm!(
            $($mul,)*
            "saddw {a0:v}.4s, {a0:v}.4s, {t0:v}.4h",
            "saddw2 {a1:v}.4s, {a1:v}.4s, {t0:v}.8h",
            "saddw {a2:v}.4s, {a2:v}.4s, {t1:v}.4h",
            "saddw2 {a3:v}.4s, {a3:v}.4s, {t1:v}.8h",
            t0 = out(vreg) _,
            t1 = out(vreg) _,
            a0 = inout(vreg) a0,
            a1 = inout(vreg) a1,
            a2 = inout(vreg) a2,
            a3 = inout(vreg) a3,
            $($op)*
            options(pure, nomem, nostack, preserves_flags),
        );
        [a0, a1, a2, a3]
    }};
}

/// `acc + xa * wa + xb * wb` on 16 lanes (`FIRST`: `acc` is the initial
/// sum, kept): the two products summed in i16 (|s * w| <= 128 * 127 =
/// 16256 with w in [-127, 127], two of them at most 32512 < 2^15: no
/// wrap), then widened into i32. Written out: LLVM otherwise splits the
/// high halves off with `ext` (one more instruction each, and twice the
/// weight registers).
#[inline(always)]
fn pair<const FIRST: bool>(
    acc: &[int32x4_t; 4],
    xa: int8x16_t,
    wa: int8x16_t,
    xb: int8x16_t,
    wb: int8x16_t,
) -> [int32x4_t; 4] {
    // SAFETY: register-only NEON arithmetic (always present on aarch64).
    unsafe {
        if FIRST {
            widen_add!(new acc, [
                "smull {t0:v}.8h, {xa:v}.8b, {wa:v}.8b",
                "smull2 {t1:v}.8h, {xa:v}.16b, {wa:v}.16b",
                "smlal {t0:v}.8h, {xb:v}.8b, {wb:v}.8b",
                "smlal2 {t1:v}.8h, {xb:v}.16b, {wb:v}.16b"
            ], xa = in(vreg) xa, wa = in(vreg) wa, xb = in(vreg) xb, wb = in(vreg) wb,)
        } else {
            widen_add!(acc *acc, [
                "smull {t0:v}.8h, {xa:v}.8b, {wa:v}.8b",
                "smull2 {t1:v}.8h, {xa:v}.16b, {wa:v}.16b",
                "smlal {t0:v}.8h, {xb:v}.8b, {wb:v}.8b",
                "smlal2 {t1:v}.8h, {xb:v}.16b, {wb:v}.16b"
            ], xa = in(vreg) xa, wa = in(vreg) wa, xb = in(vreg) xb, wb = in(vreg) wb,)
        }
    }
}

/// `acc + x * w` on 16 lanes (an odd tap), as [`pair`].
#[inline(always)]
fn single<const FIRST: bool>(acc: &[int32x4_t; 4], x: int8x16_t, w: int8x16_t) -> [int32x4_t; 4] {
    // SAFETY: register-only NEON arithmetic (always present on aarch64).
    unsafe {
        if FIRST {
            widen_add!(new acc, [
                "smull {t0:v}.8h, {x:v}.8b, {w:v}.8b",
                "smull2 {t1:v}.8h, {x:v}.16b, {w:v}.16b"
            ], x = in(vreg) x, w = in(vreg) w,)
        } else {
            widen_add!(acc *acc, [
                "smull {t0:v}.8h, {x:v}.8b, {w:v}.8b",
                "smull2 {t1:v}.8h, {x:v}.16b, {w:v}.16b"
            ], x = in(vreg) x, w = in(vreg) w,)
        }
    }
}

/// Requantizes 16 channels to bytes and stores the first `n`: [`rne_i32`]
/// and [`narrow16`], as the GEMM's whole tiles (the proof that this is the
/// f32 path's bytes is [`ByteQ`]'s); `CLAMP` false where
/// [`ByteQ::is_identity`].
///
/// # Safety
/// `y` takes `min(n, 16)` bytes.
#[inline(always)]
unsafe fn put_bytes<const CLAMP: bool>(
    y: *mut u8,
    acc: &[int32x4_t; 4],
    m: &[float32x4_t; 4],
    q: &ByteRegs,
    n: usize,
) {
    let b = narrow16::<CLAMP>(std::array::from_fn(|v| rne_i32(acc[v], m[v])), q);
    // SAFETY: `y` takes `min(n, 16)` bytes.
    unsafe {
        if n >= 16 {
            vst1q_u8(y, b);
        } else {
            let mut t = [0u8; 16];
            vst1q_u8(t.as_mut_ptr(), b);
            std::ptr::copy_nonoverlapping(t.as_ptr(), y, n);
        }
    }
}
