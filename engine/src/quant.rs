//! Fused element-wise steps of the exact int8 emulation.
//!
//! The int8 networks' values travel as f32 integers `q - zero_point`
//! (exact). Each int8 operator ends with a requantization: scale, round
//! half to even, clamp to the output range. Built from tract's generic ops
//! that was four to nine passes over the picture per operator, several in
//! f64 (`perf`: 35% of an int8 frame in binary ops, 15% in rounding, 12% in
//! the f64 reductions of MEAN). [`Requant`] does one operator's arithmetic
//! and its requantization in one pass; [`QuantMean`] sums a picture's
//! integers exactly in i32 and requantizes the mean. The arithmetic is the
//! one the importer used before, step for step, so the outputs stay
//! bit-identical to the reference runtime.

use tract_core::internal::*;

use super::ops::in_bands;
#[allow(unused_imports)] // used on x86-64 and armv7 only
use crate::kernels::{self, Isa};

/// What [`Requant`] computes before rounding.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantFn {
    /// `x * m[c]`, with one `m` or one per channel (rounded once in f32).
    Scale(Vec<f32>),
    /// `(a * b) * m` (the product is exact: |a|, |b| <= 255).
    Mul(f32),
    /// XNNPACK's fixed-point ADD/SUB: `(a * ma + b * mb + 2^(shift-1)) >> shift`
    /// on integers (an arithmetic shift: the floor).
    Add { ma: i64, mb: i64, shift: u32 },
    /// `((a * sa - b * sb)^2) * m`: SQUARED_DIFFERENCE of the real values
    /// `a * sa`, `b * sb` of two int8 tensors (or of real values, with
    /// `sa = sb = 1`), in f32, followed by QUANTIZE's multiplication by
    /// the reciprocal scale.
    SqDiff { sa: f32, sb: f32, m: f32 },
}

impl Eq for QuantFn {}

impl std::hash::Hash for QuantFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
    }
}

impl QuantFn {
    fn arity(&self) -> usize {
        if matches!(self, QuantFn::Scale(_)) {
            1
        } else {
            2
        }
    }
}

/// `clamp(round_half_even(f(a, b)), lo, hi)`, element-wise; `b` may be a
/// full picture like `a`, one value per channel (the last axis), or one
/// value. `lo` and `hi` are integers (the int8 range less the zero point,
/// narrowed by a fused ReLU).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requant {
    pub f: QuantFn,
    pub lo: i32,
    pub hi: i32,
    /// The output's zero point (the output holds `q - zp`): what a byte
    /// wire needs to know ([`super::wires`]).
    pub zp: i32,
}

/// Round half to even of a value already clamped into the int8 range: for
/// |x| < 2^22, adding and removing 1.5 * 2^23 leaves the integer that the
/// float addition rounded to, and float addition rounds half to even. (No
/// SSE4.1 `roundps` needed, so it vectorizes on every target.)
#[inline(always)]
fn rne_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// `v` clamped to `[lo, hi]`, for a `v` that is not NaN. `f32::max` and
/// `min` are IEEE maxNum/minNum: one instruction on x86-64 and aarch64, but
/// armv7's VFP and NEON have none, and LLVM calls libm's `fmaxf`/`fminf` for
/// every value (armv7 prediction network: 19 % of its instructions). Two
/// comparisons give the same value there (a -0.0 may stay -0.0: every
/// caller rounds or converts it to the integer 0 next, or is an f32 path).
#[inline(always)]
pub(crate) fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    #[cfg(target_arch = "arm")]
    {
        let v = if v < lo { lo } else { v };
        if v > hi {
            hi
        } else {
            v
        }
    }
    #[cfg(not(target_arch = "arm"))]
    {
        v.max(lo).min(hi)
    }
}

impl Requant {
    /// Whether `b` (shape) can go with `a` (shape) here.
    pub fn fits(a: &[usize], b: &[usize]) -> bool {
        let (na, nb): (usize, usize) = (a.iter().product(), b.iter().product());
        b.len() <= a.len()
            && (nb == na && a == b
                || nb == 1
                || (nb == a.last().copied().unwrap_or(0) && b.last() == a.last()))
    }

