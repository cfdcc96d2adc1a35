//! Packing of [`QConv`]: the checks that make the op exact, the
//! initial sums, and the weights laid out for each kernel.

use std::sync::Arc;

use super::*;

impl QConv {
    /// The op on the kernel table's choice; `None` where the table keeps
    /// tract's convolution or the op cannot be exact (see [`QConv::new`]).
    pub fn auto(p: QConvParams) -> Option<QConv> {
        kernels::table().qconv.and_then(|k| QConv::new(p, k))
    }

    /// `None` when the op cannot be exact for these parameters (an i32 sum
    /// could overflow, the zero point is out of range), or `kernel` is not
    /// one of this op's or not available on this CPU.
    pub fn new(p: QConvParams, kernel: Isa) -> Option<QConv> {
        if !ISAS.contains(&kernel) || !kernel.available() || !Self::well_formed(&p) {
            return None;
        }
        let off = p.zp_in + 128;
        if !(0..=255).contains(&off) {
            return None;
        }
        let (weights, init) = Self::initial_sums(&p, off)?;
        let packed = if p.depthwise {
            Self::pack_depthwise(&p, &weights, kernel, init)
        } else {
            Self::pack_gemm(&p, &weights, kernel, &init)
        };
        Some(QConv {
            p: Arc::new(p),
            packed: Arc::new(packed),
            bytes_out: false,
        })
    }

    /// Sizes that agree with each other and with the weights.
    fn well_formed(p: &QConvParams) -> bool {
        let (kh, kw, cin, cout) = (p.kh, p.kw, p.cin, p.cout);
        let per_out = if p.depthwise { kh * kw } else { kh * kw * cin };
        kh > 0
            && kw > 0
            && cin > 0
            && cout > 0
            && p.stride.0 > 0
            && p.stride.1 > 0
            && p.dilation.0 > 0
            && p.dilation.1 > 0
            && (!p.depthwise || cin == cout)
            && p.weights.len() == per_out * cout
            && p.bias.len() == cout
            && p.scale.len() == cout
    }

    /// Weights per output channel (`per_out` of them) and where output
    /// channel `co`'s `i`-th weight is.
    fn widx(p: &QConvParams, co: usize, i: usize) -> usize {
        if p.depthwise {
            i * p.cout + co
        } else {
            co * p.kh * p.kw * p.cin + i
        }
    }

    /// The weights (dead channels' zeroed) and each channel's initial sum
    /// `bias - off * Σw`; `None` when a sum could overflow i32.
    fn initial_sums(p: &QConvParams, off: i32) -> Option<(Vec<i8>, Vec<i32>)> {
        let cout = p.cout;
        let per_out = p.weights.len() / cout;
        let widx = |co: usize, i: usize| Self::widx(p, co, i);
        // Every partial sum of `init + Σ w·u` (u in [0, 255]) is bounded by
        // |bias| + 2 · 255 · Σ|w|: below 2^31, nothing can overflow.
        let mut weights = p.weights.clone();
        let mut init = vec![0i32; cout];
        for co in 0..cout {
            let (mut sum, mut abs) = (0i64, 0i64);
            for i in 0..per_out {
                let w = weights[widx(co, i)] as i64;
                sum += w;
                abs += w.abs();
            }
            let b = p.bias[co];
            if b.abs() + 2 * 255 * abs >= 1 << 31 {
                // Dead channels (bias near +-2^31) saturate whatever the
                // input: when both ends of the reachable sums requantize to
                // the same value, the channel is that constant, which the
                // bias alone (an i32) gives with zero weights.
                let bound = 255 * abs;
                let rq = |a: i64| requant_f32((a as f32) * p.scale[co], p.lo, p.hi);
                if b.abs() >= 1 << 31 || rq(b - bound).to_bits() != rq(b + bound).to_bits() {
                    return None;
                }
                for i in 0..per_out {
                    weights[widx(co, i)] = 0;
                }
                init[co] = b as i32;
                continue;
            }
            init[co] = (b - off as i64 * sum) as i32;
        }
        Some((weights, init))
    }

