//! Direct NHWC f32 convolution for the transfer network's thin layers.
//!
//! The transfer network's convolutions have 3 to 32 channels. tract lowers
//! every convolution to a matrix product over a lazily built im2col: on these
//! shapes its packing (`panel_bytes`) cost as much as the products themselves
//! (`perf`, 24% each of a frame). Here each output pixel's patch is read
//! straight from the (already padded) input: for a stride `s`, the `kw * cin`
//! values of one kernel row are contiguous in NHWC, so the inner loop is a
//! run of broadcast-multiply-adds into accumulators held in registers for a
//! few output pixels by one block of output channels. Layers with fewer than
//! 8 outputs (the last, 8 -> 3) instead take dot products along that
//! contiguous run, so no lanes are wasted on padding channels.
//!
//! The kernels are plain Rust over fixed-size arrays, compiled once per
//! instruction set (AVX-512, AVX2+FMA, the baseline) and chosen at run time;
//! the compiler turns the arrays into vector registers. Rows are shared out
//! over tract's thread pool when the network runs on several threads.

// The kernels index several arrays (accumulators, pixels, weights) by the
// same counter; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use std::sync::Arc;

use tract_core::internal::*;
use tract_core::tract_linalg::multithread::{current_tract_executor, Executor};

use crate::kernels::{self, Isa};

/// Output channels per block in the broadcast kernel.
const MAX_BLOCK: usize = 32;
/// Lanes of the dot-product kernel.
pub(crate) const DOT: usize = 8;
/// Output channels the x86 dot-product kernel computes at once.
pub(crate) const DOT_GROUP: usize = 3;

/// Weights laid out for the kernels, built once at load.
#[derive(Debug)]
pub(crate) enum Packed {
    /// Blocks of `cb` output channels: `[block][kh][kw * cin][cb]`, zero
    /// beyond `cout`; bias `[block][cb]`.
    Broadcast {
        cb: usize,
        w: Vec<f32>,
        bias: Vec<f32>,
    },
    /// Per output channel: `[cout][kh][run]`, each kernel row's `kw * cin`
    /// values zero-padded to `run`, a multiple of [`DOT`].
    Dot { run: usize, w: Vec<f32> },
}

/// A VALID (unpadded) convolution with dilation 1, NHWC input and output,
/// an OHWI kernel and a bias, the output clamped to `[lo, hi]` (the fused
/// activation; infinite bounds when there is none).
///
/// The geometry is private: the kernels read the packed weights by it, so it
/// cannot change once they are packed.
#[derive(Debug, Clone)]
pub struct DirectConv {
    kh: usize,
    kw: usize,
    cin: usize,
    cout: usize,
    stride: (usize, usize),
    lo: f32,
    hi: f32,
    bias: Arc<Vec<f32>>,
    packed: Arc<Packed>,
    isa: Isa,
}

// Two ops are the same when they share their packed weights: enough for
// tract's graph comparisons, and cheaper than comparing the floats.
impl PartialEq for DirectConv {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.packed, &other.packed)
            && self.isa == other.isa
            && (self.kh, self.kw, self.cin, self.cout, self.stride)
                == (other.kh, other.kw, other.cin, other.cout, other.stride)
    }
}

impl Eq for DirectConv {}