    /// Whether `a * ma + b * mb + half` cannot overflow i32 for int8
    /// operands (|a|, |b| <= 255 once the zero point is taken off).
    pub(crate) fn fits_i32(ma: i64, mb: i64, half: i64) -> bool {
        255 * (ma.abs() + mb.abs()) + half <= i32::MAX as i64
    }

    /// [`Self::apply_portable`], compiled for the table's instruction set
    /// (the same arithmetic: Rust never fuses a multiply and an add by
    /// itself).
    fn apply(&self, a: &[f32], b: &[f32], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if kernels::table().passes == Isa::Avx2 {
            // SAFETY: the table picks AVX2 only where the CPU has it.
            return unsafe { kernels::x86_64::passes::requant(self, a, b, y) };
        }
        #[cfg(target_arch = "arm")]
        if kernels::table().passes == Isa::Neon && kernels::arm::passes::requant(self, a, b, y) {
            return;
        }
        self.apply_portable(a, b, y)
    }

    #[inline(always)]
    pub(crate) fn apply_portable(&self, a: &[f32], b: &[f32], y: &mut [f32]) {
        let (lo, hi) = (self.lo as f32, self.hi as f32);
        // The clamp comes first: rounding commutes with it (lo and hi are
        // integers) and keeps `rne_small` in range.
        let q = |v: f32| rne_small(clamp(v, lo, hi));
        // The second operand repeats every `period` values.
        let period = b.len().max(1);
        match &self.f {
            QuantFn::Scale(m) => {
                if m.len() == 1 {
                    let m = m[0];
                    y.iter_mut().zip(a).for_each(|(y, &a)| *y = q(a * m));
                } else {
                    // Per channel: `each` repeats short vectors to long runs.
                    each(a, m, m.len(), y, |x, m| q(x * m));
                }
            }
            QuantFn::Mul(m) => {
                each(a, b, period, y, |a, b| q((a * b) * m));
            }
            &QuantFn::SqDiff { sa, sb, m } => {
                each(a, b, period, y, |a, b| {
                    let d = a * sa - b * sb;
                    q((d * d) * m)
                });
            }
            &QuantFn::Add { ma, mb, shift } => {
                let half = 1i64 << (shift - 1);
                if Self::fits_i32(ma, mb, half) {
                    // The same sums in i32, which vectorizes.
                    let (ma, mb, half) = (ma as i32, mb as i32, half as i32);
                    each(a, b, period, y, |a, b| {
                        let acc = (a as i32 * ma + b as i32 * mb + half) >> shift;
                        clamp(acc as f32, lo, hi)
                    });
                } else {
                    each(a, b, period, y, |a, b| {
                        let acc = (a as i64 * ma + b as i64 * mb + half) >> shift;
                        clamp(acc as f32, lo, hi)
                    });
                }
            }
        }
    }
}

/// `y[i] = f(a[i], b[i % period])`, with the common cases as plain loops.
#[inline(always)]
fn each(a: &[f32], b: &[f32], period: usize, y: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    if period == a.len() {
        y.iter_mut()
            .zip(a.iter().zip(b))
            .for_each(|(y, (&a, &b))| *y = f(a, b));
    } else if period == 1 {
        let b = b[0];
        y.iter_mut().zip(a).for_each(|(y, &a)| *y = f(a, b));
    } else if period <= TILE / 2 {
        // A per-channel operand of 8-32 values makes inner loops too short
        // to vectorize well: repeat it to a run of about TILE values.
        let run = TILE / period * period;
        let mut tiled = [0f32; TILE];
        for (i, t) in tiled[..run].iter_mut().enumerate() {
            *t = b[i % period];
        }
        let tiled = &tiled[..run];
        for (ys, xs) in y.chunks_mut(run).zip(a.chunks(run)) {
            for ((y, &a), &b) in ys.iter_mut().zip(xs).zip(tiled) {
                *y = f(a, b);
            }
        }
    } else {
        for (ys, xs) in y.chunks_exact_mut(period).zip(a.chunks_exact(period)) {
            for ((y, &a), &b) in ys.iter_mut().zip(xs).zip(b) {
                *y = f(a, b);
            }
        }
    }
}

