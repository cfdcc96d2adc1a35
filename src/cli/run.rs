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
use styleframe::config::{Config, DisplayBackend, ModelsConfig, SourceKind};
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
    /// Picture source: auto, camera, libcamera, image, folder, video or synthetic (overrides the config).
    #[arg(long, value_parser = parse_source)]
    pub source: Option<SourceKind>,
    /// File or folder for the image/folder/video sources.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Camera index or name.
    #[arg(long)]
    pub device: Option<String>,
    /// Display backend: auto, kms, window, framebuffer or headless.
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
    #[arg(long, value_parser = super::f32_in(0.0, 1.0))]
    pub strength: Option<f32>,
    /// Stop after this many seconds (tests, benchmarks).
    #[arg(long, value_parser = super::float_in(0.1, MAX_SECONDS))]
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
    #[arg(long, default_value_t = 6.0, value_parser = super::float_in(0.1, MAX_SECONDS))]
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
    #[arg(long, default_value_t = 2.0, value_parser = super::float_in(0.2, 3600.0))]
    pub change_every: f64,
}

/// Longest `--seconds` (a year): any longer is not a test or a benchmark.
pub const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn parse_source(s: &str) -> Result<SourceKind, String> {
    toml::Value::String(s.into()).try_into().map_err(|_| {
        format!("{s:?}: expected auto, camera, libcamera, image, folder, video or synthetic")
    })
}

fn parse_backend(s: &str) -> Result<DisplayBackend, String> {
    toml::Value::String(s.into())
        .try_into()
        .map_err(|_| format!("{s:?}: expected auto, kms, window, framebuffer or headless"))
}

/// The configuration file to use: the one given, else the first that exists.
fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_owned()),
        None => ["/etc/styleframe/styleframe.toml", "config/styleframe.toml"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
    }
}

