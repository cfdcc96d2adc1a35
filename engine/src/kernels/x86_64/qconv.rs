//! The exact int8 convolution ([`crate::qconv::QConv`]) on x86-64: GEMM
//! kernels for AVX-512 VNNI (`vpdpbusd`) and AVX2 (`vpmaddwd`), depthwise
//! kernels for AVX-512 (3x3), AVX-512 VBMI (3x3, no padded copy) and AVX2,
//! and the f32 -> byte conversion of their input.

// The kernels index several arrays (accumulators, pixels, weights) by the
// same counter; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use crate::kernels::Isa;
use crate::qconv::*;

/// Depthwise 3x3: 16 channels per vector, the nine weight vectors kept
/// in registers along a row of output pixels.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn dw3x3_avx512<O: OutElem>(
    q: &QConv,
    g: &Geo,
    u: &[u8],
    rows: Range<usize>,
    yc: &mut [O],
) {
    // SAFETY: the caller checked the AVX-512 set and that the layer is 3x3 depthwise (its packed `dw` holds nine taps per channel, rounded up to 16 channels); `u` is the padded input of `g`, so every tap of every output pixel of `rows` is inside it.
    unsafe {
        let p = &*q.p;
        let pk = &*q.packed;
        let c = p.cout;
        let cpad = c.next_multiple_of(16);
        let (sh, sw) = p.stride;
        let (dh, dw) = p.dilation;
        let lo = _mm512_set1_ps(p.lo);
        let hi = _mm512_set1_ps(p.hi);
        let up = u.as_ptr();
        let zp = (p.zp_out + 128) as f32;
        for (i, ro) in rows.enumerate() {
            let (b, yo) = (ro / g.ho, ro % g.ho);
            let yrow = yc.as_mut_ptr().add(i * g.wo * c) as *mut u8;
            for c0 in (0..c).step_by(16) {
                let mk = mask16(c - c0);
                let w: [__m512i; 9] = std::array::from_fn(|t| {
                    _mm512_loadu_si512(pk.dw.as_ptr().add(t * cpad + c0) as *const _)
                });
                let init = _mm512_loadu_si512(pk.init.as_ptr().add(c0) as *const _);
                let m = _mm512_loadu_ps(pk.m.as_ptr().add(c0));
                // Byte offsets of the nine taps from a pixel's first tap.
                let taps: [usize; 9] =
                    std::array::from_fn(|t| ((t / 3) * dh * g.wp + (t % 3) * dw) * c);
                let row0 = (b * g.hp + yo * sh) * g.wp * c + c0;
                for xo in 0..g.wo {
                    let src = up.add(row0 + xo * sw * c);
                    let mut acc = init;
                    for t in 0..9 {
                        let x = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(
                            mk,
                            src.add(taps[t]) as *const _,
                        ));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, w[t]));
                    }
                    let f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
                    let f = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                        f,
                    );
                    let f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
                    store16::<O>(yrow, xo * c + c0, mk, f, zp);
                }
            }
        }
    }
}

/// What [`dw_block`] needs of the convolution.
struct DwCtx {
    /// Channels, and the input row length in pixels.
    c: usize,
    w: usize,
    wo: usize,
    pad_l: usize,
    /// [`Packed::dw`] (`[column][cpad]`), `init` and `m`.
    wts: *const i32,
    cpad: usize,
    init: *const i32,
    m: *const f32,
    /// Padding byte.
    off: u8,
    hi: f32,
    /// `zp_out + 128`, and the bounds as bytes (`lo + zp`, `hi + zp`).
    zp: i16,
    lo_b: i16,
    hi_b: i16,
    /// The bounds as i32, for f32 outputs.
    lo_i: i32,
    hi_i: i32,
    /// No reachable `acc * m` reaches 2^30 (see [`QConv::new`]).
    small: bool,
}

impl DwCtx {
    /// Bytes out with nothing to bound: zero point 0, bounds the whole
    /// byte range, no sum whose conversion could overflow.
    fn plain(&self) -> bool {
        self.zp == 0 && self.lo_b == 0 && self.hi_b == 255 && self.small
    }
}

