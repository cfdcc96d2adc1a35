//! Inference stage: Magenta's arbitrary style-transfer networks run by tract.
//!
//! * [`PredictNet`]: a 256x256 painting -> a 100-float style [`Embedding`];
//! * [`TransferNet`]: a content image + an embedding -> the stylized image, at
//!   any H x W that is a multiple of [`SIZE_MULTIPLE`].
//!
//! Both load the official TFLite files unmodified through [`tflite::import`].
//! The daemon talks to the transfer network through the [`Stylizer`] trait so
//! tests can swap in a fake.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod conv;
pub mod embedding;
mod fuse;
pub mod kernels;
mod ops;
mod qconv;
mod quant;
pub mod tflite;
mod wires;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tract_core::internal::*;
use tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};

use crate::embedding::{Embedding, EMBEDDING_LEN};

/// The transfer network halves the picture twice then doubles it twice.
pub const SIZE_MULTIPLE: usize = 4;
/// Smallest side: the first layer reflects 4 pixels on each side.
pub const MIN_SIDE: usize = 16;
/// The prediction network's fixed input side.
pub const PREDICT_SIDE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file {path}: cannot read it: {source}. Run `styleframe models fetch` to install the model files")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {path}: {source}. The file is damaged or not a style-transfer network: run `styleframe models fetch` to reinstall it")]
    Import {
        path: PathBuf,
        source: tflite::ImportError,
    },
    #[error("model file {path}: {what}")]
    Shape { path: PathBuf, what: String },
    #[error("model file {path}: tract failed: {message}")]
    Tract { path: PathBuf, message: String },
    #[error("size {h}x{w} is not usable: both sides must be multiples of {SIZE_MULTIPLE} and at least {MIN_SIDE}")]
    BadSize { h: usize, w: usize },
    #[error("input has {got} values, the network expects {expected} ({what})")]
    BadInput {
        got: usize,
        expected: usize,
        what: &'static str,
    },
}

/// Anything that stylizes content pictures (the real network or a test fake).
pub trait Stylizer: Send {
    /// The network input size (height, width).
    fn size(&self) -> (usize, usize);
    /// `content`: H*W*3 RGB floats in [0, 1]; `out` gets H*W*3 floats in [0, 1].
    fn stylize(
        &mut self,
        content: &[f32],
        embedding: &Embedding,
        out: &mut Vec<f32>,
    ) -> Result<(), EngineError>;
}

/// The threads a network runs on (cheap to clone). The binary owns the
/// process's pools and hands the same one to every network that asks for
/// that many threads: the pool's first thread runs all their graphs
/// ([`run_spinning`]), so their freed tensors share one heap (a pool per
/// network kept a heap of freed tensors per network: `styleframe bench`
/// peak RSS 53-64 -> 89-111 MiB).
#[derive(Clone)]
pub struct Pool {
    executor: Executor,
    threads: usize,
}

