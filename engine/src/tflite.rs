//! A small importer from the TFLite flatbuffer straight onto tract-core ops.
//!
//! Why not tract-tflite's own loader: as published it cannot load Magenta's
//! files (QUANTIZE, DEQUANTIZE, MIRROR_PAD, SQUARED_DIFFERENCE and PACK are not
//! registered; tensors without a shape vector panic; MEAN on floats goes
//! through integer rounding; STRIDED_SLICE rejects `shrink_axis_mask`), and its
//! operator registry is private, so nothing can be added from outside.
//! Rewriting the flatbuffer into a form it accepts (a "legalization" pass)
//! would need five of those defects worked around with op substitutions and a
//! full flatbuffer re-serialisation. Importing directly is simpler: the two
//! networks use only 16 operator kinds, and going straight to tract-core lets
//! the importer
//! * dequantize int8 (per-channel) and fp16 weights once, at load, so the
//!   whole network runs in tract's fast f32 kernels (its int8 kernels are
//!   ~27x slower on these thin convolutions: measured in the engine issue);
//! * run the fully-convolutional transfer network at any H x W by deriving
//!   every nearest-neighbour upsampling from its *ratio* in the file instead of
//!   the 384x384 sizes stored there;
//! * fold constant sub-graphs (e.g. the dynamic file's SHAPE/PACK/STRIDED_SLICE
//!   size computation) at load.
//!
//! The flatbuffer schema comes from `tract_tflite::tflite` (we read, never
//! write, the file), and the flatbuffer is verified before anything is read,
//! so a corrupt file is an error, not undefined behaviour.

use std::collections::HashMap;

use super::conv::DirectConv;
use super::ops::{ChannelFn, PerChannel, ReflectPad2d, SpatialSum, Upsample2d};
use super::qconv::{QConv, QConvParams};
use super::quant::{QuantFn, QuantMean, Requant};
use tract_core::internal::*;
use tract_core::ops::array::{Pad, PadMode};
use tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
use tract_core::ops::nn::{DataFormat, Reduce, Reducer};
use tract_tflite::tflite::{
    self, ActivationFunctionType, BuiltinOperator, MirrorPadMode, Padding, TensorType,
};

/// Why a file could not be turned into a runnable network.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a valid TFLite flatbuffer ({0})")]
    NotTflite(String),
    #[error("the file has no {0}")]
    Missing(&'static str),
    #[error("operator #{index} {op}: unsupported: {why}")]
    Unsupported {
        index: usize,
        op: String,
        why: String,
    },
    #[error("tensor #{index} ({name}): {why}")]
    Tensor {
        index: i32,
        name: String,
        why: String,
    },
    #[error("{0}")]
    Graph(String),
}

fn graph_err(e: impl std::fmt::Display) -> ImportError {
    ImportError::Graph(format!("{e:#}"))
}

/// How to import: the spatial size the first input should take, if it differs
/// from the one stored in the file.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    pub input_hw: Option<(usize, usize)>,
    /// Compute what the file stores as int8 on the integers, as the int8
    /// runtime does (its outputs bit for bit); otherwise everything runs in
    /// f32 on dequantized values.
    pub emulate_int8: bool,
}

/// Name and shape of a graph input or output, as stored in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
}

/// The result of an import: the graph and its I/O as the file declares them.
pub struct Imported {
    pub model: TypedModel,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
}

/// A value during import: known at load (a constant, already in f32 or i32)
/// or computed at run time (a wire in the tract graph).
#[derive(Clone)]
enum Val {
    Const { t: Tensor, from_file: bool },
    Wire(OutletId),
}

struct Importer<'a> {
    root: tflite::Model<'a>,
    graph: tflite::SubGraph<'a>,
    target: TypedModel,
    vals: HashMap<i32, Val>,
    emulate_int8: bool,
    /// With `emulate_int8`: int8 tensors as integers `q - zp` (in f32).
    ints: HashMap<i32, OutletId>,
    /// With `emulate_int8`: float tensors known to lie on an int8 grid
    /// (DEQUANTIZE outputs, then padded or upsampled): their integers and
    /// (scale, zero point), so a QUANTIZE back onto the same grid costs
    /// nothing.
    grid: HashMap<i32, (OutletId, f32, f32)>,
    /// With `emulate_int8`: real-value wires `q * s` made from integer
    /// wires, so later ops can read the integers and the scale instead.
    reals: HashMap<OutletId, (OutletId, f32)>,
}

/// Reads the flatbuffer and builds the tract graph.
pub fn import(bytes: &[u8], opts: &ImportOptions) -> Result<Imported, ImportError> {
    let root = tflite::root_as_model(bytes).map_err(|e| ImportError::NotTflite(e.to_string()))?;
    let graphs = root.subgraphs().ok_or(ImportError::Missing("subgraph"))?;
    if graphs.is_empty() {
        return Err(ImportError::Missing("subgraph"));
    }
    let graph = graphs.get(0);
    let mut imp = Importer {
        root,
        graph,
        target: TypedModel::default(),
        vals: HashMap::new(),
        emulate_int8: opts.emulate_int8,
        ints: HashMap::new(),
        grid: HashMap::new(),
        reals: HashMap::new(),
    };
    let inputs = graph.inputs().ok_or(ImportError::Missing("inputs"))?;
    let outputs = graph.outputs().ok_or(ImportError::Missing("outputs"))?;
    let mut in_infos = vec![];
    for (i, ix) in inputs.iter().enumerate() {
        let info = imp.info(ix)?;
        let mut shape = info.shape.clone();
        if i == 0 {
            if let Some((h, w)) = opts.input_hw {
                if shape.len() != 4 {
                    return Err(imp.tensor_err(ix, "input is not NHWC: cannot resize it"));
                }
                shape[1] = h;
                shape[2] = w;
            }
        }
        let src = imp
            .target
            .add_source(info.name.clone(), f32::fact(&shape))
            .map_err(graph_err)?;
        imp.vals.insert(ix, Val::Wire(src));
        in_infos.push(info);
    }
    let ops = graph.operators().ok_or(ImportError::Missing("operators"))?;
    for (index, op) in ops.iter().enumerate() {
        imp.op(index, &op)?;
    }
    let mut outs = tvec![];
    let mut out_infos = vec![];
    for ix in outputs.iter() {
        match imp.vals.get(&ix) {
            Some(Val::Wire(w)) => outs.push(*w),
            _ => return Err(imp.tensor_err(ix, "output is not computed by any operator")),
        }
        out_infos.push(imp.info(ix)?);
    }
    imp.target.select_output_outlets(&outs).map_err(graph_err)?;
    Ok(Imported {
        model: imp.target,
        inputs: in_infos,
        outputs: out_infos,
    })
}

fn opcode_name(code: i32) -> String {
    format!("{:?}", BuiltinOperator(code))
}

