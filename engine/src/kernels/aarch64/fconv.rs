//! NEON kernels for the f32 direct convolution ([`crate::conv::DirectConv`]),
//! same contract and packing as the portable `conv::baseline::row`.
//!
//! Broadcast layout (blocks of 8/16/32 output channels): a tile keeps the
//! accumulators of `P` pixels x the block's channels in registers. Along each
//! kernel row, a pixel's `kw * cin` contiguous inputs are loaded 4 at a time
//! as one vector, and each lane multiplies one tap's weights (the block's
//! channels, loaded once per tap for all `P` pixels) with a by-element
//! `fmla`: no broadcast or register copy per multiply-add.
//!
//! Dot layout (fewer than 8 outputs, e.g. the last 9x9 8 -> 3 layer): per
//! pixel and output channel one accumulator along the contiguous run, plain
//! `fmla`, summed across lanes at the end.
//!
//! A run whose length is not a multiple of 4 ends with a load of its last 4
//! values (never past the run): only the lanes not yet counted are used.

// The kernels index accumulators, pixels and weights by the same counter.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;

use crate::conv::{Geo, Packed};

/// Pixels per tile for 8/16/32-channel blocks (2/4/8 vectors): the most
/// whose accumulators (`P * vectors`), inputs (`P`) and one group of weight
/// vectors fit the 32 registers without spilling.
const P8: usize = 8;
const P16: usize = 5;
const P32: usize = 3;
/// Pixels per tile of the dot kernel (3 channels each, 12 accumulators).
const PDOT: usize = 4;
/// Output channels per pass of the dot kernel (the packing pads `cout` to
/// a multiple of 3 for it).
const DOT_GROUP: usize = 3;

/// One output row: `x` starts at the row's first input row, `out` holds the
/// row's `ow * cout` values.
///
/// # Safety
/// Only sound with NEON (always there on aarch64). Bounds are checked here.
pub(crate) unsafe fn row(g: &Geo, p: &Packed, bias: &[f32], x: &[f32], out: &mut [f32]) {
    // The kernels read through raw pointers; these bounds make them sound.
    assert!(g.ow > 0 && g.row > 0 && g.kh > 0);
    assert!(x.len() >= (g.kh - 1) * g.in_row + (g.ow - 1) * g.px + g.row);
    assert!(out.len() >= g.ow * g.cout);
    // SAFETY (for the calls below): the asserts above bound every input and
    // output access; the packed weights' sizes are checked per layout.
    unsafe {
        match p {
            Packed::Broadcast { cb, w, bias } => {
                assert!(w.len() >= g.cout.div_ceil(*cb) * g.kh * g.row * cb);
                assert!(bias.len() >= g.cout.div_ceil(*cb) * cb);
                match cb {
                    8 => broadcast::<2, P8>(g, w, bias, x, out),
                    16 => broadcast::<4, P16>(g, w, bias, x, out),
                    _ => broadcast::<8, P32>(g, w, bias, x, out),
                }
            }
            Packed::Dot { run, w } => {
                assert!(*run >= g.row.next_multiple_of(4) && g.row >= 4);
                assert!(w.len() >= g.cout.next_multiple_of(DOT_GROUP) * g.kh * run);
                assert!(bias.len() >= g.cout);
                dot(g, *run, w, bias, x, out)
            }
        }
    }
}

