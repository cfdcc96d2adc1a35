//! Exact int8 convolution with fused requantization ([`QConv`]).
//!
//! The importer's exact int8 path used to run each int8 CONV_2D as a tract
//! f32 (or, past 2^24, f64) convolution over integer-valued floats, then
//! four element-wise passes (scale, round, clamp, dequantize). This op does
//! the same arithmetic on integers: the input `x = q - zp_in` becomes the
//! byte `u = x + zp_in + 128` (the int8 value `q` shifted to u8), the sum
//! `Σ w·u` runs in i32, and `off · Σw` (`off = zp_in + 128`) is subtracted
//! up front with the bias, so padding with the byte `off` stands for
//! `x = 0` exactly as the float path's zero padding did. The result is then
//! requantized in place as XNNPACK does: `y = clamp(rne((acc as f32) · m[c]),
//! lo, hi)`. The importer multiplies by the output scale in a node of its
//! own, which tract drops when only the integers are used (conv -> conv).
//!
//! Kernels, picked at load from the CPU: AVX-512 VNNI (`vpdpbusd`, four
//! u8 x s8 products per i32 lane), AVX2 (`vpmaddwd` on i16, exact), on
//! aarch64 `NeonDot` (`sdot`, Pi 5) and `Neon` (`smull`/`smlal2` pairs in
//! i16 + `sadalp`, or `smlal` on i16 when a weight is -128; Pi 4), see
//! `kernels/aarch64/`, and a portable one the compiler vectorizes. `Auto`
//! does not pick the portable one: on x86-64 without AVX2 it measured
//! slower than tract's f32 path (predict 141 vs 97 ms). On aarch64 the NEON
//! kernels replaced tract's convolution everywhere (arm-cost, A72: predict
//! 287 -> 244 M instructions, int8 transfer 256x448 980 -> 609 M). Convolutions with
//! groups = 1 run as a GEMM: each output pixel reads, for each kernel row,
//! one contiguous run of `kw · cin` input bytes (dilation 1), so a 1x1, a
//! 3x3 over 32 channels and a 9x9 over 3 channels all have the same inner
//! loop. Depthwise convolutions vectorize over channels.
//!
//! Between two integer ops the activations can travel as bytes instead of
//! f32 integers ([`QConv::with_byte_output`], set by
//! [`super::wires`]): the byte is `q + 128`, the int8 value shifted to u8,
//! which is exactly the `u` the kernels read, so a byte input needs no
//! conversion (a 1x1 convolution reads it in place), and a byte output is a
//! quarter of the memory traffic.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tract_core::internal::*;
use tract_core::tract_linalg::multithread::par_chunks_mut;

#[cfg(target_arch = "x86_64")]
use crate::kernels::x86_64::qconv as x86;
use crate::kernels::{self, Isa};

mod pack;
#[cfg(test)]
mod tests;

/// The instruction sets this op has kernels for, best last.
#[cfg(target_arch = "x86_64")]
const ISAS: &[Isa] = &[Isa::Portable, Isa::Avx2, Isa::Avx512Vnni, Isa::Avx512Vbmi];
#[cfg(target_arch = "aarch64")]
const ISAS: &[Isa] = &[Isa::Portable, Isa::Neon, Isa::NeonDot];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ISAS: &[Isa] = &[Isa::Portable];

/// The AVX-512 VNNI kernels (the VBMI set runs them too, plus its own
/// depthwise kernel).
fn is_vnni(isa: Isa) -> bool {
    matches!(isa, Isa::Avx512Vnni | Isa::Avx512Vbmi)
}

/// What the importer knows about one int8 convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct QConvParams {
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    pub cin: usize,
    pub cout: usize,
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    /// SAME (TFLite's, = tract's SameUpper: the odd pixel goes at the end)
    /// or VALID padding.
    pub same: bool,
    /// Depthwise (groups = channels, multiplier 1) or groups = 1.
    pub depthwise: bool,
    /// Input zero point: the op's input holds `q - zp_in`.
    pub zp_in: i32,
    /// Output zero point: the output holds `q - zp_out` (as f32), or as
    /// bytes `q + 128`.
    pub zp_out: i32,
    /// OHWI for groups = 1, `[1, kh, kw, c]` for depthwise.
    pub weights: Vec<i8>,
    /// Per output channel.
    pub bias: Vec<i64>,
    /// Requantization scales `si * sw[c] / so` (per output channel).
    pub scale: Vec<f32>,
    /// Output range as integers `q - zp_out` (narrowed by a fused RELU/RELU6).
    pub lo: f32,
    pub hi: f32,
}

/// Sizes of one evaluation, derived from the input shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geo {
    pub(crate) n: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) ho: usize,
    pub(crate) wo: usize,
    pub(crate) pad_t: usize,
    pub(crate) pad_l: usize,
    pub(crate) hp: usize,
    pub(crate) wp: usize,
}

