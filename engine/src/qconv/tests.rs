//! Every kernel against the i64 reference, bit for bit.

use super::*;
use tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};

/// Plain NHWC convolution with zero padding, summed in i64, then
/// requantized (`i64 as f32` rounds once, like the i32 paths).
fn reference(p: &QConvParams, x: &[f32], [n, h, w, _]: [usize; 4]) -> (Vec<f32>, [usize; 4]) {
    let eff = |k: usize, d: usize| (k - 1) * d + 1;
    let (ekh, ekw) = (eff(p.kh, p.dilation.0), eff(p.kw, p.dilation.1));
    let (ho, wo, pt, pl) = if p.same {
        let (ho, wo) = (h.div_ceil(p.stride.0), w.div_ceil(p.stride.1));
        let th = ((ho - 1) * p.stride.0 + ekh).saturating_sub(h);
        let tw = ((wo - 1) * p.stride.1 + ekw).saturating_sub(w);
        (ho, wo, th / 2, tw / 2)
    } else {
        ((h - ekh) / p.stride.0 + 1, (w - ekw) / p.stride.1 + 1, 0, 0)
    };
    let (cin, cout) = (p.cin, p.cout);
    let mut y = vec![0f32; n * ho * wo * cout];
    for b in 0..n {
        for oy in 0..ho {
            for ox in 0..wo {
                for co in 0..cout {
                    let mut acc = p.bias[co];
                    for ty in 0..p.kh {
                        for tx in 0..p.kw {
                            let iy = (oy * p.stride.0 + ty * p.dilation.0) as i64 - pt as i64;
                            let ix = (ox * p.stride.1 + tx * p.dilation.1) as i64 - pl as i64;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                continue;
                            }
                            let px = ((b * h + iy as usize) * w + ix as usize) * cin;
                            if p.depthwise {
                                let wv = p.weights[(ty * p.kw + tx) * cout + co] as i64;
                                acc += x[px + co] as i64 * wv;
                            } else {
                                for ci in 0..cin {
                                    let wv =
                                        p.weights[((co * p.kh + ty) * p.kw + tx) * cin + ci] as i64;
                                    acc += x[px + ci] as i64 * wv;
                                }
                            }
                        }
                    }
                    let v = ((acc as f32) * p.scale[co]).round_ties_even();
                    y[((b * ho + oy) * wo + ox) * cout + co] = v.max(p.lo).min(p.hi);
                }
            }
        }
    }
    (y, [n, ho, wo, cout])
}

struct Case {
    kh: usize,
    kw: usize,
    cin: usize,
    cout: usize,
    stride: usize,
    dilation: usize,
    same: bool,
    depthwise: bool,
    h: usize,
    w: usize,
}

fn case(kh: usize, cin: usize, cout: usize, stride: usize, same: bool, h: usize, w: usize) -> Case {
    Case {
        kh,
        kw: kh,
        cin,
        cout,
        stride,
        dilation: 1,
        same,
        depthwise: false,
        h,
        w,
    }
}

/// Random int8 weights over the full range, biases and scales that put
/// outputs on both sides of the clamps, a random input zero point.
fn params(c: &Case, rng: &mut fastrand::Rng) -> QConvParams {
    let taps = c.kh * c.kw;
    let nw = if c.depthwise {
        taps * c.cout
    } else {
        taps * c.cin * c.cout
    };
    let weights: Vec<i8> = (0..nw).map(|_| rng.i8(..)).collect();
    let k = if c.depthwise { taps } else { taps * c.cin };
    // Typical |acc| ~ 128 * 74 * sqrt(k): aim at ~±300 after scaling, so
    // that both clamps are reached and most values lie between.
    let typical = 128.0 * 74.0 * (k as f32).sqrt();
    let scale = (0..c.cout)
        .map(|_| 300.0 / typical * (0.5 + rng.f32()))
        .collect();
    let bias = (0..c.cout).map(|_| rng.i64(-20000..20000)).collect();
    let zo = rng.i32(-128..128) as f32;
    let (lo, hi) = match rng.u8(0..3) {
        0 => (-128.0 - zo, 127.0 - zo),
        1 => ((-128.0 - zo).max(0.0), 127.0 - zo),
        _ => ((-128.0 - zo).max(0.0), (127.0 - zo).clamp(0.0, 40.0)),
    };
    QConvParams {
        kh: c.kh,
        kw: c.kw,
        cin: c.cin,
        cout: c.cout,
        stride: (c.stride, c.stride),
        dilation: (c.dilation, c.dilation),
        same: c.same,
        depthwise: c.depthwise,
        zp_in: rng.i32(-128..128),
        zp_out: zo as i32,
        weights,
        bias,
        scale,
        lo,
        hi,
    }
}

