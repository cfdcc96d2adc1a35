//! The daemon: capture, inference and display in their own threads, joined
//! by one-place mailboxes ([`slot::LatestSlot`]) so that a slow stage makes
//! the others drop stale frames instead of queueing them. The display loop
//! (which must own the window) runs on the calling thread, never waits for
//! inference, and cross-fades between stylized frames at the display rate.
//!
//! Hardware and the network come in through [`Parts`] (traits with real
//! implementations and test fakes), so the whole daemon runs in tests.

pub mod control;
pub mod notify;
pub mod slot;
pub mod stats;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::{CaptureError, FrameSource};
use crate::config::Config;
use crate::display::compose::Compositor;
use crate::display::{DisplayError, Screen};
use crate::frame::{Command, RgbFrame};
use crate::inference::{size_for, EngineError, PredictNet, Stylizer, PREDICT_SIDE};
use crate::preprocess::{Downsize, Preprocessor};
use crate::styles::{with_strength, Embedding, StyleMorph, StyleSet};

use control::Controller;
use notify::{ServiceNotifier, WatchdogGate};
use slot::LatestSlot;
use stats::Stats;

pub type SourceOpener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CaptureError> + Send>;
pub type StylizerFactory =
    Box<dyn FnMut(usize, usize) -> Result<Box<dyn Stylizer>, EngineError> + Send>;
pub type ScreenOpener = Box<dyn FnMut() -> Result<Box<dyn Screen>, DisplayError>>;
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
}

/// Limits for demos, benchmarks and tests.
#[derive(Clone, Debug, Default)]
pub struct RunLimits {
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Clock for the night schedule (tests); default: local time.
    pub fixed_local_time: Option<chrono::NaiveTime>,
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
    captured: LatestSlot<RgbFrame>,
    stylized: LatestSlot<RgbFrame>,
    live: Mutex<Live>,
    stats: Stats,
}