/// Depthwise 3x3, dilation 1, horizontal stride 1 or 2, on the
/// unpadded input (`pad`: a row of padding bytes for the rows outside
/// the picture; columns outside it are a constant). For each output
/// pixel and 16 channels, three `vpdpbusd` over columns transposed to
/// i32 lanes (u0, u1, u2, _) of the three input rows, against weights
/// (w0, w1, w2, 0); along a row each column is transposed once and kept
/// for the next pixels. At stride 1 the columns take four rows (u0, u1,
/// u2, u3) and serve two output rows, the second with weights (0, w0,
/// w1, w2).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
pub(crate) unsafe fn dw3x3_vbmi<O: OutElem>(
    q: &QConv,
    g: &Geo,
    u: &[u8],
    pad: &[u8],
    rows: Range<usize>,
    yc: &mut [O],
) {
    // SAFETY: the caller checked the VBMI set and `QConv::dw_fast` (3x3, dilation 1, horizontal stride 1 or 2); `u` is the unpadded input of `g` and `pad` one row of padding bytes: the rows read are inside one of them, columns outside the picture are constants.
    unsafe {
        let p = &*q.p;
        let pk = &*q.packed;
        let c = p.cout;
        let row_len = g.w * c;
        assert!(u.len() >= g.n * g.h * row_len && (g.hp == g.h || pad.len() >= row_len));
        assert!(yc.len() >= rows.len() * g.wo * c);
        let zp = p.zp_out + 128;
        let k = DwCtx {
            c,
            w: g.w,
            wo: g.wo,
            pad_l: g.pad_l,
            wts: pk.dw.as_ptr(),
            cpad: c.next_multiple_of(16),
            init: pk.init.as_ptr(),
            m: pk.m.as_ptr(),
            off: (p.zp_in + 128) as u8,
            hi: p.hi,
            zp: zp as i16,
            lo_b: (p.lo as i32 + zp) as i16,
            hi_b: (p.hi as i32 + zp) as i16,
            lo_i: p.lo as i32,
            hi_i: p.hi as i32,
            small: pk.dw[3 * c.next_multiple_of(16)] != 0,
        };
        let plain = O::BYTES && k.plain();
        // Vectors per block: up to 4, as even as possible (144 channels
        // are 3 x 3 vectors, not 4 + 4 + 1: each block packs its bytes).
        let nvec = c.div_ceil(16);
        let per = nvec.div_ceil(nvec.div_ceil(4));
        let mut i = 0;
        while i < rows.len() {
            let ro = rows.start + i;
            let (b, yo) = (ro / g.ho, ro % g.ho);
            // Stride 1: two output rows of the same picture at once, from
            // four input rows.
            let two = p.stride == (1, 1) && i + 1 < rows.len() && yo + 1 < g.ho;
            let iy0 = (yo * p.stride.0) as isize - g.pad_t as isize;
            // Rows outside the picture read the padding row (same length).
            let rp: [*const u8; 4] = std::array::from_fn(|r| {
                let iy = iy0 + r as isize;
                if (0..g.h as isize).contains(&iy) {
                    u.as_ptr().add((b * g.h + iy as usize) * row_len)
                } else {
                    pad.as_ptr()
                }
            });
            let y = yc.as_mut_ptr().add(i * g.wo * c) as *mut u8;
            for c0 in (0..c).step_by(16 * per) {
                let nv = (c - c0).div_ceil(16).min(per);
                macro_rules! go {
                    ($($rows:literal, $sw:literal, $nv:literal);*) => {
                        match (two as usize + 1, p.stride.1, nv, plain) {
                            $(
                                ($rows, $sw, $nv, true) =>
                                    dw_block::<O, $nv, $sw, true, $rows>(&k, &rp, c0, y),
                                ($rows, $sw, $nv, false) =>
                                    dw_block::<O, $nv, $sw, false, $rows>(&k, &rp, c0, y),
                            )*
                            _ => unreachable!("stride 1 or 2, 1 to 4 vectors"),
                        }
                    };
                }
                go!(1, 1, 1; 1, 1, 2; 1, 1, 3; 1, 1, 4; 1, 2, 1; 1, 2, 2; 1, 2, 3; 1, 2, 4;
                    2, 1, 1; 2, 1, 2; 2, 1, 3; 2, 1, 4);
            }
            i += 1 + two as usize;
        }
    }
}

/// One output row of [`dw3x3_vbmi`] for the NV * 16 channels from `c0`
/// (the last vector possibly partial), horizontal stride SW.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
unsafe fn dw_block<
    O: OutElem,
    const NV: usize,
    const SW: usize,
    const PLAIN: bool,
    const ROWS: usize,
