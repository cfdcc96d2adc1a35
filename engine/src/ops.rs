//! Custom tract ops for the transfer network's NHWC f32 plumbing.
//!
//! tract's generic `Pad` (reflect), `Reduce` (sum) and `MultiBroadcastTo`
//! work on any rank and datum type through ndarray slices and zips; profiled
//! on the f16 transfer network they cost ~25% of a frame in ndarray
//! bookkeeping (strides, dimension conversions, per-row slice assigns). These
//! ops do the same three jobs for the one layout the network uses, with
//! straight loops over contiguous rows: each output row is built once and
//! the rest are memcpy's. [`PerChannel`] likewise replaces the broadcasting
//! binary ops of the instance norms (picture x per-channel vector).

use tract_core::internal::*;

fn nhwc(inputs: &[&TypedFact], what: &str) -> TractResult<TypedFact> {
    let fact = inputs[0].without_value();
    ensure!(
        fact.rank() == 4,
        "{what}: input of rank {} (expected NHWC)",
        fact.rank()
    );
    ensure!(
        fact.datum_type == f32::datum_type(),
        "{what}: input is {:?}, not f32",
        fact.datum_type
    );
    Ok(fact)
}

/// The input as an f32 NHWC slice and its four dimensions.
fn nhwc_input<'t>(t: &'t Tensor, what: &str) -> TractResult<([usize; 4], &'t Tensor)> {
    ensure!(
        t.rank() == 4,
        "{what}: input of rank {} (expected NHWC)",
        t.rank()
    );
    ensure!(
        t.datum_type() == f32::datum_type(),
        "{what}: input is {:?}, not f32",
        t.datum_type()
    );
    let s = t.shape();
    Ok(([s[0], s[1], s[2], s[3]], t))
}

/// Evaluates an op on the NHWC picture `inputs[0]` and up to two
/// per-channel vectors `inputs[1..]` (checked against the picture):
/// `f(x, dims, [v, o], y)` fills a new tensor of shape `out(dims)`. A
/// vector slot with no input holds the picture (and goes unread).
fn eval_with_vectors(
    inputs: &[TValue],
    what: &str,
    out: impl FnOnce([usize; 4]) -> TractResult<[usize; 4]>,
    f: impl FnOnce(&[f32], [usize; 4], [&[f32]; 2], &mut [f32]),
) -> TractResult<TVec<TValue>> {
    let (dims, t) = nhwc_input(&inputs[0], what)?;
    for v in &inputs[1..] {
        let (_, vt) = nhwc_input(v, what)?;
        ensure!(
            PerChannel::fits(t.shape(), vt.shape()),
            "{what}: {:?} is not per channel of {:?}",
            vt.shape(),
            t.shape()
        );
    }
    let mut y = unsafe { Tensor::uninitialized::<f32>(&out(dims)?)? };
    if dims[3] > 0 {
        let x = t.try_as_plain_ram()?;
        let vr = inputs[inputs.len().min(2) - 1].try_as_plain_ram()?;
        let or = inputs[inputs.len() - 1].try_as_plain_ram()?;
        let mut yr = y.try_as_plain_ram_mut()?;
        f(
            x.as_slice::<f32>()?,
            dims,
            [vr.as_slice::<f32>()?, or.as_slice::<f32>()?],
            yr.as_slice_mut::<f32>()?,
        );
    }
    Ok(tvec!(y.into_tvalue()))
}

/// Runs `f(start, band)` over bands of `y` (multiples of `unit` values) on
/// tract's thread pool when the network runs on several threads and the
/// picture is large enough to be worth it; in one go otherwise.
pub(super) fn in_bands<T: Send>(y: &mut [T], unit: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    use tract_core::tract_linalg::multithread::{current_tract_executor, Executor};
    match current_tract_executor() {
        Executor::MultiThread(pool) if y.len() >= 1 << 16 => {
            let bands = 2 * pool.current_num_threads();
            let band = y.len().div_ceil(bands).next_multiple_of(unit);
            let f = &f;
            pool.scope(|s| {
                for (i, chunk) in y.chunks_mut(band).enumerate() {
                    s.spawn(move |_| f(i * band, chunk));
                }
            });
        }
        _ => f(0, y),
    }
}

/// Reflect padding of H and W (TFLite MIRROR_PAD REFLECT, numpy 'reflect':
/// the edge pixel is not repeated), so each pad must be smaller than its side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReflectPad2d {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
    /// A per-channel op applied first, fused (the instance norm's scale,
    /// offset and ReLU before the next layer's padding): its vector
    /// inputs follow the picture. Saves a pass over the picture.
    pub pre: Option<PerChannel>,
}

