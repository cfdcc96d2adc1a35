//! The daemon: capture, inference and display in their own threads, joined
//! by one-place mailboxes ([`slot::LatestSlot`]) so that a slow stage makes
//! the others drop stale frames instead of queueing them. The display loop
//! (which must own the window) runs on the calling thread, never waits for
//! inference, and cross-fades between stylized frames at the display rate.
//!
//! Hardware and the network come in through [`Parts`] (traits with real
//! implementations and test fakes), so the whole daemon runs in tests.

pub mod control;
mod display_loop;
pub mod motion;
pub mod notify;
pub mod power;
mod present;
pub mod slot;
pub mod state;
pub mod stats;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::{CaptureError, FrameSource};
use crate::config::Config;
use crate::display::{DisplayError, Screen};
use crate::frame::{Command, RgbFrame};
use crate::inference::{size_for, EngineError, PredictNet, Stylizer, PREDICT_SIDE};
use crate::preprocess::{Downsize, Preprocessor};
use crate::styles::{with_strength, Embedding, StyleMorph, StyleSet};

use control::Controller;
use display_loop::{DisplayLoop, Tick};
use notify::ServiceNotifier;
use present::Presenter;
use slot::LatestSlot;
use state::StateBoard;
use stats::Stats;

pub type SourceOpener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CaptureError> + Send>;
pub type StylizerFactory =
    Box<dyn FnMut(usize, usize) -> Result<Box<dyn Stylizer>, EngineError> + Send>;
pub type ScreenOpener = Box<dyn FnMut() -> Result<Box<dyn Screen>, DisplayError>>;
/// The control page's pairing URL, read when the QR code is asked for
/// (None: the page is off).
pub type PairingUrl = Box<dyn FnMut() -> Option<String>>;
/// Re-reads the configuration and the style sets (SIGHUP).
pub type Reloader = Box<dyn FnMut() -> Result<(Config, StyleSet), String>>;

/// Everything the daemon runs on.
pub struct Parts {
    pub open_source: SourceOpener,
    pub make_stylizer: StylizerFactory,
    /// Content embeddings for strengths below 1 (none: strength is treated as 1).
    pub predict: Option<PredictNet>,
    pub screen: Box<dyn Screen>,
    /// Reopens the screen after it went away (X server restart...).
    pub reopen_screen: Option<ScreenOpener>,
    pub notifier: Box<dyn ServiceNotifier>,
    /// Commands from the button, signals and tests; keys come from the screen.
    pub commands: Receiver<Command>,
    pub reload: Reloader,
    pub styles: StyleSet,
    /// Where the daemon publishes what it does (control page, MQTT).
    pub state: Arc<StateBoard>,
    /// The pairing URL for the QR code on the screen (`ShowPairing`).
    pub pairing_url: Option<PairingUrl>,
}

/// Limits for demos, benchmarks and tests.
#[derive(Clone, Debug, Default)]
pub struct RunLimits {
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Clock for the night schedule (tests); default: local time.
    pub fixed_local_time: Option<chrono::NaiveTime>,
    /// How long a "minute" of `display.sleep_after_still_minutes` lasts
    /// (tests); default: 60 s.
    pub presence_minute: Option<Duration>,
}

/// What a run did, for `demo`, `bench` and tests.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub elapsed: Duration,
    pub first_frame: Option<Duration>,
    pub captured: u64,
    pub inferred: u64,
    pub displayed: u64,
    pub presented: u64,
    pub dropped_capture: u64,
    pub corrupt_frames: u64,
    pub inference_restarts: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub infer_p50_ms: Option<f64>,
    pub size: (usize, usize),
    pub final_style: String,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no styles to show: {0}")]
    NoStyles(String),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// Settings the worker threads read on every frame.
struct Live {
    morph: StyleMorph,
    strength: f32,
    smoothing: f32,
}