>(
    k: &DwCtx,
    rp: &[*const u8; 4],
    c0: usize,
    y: *mut u8,
) {
    // SAFETY: called by `dw3x3_vbmi` only, with its checked CPU features and rows that lie in `u` or `pad`; columns are clamped to the picture by `dw_col`.
    unsafe {
        let nc = (k.c - c0).min(16 * NV);
        let mut wv = [[_mm512_setzero_si512(); NV]; 3];
        for (tx, col) in wv.iter_mut().enumerate() {
            for (v, w) in col.iter_mut().enumerate() {
                // In bounds: `dw` holds cpad >= c0 + 16 * NV lanes per column.
                *w = _mm512_loadu_si512(k.wts.add(tx * k.cpad + c0 + 16 * v) as *const _);
            }
        }
        let mut init = [_mm512_setzero_si512(); NV];
        let mut m = [_mm512_setzero_ps(); NV];
        for v in 0..NV {
            init[v] = _mm512_loadu_si512(k.init.add(c0 + 16 * v) as *const _);
            m[v] = _mm512_loadu_ps(k.m.add(c0 + 16 * v));
        }
        // Column output byte 4c + r takes row r's channel c: rows 0 and 2
        // from the first table (byte c), row 1 from the second (64 + c);
        // byte 3 (weight 0) gets row 0 again.
        let idx = _mm512_add_epi8(
            _mm512_set1_epi32(0x0000_4000),
            _mm512_setr_epi32(
                0x0000_0000,
                0x0101_0101,
                0x0202_0202,
                0x0303_0303,
                0x0404_0404,
                0x0505_0505,
                0x0606_0606,
                0x0707_0707,
                0x0808_0808,
                0x0909_0909,
                0x0a0a_0a0a,
                0x0b0b_0b0b,
                0x0c0c_0c0c,
                0x0d0d_0d0d,
                0x0e0e_0e0e,
                0x0f0f_0f0f,
            ),
        );
        // Two rows: columns of four rows, bytes 0 and 1 as above, 2 and 3
        // from rows 2 and 3 in lanes 0 and 1 of the second table.
        let idx4: [i32; 16] = std::array::from_fn(|c| {
            let c = c as i32;
            (4 * c) | (4 * c + 1) << 8 | (64 + c) << 16 | (80 + c) << 24
        });
        let idx4 = _mm512_loadu_si512(idx4.as_ptr() as *const _);
        let pl = k.pad_l as isize;
        let col = |ix: isize| dw_col::<NV, ROWS>(k, rp, ix, c0, idx, idx4);
        let mut cols = [col(-pl), col(1 - pl), col(2 - pl)];
        for xo in 0..k.wo {
            if xo > 0 {
                let ix = (xo * SW) as isize - pl;
                if SW == 1 {
                    cols = [cols[1], cols[2], col(ix + 2)];
                } else {
                    cols = [cols[2], col(ix + 1), col(ix + 2)];
                }
            }
            let mut acc = init;
            for (col, w) in cols.iter().zip(&wv) {
                for v in 0..NV {
                    acc[v] = _mm512_dpbusd_epi32(acc[v], col[v], w[v]);
                }
            }
            dw_store::<O, NV, PLAIN>(k, &acc, &m, y, xo * k.c + c0, nc);
            if ROWS == 2 {
                // The next row: its taps are rows 1 to 3, weights (0, w0,
                // w1, w2).
                let mut acc = init;
                for (col, w) in cols.iter().zip(&wv) {
                    for v in 0..NV {
                        let w = _mm512_slli_epi32::<8>(w[v]);
                        acc[v] = _mm512_dpbusd_epi32(acc[v], col[v], w);
                    }
                }
                dw_store::<O, NV, PLAIN>(k, &acc, &m, y, (k.wo + xo) * k.c + c0, nc);
            }
        }
    }
}