/// Values in a repeated per-channel operand (see [`each`]).
const TILE: usize = 256;

fn f32_slice(t: &Tensor) -> TractResult<&[f32]> {
    ensure!(
        t.datum_type() == f32::datum_type(),
        "expected f32, got {:?}",
        t.datum_type()
    );
    t.try_as_plain_ram()?.as_slice::<f32>()
}

impl Op for Requant {
    fn name(&self) -> StaticName {
        "Requant".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?} to [{}, {}]", self.f, self.lo, self.hi)])
    }

    op_as_typed_op!();
}

impl EvalOp for Requant {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs.len() == self.f.arity(),
            "Requant {:?}: {} inputs",
            self.f,
            inputs.len()
        );
        let a = &inputs[0];
        let b = inputs.get(1).unwrap_or(a);
        ensure!(
            Self::fits(a.shape(), b.shape()),
            "Requant: {:?} does not go with {:?}",
            b.shape(),
            a.shape()
        );
        if let QuantFn::Scale(m) = &self.f {
            ensure!(
                m.len() == 1 || a.shape().last() == Some(&m.len()),
                "Requant: {} scales for {:?}",
                m.len(),
                a.shape()
            );
        }
        let mut out = unsafe { Tensor::uninitialized::<f32>(a.shape())? };
        {
            let mut yr = out.try_as_plain_ram_mut()?;
            let (a, b, y) = (f32_slice(a)?, f32_slice(b)?, yr.as_slice_mut::<f32>()?);
            let full = b.len() == a.len();
            // Bands hold whole pixels, so per-channel operands line up.
            let pixel = inputs[0].shape().last().copied().unwrap_or(1).max(1);
            in_bands(y, pixel, |start, y| {
                let a = &a[start..][..y.len()];
                let b = if full { &b[start..][..y.len()] } else { b };
                self.apply(a, b, y)
            });
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Requant {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == self.f.arity(), "Requant: wrong input count");
        for i in inputs {
            ensure!(
                i.datum_type == f32::datum_type(),
                "Requant: {i:?} is not f32"
            );
        }
        if let (Some(a), Some(b)) = (
            inputs[0].shape.as_concrete(),
            inputs[inputs.len() - 1].shape.as_concrete(),
        ) {
            ensure!(Self::fits(a, b), "Requant: {b:?} does not go with {a:?}");
        }
        Ok(tvec!(inputs[0].without_value()))
    }
}

/// MEAN over H and W of an NHWC int8 picture, requantized as XNNPACK does:
/// the stored integers (zero point included: `zn` = zero point x count)
/// summed exactly, converted to f32 once, times `m`, less `bias`, then
/// rounded half to even and clamped to `[lo, hi]`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantMean {
    pub zn: i64,
    pub m: f32,
    pub bias: f32,
    pub lo: i32,
    pub hi: i32,
}

impl Eq for QuantMean {}

impl std::hash::Hash for QuantMean {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.zn, self.lo, self.hi).hash(state);
    }
}

impl QuantMean {
    fn mean(&self, x: &[f32], [n, h, w, c]: [usize; 4], y: &mut [f32]) {
        let (lo, hi) = (self.lo as f32, self.hi as f32);
        let mut acc = vec![0i64; c];
        let mut part = vec![0f32; c];
        for b in 0..n {
            acc.iter_mut().for_each(|a| *a = 0);
            // f32 sums of integers are exact below 2^24: segments of at most
            // 65536 pixels of |v| <= 255 stay below, and vectorize; their
            // totals add up exactly in i64.
            for seg in x[b * h * w * c..][..h * w * c].chunks(c * 65536) {
                part.iter_mut().for_each(|p| *p = 0.0);
                match c {
                    // Exact: every lane's partial is an integer below 2^24.
                    3 => super::ops::sum_row_rgb(seg, None, &mut part),
                    8 => sum_pixels::<8>(seg, &mut part),
                    16 => sum_pixels::<16>(seg, &mut part),
                    32 => sum_pixels::<32>(seg, &mut part),
                    64 => sum_pixels::<64>(seg, &mut part),
                    128 => sum_pixels::<128>(seg, &mut part),
                    _ => {
                        for px in seg.chunks_exact(c) {
                            part.iter_mut().zip(px).for_each(|(p, &v)| *p += v);
                        }
                    }
                }
                for (a, &p) in acc.iter_mut().zip(&part) {
                    *a += p as i64;
                }
            }
            for (o, &s) in y[b * c..][..c].iter_mut().zip(&acc) {
                let raw = (s + self.zn) as f32;
                let v = raw * self.m - self.bias;
                *o = rne_small(clamp(v, lo, hi));
            }
        }
    }
}

