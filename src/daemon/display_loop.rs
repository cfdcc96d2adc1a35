//! The display thread's loop, one concern per method: commands (keys,
//! button, signals), reloading, the screen's power, showing new frames, and
//! the service's health (watchdog, status line, stall warning).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::frame::Command;

use super::control::Controller;
use super::notify::{ServiceNotifier, WatchdogGate};
use super::power::{Change, Power};
use super::present::Presenter;
use super::state::{StateBoard, StyleInfo};
use super::stats::Stats;
use super::PairingUrl;
use super::{describe_style, local_time, warn_restart_only, Reloader, Report, RunLimits, Shared};
use crate::display::qr::qr_overlay;

const STATUS_EVERY: Duration = Duration::from_secs(5);
const STALL_AFTER: Duration = Duration::from_secs(10);
/// How long the pairing QR code stays on the screen.
const PAIRING_SHOWN: Duration = Duration::from_secs(60);

pub(super) struct DisplayLoop {
    pub cfg: Config,
    pub ctl: Controller,
    pub shared: Arc<Shared>,
    pub out: Presenter,
    pub notifier: Box<dyn ServiceNotifier>,
    pub reload: Reloader,
    pub commands: Receiver<Command>,
    pub limits: RunLimits,
    pub report: Report,
    pub t0: Instant,
    pub state: Arc<StateBoard>,
    pub pairing_url: Option<PairingUrl>,
    gate: Option<WatchdogGate>,
    power: Power,
    cmds: Vec<Command>,
    ready_sent: bool,
    last_new_frame: Instant,
    stall_warned: bool,
    status: StatusLine,
}

/// Counts at the last status line, for per-interval rates.
struct StatusLine {
    at: Instant,
    presented: u64,
    inferred: u64,
}

/// How a tick ended.
pub(super) enum Tick {
    Continue,
    /// Asked to stop (signal, key, window closed).
    Quit,
    /// The run's time limit was reached.
    Limit,
}