/// Input column `ix` of [`dw_block`]: NV vectors of 16 channels, lane c
/// holding the bytes (row 0, row 1, row 2, row 0) of channel c, or rows
/// 0 to 3 for two output rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
unsafe fn dw_col<const NV: usize, const ROWS: usize>(
    k: &DwCtx,
    rp: &[*const u8; 4],
    ix: isize,
    c0: usize,
    idx: __m512i,
    idx4: __m512i,
) -> [__m512i; NV] {
    // SAFETY: called by `dw_block` only: `ix` is inside the picture and each row pointer is one of its in-bounds rows; 16-byte loads are masked to the channels left.
    unsafe {
        if ix < 0 || ix >= k.w as isize {
            return [_mm512_set1_epi8(k.off as i8); NV];
        }
        let o = ix as usize * k.c + c0;
        let mut out = [_mm512_setzero_si512(); NV];
        for (v, col) in out.iter_mut().enumerate() {
            let o = o + 16 * v;
            let left = k.c - c0 - 16 * v;
            // Within the pixel: 16 bytes, or masked to the channels left.
            let ld = |r: usize| {
                if left >= 16 {
                    _mm_loadu_si128(rp[r].add(o) as *const _)
                } else {
                    _mm_maskz_loadu_epi8(mask16(left), rp[r].add(o) as *const _)
                }
            };
            let (r0, r1, r2) = (ld(0), ld(1), ld(2));
            // The upper lanes are never indexed.
            let t = _mm512_permutex2var_epi8(
                _mm512_castsi128_si512(r0),
                idx,
                _mm512_castsi128_si512(r1),
            );
            *col = if ROWS == 2 {
                let r23 = _mm512_inserti32x4::<1>(_mm512_castsi128_si512(r2), ld(3));
                _mm512_permutex2var_epi8(t, idx4, r23)
            } else {
                _mm512_mask_permutexvar_epi8(
                    t,
                    0x4444_4444_4444_4444,
                    idx,
                    _mm512_castsi128_si512(r2),
                )
            };
        }
        out
    }
}

/// Requantizes NV accumulators and stores them at element `o` of the
/// output row `y` (`nc` channels): rounding by the conversion, the
/// bounds applied as bytes after `vpackssdw` (so out-of-range sums only
/// need `f <= hi` first: the conversion's overflow value is negative).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
unsafe fn dw_store<O: OutElem, const NV: usize, const PLAIN: bool>(
    k: &DwCtx,
    acc: &[__m512i; NV],
    m: &[__m512; NV],
    y: *mut u8,
    o: usize,
    nc: usize,
) {
    // SAFETY: called by `dw_block` only: `y` is the output row of `nc` channels, stores are masked to them.
    unsafe {
        let hi = _mm512_set1_ps(k.hi);
        let mut q = [_mm512_setzero_si512(); 4];
        for v in 0..NV {
            let f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[v]), m[v]);
            let f = if PLAIN { f } else { _mm512_min_ps(f, hi) };
            q[v] = _mm512_cvtps_epi32(f);
        }
        if O::BYTES {
            let (zp, lo, hi) = (
                _mm512_set1_epi16(k.zp),
                _mm512_set1_epi16(k.lo_b),
                _mm512_set1_epi16(k.hi_b),
            );
            // PLAIN: the saturations of the packs are the bounds.
            let bound = |a: __m512i| {
                if PLAIN {
                    a
                } else {
                    _mm512_min_epi16(_mm512_max_epi16(_mm512_adds_epi16(a, zp), lo), hi)
                }
            };
            let p01 = bound(_mm512_packs_epi32(q[0], q[1]));
            let p23 = if NV > 2 {
                bound(_mm512_packs_epi32(q[2], q[3]))
            } else {
                p01
            };
            // Lane L of the packed bytes holds channels 4L..4L+4 of each
            // vector in turn: a 4x4 transpose of dwords restores the order.
            let b = _mm512_permutexvar_epi32(
                _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
                _mm512_packus_epi16(p01, p23),
            );
            if nc == 64 {
                _mm512_storeu_si512(y.add(o) as *mut _, b);
            } else {
                _mm512_mask_storeu_epi8(y.add(o) as *mut _, mask64(nc), b);
            }
        } else {
            let (lo, hi) = (_mm512_set1_epi32(k.lo_i), _mm512_set1_epi32(k.hi_i));
            for (v, &qv) in q.iter().enumerate().take(NV) {
                let f = _mm512_cvtepi32_ps(_mm512_min_epi32(_mm512_max_epi32(qv, lo), hi));
                let mk = mask16(nc - 16 * v);
                _mm512_mask_storeu_ps((y as *mut f32).add(o + 16 * v), mk, f);
            }
        }
    }
}

#[inline(always)]
fn mask64(n: usize) -> __mmask64 {
    if n >= 64 {
        !0
    } else {
        (1u64 << n) - 1
    }
}