/// Every block of `4 * NV` output channels: tiles of `P` pixels, then
/// smaller tiles for the pixels left.
///
/// # Safety
/// The bounds asserted by [`row`].
// Not inlined: one symbol per block size in profiles, one call per row.
#[inline(never)]
unsafe fn broadcast<const NV: usize, const P: usize>(
    g: &Geo,
    w: &[f32],
    bias: &[f32],
    x: &[f32],
    out: &mut [f32],
) {
    let cb = 4 * NV;
    let taps = g.kh * g.row;
    let blocks = g.cout.div_ceil(cb);
    for blk in 0..blocks {
        // SAFETY: `row` checked `blocks` blocks of weights and biases, the
        // input and the output; tiles stay within `ow` pixels.
        unsafe {
            let wb = w.as_ptr().add(blk * taps * cb);
            let b: [float32x4_t; NV] =
                std::array::from_fn(|v| vld1q_f32(bias.as_ptr().add(blk * cb + 4 * v)));
            let t = Tile {
                g,
                w: wb,
                x: x.as_ptr(),
                out: out.as_mut_ptr(),
                c0: blk * cb,
            };
            let mut ox = 0;
            while ox + P <= g.ow {
                t.run::<NV, P>(&b, ox);
                ox += P;
            }
            while ox + 3 <= g.ow {
                t.run::<NV, 3>(&b, ox);
                ox += 3;
            }
            match g.ow - ox {
                1 => t.run::<NV, 1>(&b, ox),
                2 => t.run::<NV, 2>(&b, ox),
                _ => {}
            }
        }
    }
}

/// One block of output channels of one output row.
struct Tile<'a> {
    g: &'a Geo,
    /// The block's weights, `[kh][kw * cin][4 * NV]`.
    w: *const f32,
    /// The first input row.
    x: *const f32,
    out: *mut f32,
    /// The block's first output channel.
    c0: usize,
}

impl Tile<'_> {
    /// Pixels `ox..ox + P` of the block.
    ///
    /// # Safety
    /// The bounds asserted by [`row`], `ox + P <= ow`.
    #[inline(always)]
    unsafe fn run<const NV: usize, const P: usize>(&self, bias: &[float32x4_t; NV], ox: usize) {
        let g = self.g;
        let cb = 4 * NV;
        let mut acc = [*bias; P];
        // SAFETY: inputs read are `ky * in_row + (ox + p) * px + j` with
        // `j < row`, all within the bound `row` asserted; weights are read
        // within the block's `kh * row * cb`.
        unsafe {
            for ky in 0..g.kh {
                let xr = self.x.add(ky * g.in_row + ox * g.px);
                let mut wr = self.w.add(ky * g.row * cb);
                // One pointer per pixel, each bumped by post-indexed loads.
                // Left to itself, the compiler sees that they are `px`
                // apart and rebuilds each from the previous one (an add per
                // load): `opaque` hides that.
                let mut xp: [*const f32; P] = std::array::from_fn(|p| opaque(xr.add(p * g.px)));
                let mut j = 0;
                while j + 4 <= g.row {
                    let xv: [float32x4_t; P] = std::array::from_fn(|p| {
                        let v = vld1q_f32(xp[p]);
                        xp[p] = xp[p].add(4);
                        v
                    });
                    lane::<NV, P, 0>(&mut acc, &xv, wr);
                    lane::<NV, P, 1>(&mut acc, &xv, wr.add(cb));
                    lane::<NV, P, 2>(&mut acc, &xv, wr.add(2 * cb));
                    lane::<NV, P, 3>(&mut acc, &xv, wr.add(3 * cb));
                    wr = wr.add(4 * cb);
                    j += 4;
                }
                let left = g.row - j;
                if left == 0 {
                    continue;
                }
                if g.row >= 4 {
                    // The run's last 4 values; the first `4 - left` lanes
                    // were counted above.
                    let xv: [float32x4_t; P] =
                        std::array::from_fn(|p| vld1q_f32(xr.add(p * g.px + g.row - 4)));
                    match left {
                        1 => lane::<NV, P, 3>(&mut acc, &xv, wr),
                        2 => {
                            lane::<NV, P, 2>(&mut acc, &xv, wr);
                            lane::<NV, P, 3>(&mut acc, &xv, wr.add(cb));
                        }
                        _ => {
                            lane::<NV, P, 1>(&mut acc, &xv, wr);
                            lane::<NV, P, 2>(&mut acc, &xv, wr.add(cb));
                            lane::<NV, P, 3>(&mut acc, &xv, wr.add(2 * cb));
                        }
                    }
                } else {
                    // Runs shorter than a vector (1x1 or 1xk on 1-3 channels).
                    for jj in j..g.row {
                        let xv: [float32x4_t; P] =
                            std::array::from_fn(|p| vld1q_dup_f32(xr.add(p * g.px + jj)));
                        lane::<NV, P, 0>(&mut acc, &xv, wr.add((jj - j) * cb));
                    }
                }
            }
            self.store::<NV, P>(&acc, ox);
        }
    }

    /// Clamps and stores the accumulators: whole vectors, then the block's
    /// last channels below `cout` (the packing pads blocks with zeros).
    ///
    /// # Safety
    /// `ox + P <= ow`, the output holds `ow * cout` values.
    #[inline(always)]
    unsafe fn store<const NV: usize, const P: usize>(
        &self,
        acc: &[[float32x4_t; NV]; P],
        ox: usize,
    ) {
        let g = self.g;
        let n = (4 * NV).min(g.cout - self.c0);
        // SAFETY: writes `(ox + p) * cout + c0 + i` with `c0 + i < cout`.
        unsafe {
            let (lo, hi) = (vdupq_n_f32(g.lo), vdupq_n_f32(g.hi));
            for p in 0..P {
                let o = self.out.add((ox + p) * g.cout + self.c0);
                for v in 0..NV {
                    let c = vminnmq_f32(vmaxnmq_f32(acc[p][v], lo), hi);
                    if 4 * v + 4 <= n {
                        vst1q_f32(o.add(4 * v), c);
                    } else if 4 * v < n {
                        let mut t = [0f32; 4];
                        vst1q_f32(t.as_mut_ptr(), c);
                        std::ptr::copy_nonoverlapping(t.as_ptr(), o.add(4 * v), n - 4 * v);
                    }
                }
            }
        }
    }
}

