//! NEON passes for armv7 through inline `asm!`: NEON intrinsics are not
//! stable on this target and LLVM does not vectorize f32 loops there (NEON
//! flushes denormals), so the portable requantization ran scalar VFP, a
//! quarter of a prediction (docs/armv7.md).

use std::arch::asm;

use crate::quant::{QuantFn, Requant};

/// [`Requant`] on NEON, 4 values a step, with the second operand whole, one
/// value, or per channel of a multiple of 4 channels: the function in the
/// portable pass's operations and order (no fused multiply-add), clamped to
/// `[lo, hi]`, rounded half to even by adding and removing 1.5 * 2^23 (as
/// the portable `rne_small`); `Add` in i32 as the portable pass's i32 path. The same
/// bits as the portable pass for every value but NaN: NEON flushes a
/// denormal to zero, which the rounding turns into +0.0 as it does the
/// denormal (lo <= 0 <= hi on the int8 grid; a clamp to a nonzero bound
/// gives that bound either way; no multiplier here turns a denormal into
/// 0.5). Returns `false`, writing nothing, for the rest (`Add` that needs
/// i64, other shapes), which the portable pass takes.
pub(crate) fn requant(r: &Requant, a: &[f32], b: &[f32], y: &mut [f32]) -> bool {
    let f = |v: f32| v.to_bits();
    let (lo, hi) = (f(r.lo as f32), f(r.hi as f32));
    let (body, b, k) = match &r.f {
        QuantFn::Scale(m) => (Body::Scale, m.as_slice(), [lo, hi, f(MAGIC), 0, 0, 0]),
        &QuantFn::Mul(m) => (Body::Mul, b, [lo, hi, f(MAGIC), f(m), 0, 0]),
        &QuantFn::SqDiff { sa, sb, m } => (Body::SqDiff, b, [lo, hi, f(MAGIC), f(m), f(sa), f(sb)]),
        &QuantFn::Add { ma, mb, shift } => {
            let half = 1i64 << (shift - 1);
            if !Requant::fits_i32(ma, mb, half) {
                return false;
            }
            // i32 lanes as bits; `vshl` by a negative count shifts right.
            let i = |v: i64| v as i32 as u32;
            (
                Body::Add,
                b,
                [lo, hi, i(-(shift as i64)), i(ma), i(mb), i(half)],
            )
        }
    };
    let (n, p) = (a.len(), b.len());
    if y.len() != n || p == 0 {
        return false;
    }
    let one = [b[0]; 4];
    let (b4, period, whole) = if p == 1 {
        (one.as_slice(), 4, n / 4 * 4)
    } else if p.is_multiple_of(4) && n.is_multiple_of(p) {
        (b, p, n)
    } else {
        return false;
    };
    let k = Consts { v: k };
    // SAFETY: `whole` values of `a` and `y`, a multiple of `period` (a
    // multiple of 4); `b4` holds `period` values.
    unsafe {
        stream(
            body,
            a.as_ptr(),
            b4.as_ptr(),
            period,
            whole,
            &k,
            y.as_mut_ptr(),
        )
    };
    // The last 1-3 values of a one-value operand.
    r.apply_portable(&a[whole..], b, &mut y[whole..]);
    true
}

/// 1.5 * 2^23: see `quant::rne_small`.
const MAGIC: f32 = 12_582_912.0;

/// Broadcast into q2..q7 by the loop, as bits: lo, hi (f32), then MAGIC,
/// m, sa, sb (f32), or for `Add` -shift, ma, mb, half (i32).
struct Consts {
    v: [u32; 6],
}

#[derive(Clone, Copy)]
enum Body {
    Scale,
    Mul,
    SqDiff,
    Add,
}