/// [`to_grid`] for bytes, 16 values at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn to_grid_u8_avx512(src: &[f32], off: f32, dst: &mut [u8]) -> bool {
    // SAFETY: the caller checked AVX-512 F/BW/VL; whole vectors are loaded while 16 values remain in `src` and stored to the same positions of `dst` (as long as `src`), the rest with masks.
    unsafe {
        let n = src.len().min(dst.len());
        let offv = _mm512_set1_ps(off);
        let top = _mm512_set1_epi32(255);
        let mut bad: __mmask16 = 0;
        let mut i = 0;
        while i < n {
            let mk = mask16(n - i);
            let v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, src.as_ptr().add(i)), offv);
            // Round to nearest (out of range gives i32::MIN): exact only if
            // converting back gives the same float (NaN never does).
            let q = _mm512_cvtps_epi32(v);
            bad |= _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(mk, _mm512_cvtepi32_ps(q), v);
            bad |= _mm512_mask_cmpgt_epu32_mask(mk, q, top);
            _mm_mask_storeu_epi8(
                dst.as_mut_ptr().add(i) as *mut _,
                mk,
                _mm512_cvtepi32_epi8(q),
            );
            i += 16;
        }
        bad == 0
    }
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dw_avx2<O: OutElem>(
    q: &QConv,
    g: &Geo,
    u: &[u8],
    rows: Range<usize>,
    yc: &mut [O],
) {
    q.dw_rows(g, u, rows, yc)
}

/// Stores 16 requantized values at element `o` of `y`: as f32, or
/// plus `zp` as bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store16<O: OutElem>(y: *mut u8, o: usize, mk: __mmask16, f: __m512, zp: f32) {
    // SAFETY: the callers pass `y` valid for the lanes of `mk` from element `o`.
    unsafe {
        if O::BYTES {
            let q = _mm512_cvtps_epi32(_mm512_add_ps(f, _mm512_set1_ps(zp)));
            _mm_mask_storeu_epi8(y.add(o) as *mut _, mk, _mm512_cvtusepi32_epi8(q));
        } else {
            _mm512_mask_storeu_ps((y as *mut f32).add(o), mk, f);
        }
    }
}

/// Requantizes 16 sums and stores them at element `o` of `y`:
/// `clamp(rne(acc * m), lo, hi)` as f32, or plus `zp` as bytes. The
/// clamp comes first (rounding commutes with it: `lo` and `hi` are
/// integers), which lets a byte output round in its conversion to
/// integers and add the zero point there.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn requant16<O: OutElem>(
    y: *mut u8,
    o: usize,
    mk: __mmask16,
    acc: __m512i,
    m: __m512,
    lo: __m512,
    hi: __m512,
    zp: __m512i,
) {
    // SAFETY: the callers pass `y` valid for the lanes of `mk` from element `o`.
    unsafe {
        let f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
        let f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
        if O::BYTES {
            let q =
                _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(f);
            let q = _mm512_add_epi32(q, zp);
            _mm_mask_storeu_epi8(y.add(o) as *mut _, mk, _mm512_cvtepi32_epi8(q));
        } else {
            let f = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(f);
            _mm512_mask_storeu_ps((y as *mut f32).add(o), mk, f);
        }
    }
}

/// [`store16`] for 8 values.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store8<O: OutElem>(y: *mut u8, o: usize, mk: __mmask8, f: __m256, zp: f32) {
    // SAFETY: the callers pass `y` valid for the lanes of `mk` from element `o`.
    unsafe {
        if O::BYTES {
            let q = _mm256_cvtps_epi32(_mm256_add_ps(f, _mm256_set1_ps(zp)));
            _mm_mask_storeu_epi8(
                y.add(o) as *mut _,
                mk as __mmask16,
                _mm256_cvtusepi32_epi8(q),
            );
        } else {
            _mm256_mask_storeu_ps((y as *mut f32).add(o), mk, f);
        }
    }
}

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn to_grid_avx2<T: Copy + From<u8>>(
    src: &[f32],
    off: f32,
    dst: &mut [T],
) -> bool {
    to_grid_body(src, off, dst, 0)
}

