//! `bench`: numbers, not pass/fail. Network speed per size and thread count,
//! or the whole pipeline headless on the synthetic scene.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use styleframe::process::pool;

use clap::Args;

use styleframe::config::{Config, DisplayBackend, SourceKind};
use styleframe::daemon::{stats, RunLimits};
use styleframe::inference::{PredictNet, Profile, Stylizer, TransferNet, PREDICT_SIDE};
use styleframe::styles::StyleSet;

use super::still::{model_path, ModelArgs};
use super::CliResult;

#[derive(Args)]
pub struct BenchArgs {
    /// Run the whole pipeline headless instead of the bare networks.
    #[arg(long)]
    pub pipeline: bool,
    /// Measure flicker: frame-to-frame difference on a still, noisy scene, with and without smoothing.
    #[arg(long)]
    pub flicker: bool,
    /// Pipeline: how long.
    #[arg(long, default_value_t = 20.0, value_parser = super::float_in(0.1, super::run::MAX_SECONDS))]
    pub seconds: f64,
    /// Networks: sizes HxW to time the transfer network at.
    #[arg(long, value_delimiter = ',', default_value = "384x384,256x448", value_parser = super::still::parse_size)]
    pub sizes: Vec<(usize, usize)>,
    /// Networks: thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = super::count_in(1, styleframe::config::MAX_THREADS))]
    pub thread_counts: Vec<usize>,
    /// Networks: timed runs per setting (the median is printed).
    #[arg(long, default_value_t = 15, value_parser = super::count_in(1, 100_000))]
    pub runs: usize,
    /// Networks: timed runs of the prediction network, a few ms long (short runs need more
    /// of them for a steady median).
    #[arg(long, default_value_t = 51, value_parser = super::count_in(1, 100_000))]
    pub predict_runs: usize,
    /// Transfer network ids to time.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "style_transfer_f16_384,style_transfer_quantized_384"
    )]
    pub transfer: Vec<String>,
    /// Networks: leave out the prediction network.
    #[arg(long)]
    pub skip_predict: bool,
    /// Networks: leave out the transfer networks.
    #[arg(long)]
    pub skip_transfer: bool,
    /// Networks: also print where each network spends its time, per op kind.
    #[arg(long)]
    pub profile: bool,
    /// Pipeline: a configuration file to start from (default: built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub m: ModelArgs,
}

/// Median wall time of `runs` calls after two warm-up calls, in ms.
fn median_ms<E>(mut f: impl FnMut() -> Result<(), E>, runs: usize) -> Result<f64, E> {
    f()?;
    f()?;
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[t.len() / 2])
}

pub fn bench(a: BenchArgs) -> CliResult {
    if a.pipeline {
        return pipeline(a);
    }
    if a.flicker {
        return flicker(a);
    }
    let style = StyleSet::builtin().styles[0].embedding;
    // What a report from a Pi needs besides the times: the board and the
    // kernels that ran.
    println!("machine: {}", machine());
    println!(
        "kernels: {}",
        styleframe::inference::kernels::table().describe()
    );
    println!(
        "network                         size     threads  ms/inference (median of {}, predict {})",
        a.runs, a.predict_runs
    );
    let predict_threads: &[usize] = if a.skip_predict {
        &[]
    } else {
        &a.thread_counts
    };
    for &threads in predict_threads {
        let mut p = PredictNet::load(&model_path(&a.m, &a.m.predict)?, &pool(threads))?;
        let x = synthetic_input(PREDICT_SIDE, PREDICT_SIDE);
        let ms = median_ms(|| p.embed(&x).map(drop), a.predict_runs)?;
        println!(
            "{:<31} {:<8} {:<8} {:.2}",
            a.m.predict, "256x256", threads, ms
        );
        if a.profile {
            p.start_profile();
            for _ in 0..a.predict_runs {
                p.embed(&x)?;
            }
            print_profile(&p.profile(), a.predict_runs);
        }
    }
    let transfer: &[String] = if a.skip_transfer { &[] } else { &a.transfer };
    for id in transfer {
        for &(h, w) in &a.sizes {
            for &threads in &a.thread_counts {
                let mut net = TransferNet::load(&model_path(&a.m, id)?, h, w, &pool(threads))?;
                let x = synthetic_input(h, w);
                let mut y = vec![];
                let ms = median_ms(|| net.stylize(&x, &style, &mut y), a.runs)?;
                println!(
                    "{:<31} {:<8} {:<8} {:.2}",
                    id,
                    format!("{h}x{w}"),
                    threads,
                    ms
                );
                if a.profile {
                    net.start_profile();
                    for _ in 0..a.runs {
                        net.stylize(&x, &style, &mut y)?;
                    }
                    print_profile(&net.profile(), a.runs);
                }
            }
        }
    }
    if let Some(r) = stats::peak_rss_mib() {
        println!("peak RSS {r:.0} MiB");
    }
    Ok(ExitCode::SUCCESS)
}