impl DirectConv {
    /// `kernel` is OHWI `[cout, kh, kw, cin]`, `bias` has `cout` values.
    pub fn new(
        kernel: &[f32],
        [cout, kh, kw, cin]: [usize; 4],
        bias: &[f32],
        stride: (usize, usize),
        (lo, hi): (f32, f32),
    ) -> TractResult<DirectConv> {
        ensure!(
            kernel.len() == cout * kh * kw * cin && bias.len() == cout,
            "DirectConv: kernel of {} values for {cout}x{kh}x{kw}x{cin}, bias of {}",
            kernel.len(),
            bias.len()
        );
        ensure!(
            cout > 0 && kh > 0 && kw > 0 && cin > 0 && stride.0 > 0 && stride.1 > 0,
            "DirectConv: empty geometry"
        );
        let k = |o: usize, i: usize| kernel[o * kh * kw * cin + i];
        let row = kw * cin;
        let packed = if cout < 8 && row >= DOT {
            let run = row.div_ceil(DOT) * DOT;
            // Whole groups of DOT_GROUP channels (zero beyond `cout`) for the
            // x86 kernel, which always computes a full group.
            let mut w = vec![0.0; cout.next_multiple_of(DOT_GROUP) * kh * run];
            for o in 0..cout {
                for y in 0..kh {
                    for j in 0..row {
                        w[(o * kh + y) * run + j] = k(o, y * row + j);
                    }
                }
            }
            Packed::Dot { run, w }
        } else {
            let cb = cout.next_multiple_of(8).min(MAX_BLOCK);
            let blocks = cout.div_ceil(cb);
            let taps = kh * row;
            let mut w = vec![0.0; blocks * taps * cb];
            let mut b = vec![0.0; blocks * cb];
            for o in 0..cout {
                let (blk, c) = (o / cb, o % cb);
                b[blk * cb + c] = bias[o];
                for t in 0..taps {
                    w[(blk * taps + t) * cb + c] = k(o, t);
                }
            }
            Packed::Broadcast { cb, w, bias: b }
        };
        Ok(DirectConv {
            kh,
            kw,
            cin,
            cout,
            stride,
            lo,
            hi,
            bias: Arc::new(bias.to_vec()),
            packed: Arc::new(packed),
            isa: kernels::table().fconv.unwrap_or(Isa::Portable),
        })
    }

    /// The same convolution run by another compiled copy of the kernels
    /// (tests compare them); `None` if this CPU lacks it or there is no such
    /// copy.
    pub fn with_isa(mut self, isa: Isa) -> Option<DirectConv> {
        (isa.available() && ISAS.contains(&isa)).then(|| {
            self.isa = isa;
            self
        })
    }

    /// `(cout, kh, kw, cin)`.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        (self.cout, self.kh, self.kw, self.cin)
    }

    fn out_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        (h >= self.kh && w >= self.kw).then(|| {
            (
                (h - self.kh) / self.stride.0 + 1,
                (w - self.kw) / self.stride.1 + 1,
            )
        })
    }

    /// Output rows `oy0..` of picture `x` (one batch item, `[h, w, cin]`)
    /// into `out` (whole rows of `[ow, cout]`).
    fn rows(&self, x: &[f32], w: usize, oy0: usize, out: &mut [f32], ow: usize) {
        let g = Geo {
            kh: self.kh,
            row: self.kw * self.cin,
            in_row: w * self.cin,
            px: self.stride.1 * self.cin,
            ow,
            cout: self.cout,
            lo: self.lo,
            hi: self.hi,
        };
        let rows = out.len() / (ow * self.cout);
        for r in 0..rows {
            let oy = oy0 + r;
            let input = &x[oy * self.stride.0 * g.in_row..];
            let out = &mut out[r * ow * self.cout..][..ow * self.cout];
            // SAFETY: `isa` was checked available when chosen.
            unsafe { run(self.isa, &g, &self.packed, &self.bias, input, out) }
        }
    }
}

/// The sizes a kernel needs for one output row.
pub(crate) struct Geo {
    pub(crate) kh: usize,
    /// Values in one kernel row's patch: `kw * cin`.
    pub(crate) row: usize,
    /// Values in one input row: `w * cin`.
    pub(crate) in_row: usize,
    /// Distance between neighbouring output pixels' patches: `sw * cin`.
    pub(crate) px: usize,
    pub(crate) ow: usize,
    pub(crate) cout: usize,
    pub(crate) lo: f32,
    pub(crate) hi: f32,
}