/// Per-channel sums of `C`-channel pixels into `part`, with the channel
/// count known to the compiler so the pixel loop vectorizes.
#[inline(always)]
fn sum_pixels<const C: usize>(seg: &[f32], part: &mut [f32]) {
    let mut acc = [0f32; C];
    for px in seg.chunks_exact(C) {
        acc.iter_mut().zip(px).for_each(|(a, &v)| *a += v);
    }
    part[..C].copy_from_slice(&acc);
}

impl Op for QuantMean {
    fn name(&self) -> StaticName {
        "QuantMean".into()
    }

    op_as_typed_op!();
}

impl EvalOp for QuantMean {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let s = x.shape();
        ensure!(s.len() == 4, "QuantMean: input {s:?} (expected NHWC)");
        let (n, h, w, c) = (s[0], s[1], s[2], s[3]);
        let mut out = Tensor::zero::<f32>(&[n, 1, 1, c])?;
        {
            let mut yr = out.try_as_plain_ram_mut()?;
            self.mean(f32_slice(&x)?, [n, h, w, c], yr.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for QuantMean {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut fact = inputs[0].without_value();
        ensure!(
            fact.rank() == 4 && fact.datum_type == f32::datum_type(),
            "QuantMean: input {fact:?} (expected NHWC f32)"
        );
        fact.shape.set(1, 1.to_dim());
        fact.shape.set(2, 1.to_dim());
        Ok(tvec!(fact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: &dyn TypedOp, inputs: &[Tensor]) -> Vec<f32> {
        let out = op
            .eval_out_of_plan(inputs.iter().map(|t| t.clone().into_tvalue()).collect())
            .unwrap()
            .unwrap();
        f32_slice(&out[0]).unwrap().to_vec()
    }

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_shape(shape, v).unwrap()
    }

    #[test]
    fn rounding_is_half_to_even_and_clamped() {
        let op = Requant {
            zp: 0,
            f: QuantFn::Scale(vec![0.5]),
            lo: -128,
            hi: 127,
        };
        let x = [1.0, 3.0, 5.0, -1.0, -3.0, 7.0, 1000.0, -1000.0, 0.2];
        let got = run(&op, &[t(&[9], &x)]);
        assert_eq!(got, [0.0, 2.0, 2.0, -0.0, -2.0, 4.0, 127.0, -128.0, 0.0]);
        // The magic-number rounding is the library's on every representable
        // half in range.
        for i in -512..512 {
            let v = i as f32 * 0.25;
            assert_eq!(rne_small(v), v.round_ties_even(), "{v}");
        }
    }

    #[test]
    fn per_channel_scales_follow_the_last_axis() {
        let op = Requant {
            zp: 0,
            f: QuantFn::Scale(vec![1.0, 10.0]),
            lo: -128,
            hi: 127,
        };
        let got = run(&op, &[t(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0])]);
        assert_eq!(got, [1.0, 20.0, 3.0, 40.0]);
        // Short vectors are repeated to long runs, long ones are not: the
        // same integers as a plain per-element loop either way.
        for c in [3, 8, 16, 32, 64, 128, 200, 300] {
            let m: Vec<f32> = (0..c).map(|i| 0.013 * (i % 17) as f32 + 0.25).collect();
            let x: Vec<f32> = (0..7 * c)
                .map(|i| ((i * 37) % 511) as f32 - 255.0)
                .collect();
            let op = Requant {
                zp: 0,
                f: QuantFn::Scale(m.clone()),
                lo: -100,
                hi: 120,
            };
            let want: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &x)| (x * m[i % c]).round_ties_even().clamp(-100.0, 120.0))
                .collect();
            let got = run(&op, &[t(&[1, 1, 7, c], &x)]);
            assert_eq!(got, want, "{c} channels");
        }
    }