/// Input integers `q - zp_in` for int8 `q` over the full range.
fn input(p: &QConvParams, shape: [usize; 4], rng: &mut fastrand::Rng) -> Vec<f32> {
    let len = shape.iter().product();
    (0..len)
        .map(|_| (rng.i8(..) as i32 - p.zp_in) as f32)
        .collect()
}

fn kernels() -> Vec<Isa> {
    let ks: Vec<Isa> = ISAS.iter().copied().filter(|k| k.available()).collect();
    eprintln!("kernels tested on this CPU: {ks:?}");
    ks
}

/// Compares with the reference; says whether both clamps were reached.
fn check(p: &QConvParams, x: &[f32], shape: [usize; 4], kernel: Isa, what: &str) -> bool {
    let (want, os) = reference(p, x, shape);
    let op = QConv::new(p.clone(), kernel).expect("op builds");
    assert_eq!(op.kernel(), kernel);
    assert_eq!(op.output_shape(&shape).unwrap(), os, "{what}");
    let y = op.eval_slice(x, &shape).unwrap();
    for (i, (&a, &b)) in y.iter().zip(&want).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a == 0.0 && b == 0.0),
            "{what} {kernel:?}: output {i} (pixel {}, channel {}) is {a}, expected {b}",
            i / p.cout,
            i % p.cout
        );
    }
    // The same values as bytes `q + 128`, whichever side is bytes
    // (inputs on the grid only: bytes hold nothing else).
    let on_grid = x.iter().all(|&v| {
        let u = v + (p.zp_in + 128) as f32;
        u.fract() == 0.0 && (0.0..=255.0).contains(&u)
    });
    if !on_grid {
        return want.contains(&p.lo) && want.contains(&p.hi);
    }
    let xb: Vec<u8> = x
        .iter()
        .map(|&v| (v as i32 + p.zp_in + 128) as u8)
        .collect();
    let want_b: Vec<u8> = want
        .iter()
        .map(|&v| (v as i32 + p.zp_out + 128) as u8)
        .collect();
    let bytes = op.with_byte_output();
    let mut yb = vec![0u8; want.len()];
    bytes.run(Input::Ints(x), &shape, &mut yb).unwrap();
    assert!(yb == want_b, "{what} {kernel:?}: f32 in, bytes out differ");
    let yb = bytes.eval_bytes(&xb, &shape).unwrap();
    assert!(yb == want_b, "{what} {kernel:?}: bytes in and out differ");
    let mut yf = vec![0f32; want.len()];
    op.run(Input::Bytes(&xb), &shape, &mut yf).unwrap();
    assert!(yf == want, "{what} {kernel:?}: bytes in, f32 out differ");
    want.contains(&p.lo) && want.contains(&p.hi)
}

fn run_cases(cases: &[Case], seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut saturated = 0;
    for kernel in kernels() {
        for c in cases {
            let p = params(c, &mut rng);
            let shape = [1, c.h, c.w, c.cin];
            let x = input(&p, shape, &mut rng);
            let what = format!(
                "{}x{} {}->{} s{} d{} {} {}",
                c.kh,
                c.kw,
                c.cin,
                c.cout,
                c.stride,
                c.dilation,
                if c.same { "SAME" } else { "VALID" },
                if c.depthwise { "dw" } else { "" },
            );
            saturated += check(&p, &x, shape, kernel, &what) as usize;
            // Weights in [-127, 127], as TFLite's int8 spec has them
            // (NEON then pairs products in i16).
            let mut p = p;
            p.weights.iter_mut().for_each(|w| *w = (*w).max(-127));
            check(&p, &x, shape, kernel, &format!("{what} w>-128"));
        }
    }
    // Most cases reach both clamps: saturation is exercised.
    assert!(
        2 * saturated >= cases.len() * kernels().len(),
        "only {saturated} cases reached both clamps"
    );
}