/// The compiled copies of the kernels on this architecture.
#[cfg(target_arch = "x86_64")]
const ISAS: &[Isa] = &[Isa::Avx512, Isa::Avx2, Isa::Portable];
#[cfg(target_arch = "aarch64")]
const ISAS: &[Isa] = &[Isa::Neon, Isa::Portable];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ISAS: &[Isa] = &[Isa::Portable];

/// # Safety
/// `isa` is available on this CPU; `x` holds the `g.kh` input rows of the
/// output row and `out` its `g.ow * g.cout` values (checked by `rows`).
unsafe fn run(isa: Isa, g: &Geo, p: &Packed, bias: &[f32], x: &[f32], out: &mut [f32]) {
    match isa {
        // SAFETY: the caller checked `isa` against this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 => unsafe { kernels::x86_64::fconv::row(isa, g, p, bias, x, out) },
        // SAFETY: the caller checked `isa` (NEON is in every aarch64 CPU).
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { kernels::aarch64::fconv::row(g, p, bias, x, out) },
        // SAFETY: the caller's contract is the kernel's.
        _ => unsafe { portable::row(g, p, bias, x, out) },
    }
}

/// The kernels, instantiated once per instruction set by [`fconv_kernels!`]:
/// `$fma` says whether `mul_add` is a single instruction there (it is a
/// slow library call otherwise), `$p8/$p16/$p32` how many output pixels
/// one tile holds for 8/16/32-channel blocks (as many as the registers
/// take without spilling).
macro_rules! fconv_kernels {
    ($name:ident, [$($attr:meta)?], $fma:literal, $p8:literal, $p16:literal, $p32:literal) => {
        pub(crate) mod $name {
            use crate::conv::{Geo, Packed, DOT};

            #[inline(always)]
            fn madd(a: f32, b: f32, c: f32) -> f32 {
                if $fma {
                    a.mul_add(b, c)
                } else {
                    a * b + c
                }
            }

            $(#[$attr])?
            pub(crate) unsafe fn row(
                g: &Geo,
                p: &Packed,
                bias: &[f32],
                x: &[f32],
                out: &mut [f32],
            ) {
                // SAFETY: the caller checked the op's instruction set, and `QConv::run` packs u8 input for VNNI and i16 for AVX2, as the micro-kernels read it.
                unsafe {
                    match p {
                        Packed::Broadcast { cb, w, bias } => match cb {
                            8 => broadcast::<8, $p8>(g, w, bias, x, out),
                            16 => broadcast::<16, $p16>(g, w, bias, x, out),
                            _ => broadcast::<32, $p32>(g, w, bias, x, out),
                        },
                        Packed::Dot { run, w } => dot(g, *run, w, bias, x, out),
                    }
                }
            }

            /// Every output channel block, tiles of `P` pixels, then the
            /// leftover pixels one by one.
            #[inline(always)]
            unsafe fn broadcast<const CB: usize, const P: usize>(
                g: &Geo,
                w: &[f32],
                bias: &[f32],
                x: &[f32],
                out: &mut [f32],
            ) {
                // SAFETY: `row`'s contract: `x` holds the `kh` input rows of this output row (from its first), `out` the row's `ow * cout` values; pixels read are within `ow` output pixels.
                unsafe {
                    let taps = g.kh * g.row;
                    for (blk, (wb, bb)) in w
                        .chunks_exact(taps * CB)
                        .zip(bias.chunks_exact(CB))
                        .enumerate()
                    {
                        let bb: &[f32; CB] = bb.try_into().unwrap();
                        let mut ox = 0;
                        while ox + P <= g.ow {
                            tile::<CB, P>(g, wb, bb, x, ox, blk, out);
                            ox += P;
                        }
                        while ox < g.ow {
                            tile::<CB, 1>(g, wb, bb, x, ox, blk, out);
                            ox += 1;
                        }
                    }
                }
            }

            #[inline(always)]
            unsafe fn tile<const CB: usize, const P: usize>(
                g: &Geo,
                wb: &[f32],
                bias: &[f32; CB],
                x: &[f32],
                ox: usize,
                blk: usize,
                out: &mut [f32],
            ) {
                // SAFETY: pixel `ox + P - 1 < ow` reads `kh` rows of `row` values from `(ox + p) * px`, inside `x` (`ow` was derived from the input width); the weights are one packed block of `kh * row * CB`.
                unsafe {
                    let mut acc = [*bias; P];
                    let xp = x.as_ptr().add(ox * g.px);
                    let wp = wb.as_ptr();
                    for ky in 0..g.kh {
                        let xr = xp.add(ky * g.in_row);
                        let wr = wp.add(ky * g.row * CB);
                        for j in 0..g.row {
                            let wv = &*(wr.add(j * CB) as *const [f32; CB]);
                            for (p, a) in acc.iter_mut().enumerate() {
                                let v = *xr.add(p * g.px + j);
                                for c in 0..CB {
                                    a[c] = madd(v, wv[c], a[c]);
                                }
                            }
                        }
                    }
                    let c0 = blk * CB;
                    let n = CB.min(g.cout - c0);
                    for (p, a) in acc.iter().enumerate() {
                        let o = &mut out[(ox + p) * g.cout + c0..][..n];
                        for (o, a) in o.iter_mut().zip(a) {
                            *o = a.max(g.lo).min(g.hi);
                        }
                    }
                }
            }

            /// Few output channels: per pixel pair, dot products along
            /// each kernel row's contiguous patch.
            #[inline(always)]
            unsafe fn dot(
                g: &Geo,
                run: usize,
                w: &[f32],
                bias: &[f32],
                x: &[f32],
                out: &mut [f32],
            ) {
                // SAFETY: `row`'s contract, as for `broadcast`.
                unsafe {
                    let mut ox = 0;
                    while ox + 2 <= g.ow {
                        dot_tile::<2>(g, run, w, bias, x, ox, out);
                        ox += 2;
                    }
                    while ox < g.ow {
                        dot_tile::<1>(g, run, w, bias, x, ox, out);
                        ox += 1;
                    }
                }
            }

            #[inline(always)]
            unsafe fn dot_tile<const P: usize>(
                g: &Geo,
                run: usize,
                w: &[f32],
                bias: &[f32],
                x: &[f32],
                ox: usize,
                out: &mut [f32],
            ) {
                // SAFETY: as for `tile`: whole chunks of DOT values lie within each kernel row's `row` values of the input, and the packed rows are zero-padded to `run`.
                unsafe {
                    // Up to 4 channels at a time, so the accumulators fit.
                    let mut c0 = 0;
                    while c0 < g.cout {
                        let n = (g.cout - c0).min(4);
                        let mut acc = [[[0f32; DOT]; 4]; P];
                        let mut tail = [[0f32; 4]; P];
                        let chunks = g.row / DOT;
                        for ky in 0..g.kh {
                            let xr = x.as_ptr().add(ox * g.px + ky * g.in_row);
                            for k in 0..chunks {
                                let mut xv = [[0f32; DOT]; P];
                                for (p, v) in xv.iter_mut().enumerate() {
                                    *v = *(xr.add(p * g.px + k * DOT) as *const [f32; DOT]);
                                }
                                for c in 0..n {
                                    let wv = &*(w.as_ptr().add(((c0 + c) * g.kh + ky) * run + k * DOT)
                                        as *const [f32; DOT]);
                                    for p in 0..P {
                                        for l in 0..DOT {
                                            acc[p][c][l] = madd(xv[p][l], wv[l], acc[p][c][l]);
                                        }
                                    }
                                }
                            }
                            // The row's last values past whole chunks (the
                            // packed weights there are zero-padded, the input
                            // is not, so they go one by one).
                            for j in chunks * DOT..g.row {
                                for c in 0..n {
                                    let wv = *w.as_ptr().add(((c0 + c) * g.kh + ky) * run + j);
                                    for p in 0..P {
                                        tail[p][c] = madd(*xr.add(p * g.px + j), wv, tail[p][c]);
                                    }
                                }
                            }
                        }
                        for p in 0..P {
                            for c in 0..n {
                                let s: f32 = acc[p][c].iter().sum::<f32>() + tail[p][c] + bias[c0 + c];
                                out[(ox + p) * g.cout + c0 + c] = s.max(g.lo).min(g.hi);
                            }
                        }
                        c0 += n;
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(crate) use fconv_kernels;

// The portable copy: aarch64 has fused multiply-add and 32 vector
// registers of 4 lanes; elsewhere (x86-64's baseline SSE2, armv7) `mul_add`
// would be a library call and there are 8 or 16 registers.
#[cfg(target_arch = "aarch64")]
fconv_kernels!(portable, [], true, 12, 6, 3);
#[cfg(not(target_arch = "aarch64"))]
fconv_kernels!(portable, [], false, 4, 2, 1);

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        "DirectConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}x{} {}->{} stride {:?} {:?}",
            self.kh, self.kw, self.cin, self.cout, self.stride, self.isa
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        ensure!(
            input.rank() == 4 && input.datum_type() == f32::datum_type(),
            "DirectConv: input {:?} {:?} (expected NHWC f32)",
            input.shape(),
            input.datum_type()
        );
        let s = input.shape();
        let (n, h, w, c) = (s[0], s[1], s[2], s[3]);
        ensure!(
            c == self.cin,
            "DirectConv: {c} input channels, expected {}",
            self.cin
        );
        let Some((oh, ow)) = self.out_hw(h, w) else {
            bail!(
                "DirectConv: {h}x{w} is smaller than the {}x{} kernel",
                self.kh,
                self.kw
            );
        };
        let mut out = unsafe { Tensor::uninitialized::<f32>(&[n, oh, ow, self.cout])? };
        {
            let xr = input.try_as_plain_ram()?;
            let x = xr.as_slice::<f32>()?;
            let mut yr = out.try_as_plain_ram_mut()?;
            let y = yr.as_slice_mut::<f32>()?;
            let row = ow * self.cout;
            for b in 0..n {
                let x = &x[b * h * w * c..][..h * w * c];
                let y = &mut y[b * oh * row..][..oh * row];
                match current_tract_executor() {
                    Executor::MultiThread(pool) if oh > 1 => {
                        // Twice as many bands as threads evens out the load.
                        let bands = (2 * pool.current_num_threads()).min(oh);
                        let per = oh.div_ceil(bands);
                        pool.scope(|s| {
                            for (i, chunk) in y.chunks_mut(per * row).enumerate() {
                                s.spawn(move |_| self.rows(x, w, i * per, chunk, ow));
                            }
                        });
                    }
                    _ => self.rows(x, w, 0, y, ow),
                }
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DirectConv {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let fact = inputs[0];
        ensure!(
            fact.rank() == 4 && fact.datum_type == f32::datum_type(),
            "DirectConv: input {fact:?} (expected NHWC f32)"
        );
        let mut shape: TVec<TDim> = fact.shape.iter().cloned().collect();
        if let (Ok(h), Ok(w)) = (shape[1].to_usize(), shape[2].to_usize()) {
            let Some((oh, ow)) = self.out_hw(h, w) else {
                bail!(
                    "DirectConv: {h}x{w} is smaller than the {}x{} kernel",
                    self.kh,
                    self.kw
                );
            };
            shape[1] = oh.into();
            shape[2] = ow.into();
        } else {
            bail!("DirectConv: symbolic picture size {:?}", fact.shape);
        }
        shape[3] = self.cout.into();
        Ok(tvec!(f32::fact(&shape)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_core::tract_linalg::multithread::multithread_tract_scope;

    fn random(n: usize, rng: &mut fastrand::Rng) -> Vec<f32> {
        (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    /// The definition, in f64: out[y][x][o] = b[o] + sum k[o][i][j][c] * in[y*sh+i][x*sw+j][c].
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f32],
        [n, h, w, cin]: [usize; 4],
        k: &[f32],
        [cout, kh, kw]: [usize; 3],
        b: &[f32],
        (sh, sw): (usize, usize),
        (lo, hi): (f32, f32),
    ) -> Vec<f32> {
        let (oh, ow) = ((h - kh) / sh + 1, (w - kw) / sw + 1);
        let mut out = vec![0.0; n * oh * ow * cout];
        for bi in 0..n {
            for y in 0..oh {
                for xo in 0..ow {
                    for o in 0..cout {
                        let mut s = b[o] as f64;
                        for i in 0..kh {
                            for j in 0..kw {
                                for c in 0..cin {
                                    let xv = x[((bi * h + y * sh + i) * w + xo * sw + j) * cin + c];
                                    let kv = k[((o * kh + i) * kw + j) * cin + c];
                                    s += xv as f64 * kv as f64;
                                }
                            }
                        }
                        out[((bi * oh + y) * ow + xo) * cout + o] = (s as f32).max(lo).min(hi);
                    }
                }
            }
        }
        out
    }

    fn eval(op: &DirectConv, x: &[f32], shape: [usize; 4]) -> Vec<f32> {
        let t = Tensor::from_shape(&shape, x).unwrap();
        let out = op
            .eval_out_of_plan(tvec!(t.into_tvalue()))
            .unwrap()
            .unwrap();
        out[0]
            .try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{what}: value {i} is {g}, expected {w}"
            );
        }
    }

    /// One convolution on random data, both with and without a clamp, on
    /// every instruction set this CPU has, against the definition.
    fn check(
        [n, h, w, cin]: [usize; 4],
        [cout, kh, kw]: [usize; 3],
        stride: (usize, usize),
        rng: &mut fastrand::Rng,
    ) {
        let x = random(n * h * w * cin, rng);
        let k = random(cout * kh * kw * cin, rng);
        let b = random(cout, rng);
        for bounds in [(f32::NEG_INFINITY, f32::INFINITY), (0.0, 0.5)] {
            let want = naive(&x, [n, h, w, cin], &k, [cout, kh, kw], &b, stride, bounds);
            let op = DirectConv::new(&k, [cout, kh, kw, cin], &b, stride, bounds).unwrap();
            for &isa in ISAS {
                let Some(op) = op.clone().with_isa(isa) else {
                    continue;
                };
                let what =
                    format!("{h}x{w} {cin}->{cout} {kh}x{kw} stride {stride:?} {bounds:?} {isa:?}");
                assert_close(&eval(&op, &x, [n, h, w, cin]), &want, &what);
            }
        }
    }

    /// Every layer shape of the transfer network (and blocks that do not
    /// fill a vector, two blocks, odd sizes), on every instruction set this
    /// CPU has, against the definition.
    #[test]
    fn every_kernel_matches_the_definition() {
        let mut rng = fastrand::Rng::with_seed(7);
        // [n, h, w, cin], [cout, kh, kw], stride
        type Layer = ([usize; 4], [usize; 3], (usize, usize));
        let shapes: &[Layer] = &[
            ([1, 20, 23, 3], [8, 9, 9], (1, 1)),
            ([1, 17, 19, 8], [16, 3, 3], (2, 2)),
            ([2, 11, 13, 32], [32, 3, 3], (1, 1)),
            ([1, 12, 9, 16], [8, 3, 3], (1, 1)),
            ([1, 21, 18, 8], [3, 9, 9], (1, 1)),
            ([1, 5, 6, 5], [3, 3, 1], (1, 2)),
            ([1, 1, 1, 100], [32, 1, 1], (1, 1)),
            ([1, 9, 10, 7], [40, 3, 3], (1, 1)),
            ([1, 6, 7, 4], [12, 2, 3], (2, 1)),
            ([1, 10, 12, 16], [32, 3, 3], (2, 2)),
            ([1, 12, 14, 32], [16, 3, 3], (1, 1)),
        ];
        for &(shape, ks, stride) in shapes {
            check(shape, ks, stride, &mut rng);
        }
    }

    /// Edges of the tiles: odd channel counts on both sides (runs that are
    /// not a multiple of 4 or 8, blocks not full), 1x9/9x1/3x3 kernels,
    /// strides 1 and 2, and output widths from 1 (the picture as small as
    /// the kernel) to past two tiles of every kernel, so every leftover
    /// count occurs.
    #[test]
    fn tile_edges_match_the_definition() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut ow = 1;
        for cin in [3, 5, 8, 13, 16, 32] {
            for cout in [3, 5, 8, 13, 16, 32] {
                for (kh, kw) in [(3, 3), (1, 9), (9, 1)] {
                    for s in [1, 2] {
                        // Output widths 1..=18 in turn; heights 1 or 2.
                        ow = ow % 18 + 1;
                        let oh = 1 + ow % 2;
                        let (h, w) = ((oh - 1) * s + kh, (ow - 1) * s + kw);
                        check([1, h, w, cin], [cout, kh, kw], (s, s), &mut rng);
                    }
                }
            }
        }
        // Runs shorter than a vector (1x1 on 1-3 channels), and 1 pixel.
        for cin in 1..=3 {
            check([1, 3, 7, cin], [8, 1, 1], (1, 1), &mut rng);
            check([1, 3, 5, cin], [16, 1, 3], (1, 2), &mut rng);
        }
        check([1, 9, 9, 3], [8, 9, 9], (1, 1), &mut rng);
        check([1, 9, 9, 8], [3, 9, 9], (1, 1), &mut rng);
    }

    #[test]
    fn several_threads_give_the_same_picture() {
        let mut rng = fastrand::Rng::with_seed(3);
        // Each layout and block size: [n, h, w, cin], [cout, kh, kw, cin].
        let cases = [
            ([1, 37, 30, 8], [16, 3, 3, 8]),
            ([1, 21, 25, 3], [8, 9, 9, 3]),
            ([1, 14, 15, 32], [32, 3, 3, 32]),
            ([1, 20, 19, 8], [3, 9, 9, 8]),
        ];
        for (shape, ks) in cases {
            let x = random(shape.iter().product(), &mut rng);
            let k = random(ks.iter().product(), &mut rng);
            let b = random(ks[0], &mut rng);
            let op = DirectConv::new(&k, ks, &b, (1, 1), (f32::MIN, f32::MAX)).unwrap();
            for &isa in ISAS {
                let Some(op) = op.clone().with_isa(isa) else {
                    continue;
                };
                let one = eval(&op, &x, shape);
                let two =
                    multithread_tract_scope(Executor::multithread(2), || eval(&op, &x, shape));
                assert_eq!(one, two, "{ks:?} {isa:?}");
            }
        }
    }

    #[test]
    fn each_cpu_picks_its_own_kernels() {
        let isa = kernels::table().fconv;
        match std::env::consts::ARCH {
            "aarch64" => assert_eq!(isa, Some(Isa::Neon)),
            // tract's NEON kernels: ours run scalar there (docs/armv7.md).
            "arm" => assert_eq!(isa, None),
            _ => assert!(isa.is_some_and(Isa::available) && !Isa::Neon.available()),
        }
    }

    #[test]
    fn a_picture_smaller_than_the_kernel_is_an_error() {
        let op = DirectConv::new(&[0.0; 81], [1, 9, 9, 1], &[0.0], (1, 1), (0.0, 1.0)).unwrap();
        let t = Tensor::zero::<f32>(&[1, 8, 20, 1]).unwrap();
        let err = op.eval_out_of_plan(tvec!(t.into_tvalue())).unwrap_err();
        assert!(
            format!("{err}").contains("smaller than the 9x9 kernel"),
            "{err}"
        );
    }

    #[test]
    fn a_kernel_of_the_wrong_size_is_refused() {
        assert!(DirectConv::new(&[0.0; 80], [1, 9, 9, 1], &[0.0], (1, 1), (0.0, 1.0)).is_err());
    }
}