struct Shared {
    stop: AtomicBool,
    /// Night / blank: capture and inference rest.
    paused: AtomicBool,
    /// Nobody around (presence): inference rests, the camera keeps watching.
    resting: AtomicBool,
    /// Watch camera frames for motion (`display.sleep_after_still_minutes`).
    presence: AtomicBool,
    /// When the camera last saw motion, in ms after `t0`.
    last_motion_ms: AtomicU64,
    t0: Instant,
    captured: LatestSlot<RgbFrame>,
    stylized: LatestSlot<RgbFrame>,
    live: Mutex<Live>,
    stats: Stats,
}

impl Shared {
    fn saw_motion(&self) {
        let ms = self.t0.elapsed().as_millis() as u64;
        self.last_motion_ms.store(ms, Relaxed);
    }

    /// Time since the camera last saw motion (since start if never).
    fn still_for(&self, now: Instant) -> Duration {
        let at = self.t0 + Duration::from_millis(self.last_motion_ms.load(Relaxed));
        now.saturating_duration_since(at)
    }

    fn new(cfg: &Config, style: Embedding, paused: bool) -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(paused),
            resting: AtomicBool::new(false),
            presence: AtomicBool::new(cfg.display.sleep_after_still_minutes > 0),
            last_motion_ms: AtomicU64::new(0),
            t0: Instant::now(),
            captured: LatestSlot::default(),
            stylized: LatestSlot::default(),
            live: Mutex::new(Live {
                morph: StyleMorph::new(style, Duration::from_secs_f32(cfg.styles.morph_seconds)),
                strength: cfg.styles.strength,
                smoothing: cfg.styles.temporal_smoothing,
            }),
            stats: Stats::default(),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sleeps up to `d`, returning early when `stop` is set.
fn nap(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

fn capture_loop(shared: Arc<Shared>, mut open: SourceOpener) {
    let mut source: Option<Box<dyn FrameSource>> = None;
    let mut backoff = Duration::from_millis(500);
    let mut frame = RgbFrame::new(0, 0);
    let mut seq = 0u64;
    let mut motion = motion::MotionDetector::default();
    while !shared.stop.load(Relaxed) {
        if shared.paused.load(Relaxed) {
            // Close the camera at night: its light goes off and it rests.
            source = None;
            nap(&shared.stop, Duration::from_millis(200));
            continue;
        }
        let src = match source.as_mut() {
            Some(s) => s,
            None => match open() {
                Ok(s) => {
                    log::info!("capture: {}", s.describe());
                    // A reopened camera's first frame counts as motion.
                    motion = motion::MotionDetector::default();
                    backoff = Duration::from_millis(500);
                    source.insert(s)
                }
                Err(e) => {
                    Stats::inc(&shared.stats.capture_errors);
                    log::warn!("capture: {e}; retrying in {:.1} s", backoff.as_secs_f32());
                    nap(&shared.stop, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            },
        };
        // A frame whose buffer does not match its size (driver bug, short
        // read) is a bad frame like a corrupt one: skipped and counted here,
        // not left to fail (and log) once per frame further down.
        let r = src.next_frame(&mut frame).and_then(|()| {
            let (w, h, len) = (
                frame.width as usize,
                frame.height as usize,
                frame.data.len(),
            );
            if w == 0 || h == 0 || len != w * h * 3 {
                return Err(CaptureError::CorruptFrame {
                    what: format!("{w}x{h} frame with {len} bytes"),
                });
            }
            Ok(())
        });
        match r {
            Ok(()) => {
                seq += 1;
                frame.seq = seq;
                if shared.presence.load(Relaxed) && motion.observe(&frame) {
                    shared.saw_motion();
                }
                Stats::inc(&shared.stats.captured);
                let next = shared
                    .captured
                    .spare()
                    .unwrap_or_else(|| RgbFrame::new(0, 0));
                shared.captured.put(std::mem::replace(&mut frame, next));
            }
            Err(e) if e.is_transient() && !e.needs_backoff() => {
                let n = shared.stats.corrupt_frames.fetch_add(1, Relaxed) + 1;
                // Rate-limited: a camera spewing bad frames must not flood the journal.
                if n.is_power_of_two() {
                    log::warn!("capture: skipped a bad frame ({e}); {n} so far");
                }
            }
            Err(e) => {
                Stats::inc(&shared.stats.capture_errors);
                Stats::inc(&shared.stats.camera_reopens);
                log::warn!("capture: {e}; reopening in {:.1} s", backoff.as_secs_f32());
                source = None;
                nap(&shared.stop, backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

struct InferenceCtx {
    make: StylizerFactory,
    predict: Option<PredictNet>,
    aspect: f64,
    max_pixels: u32,
    min_pixels: u32,
    degrade_after: Option<Duration>,
    max_fps: f32,
    fit: crate::config::Fit,
}

impl InferenceCtx {
    fn new(
        cfg: &Config,
        predict: Option<PredictNet>,
        make: StylizerFactory,
        (sw, sh): (usize, usize),
    ) -> Self {
        let inf = &cfg.inference;
        InferenceCtx {
            make,
            predict,
            aspect: sw as f64 / sh.max(1) as f64,
            max_pixels: inf.max_pixels,
            min_pixels: inf.min_pixels,
            degrade_after: (inf.degrade_after_ms > 0)
                .then(|| Duration::from_millis(inf.degrade_after_ms as u64)),
            max_fps: inf.max_fps,
            fit: inf.fit,
        }
    }
}

fn inference_loop(shared: Arc<Shared>, mut ctx: InferenceCtx) {
    let (mut h, mut w) = size_for(ctx.aspect, ctx.max_pixels);
    loop {
        // A panic inside the network (or our code) restarts the stage
        // instead of leaving a frozen picture on a service that looks alive.
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            inference_run(&shared, &mut ctx, &mut h, &mut w)
        }));
        match r {
            Ok(()) => return,
            Err(_) if shared.stop.load(Relaxed) => return,
            Err(_) => {
                Stats::inc(&shared.stats.inference_restarts);
                log::error!("inference: the stage panicked; restarting it");
                nap(&shared.stop, Duration::from_millis(500));
            }
        }
    }
}

fn inference_run(shared: &Shared, ctx: &mut InferenceCtx, h: &mut usize, w: &mut usize) {
    let mut stylizer: Option<Box<dyn Stylizer>> = None;
    let mut pre = Preprocessor::new(ctx.fit);
    let mut content_pre = Preprocessor::new(crate::config::Fit::Cover);
    let (mut x, mut y, mut prev, mut c256) = (vec![], vec![], vec![], vec![]);
    let mut content_emb: Option<(Embedding, Instant)> = None;
    let (mut slow, mut fast) = (0u32, 0u32);
    let mut last_start: Option<Instant> = None;
    while !shared.stop.load(Relaxed) {
        let net = match stylizer.as_mut() {
            Some(n) => n,
            None => match (ctx.make)(*h, *w) {
                Ok(n) => {
                    log::info!("inference: network ready at {}x{}", *w, *h);
                    shared.stats.set_size(*h, *w);
                    prev.clear();
                    stylizer.insert(n)
                }
                Err(e) => {
                    Stats::inc(&shared.stats.inference_errors);
                    log::error!("inference: {e}");
                    nap(&shared.stop, Duration::from_secs(5));
                    continue;
                }
            },
        };
        let Some(frame) = shared.captured.take(Duration::from_millis(100)) else {
            continue;
        };
        if shared.paused.load(Relaxed) || shared.resting.load(Relaxed) {
            shared.captured.recycle(frame);
            continue;
        }
        if ctx.max_fps > 0.0 {
            if let Some(t) = last_start {
                let min = Duration::from_secs_f32(1.0 / ctx.max_fps);
                let since = t.elapsed();
                if since < min {
                    nap(&shared.stop, min - since);
                }
            }
        }
        let start = Instant::now();
        last_start = Some(start);
        if let Err(e) = pre.downsize(&frame, *h, *w, &mut x) {
            log::warn!("inference: {e}");
            shared.captured.recycle(frame);
            continue;
        }
        let (target, strength, smoothing) = {
            let l = shared.live();
            (l.morph.at(start), l.strength, l.smoothing)
        };
        let embedding = if strength < 1.0 {
            // The scene changes slowly: its own embedding is refreshed every few seconds.
            let stale = content_emb.is_none_or(|(_, t)| t.elapsed() > Duration::from_secs(3));
            if stale {
                if let Some(p) = ctx.predict.as_mut() {
                    let ok = content_pre.downsize(&frame, PREDICT_SIDE, PREDICT_SIDE, &mut c256);
                    match ok
                        .map_err(|e| e.to_string())
                        .and_then(|_| p.embed(&c256).map_err(|e| e.to_string()))
                    {
                        Ok(e) => content_emb = Some((e, Instant::now())),
                        Err(e) => log::warn!("inference: content embedding: {e}"),
                    }
                }
            }
            match &content_emb {
                Some((c, _)) => with_strength(&target, c, strength),
                None => target,
            }
        } else {
            target
        };
        let captured_at = frame.captured_at;
        let seq = frame.seq;
        shared.captured.recycle(frame);
        if let Err(e) = net.stylize(&x, &embedding, &mut y) {
            Stats::inc(&shared.stats.inference_errors);
            log::error!("inference: {e}");
            nap(&shared.stop, Duration::from_secs(1));
            continue;
        }
        smooth(&mut y, &prev, smoothing);
        prev.clear();
        prev.extend_from_slice(&y);
        let mut out = shared
            .stylized
            .spare()
            .unwrap_or_else(|| RgbFrame::new(0, 0));
        out.reshape(*w as u32, *h as u32);
        for (o, v) in out.data.iter_mut().zip(y.iter()) {
            *o = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
        out.captured_at = captured_at;
        out.seq = seq;
        shared.stylized.put(out);
        let took = start.elapsed();
        shared.stats.infer_time(took);
        Stats::inc(&shared.stats.inferred);
        // Degrade instead of building latency on a slow or throttled CPU;
        // come back up when there is room again.
        if let Some(limit) = ctx.degrade_after {
            if took > limit {
                slow += 1;
                fast = 0;
            } else if took < limit / 3 {
                fast += 1;
                slow = 0;
            } else {
                slow = 0;
                fast = 0;
            }
            let pixels = (*h * *w) as u32;
            let resize = if slow >= 3 && pixels > ctx.min_pixels {
                Some(((pixels as f64 * 0.7) as u32).max(ctx.min_pixels))
            } else if fast >= 30 && pixels < ctx.max_pixels {
                Some(((pixels as f64 / 0.7) as u32).min(ctx.max_pixels))
            } else {
                None
            };
            if let Some(p) = resize {
                let (nh, nw) = size_for(ctx.aspect, p);
                if (nh, nw) != (*h, *w) {
                    log::warn!(
                        "inference: {} ms per frame (limit {} ms): network size {}x{} -> {}x{}",
                        took.as_millis(),
                        limit.as_millis(),
                        *w,
                        *h,
                        nw,
                        nh
                    );
                    (*h, *w) = (nh, nw);
                    stylizer = None;
                }
                slow = 0;
                fast = 0;
            }
        }
    }
}

/// Temporal smoothing against flicker: `y = (1 - a) * y + a * prev` (when
/// `prev` is a frame of the same size).
pub fn smooth(y: &mut [f32], prev: &[f32], a: f32) {
    if a > 0.0 && prev.len() == y.len() {
        for (v, p) in y.iter_mut().zip(prev) {
            *v = (1.0 - a) * *v + a * *p;
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(DaemonError::Thread)
}

/// Runs the art frame until `Quit` (signal, key, window closed) or the limit.
pub fn run(cfg: Config, parts: Parts, limits: RunLimits) -> Result<Report, DaemonError> {
    let t0 = Instant::now();
    let Parts {
        open_source,
        make_stylizer,
        predict,
        screen,
        reopen_screen,
        notifier,
        commands,
        reload,
        styles,
        state,
        pairing_url,
    } = parts;
    if styles.styles.is_empty() {
        return Err(DaemonError::NoStyles("the style set is empty".into()));
    }
    let ctl = Controller::new(styles, &cfg.styles.start, cfg.gallery.clone(), t0);
    log::info!("style: {}", describe_style(ctl.current()));
    let out = Presenter::new(screen, reopen_screen, cfg.inference.fit, &cfg.display);
    let tick = Duration::from_secs_f64(1.0 / cfg.display.fps.max(1) as f64);
    let ictx = InferenceCtx::new(&cfg, predict, make_stylizer, out.size());
    // Started at night, the camera must not take even one frame before the
    // display loop first looks at the clock.
    let start_dark = ctl.dark_reasons(local_time(&limits)).any();
    let shared = Arc::new(Shared::new(&cfg, ctl.current().embedding, start_dark));
    let mut dl = DisplayLoop::new(
        cfg,
        ctl,
        shared.clone(),
        out,
        notifier,
        reload,
        commands,
        limits,
        t0,
        state,
    );
    dl.pairing_url = pairing_url;
    dl.publish();
    let threads = vec![
        spawn("capture", {
            let s = shared.clone();
            move || capture_loop(s, open_source)
        })?,
        spawn("inference", {
            let s = shared.clone();
            move || inference_loop(s, ictx)
        })?,
    ];
    let quit = loop {
        let now = Instant::now();
        match dl.tick(now) {
            Tick::Continue => {}
            Tick::Quit => break true,
            Tick::Limit => break false,
        }
        let spent = now.elapsed();
        if spent < tick {
            std::thread::sleep(tick - spent);
        }
    };
    dl.stop(quit);
    stop_threads(&shared, threads);
    Ok(dl.finish())
}

/// Closes the mailboxes and joins the stages. The inference thread may be
/// inside one network run: wait a little, then leave it (the process is
/// about to end anyway).
fn stop_threads(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    shared.stop.store(true, Relaxed);
    shared.captured.close();
    shared.stylized.close();
    let deadline = Instant::now() + Duration::from_millis(600);
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}

/// The clock for the night schedule: local time, or the test's.
fn local_time(limits: &RunLimits) -> chrono::NaiveTime {
    limits
        .fixed_local_time
        .unwrap_or_else(|| chrono::Local::now().time())
}

fn describe_style(s: &crate::styles::Style) -> String {
    match (s.title.is_empty(), s.artist.is_empty()) {
        (false, false) => format!("{} ({}, {})", s.name, s.title, s.artist),
        (false, true) => format!("{} ({})", s.name, s.title),
        _ => s.name.clone(),
    }
}

/// SIGHUP applies styles, gallery and display timing at once; the camera,
/// screen, button and network settings need a restart: say so.
fn warn_restart_only(old: &Config, new: &Config) {
    let changed: Vec<&str> = [
        ("camera", old.camera != new.camera),
        (
            "display",
            old.display.backend != new.display.backend
                || old.display.framebuffer != new.display.framebuffer,
        ),
        ("button", old.button != new.button),
        ("models", old.models != new.models),
        ("inference", old.inference != new.inference),
        ("mqtt", old.mqtt != new.mqtt),
    ]
    .into_iter()
    .filter_map(|(k, c)| c.then_some(k))
    .collect();
    if !changed.is_empty() {
        log::warn!(
            "reload: [{}] changed; those settings take effect after a restart",
            changed.join("], [")
        );
    }
}

/// A sender for commands plus the receiver the daemon reads.
pub fn command_channel() -> (Sender<Command>, Receiver<Command>) {
    std::sync::mpsc::channel()
}