#[test]
fn pointwise_matches_the_i64_reference() {
    // Cin and Cout off every SIMD width; panels of 1 to 4 vectors.
    run_cases(
        &[
            case(1, 3, 5, 1, true, 7, 9),
            case(1, 16, 8, 1, true, 5, 13),
            case(1, 17, 33, 1, true, 6, 7),
            case(1, 64, 100, 1, true, 4, 5),
            case(1, 160, 960, 1, true, 3, 3),
            case(1, 21, 24, 2, true, 9, 7),
            case(1, 8, 3, 1, false, 17, 3),
            case(1, 24, 12, 1, true, 3, 11),
            case(1, 32, 40, 2, true, 5, 19),
        ],
        1,
    );
}

/// 1x1 convolutions on taller pictures, whose rows the aarch64 GEMM takes
/// as one long row per thread: 32 rows of 12 pixels, 64 of 9, 32 of 16
/// (a panel count that flips in place on the Pi 5, copies on the Pi 4).
#[test]
fn tall_pointwise_pictures_match_the_i64_reference() {
    run_cases(
        &[
            case(1, 16, 40, 1, true, 32, 12),
            case(1, 24, 7, 1, false, 64, 9),
            case(1, 96, 24, 1, true, 32, 16),
        ],
        5,
    );
}

#[test]
fn spatial_convolutions_match_the_i64_reference() {
    run_cases(
        &[
            case(3, 8, 8, 1, false, 10, 11),
            case(3, 32, 32, 1, false, 12, 9),
            case(3, 8, 16, 2, false, 13, 12),
            case(3, 16, 32, 2, true, 11, 9),
            case(3, 3, 32, 2, true, 15, 16),
            case(3, 5, 7, 1, true, 6, 5),
            case(9, 3, 8, 1, false, 17, 19),
            case(9, 8, 3, 1, false, 16, 12),
            case(9, 3, 8, 1, true, 11, 10),
            Case {
                dilation: 2,
                ..case(3, 6, 20, 1, true, 9, 11)
            },
            Case {
                kw: 2,
                ..case(3, 5, 9, 2, false, 8, 9)
            },
            // Up to 4 channels with 4 or 8 bytes between pixels: lanes
            // over pixels on VNNI, rows of 16 pixels plus a tail.
            case(9, 8, 3, 1, false, 12, 45),
            case(1, 4, 2, 1, true, 5, 37),
            case(3, 4, 1, 2, true, 9, 41),
            case(3, 8, 4, 1, true, 7, 16),
            case(5, 2, 3, 2, false, 11, 40),
        ],
        2,
    );
}

#[test]
fn depthwise_matches_the_i64_reference() {
    let dw = |c: usize, stride: usize, same: bool, h: usize, w: usize| Case {
        depthwise: true,
        ..case(3, c, c, stride, same, h, w)
    };
    run_cases(
        &[
            dw(32, 1, true, 9, 8),
            dw(96, 2, true, 9, 11),
            dw(5, 1, true, 7, 7),
            dw(33, 2, false, 10, 9),
            dw(144, 2, true, 8, 8),
            Case {
                dilation: 2,
                ..dw(24, 1, true, 9, 9)
            },
            // Other kernel sizes take the generic depthwise loop.
            Case {
                kh: 5,
                kw: 5,
                ..dw(20, 1, true, 8, 9)
            },
            Case {
                kh: 1,
                ..dw(17, 2, true, 15, 16)
            },
            // 1x9 and 9x1: not 3x3 although nine taps (the AVX-512
            // kernel once took them as 3x3).
            Case {
                kh: 1,
                kw: 9,
                ..dw(32, 1, true, 6, 13)
            },
            Case {
                kh: 9,
                kw: 1,
                ..dw(19, 2, true, 14, 5)
            },
            Case {
                kh: 1,
                kw: 9,
                ..dw(16, 1, false, 3, 11)
            },
        ],
        3,
    );
}