/// One block of output channels of a GEMM kernel: `j` vectors of the
/// kernel's lane count, starting at channel `c0`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Panel {
    pub(crate) c0: usize,
    pub(crate) j: usize,
    /// Offset of its packed weights (elements) and of its lanes in `init`/`m`.
    pub(crate) w_off: usize,
    pub(crate) lane_off: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Weights {
    I8(Vec<i8>),
    I16(Vec<i16>),
}

/// Weights and per-channel constants laid out for one kernel.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Packed {
    pub(crate) kernel: Isa,
    /// Groups = 1: output channels per vector (lanes) of the GEMM kernel.
    pub(crate) lanes: usize,
    /// Groups = 1, VNNI, up to 4 channels: lanes over 16 output pixels, one
    /// accumulator per channel, weights `[row][K/4][c]` as i32 broadcasts.
    pub(crate) narrow: bool,
    /// Groups = 1: length of the contiguous input runs (one per kernel row,
    /// or per tap when dilated).
    pub(crate) seg_len: usize,
    pub(crate) panels: Vec<Panel>,
    pub(crate) weights: Weights,
    /// Depthwise: weights widened to i32, `[tap][c]`; for the AVX-512
    /// kernel `[tap][c rounded up to 16]`, each as an i16 pair (w, 0) so
    /// that `vpmaddwd` with a zero-extended input byte is one exact product;
    /// for the VBMI one ([`QConv::dw_fast`]) `[column][c rounded up to 16]`.
    pub(crate) dw: Vec<i32>,
    /// Depthwise on NEON when a weight is -128: the weights as i16,
    /// `[tap][c rounded up to 16]` (the exact unsigned kernel).
    pub(crate) dw16: Vec<i16>,
    /// Depthwise on NEON otherwise: the i8 weights `[tap][c rounded up to
    /// 16]` of the signed kernel (pairs of products in i16), `init` with
    /// `128·Σw` added.
    pub(crate) dw8: Vec<i8>,
    /// `bias - off * Σw` (plus `128 * Σw` where the kernel reads `u - 128`)
    /// and `m`, per (padded) lane.
    pub(crate) init: Vec<i32>,
    pub(crate) m: Vec<f32>,
}

/// The exact int8 convolution, requantized (see the module doc).
/// Input: NHWC f32 integers `q - zp_in`. Output: NHWC f32 integers
/// `q - zp_out`.
#[derive(Clone, Debug)]
pub struct QConv {
    pub(crate) p: Arc<QConvParams>,
    pub(crate) packed: Arc<Packed>,
    /// The output as bytes `q + 128` instead of f32 `q - zp_out`.
    pub(crate) bytes_out: bool,
}

impl PartialEq for QConv {
    fn eq(&self, other: &Self) -> bool {
        self.bytes_out == other.bytes_out
            && (Arc::ptr_eq(&self.p, &other.p)
                || (self.p == other.p && self.packed.kernel == other.packed.kernel))
    }
}

/// The input of one evaluation.
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    /// f32 integers `q - zp_in` (checked to be on the grid).
    Ints(&'a [f32]),
    /// Bytes `q + 128`.
    Bytes(&'a [u8]),
}

impl Input<'_> {
    fn len(&self) -> usize {
        match self {
            Input::Ints(x) => x.len(),
            Input::Bytes(x) => x.len(),
        }
    }
}

/// An output element: f32 integers `q - zp_out` or bytes `q + 128`.
pub(crate) trait OutElem: Copy + Send + Sync + 'static {
    /// Read by the x86 kernels' stores.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    const BYTES: bool;
    /// From the requantized `q - zp_out` and `zp = zp_out + 128`.
    fn put(v: f32, zp: f32) -> Self;
    /// The same from an integer.
    fn put_int(v: i32, zp: i32) -> Self;
}

impl OutElem for f32 {
    const BYTES: bool = false;
    #[inline(always)]
    fn put(v: f32, _zp: f32) -> f32 {
        v
    }
    #[inline(always)]
    fn put_int(v: i32, _zp: i32) -> f32 {
        v as f32
    }
}

impl OutElem for u8 {
    const BYTES: bool = true;
    #[inline(always)]
    fn put(v: f32, zp: f32) -> u8 {
        // In [0, 255]: the clamps keep q in [-128, 127].
        (v + zp) as u8
    }
    #[inline(always)]
    fn put_int(v: i32, zp: i32) -> u8 {
        (v + zp) as u8
    }
}

// tract wants Eq; the parameters hold floats, but never NaN for an op that
// was built (a NaN scale just compares unequal, which only stops merging).
impl Eq for QConv {}