/// One output row of one panel, in blocks of MR pixels.
pub(crate) unsafe fn row<T: Copy, O: OutElem>(job: &Job<T>, y: &mut [O]) {
    // The micro-kernels read AVX2's input as i16 and VNNI's as u8: checked
    // here, not left to the order of `QConv::run`'s match arms.
    let esz = if job.pk.kernel == Isa::Avx2 { 2 } else { 1 };
    assert_eq!(
        std::mem::size_of::<T>(),
        esz,
        "{:?} input elements",
        job.pk.kernel
    );
    // SAFETY: the caller checked the op's instruction set; the element size
    // is the kernel's (above).
    unsafe {
        let pn = job.panel;
        if job.pk.narrow {
            return match job.cout {
                1 => narrow_row::<T, O, 1>(job, y),
                2 => narrow_row::<T, O, 2>(job, y),
                3 => narrow_row::<T, O, 3>(job, y),
                _ => narrow_row::<T, O, 4>(job, y),
            };
        }
        match (job.pk.kernel, job.pk.lanes, pn.j) {
            (Isa::Avx512Vnni | Isa::Avx512Vbmi, 8, _) => {
                blocks::<T, O, 16>(job, y, vnni256::<O, 16>)
            }
            (Isa::Avx512Vnni | Isa::Avx512Vbmi, _, 1) => {
                blocks::<T, O, 16>(job, y, vnni512::<O, 16, 1>)
            }
            (Isa::Avx512Vnni | Isa::Avx512Vbmi, _, 2) => {
                blocks::<T, O, 12>(job, y, vnni512::<O, 12, 2>)
            }
            (Isa::Avx512Vnni | Isa::Avx512Vbmi, _, 3) => {
                blocks::<T, O, 8>(job, y, vnni512::<O, 8, 3>)
            }
            (Isa::Avx512Vnni | Isa::Avx512Vbmi, _, _) => {
                blocks::<T, O, 6>(job, y, vnni512::<O, 6, 4>)
            }
            (_, _, 1) => blocks::<T, O, 12>(job, y, avx2::<O, 12, 1>),
            _ => blocks::<T, O, 6>(job, y, avx2::<O, 6, 2>),
        }
    }
}

/// Arguments of one micro-kernel call (pointers are valid for the reads
/// the packing allows: segments, padded K, slack at the end).
pub(crate) struct Tile<const MR: usize> {
    a: *const u8,
    offs: [usize; MR],
    np: usize,
    segs: *const usize,
    nseg: usize,
    ngroups: usize,
    w: *const u8,
    init: *const i32,
    m: *const f32,
    nc: usize,
    lo: f32,
    hi: f32,
    /// `zp_out + 128`, for byte outputs.
    zp: f32,
    /// The output (f32 or bytes, by the micro-kernel's `O`).
    y: *mut u8,
    ops: usize,
}

type Micro<const MR: usize> = unsafe fn(&Tile<MR>);

unsafe fn blocks<T: Copy, O: OutElem, const MR: usize>(
    job: &Job<T>,
    y: &mut [O],
    micro: Micro<MR>,
) {
    // SAFETY: reads stay in the packed input (its padding and slack come from `pack_input`) and in this panel's packed weights; stores stay in the row `y`, tails masked.
    unsafe {
        let pk = job.pk;
        let pn = job.panel;
        let esz = std::mem::size_of::<T>();
        let (group, w): (usize, *const u8) = match &pk.weights {
            Weights::I8(w) => (4, w.as_ptr().add(pn.w_off) as *const u8),
            Weights::I16(w) => (2, w.as_ptr().add(pn.w_off) as *const u8),
        };
        let nc = (job.cout - pn.c0).min(pn.j * pk.lanes);
        for x0 in (0..job.wo).step_by(MR) {
            let np = (job.wo - x0).min(MR);
            let tile = Tile::<MR> {
                a: (job.u.as_ptr().add(job.base)) as *const u8,
                offs: std::array::from_fn(|p| (x0 + p.min(np - 1)) * job.ps * esz),
                np,
                segs: job.segs.as_ptr(),
                nseg: job.segs.len(),
                ngroups: job.seg_len.div_ceil(group),
                w,
                init: pk.init.as_ptr().add(pn.lane_off),
                m: pk.m.as_ptr().add(pn.lane_off),
                nc,
                lo: job.rq.lo,
                hi: job.rq.hi,
                zp: job.rq.zp,
                y: y.as_mut_ptr().add(x0 * job.cout + pn.c0) as *mut u8,
                ops: job.cout,
            };
            micro(&tile);
        }
    }
}