impl ReflectPad2d {
    fn pad(&self, x: &[f32], [n, h, w, c]: [usize; 4], vs: [&[f32]; 2], y: &mut [f32]) {
        let (oh, ow) = (h + self.top + self.bottom, w + self.left + self.right);
        let (row, orow) = (w * c, ow * c);
        for b in 0..n {
            let src = &x[b * h * row..][..h * row];
            let dst = &mut y[b * oh * orow..][..oh * orow];
            // Interior rows: the row itself (through `pre`), then its left
            // and right reflections copied from the finished row; bands of
            // rows on the thread pool.
            let (v, k) = (pick(vs[0], b, c), pick(vs[1], b, c));
            let interior = &mut dst[self.top * orow..(self.top + h) * orow];
            in_bands(interior, orow, |start, band| {
                let r0 = start / orow;
                for (i, d) in band.chunks_exact_mut(orow).enumerate() {
                    let s = &src[(r0 + i) * row..][..row];
                    match &self.pre {
                        Some(f) => f.apply_pixels(s, c, v, k, &mut d[self.left * c..][..row]),
                        None => d[self.left * c..][..row].copy_from_slice(s),
                    }
                    for i in 0..self.left {
                        let sx = self.left - i;
                        d.copy_within((self.left + sx) * c..(self.left + sx + 1) * c, i * c);
                    }
                    for i in 0..self.right {
                        let sx = self.left + w - 2 - i;
                        d.copy_within(sx * c..(sx + 1) * c, (self.left + w + i) * c);
                    }
                }
            });
            // Padded rows are whole copies of already padded interior rows.
            for r in 0..self.top {
                let from = 2 * self.top - r;
                dst.copy_within(from * orow..(from + 1) * orow, r * orow);
            }
            for i in 0..self.bottom {
                let from = self.top + h - 2 - i;
                let to = self.top + h + i;
                dst.copy_within(from * orow..(from + 1) * orow, to * orow);
            }
        }
    }
}

impl Op for ReflectPad2d {
    fn name(&self) -> StaticName {
        "ReflectPad2d".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "top {} bottom {} left {} right {}",
            self.top, self.bottom, self.left, self.right
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for ReflectPad2d {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let arity = 1 + self.pre.as_ref().map_or(0, |p| p.arity() - 1);
        ensure!(
            inputs.len() == arity,
            "ReflectPad2d: {} inputs",
            inputs.len()
        );
        eval_with_vectors(
            &inputs,
            "ReflectPad2d",
            |[n, h, w, c]| {
                ensure!(
                    self.top < h && self.bottom < h && self.left < w && self.right < w,
                    "ReflectPad2d: pads {self:?} need a picture larger than {h}x{w}"
                );
                Ok([n, h + self.top + self.bottom, w + self.left + self.right, c])
            },
            |x, dims, vs, y| self.pad(x, dims, vs, y),
        )
    }
}

impl TypedOp for ReflectPad2d {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut fact = nhwc(inputs, "ReflectPad2d")?;
        fact.shape
            .set(1, fact.shape[1].clone() + self.top + self.bottom);
        fact.shape
            .set(2, fact.shape[2].clone() + self.left + self.right);
        Ok(tvec!(fact))
    }
}

/// Nearest-neighbour upsampling of H and W by whole factors: every pixel
/// becomes an `fh` x `fw` block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upsample2d {
    pub fh: usize,
    pub fw: usize,
}

impl Upsample2d {
    fn upsample(&self, x: &[f32], [n, h, w, c]: [usize; 4], y: &mut [f32]) {
        let (row, orow) = (w * c, w * self.fw * c);
        for r in 0..n * h {
            let s = &x[r * row..][..row];
            let d = &mut y[r * self.fh * orow..][..self.fh * orow];
            // First output row pixel by pixel, the fh - 1 others copied whole.
            let (first, rest) = d.split_at_mut(orow);
            for (px, block) in s.chunks_exact(c).zip(first.chunks_exact_mut(c * self.fw)) {
                for dst in block.chunks_exact_mut(c) {
                    dst.copy_from_slice(px);
                }
            }
            for dst in rest.chunks_exact_mut(orow) {
                dst.copy_from_slice(first);
            }
        }
    }
}

impl Op for Upsample2d {
    fn name(&self) -> StaticName {
        "Upsample2d".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("x{} (H) x{} (W)", self.fh, self.fw)])
    }

    op_as_typed_op!();
}