impl QConv {
    /// The same convolution writing bytes `q + 128` (readable by another
    /// `QConv` or a byte ADD, see [`super::wires`]).
    pub fn with_byte_output(&self) -> QConv {
        QConv {
            bytes_out: true,
            ..self.clone()
        }
    }

    pub fn params(&self) -> &QConvParams {
        &self.p
    }
    /// The kernel this op runs.
    #[cfg(test)]
    fn kernel(&self) -> Isa {
        self.packed.kernel
    }

    fn geo(&self, shape: &[usize]) -> TractResult<Geo> {
        ensure!(
            shape.len() == 4 && shape[3] == self.p.cin,
            "QConv: input shape {shape:?}, expected NHWC with {} channels",
            self.p.cin
        );
        let (n, h, w) = (shape[0], shape[1], shape[2]);
        let eff = |k: usize, d: usize| (k - 1) * d + 1;
        let (ekh, ekw) = (
            eff(self.p.kh, self.p.dilation.0),
            eff(self.p.kw, self.p.dilation.1),
        );
        let (sh, sw) = self.p.stride;
        let (ho, wo, pad_t, pad_l, hp, wp);
        if self.p.same {
            ho = h.div_ceil(sh);
            wo = w.div_ceil(sw);
            let th = ((ho.max(1) - 1) * sh + ekh).saturating_sub(h);
            let tw = ((wo.max(1) - 1) * sw + ekw).saturating_sub(w);
            (pad_t, pad_l) = (th / 2, tw / 2);
            (hp, wp) = (h + th, w + tw);
        } else {
            ensure!(
                h >= ekh && w >= ekw,
                "QConv: {h}x{w} input smaller than the {ekh}x{ekw} kernel"
            );
            ho = (h - ekh) / sh + 1;
            wo = (w - ekw) / sw + 1;
            (pad_t, pad_l, hp, wp) = (0, 0, h, w);
        }
        Ok(Geo {
            n,
            h,
            w,
            ho,
            wo,
            pad_t,
            pad_l,
            hp,
            wp,
        })
    }

    /// Runs the convolution on `x` (NHWC `shape`), filling `y` (NHWC
    /// [n, ho, wo, cout]).
    fn run<O: OutElem>(&self, x: Input, shape: &[usize], y: &mut [O]) -> TractResult<()> {
        let g = self.geo(shape)?;
        let out_len = g.n * g.ho * g.wo * self.p.cout;
        ensure!(y.len() == out_len && x.len() == g.n * g.h * g.w * self.p.cin);
        if out_len == 0 {
            return Ok(());
        }
        let off = self.p.zp_in + 128;
        let macs = out_len * self.p.kh * self.p.kw * if self.p.depthwise { 1 } else { self.p.cin };
        let ok = match (self.packed.kernel, self.p.depthwise, x) {
            (Isa::Avx2, false, _) => {
                let (u, ok) = self.pack_input::<i16>(x, &g, off, 0);
                if ok {
                    self.gemm(&g, &u, y, macs, false);
                }
                ok
            }
            // The VBMI depthwise kernel pads by itself: bytes are read in
            // place, f32 integers converted without padding.
            (kernel, true, x) if Self::dw_fast(kernel, &self.p) => match x {
                Input::Bytes(u) => {
                    self.depthwise(&g, u, y, macs, false);
                    true
                }
                Input::Ints(_) => {
                    let flat = Geo {
                        hp: g.h,
                        wp: g.w,
                        pad_t: 0,
                        pad_l: 0,
                        ..g
                    };
                    let (u, ok) = self.pack_input::<u8>(x, &flat, off, 0);
                    if ok {
                        self.depthwise(&g, &u, y, macs, false);
                    }
                    ok
                }
            },
            // Bytes the kernel can read in place: no padding, and no
            // reads past the input (the narrow kernel's go 31 pixels on).
            (_, depthwise, Input::Bytes(u))
                if g.hp == g.h
                    && g.wp == g.w
                    && !self.packed.narrow
                    && (depthwise || self.packed.seg_len.is_multiple_of(4))
                    && !self.flip_once() =>
            {
                if depthwise {
                    self.depthwise(&g, u, y, macs, false);
                } else {
                    self.gemm(&g, u, y, macs, false);
                }
                true
            }
            _ => {
                let flip = self.signed_input();
                let (u, ok) = self.pack_input::<u8>(x, &g, off, if flip { 0x80 } else { 0 });
                if ok {
                    if self.p.depthwise {
                        self.depthwise(&g, &u, y, macs, flip);
                    } else {
                        self.gemm(&g, &u, y, macs, flip);
                    }
                }
                ok
            }
        };
        if !ok {
            // Some input is not an integer on the int8 grid (never produced
            // by the importer's integer wires): the exact float fallback.
            if let Input::Ints(x) = x {
                self.run_f64(x, &g, y);
            }
        }
        Ok(())
    }