impl<'a> Importer<'a> {
    fn tensor(&self, ix: i32) -> Result<tflite::Tensor<'a>, ImportError> {
        let tensors = self
            .graph
            .tensors()
            .ok_or(ImportError::Missing("tensors"))?;
        if ix < 0 || ix as usize >= tensors.len() {
            return Err(ImportError::Tensor {
                index: ix,
                name: "?".into(),
                why: "index out of range".into(),
            });
        }
        Ok(tensors.get(ix as usize))
    }

    fn tensor_err(&self, ix: i32, why: impl Into<String>) -> ImportError {
        let name = self
            .tensor(ix)
            .ok()
            .and_then(|t| t.name().map(str::to_owned))
            .unwrap_or_default();
        ImportError::Tensor {
            index: ix,
            name,
            why: why.into(),
        }
    }

    /// Stored shape; tensors stored without a shape vector are scalars.
    fn stored_shape(&self, ix: i32) -> Result<Vec<usize>, ImportError> {
        let t = self.tensor(ix)?;
        match t.shape() {
            None => Ok(vec![]),
            Some(s) => s
                .iter()
                .map(|d| usize::try_from(d).map_err(|_| self.tensor_err(ix, "negative dimension")))
                .collect(),
        }
    }

    fn info(&self, ix: i32) -> Result<TensorInfo, ImportError> {
        let t = self.tensor(ix)?;
        Ok(TensorInfo {
            name: t.name().unwrap_or("").to_owned(),
            shape: self.stored_shape(ix)?,
        })
    }

    /// The constant stored in the file for tensor `ix`, dequantized to f32
    /// (int8/int32 with scales, fp16) or kept as i32 (shapes, axes, sizes).
    fn file_const(&self, ix: i32) -> Result<Option<Tensor>, ImportError> {
        let t = self.tensor(ix)?;
        let buf_ix = t.buffer() as usize;
        if buf_ix == 0 {
            return Ok(None);
        }
        let buffers = self.root.buffers().ok_or(ImportError::Missing("buffers"))?;
        if buf_ix >= buffers.len() {
            return Err(self.tensor_err(ix, "buffer index out of range"));
        }
        let Some(data) = buffers.get(buf_ix).data() else {
            return Ok(None);
        };
        let bytes = data.bytes();
        if bytes.is_empty() {
            return Ok(None);
        }
        let shape = self.stored_shape(ix)?;
        let n: usize = shape.iter().product();
        let elem = match t.type_() {
            TensorType::INT8 | TensorType::UINT8 => 1,
            TensorType::FLOAT16 => 2,
            TensorType::INT32 | TensorType::FLOAT32 => 4,
            TensorType::INT64 => 8,
            other => return Err(self.tensor_err(ix, format!("constant of type {other:?}"))),
        };
        if bytes.len() != n * elem {
            return Err(self.tensor_err(
                ix,
                format!(
                    "holds {} bytes, its shape {shape:?} needs {}",
                    bytes.len(),
                    n * elem
                ),
            ));
        }
        let raw = decode(t.type_(), bytes);
        let quant = t.quantization().and_then(|q| {
            let scale: Vec<f32> = q.scale()?.iter().collect();
            if scale.is_empty() {
                return None;
            }
            let zp: Vec<i64> = q
                .zero_point()
                .map(|z| z.iter().collect())
                .unwrap_or_default();
            Some((scale, zp, q.quantized_dimension() as usize))
        });
        let float_type = matches!(t.type_(), TensorType::FLOAT16 | TensorType::FLOAT32);
        let tensor = if let Some((scale, zp, axis)) = quant {
            let out = self.dequantize(ix, &raw, &shape, &scale, &zp, axis)?;
            Tensor::from_shape(&shape, &out).map_err(graph_err)?
        } else if float_type {
            let v: Vec<f32> = raw.iter().map(|&x| x as f32).collect();
            Tensor::from_shape(&shape, &v).map_err(graph_err)?
        } else {
            let v: Vec<i32> = raw.iter().map(|&x| x as i32).collect();
            Tensor::from_shape(&shape, &v).map_err(graph_err)?
        };
        Ok(Some(tensor))
    }

    /// Per-axis (or per-tensor when one scale) affine dequantization of
    /// the stored values `raw` of tensor `ix`.
    fn dequantize(
        &self,
        ix: i32,
        raw: &[f64],
        shape: &[usize],
        scale: &[f32],
        zp: &[i64],
        axis: usize,
    ) -> Result<Vec<f32>, ImportError> {
        let n = raw.len();
        let (outer, len, inner) = if scale.len() == 1 {
            (1, 1, n)
        } else {
            if axis >= shape.len() || shape[axis] != scale.len() {
                return Err(self.tensor_err(ix, "quantization scales do not match its shape"));
            }
            (
                shape[..axis].iter().product(),
                shape[axis],
                shape[axis + 1..].iter().product(),
            )
        };
        let mut out = vec![0f32; n];
        for o in 0..outer {
            for (c, &sc) in scale.iter().enumerate().take(len) {
                let s = sc as f64;
                let z = zp.get(c).or(zp.first()).copied().unwrap_or(0) as f64;
                for i in 0..inner {
                    let k = (o * len + c) * inner + i;
                    out[k] = ((raw[k] - z) * s) as f32;
                }
            }
        }
        Ok(out)
    }

    fn val(&mut self, ix: i32) -> Result<Val, ImportError> {
        if let Some(v) = self.vals.get(&ix) {
            return Ok(v.clone());
        }
        match self.file_const(ix)? {
            Some(t) => {
                let v = Val::Const { t, from_file: true };
                self.vals.insert(ix, v.clone());
                Ok(v)
            }
            None => Err(self.tensor_err(ix, "used before any operator computes it")),
        }
    }

    fn konst(&mut self, ix: i32) -> Result<Tensor, ImportError> {
        match self.val(ix)? {
            Val::Const { t, .. } => Ok(t),
            Val::Wire(_) => Err(self.tensor_err(ix, "expected a constant")),
        }
    }

    /// Puts a value into the graph (constants become tract consts).
    fn wire(&mut self, ix: i32) -> Result<OutletId, ImportError> {
        match self.val(ix)? {
            Val::Wire(w) => Ok(w),
            Val::Const { t, .. } => {
                let name = format!("c{ix}");
                let w = self
                    .target
                    .add_const(name, t.into_arc_tensor())
                    .map_err(graph_err)?;
                self.vals.insert(ix, Val::Wire(w));
                Ok(w)
            }
        }
    }

    fn shape_of(&self, w: OutletId) -> Result<Vec<usize>, ImportError> {
        let fact = self.target.outlet_fact(w).map_err(graph_err)?;
        fact.shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| ImportError::Graph("symbolic shape".into()))
    }

    fn node(
        &mut self,
        name: String,
        op: impl Into<Box<dyn TypedOp>>,
        inputs: &[OutletId],
    ) -> Result<OutletId, ImportError> {
        let name = self.target.unique_name(name);
        Ok(self
            .target
            .wire_node(name, op.into(), inputs)
            .map_err(graph_err)?[0])
    }

    fn binary(
        &mut self,
        name: String,
        op: impl Into<Box<dyn TypedOp>>,
        a: OutletId,
        b: OutletId,
    ) -> Result<OutletId, ImportError> {
        let name = self.target.unique_name(name);
        Ok(wire_with_rank_broadcast(name, &mut self.target, op, &[a, b]).map_err(graph_err)?[0])
    }

    /// A constant node named after `name` (made unique).
    fn constant(&mut self, name: String, t: impl IntoArcTensor) -> Result<OutletId, ImportError> {
        let name = self.target.unique_name(name);
        self.target.add_const(name, t).map_err(graph_err)
    }

    fn scalar(&mut self, name: &str, v: f32) -> Result<OutletId, ImportError> {
        self.constant(name.to_owned(), rctensor0(v))
    }

    fn activation(
        &mut self,
        name: &str,
        x: OutletId,
        act: ActivationFunctionType,
    ) -> Result<OutletId, ImportError> {
        match act {
            ActivationFunctionType::NONE => Ok(x),
            ActivationFunctionType::RELU => {
                let zero = self.scalar(&format!("{name}.zero"), 0.0)?;
                self.binary(
                    format!("{name}.relu"),
                    tract_core::ops::math::max(),
                    x,
                    zero,
                )
            }
            ActivationFunctionType::RELU6 => {
                let zero = self.scalar(&format!("{name}.zero"), 0.0)?;
                let six = self.scalar(&format!("{name}.six"), 6.0)?;
                let x = self.binary(
                    format!("{name}.relu"),
                    tract_core::ops::math::max(),
                    x,
                    zero,
                )?;
                self.binary(
                    format!("{name}.relu6"),
                    tract_core::ops::math::min(),
                    x,
                    six,
                )
            }
            other => Err(ImportError::Graph(format!(
                "{name}: fused activation {other:?}"
            ))),
        }
    }

    fn op(&mut self, index: usize, op: &tflite::Operator<'a>) -> Result<(), ImportError> {
        let cx = self.op_ctx(index, *op)?;
        if self.emulate_int8 {
            if let Some(y) = self.int8_op(&cx)? {
                self.vals.insert(cx.out, Val::Wire(y));
                return Ok(());
            }
        }
        let result = match self.f32_op(&cx)? {
            // DirectConv's output is stored as is: no grid bookkeeping.
            Produced::Direct(y) => {
                self.vals.insert(cx.out, Val::Wire(y));
                return Ok(());
            }
            Produced::Val(v) => v,
        };
        if self.emulate_int8 {
            self.follow_grid(cx.code, &cx.ins, cx.out, &result)?;
        }
        let result = match result {
            Val::Wire(w) if self.emulate_int8 => Val::Wire(self.fake_quant(cx.out, w)?),
            r => r,
        };
        self.vals.insert(cx.out, result);
        Ok(())
    }

    /// Reads operator `index`'s code, inputs and single output.
    fn op_ctx(&self, index: usize, op: tflite::Operator<'a>) -> Result<OpCtx<'a>, ImportError> {
        let codes = self
            .root
            .operator_codes()
            .ok_or(ImportError::Missing("operator codes"))?;
        let ci = op.opcode_index() as usize;
        if ci >= codes.len() {
            return Err(ImportError::Graph(format!(
                "operator #{index}: bad opcode index {ci}"
            )));
        }
        let oc = codes.get(ci);
        // Files written before opcode 127 existed keep it in the deprecated i8 field.
        let code = (oc.deprecated_builtin_code() as i32).max(oc.builtin_code().0);
        let ins: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
        let outs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
        let mut cx = OpCtx {
            index,
            code,
            op,
            ins,
            out: 0,
            name: String::new(),
        };
        if outs.len() != 1 {
            return Err(cx.unsupported("operators with several outputs"));
        }
        cx.out = outs[0];
        cx.name = self.tensor(cx.out)?.name().unwrap_or("op").to_owned();
        Ok(cx)
    }

    /// The operator on f32 values (dequantized constants, real-valued
    /// wires): every operator the importer knows.
    fn f32_op(&mut self, cx: &OpCtx<'a>) -> Result<Produced, ImportError> {
        use BuiltinOperator as B;
        let v = match cx.builtin() {
            // Activations run in f32 end to end: (de)quantization of a value
            // is the identity; constants were dequantized when read.
            B::QUANTIZE | B::DEQUANTIZE => {
                cx.need(1)?;
                self.val(cx.ins[0])?
            }
            B::CONV_2D | B::DEPTHWISE_CONV_2D => return self.conv(cx),
            B::ADD | B::MUL | B::SUB => self.arithmetic(cx)?,
            B::SQUARED_DIFFERENCE => self.squared_difference(cx)?,
            B::RSQRT | B::LOGISTIC | B::RELU | B::RELU6 => self.unary(cx)?,
            B::MEAN => self.mean(cx)?,
            B::MIRROR_PAD => self.mirror_pad(cx)?,
            B::RESIZE_NEAREST_NEIGHBOR => self.resize(cx)?,
            B::SHAPE | B::STRIDED_SLICE | B::PACK => self.shape_computation(cx)?,
            _ => return Err(cx.unsupported("operator not implemented by styleframe's importer")),
        };
        Ok(Produced::Val(v))
    }

    /// CONV_2D / DEPTHWISE_CONV_2D in f32: our [`DirectConv`] where it
    /// applies, tract's convolution and the fused activation otherwise.
    fn conv(&mut self, cx: &OpCtx<'a>) -> Result<Produced, ImportError> {
        cx.need(2)?;
        let (ins, name) = (&cx.ins, &cx.name);
        let depthwise = cx.builtin() == BuiltinOperator::DEPTHWISE_CONV_2D;
        let geo = conv_geometry(&cx.op, depthwise).map_err(|why| cx.unsupported(why))?;
        let x = self.wire(ins[0])?;
        let kernel = self.konst(ins[1])?;
        let ks = kernel.shape().to_vec();
        if ks.len() != 4 {
            return Err(cx.unsupported("kernel is not 4-D"));
        }
        let (out_ch, in_ch, group) = if depthwise {
            // tract takes TFLite's [1, H, W, C] depthwise kernel as
            // is (OHWI read with O = C/group), as tract-tflite does.
            (ks[3], ks[3], ks[3])
        } else {
            (ks[0], ks[3], 1)
        };
        let bias = if ins.len() > 2 && ins[2] >= 0 {
            self.konst(ins[2])?
                .cast_to::<f32>()
                .map_err(graph_err)?
                .into_owned()
        } else {
            Tensor::zero::<f32>(&[out_ch]).map_err(graph_err)?
        };
        let x_ch = *self.shape_of(x)?.last().unwrap_or(&0);
        if x_ch != in_ch {
            return Err(cx.unsupported(&format!(
                "input has {x_ch} channels, kernel expects {in_ch}"
            )));
        }
        if let Some(direct) = geo.direct(&kernel, &ks, &bias, depthwise) {
            let y = self.node(name.clone(), direct.map_err(graph_err)?, &[x])?;
            return Ok(Produced::Direct(y));
        }
        let conv = geo.conv(&ks, in_ch, out_ch, group);
        let k = self.constant(format!("{name}.kernel"), kernel)?;
        let b = self.constant(format!("{name}.bias"), bias)?;
        let y = self.node(name.clone(), conv, &[x, k, b])?;
        Ok(Produced::Val(Val::Wire(self.activation(name, y, geo.act)?)))
    }

    /// ADD, MUL and SUB: folded at load on two constants, a [`PerChannel`]
    /// op for a picture and a per-channel vector (the instance norms'
    /// scale and offset), tract's broadcasting ops otherwise.
    fn arithmetic(&mut self, cx: &OpCtx<'a>) -> Result<Val, ImportError> {
        cx.need(2)?;
        let (ins, name) = (&cx.ins, &cx.name);
        let act = binary_activation(&cx.op, cx.code);
        let (a, b) = (self.val(ins[0])?, self.val(ins[1])?);
        if let (Val::Const { t: a, .. }, Val::Const { t: b, .. }) = (&a, &b) {
            if act != ActivationFunctionType::NONE {
                return Err(cx.unsupported("constant operands with an activation"));
            }
            let f = |x: f32, y: f32| match cx.builtin() {
                BuiltinOperator::ADD => x + y,
                BuiltinOperator::MUL => x * y,
                _ => x - y,
            };
            return Ok(Val::Const {
                t: broadcast_f32(a, b, f).map_err(graph_err)?,
                from_file: false,
            });
        }
        let a = self.wire(ins[0])?;
        let b = self.wire(ins[1])?;
        let f = match cx.builtin() {
            BuiltinOperator::ADD => Some(ChannelFn::Add),
            BuiltinOperator::MUL => Some(ChannelFn::Mul),
            _ => None,
        };
        if let (Some(f), Some((x, v))) = (f, self.per_channel_pair(a, b)?) {
            // A fused ReLU rides along; `fuse` makes `x * s + v` one op.
            let relu = act == ActivationFunctionType::RELU;
            let y = self.node(name.clone(), PerChannel { f, relu }, &[x, v])?;
            let act = if relu {
                ActivationFunctionType::NONE
            } else {
                act
            };
            return Ok(Val::Wire(self.activation(name, y, act)?));
        }
        let op = match cx.builtin() {
            BuiltinOperator::ADD => tract_core::ops::math::add(),
            BuiltinOperator::MUL => tract_core::ops::math::mul(),
            _ => tract_core::ops::math::sub(),
        };
        let y = self.binary(name.clone(), op, a, b)?;
        Ok(Val::Wire(self.activation(name, y, act)?))
    }

    /// SQUARED_DIFFERENCE: a [`PerChannel`] op when one side is a
    /// per-channel vector (the instance norms' variance), else sub, square.
    fn squared_difference(&mut self, cx: &OpCtx<'a>) -> Result<Val, ImportError> {
        cx.need(2)?;
        let name = cx.name.clone();
        let a = self.wire(cx.ins[0])?;
        let b = self.wire(cx.ins[1])?;
        // Symmetric, so either operand may be the per-channel one.
        if let Some((x, v)) = self.per_channel_pair(a, b)? {
            let op = PerChannel {
                f: ChannelFn::SquaredDiff,
                relu: false,
            };
            return Ok(Val::Wire(self.node(name, op, &[x, v])?));
        }
        let d = self.binary(format!("{name}.sub"), tract_core::ops::math::sub(), a, b)?;
        Ok(Val::Wire(self.node(
            name,
            tract_core::ops::math::square(),
            &[d],
        )?))
    }

    /// RSQRT, LOGISTIC, RELU and RELU6.
    fn unary(&mut self, cx: &OpCtx<'a>) -> Result<Val, ImportError> {
        cx.need(1)?;
        let name = cx.name.clone();
        let a = self.wire(cx.ins[0])?;
        let y = match cx.builtin() {
            BuiltinOperator::RSQRT => self.node(name, tract_core::ops::math::rsqrt(), &[a])?,
            BuiltinOperator::LOGISTIC => self.node(name, tract_core::ops::nn::sigmoid(), &[a])?,
            BuiltinOperator::RELU => self.activation(&name, a, ActivationFunctionType::RELU)?,
            _ => self.activation(&name, a, ActivationFunctionType::RELU6)?,
        };
        Ok(Val::Wire(y))
    }

    /// MEAN as a sum then one multiply: an exact float mean (tract-tflite's
    /// MEAN rounds floats through its quantized path). Over H and W it is
    /// a [`SpatialSum`] (`fuse` centres it on a squared difference).
    fn mean(&mut self, cx: &OpCtx<'a>) -> Result<Val, ImportError> {
        cx.need(2)?;
        let name = &cx.name;
        let keep = cx
            .op
            .builtin_options_as_reducer_options()
            .map(|o| o.keep_dims())
            .unwrap_or(false);
        let x = self.wire(cx.ins[0])?;
        let shape = self.shape_of(x)?;
        let axes_t = self.konst(cx.ins[1])?;
        let rank = shape.len() as i32;
        let mut axes: Vec<usize> = i32s(&axes_t)
            .map_err(graph_err)?
            .iter()
            .map(|&a| {
                if a < 0 {
                    (a + rank) as usize
                } else {
                    a as usize
                }
            })
            .collect();
        axes.sort();
        axes.dedup();
        if axes.iter().any(|&a| a >= shape.len()) {
            return Err(cx.unsupported("reduction axis out of range"));
        }
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        let sum: Box<dyn TypedOp> = if axes == [1, 2] && shape.len() == 4 {
            Box::new(SpatialSum::default())
        } else {
            Box::new(Reduce::new(axes.iter().copied().collect(), Reducer::Sum))
        };
        let s = self.node(format!("{name}.sum"), sum, &[x])?;
        let inv = self.scalar(&format!("{name}.inv"), 1.0 / count.max(1) as f32)?;
        let mut y = self.binary(name.clone(), tract_core::ops::math::mul(), s, inv)?;
        if !keep {
            for &a in axes.iter().rev() {
                y = self.node(format!("{name}.rm{a}"), AxisOp::Rm(a), &[y])?;
            }
        }
        Ok(Val::Wire(y))
    }

    /// MIRROR_PAD (REFLECT): H and W only is our [`ReflectPad2d`] (a
    /// direct NHWC loop instead of tract's generic rank-N ndarray slicing;
    /// `fuse` folds a per-channel op before it), tract's Pad otherwise.
    fn mirror_pad(&mut self, cx: &OpCtx<'a>) -> Result<Val, ImportError> {
        cx.need(2)?;
        let mode = cx
            .op
            .builtin_options_as_mirror_pad_options()
            .map(|o| o.mode());
        if mode == Some(MirrorPadMode::SYMMETRIC) {
            return Err(cx.unsupported("SYMMETRIC mirror padding"));
        }
        let x = self.wire(cx.ins[0])?;
        let shape = self.shape_of(x)?;
        let p = i32s(&self.konst(cx.ins[1])?).map_err(graph_err)?;
        if p.len() != shape.len() * 2 || p.iter().any(|&v| v < 0) {
            return Err(cx.unsupported("paddings do not match the input rank"));
        }
        let pads: Vec<(usize, usize)> = p
            .chunks(2)
            .map(|c| (c[0] as usize, c[1] as usize))
            .collect();
        for (d, &(b, a)) in shape.iter().zip(&pads) {
            if b >= *d || a >= *d {
                return Err(cx.unsupported(&format!(
                    "reflection of {}/{} pixels needs a larger picture than {d}",
                    b, a
                )));
            }
        }
        let op: Box<dyn TypedOp> = match pads[..] {
            [(0, 0), (top, bottom), (left, right), (0, 0)] => Box::new(ReflectPad2d {
                top,
                bottom,
                left,
                right,
                pre: None,
            }),
            _ => Box::new(Pad {
                pads,
                mode: PadMode::Reflect,
            }),
        };
        Ok(Val::Wire(self.node(cx.name.clone(), op, &[x])?))
    }

    /// RESIZE_NEAREST_NEIGHBOR by whole factors, taken from the ratio of
    /// the sizes in the file so the network runs at any input size.
    fn resize(&mut self, cx: &OpCtx<'a>) -> Result<Val, ImportError> {
        cx.need(2)?;
        if let Some(o) = cx.op.builtin_options_as_resize_nearest_neighbor_options() {
            if o.align_corners() {
                return Err(cx.unsupported("align_corners"));
            }
        }
        let x = self.wire(cx.ins[0])?;
        let shape = self.shape_of(x)?;
        if shape.len() != 4 {
            return Err(cx.unsupported("input is not NHWC"));
        }
        let (size, from_file) = match self.val(cx.ins[1])? {
            Val::Const { t, from_file } => (t, from_file),
            Val::Wire(_) => return Err(cx.unsupported("size computed at run time")),
        };
        let size = i32s(&size).map_err(graph_err)?;
        if size.len() != 2 {
            return Err(cx.unsupported("size is not [H, W]"));
        }
        // A size constant in the file was computed for the file's own
        // input size: keep its ratio to the stored input shape, so
        // the network runs at the size asked for. A size computed at
        // load (dynamic files) is already right.
        let factors = if from_file {
            let stored = self.stored_shape(cx.ins[0])?;
            if stored.len() != 4 {
                return Err(cx.unsupported("input stored without its NHWC shape"));
            }
            [(size[0] as usize, stored[1]), (size[1] as usize, stored[2])]
        } else {
            [(size[0] as usize, shape[1]), (size[1] as usize, shape[2])]
        };
        let mut f = [1usize; 2];
        for (k, &(out, inp)) in factors.iter().enumerate() {
            if inp == 0 || out % inp != 0 {
                return Err(cx.unsupported(&format!(
                    "non-integer scale {out}/{inp} (only whole-number upsampling)"
                )));
            }
            f[k] = out / inp;
        }
        Ok(Val::Wire(self.upsample(&cx.name, x, f)?))
    }

    /// SHAPE, STRIDED_SLICE and PACK: the dynamic file's size computation,
    /// folded to constants at load.
    fn shape_computation(&mut self, cx: &OpCtx<'a>) -> Result<Val, ImportError> {
        let ins = &cx.ins;
        let t = match cx.builtin() {
            BuiltinOperator::SHAPE => {
                cx.need(1)?;
                let shape: Vec<i32> = match self.val(ins[0])? {
                    Val::Wire(w) => self.shape_of(w)?.iter().map(|&d| d as i32).collect(),
                    Val::Const { t, .. } => t.shape().iter().map(|&d| d as i32).collect(),
                };
                tensor1(&shape)
            }
            BuiltinOperator::STRIDED_SLICE => {
                cx.need(4)?;
                let o = cx.op.builtin_options_as_strided_slice_options();
                let x = self.konst(ins[0])?;
                let begin = self.konst(ins[1])?;
                let end = self.konst(ins[2])?;
                let strides = self.konst(ins[3])?;
                let masks = o.map(|o| {
                    (
                        o.begin_mask(),
                        o.end_mask(),
                        o.shrink_axis_mask(),
                        o.ellipsis_mask(),
                        o.new_axis_mask(),
                    )
                });
                strided_slice_1d(&x, &begin, &end, &strides, masks.unwrap_or_default())
                    .map_err(|e| cx.unsupported(&e))?
            }
            _ => {
                let mut vals = vec![];
                for &i in ins {
                    let t = self.konst(i)?;
                    if t.rank() != 0 {
                        return Err(cx.unsupported("packing non-scalars"));
                    }
                    vals.push(i32s(&t).map_err(graph_err)?[0]);
                }
                tensor1(&vals)
            }
        };
        Ok(Val::Const {
            t,
            from_file: false,
        })
    }

    /// Keeps track of int8 grids through the float plumbing between two
    /// int8 operators (DEQUANTIZE, MIRROR_PAD, RESIZE_NEAREST_NEIGHBOR,
    /// QUANTIZE): padding and upsampling move values without changing
    /// them, so the integers are padded or upsampled alongside, and the
    /// QUANTIZE at the end (same scale and zero point) is the identity.
    fn follow_grid(
        &mut self,
        code: i32,
        ins: &[i32],
        out: i32,
        result: &Val,
    ) -> Result<(), ImportError> {
        let Some(&input) = ins.first() else {
            return Ok(());
        };
        match BuiltinOperator(code) {
            BuiltinOperator::DEQUANTIZE => {
                if let (Some(&q), Some((s, z))) = (self.ints.get(&input), self.qparams(input)?) {
                    self.grid.insert(out, (q, s, z));
                }
            }
            BuiltinOperator::MIRROR_PAD | BuiltinOperator::RESIZE_NEAREST_NEIGHBOR => {
                let (Some(&(q, s, z)), Val::Wire(w)) = (self.grid.get(&input), result) else {
                    return Ok(());
                };
                let Val::Wire(x) = self.val(input)? else {
                    return Ok(());
                };
                let q = if *w == x {
                    q
                } else {
                    let node = self.target.node(w.node);
                    if node.inputs != [x] {
                        return Ok(());
                    }
                    let (op, name) = (node.op.clone(), format!("{}.int", node.name));
                    self.node(name, op, &[q])?
                };
                self.grid.insert(out, (q, s, z));
            }
            BuiltinOperator::QUANTIZE => {
                if let (Some(&(q, s, z)), Some(want)) = (self.grid.get(&input), self.qparams(out)?)
                {
                    if want == (s, z) {
                        self.ints.insert(out, q);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `(full, per_channel)` when one of `a`, `b` is an NHWC picture and the
    /// other a [1,1,1,C] vector, for a commutative [`PerChannel`] op.
    fn per_channel_pair(
        &self,
        a: OutletId,
        b: OutletId,
    ) -> Result<Option<(OutletId, OutletId)>, ImportError> {
        let (sa, sb) = (self.shape_of(a)?, self.shape_of(b)?);
        Ok(if PerChannel::fits(&sa, &sb) {
            Some((a, b))
        } else if PerChannel::fits(&sb, &sa) {
            Some((b, a))
        } else {
            None
        })
    }
    /// With `emulate_int8`, the int8 operators XNNPACK (the reference
    /// runtime's int8 engine) runs on integers, computed on integers too
    /// (held exactly in f32): convolutions accumulate `(q - zp) * w + bias`
    /// exactly, MEAN sums exactly, then each requantizes in f32 as XNNPACK
    /// does. Rounding the f32 convolution of real values instead flips some
    /// near-tie results by one step, and those flips, through the instance
    /// norms' low-variance channels, cost up to 15 dB of PSNR. `None` when
    /// the operator is not one of those or its tensors are not int8 as
    /// expected: the generic f32 path then handles it.
    fn int8_op(&mut self, cx: &OpCtx<'a>) -> Result<Option<OutletId>, ImportError> {
        let Some((so, _)) = self.qparams(cx.out)? else {
            return Ok(None);
        };
        match cx.builtin() {
            BuiltinOperator::CONV_2D | BuiltinOperator::DEPTHWISE_CONV_2D => self.int8_conv(cx, so),
            BuiltinOperator::ADD | BuiltinOperator::SUB | BuiltinOperator::MUL => {
                self.int8_arithmetic(cx, so)
            }
            BuiltinOperator::MEAN => self.int8_mean(cx, so),
            _ => Ok(None),
        }
    }

    /// ADD, SUB and MUL on the integers, requantized to the output's scale
    /// `so` as XNNPACK does.
    fn int8_arithmetic(
        &mut self,
        cx: &OpCtx<'a>,
        so: f32,
    ) -> Result<Option<OutletId>, ImportError> {
        let ins = &cx.ins;
        if ins.len() != 2 {
            return Ok(None);
        }
        let act = binary_activation(&cx.op, cx.code);
        // Two constants fold at load on the generic path.
        if ins
            .iter()
            .all(|&i| matches!(self.vals.get(&i), None | Some(Val::Const { .. })))
        {
            return Ok(None);
        }
        let (Some((sa, _)), Some((sb, _))) = (self.qparams(ins[0])?, self.qparams(ins[1])?) else {
            return Ok(None);
        };
        let (Some(a), Some(b)) = (self.int_wire(ins[0])?, self.int_wire(ins[1])?) else {
            return Ok(None);
        };
        let f = if cx.builtin() == BuiltinOperator::MUL {
            // XNNPACK: (a - za) * (b - zb) in int32, times sa * sb / so in f32.
            QuantFn::Mul(sa * sb / so)
        } else {
            let sign = if cx.builtin() == BuiltinOperator::SUB {
                -1.0
            } else {
                1.0
            };
            match int8_add(sa / so, sign * sb / so) {
                Some(f) => f,
                None => return Ok(None),
            }
        };
        // The full picture first; a per-channel operand repeats.
        let (sa, sb) = (self.shape_of(a)?, self.shape_of(b)?);
        let (f, a, b) = if Requant::fits(&sa, &sb) {
            (f, a, b)
        } else if Requant::fits(&sb, &sa) {
            let f = match f {
                QuantFn::Add { ma, mb, shift } => QuantFn::Add {
                    ma: mb,
                    mb: ma,
                    shift,
                },
                f => f,
            };
            (f, b, a)
        } else {
            return Ok(None);
        };
        let (q, real) = self.requant(&cx.name, cx.out, f, &[a, b], act)?;
        self.ints.insert(cx.out, q);
        Ok(Some(real))
    }

    /// MEAN over H and W (dimensions kept) on the integers, as XNNPACK.
    fn int8_mean(&mut self, cx: &OpCtx<'a>, so: f32) -> Result<Option<OutletId>, ImportError> {
        let keep = cx
            .op
            .builtin_options_as_reducer_options()
            .map(|o| o.keep_dims())
            .unwrap_or(false);
        if cx.ins.len() != 2 || !keep {
            return Ok(None);
        }
        let Some((si, zi)) = self.qparams(cx.ins[0])? else {
            return Ok(None);
        };
        let Val::Const { t: axes, .. } = self.val(cx.ins[1])? else {
            return Ok(None);
        };
        let Some(x) = self.int_wire(cx.ins[0])? else {
            return Ok(None);
        };
        let shape = self.shape_of(x)?;
        let rank = shape.len() as i32;
        let mut axes: Vec<usize> = i32s(&axes)
            .map_err(graph_err)?
            .iter()
            .map(|&a| if a < 0 { a + rank } else { a })
            .filter(|&a| (0..rank).contains(&a))
            .map(|a| a as usize)
            .collect();
        axes.sort();
        axes.dedup();
        if axes != [1, 2] || shape.len() != 4 {
            return Ok(None);
        }
        let count = shape[1] * shape[2];
        // XNNPACK sums the stored int8 values (zero point included),
        // converts the sum to f32 and subtracts the zero point's share
        // after scaling, all in f32: that rounding decides near-ties
        // (checked on 30k reference means).
        let m = si / so / count.max(1) as f32;
        let bias = (zi * count as f32) * m;
        let (lo, hi) = self.int8_bounds(cx.out, ActivationFunctionType::NONE)?;
        let op = QuantMean {
            zn: zi as i64 * count as i64,
            m,
            bias,
            lo,
            hi,
        };
        let q = self.node(format!("{}.q", cx.name), op, &[x])?;
        let real = self.real(&cx.name, cx.out, q)?;
        self.ints.insert(cx.out, q);
        Ok(Some(real))
    }

    /// CONV_2D / DEPTHWISE_CONV_2D on the integers: int8 kernel (zero
    /// point 0, per-channel scales) and int32 bias as exact f32, the sum
    /// exact as long as it stays below 2^24 (checked from the weights), then
    /// `acc * (si * sw[c] / so)` in f32 as XNNPACK's fp32 requantization.
    fn int8_conv(&mut self, cx: &OpCtx<'a>, so: f32) -> Result<Option<OutletId>, ImportError> {
        let (ins, name) = (&cx.ins, &cx.name);
        if ins.len() < 2 {
            return Ok(None);
        }
        let depthwise = cx.builtin() == BuiltinOperator::DEPTHWISE_CONV_2D;
        let Ok(geo) = conv_geometry(&cx.op, depthwise) else {
            return Ok(None);
        };
        let act = geo.act;
        let Some((si, zi)) = self.qparams(ins[0])? else {
            return Ok(None);
        };
        let Some(k) = self.int8_kernel(cx, depthwise, si, so)? else {
            return Ok(None);
        };
        let Some(x) = self.int_wire(ins[0])? else {
            return Ok(None);
        };
        if *self.shape_of(x)?.last().unwrap_or(&0) != k.in_ch {
            return Ok(None);
        }
        // The integer convolution with its requantization fused (same
        // arithmetic, i32 sums); the tract convolution below stays for what
        // it cannot take.
        if let Ok((lo, hi)) = self.int8_bounds(cx.out, act) {
            let (lo, hi) = (lo as f32, hi as f32);
            let params = QConvParams {
                kh: k.shape[1],
                kw: k.shape[2],
                cin: k.in_ch,
                cout: k.out_ch,
                stride: geo.stride,
                dilation: geo.dilation,
                same: geo.same,
                depthwise,
                zp_in: zi as i32,
                zp_out: self.qparams(cx.out)?.map_or(0, |(_, z)| z as i32),
                weights: k.weights.iter().map(|&w| w as i8).collect(),
                bias: k.bias.clone(),
                scale: k.scale.clone(),
                lo,
                hi,
            };
            let exact = zi.fract() == 0.0 && lo <= hi;
            if let Some(qc) = exact.then(|| QConv::auto(params)).flatten() {
                let q = self.node(format!("{name}.qconv"), qc, &[x])?;
                self.ints.insert(cx.out, q);
                return Ok(Some(self.real(name, cx.out, q)?));
            }
        }
        self.int8_tract_conv(cx, &geo, k, x).map(Some)
    }

    /// The int8 kernel and int32 bias of a convolution with input scale
    /// `si` and output scale `so`, or `None` when they are not stored as
    /// XNNPACK's int8 path expects.
    fn int8_kernel(
        &self,
        cx: &OpCtx<'a>,
        depthwise: bool,
        si: f32,
        so: f32,
    ) -> Result<Option<IntKernel>, ImportError> {
        let ins = &cx.ins;
        let kt = self.tensor(ins[1])?;
        if kt.type_() != TensorType::INT8 {
            return Ok(None);
        }
        let Some(kq) = kt.quantization() else {
            return Ok(None);
        };
        let Some(ks_scale) = kq.scale() else {
            return Ok(None);
        };
        let k_scales: Vec<f32> = ks_scale.iter().collect();
        if kq
            .zero_point()
            .map(|z| z.iter().any(|z| z != 0))
            .unwrap_or(false)
        {
            return Ok(None);
        }
        let ks = self.stored_shape(ins[1])?;
        let Some(kraw) = self.file_ints(ins[1])? else {
            return Ok(None);
        };
        if ks.len() != 4 {
            return Ok(None);
        }
        let (out_ch, in_ch) = if depthwise {
            (ks[3], ks[3])
        } else {
            (ks[0], ks[3])
        };
        let per_channel = k_scales.len() == out_ch
            && kq.quantized_dimension() as usize == if depthwise { 3 } else { 0 };
        if !(per_channel || k_scales.len() == 1) {
            return Ok(None);
        }
        let bias: Vec<i64> = if ins.len() > 2 && ins[2] >= 0 {
            match self.file_ints(ins[2])? {
                Some(b)
                    if b.len() == out_ch && self.tensor(ins[2])?.type_() == TensorType::INT32 =>
                {
                    b
                }
                _ => return Ok(None),
            }
        } else {
            vec![0; out_ch]
        };
        // XNNPACK's requantization scale, computed in f32 as it does.
        let scale: Vec<f32> = (0..out_ch)
            .map(|c| si * k_scales[if per_channel { c } else { 0 }] / so)
            .collect();
        Ok(Some(IntKernel::new(
            ks, in_ch, depthwise, kraw, bias, scale,
        )))
    }

    /// The int8 convolution by tract on exact integers (in f32, or f64
    /// for wide sums), then the requantization.
    fn int8_tract_conv(
        &mut self,
        cx: &OpCtx<'a>,
        geo: &ConvGeometry,
        k: IntKernel,
        x: OutletId,
    ) -> Result<OutletId, ImportError> {
        let name = &cx.name;
        let dt = if k.wide {
            f64::datum_type()
        } else {
            f32::datum_type()
        };
        let group = if k.depthwise { k.out_ch } else { 1 };
        let conv = geo.conv(&k.shape, k.in_ch, k.out_ch, group);
        let kv: Vec<f64> = k.weights.iter().map(|&w| w as f64).collect();
        let kernel = Tensor::from_shape(&k.shape, &kv).map_err(graph_err)?;
        let kernel = kernel.cast_to_dt(dt).map_err(graph_err)?.into_owned();
        let bv: Vec<f64> = k.bias.iter().map(|&b| b as f64).collect();
        let bv = tensor1(&bv).cast_to_dt(dt).map_err(graph_err)?.into_owned();
        let kc = self.constant(format!("{name}.ikernel"), kernel)?;
        let b = self.constant(format!("{name}.ibias"), bv)?;
        let x = if k.wide {
            self.node(format!("{name}.f64"), tract_core::ops::cast::cast(dt), &[x])?
        } else {
            x
        };
        let mut acc = self.node(format!("{name}.iconv"), conv, &[x, kc, b])?;
        if k.wide {
            let f32_dt = f32::datum_type();
            acc = self.node(
                format!("{name}.f32"),
                tract_core::ops::cast::cast(f32_dt),
                &[acc],
            )?;
        }
        // The per-channel scale goes into the requantization (tract cannot
        // fold it into the kernel there, which would make the sum inexact).
        let f = QuantFn::Scale(k.scale);
        let (q, real) = self.requant(name, cx.out, f, &[acc], geo.act)?;
        self.ints.insert(cx.out, q);
        Ok(real)
    }

    /// Per-tensor (scale, zero point) of an int8 tensor.
    fn qparams(&self, ix: i32) -> Result<Option<(f32, f32)>, ImportError> {
        let t = self.tensor(ix)?;
        if !matches!(t.type_(), TensorType::INT8) {
            return Ok(None);
        }
        let Some(q) = t.quantization() else {
            return Ok(None);
        };
        let Some(scale) = q.scale().filter(|s| s.len() == 1) else {
            return Ok(None);
        };
        let z = q
            .zero_point()
            .filter(|z| !z.is_empty())
            .map(|z| z.get(0))
            .unwrap_or(0);
        Ok(Some((scale.get(0), z as f32)))
    }

    /// When tensor `ix` is stored as per-tensor int8, snaps `x` to its grid
    /// the way XNNPACK converts f32 to int8: `q = clamp(rne(x * (1/s)))`
    /// (multiplication by the reciprocal, round half to even), then
    /// `s * q`. Tensors an exact integer path already produced are kept.
    fn fake_quant(&mut self, ix: i32, x: OutletId) -> Result<OutletId, ImportError> {
        if self.ints.contains_key(&ix) {
            return Ok(x);
        }
        let Some((s, _)) = self.qparams(ix)? else {
            return Ok(x);
        };
        let name = self.tensor(ix)?.name().unwrap_or("t").to_owned();
        // SQUARED_DIFFERENCE then QUANTIZE (the instance norms' variance
        // term) in one pass.
        let node = self.target.node(x.node);
        let sq = PerChannel {
            f: ChannelFn::SquaredDiff,
            relu: false,
        };
        let (f, inputs) = match node.op_as::<PerChannel>() {
            Some(op) if *op == sq => {
                let (a, b) = (node.inputs[0], node.inputs[1]);
                // From the integers when both sides are int8 tensors'
                // real values: their `q * s` pictures need not exist.
                match (self.reals.get(&a), self.reals.get(&b)) {
                    (Some(&(qa, sa)), Some(&(qb, sb))) => {
                        (QuantFn::SqDiff { sa, sb, m: 1.0 / s }, vec![qa, qb])
                    }
                    _ => (
                        QuantFn::SqDiff {
                            sa: 1.0,
                            sb: 1.0,
                            m: 1.0 / s,
                        },
                        vec![a, b],
                    ),
                }
            }
            _ => (QuantFn::Scale(vec![1.0 / s]), vec![x]),
        };
        let (y, real) = self.requant(&name, ix, f, &inputs, ActivationFunctionType::NONE)?;
        self.ints.insert(ix, y);
        Ok(real)
    }

    /// The int8 tensor `ix` as integers `q - zp` (in f32), for the exact
    /// integer paths: registered by [`Self::fake_quant`] or the integer ops,
    /// recovered from the real values otherwise (exact on the grid), or read
    /// from the file for constants. `None` when `ix` is not per-tensor int8.
    fn int_wire(&mut self, ix: i32) -> Result<Option<OutletId>, ImportError> {
        if let Some(w) = self.ints.get(&ix) {
            return Ok(Some(*w));
        }
        let Some((s, z)) = self.qparams(ix)? else {
            return Ok(None);
        };
        let w = match self.val(ix)? {
            Val::Wire(w) => {
                let name = format!("{}.int", self.tensor(ix)?.name().unwrap_or("t"));
                let (lo, hi) = self.int8_bounds(ix, ActivationFunctionType::NONE)?;
                let op = Requant {
                    f: QuantFn::Scale(vec![1.0 / s]),
                    lo,
                    hi,
                    zp: z as i32,
                };
                self.node(name, op, &[w])?
            }
            Val::Const { .. } => {
                let Some(raw) = self.file_ints(ix)? else {
                    return Ok(None);
                };
                let v: Vec<f32> = raw.iter().map(|&q| q as f32 - z).collect();
                let t = Tensor::from_shape(&self.stored_shape(ix)?, &v).map_err(graph_err)?;
                self.constant(format!("c{ix}.int"), t)?
            }
        };
        self.ints.insert(ix, w);
        Ok(Some(w))
    }

    /// The stored integers of an INT8 or INT32 constant.
    fn file_ints(&self, ix: i32) -> Result<Option<Vec<i64>>, ImportError> {
        let t = self.tensor(ix)?;
        let buffers = self.root.buffers().ok_or(ImportError::Missing("buffers"))?;
        let buf_ix = t.buffer() as usize;
        if buf_ix == 0 || buf_ix >= buffers.len() {
            return Ok(None);
        }
        let Some(data) = buffers.get(buf_ix).data() else {
            return Ok(None);
        };
        let bytes = data.bytes();
        let n: usize = self.stored_shape(ix)?.iter().product();
        let v: Vec<i64> = match t.type_() {
            TensorType::INT8 if bytes.len() == n => bytes.iter().map(|&b| b as i8 as i64).collect(),
            TensorType::INT32 if bytes.len() == 4 * n => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            _ => return Ok(None),
        };
        Ok(Some(v))
    }

    /// The output range of int8 tensor `out` as integers `q - zp`,
    /// narrowed by a fused RELU or RELU6.
    fn int8_bounds(
        &self,
        out: i32,
        act: ActivationFunctionType,
    ) -> Result<(i32, i32), ImportError> {
        let (s, z) = self
            .qparams(out)?
            .ok_or_else(|| self.tensor_err(out, "expected a per-tensor int8 tensor"))?;
        let z = z as i32;
        let (mut lo, mut hi) = (-128 - z, 127 - z);
        match act {
            ActivationFunctionType::NONE => {}
            ActivationFunctionType::RELU => lo = lo.max(0),
            ActivationFunctionType::RELU6 => {
                lo = lo.max(0);
                hi = hi.min((6.0 / s).round() as i32);
            }
            other => {
                return Err(self.tensor_err(out, format!("fused activation {other:?}")));
            }
        }
        Ok((lo, hi))
    }

    /// The real values `q * s` of int8 tensor `out`'s integers `q` (a
    /// separate node, which tract drops when nothing reads it).
    fn real(&mut self, name: &str, out: i32, q: OutletId) -> Result<OutletId, ImportError> {
        let (s, _) = self
            .qparams(out)?
            .ok_or_else(|| self.tensor_err(out, "expected a per-tensor int8 tensor"))?;
        let sc = self.scalar(&format!("{name}.q.s"), s)?;
        let real = self.binary(format!("{name}.q.mul"), tract_core::ops::math::mul(), q, sc)?;
        self.reals.insert(real, (q, s));
        Ok(real)
    }

    /// `f(inputs)` onto the int8 grid of `out` in one pass ([`Requant`]:
    /// rounded half to even, clamped to the range, as XNNPACK
    /// requantizes). Returns (integers `q - zp`, real values).
    fn requant(
        &mut self,
        name: &str,
        out: i32,
        f: QuantFn,
        inputs: &[OutletId],
        act: ActivationFunctionType,
    ) -> Result<(OutletId, OutletId), ImportError> {
        let (lo, hi) = self.int8_bounds(out, act)?;
        let zp = self.qparams(out)?.map_or(0, |(_, z)| z as i32);
        let q = self.node(format!("{name}.q"), Requant { f, lo, hi, zp }, inputs)?;
        let real = self.real(name, out, q)?;
        Ok((q, real))
    }

    /// Nearest-neighbour upsampling by whole factors: each pixel becomes an
    /// fh x fw block ([`Upsample2d`]: row copies, where tract's broadcast
    /// went through generic ndarray zips).
    fn upsample(
        &mut self,
        name: &str,
        x: OutletId,
        f: [usize; 2],
    ) -> Result<OutletId, ImportError> {
        if f == [1, 1] {
            return Ok(x);
        }
        self.node(name.to_owned(), Upsample2d { fh: f[0], fw: f[1] }, &[x])
    }
}

/// XNNPACK's int8 ADD (SUB negates `mb`) in fixed point: multipliers
/// `round(m * 2^shift)` with 20 significant bits, then
/// `(a * ma' + b * mb' + 2^(shift-1)) >> shift` on int32 (round half
/// up). Its f32 equivalent rounds some near-ties the other way (64 of
/// 33M reference elements), enough to move the output by 5 dB.
fn int8_add(ma: f32, mb: f32) -> Option<QuantFn> {
    let max = ma.abs().max(mb.abs());
    let exp = ((max.to_bits() >> 23) & 0xff) as i32 - 127;
    let shift = 20 - exp;
    if !(1..31).contains(&shift) {
        return None;
    }
    let fixed = |m: f32| (m as f64 * 2f64.powi(shift)).round_ties_even() as i64;
    Some(QuantFn::Add {
        ma: fixed(ma),
        mb: fixed(mb),
        shift: shift as u32,
    })
}

/// The fused activation of an ADD, MUL or SUB operator (NONE when absent).
fn binary_activation(op: &tflite::Operator, code: i32) -> ActivationFunctionType {
    match BuiltinOperator(code) {
        BuiltinOperator::ADD => op
            .builtin_options_as_add_options()
            .map(|o| o.fused_activation_function()),
        BuiltinOperator::MUL => op
            .builtin_options_as_mul_options()
            .map(|o| o.fused_activation_function()),
        _ => op
            .builtin_options_as_sub_options()
            .map(|o| o.fused_activation_function()),
    }
    .unwrap_or(ActivationFunctionType::NONE)
}

/// Padding, strides, dilations and fused activation of a CONV_2D or
/// DEPTHWISE_CONV_2D operator (shared by the f32 and the exact int8 paths).
struct ConvGeometry {
    same: bool,
    stride: (usize, usize),
    dilation: (usize, usize),
    act: ActivationFunctionType,
}

fn conv_geometry(op: &tflite::Operator, depthwise: bool) -> Result<ConvGeometry, &'static str> {
    let geo = |p: Padding, sh: i32, sw: i32, dh: i32, dw: i32, act| ConvGeometry {
        same: p == Padding::SAME,
        stride: (sh.max(1) as usize, sw.max(1) as usize),
        dilation: (dh.max(1) as usize, dw.max(1) as usize),
        act,
    };
    if depthwise {
        let o = op
            .builtin_options_as_depthwise_conv_2_doptions()
            .ok_or("missing options")?;
        if o.depth_multiplier() > 1 {
            return Err("depth multiplier > 1");
        }
        Ok(geo(
            o.padding(),
            o.stride_h(),
            o.stride_w(),
            o.dilation_h_factor(),
            o.dilation_w_factor(),
            o.fused_activation_function(),
        ))
    } else {
        let o = op
            .builtin_options_as_conv_2_doptions()
            .ok_or("missing options")?;
        Ok(geo(
            o.padding(),
            o.stride_h(),
            o.stride_w(),
            o.dilation_h_factor(),
            o.dilation_w_factor(),
            o.fused_activation_function(),
        ))
    }
}

impl ConvGeometry {
    /// Our [`DirectConv`] for the shapes it takes (unpadded, undilated,
    /// not depthwise), with the fused activation as its clamp; `None` for
    /// the others, which go to tract's convolution.
    fn direct(
        &self,
        kernel: &Tensor,
        ks: &[usize],
        bias: &Tensor,
        depthwise: bool,
    ) -> Option<TractResult<DirectConv>> {
        let unpadded = !self.same || (ks[1] == 1 && ks[2] == 1 && self.stride == (1, 1));
        // Where tract's own convolution is faster (armv7: the kernel table).
        if crate::kernels::table().fconv.is_none()
            || depthwise
            || !unpadded
            || self.dilation != (1, 1)
        {
            return None;
        }
        let bounds = match self.act {
            ActivationFunctionType::NONE => (f32::NEG_INFINITY, f32::INFINITY),
            ActivationFunctionType::RELU => (0.0, f32::INFINITY),
            ActivationFunctionType::RELU6 => (0.0, 6.0),
            _ => return None,
        };
        let run = || {
            let k = kernel.cast_to::<f32>()?;
            let b = bias.cast_to::<f32>()?;
            let (k, b) = (k.try_as_plain_ram()?, b.try_as_plain_ram()?);
            DirectConv::new(
                k.as_slice::<f32>()?,
                [ks[0], ks[1], ks[2], ks[3]],
                b.as_slice::<f32>()?,
                self.stride,
                bounds,
            )
        };
        Some(run())
    }

    /// tract's convolution for an OHWI kernel of shape `ks`.
    fn conv(&self, ks: &[usize], in_ch: usize, out_ch: usize, group: usize) -> Conv {
        let pool_spec = PoolSpec {
            data_format: DataFormat::NHWC,
            kernel_shape: tvec!(ks[1], ks[2]),
            padding: if self.same {
                PaddingSpec::SameUpper
            } else {
                PaddingSpec::Valid
            },
            dilations: Some(tvec!(self.dilation.0, self.dilation.1)),
            strides: Some(tvec!(self.stride.0, self.stride.1)),
            input_channels: in_ch,
            output_channels: out_ch,
        };
        Conv {
            pool_spec,
            kernel_fmt: KernelFormat::OHWI,
            group,
            q_params: None,
        }
    }
}

/// One operator being imported: its place in the file, its builtin code,
/// the tensors it reads and the one it writes (whose name names its nodes).
struct OpCtx<'a> {
    index: usize,
    code: i32,
    op: tflite::Operator<'a>,
    ins: Vec<i32>,
    out: i32,
    name: String,
}

impl OpCtx<'_> {
    fn builtin(&self) -> BuiltinOperator {
        BuiltinOperator(self.code)
    }

    fn unsupported(&self, why: &str) -> ImportError {
        ImportError::Unsupported {
            index: self.index,
            op: opcode_name(self.code),
            why: why.to_owned(),
        }
    }

    /// At least `n` inputs.
    fn need(&self, n: usize) -> Result<(), ImportError> {
        if self.ins.len() < n {
            return Err(self.unsupported(&format!("expects {n} inputs, has {}", self.ins.len())));
        }
        Ok(())
    }
}

/// What the f32 import of an operator gives.
enum Produced {
    /// A value that goes through the int8 grid bookkeeping
    /// ([`Importer::follow_grid`], [`Importer::fake_quant`]).
    Val(Val),
    /// A [`DirectConv`]'s output, stored as is.
    Direct(OutletId),
}

/// An int8 convolution's integer weights (OHWI, or [1,H,W,C] depthwise),
/// bias and per-output-channel requantization scales.
struct IntKernel {
    shape: Vec<usize>,
    in_ch: usize,
    out_ch: usize,
    depthwise: bool,
    weights: Vec<i64>,
    /// Clamped so that sums stay exact (see [`IntKernel::new`]).
    bias: Vec<i64>,
    scale: Vec<f32>,
    /// A sum can reach 2^24: tract's fallback convolution then runs in f64.
    wide: bool,
}

impl IntKernel {
    fn new(
        shape: Vec<usize>,
        in_ch: usize,
        depthwise: bool,
        weights: Vec<i64>,
        bias: Vec<i64>,
        scale: Vec<f32>,
    ) -> IntKernel {
        let out_ch = scale.len();
        // Worst case |sum of products| per output channel: 255 * sum |w|.
        let mut bound = vec![0i64; out_ch];
        for (i, &w) in weights.iter().enumerate() {
            let c = if depthwise {
                i % out_ch
            } else {
                i / (weights.len() / out_ch)
            };
            bound[c] += 255 * w.abs();
        }
        // Files mark dead channels with a bias of +-(2^31 - 1): their output
        // saturates whatever the input, and so does it with any bias that
        // keeps |acc * m| >= 256; a smaller one keeps the sum exact.
        let bias: Vec<i64> = bias
            .iter()
            .zip(&bound)
            .zip(&scale)
            .map(|((&b, &w), &m)| {
                if m.is_nan() || m <= 0.0 {
                    return 0; // a zero scale: the output is 0 anyway
                }
                let saturating = (w as f64 + (256.0 / m as f64).ceil() + 1.0).min(1e15) as i64;
                b.clamp(-saturating, saturating)
            })
            .collect();
        // f32 holds integers exactly below 2^24; past that (wide 1x1
        // convolutions) the sum runs in f64, and its one rounding to f32 is
        // XNNPACK's own int32 -> f32 conversion.
        let wide = bound.iter().zip(&bias).any(|(w, b)| w + b.abs() >= 1 << 24);
        IntKernel {
            shape,
            in_ch,
            out_ch,
            depthwise,
            weights,
            bias,
            scale,
            wide,
        }
    }
}

/// The stored values of a constant of type `ty` (checked by the caller:
/// INT8, UINT8, FLOAT16, FLOAT32, INT32 or INT64), as f64.
fn decode(ty: TensorType, bytes: &[u8]) -> Vec<f64> {
    match ty {
        TensorType::INT8 => bytes.iter().map(|&b| b as i8 as f64).collect(),
        TensorType::UINT8 => bytes.iter().map(|&b| b as f64).collect(),
        TensorType::FLOAT16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        TensorType::FLOAT32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        TensorType::INT32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
    }
}

/// The values of a small integer constant (axes, paddings, sizes).
fn i32s(t: &Tensor) -> TractResult<Vec<i32>> {
    let t = t.cast_to::<i32>()?;
    Ok(t.try_as_plain_ram()?.as_slice::<i32>()?.to_vec())
}

/// Element-wise `f` with numpy broadcasting, for folding constants at load.
fn broadcast_f32(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> TractResult<Tensor> {
    let a = a.cast_to::<f32>()?;
    let b = b.cast_to::<f32>()?;
    let av = a.to_plain_array_view::<f32>()?;
    let bv = b.to_plain_array_view::<f32>()?;
    let shape = tract_core::broadcast::multi_broadcast(&[av.shape(), bv.shape()])?;
    let av = av.broadcast(&*shape).context("broadcast")?;
    let bv = bv.broadcast(&*shape).context("broadcast")?;
    let out = tract_ndarray::Zip::from(&av)
        .and(&bv)
        .map_collect(|&x, &y| f(x, y));
    Ok(out.into_tensor())
}

/// STRIDED_SLICE on a 1-D constant (the only use in these networks: picking
/// H and W out of a SHAPE). Returns the slice, or a scalar with shrink_axis.
fn strided_slice_1d(
    x: &Tensor,
    begin: &Tensor,
    end: &Tensor,
    strides: &Tensor,
    (begin_mask, end_mask, shrink, ellipsis, new_axis): (i32, i32, i32, i32, i32),
) -> Result<Tensor, String> {
    let get = |t: &Tensor| -> Result<i32, String> {
        let s = i32s(t).map_err(|e| e.to_string())?;
        if s.len() != 1 {
            return Err("only 1-D slicing of constants".into());
        }
        Ok(s[0])
    };
    if x.rank() != 1 || ellipsis != 0 || new_axis != 0 {
        return Err("only 1-D slicing of constants".into());
    }
    let xs = &i32s(x).map_err(|e| e.to_string())?[..];
    let len = xs.len() as i32;
    let stride = get(strides)?;
    if stride != 1 {
        return Err("strides other than 1".into());
    }
    let norm = |v: i32| if v < 0 { v + len } else { v }.clamp(0, len);
    let b = if begin_mask & 1 != 0 {
        0
    } else {
        norm(get(begin)?)
    };
    if shrink & 1 != 0 {
        return xs
            .get(b as usize)
            .map(|&v| tensor0(v))
            .ok_or_else(|| "index out of range".into());
    }
    let e = if end_mask & 1 != 0 {
        len
    } else {
        norm(get(end)?)
    };
    Ok(tensor1(&xs[b as usize..e.max(b) as usize]))
}