/// The edges of the AVX-512 VBMI depthwise kernel: pictures 1 pixel
/// wide or high, widths and heights odd and even, channels off 16 and
/// 64, both strides in each direction, batches, VALID and SAME; bytes
/// with nothing to bound (as in the network) or with a zero point and
/// narrowed bounds, and sums whose conversion could overflow.
#[test]
fn depthwise_edges_match_the_i64_reference() {
    let mut rng = fastrand::Rng::with_seed(10);
    // (channels, stride (h, w), SAME, [n, h, w])
    let cases = [
        (16, (1, 1), true, [1, 1, 1]),
        (7, (1, 1), true, [1, 1, 5]),
        (20, (2, 2), true, [1, 1, 1]),
        (33, (1, 1), true, [1, 6, 1]),
        (65, (1, 1), true, [1, 5, 3]),
        (130, (2, 2), true, [1, 7, 5]),
        (48, (2, 1), true, [2, 6, 7]),
        (24, (1, 2), false, [2, 5, 8]),
        (64, (1, 1), false, [1, 3, 3]),
        (200, (1, 1), true, [1, 3, 9]),
        (96, (2, 2), true, [1, 8, 10]),
        (32, (3, 1), true, [1, 10, 6]),
        (16, (1, 3), true, [1, 4, 10]),
        (24, (1, 1), true, [2, 5, 4]),
        (16, (1, 1), false, [3, 4, 3]),
        (40, (1, 1), true, [1, 2, 2]),
    ];
    let mut saw_fast = false;
    for kernel in kernels() {
        for (i, &(ch, stride, same, [n, h, w])) in cases.iter().enumerate() {
            for variant in 0..3 {
                let c = Case {
                    depthwise: true,
                    ..case(3, ch, ch, 1, same, h, w)
                };
                let mut p = params(&c, &mut rng);
                p.stride = stride;
                if variant > 0 {
                    // The network's RELU6 over the whole int8 range.
                    p.zp_out = -128;
                    p.lo = 0.0;
                    p.hi = 255.0;
                }
                if variant == 2 {
                    // Dead channels: `acc * m` past i32.
                    p.bias[0] = (1 << 31) - 1;
                    p.bias[ch - 1] = -(1 << 31) + 1;
                    p.scale[0] = 2.0;
                    p.scale[ch - 1] = 3.0;
                }
                saw_fast |= QConv::dw_fast(kernel, &p);
                let shape = [n, h, w, ch];
                let x = input(&p, shape, &mut rng);
                let what = format!("dw case {i} variant {variant}");
                check(&p, &x, shape, kernel, &what);
            }
        }
    }
    // The VBMI kernel ran wherever this CPU has it.
    assert_eq!(saw_fast, Isa::Avx512Vbmi.available());
}