impl EvalOp for Upsample2d {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let ([n, h, w, c], t) = nhwc_input(&input, "Upsample2d")?;
        ensure!(
            self.fh > 0 && self.fw > 0,
            "Upsample2d: zero factor in {self:?}"
        );
        let shape = [n, h * self.fh, w * self.fw, c];
        let mut out = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        if c > 0 {
            let x = t.try_as_plain_ram()?;
            let mut y = out.try_as_plain_ram_mut()?;
            self.upsample(x.as_slice::<f32>()?, [n, h, w, c], y.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Upsample2d {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut fact = nhwc(inputs, "Upsample2d")?;
        fact.shape.set(1, fact.shape[1].clone() * self.fh);
        fact.shape.set(2, fact.shape[2].clone() * self.fw);
        Ok(tvec!(fact))
    }
}

/// Sum over H and W keeping the dimensions: [N,H,W,C] -> [N,1,1,C], in one
/// pass over the input with one accumulator per channel. `centred`: the sum
/// of `(x - m)^2` for a second, per-channel input `m` (the instance norm's
/// variance: SQUARED_DIFFERENCE then MEAN, without writing the squares out).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SpatialSum {
    pub centred: bool,
}

impl SpatialSum {
    /// `row_acc` (C floats) sums one row in f32, which vectorizes; the row
    /// sums are added in f64 so a 100k-pixel picture loses no precision.
    /// The squares are `(a - m) * (a - m)`, as [`ChannelFn::SquaredDiff`]
    /// computes them, so the fused sum equals the two ops'.
    fn sum(x: &[f32], [n, h, w, c]: [usize; 4], centre: Option<&[f32]>, y: &mut [f32]) {
        let mut row_acc = vec![0f32; c];
        let mut total = vec![0f64; c];
        for b in 0..n {
            total.iter_mut().for_each(|t| *t = 0.0);
            for r in 0..h {
                let row = &x[(b * h + r) * w * c..][..w * c];
                let m = centre.map(|m| {
                    if m.len() > c {
                        &m[b * c..][..c]
                    } else {
                        &m[..c]
                    }
                });
                // `c` known to the compiler for the usual channel counts
                // (see `PerChannel::apply_pixels`).
                match c {
                    3 => sum_row_rgb(row, m, &mut row_acc),
                    16 => sum_row::<16>(row, m, &mut row_acc),
                    32 => sum_row::<32>(row, m, &mut row_acc),
                    64 => sum_row::<64>(row, m, &mut row_acc),
                    128 => sum_row::<128>(row, m, &mut row_acc),
                    _ => sum_row_dyn(row, m, &mut row_acc),
                }
                for (t, &a) in total.iter_mut().zip(&row_acc) {
                    *t += a as f64;
                }
            }
            for (o, &t) in y[b * c..][..c].iter_mut().zip(&total) {
                *o = t as f32;
            }
        }
    }
}

/// `acc` = the per-channel sums of a row's pixels (of `(v - m)^2` with a
/// centre `m`), in pixel order.
#[inline(always)]
fn sum_row<const C: usize>(row: &[f32], m: Option<&[f32]>, acc: &mut [f32]) {
    let mut a = [0f32; C];
    match m {
        None => row.chunks_exact(C).for_each(|px| {
            a.iter_mut().zip(&px[..C]).for_each(|(a, &v)| *a += v);
        }),
        Some(m) => {
            let m = &m[..C];
            row.chunks_exact(C).for_each(|px| {
                for ((a, &v), &k) in a.iter_mut().zip(&px[..C]).zip(m) {
                    *a += (v - k) * (v - k);
                }
            });
        }
    }
    acc[..C].copy_from_slice(&a);
}

/// [`sum_row`] for three channels: groups of four pixels are summed as 12
/// flat lanes (three vectors; see [`PerChannel::pixels_rgb`]), then the
/// lanes are folded into their channels.
pub(super) fn sum_row_rgb(row: &[f32], m: Option<&[f32]>, acc: &mut [f32]) {
    // Three accumulators of four lanes (one register each).
    let mut a = [[0f32; 4]; 3];
    let mut quads = row.chunks_exact(12);
    match m {
        None => (&mut quads).for_each(|q| {
            for (a, q) in a.iter_mut().zip(q.chunks_exact(4)) {
                a.iter_mut().zip(&q[..4]).for_each(|(a, &v)| *a += v);
            }
        }),
        Some(m) => {
            let mp = rgb_pattern(m);
            (&mut quads).for_each(|q| {
                for ((a, q), k) in a.iter_mut().zip(q.chunks_exact(4)).zip(mp.chunks_exact(4)) {
                    for ((a, &v), &k) in a.iter_mut().zip(&q[..4]).zip(&k[..4]) {
                        *a += (v - k) * (v - k);
                    }
                }
            });
        }
    }
    sum_row_dyn(quads.remainder(), m, acc);
    for (i, v) in a.into_iter().flatten().enumerate() {
        acc[i % 3] += v;
    }
}

fn sum_row_dyn(row: &[f32], m: Option<&[f32]>, acc: &mut [f32]) {
    let c = acc.len();
    acc.iter_mut().for_each(|a| *a = 0.0);
    match m {
        None => row.chunks_exact(c).for_each(|px| {
            acc.iter_mut().zip(px).for_each(|(a, &v)| *a += v);
        }),
        Some(m) => row.chunks_exact(c).for_each(|px| {
            for ((a, &v), &k) in acc.iter_mut().zip(px).zip(m) {
                *a += (v - k) * (v - k);
            }
        }),
    }
}

impl Op for SpatialSum {
    fn name(&self) -> StaticName {
        "SpatialSum".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![
            if self.centred { "of (x - m)^2" } else { "of x" }.into()
        ])
    }