    #[test]
    fn multiply_broadcasts_a_per_channel_operand() {
        let op = Requant {
            zp: 0,
            f: QuantFn::Mul(0.5),
            lo: 0,
            hi: 127,
        };
        let a = t(&[1, 2, 1, 2], &[3.0, -4.0, 5.0, 6.0]);
        let b = t(&[1, 1, 1, 2], &[1.0, 3.0]);
        // 1.5 -> 2, -6 -> 0 (ReLU floor), 2.5 -> 2, 9 -> 9
        assert_eq!(run(&op, &[a, b]), [2.0, 0.0, 2.0, 9.0]);
    }

    #[test]
    fn fixed_point_add_floors_after_the_rounding_half() {
        // (a * 3 + b * -1 + 2) >> 2
        let op = Requant {
            zp: 0,
            f: QuantFn::Add {
                ma: 3,
                mb: -1,
                shift: 2,
            },
            lo: -10,
            hi: 10,
        };
        let a = t(&[4], &[1.0, -1.0, 100.0, 2.0]);
        let b = t(&[4], &[1.0, 0.0, 0.0, -1.0]);
        // 4>>2 = 1; -1>>2 = -1 (floor); 302>>2 = 75 -> 10; 9>>2 = 2
        assert_eq!(run(&op, &[a, b]), [1.0, -1.0, 10.0, 2.0]);
    }

    #[test]
    fn fixed_point_add_is_the_same_in_i32_and_i64() {
        // Multipliers of up to 21 bits, as the importer makes them, take
        // the i32 path; larger ones the i64 path. Both are the definition.
        let mut rng = fastrand::Rng::with_seed(5);
        let a: Vec<f32> = (0..4096).map(|_| rng.i32(-255..=255) as f32).collect();
        let b: Vec<f32> = (0..4096).map(|_| rng.i32(-255..=255) as f32).collect();
        assert!(Requant::fits_i32(2_097_151, -2_097_151, 1 << 29));
        assert!(!Requant::fits_i32(1 << 22, 1 << 22, 1 << 29));
        for (ma, mb, shift) in [
            (1_500_000, -1_048_577, 21),
            (2_097_151, 2_097_151, 30),
            (1 << 22, -(1 << 22) - 7, 30),
        ] {
            let op = Requant {
                zp: 0,
                f: QuantFn::Add { ma, mb, shift },
                lo: -1 << 30,
                hi: 1 << 30,
            };
            let got = run(&op, &[t(&[4096], &a), t(&[4096], &b)]);
            for i in 0..4096 {
                let want = (a[i] as i64 * ma + b[i] as i64 * mb + (1 << (shift - 1))) >> shift;
                assert_eq!(got[i], want as f32, "{} {} {ma} {mb}", a[i], b[i]);
            }
        }
    }

    #[test]
    fn squared_difference_then_scale() {
        let op = Requant {
            zp: 0,
            f: QuantFn::SqDiff {
                sa: 1.0,
                sb: 1.0,
                m: 2.0,
            },
            lo: -128,
            hi: 127,
        };
        let a = t(&[1, 1, 2, 2], &[1.0, 2.0, 3.5, 0.0]);
        let b = t(&[1, 1, 1, 2], &[0.5, 1.0]);
        // (0.5^2)*2 = 0.5 -> 0; (1)*2 = 2; (3^2)*2 = 18; (1)*2 = 2
        assert_eq!(run(&op, &[a.clone(), b.clone()]), [0.0, 2.0, 18.0, 2.0]);
        let op = Requant {
            zp: 0,
            f: QuantFn::SqDiff {
                sa: 0.5,
                sb: 2.0,
                m: 4.0,
            },
            lo: -128,
            hi: 127,
        };
        // d = 0.5-1 = -0.5 -> 1; 1-2 = -1 -> 4; 1.75-1 = 0.75 -> 2.25 -> 2; 0-2 -> 16
        assert_eq!(run(&op, &[a, b]), [1.0, 4.0, 2.0, 16.0]);
    }