    /// The input as padded `u = x + off` values (padding = `off`, i.e.
    /// x = 0), plus slack for the kernels' reads past the last pixel; each
    /// byte xor `xor` (0x80: the signed `u - 128` the aarch64 kernels
    /// multiply, flipped once here instead of at every load).
    /// `false` when some value is not an integer with `u` in [0, 255].
    fn pack_input<T: Copy + Send + Sync + From<u8>>(
        &self,
        x: Input,
        g: &Geo,
        off: i32,
        xor: u8,
    ) -> (Vec<T>, bool) {
        let c = self.p.cin;
        let row = g.wp * c;
        let rows = g.n * g.hp;
        let fill = T::from(off as u8 ^ xor);
        // Slack: the narrow kernel reads up to 31 * 8 + 128 bytes past the
        // last pixel it stores.
        let mut u = vec![fill; rows * row + 512];
        let bad = AtomicBool::new(false);
        let offf = off as f32;
        // A memory-bound pass: threads only for large inputs.
        let _ = par_chunks_mut(&mut u[..rows * row], row, rows * row / 8, |r0, chunk| {
            let mut ok = true;
            for (i, dst) in chunk.chunks_exact_mut(row).enumerate() {
                let (b, yp) = ((r0 + i) / g.hp, (r0 + i) % g.hp);
                if yp < g.pad_t || yp >= g.pad_t + g.h {
                    continue; // already `off`
                }
                let at = (b * g.h + yp - g.pad_t) * g.w * c;
                let dst = &mut dst[g.pad_l * c..][..g.w * c];
                match x {
                    Input::Ints(x) => ok &= to_grid(&x[at..][..g.w * c], offf, dst, xor),
                    Input::Bytes(x) => copy_xor(dst, &x[at..][..g.w * c], xor),
                }
            }
            if !ok {
                bad.store(true, Ordering::Relaxed);
            }
            Ok(())
        });
        (u, !bad.load(Ordering::Relaxed))
    }

    /// Splits the output rows over the executor's threads; `f` fills the
    /// rows `range` (given as their slice of the output).
    fn par_rows<O: OutElem>(
        &self,
        g: &Geo,
        y: &mut [O],
        macs: usize,
        f: impl Fn(Range<usize>, &mut [O]) + Sync + Send,
    ) {
        let row = g.wo * self.p.cout;
        // Threading pays past ~10 microseconds of work: the network runs
        // with the pool's other threads spinning (`run_spinning`), so
        // handing them work costs a few. `par_chunks_mut` threads from
        // 32768 "elements": 512k MACs of a GEMM (~100 GMAC/s), 128k of a
        // depthwise convolution (~25 GMAC/s).
        let work = if self.p.depthwise {
            macs / 4
        } else {
            macs / 16
        };
        let _ = par_chunks_mut(y, row, work, |r0, chunk| {
            f(r0..r0 + chunk.len() / row, chunk);
            Ok(())
        });
    }

    /// Whether bytes the GEMM could read in place are better copied once,
    /// flipped to signed: in place, a signed kernel flips each 16 bytes at
    /// every load, once per panel of output channels; the copy (fill, then
    /// copy and flip) costs about as much as 4 panels' flips per byte.
    /// (arm-cost, prediction network on a Cortex-A72: the `eor`s were 2.8 %
    /// of the count.)
    fn flip_once(&self) -> bool {
        const PANELS: usize = 6;
        !self.p.depthwise && self.signed_input() && self.packed.panels.len() >= PANELS
    }

    /// Whether this op's kernel multiplies signed `u - 128` (packed
    /// flipped, so the kernel need not flip each load).
    fn signed_input(&self) -> bool {
        #[cfg(target_arch = "aarch64")]
        return if self.p.depthwise {
            !self.packed.dw8.is_empty()
        } else {
            kernels::aarch64::qgemm::signed_input(&self.packed)
        };
        #[cfg(not(target_arch = "aarch64"))]
        false
    }