impl Pool {
    /// A new pool of `threads` threads (one: the caller's thread, no pool).
    pub fn new(threads: usize) -> Pool {
        let executor = match threads {
            0 | 1 => Executor::SingleThread,
            n => Executor::multithread(n),
        };
        Pool {
            executor,
            threads: threads.max(1),
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether both are the same pool (not merely the same size).
    pub fn same_as(&self, other: &Pool) -> bool {
        match (&self.executor, &other.executor) {
            (Executor::MultiThread(a), Executor::MultiThread(b)) => Arc::ptr_eq(a, b),
            (Executor::SingleThread, Executor::SingleThread) => true,
            _ => false,
        }
    }
}

fn tract_err(path: &Path) -> impl Fn(TractError) -> EngineError + '_ {
    move |e| EngineError::Tract {
        path: path.to_owned(),
        message: format!("{e:#}"),
    }
}

fn read_model(path: &Path) -> Result<Arc<Vec<u8>>, EngineError> {
    std::fs::read(path)
        .map(Arc::new)
        .map_err(|source| EngineError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Imports a model file (int8 values emulated on their grid: the outputs
/// then match the int8 runtime) and gives a maker of shape errors for it.
fn import_file<'p>(
    path: &'p Path,
    bytes: &[u8],
    input_hw: Option<(usize, usize)>,
) -> Result<(tflite::Imported, impl Fn(String) -> EngineError + 'p), EngineError> {
    let opts = tflite::ImportOptions {
        input_hw,
        emulate_int8: true,
    };
    let imported = tflite::import(bytes, &opts).map_err(|source| EngineError::Import {
        path: path.to_owned(),
        source,
    })?;
    Ok((imported, move |what| EngineError::Shape {
        path: path.to_owned(),
        what,
    }))
}

/// A runnable network with its reusable state.
struct Runner {
    state: TypedSimpleState,
    executor: Executor,
    /// Time spent in each node so far, when profiling (`bench --profile`).
    profile: Option<Vec<Duration>>,
}

/// Where a network spends its time, summed over the profiled runs.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Per op kind (e.g. `QConv`): how many nodes run it and their time,
    /// slowest first.
    pub ops: Vec<(String, usize, Duration)>,
    /// Per node, described with its output shape, slowest first.
    pub nodes: Vec<(String, Duration)>,
}

impl Runner {
    fn build(model: TypedModel, pool: &Pool, path: &Path) -> Result<Runner, EngineError> {
        kernels::table(); // logs the kernels picked, once
        let model = optimize(model).map_err(tract_err(path))?;
        let plan = SimplePlan::new(model).map_err(tract_err(path))?;
        let state = SimpleState::new(&plan).map_err(tract_err(path))?;
        Ok(Runner {
            state,
            executor: pool.executor.clone(),
            profile: None,
        })
    }

    fn run(&mut self, inputs: TVec<TValue>, path: &Path) -> Result<Tensor, EngineError> {
        let state = &mut self.state;
        let executor = self.executor.clone();
        let profile = &mut self.profile;
        let graph = move || {
            multithread_tract_scope(executor, || match profile {
                None => state.run(inputs),
                Some(times) => state.run_plan_with_eval(inputs, |ctx, op_state, node, inputs| {
                    let t = Instant::now();
                    let out = tract_core::plan::eval(ctx, op_state, node, inputs);
                    if let Some(d) = times.get_mut(node.id) {
                        *d += t.elapsed();
                    }
                    out
                }),
            })
        };
        // The whole graph runs on one of the pool's threads: each op's
        // parallel section then starts without waking the caller's thread
        // and the pool's other threads are still spinning from the last op,
        // instead of a sleep and wake-up of every thread per op.
        let mut out = match &self.executor {
            Executor::MultiThread(pool) => run_spinning(pool, graph),
            _ => graph(),
        }
        .map_err(tract_err(path))?;
        let t = out.remove(0).into_tensor();
        Ok(t)
    }

    /// Starts (or restarts) timing every node of the following runs.
    fn start_profile(&mut self) {
        let n = self.state.plan().model().nodes().len();
        self.profile = Some(vec![Duration::ZERO; n]);
    }

    /// Where the runs since [`Runner::start_profile`] spent their time.
    fn profile(&self) -> Profile {
        let Some(times) = &self.profile else {
            return Profile::default();
        };
        let mut p = Profile::default();
        for node in self.state.plan().model().nodes() {
            let (name, d) = (node.op().name(), times[node.id]);
            match p.ops.iter_mut().find(|o| o.0 == name) {
                Some(o) => {
                    o.1 += 1;
                    o.2 += d;
                }
                None => p.ops.push((name.to_string(), 1, d)),
            }
            let info = node.op().info().unwrap_or_default().join(" ");
            let shape = format!("{:?}", node.outputs[0].fact.shape);
            p.nodes.push((format!("{name} {info} -> {shape}"), d));
        }
        p.ops.sort_by_key(|o| std::cmp::Reverse(o.2));
        p.nodes.sort_by_key(|n| std::cmp::Reverse(n.1));
        p
    }
}

/// The runner's graph: tract's optimizations, then our passes over the
/// optimized graph.
fn optimize(model: TypedModel) -> TractResult<TypedModel> {
    let mut model = model.into_optimized()?;
    fuse::per_channel_ops(&mut model)?;
    wires::bytes_between_int_ops(&mut model)?;
    Ok(model)
}

/// Optimizes an imported network as the runner does (our ops, byte wires)
/// and runs it once on zeros, one thread. For the fuzz target: a crafted
/// file that imports must still give an error, never a panic or a read out
/// of bounds, in the kernels too. Inputs larger than `max_values` are not
/// run.
pub fn run_on_zeros(imported: tflite::Imported, max_values: usize) -> TractResult<()> {
    let model = optimize(imported.model)?;
    let mut inputs = tvec!();
    for i in 0..model.inputs.len() {
        let fact = model.input_fact(i)?;
        let Some(shape) = fact.shape.as_concrete() else {
            bail!("input {i} has a symbolic shape");
        };
        ensure!(
            shape.iter().product::<usize>() <= max_values,
            "input {i} {shape:?} too large to run"
        );
        inputs.push(Tensor::zero_dt(fact.datum_type, shape)?.into_tvalue());
    }
    SimplePlan::new(model)?.run(inputs)?;
    Ok(())
}

/// How long a pool thread waits for work, spinning, before it sleeps.
const MAX_SPIN: Duration = Duration::from_micros(300);

/// Runs `graph` on the first thread of `pool` while the pool's other
/// threads busy-wait for the work each op splits off, as XNNPACK's pool
/// does.
///
/// A rayon thread that finds no work sleeps after a few dozen rounds, and
/// waking it takes a futex call and, in a VM, an inter-processor interrupt:
/// tens of microseconds, per op. The prediction network has ~65 short ops
/// (a 1x1 convolution at 8x8 is ~20 microseconds), so at 2 threads it ran
/// slower than at 1. Here one broadcast reaches every thread: the first
/// runs the graph, the others steal its work (`yield_now`) until it is
/// done, or until no work came for [`MAX_SPIN`].
///
/// Always the same thread for the graph: glibc gives each thread its own
/// heap, and the freed tensors stay in the heap of the thread that
/// allocated them (`keep_freed_memory`); a graph moving between threads
/// kept a copy in each (peak RSS of the pipeline 68 -> 115 MiB).
///
/// No deadlock: `broadcast` returns once every thread has finished its
/// part, so no spinner outlives its run, and an idle rayon thread takes
/// its broadcast before it steals, so a spinner never starts nested inside
/// a stolen piece of the graph (which it would then hold up).
fn run_spinning<R: Send>(pool: &rayon_core::ThreadPool, graph: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    // One graph at a time per process: the pools are shared, and two
    // graphs would share the same cores anyway.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let done = AtomicBool::new(false);
    let graph = Mutex::new(Some(graph));
    /// Ends the spinning even if the graph panics.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let mut results = pool.broadcast(|ctx| {
        if ctx.index() == 0 {
            let _done = Done(&done);
            let graph = graph.lock().map(|mut g| g.take()).ok().flatten();
            return graph.map(|g| g());
        }
        let mut idle = 0u32;
        let mut last_work = Instant::now();
        while !done.load(Ordering::Acquire) {
            match rayon_core::yield_now() {
                Some(rayon_core::Yield::Executed) => {
                    idle = 0;
                    last_work = Instant::now();
                }
                _ => {
                    idle = idle.wrapping_add(1);
                    // Spinning only pays while work comes often. On a busy
                    // CPU it takes turns from the graph's own thread (one
                    // run next to a compiler: predict at 2 threads in 59
                    // ms, 7 ms with rayon's sleeping pool), so after a long
                    // gap this thread goes back to rayon's sleep.
                    if idle.is_multiple_of(64) {
                        if last_work.elapsed() > MAX_SPIN {
                            break;
                        }
                        // Should the scheduler have put this thread on the
                        // graph's core, let the graph run.
                        std::thread::yield_now();
                    }
                    std::hint::spin_loop();
                }
            }
        }
        None
    });
    results
        .swap_remove(0)
        .expect("the pool's first thread ran the graph")
}