    op_as_typed_op!();
}

impl EvalOp for SpatialSum {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let arity = if self.centred { 2 } else { 1 };
        ensure!(inputs.len() == arity, "SpatialSum: {} inputs", inputs.len());
        eval_with_vectors(
            &inputs,
            "SpatialSum",
            |[n, _, _, c]| Ok([n, 1, 1, c]),
            |x, dims, [m, _], y| Self::sum(x, dims, self.centred.then_some(m), y),
        )
    }
}

impl TypedOp for SpatialSum {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut fact = nhwc(inputs, "SpatialSum")?;
        fact.shape.set(1, 1.to_dim());
        fact.shape.set(2, 1.to_dim());
        Ok(tvec!(fact))
    }
}

/// What [`PerChannel`] computes from a pixel value `x` and its channel's `v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelFn {
    Add,
    Mul,
    /// `(x - v)^2`: TFLite SQUARED_DIFFERENCE, the instance norm's variance term.
    SquaredDiff,
    /// `x * v + o` with a second per-channel input `o`: the instance norm's
    /// scale then offset in one pass instead of two.
    MulAdd,
}

/// `f(x, v)` for a full [N,H,W,C] `x` and a per-channel [N or 1,1,1,C] `v`
/// (the instance norms' scale, offset and centring), optionally followed by
/// ReLU. tract's broadcasting binary ops walk such pairs through generic
/// ndarray zips; here every pixel is a short contiguous loop over C.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PerChannel {
    pub f: ChannelFn,
    pub relu: bool,
}

impl PerChannel {
    /// Whether `x` (full) and `v` (per channel) have shapes this op takes.
    pub fn fits(x: &[usize], v: &[usize]) -> bool {
        x.len() == 4
            && v.len() == 4
            && (v[0] == 1 || v[0] == x[0])
            && v[1] == 1
            && v[2] == 1
            && v[3] == x[3]
    }

    /// How many inputs the op takes: the picture and one or two vectors.
    pub fn arity(&self) -> usize {
        if self.f == ChannelFn::MulAdd {
            3
        } else {
            2
        }
    }

    fn apply(&self, x: &[f32], [n, h, w, c]: [usize; 4], vs: [&[f32]; 2], y: &mut [f32]) {
        for b in 0..n {
            let (v, o) = (pick(vs[0], b, c), pick(vs[1], b, c));
            let xs = &x[b * h * w * c..][..h * w * c];
            let ys = &mut y[b * h * w * c..][..h * w * c];
            in_bands(ys, c, |start, ys| {
                self.apply_pixels(&xs[start..][..ys.len()], c, v, o, ys)
            });
        }
    }

    /// `ys = f(xs, v[, o])` (then ReLU) for whole pixels of `c` channels.
    /// The usual channel counts get a copy with `c` known to the compiler:
    /// with a run-time `c` each pixel paid a vectorized loop's set-up and
    /// scalar tail (on aarch64 about as many instructions as the work).
    fn apply_pixels(&self, xs: &[f32], c: usize, v: &[f32], o: &[f32], ys: &mut [f32]) {
        match c {
            3 => self.pixels_rgb(xs, v, o, ys),
            8 => self.pixels::<8>(xs, v, o, ys),
            16 => self.pixels::<16>(xs, v, o, ys),
            32 => self.pixels::<32>(xs, v, o, ys),
            64 => self.pixels::<64>(xs, v, o, ys),
            128 => self.pixels::<128>(xs, v, o, ys),
            _ => {
                for (xp, yp) in xs.chunks_exact(c).zip(ys.chunks_exact_mut(c)) {
                    self.pixel(xp, v, o, yp);
                }
            }
        }
    }

    #[inline(always)]
    fn pixels<const C: usize>(&self, xs: &[f32], v: &[f32], o: &[f32], ys: &mut [f32]) {
        let (v, o) = (&v[..C], &o[..C]);
        for (xp, yp) in xs.chunks_exact(C).zip(ys.chunks_exact_mut(C)) {
            self.pixel(&xp[..C], v, o, &mut yp[..C]);
        }
    }

    /// Three channels (the last layer's instance norm, at full size): four
    /// pixels are twelve floats, three whole vectors, so the per-channel
    /// values are repeated into a 12-lane pattern and groups of four pixels
    /// run as one flat loop. Per-pixel loops of 3 stayed scalar.
    #[inline(always)]
    fn pixels_rgb(&self, xs: &[f32], v: &[f32], o: &[f32], ys: &mut [f32]) {
        let (vp, op) = (rgb_pattern(v), rgb_pattern(o));
        let mut xq = xs.chunks_exact(12);
        let mut yq = ys.chunks_exact_mut(12);
        for (xp, yp) in (&mut xq).zip(&mut yq) {
            // Three vectors of four: each a loop the compiler keeps in one
            // register (whole 12-float loops came out partly scalar).
            for q in 0..3 {
                let r = 4 * q..4 * q + 4;
                self.pixel(&xp[r.clone()], &vp[r.clone()], &op[r.clone()], &mut yp[r]);
            }
        }
        let (xr, yr) = (xq.remainder(), yq.into_remainder());
        for (xp, yp) in xr.chunks_exact(3).zip(yr.chunks_exact_mut(3)) {
            self.pixel(xp, v, o, yp);
        }
    }