/// VNNI with lanes over 16 output pixels (see [`Packed::narrow`]): the
/// pixels' 4-byte groups sit every `ps` = 4 or 8 bytes, so two loads
/// and one `vpermt2d` gather them; each channel's weights are a
/// broadcast.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn narrow_row<T: Copy, O: OutElem, const NC: usize>(job: &Job<T>, y: &mut [O]) {
    // SAFETY: `narrow` took this layer only when 16 consecutive pixels start within 128 bytes; the input's slack (`pack_input`) covers the 31 pixels read past the last stored one; stores are masked to the row.
    unsafe {
        let pk = job.pk;
        let Weights::I8(w) = &pk.weights else {
            unreachable!("VNNI packs i8 weights")
        };
        let q = (job.ps / 4) as i32;
        let idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(q),
        );
        let ngroups = job.seg_len.div_ceil(4);
        let lo = _mm512_set1_ps(job.rq.lo);
        let hi = _mm512_set1_ps(job.rq.hi);
        let a = job.u.as_ptr().add(job.base) as *const u8;
        // Two blocks of 16 pixels at a time: 2 * NC independent sums hide
        // the latency of `vpdpbusd` (a block past the row end is computed
        // from slack bytes and not stored).
        let mut out = [[0f32; 32]; NC];
        for x0 in (0..job.wo).step_by(32) {
            let np = (job.wo - x0).min(32);
            let mut acc: [[__m512i; NC]; 2] =
                [std::array::from_fn(|c| _mm512_set1_epi32(pk.init[c])); 2];
            let mut wp = w.as_ptr() as *const i32;
            for &seg in job.segs {
                let base = a.add(x0 * job.ps + seg);
                let base2 = base.add(16 * job.ps);
                for g in 0..ngroups {
                    let xv = _mm512_permutex2var_epi32(
                        _mm512_loadu_si512(base.add(4 * g) as *const _),
                        idx,
                        _mm512_loadu_si512(base.add(4 * g + 64) as *const _),
                    );
                    let xv2 = _mm512_permutex2var_epi32(
                        _mm512_loadu_si512(base2.add(4 * g) as *const _),
                        idx,
                        _mm512_loadu_si512(base2.add(4 * g + 64) as *const _),
                    );
                    let [a0, a1] = &mut acc;
                    for (c, (s0, s1)) in a0.iter_mut().zip(a1.iter_mut()).enumerate() {
                        let wv = _mm512_set1_epi32(wp.add(c).read_unaligned());
                        *s0 = _mm512_dpbusd_epi32(*s0, xv, wv);
                        *s1 = _mm512_dpbusd_epi32(*s1, xv2, wv);
                    }
                    wp = wp.add(NC);
                }
            }
            for (h, block) in acc.iter().enumerate() {
                for (c, a) in block.iter().enumerate() {
                    let f = _mm512_mul_ps(_mm512_cvtepi32_ps(*a), _mm512_set1_ps(pk.m[c]));
                    let f = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                        f,
                    );
                    let f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
                    _mm512_storeu_ps(out[c].as_mut_ptr().add(16 * h), f);
                }
            }
            let yo = &mut y[x0 * NC..][..np * NC];
            for (x, px) in yo.chunks_exact_mut(NC).enumerate() {
                for (c, v) in px.iter_mut().enumerate() {
                    *v = O::put(out[c][x], job.rq.zp);
                }
            }
        }
    }
}

#[inline(always)]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

#[inline(always)]
fn mask8(n: usize) -> __mmask8 {
    if n >= 8 {
        0xff
    } else {
        ((1u32 << n) - 1) as __mmask8
    }
}

/// VNNI, 512-bit: MR pixels x J*16 channels, 4 K-bytes per lane.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn vnni512<O: OutElem, const MR: usize, const J: usize>(t: &Tile<MR>) {
    // SAFETY: `blocks` hands a tile whose pointers are valid for MR pixels' segments and the panel's J*16 lanes of weights; stores are masked to the channels left.
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); J]; MR];
        for j in 0..J {
            let v = _mm512_loadu_si512(t.init.add(16 * j) as *const _);
            for a in acc.iter_mut() {
                a[j] = v;
            }
        }
        let mut wp = t.w as *const i8;
        for si in 0..t.nseg {
            let ap = t.a.add(*t.segs.add(si));
            let pix: [*const u8; MR] = std::array::from_fn(|p| ap.add(t.offs[p]));
            for k in 0..t.ngroups {
                let mut wv = [_mm512_setzero_si512(); J];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(wp.add(64 * j) as *const _);
                }
                for p in 0..MR {
                    let b = _mm512_set1_epi32((pix[p].add(4 * k) as *const i32).read_unaligned());
                    for j in 0..J {
                        acc[p][j] = _mm512_dpbusd_epi32(acc[p][j], b, wv[j]);
                    }
                }
                wp = wp.add(64 * J);
            }
        }
        let lo = _mm512_set1_ps(t.lo);
        let hi = _mm512_set1_ps(t.hi);
        let zpi = _mm512_set1_epi32(t.zp as i32);
        for j in 0..J {
            let left = t.nc.saturating_sub(16 * j);
            if left == 0 {
                break;
            }
            let mk = mask16(left);
            let m = _mm512_maskz_loadu_ps(mk, t.m.add(16 * j));
            for (p, a) in acc.iter().enumerate() {
                if p < t.np {
                    requant16::<O>(t.y, p * t.ops + 16 * j, mk, a[j], m, lo, hi, zpi);
                }
            }
        }
    }
}

