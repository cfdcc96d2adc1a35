//! int8 activations as bytes between the integer ops.
//!
//! The importer's integer wires carry f32 integers `q - zero_point`: every
//! op can read them, and they are exact. Between two [`QConv`]s (and the
//! residual ADDs of the prediction network) that costs a conversion from
//! f32 to bytes at each convolution's input and four bytes per value of
//! memory traffic: `perf` put the conversion alone at 20% of a prediction.
//! [`bytes_between_int_ops`] runs once on the optimized graph and turns
//! every wire whose writer and readers all handle bytes into a u8 wire
//! holding `q + 128` (the int8 value shifted to u8). The arithmetic does not
//! change, so the outputs stay bit-identical. (The int8 transfer network
//! has no such wire: each of its convolutions feeds an instance norm.)

use tract_core::internal::*;

use super::qconv::{OutElem, QConv};
use super::quant::{QuantFn, Requant};
#[allow(unused_imports)] // used on x86-64 only
use crate::kernels::{self, Isa};

/// XNNPACK's fixed-point int8 ADD ([`QuantFn::Add`]) on byte inputs
/// `q + 128`: `(a * ma + b * mb + c) >> shift` with the input zero points
/// and the rounding term folded into `c`, clamped to `[lo, hi]` (as
/// `q - zp_out`), written as bytes `q + 128` or as f32 `q - zp_out`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ByteAdd {
    ma: i32,
    mb: i32,
    c: i32,
    shift: u32,
    lo: i32,
    hi: i32,
    /// `zp_out + 128`.
    zo: i32,
    bytes_out: bool,
}

impl ByteAdd {
    /// The ADD of `Requant` `r` (inputs with zero points `za`, `zb`), or
    /// `None` when it is not an ADD or a sum could leave i32.
    pub fn new(r: &Requant, za: i32, zb: i32, bytes_out: bool) -> Option<ByteAdd> {
        let QuantFn::Add { ma, mb, shift } = r.f else {
            return None;
        };
        if shift == 0 || shift > 31 {
            return None;
        }
        // a - za = byte - (128 + za): the offsets are constants. The sum
        // runs in wrapping i32: exact as long as its true value fits, with
        // |a - za| <= 255, whatever the partial sums do.
        let half = 1i64 << (shift - 1);
        if 255 * (ma.abs() + mb.abs()) + half > i32::MAX as i64 {
            return None;
        }
        let c = half - (128 + za as i64) * ma - (128 + zb as i64) * mb;
        Some(ByteAdd {
            ma: ma as i32,
            mb: mb as i32,
            c: c as i32, // wraps like the sums
            shift,
            lo: r.lo,
            hi: r.hi,
            zo: r.zp + 128,
            bytes_out,
        })
    }

    /// [`Self::apply_portable`], compiled for the table's instruction set.
    fn apply<O: OutElem>(&self, a: &[u8], b: &[u8], y: &mut [O]) {
        #[cfg(target_arch = "x86_64")]
        if kernels::table().passes == Isa::Avx2 {
            // SAFETY: the table picks AVX2 only where the CPU has it.
            return unsafe { kernels::x86_64::passes::byte_add(self, a, b, y) };
        }
        self.apply_portable(a, b, y)
    }

    #[inline(always)]
    pub(crate) fn apply_portable<O: OutElem>(&self, a: &[u8], b: &[u8], y: &mut [O]) {
        let (ma, mb, c, shift) = (self.ma, self.mb, self.c, self.shift);
        let (lo, hi) = (self.lo, self.hi);
        let zo = self.zo;
        for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
            let sum = (a as i32)
                .wrapping_mul(ma)
                .wrapping_add((b as i32).wrapping_mul(mb))
                .wrapping_add(c);
            let q = (sum >> shift).clamp(lo, hi);
            *y = O::put_int(q, zo);
        }
    }
}