impl DisplayLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Config,
        ctl: Controller,
        shared: Arc<Shared>,
        out: Presenter,
        notifier: Box<dyn ServiceNotifier>,
        reload: Reloader,
        commands: Receiver<Command>,
        limits: RunLimits,
        t0: Instant,
        state: Arc<StateBoard>,
    ) -> Self {
        let gate = notifier.watchdog_interval().map(WatchdogGate::new);
        DisplayLoop {
            cfg,
            ctl,
            shared,
            out,
            notifier,
            reload,
            commands,
            limits,
            report: Report::default(),
            t0,
            state,
            pairing_url: None,
            gate,
            power: Power::default(),
            cmds: Vec::new(),
            ready_sent: false,
            last_new_frame: t0,
            stall_warned: false,
            status: StatusLine {
                at: t0,
                presented: 0,
                inferred: 0,
            },
        }
    }

    /// One display tick; the caller sleeps out the rest of the frame time.
    pub fn tick(&mut self, now: Instant) -> Tick {
        if self.limits.duration.is_some_and(|d| now - self.t0 >= d) {
            return Tick::Limit;
        }
        if self.run_commands(now) {
            return Tick::Quit;
        }
        if self.ctl.gallery_due(now) {
            let s = self.ctl.next(now);
            log::info!("gallery: {}", describe_style(s));
            self.shared.live().morph.go_to(s.embedding, now);
            self.publish();
        }
        self.follow_power(now);
        if !self.power.is_dark() && self.out.ready(now) {
            self.show(now);
        }
        if !self.out.is_open() {
            log::info!("window closed");
            return Tick::Quit;
        }
        self.health(now);
        Tick::Continue
    }

    /// Keys first, then button and signals. True on Quit.
    fn run_commands(&mut self, now: Instant) -> bool {
        self.out.poll_commands(&mut self.cmds);
        while let Ok(c) = self.commands.try_recv() {
            self.cmds.push(c);
        }
        if self.cmds.is_empty() {
            return false;
        }
        let mut quit = false;
        let mut cmds = std::mem::take(&mut self.cmds);
        for c in cmds.drain(..) {
            quit |= self.run_command(c, now);
        }
        self.cmds = cmds;
        self.publish();
        quit
    }

    fn run_command(&mut self, c: Command, now: Instant) -> bool {
        match c {
            Command::Quit => return true,
            Command::NextStyle | Command::PrevStyle => {
                let s = if matches!(c, Command::NextStyle) {
                    self.ctl.next(now)
                } else {
                    self.ctl.prev(now)
                };
                log::info!("style: {}", describe_style(s));
                self.shared.live().morph.go_to(s.embedding, now);
            }
            Command::ToggleGallery => {
                let on = self.ctl.toggle_gallery(now);
                log::info!("gallery mode {}", if on { "on" } else { "off" });
            }
            Command::ToggleBlank => {
                let on = self.ctl.toggle_blank();
                log::info!("screen {}", if on { "blanked" } else { "on" });
            }
            Command::ReloadConfig => self.reload(now),
            Command::SetStyle(name) => match self.ctl.select(&name, now) {
                Some(s) => {
                    log::info!("style: {}", describe_style(s));
                    self.shared.live().morph.go_to(s.embedding, now);
                }
                None => log::warn!("no style named {name:?}; keeping the current one"),
            },
            Command::SetStrength(v) if v.is_finite() => {
                self.shared.live().strength = v.clamp(0.0, 1.0);
            }
            Command::SetStrength(v) => log::warn!("strength {v} is not a number; ignored"),
            Command::SetGallery(on) => self.ctl.set_gallery(on, now),
            Command::SetScreen(on) => self.ctl.set_blank(!on),
            Command::ShowPairing => self.show_pairing(now),
            Command::SetMorphSeconds(v) if v.is_finite() => {
                let d = Duration::from_secs_f32(v.clamp(0.0, 60.0));
                self.shared.live().morph.set_duration(d);
            }
            Command::SetMorphSeconds(v) => log::warn!("morph time {v} is not a number; ignored"),
        }
        false
    }

    /// The control page's pairing URL as a QR code over the picture for a
    /// minute, so a phone pairs by scanning the frame.
    fn show_pairing(&mut self, now: Instant) {
        let Some(f) = self.pairing_url.as_mut() else {
            log::warn!(
                "pairing: the control page is off (remote.enabled = false); nothing to show"
            );
            return;
        };
        // The reading function logs why it has no URL.
        let Some(url) = f() else { return };
        let (w, h) = self.out.size();
        match qr_overlay(&url, w, h) {
            Some(o) => {
                log::info!(
                    "pairing: the QR code is on the screen for {} s",
                    PAIRING_SHOWN.as_secs()
                );
                self.out.show_overlay(o, now + PAIRING_SHOWN);
            }
            None => log::warn!(
                "pairing: the screen ({w}x{h}) is too small for the QR code; run `styleframe pair`"
            ),
        }
    }

    /// Tells observers (control page, MQTT) what the frame does now.
    pub fn publish(&self) {
        let (strength, morph) = {
            let l = self.shared.live();
            (l.strength, l.morph.duration().as_secs_f32())
        };
        self.state.update(|s| {
            s.morph_seconds = morph;
            s.style.clone_from(&self.ctl.current().name);
            if s.styles.len() != self.ctl.styles().styles.len()
                || s.styles
                    .iter()
                    .zip(&self.ctl.styles().styles)
                    .any(|(a, b)| a.name != b.name)
            {
                s.styles = self
                    .ctl
                    .styles()
                    .styles
                    .iter()
                    .map(StyleInfo::from)
                    .collect();
            }
            s.strength = strength;
            s.gallery = self.ctl.gallery_on();
            s.screen_on = !self.power.is_dark();
        });
    }

    /// SIGHUP: styles, gallery and display timing change at once; a failed
    /// reload keeps everything running as it was.
    fn reload(&mut self, now: Instant) {
        self.notifier.reloading();
        match (self.reload)() {
            Ok((new, styles)) if !styles.styles.is_empty() => {
                warn_restart_only(&self.cfg, &new);
                self.ctl.reconfigure(styles, new.gallery.clone(), now);
                let mut l = self.shared.live();
                l.strength = new.styles.strength;
                l.smoothing = new.styles.temporal_smoothing;
                l.morph
                    .set_duration(Duration::from_secs_f32(new.styles.morph_seconds));
                l.morph.go_to(self.ctl.current().embedding, now);
                drop(l);
                self.out.set_crossfade(new.display.crossfade);
                let presence = new.display.sleep_after_still_minutes > 0;
                self.shared.presence.store(presence, Relaxed);
                self.cfg = new;
                self.report.reloads_ok += 1;
                log::info!(
                    "configuration reloaded; style: {}, strength {:.2}",
                    self.ctl.current().name,
                    self.cfg.styles.strength
                );
            }
            Ok(_) => {
                self.report.reloads_failed += 1;
                log::error!(
                    "reload: the new style set is empty; keeping the running configuration"
                );
            }
            Err(e) => {
                self.report.reloads_failed += 1;
                log::error!("reload: {e}; keeping the running configuration");
            }
        }
        self.notifier.ready();
    }

    /// Night schedule, blank and presence: power the screen down and rest
    /// the network (and the camera, except while watching for someone); wake
    /// them when the last reason goes. Dark on purpose is the daemon doing
    /// what it should, so it counts as ready.
    fn follow_power(&mut self, now: Instant) {
        let mut reasons = self.ctl.dark_reasons(local_time(&self.limits));
        let minutes = self.cfg.display.sleep_after_still_minutes;
        let minute = self
            .limits
            .presence_minute
            .unwrap_or(Duration::from_secs(60));
        reasons.still = minutes > 0 && self.shared.still_for(now) >= minute * minutes;
        self.shared.paused.store(reasons.camera_off(), Relaxed);
        self.shared.resting.store(reasons.any(), Relaxed);
        match self.power.update(reasons) {
            Some(Change::Off(why)) => {
                log::info!("screen dark ({why}); stylizing paused");
                self.out.power_off(why);
                self.mark_ready(&format!("ready; screen dark ({why})"));
            }
            Some(Change::On) => {
                log::info!("screen on again");
                self.out.power_on();
            }
            None => return,
        }
        self.publish();
    }

    fn mark_ready(&mut self, why: &str) {
        if !self.ready_sent {
            self.ready_sent = true;
            log::info!("{why}");
            self.notifier.ready();
        }
    }

    /// Takes a new stylized frame if there is one and redraws when needed.
    fn show(&mut self, now: Instant) {
        if let Some(f) = self.shared.stylized.try_take() {
            self.out.push(&f, now);
            self.state.offer_frame(&f, now);
            let stats = &self.shared.stats;
            stats.latency(now.saturating_duration_since(f.captured_at));
            self.shared.stylized.recycle(f);
            Stats::inc(&stats.displayed);
            self.last_new_frame = now;
            self.stall_warned = false;
            if let Some(g) = self.gate.as_mut() {
                g.frame_shown(now);
            }
            if self.report.first_frame.is_none() {
                let d = now - self.t0;
                self.report.first_frame = Some(d);
                self.mark_ready(&format!(
                    "first stylized frame shown {} ms after start",
                    d.as_millis()
                ));
            }
        }
        if self.out.draw(now, &self.shared.stats) {
            self.report.presented += 1;
        }
    }

    /// Watchdog, stall warning and the status line.
    fn health(&mut self, now: Instant) {
        let dark = self.power.is_dark();
        // Dark on purpose is healthy; otherwise only flowing frames feed the watchdog.
        if let Some(g) = self.gate.as_mut() {
            if dark {
                g.frame_shown(now);
            }
            if g.should_ping(now) {
                self.notifier.watchdog();
            }
        }
        let quiet = now - self.last_new_frame;
        if !dark && quiet > STALL_AFTER && !self.stall_warned {
            self.stall_warned = true;
            log::warn!("no new stylized frame for {} s", quiet.as_secs());
        }
        if now - self.status.at >= STATUS_EVERY {
            self.status_line(now);
        }
    }

    fn status_line(&mut self, now: Instant) {
        let secs = (now - self.status.at).as_secs_f64();
        let inferred = Stats::get(&self.shared.stats.inferred);
        let fps = (inferred - self.status.inferred) as f64 / secs;
        let shown = (self.report.presented - self.status.presented) as f64 / secs;
        let (h, w) = self.shared.stats.size();
        self.notifier.status(&format!(
            "{fps:.1} fps stylized, {shown:.1} fps shown, {w}x{h}, style {}",
            self.ctl.current().name
        ));
        self.status = StatusLine {
            at: now,
            presented: self.report.presented,
            inferred,
        };
        let infer_ms = self.shared.stats.infer_ms(50.0).map(|m| m as f32);
        self.state.update(|s| {
            s.fps = fps as f32;
            s.infer_ms = infer_ms;
        });
    }

    /// Leaving: tell systemd, and power the screen down.
    pub fn stop(&mut self, quit: bool) {
        self.notifier.stopping();
        if quit {
            log::info!("stopping");
        }
        self.out.power_off("blanking on exit");
    }

    /// What the run did.
    pub fn finish(mut self) -> Report {
        let s = &self.shared.stats;
        let r = &mut self.report;
        r.elapsed = self.t0.elapsed();
        r.captured = Stats::get(&s.captured);
        r.inferred = Stats::get(&s.inferred);
        r.displayed = Stats::get(&s.displayed);
        r.dropped_capture = self.shared.captured.dropped();
        r.corrupt_frames = Stats::get(&s.corrupt_frames);
        r.inference_restarts = Stats::get(&s.inference_restarts);
        r.latency_p50_ms = s.latency_ms(50.0);
        r.latency_p95_ms = s.latency_ms(95.0);
        r.infer_p50_ms = s.infer_ms(50.0);
        r.size = s.size();
        r.final_style = self.ctl.current().name.clone();
        self.report
    }
}