/// Per op kind, then the slowest nodes: mean ms per run and share of the
/// profiled time.
fn print_profile(p: &Profile, runs: usize) {
    let total: f64 = p.ops.iter().map(|o| o.2.as_secs_f64()).sum();
    let row = |d: &Duration| {
        let s = d.as_secs_f64();
        (
            s * 1000.0 / runs.max(1) as f64,
            100.0 * s / total.max(f64::MIN_POSITIVE),
        )
    };
    for (op, nodes, d) in p.ops.iter().filter(|o| !o.2.is_zero()) {
        let (ms, share) = row(d);
        println!("    {op:<24} {nodes:>4} nodes {ms:>8.3} ms {share:>5.1}%");
    }
    println!("    slowest nodes:");
    for (node, d) in p.nodes.iter().take(20) {
        let (ms, share) = row(d);
        println!("    {ms:>8.3} ms {share:>5.1}%  {node}");
    }
}

/// A smooth colourful picture: the networks' speed does not depend on content.
/// The board (a Pi's `Model` line) or the CPU's name, from /proc/cpuinfo.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let name = field("Model")
        .or_else(|| field("model name"))
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    format!("{name}, {cores} cores")
}

fn synthetic_input(h: usize, w: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            v.push(x as f32 / w as f32);
            v.push(y as f32 / h as f32);
            v.push(((x + y) % 64) as f32 / 64.0);
        }
    }
    v
}

fn pipeline(a: BenchArgs) -> CliResult {
    let mut cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.camera.source = SourceKind::Synthetic;
    cfg.display.backend = DisplayBackend::Headless;
    if cfg.display.width == 0 {
        cfg.display.width = 1280;
        cfg.display.height = 720;
    }
    cfg.display.snapshot_dir = None;
    if let Some(m) = &a.m.models {
        cfg.models.dir = m.clone();
    }
    let cpu0 = stats::cpu_time();
    let t0 = Instant::now();
    let limits = RunLimits {
        duration: Some(Duration::from_secs_f64(a.seconds)),
        ..Default::default()
    };
    let report = super::run::run_config(cfg, limits)?;
    let wall = t0.elapsed();
    super::run::print_report(&report);
    if let (Some(c0), Some(c1)) = (cpu0, stats::cpu_time()) {
        println!(
            "CPU {:.0}% (of one core; this machine has {})",
            (c1 - c0).as_secs_f64() / wall.as_secs_f64() * 100.0,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        );
    }
    if let Some(r) = stats::peak_rss_mib() {
        println!("peak RSS {r:.0} MiB");
    }
    Ok(ExitCode::SUCCESS)
}

/// Frame-to-frame mean absolute difference (0..255) of the stylized output on a
/// still scene with camera-like noise (±4 levels), per smoothing setting.
fn flicker(a: BenchArgs) -> CliResult {
    use styleframe::preprocess::{Downsize, Preprocessor};
    let (h, w) = (256, 448);
    let mut net = TransferNet::load(&model_path(&a.m, &a.m.model)?, h, w, &pool(a.m.threads))?;
    let style = StyleSet::builtin().styles[0].embedding;
    let scene = styleframe::capture::synthetic::still_scene(640, 360);
    let mut pre = Preprocessor::new(styleframe::config::Fit::Cover);
    println!(
        "smoothing  mean |frame[i] - frame[i-1]| (0..255), still scene + sensor noise, {w}x{h}"
    );
    for smoothing in [0.0f32, 0.3, 0.5, 0.7] {
        let mut rng = fastrand::Rng::with_seed(7);
        let (mut x, mut y, mut prev) = (vec![], vec![], vec![]);
        let mut diffs = vec![];
        for i in 0..a.runs.max(4) + 4 {
            let mut f = scene.clone();
            for v in f.data.iter_mut() {
                *v = (*v as i32 + rng.i32(-4..=4)).clamp(0, 255) as u8;
            }
            pre.downsize(&f, h, w, &mut x)?;
            net.stylize(&x, &style, &mut y)?;
            styleframe::daemon::smooth(&mut y, &prev, smoothing);
            // The first frames let the smoothing settle.
            if i >= 4 {
                let d: f32 =
                    y.iter().zip(&prev).map(|(a, b)| (a - b).abs()).sum::<f32>() / y.len() as f32;
                diffs.push(d * 255.0);
            }
            prev.clone_from(&y);
        }
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        println!("{smoothing:<10} {mean:.2}");
    }
    Ok(ExitCode::SUCCESS)
}