/// `acc[p] += weights(tap) * lane L of xv[p]`, the tap's `4 * NV` weights
/// at `w`, loaded once for the `P` pixels (4 vectors at a time, so that the
/// accumulators keep their registers).
///
/// # Safety
/// `w` points to `4 * NV` readable values.
#[inline(always)]
unsafe fn lane<const NV: usize, const P: usize, const L: i32>(
    acc: &mut [[float32x4_t; NV]; P],
    xv: &[float32x4_t; P],
    w: *const f32,
) {
    // SAFETY: reads `w[..4 * NV]` (the caller's bound).
    unsafe {
        if NV == 2 {
            let wv = vld1q_f32_x2(w);
            for p in 0..P {
                acc[p][0] = vfmaq_laneq_f32::<L>(acc[p][0], wv.0, xv[p]);
                acc[p][1] = vfmaq_laneq_f32::<L>(acc[p][1], wv.1, xv[p]);
            }
        } else {
            for q in 0..NV / 4 {
                let wv = vld1q_f32_x4(w.add(16 * q));
                let wv = [wv.0, wv.1, wv.2, wv.3];
                for (i, wv) in wv.iter().enumerate() {
                    for p in 0..P {
                        acc[p][4 * q + i] = vfmaq_laneq_f32::<L>(acc[p][4 * q + i], *wv, xv[p]);
                    }
                }
            }
        }
    }
}

/// One output row of the dot layout: the geometry, the packed weights
/// (`run` values per kernel row and channel), the bias and the row's input.
#[derive(Clone, Copy)]
struct DotRow<'a> {
    g: &'a Geo,
    run: usize,
    w: &'a [f32],
    bias: &'a [f32],
    x: &'a [f32],
}

/// Few output channels: groups of [`DOT_GROUP`] channels, tiles of [`PDOT`]
/// pixels, then single pixels.
///
/// # Safety
/// The bounds asserted by [`row`].
#[inline(never)]
unsafe fn dot(g: &Geo, run: usize, w: &[f32], bias: &[f32], x: &[f32], out: &mut [f32]) {
    let d = DotRow { g, run, w, bias, x };
    let mut c0 = 0;
    while c0 < g.cout {
        let mut ox = 0;
        // SAFETY: within the bounds `row` asserted, `ox + P <= ow`.
        unsafe {
            if g.row.is_multiple_of(8) {
                while ox + 6 <= g.ow {
                    dot_tile6(&d, ox, c0, out);
                    ox += 6;
                }
            }
            while ox + PDOT <= g.ow {
                dot_tile::<PDOT>(&d, ox, c0, out);
                ox += PDOT;
            }
            while ox < g.ow {
                dot_tile::<1>(&d, ox, c0, out);
                ox += 1;
            }
        }
        c0 += DOT_GROUP;
    }
}