impl Op for ByteAdd {
    fn name(&self) -> StaticName {
        "ByteAdd".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "({} a + {} b + {}) >> {} to [{}, {}]{}",
            self.ma,
            self.mb,
            self.c,
            self.shift,
            self.lo,
            self.hi,
            if self.bytes_out { " bytes out" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for ByteAdd {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (a, b) = args_2!(inputs);
        ensure!(
            a.datum_type() == DatumType::U8
                && b.datum_type() == DatumType::U8
                && a.shape() == b.shape(),
            "ByteAdd: inputs {:?} {:?} and {:?} {:?}, expected bytes of one shape",
            a.datum_type(),
            a.shape(),
            b.datum_type(),
            b.shape()
        );
        let (av, bv) = (a.try_as_plain_ram()?, b.try_as_plain_ram()?);
        let (a8, b8) = (av.as_slice::<u8>()?, bv.as_slice::<u8>()?);
        fn go<O: OutElem + Datum>(
            op: &ByteAdd,
            a: &[u8],
            b: &[u8],
            shape: &[usize],
        ) -> TractResult<Tensor> {
            // SAFETY: every element is written below.
            let mut y = unsafe { Tensor::uninitialized::<O>(shape)? };
            {
                let mut yv = y.try_as_plain_ram_mut()?;
                let ys = yv.as_slice_mut::<O>()?;
                super::ops::in_bands(ys, 1, |start, ys| {
                    op.apply(&a[start..][..ys.len()], &b[start..][..ys.len()], ys)
                });
            }
            Ok(y)
        }
        let y = if self.bytes_out {
            go::<u8>(self, a8, b8, a.shape())?
        } else {
            go::<f32>(self, a8, b8, a.shape())?
        };
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for ByteAdd {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 2, "ByteAdd: {} inputs", inputs.len());
        ensure!(
            inputs.iter().all(|i| i.datum_type == DatumType::U8),
            "ByteAdd: inputs are not bytes"
        );
        let dt = if self.bytes_out {
            DatumType::U8
        } else {
            DatumType::F32
        };
        Ok(tvec!(dt.fact(inputs[0].shape.clone())))
    }
}

/// The output zero point of a node that can write bytes.
fn byte_writer_zp(node: &TypedNode) -> Option<i32> {
    if let Some(q) = node.op_as::<QConv>() {
        return Some(q.params().zp_out);
    }
    if let Some(a) = node.op_as::<ByteAdd>() {
        return Some(a.zo - 128);
    }
    node.op_as::<Requant>()
        .filter(|r| matches!(r.f, QuantFn::Add { .. }))
        .map(|r| r.zp)
}

/// Turns the wires between integer ops into bytes (see the module doc);
/// returns how many. A wire becomes bytes when its writer is a [`QConv`]
/// or an int8 ADD whose inputs are bytes, it is not a graph output, and
/// every reader is a `QConv` or such an ADD.
pub fn bytes_between_int_ops(model: &mut TypedModel) -> TractResult<usize> {
    let outputs: Vec<usize> = model.output_outlets()?.iter().map(|o| o.node).collect();
    let is_add = |node: &TypedNode| {
        node.op_as::<Requant>()
            .is_some_and(|r| matches!(r.f, QuantFn::Add { .. }))
            && node.inputs.len() == 2
    };
    // Start from every possible writer and drop those a reader or an input
    // rules out, until nothing changes.
    let mut bytes: Vec<bool> = model
        .nodes()
        .iter()
        .map(|node| {
            node.outputs.len() == 1 && !outputs.contains(&node.id) && byte_writer_zp(node).is_some()
        })
        .collect();
    loop {
        let mut changed = false;
        for node in model.nodes() {
            if !bytes[node.id] {
                continue;
            }
            let inputs_ok = !is_add(node) || {
                let (a, b) = (node.inputs[0], node.inputs[1]);
                let (na, nb) = (model.node(a.node), model.node(b.node));
                let r = node.op_as::<Requant>().expect("an ADD");
                bytes[a.node]
                    && bytes[b.node]
                    && model.outlet_fact(a)?.shape == model.outlet_fact(b)?.shape
                    && ByteAdd::new(
                        r,
                        byte_writer_zp(na).unwrap_or(0),
                        byte_writer_zp(nb).unwrap_or(0),
                        true,
                    )
                    .is_some()
            };
            let readers_ok = node.outputs[0].successors.iter().all(|s| {
                let r = model.node(s.node);
                r.op_as::<QConv>().is_some() || (is_add(r) && bytes[s.node])
            });
            if !(inputs_ok && readers_ok) {
                bytes[node.id] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut count = 0;
    for (id, _) in bytes.iter().enumerate().filter(|(_, &b)| b) {
        let node = model.node(id);
        let op: Box<dyn TypedOp> = if let Some(q) = node.op_as::<QConv>() {
            Box::new(q.with_byte_output())
        } else {
            let r = node.op_as::<Requant>().expect("an ADD");
            let za = byte_writer_zp(model.node(node.inputs[0].node)).unwrap_or(0);
            let zb = byte_writer_zp(model.node(node.inputs[1].node)).unwrap_or(0);
            Box::new(ByteAdd::new(r, za, zb, true).context("ByteAdd checked above")?)
        };
        let shape = node.outputs[0].fact.shape.clone();
        let node = model.node_mut(id);
        node.op = op;
        node.outputs[0].fact = DatumType::U8.fact(shape);
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tflite::{import, ImportOptions};

    /// Every node's output as integers `q - zp` (bytes are `q + 128`).
    fn run_all(m: &TypedModel, inputs: &[Tensor]) -> Vec<Option<Vec<f32>>> {
        let plan = SimplePlan::new(m.clone()).unwrap();
        let mut state = SimpleState::new(&plan).unwrap();
        let mut outs = vec![None; m.nodes().len()];
        let inputs = inputs.iter().map(|t| t.clone().into_tvalue()).collect();
        state
            .run_plan_with_eval(inputs, |ctx, s, node, inputs| {
                let o = tract_core::plan::eval(ctx, s, node, inputs)?;
                let t = o[0].try_as_plain_ram()?;
                outs[node.id] = match o[0].datum_type() {
                    DatumType::U8 => {
                        let zp = byte_writer_zp(node).expect("only integer ops write bytes");
                        let b = t.as_slice::<u8>()?;
                        Some(b.iter().map(|&b| (b as i32 - 128 - zp) as f32).collect())
                    }
                    DatumType::F32 => Some(t.as_slice::<f32>()?.to_vec()),
                    _ => None,
                };
                Ok::<_, TractError>(o)
            })
            .unwrap();
        outs
    }

    /// Imports an official int8 file from ../shared/models (fails loudly
    /// when it is absent), optimized as the runner does it.
    fn optimized(file: &str, input_hw: Option<(usize, usize)>) -> TypedModel {
        let shared = std::env::var("STYLEFRAME_SHARED")
            .unwrap_or_else(|_| format!("{}/../../shared", env!("CARGO_MANIFEST_DIR")));
        let path = format!("{shared}/models/{file}");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let opts = ImportOptions {
            input_hw,
            emulate_int8: true,
        };
        import(&bytes, &opts)
            .unwrap()
            .model
            .into_optimized()
            .unwrap()
    }

    fn check_same_values(file: &str, input_hw: Option<(usize, usize)>, wires: usize) {
        let f32_wires = optimized(file, input_hw);
        let mut byte_wires = f32_wires.clone();
        let n = bytes_between_int_ops(&mut byte_wires).unwrap();
        eprintln!("{file}: {n} byte wires");
        // Where the kernel table leaves the int8 convolutions to tract
        // (armv7), no wire can be bytes, and the model is unchanged: nothing
        // to compare (`run_all` reads plain tensors only). Elsewhere a
        // missing QConv fails the count below.
        if kernels::table().qconv.is_none() {
            assert_eq!(n, 0, "{file}: byte wires without QConv");
            return;
        }
        assert_eq!(n, wires, "{file}: byte wires");
        let mut rng = fastrand::Rng::with_seed(7);
        let inputs: Vec<Tensor> = f32_wires
            .input_outlets()
            .unwrap()
            .iter()
            .map(|&o| {
                let shape = f32_wires
                    .outlet_fact(o)
                    .unwrap()
                    .shape
                    .as_concrete()
                    .unwrap()
                    .to_vec();
                let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.f32()).collect();
                Tensor::from_shape(&shape, &v).unwrap()
            })
            .collect();
        let (a, b) = (run_all(&f32_wires, &inputs), run_all(&byte_wires, &inputs));
        for node in byte_wires.nodes() {
            assert_eq!(
                a[node.id],
                b[node.id],
                "{file}: node {} ({} {:?}) differs",
                node.id,
                node.op().name(),
                node.op().info()
            );
        }
    }

    #[test]
    fn byte_wires_change_no_value_of_the_prediction_network() {
        // 51 of its 53 convolutions (not the one before MEAN, nor the
        // last) and all 10 residual ADDs.
        check_same_values("style_predict_quantized_256.tflite", None, 61);
    }

    /// XNNPACK's ADD on integers `q - zp`, in i64: the definition.
    fn add_reference(r: &Requant, a: i64, b: i64) -> i64 {
        let QuantFn::Add { ma, mb, shift } = r.f else {
            unreachable!()
        };
        ((a * ma + b * mb + (1 << (shift - 1))) >> shift).clamp(r.lo as i64, r.hi as i64)
    }

    #[test]
    fn byte_add_is_the_int8_add_on_bytes() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..200 {
            let shift = rng.u32(16..24);
            // As `int8_add` makes them: up to 21 bits.
            let m = |rng: &mut fastrand::Rng| rng.i64(-(1 << 21)..(1 << 21));
            let (za, zb, zo) = (rng.i32(-128..128), rng.i32(-128..128), rng.i32(-128..128));
            let r = Requant {
                f: QuantFn::Add {
                    ma: m(&mut rng),
                    mb: m(&mut rng),
                    shift,
                },
                lo: (-128 - zo).max(if rng.bool() { 0 } else { -255 }),
                hi: 127 - zo,
                zp: zo,
            };
            let a: Vec<u8> = (0..301).map(|_| rng.u8(..)).collect();
            let b: Vec<u8> = (0..301).map(|_| rng.u8(..)).collect();
            let want: Vec<i64> = a
                .iter()
                .zip(&b)
                .map(|(&a, &b)| {
                    add_reference(&r, a as i64 - 128 - za as i64, b as i64 - 128 - zb as i64)
                })
                .collect();
            let mut yb = vec![0u8; a.len()];
            ByteAdd::new(&r, za, zb, true)
                .unwrap()
                .apply(&a, &b, &mut yb);
            let got: Vec<i64> = yb.iter().map(|&y| y as i64 - 128 - zo as i64).collect();
            assert_eq!(got, want, "{r:?} za {za} zb {zb}: bytes out");
            let mut yf = vec![0f32; a.len()];
            ByteAdd::new(&r, za, zb, false)
                .unwrap()
                .apply(&a, &b, &mut yf);
            let got: Vec<i64> = yf.iter().map(|&y| y as i64).collect();
            assert_eq!(got, want, "{r:?} za {za} zb {zb}: f32 out");
        }
    }

    #[test]
    fn byte_add_declines_what_could_overflow_i32() {
        let r = Requant {
            f: QuantFn::Add {
                ma: 1 << 22,
                mb: 1 << 22,
                shift: 24,
            },
            lo: -128,
            hi: 127,
            zp: 0,
        };
        assert!(ByteAdd::new(&r, 0, 0, true).is_none());
        let scale = Requant {
            f: QuantFn::Scale(vec![0.5]),
            ..r
        };
        assert!(ByteAdd::new(&scale, 0, 0, true).is_none());
    }
}
