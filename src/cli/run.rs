//! `run` (the daemon) and `demo` (the embedded default: the whole pipeline
//! on a synthetic moving scene).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use styleframe::process::pool;

use anyhow::Context;
use clap::Args;

use styleframe::capture;
use styleframe::config::{Config, DisplayBackend, SourceKind};
use styleframe::daemon::state::StateBoard;
use styleframe::daemon::{self, notify::SdNotifier, Parts, Report, RunLimits};
use styleframe::display;
use styleframe::inference::{PredictNet, Stylizer, TransferNet};
use styleframe::input;
use styleframe::models::{self, find_dir, Manifest};
use styleframe::remote::{Remote, RemoteParts};
use styleframe::styles::StyleSet;

use super::{CliResult, Failure, EXIT_CONFIG};

#[derive(Args, Clone, Default)]
pub struct Overrides {
    /// Picture source: camera, image, folder, video or synthetic (overrides the config).
    #[arg(long, value_parser = parse_source)]
    pub source: Option<SourceKind>,
    /// File or folder for the image/folder/video sources.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Camera index or name.
    #[arg(long)]
    pub device: Option<String>,
    /// Display backend: window, framebuffer or headless.
    #[arg(long, value_parser = parse_backend)]
    pub display: Option<DisplayBackend>,
    /// Headless: write PNG snapshots here (nothing is written otherwise).
    #[arg(long)]
    pub snapshot_dir: Option<PathBuf>,
    /// Folder with the model files.
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Style to start with.
    #[arg(long)]
    pub style: Option<String>,
    /// Stylization strength 0..1.
    #[arg(long)]
    pub strength: Option<f32>,
    /// Stop after this many seconds (tests, benchmarks).
    #[arg(long)]
    pub seconds: Option<f64>,
}

#[derive(Args)]
pub struct RunArgs {
    /// Configuration file (default: /etc/styleframe/styleframe.toml, then config/styleframe.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub o: Overrides,
}

#[derive(Args)]
pub struct DemoArgs {
    /// How long to run.
    #[arg(long, default_value_t = 6.0)]
    pub seconds: f64,
    /// Never open a window, even when a display is available.
    #[arg(long)]
    pub headless: bool,
    /// Where the headless demo writes its frames.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Folder with the model files (fetched there when missing).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// A folder with the official model files to install from (else they are downloaded).
    #[arg(long)]
    pub models_from: Option<PathBuf>,
    /// Seconds between style changes (the demo morphs through the styles).
    #[arg(long, default_value_t = 2.0)]
    pub change_every: f64,
}

fn parse_source(s: &str) -> Result<SourceKind, String> {
    toml::Value::String(s.into())
        .try_into()
        .map_err(|_| format!("{s:?}: expected camera, image, folder, video or synthetic"))
}

fn parse_backend(s: &str) -> Result<DisplayBackend, String> {
    toml::Value::String(s.into())
        .try_into()
        .map_err(|_| format!("{s:?}: expected window, framebuffer or headless"))
}