    /// `flipped`: `u` holds `u ^ 0x80` (see [`QConv::signed_input`]).
    fn gemm<T: Copy + Send + Sync, O: OutElem>(
        &self,
        g: &Geo,
        u: &[T],
        y: &mut [O],
        macs: usize,
        flipped: bool,
    ) {
        let p = &*self.p;
        let pk = &*self.packed;
        let (cin, cout) = (p.cin, p.cout);
        let (kh, kw) = (p.kh, p.kw);
        let (dh, dw) = p.dilation;
        // Byte offsets of the runs from a pixel's first tap.
        let esz = std::mem::size_of::<T>();
        let segs: Vec<usize> = if dw == 1 {
            (0..kh).map(|i| i * dh * g.wp * cin * esz).collect()
        } else {
            (0..kh * kw)
                .map(|t| ((t / kw) * dh * g.wp + (t % kw) * dw) * cin * esz)
                .collect()
        };
        let ps = p.stride.1 * cin;
        let rq = Rq {
            lo: p.lo,
            hi: p.hi,
            zp: (p.zp_out + 128) as f32,
        };
        // aarch64, 1x1 with stride 1 and no padding: consecutive rows are
        // one run of pixels `cin` apart, so a chunk's rows go to the
        // kernel as one row (one call per panel, no part tile per row).
        let flat = cfg!(target_arch = "aarch64")
            && (kh, kw) == (1, 1)
            && p.stride == (1, 1)
            && (g.hp, g.wp) == (g.h, g.w);
        // One panel's `wo` pixels from `base` in `u`.
        let job = |panel, base, wo| Job {
            u,
            base,
            ps,
            wo,
            segs: &segs,
            seg_len: pk.seg_len,
            cout,
            panel,
            pk,
            rq: &rq,
            flipped,
        };
        self.par_rows(g, y, macs, |rows, yc| {
            if flat {
                for pn in &pk.panels {
                    job(pn, rows.start * g.wo * cin, rows.len() * g.wo).row(yc);
                }
                return;
            }
            for pn in &pk.panels {
                for (i, ro) in rows.clone().enumerate() {
                    let (b, yo) = (ro / g.ho, ro % g.ho);
                    let base = (b * g.hp + yo * p.stride.0) * g.wp * cin;
                    let yrow = &mut yc[i * g.wo * cout..][..g.wo * cout];
                    job(pn, base, g.wo).row(yrow);
                }
            }
        });
    }

    /// Depthwise convolution of `u`: unpadded when [`QConv::dw_fast`],
    /// padded by [`QConv::pack_input`] otherwise; `flipped`: `u` holds
    /// `u ^ 0x80` (see [`QConv::signed_input`]).
    fn depthwise<O: OutElem>(&self, g: &Geo, u: &[u8], y: &mut [O], macs: usize, flipped: bool) {
        let kernel = self.packed.kernel;
        let fast = Self::dw_fast(kernel, &self.p);
        // One row of padding bytes, read for the rows above and below the
        // picture.
        let pad = if fast && g.hp != g.h {
            vec![(self.p.zp_in + 128) as u8; g.w * self.p.cin]
        } else {
            vec![]
        };
        self.par_rows(g, y, macs, |rows, yc| {
            #[cfg(target_arch = "x86_64")]
            {
                // Never set on x86 (`signed_input`): its kernels read `u`.
                let _ = flipped;
                // SAFETY: the kernel was resolved against this CPU's features
                // (`dw_fast` checked VBMI), and `u` is unpadded iff `fast`.
                match kernel {
                    _ if fast => unsafe { x86::dw3x3_vbmi(self, g, u, &pad, rows, yc) },
                    // Only a 3x3 kernel: its packing holds nine taps per
                    // channel, which a 1x9 or 9x1 layer would read past.
                    k if is_vnni(k) && (self.p.kh, self.p.kw) == (3, 3) => unsafe {
                        x86::dw3x3_avx512(self, g, u, rows, yc)
                    },
                    Isa::Avx2 => unsafe { x86::dw_avx2(self, g, u, rows, yc) },
                    _ => self.dw_rows(g, u, rows, yc),
                }
            }
            #[cfg(target_arch = "aarch64")]
            if matches!(kernel, Isa::Neon | Isa::NeonDot) {
                return self.dw_neon(g, u, rows, yc, flipped);
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (kernel, &pad, flipped);
                self.dw_rows(g, u, rows, yc)
            }
        });
    }