/// The NEON depthwise kernels: the signed one (every weight in [-127,
/// 127]: `Packed::dw8`) and the exact fallback (a weight at -128), over
/// channel counts off 16 and 8, strides 1 and 2 in each direction, SAME
/// (the padded copy, flipped when packed) and VALID (bytes read in place,
/// flipped at each load), odd and even numbers of taps; byte outputs with
/// the zero point and bounds at both ends of the byte range, from sums
/// that saturate i16 (variant 2) and i32 (variant 3) when requantized.
/// Every kernel of the CPU runs them against the reference.
#[test]
fn depthwise_signed_and_fallback_match_the_reference() {
    let mut rng = fastrand::Rng::with_seed(13);
    // (kh, kw, channels, stride (h, w), SAME, [h, w])
    let shapes = [
        (3, 3, 24, (1, 1), true, [6, 7]),
        (3, 3, 40, (2, 2), true, [9, 8]),
        (3, 3, 8, (1, 2), false, [7, 9]),
        (3, 3, 5, (2, 1), false, [6, 6]),
        (3, 3, 32, (1, 1), false, [5, 6]),
        (3, 3, 16, (2, 2), true, [1, 1]),
        (5, 5, 19, (1, 1), true, [7, 6]),
        (2, 2, 16, (2, 2), false, [7, 8]),
        (1, 1, 12, (1, 1), false, [3, 5]),
        (1, 3, 33, (2, 1), true, [5, 9]),
    ];
    for kernel in kernels() {
        for (i, &(kh, kw, ch, stride, same, [h, w])) in shapes.iter().enumerate() {
            for variant in 0..4 {
                let c = Case {
                    kw,
                    depthwise: true,
                    ..case(kh, ch, ch, 1, same, h, w)
                };
                let mut p = params(&c, &mut rng);
                p.stride = stride;
                p.weights.iter_mut().for_each(|w| *w = (*w).max(-127));
                match variant {
                    1 => p.weights[ch / 2] = -128,
                    2 | 3 => {
                        (p.zp_out, p.lo, p.hi) = if variant == 2 {
                            (-128, 0.0, 255.0)
                        } else {
                            (127, -255.0, 0.0)
                        };
                        let f = if variant == 2 { 200.0 } else { 1e8 };
                        p.scale.iter_mut().for_each(|s| *s *= f);
                    }
                    _ => {}
                }
                #[cfg(target_arch = "aarch64")]
                if matches!(kernel, Isa::Neon | Isa::NeonDot) {
                    let op = QConv::new(p.clone(), kernel).unwrap();
                    assert_eq!(
                        op.packed.dw8.is_empty(),
                        variant == 1,
                        "the kernel of variant {variant}"
                    );
                }
                let shape = [1, h, w, ch];
                let x = input(&p, shape, &mut rng);
                let what = format!("dw shape {i} variant {variant}");
                let both = check(&p, &x, shape, kernel, &what);
                // The byte range's ends are reached.
                assert!(both || variant < 2, "{what}: no output at 0 or 255");
            }
        }
    }
}

/// Depthwise rows split over two threads (chunks of odd lengths: the
/// VBMI kernel pairs rows within a chunk) give the reference.
#[test]
fn depthwise_on_two_threads_matches_the_reference() {
    let mut rng = fastrand::Rng::with_seed(11);
    let kernel = *kernels().last().unwrap();
    // Past 2M MACs (`par_rows`), in chunks of 9, 7 and 6 rows.
    for (ch, stride, h, w) in [(64, 1, 67, 80), (96, 1, 51, 70), (128, 2, 81, 100)] {
        let c = Case {
            depthwise: true,
            ..case(3, ch, ch, stride, true, h, w)
        };
        let p = params(&c, &mut rng);
        let shape = [1, h, w, ch];
        let x = input(&p, shape, &mut rng);
        let (want, _) = reference(&p, &x, shape);
        let op = QConv::new(p, kernel).unwrap();
        let y = multithread_tract_scope(Executor::multithread(2), || {
            op.eval_slice(&x, &shape).unwrap()
        });
        assert_eq!(y, want, "{ch} channels, stride {stride}, {h}x{w}");
    }
}

/// Weights and inputs at -128 everywhere (products 2^14, which two in
/// an i16 would overflow), with odd channel counts and widths off every
/// tile.
#[test]
fn extreme_weights_and_inputs_match_the_reference() {
    let mut rng = fastrand::Rng::with_seed(12);
    for kernel in kernels() {
        for (c, depthwise, wmin) in [
            (case(1, 40, 12, 1, true, 3, 11), false, -128),
            (case(1, 40, 12, 1, true, 3, 11), false, -127),
            (case(3, 9, 13, 2, true, 7, 13), false, -128),
            (case(3, 9, 3, 2, true, 7, 13), false, -127),
            (case(3, 16, 16, 1, true, 5, 9), true, -128),
            (case(3, 21, 21, 2, true, 6, 7), true, -128),
        ] {
            let c = Case { depthwise, ..c };
            let mut p = params(&c, &mut rng);
            p.weights.iter_mut().for_each(|w| *w = wmin);
            p.zp_in = -128;
            p.lo = -1e9;
            p.hi = 1e9;
            let k = if depthwise { 9 } else { c.kh * c.kw * c.cin };
            p.scale
                .iter_mut()
                .for_each(|s| *s = 1.0 / (128.0 * 128.0 * k as f32));
            let shape = [1, c.h, c.w, c.cin];
            // x = q + 128: q = 127 and q = -128 (u = 0, i.e. -128 for
            // `sdot`).
            let x: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|i| if i % 3 == 0 { 255.0 } else { 0.0 })
                .collect();
            check(&p, &x, shape, kernel, "extreme weights");
        }
    }
}