    /// One pixel: the function, then ReLU (the same operations, in the same
    /// order, as two passes would do).
    #[inline(always)]
    fn pixel(&self, xp: &[f32], v: &[f32], o: &[f32], yp: &mut [f32]) {
        let yx = yp.iter_mut().zip(xp);
        match self.f {
            ChannelFn::Add => yx.zip(v).for_each(|((y, a), k)| *y = a + k),
            ChannelFn::Mul => yx.zip(v).for_each(|((y, a), k)| *y = a * k),
            ChannelFn::SquaredDiff => yx.zip(v).for_each(|((y, a), k)| *y = (a - k) * (a - k)),
            ChannelFn::MulAdd => yx
                .zip(v.iter().zip(o))
                .for_each(|((y, a), (k, o))| *y = a * k + o),
        }
        if self.relu {
            yp.iter_mut().for_each(|y| *y = relu(*y));
        }
    }
}

/// `max(y, 0)`: on armv7 a comparison, not a call to libm's `fmaxf` (see
/// [`super::quant::clamp`]).
#[inline(always)]
fn relu(y: f32) -> f32 {
    #[cfg(target_arch = "arm")]
    {
        if y < 0.0 {
            0.0
        } else {
            y
        }
    }
    #[cfg(not(target_arch = "arm"))]
    {
        y.max(0.0)
    }
}

/// Three channels' values repeated over four pixels (12 lanes).
#[inline(always)]
fn rgb_pattern(v: &[f32]) -> [f32; 12] {
    std::array::from_fn(|i| v[i % 3])
}

/// A per-channel vector's values for picture `b`: a vector is [1,1,1,C]
/// (shared) or [N,1,1,C] (one per picture).
fn pick(v: &[f32], b: usize, c: usize) -> &[f32] {
    if v.len() > c {
        &v[b * c..][..c]
    } else {
        &v[..c]
    }
}