    /// Depthwise rows, vectorized over channels (inlined into each
    /// target-feature variant).
    #[inline(always)]
    pub(crate) fn dw_rows<O: OutElem>(&self, g: &Geo, u: &[u8], rows: Range<usize>, yc: &mut [O]) {
        let p = &*self.p;
        let pk = &*self.packed;
        let c = p.cout;
        let mut acc = vec![0i32; c];
        let (sh, sw) = p.stride;
        let (dh, dw) = p.dilation;
        for (i, ro) in rows.enumerate() {
            let (b, yo) = (ro / g.ho, ro % g.ho);
            for xo in 0..g.wo {
                acc.copy_from_slice(&pk.init[..c]);
                for ty in 0..p.kh {
                    let rowp = ((b * g.hp + yo * sh + ty * dh) * g.wp + xo * sw) * c;
                    for tx in 0..p.kw {
                        let src = &u[rowp + tx * dw * c..][..c];
                        let wt = &pk.dw[(ty * p.kw + tx) * c..][..c];
                        for ((a, &s), &w) in acc.iter_mut().zip(src).zip(wt) {
                            *a += s as i32 * w;
                        }
                    }
                }
                let o = (i * g.wo + xo) * c;
                let zp = (p.zp_out + 128) as f32;
                for ((yv, &a), &m) in yc[o..][..c].iter_mut().zip(&acc).zip(&pk.m) {
                    *yv = O::put(requant(a, m, p.lo, p.hi), zp);
                }
            }
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn dw_neon<O: OutElem>(
        &self,
        g: &Geo,
        u: &[u8],
        rows: Range<usize>,
        yc: &mut [O],
        flipped: bool,
    ) {
        let p = &*self.p;
        let pk = &*self.packed;
        let d = crate::kernels::aarch64::qdw::Dw {
            u,
            c: p.cout,
            kh: p.kh,
            kw: p.kw,
            stride: p.stride,
            dilation: p.dilation,
            hp: g.hp,
            wp: g.wp,
            ho: g.ho,
            wo: g.wo,
            w16: &pk.dw16,
            w8: &pk.dw8,
            flipped,
            init: &pk.init,
            m: &pk.m,
            lo: p.lo,
            hi: p.hi,
            zp: (p.zp_out + 128) as f32,
        };
        crate::kernels::aarch64::qdw::rows(&d, rows, yc);
    }

    /// Whether the depthwise convolution runs [`x86::dw3x3_vbmi`]: 3x3,
    /// dilation 1, horizontal stride 1 or 2, output bounds that are
    /// integers within the int8 range (it clamps as bytes).
    fn dw_fast(kernel: Isa, p: &QConvParams) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let zo = p.zp_out as f32;
            kernel == Isa::Avx512Vbmi
                && p.depthwise
                && (p.kh, p.kw) == (3, 3)
                && p.dilation == (1, 1)
                && matches!(p.stride.1, 1 | 2)
                && p.lo.fract() == 0.0
                && p.hi.fract() == 0.0
                && -128.0 - zo <= p.lo
                && p.lo <= p.hi
                && p.hi <= 127.0 - zo
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (kernel, p);
            false
        }
    }

    /// Exact fallback for inputs off the int8 grid: sums in f64 (exact for
    /// integers), rounded once to f32 like the i32 paths.
    fn run_f64<O: OutElem>(&self, x: &[f32], g: &Geo, y: &mut [O]) {
        let p = &*self.p;
        let (cin, cout) = (p.cin, p.cout);
        for b in 0..g.n {
            for yo in 0..g.ho {
                for xo in 0..g.wo {
                    for co in 0..cout {
                        let mut acc = p.bias[co] as f64;
                        for ty in 0..p.kh {
                            let iy =
                                (yo * p.stride.0 + ty * p.dilation.0) as isize - g.pad_t as isize;
                            if iy < 0 || iy >= g.h as isize {
                                continue;
                            }
                            for tx in 0..p.kw {
                                let ix = (xo * p.stride.1 + tx * p.dilation.1) as isize
                                    - g.pad_l as isize;
                                if ix < 0 || ix >= g.w as isize {
                                    continue;
                                }
                                let px = ((b * g.h + iy as usize) * g.w + ix as usize) * cin;
                                if p.depthwise {
                                    let w = p.weights[(ty * p.kw + tx) * cout + co];
                                    acc += x[px + co] as f64 * w as f64;
                                } else {
                                    let wrow = &p.weights[((co * p.kh + ty) * p.kw + tx) * cin..];
                                    for ci in 0..cin {
                                        acc += x[px + ci] as f64 * wrow[ci] as f64;
                                    }
                                }
                            }
                        }
                        let q = requant_f32((acc as f32) * p.scale[co], p.lo, p.hi);
                        let o = ((b * g.ho + yo) * g.wo + xo) * cout + co;
                        y[o] = O::put(q, (p.zp_out + 128) as f32);
                    }
                }
            }
        }
    }

    fn output_shape(&self, shape: &[usize]) -> TractResult<[usize; 4]> {
        let g = self.geo(shape)?;
        Ok([g.n, g.ho, g.wo, self.p.cout])
    }

    /// Evaluates on a plain NHWC slice.
    #[cfg(test)]
    fn eval_slice(&self, x: &[f32], shape: &[usize]) -> TractResult<Vec<f32>> {
        let os = self.output_shape(shape)?;
        let mut y = vec![0f32; os.iter().product()];
        self.run(Input::Ints(x), shape, &mut y)?;
        Ok(y)
    }

    /// Evaluates on plain NHWC bytes `q + 128`, giving bytes.
    #[cfg(test)]
    fn eval_bytes(&self, x: &[u8], shape: &[usize]) -> TractResult<Vec<u8>> {
        let os = self.output_shape(shape)?;
        let mut y = vec![0u8; os.iter().product()];
        self.run(Input::Bytes(x), shape, &mut y)?;
        Ok(y)
    }
}