/// Channels `c0..c0 + DOT_GROUP` of pixels `ox..ox + P`: dot products of
/// each kernel row's run with the packed kernel rows, 8 then 4 values at a
/// time, then the last `row % 4` values.
///
/// # Safety
/// The bounds asserted by [`row`], `ox + P <= ow`.
#[inline(always)]
unsafe fn dot_tile<const P: usize>(d: &DotRow, ox: usize, c0: usize, out: &mut [f32]) {
    let DotRow { g, run, w, bias, x } = *d;
    // SAFETY: NEON is in every aarch64 CPU (the target's baseline).
    let mut acc = [[unsafe { vdupq_n_f32(0.0) }; DOT_GROUP]; P];
    let ws = g.kh * run;
    // SAFETY: inputs read within `ky * in_row + (ox + p) * px + [0, row)`;
    // weights within `DOT_GROUP` channels of `kh * run` (the packing pads
    // `cout` to a multiple of DOT_GROUP and each run with zeros).
    unsafe {
        for ky in 0..g.kh {
            let xr = x.as_ptr().add(ky * g.in_row + ox * g.px);
            let wr = w.as_ptr().add((c0 * g.kh + ky) * run);
            // One pointer per pixel and per channel, bumped by
            // post-indexed loads (see `Tile::run`).
            let mut xp: [*const f32; P] = std::array::from_fn(|p| opaque(xr.add(p * g.px)));
            let mut wp: [*const f32; DOT_GROUP] = std::array::from_fn(|c| opaque(wr.add(c * ws)));
            let mut j = 0;
            while j + 8 <= g.row {
                let xv: [float32x4x2_t; P] = std::array::from_fn(|p| {
                    let v = vld1q_f32_x2(xp[p]);
                    xp[p] = xp[p].add(8);
                    v
                });
                for c in 0..DOT_GROUP {
                    let wv = vld1q_f32_x2(wp[c]);
                    wp[c] = wp[c].add(8);
                    for p in 0..P {
                        acc[p][c] = vfmaq_f32(acc[p][c], xv[p].0, wv.0);
                        acc[p][c] = vfmaq_f32(acc[p][c], xv[p].1, wv.1);
                    }
                }
                j += 8;
            }
            if j + 4 <= g.row {
                let xv: [float32x4_t; P] = std::array::from_fn(|p| vld1q_f32(xr.add(p * g.px + j)));
                dot_step(&mut acc, &xv, wr.add(j), ws);
                j += 4;
            }
            // The last `left` values: the run's last 4 shifted down to
            // lanes 0.., zeros above, against the weights at `j` (zero
            // past `row`).
            let zero = vdupq_n_f32(0.0);
            let shift = |v: float32x4_t| match g.row - j {
                1 => vextq_f32::<3>(v, zero),
                2 => vextq_f32::<2>(v, zero),
                _ => vextq_f32::<1>(v, zero),
            };
            if j < g.row {
                let xv: [float32x4_t; P] =
                    std::array::from_fn(|p| shift(vld1q_f32(xr.add(p * g.px + g.row - 4))));
                dot_step(&mut acc, &xv, wr.add(j), ws);
            }
        }
    }
    // SAFETY: the caller's bounds.
    unsafe { dot_finish(g, &acc, bias, ox, c0, out) };
}