/// The configuration file to use and the config in it (defaults when none).
pub fn load_config(explicit: Option<&Path>) -> Result<(Option<PathBuf>, Config), Failure> {
    let path = config_path(explicit);
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

/// The shipped style set plus the user's, from the config, and what was
/// wrong on the way. A broken or missing style file is a problem, not a stop:
/// the frame runs with the styles it could read (at worst the built-in set),
/// so a damaged file never keeps the screen dark. `Err` only when no style
/// at all is left, or when `styles.start` names none though every file read.
pub fn load_style_sets(cfg: &Config) -> Result<(StyleSet, Vec<String>), String> {
    let mut problems = vec![];
    let shipped_path = if cfg.styles.file.is_file() {
        Some(cfg.styles.file.clone())
    } else {
        let p = find_dir(None, "styles.json").join("styles.json");
        p.is_file().then_some(p)
    };
    let shipped = match shipped_path.map(|p| StyleSet::load(&p)) {
        Some(Ok(set)) => set,
        Some(Err(e)) => {
            problems.push(format!("{e}; using the built-in styles instead"));
            StyleSet::builtin()
        }
        None => {
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
        Some(u) if cfg.styles.user_file.is_some() || u.exists() => match StyleSet::load(&u) {
            Ok(user) => shipped.merged(user),
            Err(e) => {
                problems.push(format!("{e}; running without the user's styles"));
                shipped
            }
        },
        _ => shipped,
    };
    if set.styles.is_empty() {
        return Err("the style sets hold no style".into());
    }
    if !cfg.styles.start.is_empty() {
        if let Err(e) = set.find(&cfg.styles.start) {
            if problems.is_empty() {
                return Err(format!("styles.start: {e}"));
            }
            problems.push(format!("styles.start: {e}; starting with the first style"));
        }
    }
    Ok((set, problems))
}

/// A model file by manifest id. The default folder (`models`, relative) is
/// searched for in the usual places (the package installs under
/// /usr/share); a folder given with `--models` or a `models.dir` of one's own
/// is used as it is, so a file missing there is an error naming it.
fn model_file(cfg: &Config, id: &str, explicit: bool) -> Result<PathBuf, Failure> {
    let manifest = Manifest::builtin();
    let entry = manifest.get(id)?;
    let searched = !explicit && cfg.models.dir == ModelsConfig::default().dir;
    let dir = if searched && !cfg.models.dir.join(&entry.file).is_file() {
        let found = find_dir(None, &entry.file);
        log::info!(
            "models: {} is not in {}; using {}",
            entry.file,
            cfg.models.dir.display(),
            found.display()
        );
        found
    } else {
        cfg.models.dir.clone()
    };
    Ok(manifest.verified_path(id, &dir)?)
}

/// Where the daemon's configuration comes from, at the start and again on
/// every SIGHUP: the file with the command line's overrides on top (so a
/// reload never drops `--strength 0.0` or `--source synthetic`), or a fixed
/// configuration built in code (demo, bench).
#[derive(Clone)]
pub enum ConfigSource {
    File {
        path: Option<PathBuf>,
        overrides: Overrides,
    },
    Fixed(Box<Config>),
}

impl ConfigSource {
    /// Reads and validates the configuration, overrides applied.
    pub fn load(&self) -> Result<Config, Failure> {
        let cfg = match self {
            ConfigSource::File { path, overrides } => {
                let mut cfg = match path {
                    Some(p) => Config::load(p)?,
                    None => Config::default(),
                };
                apply(&mut cfg, overrides);
                cfg
            }
            ConfigSource::Fixed(cfg) => (**cfg).clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn explicit_models(&self) -> bool {
        matches!(self, ConfigSource::File { overrides, .. } if overrides.models.is_some())
    }
}

/// The reload closure's work: the configuration and style sets as they are
/// now, or one line saying why the running ones stay (a broken user style
/// file included: the running set has the user's styles).
fn reload_from(source: &ConfigSource) -> Result<(Config, StyleSet), String> {
    let cfg = source.load().map_err(|f| super::one_line(&f.error))?;
    let (styles, problems) = load_style_sets(&cfg)?;
    match problems.into_iter().next() {
        Some(p) => Err(p),
        None => Ok((cfg, styles)),
    }
}

/// The control page when `remote.enabled`; when it cannot start (address in
/// use...) the frame runs without it and the log says why.
fn start_remote(
    cfg: &Config,
    tx: &std::sync::mpsc::Sender<styleframe::frame::Command>,
    state: &Arc<StateBoard>,
    transfer: &Path,
    explicit_models: bool,
) -> Option<Remote> {
    if !cfg.remote.enabled {
        return None;
    }
    let c = cfg.clone();
    let parts = RemoteParts {
        commands: tx.clone(),
        state: state.clone(),
        transfer: Some(transfer.to_owned()),
        predict: model_file(cfg, &cfg.models.predict, explicit_models).ok(),
        styles: Arc::new(move || load_style_sets(&c).map(|(s, _)| s)),
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
    source: ConfigSource,
    limits: RunLimits,
    with_commands: impl FnOnce(std::sync::mpsc::Sender<styleframe::frame::Command>),
) -> Result<Report, Failure> {
    let cfg = source.load()?;
    let (styles, problems) = load_style_sets(&cfg).map_err(|e| Failure {
        code: EXIT_CONFIG,
        error: anyhow::anyhow!("{e}"),
    })?;
    for p in problems {
        log::error!("{p}");
    }
    let explicit = source.explicit_models();
    let transfer = model_file(&cfg, &cfg.models.transfer, explicit)?;
    let threads = cfg.inference.threads;
    // Load once now so a bad file stops the start with a clear error (exit 3).
    let probe = TransferNet::load(&transfer, 64, 64, &pool(1))?;
    drop(probe);
    let predict = if cfg.styles.strength < 1.0 {
        Some(PredictNet::load(
            &model_file(&cfg, &cfg.models.predict, explicit)?,
            &pool(1),
        )?)
    } else {
        None
    };
    let camera_cfg = cfg.camera.clone();
    let mut first_source = open_first_source(&camera_cfg)?;
    let screen = display::open(&cfg.display)
        .with_context(|| format!("display backend {:?}", cfg.display.backend))?;
    let display_cfg = cfg.display.clone();
    let (tx, rx) = daemon::command_channel();
    let state = Arc::new(StateBoard::default());
    let remote = start_remote(&cfg, &tx, &state, &transfer, explicit);
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
    // MQTT (issue #12): only when enabled; its threads stay off the frame path.
    let mqtt = match cfg.mqtt.enabled {
        true => Some(
            styleframe::mqtt::spawn(&cfg.mqtt, state.clone(), tx.clone()).map_err(|e| Failure {
                code: EXIT_CONFIG,
                error: anyhow::anyhow!("{e}"),
            })?,
        ),
        false => None,
    };
    let parts = Parts {
        open_source: Box::new(move || match first_source.take() {
            Some(s) => Ok(s),
            None => capture::open(&camera_cfg),
        }),
        make_stylizer: Box::new(move |h, w| {
            TransferNet::load(&transfer, h, w, &pool(threads))
                .map(|n| Box::new(n) as Box<dyn Stylizer>)
        }),
        predict,
        screen,
        reopen_screen: Some(Box::new(move || display::open(&display_cfg))),
        notifier: Box::new(SdNotifier::from_env()),
        commands: rx,
        reload: Box::new(move || reload_from(&source)),
        styles,
        state,
        pairing_url: pairing_url(&cfg),
    };
    let report = daemon::run(cfg, parts, limits)?;
    if let Some(m) = mqtt {
        m.stop();
    }
    drop(remote);
    stop_button.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(b) = button {
        let _ = b.join();
    }
    signals.close();
    drop(tx);
    Ok(report)
}

/// The control page's pairing URL, read again each time the QR code is
/// asked for (a `pair --reset` changes it); None when the page is off.
fn pairing_url(cfg: &Config) -> Option<daemon::PairingUrl> {
    use styleframe::remote::{pair_url, pairing};
    if !cfg.remote.enabled {
        return None;
    }
    let dir = pairing::state_dir(&cfg.remote);
    let listen: std::net::SocketAddr = match cfg.remote.listen.parse() {
        Ok(l) => l,
        Err(e) => {
            log::warn!("pairing: remote.listen = {:?}: {e}", cfg.remote.listen);
            return None;
        }
    };
    Some(Box::new(move || match pairing::read_token(&dir) {
        Ok(Some(token)) => Some(pair_url(&listen, &token)),
        Ok(None) => {
            log::warn!(
                "pairing: no token in {} yet; nothing to show",
                dir.display()
            );
            None
        }
        Err(e) => {
            log::warn!("pairing: {e}; nothing to show");
            None
        }
    }))
}

/// Opens the picture source once before starting. One that can never work (a missing
/// file, a PNG given as video, a Y4M whose header does not match its data, an MJPEG in
/// which no frame decodes) is a configuration error: exit 2, naming the file. A camera that
/// is absent or busy may come back: the capture thread keeps trying with a backoff.
fn open_first_source(
    cfg: &styleframe::config::CameraConfig,
) -> Result<Option<Box<dyn capture::FrameSource>>, Failure> {
    match capture::open(cfg) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.is_permanent() => Err(Failure {
            code: EXIT_CONFIG,
            error: anyhow::anyhow!(
                "camera.source = \"{}\": {e}",
                format!("{:?}", cfg.source).to_lowercase()
            ),
        }),
        Err(e) => {
            log::warn!("capture: {e}; will keep trying");
            Ok(None)
        }
    }
}

pub fn run(a: RunArgs) -> CliResult {
    let path = config_path(a.config.as_deref());
    match &path {
        Some(p) => log::info!("configuration: {}", p.display()),
        None => log::info!("configuration: built-in defaults (no file found)"),
    }
    let limits = RunLimits {
        duration: a.o.seconds.map(Duration::from_secs_f64),
        ..Default::default()
    };
    let source = ConfigSource::File {
        path,
        overrides: a.o,
    };
    let report = run_with(source, limits, |_| {})?;
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
    let every = Duration::from_secs_f64(a.change_every);
    let report = run_with(ConfigSource::Fixed(Box::new(cfg)), limits, move |tx| {
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
pub fn run_config(cfg: Config, limits: RunLimits) -> Result<Report, Failure> {
    run_with(ConfigSource::Fixed(Box::new(cfg)), limits, |_| {})
}