/// `dst = src ^ xor` (on aarch64: [`kernels::aarch64::grid::copy_xor_u8`]).
fn copy_xor<T: Copy + From<u8>>(dst: &mut [T], src: &[u8], xor: u8) {
    #[cfg(target_arch = "aarch64")]
    if std::mem::size_of::<T>() == 1 {
        // SAFETY: `T` is one byte, so `u8` (`From<u8>`).
        let dst = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut u8, dst.len()) };
        return kernels::aarch64::grid::copy_xor_u8(dst, src, xor);
    }
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = T::from(v ^ xor);
    }
}

/// `dst = (src + off) ^ xor` as integers; `false` unless each `src + off`
/// is an integer in [0, 255].
fn to_grid<T: Copy + From<u8>>(src: &[f32], off: f32, dst: &mut [T], xor: u8) -> bool {
    #[cfg(target_arch = "aarch64")]
    if std::mem::size_of::<T>() == 1 {
        // SAFETY: `T` is one byte, so `u8` (`From<u8>`).
        let dst = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut u8, dst.len()) };
        return kernels::aarch64::grid::to_grid_u8(src, off, dst, xor);
    }
    #[cfg(target_arch = "x86_64")]
    match kernels::table().passes {
        Isa::Portable => {}
        // The x86 kernels read `u` unflipped.
        _ if xor != 0 => {}
        _ if std::mem::size_of::<T>() == 1 && Isa::Avx512.available() => {
            // SAFETY: `T` is one byte, so `u8` (`From<u8>`); AVX-512 is present.
            return unsafe {
                let dst = std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut u8, dst.len());
                x86::to_grid_u8_avx512(src, off, dst)
            };
        }
        // SAFETY: the table picks AVX2 only where the CPU has it.
        _ => return unsafe { x86::to_grid_avx2(src, off, dst) },
    }
    to_grid_body(src, off, dst, xor)
}

/// Branch-free, so that it vectorizes.
#[inline(always)]
pub(crate) fn to_grid_body<T: Copy + From<u8>>(
    src: &[f32],
    off: f32,
    dst: &mut [T],
    xor: u8,
) -> bool {
    let mut bad = 0u32;
    for (d, &s) in dst.iter_mut().zip(src) {
        let v = s + off;
        // Clamped first (NaN -> -1) so the conversion needs no saturation
        // logic; anything clamped then fails the comparison. (`clamp` would
        // keep NaN.)
        // SAFETY: the clamped value is finite and within i32.
        #[allow(clippy::manual_clamp)]
        let q: i32 = unsafe { v.max(-1.0).min(256.0).to_int_unchecked() };
        bad |= ((q as f32 != v) as u32) | (q as u32 >> 8);
        *d = T::from(q as u8 ^ xor);
    }
    bad == 0
}

/// XNNPACK's fp32 requantization: i32 -> f32 (round to nearest even), scale,
/// round half to even, clamp.
#[inline(always)]
pub(crate) fn requant(acc: i32, m: f32, lo: f32, hi: f32) -> f32 {
    requant_f32((acc as f32) * m, lo, hi)
}

#[inline(always)]
pub(crate) fn requant_f32(v: f32, lo: f32, hi: f32) -> f32 {
    v.round_ties_even().max(lo).min(hi)
}

pub(crate) struct Rq {
    pub(crate) lo: f32,
    pub(crate) hi: f32,
    /// `zp_out + 128`: added for byte outputs.
    pub(crate) zp: f32,
}

/// One output row of one panel of a GEMM convolution.
pub(crate) struct Job<'a, T> {
    pub(crate) u: &'a [T],
    /// Offset in `u` of the first tap of the row's first pixel, and the
    /// offset between consecutive pixels (elements).
    pub(crate) base: usize,
    pub(crate) ps: usize,
    pub(crate) wo: usize,
    /// Byte offsets of the contiguous runs from a pixel's first tap.
    pub(crate) segs: &'a [usize],
    pub(crate) seg_len: usize,
    pub(crate) cout: usize,
    pub(crate) panel: &'a Panel,
    pub(crate) pk: &'a Packed,
    pub(crate) rq: &'a Rq,
    /// `u` holds `u ^ 0x80`, the signed values (aarch64 only).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) flipped: bool,
}