/// The files mark dead channels with a bias of +-(2^31 - 1); with i32
/// sums that would overflow, so such a channel becomes its constant.
#[test]
fn dead_channels_saturate_as_in_the_reference() {
    let mut rng = fastrand::Rng::with_seed(4);
    for kernel in kernels() {
        for depthwise in [false, true] {
            let c = Case {
                depthwise,
                ..case(3, 16, 16, 1, true, 7, 6)
            };
            let mut p = params(&c, &mut rng);
            p.bias[3] = (1 << 31) - 1;
            p.bias[10] = -(1 << 31) + 1;
            let shape = [1, 7, 6, 16];
            let x = input(&p, shape, &mut rng);
            check(&p, &x, shape, kernel, "dead channels");
            let y = QConv::new(p.clone(), kernel)
                .unwrap()
                .eval_slice(&x, &shape)
                .unwrap();
            assert!(y.chunks(16).all(|px| px[3] == p.hi && px[10] == p.lo));
        }
    }
}

/// A huge bias whose channel still depends on the input cannot be held
/// in i32: the op refuses it (the importer then keeps its f64 path).
#[test]
fn a_bias_past_i32_that_is_not_saturated_is_refused() {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut p = params(&case(1, 64, 4, 1, true, 3, 3), &mut rng);
    p.bias[0] = (1 << 31) - 1;
    // acc * m spans several output steps across the reachable sums
    // (+-255 * Σ|w|), and no clamp is reached.
    let abs: i32 = p.weights[..64].iter().map(|&w| (w as i32).abs()).sum();
    p.scale[0] = 4.0 / (255 * abs) as f32;
    p.lo = -1e9;
    p.hi = 1e9;
    assert!(QConv::new(p.clone(), Isa::Portable).is_none());
    // The same bias with a scale that saturates the channel is taken.
    p.scale[0] = 1.0;
    p.hi = 127.0;
    assert!(QConv::new(p, Isa::Portable).is_some());
}

/// Inputs off the int8 grid (which the importer never feeds) still give
/// the exact result, through the f64 fallback.
#[test]
fn inputs_off_the_grid_fall_back_exactly() {
    let mut rng = fastrand::Rng::with_seed(6);
    for kernel in kernels() {
        let c = case(3, 8, 8, 1, true, 6, 6);
        let p = params(&c, &mut rng);
        let shape = [1, 6, 6, 8];
        let mut x = input(&p, shape, &mut rng);
        x[17] = 300.0; // integer, but u = x + zp + 128 is past 255
        check(&p, &x, shape, kernel, "off-grid input");
    }
}

/// The input check and conversion (`to_grid`, NEON on aarch64, AVX2 or
/// AVX-512 on x86 without a flip) agree with the portable one on values on
/// and off the grid, at every length up to 40 (tails of 16).
#[test]
fn the_input_conversion_agrees_with_the_portable_one() {
    let mut rng = fastrand::Rng::with_seed(14);
    let odd = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -1.0,
        -0.0,
        0.5,
        255.5,
        256.0,
        4294967296.0,
        1e10,
        -1e10,
        -128.5,
    ];
    for len in 0..=40 {
        for (off, xor) in [(128.0, 0), (128.0, 0x80), (3.0, 0x80)] {
            let good: Vec<f32> = (0..len).map(|_| rng.i32(0..=255) as f32 - off).collect();
            let mut cases = vec![good.clone()];
            for (j, &v) in odd.iter().enumerate() {
                if len > 0 {
                    let mut x = good.clone();
                    // `v` is the value checked, `x + off`.
                    x[(j * 7) % len] = v - off;
                    cases.push(x);
                }
            }
            for x in cases {
                let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                let ok = to_grid(&x, off, &mut a, xor);
                let want = to_grid_body(&x, off, &mut b, xor);
                assert_eq!(ok, want, "{x:?} off {off}");
                if want {
                    assert_eq!(a, b, "{x:?} off {off} xor {xor}");
                }
            }
        }
    }
}