/// Sums each accumulator's lanes, adds the bias, clamps and stores the
/// group's channels below `cout` for the `P` pixels.
///
/// # Safety
/// `ox + P <= ow`; `bias` holds `cout` values.
#[inline(always)]
unsafe fn dot_finish<const P: usize>(
    g: &Geo,
    acc: &[[float32x4_t; DOT_GROUP]; P],
    bias: &[f32],
    ox: usize,
    c0: usize,
    out: &mut [f32],
) {
    let n = (g.cout - c0).min(DOT_GROUP);
    if n == DOT_GROUP {
        // SAFETY: `bias` holds `cout >= c0 + 3` values; the caller's bounds.
        unsafe { dot_store(g, acc, bias[c0..c0 + DOT_GROUP].as_ptr(), ox, c0, out) };
        return;
    }
    for p in 0..P {
        for c in 0..n {
            // SAFETY: plain NEON arithmetic.
            let s = unsafe { vaddvq_f32(acc[p][c]) } + bias[c0 + c];
            out[(ox + p) * g.cout + c0 + c] = s.max(g.lo).min(g.hi);
        }
    }
}

/// [`dot_tile`] for 6 pixels when each kernel row's run is whole 8-value
/// steps (the transfer network's last layer: 9 x 8 values), as one `asm!`
/// block: 18 accumulators, 12 input and 2 weight registers; per step 9
/// paired loads and 36 `fmla`, per kernel row 11 instructions of pointer
/// set-up. The same Rust with 4 pixels took 34 instructions a step for 24
/// `fmla` (the compiler rebuilt pointers with an `add` per load) and ~55
/// per kernel row: 118 M of an f16 transfer at 384x384 on a Cortex-A72
/// (arm-cost); 6 pixels do not fit the registers without spilling there.
/// Each accumulator takes the same fused products in the same order as in
/// [`dot_tile`], so the sums are the same bits.
///
/// # Safety
/// The bounds asserted by [`row`], `ox + 6 <= ow`, `row % 8 == 0`.
#[inline(always)]
unsafe fn dot_tile6(d: &DotRow, ox: usize, c0: usize, out: &mut [f32]) {
    let DotRow { g, run, w, bias, x } = *d;
    const F: usize = std::mem::size_of::<f32>();
    debug_assert!(g.row.is_multiple_of(8) && ox + 6 <= g.ow);
    // SAFETY: NEON is in every aarch64 CPU (the target's baseline).
    let mut a = [unsafe { vdupq_n_f32(0.0) }; 18];
    // SAFETY: the block reads, for each kernel row `ky < kh`, pixel `p`'s
    // `row` values at `x + ky * in_row + (ox + p) * px` (within the bound
    // `row` asserted) and channel `c0 + c`'s `row` weights at
    // `w + (c0 + c) * kh * run + ky * run` (the packing pads `cout` to a
    // multiple of 3 and keeps `run >= row`); `row / 8 >= 1` steps and
    // `kh >= 1` (asserted by `row`). It writes only the named registers.
    unsafe {
        std::arch::asm!(
            "2:",
            "mov {x0}, {xb}",
            "add {x1}, {x0}, {px}",
            "add {x2}, {x1}, {px}",
            "add {x3}, {x2}, {px}",
            "add {x4}, {x3}, {px}",
            "add {x5}, {x4}, {px}",
            "mov {w0}, {wb}",
            "add {w1}, {w0}, {ws}",
            "add {w2}, {w1}, {ws}",
            "mov {n}, {steps}",
            "3:",
            "ldp q18, q19, [{x0}], #32",
            "ldp q20, q21, [{x1}], #32",
            "ldp q22, q23, [{x2}], #32",
            "ldp q24, q25, [{x3}], #32",
            "ldp q26, q27, [{x4}], #32",
            "ldp q28, q29, [{x5}], #32",
            "ldp q30, q31, [{w0}], #32",
            "fmla v0.4s, v18.4s, v30.4s",
            "fmla v3.4s, v20.4s, v30.4s",
            "fmla v6.4s, v22.4s, v30.4s",
            "fmla v9.4s, v24.4s, v30.4s",
            "fmla v12.4s, v26.4s, v30.4s",
            "fmla v15.4s, v28.4s, v30.4s",
            "fmla v0.4s, v19.4s, v31.4s",
            "fmla v3.4s, v21.4s, v31.4s",
            "fmla v6.4s, v23.4s, v31.4s",
            "fmla v9.4s, v25.4s, v31.4s",
            "fmla v12.4s, v27.4s, v31.4s",
            "fmla v15.4s, v29.4s, v31.4s",
            "ldp q30, q31, [{w1}], #32",
            "fmla v1.4s, v18.4s, v30.4s",
            "fmla v4.4s, v20.4s, v30.4s",
            "fmla v7.4s, v22.4s, v30.4s",
            "fmla v10.4s, v24.4s, v30.4s",
            "fmla v13.4s, v26.4s, v30.4s",
            "fmla v16.4s, v28.4s, v30.4s",
            "fmla v1.4s, v19.4s, v31.4s",
            "fmla v4.4s, v21.4s, v31.4s",
            "fmla v7.4s, v23.4s, v31.4s",
            "fmla v10.4s, v25.4s, v31.4s",
            "fmla v13.4s, v27.4s, v31.4s",
            "fmla v16.4s, v29.4s, v31.4s",
            "ldp q30, q31, [{w2}], #32",
            "fmla v2.4s, v18.4s, v30.4s",
            "fmla v5.4s, v20.4s, v30.4s",
            "fmla v8.4s, v22.4s, v30.4s",
            "fmla v11.4s, v24.4s, v30.4s",
            "fmla v14.4s, v26.4s, v30.4s",
            "fmla v17.4s, v28.4s, v30.4s",
            "fmla v2.4s, v19.4s, v31.4s",
            "fmla v5.4s, v21.4s, v31.4s",
            "fmla v8.4s, v23.4s, v31.4s",
            "fmla v11.4s, v25.4s, v31.4s",
            "fmla v14.4s, v27.4s, v31.4s",
            "fmla v17.4s, v29.4s, v31.4s",
            "subs {n}, {n}, #1",
            "b.ne 3b",
            "add {xb}, {xb}, {in_row}",
            "add {wb}, {wb}, {run}",
            "subs {kh}, {kh}, #1",
            "b.ne 2b",
            xb = inout(reg) x.as_ptr().add(ox * g.px) => _,
            wb = inout(reg) w.as_ptr().add(c0 * g.kh * run) => _,
            kh = inout(reg) g.kh => _,
            px = in(reg) g.px * F,
            ws = in(reg) g.kh * run * F,
            in_row = in(reg) g.in_row * F,
            run = in(reg) run * F,
            steps = in(reg) g.row / 8,
            x0 = out(reg) _, x1 = out(reg) _, x2 = out(reg) _,
            x3 = out(reg) _, x4 = out(reg) _, x5 = out(reg) _,
            w0 = out(reg) _, w1 = out(reg) _, w2 = out(reg) _,
            n = out(reg) _,
            inout("v0") a[0], inout("v1") a[1], inout("v2") a[2], inout("v3") a[3], inout("v4") a[4], inout("v5") a[5], inout("v6") a[6], inout("v7") a[7], inout("v8") a[8], inout("v9") a[9], inout("v10") a[10], inout("v11") a[11], inout("v12") a[12], inout("v13") a[13], inout("v14") a[14], inout("v15") a[15], inout("v16") a[16], inout("v17") a[17],
            out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _, out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nostack, readonly),
        );
    }
    let acc: [[float32x4_t; DOT_GROUP]; 6] =
        std::array::from_fn(|p| [a[3 * p], a[3 * p + 1], a[3 * p + 2]]);
    // SAFETY: the caller's bounds.
    unsafe { dot_finish(g, &acc, bias, ox, c0, out) };
}