/// The style-transfer network, imported for one input size.
pub struct TransferNet {
    path: PathBuf,
    bytes: Arc<Vec<u8>>,
    runner: Runner,
    h: usize,
    w: usize,
    pool: Pool,
    /// Order of the (content, embedding) inputs in the file.
    content_first: bool,
}

impl TransferNet {
    /// Loads `path` for `h` x `w` content pictures, run on `pool`.
    pub fn load(path: &Path, h: usize, w: usize, pool: &Pool) -> Result<Self, EngineError> {
        let bytes = read_model(path)?;
        Self::from_bytes(path, bytes, h, w, pool)
    }

    fn from_bytes(
        path: &Path,
        bytes: Arc<Vec<u8>>,
        h: usize,
        w: usize,
        pool: &Pool,
    ) -> Result<Self, EngineError> {
        check_size(h, w)?;
        let (imported, shape_err) = import_file(path, &bytes, Some((h, w)))?;
        // Verify the I/O against what the daemon feeds, from the file itself.
        if imported.inputs.len() != 2 || imported.outputs.len() != 1 {
            return Err(shape_err(format!(
                "expected 2 inputs and 1 output (a transfer network), found {} and {}",
                imported.inputs.len(),
                imported.outputs.len()
            )));
        }
        let is_embedding = |s: &[usize]| s.iter().product::<usize>() == EMBEDDING_LEN;
        let content_first = !is_embedding(&imported.inputs[0].shape);
        let (c, e) = if content_first { (0, 1) } else { (1, 0) };
        if !is_embedding(&imported.inputs[e].shape)
            || imported.inputs[c].shape.len() != 4
            || imported.inputs[c].shape[3] != 3
        {
            return Err(shape_err(format!(
                "inputs {:?} are not (content [1,H,W,3], embedding [1,1,1,{EMBEDDING_LEN}])",
                imported.inputs
            )));
        }
        let mut model = imported.model;
        if !content_first {
            // Keep the graph's input order as the file has it; we feed accordingly.
        }
        let fact = model.output_fact(0).map_err(tract_err(path))?.clone();
        let expect: TVec<usize> = tvec![1, h, w, 3];
        if fact.shape.as_concrete() != Some(&expect[..]) {
            return Err(shape_err(format!(
                "output is {:?}, expected {expect:?}",
                fact.shape
            )));
        }
        model.declutter().map_err(tract_err(path))?;
        let runner = Runner::build(model, pool, path)?;
        Ok(TransferNet {
            path: path.to_owned(),
            bytes,
            runner,
            h,
            w,
            pool: pool.clone(),
            content_first,
        })
    }

