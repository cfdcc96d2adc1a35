//! Fusions of our per-channel ops, as passes over the optimized graph.
//!
//! The importer emits one node per operator: [`PerChannel`] for the
//! instance norms' scale, offset and centring, [`SpatialSum`] for their
//! means, [`ReflectPad2d`] for the next layer's padding. [`per_channel_ops`]
//! then merges a node into the one after it when nothing else reads it
//! (each merge saves a pass over a picture), in this order:
//! * `x * s` then `+ v` -> one `PerChannel` `MulAdd`;
//! * a per-channel squared difference then its sum over H and W ->
//!   `SpatialSum { centred: true }` (no picture of squares written);
//! * a `PerChannel` then a reflect padding -> `ReflectPad2d { pre }`
//!   (after the first, so the padding takes a whole `MulAdd`).
//!
//! Each fused op computes its two ops' expressions element by element (a
//! `MulAdd` kernel may round once less, with a fused multiply-add): the
//! int8 files' outputs stay bit-identical. These fusions used to be made
//! while importing; as passes they check their single-reader condition
//! on the graph itself, and the importer stays one node per operator.

use tract_core::internal::*;

use super::ops::{ChannelFn, PerChannel, ReflectPad2d, SpatialSum};

/// Runs the three fusions over `model`; returns how many nodes merged.
pub fn per_channel_ops(model: &mut TypedModel) -> TractResult<usize> {
    let mut count = 0;
    for fusion in [mul_add, centred_sum, padding_after] {
        while let Some((node, (op, inputs))) = find(model, fusion)? {
            let patch = TypedModelPatch::replace_single_op(model, model.node(node), &inputs, op)?;
            patch.apply(model)?;
            // Drops the merged producer: it has no reader left.
            model.compact()?;
            count += 1;
        }
    }
    Ok(count)
}

/// A fused op and its inputs.
type Fused = (Box<dyn TypedOp>, TVec<OutletId>);

/// A rewrite: for a node and the node writing its first input (read by
/// that node only), the fused op, if they match.
type Fusion = fn(&TypedNode, &TypedNode) -> Option<Fused>;

/// The first node where `fusion` applies, and what replaces it.
fn find(model: &TypedModel, fusion: Fusion) -> TractResult<Option<(usize, Fused)>> {
    let outputs = model.output_outlets()?;
    for node in model.nodes() {
        let Some(&x) = node.inputs.first() else {
            continue;
        };
        let pre = model.node(x.node);
        let single =
            pre.outputs.len() == 1 && pre.outputs[0].successors.len() == 1 && !outputs.contains(&x);
        if !single {
            continue;
        }
        if let Some((op, inputs)) = fusion(node, pre) {
            return Ok(Some((node.id, (op, inputs))));
        }
    }
    Ok(None)
}

/// `PerChannel Add(PerChannel Mul(x, s), v)` -> `PerChannel MulAdd(x, s, v)`,
/// the ADD's ReLU kept.
fn mul_add(node: &TypedNode, pre: &TypedNode) -> Option<Fused> {
    let add = node.op_as::<PerChannel>()?;
    let mul = pre.op_as::<PerChannel>()?;
    let plain_mul = PerChannel {
        f: ChannelFn::Mul,
        relu: false,
    };
    if add.f != ChannelFn::Add || *mul != plain_mul {
        return None;
    }
    let op = PerChannel {
        f: ChannelFn::MulAdd,
        relu: add.relu,
    };
    let inputs = tvec![pre.inputs[0], pre.inputs[1], node.inputs[1]];
    Some((Box::new(op), inputs))
}

/// `SpatialSum(PerChannel SquaredDiff(x, m))` -> `SpatialSum centred(x, m)`.
fn centred_sum(node: &TypedNode, pre: &TypedNode) -> Option<Fused> {
    let sum = node.op_as::<SpatialSum>()?;
    let sq = pre.op_as::<PerChannel>()?;
    let plain_sq = PerChannel {
        f: ChannelFn::SquaredDiff,
        relu: false,
    };
    if sum.centred || *sq != plain_sq {
        return None;
    }
    let op = SpatialSum { centred: true };
    Some((Box::new(op), pre.inputs.iter().copied().collect()))
}

/// `ReflectPad2d(PerChannel f(x, ..))` -> `ReflectPad2d { pre: f }(x, ..)`.
fn padding_after(node: &TypedNode, pre: &TypedNode) -> Option<Fused> {
    let pad = node.op_as::<ReflectPad2d>()?;
    let f = pre.op_as::<PerChannel>()?;
    if pad.pre.is_some() {
        return None;
    }
    let op = ReflectPad2d {
        pre: Some(f.clone()),
        ..pad.clone()
    };
    Some((Box::new(op), pre.inputs.iter().copied().collect()))
}