impl<T: Copy> Job<'_, T> {
    fn row<O: OutElem>(&self, y: &mut [O]) {
        match self.pk.kernel {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni | Isa::Avx512Vbmi | Isa::Avx2 => unsafe {
                // SAFETY: the kernel was resolved against this CPU's features,
                // and `u` holds u8 for VNNI, i16 for AVX2 (see `run`).
                x86::row(self, y)
            },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDot => unsafe {
                // SAFETY: the kernel was resolved against this CPU's features
                // (`dotprod` for NeonDot), and `u` holds u8 (see `run`).
                kernels::aarch64::qgemm::row(self, y)
            },
            _ => self.row_portable(y),
        }
    }

    /// Portable kernel: 4 pixels x 16 channels of i32 accumulators.
    fn row_portable<O: OutElem>(&self, y: &mut [O]) {
        const MR: usize = 4;
        const NR: usize = 16;
        let Weights::I16(w) = &self.pk.weights else {
            unreachable!("portable kernel packs i16 weights")
        };
        assert_eq!(std::mem::size_of::<T>(), 1, "portable kernel on u8 input");
        // SAFETY: `T` is one byte: the portable path packs u8 input (`run`).
        let u: &[u8] =
            unsafe { std::slice::from_raw_parts(self.u.as_ptr() as *const u8, self.u.len()) };
        let pn = self.panel;
        let w = &w[pn.w_off..];
        let init = &self.pk.init[pn.lane_off..][..NR];
        let m = &self.pk.m[pn.lane_off..][..NR];
        let nc = (self.cout - pn.c0).min(NR);
        let l = self.seg_len;
        for x0 in (0..self.wo).step_by(MR) {
            let np = (self.wo - x0).min(MR);
            let mut acc = [[0i32; NR]; MR];
            for a in acc.iter_mut() {
                a.copy_from_slice(init);
            }
            let offs: [usize; MR] =
                std::array::from_fn(|p| self.base + (x0 + p.min(np - 1)) * self.ps);
            for (si, &seg) in self.segs.iter().enumerate() {
                let ws = &w[si * l * NR..][..l * NR];
                let src: [&[u8]; MR] = std::array::from_fn(|p| &u[offs[p] + seg..][..l]);
                for (k, wk) in ws.chunks_exact(NR).enumerate() {
                    for p in 0..MR {
                        let v = src[p][k] as i32;
                        for (a, &wv) in acc[p].iter_mut().zip(wk) {
                            *a += v * wv as i32;
                        }
                    }
                }
            }
            for (p, a) in acc.iter().enumerate().take(np) {
                let o = (x0 + p) * self.cout + pn.c0;
                for c in 0..nc {
                    y[o + c] = O::put(requant(a[c], m[c], self.rq.lo, self.rq.hi), self.rq.zp);
                }
            }
        }
    }
}

/// Whether the VNNI kernel with lanes over pixels ([`Packed::narrow`])
/// takes this convolution.
pub(crate) fn narrow(kernel: Isa, p: &QConvParams) -> bool {
    is_vnni(kernel)
        && !p.depthwise
        && p.cout <= 4
        && p.dilation.1 == 1
        && matches!(p.stride.1 * p.cin, 4 | 8)
}

impl Op for QConv {
    fn name(&self) -> StaticName {
        "QConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let p = &self.p;
        Ok(vec![
            format!(
                "{}x{} {}->{} stride {:?} {} {}{:?}",
                p.kh,
                p.kw,
                p.cin,
                p.cout,
                p.stride,
                if p.same { "SAME" } else { "VALID" },
                if p.depthwise { "depthwise " } else { "" },
                self.packed.kernel
            ) + if self.bytes_out { " bytes out" } else { "" },
        ])
    }

    op_as_typed_op!();
}

impl EvalOp for QConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        let os = self.output_shape(&shape)?;
        let xv = input.try_as_plain_ram()?;
        let x = match input.datum_type() {
            DatumType::F32 => Input::Ints(xv.as_slice::<f32>()?),
            DatumType::U8 => Input::Bytes(xv.as_slice::<u8>()?),
            dt => bail!("QConv: input is {dt:?}, not f32 or u8"),
        };
        // SAFETY: `run` writes every output element.
        let y = if self.bytes_out {
            let mut y = unsafe { Tensor::uninitialized::<u8>(&os)? };
            self.run(x, &shape, y.try_as_plain_ram_mut()?.as_slice_mut::<u8>()?)?;
            y
        } else {
            let mut y = unsafe { Tensor::uninitialized::<f32>(&os)? };
            self.run(x, &shape, y.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?)?;
            y
        };
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for QConv {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let fact = inputs[0];
        ensure!(
            matches!(fact.datum_type, DatumType::F32 | DatumType::U8),
            "QConv: input is {:?}, not f32 or u8",
            fact.datum_type
        );
        let shape = fact
            .shape
            .as_concrete()
            .context("QConv needs a concrete input shape")?;
        let os = self.output_shape(shape)?;
        Ok(tvec!(if self.bytes_out {
            u8::fact(os)
        } else {
            f32::fact(os)
        }))
    }
}