    /// The same network for another content size (e.g. when degrading).
    pub fn resized(&self, h: usize, w: usize) -> Result<Self, EngineError> {
        Self::from_bytes(&self.path, self.bytes.clone(), h, w, &self.pool)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Times every op of the following runs (slower; for `bench --profile`).
    pub fn start_profile(&mut self) {
        self.runner.start_profile()
    }

    /// Where the runs since [`TransferNet::start_profile`] spent their time.
    pub fn profile(&self) -> Profile {
        self.runner.profile()
    }
}

impl Stylizer for TransferNet {
    fn size(&self) -> (usize, usize) {
        (self.h, self.w)
    }

    fn stylize(
        &mut self,
        content: &[f32],
        embedding: &Embedding,
        out: &mut Vec<f32>,
    ) -> Result<(), EngineError> {
        let n = self.h * self.w * 3;
        if content.len() != n {
            return Err(EngineError::BadInput {
                got: content.len(),
                expected: n,
                what: "content",
            });
        }
        let c =
            Tensor::from_shape(&[1, self.h, self.w, 3], content).map_err(tract_err(&self.path))?;
        let e = Tensor::from_shape(&[1, 1, 1, EMBEDDING_LEN], &embedding.0[..])
            .map_err(tract_err(&self.path))?;
        let inputs = if self.content_first {
            tvec![c.into_tvalue(), e.into_tvalue()]
        } else {
            tvec![e.into_tvalue(), c.into_tvalue()]
        };
        let y = self.runner.run(inputs, &self.path)?;
        let y = y
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(tract_err(&self.path))?;
        out.clear();
        out.extend_from_slice(y);
        Ok(())
    }
}

/// The style-prediction network: painting -> embedding.
pub struct PredictNet {
    path: PathBuf,
    runner: Runner,
}

impl PredictNet {
    /// Loads `path`, run on `pool`.
    pub fn load(path: &Path, pool: &Pool) -> Result<Self, EngineError> {
        let bytes = read_model(path)?;
        let (imported, shape_err) = import_file(path, &bytes, None)?;
        let want_in = vec![1, PREDICT_SIDE, PREDICT_SIDE, 3];
        if imported.inputs.len() != 1 || imported.inputs[0].shape != want_in {
            return Err(shape_err(format!(
                "inputs {:?}: expected one [1,256,256,3] painting (a prediction network)",
                imported.inputs
            )));
        }
        if imported.outputs.len() != 1
            || imported.outputs[0].shape.iter().product::<usize>() != EMBEDDING_LEN
        {
            return Err(shape_err(format!(
                "outputs {:?}: expected one {EMBEDDING_LEN}-float embedding",
                imported.outputs
            )));
        }
        let runner = Runner::build(imported.model, pool, path)?;
        Ok(PredictNet {
            path: path.to_owned(),
            runner,
        })
    }