impl Shared {
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
        if shared.paused.load(Relaxed) {
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
        mut screen,
        mut reopen_screen,
        mut notifier,
        commands,
        mut reload,
        styles,
    } = parts;
    if styles.styles.is_empty() {
        return Err(DaemonError::NoStyles("the style set is empty".into()));
    }
    let mut cfg = cfg;
    let mut ctl = Controller::new(styles, &cfg.styles.start, cfg.gallery.clone(), t0);
    let morph_time = |c: &Config| Duration::from_secs_f32(c.styles.morph_seconds);
    // Started at night, the camera must not take even one frame before the
    // display loop first looks at the clock.
    let start_dark = ctl.is_dark(
        limits
            .fixed_local_time
            .unwrap_or_else(|| chrono::Local::now().time()),
    );
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        paused: AtomicBool::new(start_dark),
        captured: LatestSlot::default(),
        stylized: LatestSlot::default(),
        live: Mutex::new(Live {
            morph: StyleMorph::new(ctl.current().embedding, morph_time(&cfg)),
            strength: cfg.styles.strength,
            smoothing: cfg.styles.temporal_smoothing,
        }),
        stats: Stats::default(),
    });
    log::info!("style: {}", describe_style(ctl.current()));
    let (sw, sh) = screen.size();
    let ictx = InferenceCtx {
        make: make_stylizer,
        predict,
        aspect: sw as f64 / sh.max(1) as f64,
        max_pixels: cfg.inference.max_pixels,
        min_pixels: cfg.inference.min_pixels,
        degrade_after: (cfg.inference.degrade_after_ms > 0)
            .then(|| Duration::from_millis(cfg.inference.degrade_after_ms as u64)),
        max_fps: cfg.inference.max_fps,
        fit: cfg.inference.fit,
    };
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

    let mut comp = Compositor::new(sw, sh, cfg.inference.fit);
    comp.set_crossfade(cfg.display.crossfade);
    let mut pixels = vec![0u32; sw * sh];
    let tick = Duration::from_secs_f64(1.0 / cfg.display.fps.max(1) as f64);
    let mut gate = notifier.watchdog_interval().map(WatchdogGate::new);
    let mut cmds = Vec::new();
    let mut report = Report::default();
    let mut dark = false;
    let mut have_frame = false;
    let mut last_status = t0;
    let mut last_new_frame = t0;
    let mut stall_warned = false;
    let mut display_backoff = Duration::from_millis(500);
    let mut display_down_until: Option<Instant> = None;
    let (mut presented_at_status, mut inferred_at_status) = (0u64, 0u64);

    let quit = loop {
        let now = Instant::now();
        if limits.duration.is_some_and(|d| now - t0 >= d) {
            break false;
        }
        // Commands: keys first, then button/signals.
        screen.poll_commands(&mut cmds);
        while let Ok(c) = commands.try_recv() {
            cmds.push(c);
        }
        let mut quit = false;
        for c in cmds.drain(..) {
            match c {
                Command::Quit => quit = true,
                Command::NextStyle | Command::PrevStyle => {
                    let s = if c == Command::NextStyle {
                        ctl.next(now)
                    } else {
                        ctl.prev(now)
                    };
                    log::info!("style: {}", describe_style(s));
                    let e = s.embedding;
                    shared.live().morph.go_to(e, now);
                }
                Command::ToggleGallery => {
                    let on = ctl.toggle_gallery(now);
                    log::info!("gallery mode {}", if on { "on" } else { "off" });
                }
                Command::ToggleBlank => {
                    let on = ctl.toggle_blank();
                    log::info!("screen {}", if on { "blanked" } else { "on" });
                }
                Command::ReloadConfig => {
                    notifier.reloading();
                    match reload() {
                        Ok((new, styles)) if !styles.styles.is_empty() => {
                            warn_restart_only(&cfg, &new);
                            ctl.reconfigure(styles, new.gallery.clone(), now);
                            let mut l = shared.live();
                            l.strength = new.styles.strength;
                            l.smoothing = new.styles.temporal_smoothing;
                            l.morph.set_duration(morph_time(&new));
                            l.morph.go_to(ctl.current().embedding, now);
                            drop(l);
                            comp.set_crossfade(new.display.crossfade);
                            cfg = new;
                            report.reloads_ok += 1;
                            log::info!("configuration reloaded; style: {}", ctl.current().name);
                        }
                        Ok(_) => {
                            report.reloads_failed += 1;
                            log::error!("reload: the new style set is empty; keeping the running configuration");
                        }
                        Err(e) => {
                            report.reloads_failed += 1;
                            log::error!("reload: {e}; keeping the running configuration");
                        }
                    }
                    notifier.ready();
                }
            }
        }
        if quit {
            break true;
        }
        if ctl.gallery_due(now) {
            let s = ctl.next(now);
            log::info!("gallery: {}", describe_style(s));
            let e = s.embedding;
            shared.live().morph.go_to(e, now);
        }
        let local = limits
            .fixed_local_time
            .unwrap_or_else(|| chrono::Local::now().time());
        let want_dark = ctl.is_dark(local);
        if want_dark != dark {
            dark = want_dark;
            shared.paused.store(dark, Relaxed);
            if dark {
                log::info!("screen dark (night schedule or blank); capture and inference paused");
                if let Err(e) = screen.set_power(false) {
                    log::warn!("display: {e}");
                }
            } else {
                log::info!("screen on again");
                if let Err(e) = screen.set_power(true) {
                    log::warn!("display: {e}");
                }
                have_frame = false;
            }
        }
        if !dark && display_down_until.is_none_or(|t| now >= t) {
            if let Some(f) = shared.stylized.try_take() {
                comp.push(&f, now);
                shared
                    .stats
                    .latency(now.saturating_duration_since(f.captured_at));
                shared.stylized.recycle(f);
                Stats::inc(&shared.stats.displayed);
                last_new_frame = now;
                stall_warned = false;
                if let Some(g) = gate.as_mut() {
                    g.frame_shown(now);
                }
                if !have_frame {
                    have_frame = true;
                    if report.first_frame.is_none() {
                        let d = now - t0;
                        report.first_frame = Some(d);
                        log::info!(
                            "first stylized frame shown {} ms after start",
                            d.as_millis()
                        );
                        notifier.ready();
                    }
                }
            }
            if have_frame && comp.needs_redraw(now) {
                comp.render(now, &mut pixels);
                match screen.present(&pixels) {
                    Ok(()) => {
                        report.presented += 1;
                        display_backoff = Duration::from_millis(500);
                        display_down_until = None;
                    }
                    Err(e) => {
                        Stats::inc(&shared.stats.display_errors);
                        log::warn!(
                            "display: {e}; retrying in {:.1} s",
                            display_backoff.as_secs_f32()
                        );
                        display_down_until = Some(now + display_backoff);
                        display_backoff = (display_backoff * 2).min(Duration::from_secs(30));
                        if let Some(r) = reopen_screen.as_mut() {
                            match r() {
                                Ok(s) if s.size() == (sw, sh) => screen = s,
                                Ok(s) => log::warn!(
                                    "display: reopened at {:?}, expected {:?}",
                                    s.size(),
                                    (sw, sh)
                                ),
                                Err(e) => log::warn!("display: reopening failed: {e}"),
                            }
                        }
                    }
                }
            }
        }
        if !screen.is_open() {
            log::info!("window closed");
            break true;
        }
        // Dark on purpose is healthy; otherwise only flowing frames feed the watchdog.
        if let Some(g) = gate.as_mut() {
            if dark {
                g.frame_shown(now);
            }
            if g.should_ping(now) {
                notifier.watchdog();
            }
        }
        if !dark && now - last_new_frame > Duration::from_secs(10) && !stall_warned {
            stall_warned = true;
            log::warn!(
                "no new stylized frame for {} s",
                (now - last_new_frame).as_secs()
            );
        }
        if now - last_status >= Duration::from_secs(5) {
            let secs = (now - last_status).as_secs_f64();
            let inferred = Stats::get(&shared.stats.inferred);
            let (h, w) = shared.stats.size();
            notifier.status(&format!(
                "{:.1} fps stylized, {:.1} fps shown, {}x{}, style {}",
                (inferred - inferred_at_status) as f64 / secs,
                (report.presented - presented_at_status) as f64 / secs,
                w,
                h,
                ctl.current().name
            ));
            inferred_at_status = inferred;
            presented_at_status = report.presented;
            last_status = now;
        }
        let spent = now.elapsed();
        if spent < tick {
            std::thread::sleep(tick - spent);
        }
    };

    notifier.stopping();
    if quit {
        log::info!("stopping");
    }
    if let Err(e) = screen.set_power(false) {
        log::warn!("display: blanking on exit: {e}");
    }
    shared.stop.store(true, Relaxed);
    shared.captured.close();
    shared.stylized.close();
    // The inference thread may be inside one network run: wait a little,
    // then leave it (the process is about to end anyway).
    let deadline = Instant::now() + Duration::from_millis(600);
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    let s = &shared.stats;
    report.elapsed = t0.elapsed();
    report.captured = Stats::get(&s.captured);
    report.inferred = Stats::get(&s.inferred);
    report.displayed = Stats::get(&s.displayed);
    report.dropped_capture = shared.captured.dropped();
    report.corrupt_frames = Stats::get(&s.corrupt_frames);
    report.inference_restarts = Stats::get(&s.inference_restarts);
    report.latency_p50_ms = s.latency_ms(50.0);
    report.latency_p95_ms = s.latency_ms(95.0);
    report.infer_p50_ms = s.infer_ms(50.0);
    report.size = s.size();
    report.final_style = ctl.current().name.clone();
    Ok(report)
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