/// A whole group's sums, bias and clamp, 3 values stored per pixel: the
/// lanes summed as `vaddvq_f32` sums them ((0 + 1) + (2 + 3)), so the
/// result is the scalar path's, bit for bit.
///
/// # Safety
/// 3 bias values at `bias`; `ox + P <= ow`, `c0 + 3 <= cout`.
#[inline(always)]
unsafe fn dot_store<const P: usize>(
    g: &Geo,
    acc: &[[float32x4_t; DOT_GROUP]; P],
    bias: *const f32,
    ox: usize,
    c0: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller's bounds: 3 bias values, 3 outputs per pixel.
    unsafe {
        let b = [*bias, *bias.add(1), *bias.add(2), 0.0];
        let b = vld1q_f32(b.as_ptr());
        let (lo, hi) = (vdupq_n_f32(g.lo), vdupq_n_f32(g.hi));
        for p in 0..P {
            let [a0, a1, a2] = acc[p];
            let s = vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a2));
            // `fmaxnm`/`fminnm`: `f32::max`/`min` (a NaN sum gives the bound).
            let v = vminnmq_f32(vmaxnmq_f32(vaddq_f32(s, b), lo), hi);
            let y = out.as_mut_ptr().add((ox + p) * g.cout + c0);
            vst1_f32(y, vget_low_f32(v));
            vst1q_lane_f32::<2>(y.add(2), v);
        }
    }
}