    /// Times every op of the following runs (slower; for `bench --profile`).
    pub fn start_profile(&mut self) {
        self.runner.start_profile()
    }

    /// Where the runs since [`PredictNet::start_profile`] spent their time.
    pub fn profile(&self) -> Profile {
        self.runner.profile()
    }

    /// `painting`: 256*256*3 RGB floats in [0, 1].
    pub fn embed(&mut self, painting: &[f32]) -> Result<Embedding, EngineError> {
        let n = PREDICT_SIDE * PREDICT_SIDE * 3;
        if painting.len() != n {
            return Err(EngineError::BadInput {
                got: painting.len(),
                expected: n,
                what: "painting",
            });
        }
        let x = Tensor::from_shape(&[1, PREDICT_SIDE, PREDICT_SIDE, 3], painting)
            .map_err(tract_err(&self.path))?;
        let y = self.runner.run(tvec![x.into_tvalue()], &self.path)?;
        let y = y
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(tract_err(&self.path))?;
        let mut e = [0f32; EMBEDDING_LEN];
        e.copy_from_slice(y);
        Ok(Embedding(e))
    }
}

/// Checks that the transfer network can run at `h` x `w`.
pub fn check_size(h: usize, w: usize) -> Result<(), EngineError> {
    if !h.is_multiple_of(SIZE_MULTIPLE)
        || !w.is_multiple_of(SIZE_MULTIPLE)
        || h < MIN_SIDE
        || w < MIN_SIDE
    {
        return Err(EngineError::BadSize { h, w });
    }
    Ok(())
}

/// The largest usable size with the aspect ratio `aspect_w_over_h` (within
/// 2%) and at most `max_pixels` pixels, e.g. 16:9 and 114688 -> 256x448.
pub fn size_for(aspect_w_over_h: f64, max_pixels: u32) -> (usize, usize) {
    let aspect = aspect_w_over_h.clamp(0.1, 10.0);
    let m = SIZE_MULTIPLE;
    let max = (max_pixels as usize).max(MIN_SIDE * MIN_SIDE);
    let mut best = (MIN_SIDE, MIN_SIDE);
    let mut best_key = (0usize, f64::MAX);
    let mut h = MIN_SIDE;
    while h * MIN_SIDE <= max {
        let ideal = h as f64 * aspect / m as f64;
        let fit = max / h / m * m;
        for w in [ideal.floor() as usize * m, ideal.ceil() as usize * m, fit] {
            let w = w.max(MIN_SIDE);
            let err = ((w as f64 / h as f64) - aspect).abs() / aspect;
            let key = (h * w, err);
            if h * w <= max
                && err <= 0.02
                && (key.0 > best_key.0 || (key.0 == best_key.0 && err < best_key.1))
            {
                best = (h, w);
                best_key = key;
            }
        }
        h += m;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// What the fuzz target does with a file that imports: the official
    /// int8 prediction network runs on zeros; an input over the limit is
    /// refused, not run.
    #[test]
    fn an_imported_network_runs_once_on_zeros_within_a_size_limit() {
        let shared = std::env::var("STYLEFRAME_SHARED")
            .unwrap_or_else(|_| format!("{}/../../shared", env!("CARGO_MANIFEST_DIR")));
        let path = format!("{shared}/models/style_predict_quantized_256.tflite");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let opts = tflite::ImportOptions {
            input_hw: None,
            emulate_int8: true,
        };
        run_on_zeros(tflite::import(&bytes, &opts).unwrap(), 1 << 18).unwrap();
        let err = run_on_zeros(tflite::import(&bytes, &opts).unwrap(), 1000).unwrap_err();
        assert!(format!("{err}").contains("too large"), "{err}");
    }

    /// An official file's graph as the runner builds it, imported at
    /// `hw`, with or without our fusions (see `fuse`).
    fn official_graph(file: &str, hw: Option<(usize, usize)>, fused: bool) -> TypedModel {
        let shared = std::env::var("STYLEFRAME_SHARED")
            .unwrap_or_else(|_| format!("{}/../../shared", env!("CARGO_MANIFEST_DIR")));
        let path = format!("{shared}/models/{file}.tflite");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let opts = tflite::ImportOptions {
            input_hw: hw,
            emulate_int8: true,
        };
        let mut model = tflite::import(&bytes, &opts).unwrap().model;
        model.declutter().unwrap();
        if fused {
            optimize(model).unwrap()
        } else {
            let mut model = model.into_optimized().unwrap();
            wires::bytes_between_int_ops(&mut model).unwrap();
            model
        }
    }

    /// How many nodes of each fused kind (`Debug` of the op) a graph has.
    fn fused_ops(model: &TypedModel) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = vec![];
        for node in model.nodes() {
            let op = format!("{:?}", node.op);
            if !["PerChannel", "SpatialSum", "ReflectPad2d"]
                .iter()
                .any(|k| op.starts_with(k))
            {
                continue;
            }
            match counts.iter_mut().find(|c| c.0 == op) {
                Some(c) => c.1 += 1,
                None => counts.push((op, 1)),
            }
        }
        counts.sort();
        counts
    }

    fn run_on_pattern(model: TypedModel) -> Tensor {
        let mut inputs = tvec!();
        for i in 0..model.inputs.len() {
            let fact = model.input_fact(i).unwrap();
            let shape = fact.shape.as_concrete().unwrap().to_vec();
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|k| ((k * 7919) % 1000) as f32 / 1000.0)
                .collect();
            inputs.push(Tensor::from_shape(&shape, &v).unwrap().into_tvalue());
        }
        let plan = SimplePlan::new(model).unwrap();
        plan.run(inputs).unwrap().remove(0).into_tensor()
    }