/// VNNI, 256-bit, for up to 8 output channels: MR pixels x 8 channels.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn vnni256<O: OutElem, const MR: usize>(t: &Tile<MR>) {
    // SAFETY: `blocks` hands a tile whose pointers are valid for MR pixels' segments and 8 lanes of weights; stores are masked to the channels left.
    unsafe {
        let mut acc = [_mm256_loadu_si256(t.init as *const _); MR];
        let mut wp = t.w as *const i8;
        for si in 0..t.nseg {
            let ap = t.a.add(*t.segs.add(si));
            let pix: [*const u8; MR] = std::array::from_fn(|p| ap.add(t.offs[p]));
            for k in 0..t.ngroups {
                let wv = _mm256_loadu_si256(wp as *const _);
                for p in 0..MR {
                    let b = _mm256_set1_epi32((pix[p].add(4 * k) as *const i32).read_unaligned());
                    acc[p] = _mm256_dpbusd_epi32(acc[p], b, wv);
                }
                wp = wp.add(32);
            }
        }
        let lo = _mm256_set1_ps(t.lo);
        let hi = _mm256_set1_ps(t.hi);
        let mk = mask8(t.nc);
        let m = _mm256_maskz_loadu_ps(mk, t.m);
        for (p, a) in acc.iter().enumerate() {
            if p < t.np {
                let f = _mm256_mul_ps(_mm256_cvtepi32_ps(*a), m);
                let f = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(f);
                let f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
                store8::<O>(t.y, p * t.ops, mk, f, t.zp);
            }
        }
    }
}

/// AVX2: i16 input and weights, `vpmaddwd` (two exact products per i32
/// lane): MR pixels x J*8 channels.
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<O: OutElem, const MR: usize, const J: usize>(t: &Tile<MR>) {
    // SAFETY: `blocks` hands a tile whose pointers are valid for MR pixels' segments and the panel's J*8 lanes of weights; tails go through a buffer.
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); J]; MR];
        for j in 0..J {
            let v = _mm256_loadu_si256(t.init.add(8 * j) as *const _);
            for a in acc.iter_mut() {
                a[j] = v;
            }
        }
        let mut wp = t.w as *const i16;
        for si in 0..t.nseg {
            let ap = t.a.add(*t.segs.add(si));
            let pix: [*const u8; MR] = std::array::from_fn(|p| ap.add(t.offs[p]));
            for k in 0..t.ngroups {
                let mut wv = [_mm256_setzero_si256(); J];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = _mm256_loadu_si256(wp.add(16 * j) as *const _);
                }
                for p in 0..MR {
                    // Two consecutive i16 inputs = one i32 to broadcast.
                    let b = _mm256_set1_epi32((pix[p].add(4 * k) as *const i32).read_unaligned());
                    for j in 0..J {
                        acc[p][j] = _mm256_add_epi32(acc[p][j], _mm256_madd_epi16(b, wv[j]));
                    }
                }
                wp = wp.add(16 * J);
            }
        }
        let lo = _mm256_set1_ps(t.lo);
        let hi = _mm256_set1_ps(t.hi);
        let mut yb = [0f32; 8];
        for j in 0..J {
            let left = t.nc.saturating_sub(8 * j);
            if left == 0 {
                break;
            }
            let m = _mm256_loadu_ps(t.m.add(8 * j));
            for (p, a) in acc.iter().enumerate() {
                if p < t.np {
                    let f = _mm256_mul_ps(_mm256_cvtepi32_ps(a[j]), m);
                    let f = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(f);
                    let f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
                    let o = p * t.ops + 8 * j;
                    let y = (t.y as *mut O).add(o);
                    if left >= 8 && !O::BYTES {
                        _mm256_storeu_ps(y as *mut f32, f);
                    } else {
                        _mm256_storeu_ps(yb.as_mut_ptr(), f);
                        for (i, &v) in yb.iter().take(left.min(8)).enumerate() {
                            y.add(i).write(O::put(v, t.zp));
                        }
                    }
                }
            }
        }
    }
}