/// The loop around a function of `q0` (from `a`) and `q1` (from `b`, rewound
/// every `period` values) leaving its result in `q0`, stored. Constants:
/// see [`Consts`].
macro_rules! stream_asm {
    ($a:ident, $b:ident, $p:ident, $n:ident, $k:ident, $y:ident, $($body:literal),+) => {
        asm!(
            // NEON for this block whatever the build's features (the
            // table runs it only where the CPU reports NEON).
            ".fpu neon",
            "vld1.32 {{d4[], d5[]}}, [{k}]!",
            "vld1.32 {{d6[], d7[]}}, [{k}]!",
            "vld1.32 {{d8[], d9[]}}, [{k}]!",
            "vld1.32 {{d10[], d11[]}}, [{k}]!",
            "vld1.32 {{d12[], d13[]}}, [{k}]!",
            "vld1.32 {{d14[], d15[]}}, [{k}]",
            "2:",
            "mov {bp}, {b}",
            "mov {left}, {p}",
            "3:",
            "vld1.32 {{d0, d1}}, [{a}]!",
            "vld1.32 {{d2, d3}}, [{bp}]!",
            $($body,)+
            "vst1.32 {{d0, d1}}, [{y}]!",
            "subs {left}, {left}, #4",
            "bne 3b",
            "subs {n}, {n}, {p}",
            "bne 2b",
            a = inout(reg) $a => _,
            y = inout(reg) $y => _,
            n = inout(reg) $n => _,
            k = inout(reg) $k => _,
            b = in(reg) $b,
            p = in(reg) $p,
            bp = out(reg) _,
            left = out(reg) _,
            // q0-q7 as d registers, which exist in every VFP build (d16-d31
            // need NEON or VFP-D32); d8-d15 are callee-saved, which the
            // compiler handles for a clobber.
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
            options(nostack),
        )
    };
}