/// The importer's choice takes the table's kernel, or declines where
/// the table keeps tract's convolution.
#[test]
fn the_table_picks_the_kernel_or_declines() {
    let mut rng = fastrand::Rng::with_seed(8);
    let p = params(&case(3, 8, 8, 1, true, 5, 5), &mut rng);
    let want = kernels::table().qconv;
    assert_eq!(QConv::auto(p).map(|q| q.kernel()), want);
}

/// Through tract, on a 2-thread pool: the rows split over threads give
/// the same bytes as one thread (a 3x3, and a 1x1 whose rows a chunk
/// runs as one on aarch64).
#[test]
fn two_threads_give_the_same_output() {
    let mut rng = fastrand::Rng::with_seed(7);
    for c in [
        case(3, 32, 32, 1, true, 40, 37),
        case(1, 24, 20, 1, true, 40, 37),
    ] {
        let p = params(&c, &mut rng);
        let shape = [1, 40, 37, c.cin];
        let x = input(&p, shape, &mut rng);
        let kernel = *kernels().last().unwrap();
        let op = QConv::new(p.clone(), kernel).unwrap();
        let (want, _) = reference(&p, &x, shape);
        let mut model = TypedModel::default();
        let src = model.add_source("x", f32::fact(shape)).unwrap();
        let outs = model.wire_node("qconv", op, &[src]).unwrap();
        model.select_output_outlets(&outs).unwrap();
        let plan = SimplePlan::new(model.into_optimized().unwrap()).unwrap();
        let t = Tensor::from_shape(&shape, &x).unwrap();
        let res = multithread_tract_scope(Executor::multithread(2), || {
            plan.run(tvec!(t.into_tvalue())).unwrap()
        });
        let y = res[0].try_as_plain_ram().unwrap();
        assert_eq!(y.as_slice::<f32>().unwrap(), &want[..]);
    }
}

/// The x86 GEMM kernels read AVX2's input as i16 and VNNI's as u8: input of
/// the other width is refused by a check, not read past its end.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_gemm_kernel_refuses_input_of_the_wrong_width() {
    let mut rng = fastrand::Rng::with_seed(12);
    let p = params(&case(1, 16, 16, 1, false, 4, 4), &mut rng);
    for (kernel, bytes) in [(Isa::Avx2, true), (Isa::Avx512Vnni, false)] {
        let Some(op) = QConv::new(p.clone(), kernel) else {
            continue;
        };
        let g = op.geo(&[1, 4, 4, 16]).unwrap();
        let mut y = vec![0f32; 4 * 4 * 16];
        let run = std::panic::AssertUnwindSafe(|| {
            if bytes {
                op.gemm(&g, &vec![0u8; 4096], &mut y, 1, false)
            } else {
                op.gemm(&g, &vec![0i16; 4096], &mut y, 1, false)
            }
        });
        assert!(std::panic::catch_unwind(run).is_err(), "{kernel:?}");
    }
}