impl Op for PerChannel {
    fn name(&self) -> StaticName {
        "PerChannel".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{:?}{}",
            self.f,
            if self.relu { " + relu" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PerChannel {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs.len() == self.arity(),
            "PerChannel {:?}: {} inputs",
            self.f,
            inputs.len()
        );
        eval_with_vectors(&inputs, "PerChannel", Ok, |x, dims, vs, y| {
            self.apply(x, dims, vs, y)
        })
    }
}

impl TypedOp for PerChannel {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == self.arity(),
            "PerChannel {:?}: {} inputs",
            self.f,
            inputs.len()
        );
        let fact = nhwc(inputs, "PerChannel")?;
        for v in &inputs[1..] {
            nhwc(std::slice::from_ref(v), "PerChannel")?;
        }
        Ok(tvec!(fact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_core::ops::array::{Pad, PadMode};
    use tract_core::ops::nn::{Reduce, Reducer};

    /// A deterministic, non-symmetric test picture.
    fn picture(shape: [usize; 4]) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1013) as f32 / 101.0 - 3.0)
            .collect();
        Tensor::from_shape(&shape, &v).unwrap()
    }

    fn eval1(op: &dyn TypedOp, x: &Tensor) -> Tensor {
        let mut out = op
            .eval_out_of_plan(tvec!(x.clone().into_tvalue()))
            .unwrap()
            .unwrap();
        out.remove(0).into_tensor()
    }

    fn floats(t: &Tensor) -> Vec<f32> {
        t.try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    /// Every value of `got` within `rel` (relative, absolute below 1) of
    /// `want`'s.
    fn assert_close(got: &Tensor, want: &Tensor, rel: f32, what: &str) {
        for (a, b) in floats(got).iter().zip(floats(want)) {
            assert!(
                (a - b).abs() <= rel * b.abs().max(1.0),
                "{what}: {a} vs {b}"
            );
        }
    }

    /// numpy 'reflect' index.
    fn reflect(i: isize, len: usize) -> usize {
        let len = len as isize;
        let i = if i < 0 { -i } else { i };
        (if i >= len { 2 * (len - 1) - i } else { i }) as usize
    }

    #[test]
    fn reflect_pad_matches_tract_pad_on_odd_sizes() {
        for (shape, (t, b, l, r)) in [
            ([1, 5, 7, 3], (4, 4, 4, 4)),
            ([2, 9, 6, 5], (1, 3, 0, 2)),
            ([1, 3, 11, 1], (2, 0, 3, 1)),
            ([1, 2, 2, 2], (1, 1, 1, 1)),
        ] {
            let x = picture(shape);
            let ours = eval1(
                &ReflectPad2d {
                    top: t,
                    bottom: b,
                    left: l,
                    right: r,
                    pre: None,
                },
                &x,
            );
            let pads = vec![(0, 0), (t, b), (l, r), (0, 0)];
            let generic = eval1(
                &Pad {
                    pads,
                    mode: PadMode::Reflect,
                },
                &x,
            );
            assert_eq!(ours.shape(), generic.shape(), "{shape:?}");
            assert_eq!(
                floats(&ours),
                floats(&generic),
                "{shape:?} pads {t},{b},{l},{r}"
            );
        }
    }

    #[test]
    fn reflect_pad_follows_numpy_reflect() {
        let [n, h, w, c] = [1, 4, 5, 2];
        let (t, b, l, r) = (3, 2, 1, 4);
        let x = picture([n, h, w, c]);
        let xs = floats(&x);
        let y = floats(&eval1(
            &ReflectPad2d {
                top: t,
                bottom: b,
                left: l,
                right: r,
                pre: None,
            },
            &x,
        ));
        let (oh, ow) = (h + t + b, w + l + r);
        for oy in 0..oh {
            for ox in 0..ow {
                let sy = reflect(oy as isize - t as isize, h);
                let sx = reflect(ox as isize - l as isize, w);
                for ch in 0..c {
                    assert_eq!(
                        y[(oy * ow + ox) * c + ch],
                        xs[(sy * w + sx) * c + ch],
                        "({oy},{ox})"
                    );
                }
            }
        }
    }

    #[test]
    fn reflect_pad_refuses_pads_as_large_as_the_side() {
        let x = picture([1, 3, 8, 2]);
        let op = ReflectPad2d {
            top: 3,
            bottom: 0,
            left: 0,
            right: 0,
            pre: None,
        };
        assert!(op.eval_out_of_plan(tvec!(x.into_tvalue())).is_err());
    }

    #[test]
    fn upsample_repeats_each_pixel_into_a_block() {
        for (shape, (fh, fw)) in [
            ([1, 3, 5, 7], (2, 2)),
            ([2, 1, 3, 1], (3, 1)),
            ([1, 5, 2, 3], (1, 4)),
        ] {
            let [n, h, w, c] = shape;
            let x = picture(shape);
            let xs = floats(&x);
            let y = eval1(&Upsample2d { fh, fw }, &x);
            assert_eq!(y.shape(), &[n, h * fh, w * fw, c]);
            let y = floats(&y);
            let (oh, ow) = (h * fh, w * fw);
            for b in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ch in 0..c {
                            let want = xs[((b * h + oy / fh) * w + ox / fw) * c + ch];
                            assert_eq!(y[((b * oh + oy) * ow + ox) * c + ch], want);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn spatial_sum_matches_tract_reduce_sum() {
        let shapes = [
            [1, 7, 9, 5],
            [1, 9, 11, 3],
            [2, 2, 3, 3],
            [2, 3, 1, 4],
            [1, 1, 13, 1],
            [1, 31, 17, 32],
            [2, 5, 3, 16],
            [1, 4, 6, 64],
            [1, 3, 5, 128],
        ];
        for shape in shapes {
            let x = picture(shape);
            let ours = eval1(&SpatialSum::default(), &x);
            let generic = eval1(&Reduce::new(tvec![1, 2], Reducer::Sum), &x);
            assert_eq!(ours.shape(), generic.shape(), "{shape:?}");
            assert_close(&ours, &generic, 1e-4, &format!("{shape:?}"));
        }
    }

    #[test]
    fn spatial_sum_keeps_precision_on_a_large_picture() {
        // 0.1 is not representable: one f32 running sum over 147k pixels
        // drifts by ~1e-3 here; per-row partials stay within a few ulps.
        let (h, w) = (384, 384);
        let x = Tensor::from_shape(&[1, h, w, 2], &vec![0.1f32; h * w * 2]).unwrap();
        let y = floats(&eval1(&SpatialSum::default(), &x));
        let want = 0.1f32 as f64 * (h * w) as f64;
        for v in y {
            assert!(((v as f64 - want) / want).abs() < 1e-6, "{v} vs {want}");
        }
    }

    #[test]
    fn padding_with_a_fused_per_channel_op_equals_the_op_then_padding() {
        let x = picture([1, 6, 5, 4]);
        let v = Tensor::from_shape(&[1, 1, 1, 4], &[0.5f32, -1.0, 2.0, 0.0]).unwrap();
        let o = Tensor::from_shape(&[1, 1, 1, 4], &[1.0f32, 0.25, -3.0, 0.5]).unwrap();
        let f = PerChannel {
            f: ChannelFn::MulAdd,
            relu: true,
        };
        let pad = |pre| ReflectPad2d {
            top: 2,
            bottom: 1,
            left: 1,
            right: 3,
            pre,
        };
        let inputs = || {
            tvec!(
                x.clone().into_tvalue(),
                v.clone().into_tvalue(),
                o.clone().into_tvalue()
            )
        };
        let normed = f.eval_out_of_plan(inputs()).unwrap().unwrap().remove(0);
        let two_ops = floats(&eval1(&pad(None), &normed.into_tensor()));
        let fused = pad(Some(f)).eval_out_of_plan(inputs()).unwrap().unwrap();
        assert_eq!(floats(&fused[0]), two_ops);
    }

    #[test]
    fn padding_and_per_channel_ops_give_the_same_picture_on_two_threads() {
        use tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};
        // Large enough (> 64k values) to be split into bands.
        let x = picture([1, 67, 129, 16]);
        let v = picture([1, 1, 1, 16]);
        let o = picture([1, 1, 1, 16]);
        let f = PerChannel {
            f: ChannelFn::MulAdd,
            relu: true,
        };
        let pad = ReflectPad2d {
            top: 4,
            bottom: 4,
            left: 4,
            right: 4,
            pre: Some(f.clone()),
        };
        let ops: [&dyn TypedOp; 2] = [&f, &pad];
        for op in ops {
            let run = || {
                let inputs = tvec!(
                    x.clone().into_tvalue(),
                    v.clone().into_tvalue(),
                    o.clone().into_tvalue()
                );
                floats(&op.eval_out_of_plan(inputs).unwrap().unwrap()[0])
            };
            let one = run();
            let two = multithread_tract_scope(Executor::multithread(2), run);
            assert_eq!(one, two, "{}", op.name());
        }
    }

    #[test]
    fn centred_sum_equals_squared_difference_then_sum() {
        let x = picture([2, 5, 7, 3]);
        let m = Tensor::from_shape(&[2, 1, 1, 3], &[0.5f32, -1.0, 2.0, 0.0, 1.5, -0.25]).unwrap();
        centred_sum_equals_two_ops(x, m);
        // The channel counts with a compiled copy of their own.
        for c in [16, 32, 64, 128] {
            centred_sum_equals_two_ops(picture([2, 3, 5, c]), picture([2, 1, 1, c]));
        }
    }

    fn centred_sum_equals_two_ops(x: Tensor, m: Tensor) {
        let sq = PerChannel {
            f: ChannelFn::SquaredDiff,
            relu: false,
        };
        let squares = sq
            .eval_out_of_plan(tvec!(x.clone().into_tvalue(), m.clone().into_tvalue()))
            .unwrap()
            .unwrap()
            .remove(0)
            .into_tensor();
        let two_ops = floats(&eval1(&SpatialSum::default(), &squares));
        let fused = SpatialSum { centred: true }
            .eval_out_of_plan(tvec!(x.into_tvalue(), m.into_tvalue()))
            .unwrap()
            .unwrap();
        assert_eq!(floats(&fused[0]), two_ops);
    }

    /// The three ops inside an optimized plan, against the generic ops.
    #[test]
    fn ops_survive_tract_optimization() {
        let shape = [1usize, 9, 11, 3];
        let build = |custom: bool| -> TypedModel {
            let mut m = TypedModel::default();
            let x = m.add_source("x", f32::fact(shape)).unwrap();
            let p = if custom {
                m.wire_node(
                    "pad",
                    ReflectPad2d {
                        top: 2,
                        bottom: 1,
                        left: 3,
                        right: 2,
                        pre: None,
                    },
                    &[x],
                )
            } else {
                let pads = vec![(0, 0), (2, 1), (3, 2), (0, 0)];
                m.wire_node(
                    "pad",
                    Pad {
                        pads,
                        mode: PadMode::Reflect,
                    },
                    &[x],
                )
            }
            .unwrap();
            let s = if custom {
                m.wire_node("sum", SpatialSum::default(), &p).unwrap()
            } else {
                m.wire_node("sum", Reduce::new(tvec![1, 2], Reducer::Sum), &p)
                    .unwrap()
            };
            // Both are rank 4, so the binary op broadcasts [N,1,1,C].
            let d = m
                .wire_node("sub", tract_core::ops::math::sub(), &[p[0], s[0]])
                .unwrap();
            let u = m.wire_node("up", Upsample2d { fh: 2, fw: 2 }, &d).unwrap();
            m.select_output_outlets(&u).unwrap();
            m
        };
        let run = |m: TypedModel| -> Vec<f32> {
            let plan = SimplePlan::new(m.into_optimized().unwrap()).unwrap();
            let y = plan.run(tvec!(picture(shape).into_tvalue())).unwrap();
            floats(&y[0].clone().into_tensor())
        };
        let ours = run(build(true));
        // The generic version without the upsampling, upsampled by hand.
        let mut generic_model = build(false);
        let last = generic_model.output_outlets().unwrap()[0];
        let up_input = generic_model.node(last.node).inputs[0];
        generic_model.select_output_outlets(&[up_input]).unwrap();
        let small = run(generic_model);
        let (h, w, c) = (9 + 3, 11 + 5, 3);
        assert_eq!(ours.len(), small.len() * 4);
        for oy in 0..2 * h {
            for ox in 0..2 * w {
                for ch in 0..c {
                    let a = ours[(oy * 2 * w + ox) * c + ch];
                    let b = small[((oy / 2) * w + ox / 2) * c + ch];
                    // The sums run in another order: f32 rounding only.
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "({oy},{ox},{ch}): {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn per_channel_matches_tract_broadcasting_binary_ops() {
        use tract_core::ops::math;
        // Odd channel counts and every count with its own compiled copy.
        let shapes = [
            ([1, 5, 7, 3], 1),
            ([2, 3, 4, 5], 2),
            ([2, 1, 9, 1], 1),
            ([1, 3, 5, 8], 1),
            ([2, 2, 3, 16], 2),
            ([1, 3, 3, 32], 1),
            ([2, 2, 2, 64], 2),
            ([1, 2, 3, 128], 1),
        ];
        for (shape, vn) in shapes {
            let [n, h, w, c] = shape;
            let x = picture(shape);
            let v = picture([vn, 1, 1, c]);
            for f in [ChannelFn::Add, ChannelFn::Mul, ChannelFn::SquaredDiff] {
                for relu in [false, true] {
                    let ours = PerChannel { f, relu }
                        .eval_out_of_plan(tvec!(x.clone().into_tvalue(), v.clone().into_tvalue()))
                        .unwrap()
                        .unwrap()
                        .remove(0)
                        .into_tensor();
                    let generic = {
                        let bin = |op: Box<dyn TypedOp>, a: &Tensor, b: &Tensor| {
                            op.eval_out_of_plan(tvec!(
                                a.clone().into_tvalue(),
                                b.clone().into_tvalue()
                            ))
                            .unwrap()
                            .unwrap()
                            .remove(0)
                            .into_tensor()
                        };
                        let mut y = match f {
                            ChannelFn::Add => bin(Box::new(math::add()), &x, &v),
                            ChannelFn::Mul => bin(Box::new(math::mul()), &x, &v),
                            ChannelFn::SquaredDiff => {
                                let d = bin(Box::new(math::sub()), &x, &v);
                                bin(Box::new(math::mul()), &d, &d)
                            }
                            ChannelFn::MulAdd => unreachable!("three inputs: tested below"),
                        };
                        if relu {
                            y = bin(
                                Box::new(math::max()),
                                &y,
                                &tensor0(0f32).broadcast_into_rank(4).unwrap(),
                            );
                        }
                        y
                    };
                    assert_eq!(ours.shape(), &[n, h, w, c]);
                    assert_eq!(
                        floats(&ours),
                        floats(&generic),
                        "{shape:?} {f:?} relu {relu}"
                    );
                }
            }
        }
    }

    #[test]
    fn per_channel_mul_add_equals_mul_then_add() {
        for shape in [
            [1, 5, 7, 3],
            [2, 3, 4, 5],
            [1, 3, 5, 16],
            [2, 2, 3, 32],
            [1, 2, 2, 128],
        ] {
            let [_, _, _, c] = shape;
            let x = picture(shape);
            let (v, o) = (picture([1, 1, 1, c]), picture([shape[0], 1, 1, c]));
            let run = |op: PerChannel, ins: TVec<TValue>| {
                op.eval_out_of_plan(ins)
                    .unwrap()
                    .unwrap()
                    .remove(0)
                    .into_tensor()
            };
            for relu in [false, true] {
                let fused = run(
                    PerChannel {
                        f: ChannelFn::MulAdd,
                        relu,
                    },
                    tvec!(
                        x.clone().into_tvalue(),
                        v.clone().into_tvalue(),
                        o.clone().into_tvalue()
                    ),
                );
                let m = run(
                    PerChannel {
                        f: ChannelFn::Mul,
                        relu: false,
                    },
                    tvec!(x.clone().into_tvalue(), v.clone().into_tvalue()),
                );
                let two = run(
                    PerChannel {
                        f: ChannelFn::Add,
                        relu,
                    },
                    tvec!(m.into_tvalue(), o.clone().into_tvalue()),
                );
                // One rounding less is allowed (a fused multiply-add).
                assert_close(&fused, &two, 1e-6, &format!("{shape:?}"));
            }
        }
    }

    #[test]
    fn per_channel_refuses_a_full_second_operand() {
        let x = picture([1, 3, 3, 2]);
        let op = PerChannel {
            f: ChannelFn::Add,
            relu: false,
        };
        assert!(op
            .eval_out_of_plan(tvec!(x.clone().into_tvalue(), x.into_tvalue()))
            .is_err());
        assert!(!PerChannel::fits(&[1, 3, 3, 2], &[1, 1, 1, 3]));
        assert!(PerChannel::fits(&[2, 3, 3, 2], &[2, 1, 1, 2]));
    }
}