    /// Depthwise weights for the kernel (see [`Packed::dw`]).
    fn pack_depthwise(p: &QConvParams, weights: &[i8], kernel: Isa, mut init: Vec<i32>) -> Packed {
        let cout = p.cout;
        let taps = p.kh * p.kw;
        let w_of = |co: usize, i: usize| weights[Self::widx(p, co, i)] as i32;
        // The format of the AVX-512 kernel, which takes 3x3 only (not
        // 1x9 or 9x1: it reads the taps as 3 x 3).
        let vnni = is_vnni(kernel) && (p.kh, p.kw) == (3, 3);
        let neon = matches!(kernel, Isa::Neon | Isa::NeonDot);
        let stride = if vnni || neon {
            cout.next_multiple_of(16)
        } else {
            cout
        };
        let dw = if Self::dw_fast(kernel, p) {
            // [tx][c]: the column's three taps as the bytes (w0, w1, w2,
            // 0) of an i32, for `vpdpbusd` on a column (u0, u1, u2, _).
            let mut dw = vec![0i32; 3 * stride];
            for (tx, row) in dw.chunks_exact_mut(stride).enumerate() {
                for (c, v) in row.iter_mut().enumerate().take(cout) {
                    *v = (0..3)
                        .map(|ty| (w_of(c, ty * 3 + tx) as u8 as i32) << (8 * ty))
                        .sum();
                }
            }
            // Then 1 when no reachable `acc * m` reaches 2^30, so that
            // its conversion to i32 cannot overflow (`dw_store`).
            let small = (0..cout).all(|c| {
                let abs: i64 = (0..taps).map(|t| w_of(c, t).abs() as i64).sum();
                let bound = (init[c] as i64).abs() + 255 * abs;
                bound as f64 * (p.scale[c] as f64).abs() < (1u64 << 30) as f64
            });
            dw.push(small as i32);
            dw
        } else {
            let mut dw = vec![0i32; taps * stride];
            for (t, row) in dw.chunks_exact_mut(stride).enumerate() {
                for (c, v) in row.iter_mut().enumerate().take(cout) {
                    let w = w_of(c, t);
                    *v = if vnni { w as i16 as u16 as i32 } else { w };
                }
            }
            dw
        };
        init.resize(stride, 0);
        let (mut dw16, mut dw8) = (vec![], vec![]);
        if neon && weights.contains(&-128) {
            dw16 = vec![0i16; taps * stride];
            for (t, row) in dw16.chunks_exact_mut(stride).enumerate() {
                for (c, v) in row.iter_mut().enumerate().take(cout) {
                    *v = w_of(c, t) as i16;
                }
            }
        } else if neon {
            // The signed kernel reads `s = u - 128`: Σ w·u = Σ w·s + 128·Σw,
            // so its initial sum is `bias - off·Σw + 128·Σw` (= `bias -
            // zp_in·Σw`). Within i32, and so is every partial sum: |init| +
            // 128·Σ|w| <= |bias| + 2·255·Σ|w|, which `initial_sums`
            // bounds below 2^31 (dead channels have Σw = 0).
            dw8 = vec![0i8; taps * stride];
            for (t, row) in dw8.chunks_exact_mut(stride).enumerate() {
                row[..cout].copy_from_slice(&weights[t * cout..][..cout]);
            }
            for (c, v) in init.iter_mut().enumerate().take(cout) {
                *v += 128 * (0..taps).map(|t| w_of(c, t)).sum::<i32>();
            }
        }
        Packed {
            kernel,
            lanes: 0,
            narrow: false,
            seg_len: 0,
            panels: vec![],
            weights: Weights::I8(vec![]),
            dw,
            dw16,
            dw8,
            init,
            m: {
                let mut m = p.scale.clone();
                m.resize(stride, 0.0);
                m
            },
        }
    }