    /// The graphs the fusion passes give have the fused ops the importer
    /// used to make while importing (counted on each official file before
    /// the fusions moved to `fuse`), and the same output bits as without
    /// the passes.
    #[test]
    fn fusion_passes_give_the_fused_ops_and_the_same_outputs() {
        let pad = |n: usize, pre: &str| {
            format!("ReflectPad2d {{ top: {n}, bottom: {n}, left: {n}, right: {n}, pre: {pre} }}")
        };
        let mul_add_relu = "Some(PerChannel { f: MulAdd, relu: true })";
        let f32_norms = vec![
            ("PerChannel { f: Mul, relu: false }".to_string(), 26),
            ("PerChannel { f: MulAdd, relu: false }".to_string(), 6),
            ("PerChannel { f: MulAdd, relu: true }".to_string(), 1),
            (pad(1, "None"), 9),
            (pad(1, mul_add_relu), 5),
            (pad(4, "None"), 1),
            (pad(4, mul_add_relu), 1),
            ("SpatialSum { centred: false }".to_string(), 13),
            ("SpatialSum { centred: true }".to_string(), 13),
        ];
        for (file, hw, want) in [
            ("style_predict_quantized_256", None, vec![]),
            (
                "style_transfer_quantized_384",
                Some((64, 96)),
                vec![(pad(1, "None"), 14), (pad(4, "None"), 2)],
            ),
            ("style_transfer_f16_384", Some((64, 96)), f32_norms.clone()),
            (
                "style_transfer_quantized_dynamic",
                Some((64, 96)),
                f32_norms,
            ),
        ] {
            let (fused, plain) = (
                official_graph(file, hw, true),
                official_graph(file, hw, false),
            );
            assert_eq!(fused_ops(&fused), want, "{file}");
            if want.iter().any(|(op, _)| op.contains("MulAdd")) {
                assert_ne!(fused_ops(&plain), want, "{file}: the passes fuse nothing");
            }
            let (a, b) = (run_on_pattern(fused), run_on_pattern(plain));
            let floats = |t: &Tensor| -> Vec<f32> {
                let v = t.try_as_plain_ram().and_then(|v| v.as_slice::<f32>());
                v.unwrap().to_vec()
            };
            let (a, b) = (floats(&a), floats(&b));
            if file.contains("f16") || file.contains("dynamic") {
                // Identical bits on x86-64 today; a MulAdd kernel may
                // round once less (a fused multiply-add).
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(worst <= 1e-3, "{file}: outputs differ by {worst}");
            } else {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{file}");
            }
        }
    }