/// The configuration file to use and the config in it (defaults when none).
pub fn load_config(explicit: Option<&Path>) -> Result<(Option<PathBuf>, Config), Failure> {
    let path = match explicit {
        Some(p) => Some(p.to_owned()),
        None => ["/etc/styleframe/styleframe.toml", "config/styleframe.toml"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
    };
    let cfg = match &path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    Ok((path, cfg))
}

fn apply(cfg: &mut Config, o: &Overrides) {
    if let Some(s) = o.source {
        cfg.camera.source = s;
    }
    if let Some(p) = &o.path {
        cfg.camera.path = Some(p.clone());
    }
    if let Some(d) = &o.device {
        cfg.camera.device = d.clone();
    }
    if let Some(b) = o.display {
        cfg.display.backend = b;
    }
    if let Some(d) = &o.snapshot_dir {
        cfg.display.snapshot_dir = Some(d.clone());
    }
    if let Some(m) = &o.models {
        cfg.models.dir = m.clone();
    }
    if let Some(s) = &o.style {
        cfg.styles.start = s.clone();
    }
    if let Some(s) = o.strength {
        cfg.styles.strength = s;
    }
}

/// The shipped style set plus the user's, from the config.
pub fn load_style_sets(cfg: &Config) -> Result<StyleSet, String> {
    let shipped = if cfg.styles.file.is_file() {
        StyleSet::load(&cfg.styles.file).map_err(|e| e.to_string())?
    } else {
        let p = find_dir(None, "styles.json").join("styles.json");
        if p.is_file() {
            StyleSet::load(&p).map_err(|e| e.to_string())?
        } else {
            log::info!(
                "styles: {} not found; using the built-in set",
                cfg.styles.file.display()
            );
            StyleSet::builtin()
        }
    };
    // With the control page on and no styles.user_file, uploads go to the
    // state directory's file, which does not exist until the first upload.
    let set = match styleframe::remote::user_style_file(cfg) {
        Some(u) if cfg.styles.user_file.is_some() || u.exists() => {
            shipped.merged(StyleSet::load(&u).map_err(|e| e.to_string())?)
        }
        _ => shipped,
    };
    if set.styles.is_empty() {
        return Err("the style sets hold no style".into());
    }
    if !cfg.styles.start.is_empty() {
        set.find(&cfg.styles.start)
            .map_err(|e| format!("styles.start: {e}"))?;
    }
    Ok(set)
}

/// A model file by manifest id: the config's folder when it has it, else the usual places.
fn model_file(cfg: &Config, id: &str) -> Result<PathBuf, Failure> {
    let manifest = Manifest::builtin();
    let entry = manifest.get(id)?;
    let dir = if cfg.models.dir.join(&entry.file).is_file() {
        cfg.models.dir.clone()
    } else {
        find_dir(None, &entry.file)
    };
    Ok(manifest.verified_path(id, &dir)?)
}

/// The control page when `remote.enabled`; when it cannot start (address in
/// use...) the frame runs without it and the log says why.
fn start_remote(
    cfg: &Config,
    tx: &std::sync::mpsc::Sender<styleframe::frame::Command>,
    state: &Arc<StateBoard>,
    transfer: &Path,
) -> Option<Remote> {
    if !cfg.remote.enabled {
        return None;
    }
    let c = cfg.clone();
    let parts = RemoteParts {
        commands: tx.clone(),
        state: state.clone(),
        transfer: Some(transfer.to_owned()),
        predict: model_file(cfg, &cfg.models.predict).ok(),
        styles: Arc::new(move || load_style_sets(&c)),
    };
    match Remote::start(cfg, parts) {
        Ok(r) => Some(r),
        Err(e) => {
            log::error!("remote: {e}; running without the control page");
            None
        }
    }
}

/// Builds everything from the config and runs the daemon.
/// `with_commands` gets a sender for commands (the demo's style changes).
fn run_with(
    cfg: Config,
    config_path: Option<PathBuf>,
    limits: RunLimits,
    with_commands: impl FnOnce(std::sync::mpsc::Sender<styleframe::frame::Command>),
) -> Result<Report, Failure> {
    cfg.validate()?;
    let styles = load_style_sets(&cfg).map_err(|e| Failure {
        code: EXIT_CONFIG,
        error: anyhow::anyhow!("{e}"),
    })?;
    let transfer = model_file(&cfg, &cfg.models.transfer)?;
    let threads = cfg.inference.threads;
    // Load once now so a bad file stops the start with a clear error (exit 3).
    let probe = TransferNet::load(&transfer, 64, 64, &pool(1))?;
    drop(probe);
    let predict = if cfg.styles.strength < 1.0 {
        Some(PredictNet::load(
            &model_file(&cfg, &cfg.models.predict)?,
            &pool(1),
        )?)
    } else {
        None
    };
    let screen = display::open(&cfg.display)
        .with_context(|| format!("display backend {:?}", cfg.display.backend))?;
    let display_cfg = cfg.display.clone();
    let camera_cfg = cfg.camera.clone();
    let (tx, rx) = daemon::command_channel();
    let state = Arc::new(StateBoard::default());
    let remote = start_remote(&cfg, &tx, &state, &transfer);
    let signals = input::spawn_signals(tx.clone()).context("installing signal handlers")?;
    with_commands(tx.clone());
    let stop_button = Arc::new(AtomicBool::new(false));
    let button = if cfg.button.enabled {
        match input::open_button(&cfg.button) {
            Ok(line) => {
                log::info!("button: {}", line.describe());
                Some(input::spawn_button(
                    line,
                    &cfg.button,
                    tx.clone(),
                    stop_button.clone(),
                ))
            }
            Err(e) => {
                log::error!(
                    "button: {e}; running without it (`styleframe doctor` shows the GPIO lines)"
                );
                None
            }
        }
    } else {
        None
    };
    let reload_path = config_path.clone();
    let parts = Parts {
        open_source: Box::new(move || capture::open(&camera_cfg)),
        make_stylizer: Box::new(move |h, w| {
            TransferNet::load(&transfer, h, w, &pool(threads))
                .map(|n| Box::new(n) as Box<dyn Stylizer>)
        }),
        predict,
        screen,
        reopen_screen: Some(Box::new(move || display::open(&display_cfg))),
        notifier: Box::new(SdNotifier::from_env()),
        commands: rx,
        reload: Box::new(move || {
            let cfg = match &reload_path {
                Some(p) => Config::load(p).map_err(|e| e.to_string())?,
                None => Config::default(),
            };
            cfg.validate().map_err(|e| e.to_string())?;
            let styles = load_style_sets(&cfg)?;
            Ok((cfg, styles))
        }),
        styles,
        state,
    };
    let report = daemon::run(cfg, parts, limits)?;
    drop(remote);
    stop_button.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(b) = button {
        let _ = b.join();
    }
    signals.close();
    drop(tx);
    Ok(report)
}

pub fn run(a: RunArgs) -> CliResult {
    let (path, mut cfg) = load_config(a.config.as_deref())?;
    match &path {
        Some(p) => log::info!("configuration: {}", p.display()),
        None => log::info!("configuration: built-in defaults (no file found)"),
    }
    apply(&mut cfg, &a.o);
    let limits = RunLimits {
        duration: a.o.seconds.map(Duration::from_secs_f64),
        ..Default::default()
    };
    let report = run_with(cfg, path, limits, |_| {})?;
    log::info!(
        "stopped after {:.1} s: {} frames captured, {} stylized, {} shown",
        report.elapsed.as_secs_f64(),
        report.captured,
        report.inferred,
        report.displayed
    );
    Ok(ExitCode::SUCCESS)
}

/// Installs the model files for the demo when they are missing.
fn ensure_models(dir: &Path, from: Option<&Path>) -> Result<(), Failure> {
    let manifest = Manifest::builtin();
    let needed = ["style_transfer_f16_384", "style_predict_quantized_256"];
    let missing = needed
        .iter()
        .any(|id| manifest.verified_path(id, dir).is_err());
    if missing {
        let from = from.map(Path::to_owned).or_else(super::mirror_from_env);
        log::info!(
            "installing the model files into {} (from {})",
            dir.display(),
            from.as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the official URLs".into())
        );
        models::fetch(&manifest, dir, from.as_deref(), false, |m, _| {
            log::info!("  {}", m.file)
        })?;
    }
    Ok(())
}

pub fn demo(a: DemoArgs) -> CliResult {
    ensure_models(&a.models, a.models_from.as_deref())?;
    let mut cfg = Config::default();
    cfg.models.dir = a.models.clone();
    cfg.camera.source = SourceKind::Synthetic;
    cfg.camera.width = 640;
    cfg.camera.height = 360;
    cfg.camera.fps = 15;
    let window = !a.headless && std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty());
    if window {
        cfg.display.backend = DisplayBackend::Window;
        cfg.display.fullscreen = false;
        cfg.display.width = 896;
        cfg.display.height = 512;
    } else {
        cfg.display.backend = DisplayBackend::Headless;
        cfg.display.width = 896;
        cfg.display.height = 512;
        cfg.display.snapshot_dir = Some(a.out.clone());
        cfg.display.snapshot_every = 15;
        log::info!(
            "no display: running headless, writing frames to {}/",
            a.out.display()
        );
    }
    let limits = RunLimits {
        duration: Some(Duration::from_secs_f64(a.seconds)),
        ..Default::default()
    };
    // The demo walks through the styles faster than gallery mode's minimum.
    let every = Duration::from_secs_f64(a.change_every.max(0.2));
    let report = run_with(cfg, None, limits, move |tx| {
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            if tx.send(styleframe::frame::Command::NextStyle).is_err() {
                break;
            }
        });
    })?;
    print_report(&report);
    if !window {
        println!("frames written to {}/", a.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_report(r: &Report) {
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    println!(
        "ran {:.1} s at {}x{} (network size)",
        secs, r.size.1, r.size.0
    );
    println!(
        "first stylized frame: {}",
        r.first_frame
            .map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "none".into())
    );
    println!(
        "stylized {:.2} fps ({} frames), shown {:.1} fps ({} redraws), captured {}, dropped stale {}",
        r.inferred as f64 / secs,
        r.inferred,
        r.presented as f64 / secs,
        r.presented,
        r.captured,
        r.dropped_capture
    );
    let ms = |v: Option<f64>| {
        v.map(|v| format!("{v:.0} ms"))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "latency capture->shown p50 {} p95 {}; inference p50 {}",
        ms(r.latency_p50_ms),
        ms(r.latency_p95_ms),
        ms(r.infer_p50_ms)
    );
    println!("last style: {}", r.final_style);
}

/// Runs the daemon on an already-built configuration (benchmarks).
pub fn run_config(
    cfg: Config,
    path: Option<PathBuf>,
    limits: RunLimits,
) -> Result<Report, Failure> {
    run_with(cfg, path, limits, |_| {})
}