    fn pack_gemm(p: &QConvParams, weights: &[i8], kernel: Isa, init: &[i32]) -> Packed {
        let (kh, kw, cin, cout) = (p.kh, p.kw, p.cin, p.cout);
        let (lanes, group, max_j) = gemm_shape(kernel, p);
        // Kernel rows become segments of kw * cin contiguous input values;
        // with dilation each tap is its own segment of cin values.
        let (nseg, seg_len) = if p.dilation.1 == 1 {
            (kh, kw * cin)
        } else {
            (kh * kw, cin)
        };
        // NEON steps through k by 8 (one input vector of i16).
        let ngroups = match kernel {
            Isa::Neon if group == 1 => seg_len.next_multiple_of(8),
            _ => seg_len.div_ceil(group),
        };
        let mut panels = vec![];
        let (mut c0, mut w_off, mut lane_off) = (0, 0, 0);
        while c0 < cout {
            let j = (cout - c0).div_ceil(lanes).min(max_j);
            panels.push(Panel {
                c0,
                j,
                w_off,
                lane_off,
            });
            c0 += j * lanes;
            w_off += nseg * ngroups * j * lanes * group;
            lane_off += j * lanes;
        }
        let mut w = vec![0i16; w_off];
        // Slack: the NEON kernels load `init` and `m` by 4 lanes (a panel
        // of 1 to 3 lanes reads past its own).
        let mut pinit = vec![0i32; lane_off + 4];
        let mut pm = vec![0f32; lane_off + 4];
        let per_out = kh * kw * cin;
        for pn in &panels {
            let mut ix = pn.w_off;
            for seg in 0..nseg {
                for g in 0..ngroups {
                    for lane in 0..pn.j * lanes {
                        let co = pn.c0 + lane;
                        for e in 0..group {
                            let k = g * group + e;
                            if co < cout && k < seg_len {
                                w[ix] = weights[co * per_out + seg * seg_len + k] as i16;
                            }
                            ix += 1;
                        }
                    }
                }
            }
            for lane in 0..pn.j * lanes {
                let co = pn.c0 + lane;
                if co < cout {
                    pinit[pn.lane_off + lane] = init[co];
                    pm[pn.lane_off + lane] = p.scale[co];
                    if kernel == Isa::NeonDot || group == 16 {
                        // `sdot` reads `u - 128`: Σ w·u = Σ w·(u - 128) + 128 Σw
                        // (within i32: bounded as `init` is in `new`).
                        let ws = &weights[co * per_out..][..per_out];
                        pinit[pn.lane_off + lane] +=
                            128 * ws.iter().map(|&v| v as i32).sum::<i32>();
                    }
                }
            }
        }
        let weights = match kernel {
            k if (is_vnni(k) || matches!(k, Isa::Neon | Isa::NeonDot)) && group != 1 => {
                Weights::I8(w.iter().map(|&v| v as i8).collect())
            }
            _ => Weights::I16(w),
        };
        Packed {
            kernel,
            lanes,
            narrow: narrow(kernel, p),
            seg_len,
            panels,
            weights,
            dw: vec![],
            dw16: vec![],
            dw8: vec![],
            init: pinit,
            m: pm,
        }
    }
}

/// Lanes per vector and K elements per lane of each GEMM kernel, and how
/// many output pixels one call handles for a given number of vectors.
fn gemm_shape(kernel: Isa, p: &QConvParams) -> (usize, usize, usize) {
    // (lanes, group, max vectors per panel)
    let cout = p.cout;
    match kernel {
        // Up to 4 channels, when 16 consecutive pixels start within 128
        // bytes at a multiple of 4 bytes, lanes go over pixels instead
        // ([`Packed::narrow`]): the transfer network's last layer (9x9, 8 ->
        // 3) would fill 3 lanes of 8.
        _ if narrow(kernel, p) => (cout, 4, 1),
        // Up to 8 channels use 256-bit vectors: no wasted lanes for the
        // transfer network's 8-channel layers.
        k if is_vnni(k) && cout <= 8 => (8, 4, 1),
        k if is_vnni(k) => (16, 4, 4),
        Isa::Avx2 => (8, 2, 2),
        // k padded to 8 in [`QConv::pack_gemm`].
        // Pairs of i8 products in i16 (`neon_c8`) unless a weight is -128.
        Isa::Neon if !p.weights.contains(&-128) => (cout.min(4), 16, 1),
        Isa::Neon if cout <= 4 => (4, 1, 1),
        Isa::Neon => (8, 1, 2),
        Isa::NeonDot => (4, 4, 4),
        _ => (16, 1, 1),
    }
}