/// `acc[p][c] += xv[p] * w[c]`, channel `c`'s 4 weights at `w + c * ws`.
///
/// # Safety
/// `w + c * ws` points to 4 readable values for each channel.
#[inline(always)]
unsafe fn dot_step<const P: usize>(
    acc: &mut [[float32x4_t; DOT_GROUP]; P],
    xv: &[float32x4_t; P],
    w: *const f32,
    ws: usize,
) {
    for c in 0..DOT_GROUP {
        // SAFETY: the caller's bound.
        let wv = unsafe { vld1q_f32(w.add(c * ws)) };
        for p in 0..P {
            // SAFETY: NEON is in every aarch64 CPU (the target's baseline).
            acc[p][c] = unsafe { vfmaq_f32(acc[p][c], xv[p], wv) };
        }
    }
}

/// `p` unchanged, but where it comes from hidden from the optimizer (an
/// empty `asm!` block): pointers that stay independent registers.
#[inline(always)]
// The block neither reads nor writes through `p`: `nomem` is right.
#[allow(clippy::pointers_in_nomem_asm_block)]
fn opaque(mut p: *const f32) -> *const f32 {
    // SAFETY: the block is empty; it reads and writes nothing but `p`'s
    // register, which it leaves as it is.
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) p, options(pure, nomem, nostack, preserves_flags))
    };
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The assembly tile gives the intrinsics tile's sums bit for bit (same
    /// fused products in the same order), for runs of 1 to 5 steps, several
    /// kernel rows, strided pixels and a group past `cout`.
    #[test]
    fn the_asm_dot_tile_is_the_intrinsics_tile_bit_for_bit() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut rand = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect() };
        for (steps, kh, stride, cout) in [(1, 1, 1, 3), (2, 3, 1, 5), (9, 9, 1, 3), (5, 2, 2, 1)] {
            let row = 8 * steps;
            let (ow, px) = (8, stride * 8);
            let in_row = (ow - 1) * px + row + 3;
            let run = row;
            let g = Geo {
                kh,
                row,
                in_row,
                px,
                ow,
                cout,
                lo: -0.5,
                hi: 3.0,
            };
            let x = rand(kh * in_row);
            let w = rand(cout.next_multiple_of(DOT_GROUP) * kh * run);
            let bias = rand(cout);
            for c0 in (0..cout).step_by(DOT_GROUP) {
                let (mut a, mut b) = (vec![0.0; ow * cout], vec![0.0; ow * cout]);
                // SAFETY: `x`, `w`, `bias` and the outputs are sized as `row`
                // requires for this geometry; ox + 6 <= ow.
                unsafe {
                    let d = DotRow {
                        g: &g,
                        run,
                        w: &w,
                        bias: &bias,
                        x: &x,
                    };
                    dot_tile::<6>(&d, 1, c0, &mut a);
                    dot_tile6(&d, 1, c0, &mut b);
                }
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&a),
                    bits(&b),
                    "steps {steps} kh {kh} stride {stride} c0 {c0}"
                );
                assert!(a.iter().any(|&v| v != 0.0));
            }
        }
    }
}