/// f32 outputs bit for bit, and byte outputs against the reference
/// stored as [`OutElem::put`] stores it, from f32 and from byte inputs
/// (read in place where the layout allows).
fn check_bytes(p: &QConvParams, x: &[f32], shape: [usize; 4], kernel: Isa, what: &str) {
    let (want, _) = reference(p, x, shape);
    let y = QConv::new(p.clone(), kernel)
        .unwrap()
        .eval_slice(x, &shape)
        .unwrap();
    let same = y
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits() || (*a == 0.0 && *b == 0.0));
    assert!(same, "{what} {kernel:?}: f32 out");
    let zp = (p.zp_out + 128) as f32;
    let want: Vec<u8> = want.iter().map(|&v| u8::put(v, zp)).collect();
    let op = QConv::new(p.clone(), kernel).unwrap().with_byte_output();
    let mut y = vec![0u8; want.len()];
    op.run(Input::Ints(x), &shape, &mut y).unwrap();
    let bad = |y: &[u8]| y.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(bad(&y), None, "{what} {kernel:?}: f32 in, bytes out");
    let xb: Vec<u8> = x
        .iter()
        .map(|&v| (v as i32 + p.zp_in + 128) as u8)
        .collect();
    let y = op.eval_bytes(&xb, &shape).unwrap();
    assert_eq!(bad(&y), None, "{what} {kernel:?}: bytes in and out");
}

/// Whole tiles (aarch64: no per-tile set-up; bytes through `fcvtns`,
/// saturating narrows, one byte clamp) and part tiles: every panel
/// width (4 to 16 channels, and fewer at the last panel), rows ending in
/// part tiles, K on and off multiples of 16,
/// several kernel rows; bounds that are not integers (one just below an
/// integer, where `v + zp` rounds up in f32), the byte range's edges
/// (bounds at the int8 range, zero points -128 and 127, scales that
/// saturate i16 and i32, and one that overflows to infinity).
#[test]
fn byte_outputs_of_whole_and_part_tiles_match_the_reference() {
    let mut rng = fastrand::Rng::with_seed(21);
    let mut bounds: Vec<(f32, f32)> = vec![(-1e9, 1e9), (0.0, 37.0), (3.0, 3.0)];
    // Bounds that are not integers (never from the importer) store as
    // `put` does on aarch64: `-20.5 + zp` truncates, `20.999998 + zp`
    // rounds up to an integer in f32. The x86 AVX-512 store rounds them
    // otherwise.
    if cfg!(target_arch = "aarch64") {
        bounds.extend([(0.0, 37.3), (-20.5, 20.5), (-20.000002, 20.999998)]);
    }
    for kernel in kernels() {
        for (i, (kh, cin, cout, w)) in [
            (1, 16, 4, 9),
            (1, 24, 8, 13),
            (1, 40, 12, 7),
            (1, 96, 16, 17),
            (1, 32, 20, 5),
            (1, 16, 36, 11),
            (1, 8, 16, 3),
            (1, 48, 24, 15),
            (3, 8, 16, 10),
            (3, 16, 4, 13),
        ]
        .into_iter()
        .enumerate()
        {
            let c = case(kh, cin, cout, 1 + i % 2, kh == 1 || i % 2 == 0, 5, w);
            let mut p = params(&c, &mut rng);
            // Weights in [-127, 127]: the `smull` pair kernel on NEON.
            p.weights.iter_mut().for_each(|w| *w = (*w).max(-127));
            let shape = [1, c.h, c.w, c.cin];
            let x = input(&p, shape, &mut rng);
            for (j, &(lo, hi)) in bounds.iter().enumerate() {
                let mut p = p.clone();
                p.zp_out = [-128, 127, 0, -3, 55][(i + j) % 5];
                // Within the int8 range, as the importer's bounds are
                // (past it, the x86 kernels store otherwise).
                let zo = p.zp_out as f32;
                let (lo, hi) = (
                    lo.clamp(-128.0 - zo, 127.0 - zo),
                    hi.clamp(-128.0 - zo, 127.0 - zo),
                );
                (p.lo, p.hi) = (lo, hi);
                let what = format!("{kh}x{kh} {cin}->{cout} w{w} [{lo}, {hi}] zo {}", p.zp_out);
                check_bytes(&p, &x, shape, kernel, &what);
                // Far past i16 and i32 after scaling, and to infinity.
                for s in [1e3f32, 1e8, 1e36] {
                    let mut p = p.clone();
                    p.scale.iter_mut().for_each(|v| *v *= s);
                    check_bytes(&p, &x, shape, kernel, &format!("{what} scale x{s}"));
                }
            }
        }
    }
}