    #[test]
    fn the_spinning_pool_runs_graphs_on_its_first_thread_with_the_others_helping() {
        let pool = rayon_core::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for _ in 0..20 {
            let (taken, helper, graph_thread) = run_spinning(&pool, || {
                // The first half waits until another thread has run the
                // second (or gives up after 5 s).
                let flag = AtomicBool::new(false);
                let t = Instant::now();
                let (taken, helper) = rayon_core::join(
                    || {
                        while !flag.load(Ordering::Acquire) && t.elapsed() < Duration::from_secs(5)
                        {
                            std::hint::spin_loop();
                        }
                        flag.load(Ordering::Acquire)
                    },
                    || {
                        flag.store(true, Ordering::Release);
                        rayon_core::current_thread_index()
                    },
                );
                (taken, helper, rayon_core::current_thread_index())
            });
            assert!(taken, "no other thread took work within 5 s");
            assert_eq!(helper, Some(1));
            // Always the same thread: its heap keeps the freed tensors.
            assert_eq!(graph_thread, Some(0));
        }
        // A graph that fails is reported, and the pool still runs the next.
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_spinning(&pool, || -> u64 { panic!("a failing op") })
        }));
        assert!(failed.is_err());
        assert_eq!(run_spinning(&pool, || 6 * 7), 42);
    }

    #[test]
    fn size_for_a_16_9_screen_is_256x448() {
        assert_eq!(size_for(16.0 / 9.0, 256 * 448), (256, 448));
    }

    #[test]
    fn size_for_square_and_portrait() {
        assert_eq!(size_for(1.0, 384 * 384), (384, 384));
        let (h, w) = size_for(9.0 / 16.0, 256 * 448);
        assert!(
            h > w && h * w <= 256 * 448 && h % 4 == 0 && w % 4 == 0,
            "{h}x{w}"
        );
    }

    #[test]
    fn sizes_must_be_multiples_of_four() {
        assert!(check_size(256, 448).is_ok());
        assert!(matches!(
            check_size(255, 448),
            Err(EngineError::BadSize { .. })
        ));
        assert!(matches!(check_size(8, 8), Err(EngineError::BadSize { .. })));
    }
}