/// `y[i] = rne(clamp(f(a[i], b[i % period]), lo, hi))` for `n` values.
///
/// # Safety
/// `n` readable values at `a`, writable at `y`; `period` readable at `b`;
/// `period` a multiple of 4, `n` a multiple of `period`.
unsafe fn stream(
    body: Body,
    a: *const f32,
    b: *const f32,
    period: usize,
    n: usize,
    k: &Consts,
    y: *mut f32,
) {
    if n == 0 {
        return;
    }
    let k = k.v.as_ptr();
    // SAFETY: the loop reads `n` values from `a` and writes `n` to `y`, 4
    // a step; `b` is read 4 at a time and rewound every `period` values, so
    // it stays within them; `k` is 6 values. Only the named registers are
    // written.
    unsafe {
        match body {
            Body::Scale => stream_asm!(
                a,
                b,
                period,
                n,
                k,
                y,
                "vmul.f32 q0, q0, q1",
                "vmax.f32 q0, q0, q2",
                "vmin.f32 q0, q0, q3",
                "vadd.f32 q0, q0, q4",
                "vsub.f32 q0, q0, q4"
            ),
            Body::Mul => stream_asm!(
                a,
                b,
                period,
                n,
                k,
                y,
                "vmul.f32 q0, q0, q1",
                "vmul.f32 q0, q0, q5",
                "vmax.f32 q0, q0, q2",
                "vmin.f32 q0, q0, q3",
                "vadd.f32 q0, q0, q4",
                "vsub.f32 q0, q0, q4"
            ),
            // d = a * sa - b * sb, then (d * d) * m: separate roundings, as
            // the portable pass.
            Body::SqDiff => stream_asm!(
                a,
                b,
                period,
                n,
                k,
                y,
                "vmul.f32 q0, q0, q6",
                "vmul.f32 q1, q1, q7",
                "vsub.f32 q0, q0, q1",
                "vmul.f32 q0, q0, q0",
                "vmul.f32 q0, q0, q5",
                "vmax.f32 q0, q0, q2",
                "vmin.f32 q0, q0, q3",
                "vadd.f32 q0, q0, q4",
                "vsub.f32 q0, q0, q4"
            ),
            // `(a as i32 * ma + b as i32 * mb + half) >> shift` (`vcvt`
            // truncates and saturates as `as i32` does; i32 lanes wrap as
            // release builds do, and `fits_i32` rules overflow out for
            // int8 operands), then to f32 (round to nearest, as `as f32`)
            // and clamped: an integer already, no rounding step.
            Body::Add => stream_asm!(
                a,
                b,
                period,
                n,
                k,
                y,
                "vcvt.s32.f32 q0, q0",
                "vcvt.s32.f32 q1, q1",
                "vmul.i32 q0, q0, q5",
                "vmla.i32 q0, q1, q6",
                "vadd.i32 q0, q0, q7",
                "vshl.s32 q0, q0, q4",
                "vcvt.f32.s32 q0, q0",
                "vmax.f32 q0, q0, q2",
                "vmin.f32 q0, q0, q3"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requant(f: QuantFn, lo: i32, hi: i32) -> Requant {
        Requant { f, lo, hi, zp: 0 }
    }

    /// Accumulators across the i32 range, int8 values, halves (ties to
    /// even), tiny values, zeros of both signs, infinities and denormals.
    fn values(n: usize, rng: &mut fastrand::Rng) -> Vec<f32> {
        let mut a: Vec<f32> = (0..n)
            .map(|i| match i % 6 {
                0 => rng.i32(-300_000..300_000) as f32,
                1 => rng.i32(-400..400) as f32 + 0.5,
                2 => (rng.f32() - 0.5) * 1e-3,
                3 => rng.i32(-128..128) as f32,
                _ => rng.i32(i32::MIN..i32::MAX) as f32,
            })
            .collect();
        a[..6].copy_from_slice(&[0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -1e-40]);
        a
    }

    /// Bit for bit the portable pass: each function, with the second
    /// operand one value (and a 1-3 value tail), per channel (4 and 24
    /// channels) and whole.
    #[test]
    fn neon_requant_is_the_portable_pass_bit_for_bit() {
        let mut rng = fastrand::Rng::with_seed(9);
        let a = values(4096, &mut rng);
        let b: Vec<f32> = (0..4096).map(|_| rng.i32(-128..128) as f32).collect();
        let ch: Vec<f32> = (0..24).map(|_| rng.f32() * 0.01 + 1e-6).collect();
        let sq = |m| QuantFn::SqDiff {
            sa: 0.0213,
            sb: 0.0187,
            m,
        };
        // function, second operand, values, (lo, hi)
        type Case<'a> = (QuantFn, &'a [f32], usize, (i32, i32));
        let cases: Vec<Case> = vec![
            (QuantFn::Scale(vec![0.0031]), &[], 4093, (-128, 127)),
            (QuantFn::Scale(vec![1.0]), &[], 4095, (0, 255)),
            (QuantFn::Scale(ch.clone()), &[], 4080, (-100, 27)),
            (QuantFn::Scale(ch[..4].to_vec()), &[], 4096, (-128, 127)),
            (QuantFn::Mul(0.0007), &b[..1], 4095, (-128, 127)),
            (QuantFn::Mul(0.0007), &b[..24], 4080, (-128, 127)),
            (QuantFn::Mul(0.0007), &b, 4096, (-20, 127)),
            (sq(3.7), &b[..1], 4094, (-128, 127)),
            (sq(3.7), &b[..8], 4096, (-128, 127)),
            (sq(3.7), &b, 4096, (0, 255)),
        ];
        // Add's operands are int8 values less a zero point (|v| <= 255).
        let small: Vec<f32> = (0..4096).map(|_| rng.i32(-255..=255) as f32).collect();
        let add = |shift| QuantFn::Add {
            ma: 1_234_567,
            mb: -987_654,
            shift,
        };
        let adds: Vec<Case> = vec![
            (add(20), &b[..1], 4093, (-128, 127)),
            (add(21), &b[..12], 4092, (-30, 100)),
            (add(21), &b, 4096, (-128, 127)),
        ];
        let all = (cases.into_iter().map(|c| (c, &a[..])))
            .chain(adds.into_iter().map(|c| (c, &small[..])));
        for ((f, b, n, (lo, hi)), a) in all {
            let r = requant(f, lo, hi);
            let b = if b.len() == 4096 { &b[..n] } else { b };
            let (mut want, mut got) = (vec![0f32; n], vec![7f32; n]);
            r.apply_portable(&a[..n], b, &mut want);
            assert!(super::requant(&r, &a[..n], b, &mut got), "{r:?}");
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{r:?}");
            assert!(want.contains(&(hi as f32)) && want.iter().any(|&v| v != 0.0));
        }
    }

    #[test]
    fn shapes_it_does_not_take_are_left_to_the_portable_pass() {
        let mut y = [0f32; 6];
        let scale3 = requant(QuantFn::Scale(vec![1.0; 3]), -1, 1);
        assert!(!super::requant(&scale3, &[1.0; 6], &[], &mut y));
        // Sums that need i64.
        let add = QuantFn::Add {
            ma: 1 << 30,
            mb: 1,
            shift: 1,
        };
        assert!(!super::requant(
            &requant(add, -1, 1),
            &[1.0; 6],
            &[1.0],
            &mut y
        ));
        let mul = requant(QuantFn::Mul(1.0), -1, 1);
        assert!(!super::requant(&mul, &[1.0; 6], &[1.0; 3], &mut y));
        assert_eq!(y, [0.0; 6]);
    }
}