    #[test]
    fn a_full_operand_of_another_shape_is_refused() {
        let op = Requant {
            zp: 0,
            f: QuantFn::Mul(1.0),
            lo: -128,
            hi: 127,
        };
        let a = t(&[1, 2, 2, 1], &[0.0; 4]);
        let b = t(&[1, 4, 1, 1], &[0.0; 4]);
        assert!(op
            .eval_out_of_plan(tvec!(a.into_tvalue(), b.into_tvalue()))
            .is_err());
    }

    #[test]
    fn two_threads_give_the_same_integers() {
        use tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};
        let mut rng = fastrand::Rng::with_seed(9);
        let shape = [1, 97, 89, 24];
        let n: usize = shape.iter().product();
        let a: Vec<f32> = (0..n).map(|_| rng.i32(-255..=255) as f32).collect();
        let full: Vec<f32> = (0..n).map(|_| rng.i32(-255..=255) as f32).collect();
        let per_channel: Vec<f32> = (0..24).map(|_| rng.i32(-255..=255) as f32).collect();
        let cases = [
            (QuantFn::Mul(0.013), t(&[1, 1, 1, 24], &per_channel)),
            (
                QuantFn::Add {
                    ma: 1_234_567,
                    mb: -987_654,
                    shift: 22,
                },
                t(&shape, &full),
            ),
        ];
        for (f, b) in cases {
            let op = Requant {
                zp: 0,
                f,
                lo: -100,
                hi: 90,
            };
            let inputs = [t(&shape, &a), b];
            let one = run(&op, &inputs);
            let two = multithread_tract_scope(Executor::multithread(2), || run(&op, &inputs));
            assert_eq!(one, two, "{:?}", op.f);
        }
    }

    #[test]
    fn mean_sums_exactly_past_f32_precision() {
        // 2^24 + 1 is not an f32: a float sum of 65794 values of 255 would
        // drift, the i32 sum does not.
        let (h, w) = (2, 32897);
        let x = vec![255f32; h * w];
        let op = QuantMean {
            zn: 1,
            m: 1.0 / 16_777_216.0,
            bias: 0.0,
            lo: -128,
            hi: 127,
        };
        let got = run(&op, &[t(&[1, h, w, 1], &x)]);
        let exact = (255 * h * w + 1) as f32 / 16_777_216.0;
        assert_eq!(got, [exact.round_ties_even()]);
    }

    #[test]
    fn mean_is_the_exact_integer_mean_for_every_channel_count() {
        // Long rows (more than one 65536-pixel segment) of random integers:
        // the result is the definition computed in i64.
        let mut rng = fastrand::Rng::with_seed(11);
        for c in [8, 16, 32, 64, 128, 5, 3] {
            let (h, w) = (2, 70_001);
            let x: Vec<f32> = (0..h * w * c).map(|_| rng.i32(-255..=255) as f32).collect();
            let op = QuantMean {
                zn: -3 * (h * w) as i64,
                m: 0.37 / (h * w) as f32,
                bias: 1.5,
                lo: -128,
                hi: 127,
            };
            let got = run(&op, &[t(&[1, h, w, c], &x)]);
            for (ch, &got) in got.iter().enumerate() {
                let s: i64 = x.iter().skip(ch).step_by(c).map(|&v| v as i64).sum();
                let v = (s + op.zn) as f32 * op.m - op.bias;
                assert_eq!(
                    got,
                    v.round_ties_even().clamp(-128.0, 127.0),
                    "c {c} ch {ch}"
                );
            }
        }
    }

    #[test]
    fn mean_subtracts_the_zero_point_share_after_scaling() {
        // channel 0: values 1,3 -> sum 4, + zn 2 = 6, * 0.5 = 3, - 0.5 = 2.5 -> 2
        // channel 1: values 2,4 -> sum 6, + 2 = 8, * 0.5 = 4, - 0.5 = 3.5 -> 4
        let op = QuantMean {
            zn: 2,
            m: 0.5,
            bias: 0.5,
            lo: -128,
            hi: 127,
        };
        let got = run(&op, &[t(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0])]);
        assert_eq!(got, [2.0, 4.0]);
    }
}
