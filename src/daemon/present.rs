//! The display end of the pipeline: the screen, the compositor that scales
//! and cross-fades stylized frames onto it, and recovery when the screen
//! goes away (retry with backoff, reopen). A failed present never stops the
//! loop; it only delays the next one.

use std::time::{Duration, Instant};

use crate::config::DisplayConfig;
use crate::display::compose::Compositor;
use crate::display::qr::Overlay;
use crate::display::{PowerMode, Screen};
use crate::frame::{Command, RgbFrame};

use super::stats::Stats;
use super::ScreenOpener;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(super) struct Presenter {
    screen: Box<dyn Screen>,
    reopen: Option<ScreenOpener>,
    comp: Compositor,
    pixels: Vec<u32>,
    size: (usize, usize),
    backoff: Duration,
    down_until: Option<Instant>,
    /// A stylized frame arrived since the screen last (re)woke.
    pub has_frame: bool,
    /// The pairing QR code, shown until the instant.
    overlay: Option<(Overlay, Instant)>,
    /// Draw at the next tick even without a new frame (overlay on or off).
    dirty: bool,
}

impl Presenter {
    pub fn new(
        screen: Box<dyn Screen>,
        reopen: Option<ScreenOpener>,
        fit: crate::config::Fit,
        display: &DisplayConfig,
    ) -> Self {
        let (w, h) = screen.size();
        let mut comp = Compositor::new(w, h, fit);
        comp.set_crossfade(display.crossfade);
        Presenter {
            screen,
            reopen,
            comp,
            pixels: vec![0u32; w * h],
            size: (w, h),
            backoff: FIRST_BACKOFF,
            down_until: None,
            has_frame: false,
            overlay: None,
            dirty: false,
        }
    }

    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    pub fn set_crossfade(&mut self, on: bool) {
        self.comp.set_crossfade(on);
    }

    /// False while waiting out a failed present.
    pub fn ready(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|t| now >= t)
    }

    pub fn push(&mut self, f: &RgbFrame, now: Instant) {
        self.comp.push(f, now);
        self.has_frame = true;
    }

    /// Draws when the cross-fade or a new frame needs it; true when a
    /// picture reached the screen.
    pub fn draw(&mut self, now: Instant, stats: &Stats) -> bool {
        if self
            .overlay
            .as_ref()
            .is_some_and(|(_, until)| now >= *until)
        {
            self.overlay = None;
            self.dirty = true;
        }
        let fresh = self.has_frame && self.comp.needs_redraw(now);
        if !fresh && !self.dirty {
            return false;
        }
        self.dirty = false;
        if self.has_frame {
            self.comp.render(now, &mut self.pixels);
        }
        if let Some((o, _)) = &self.overlay {
            o.blit(&mut self.pixels, self.size.0);
        }
        match self.screen.present(&self.pixels) {
            Ok(()) => {
                self.backoff = FIRST_BACKOFF;
                self.down_until = None;
                true
            }
            Err(e) => {
                Stats::inc(&stats.display_errors);
                log::warn!(
                    "display: {e}; retrying in {:.1} s",
                    self.backoff.as_secs_f32()
                );
                self.down_until = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.try_reopen();
                false
            }
        }
    }

    fn try_reopen(&mut self) {
        let Some(r) = self.reopen.as_mut() else {
            return;
        };
        match r() {
            Ok(s) if s.size() == self.size => self.screen = s,
            Ok(s) => log::warn!(
                "display: reopened at {:?}, expected {:?}",
                s.size(),
                self.size
            ),
            Err(e) => log::warn!("display: reopening failed: {e}"),
        }
    }

    /// Powers the panel down (night, blank, presence, exit): DPMS,
    /// `FBIOBLANK` or the desktop's way; black pixels where none works
    /// (the backend logs that once).
    pub fn power_off(&mut self, why: &str) {
        match self.screen.set_power(false) {
            Ok(PowerMode::Off) => log::info!("display: panel powered off ({why})"),
            Ok(_) => {}
            Err(e) => log::warn!("display: {why}: {e}"),
        }
    }

    /// The screen wakes: wait for a fresh frame rather than show a stale one.
    pub fn power_on(&mut self) {
        if let Err(e) = self.screen.set_power(true) {
            log::warn!("display: powering on: {e}");
        }
        self.has_frame = false;
    }

    /// Shows `overlay` over the picture until `until`.
    pub fn show_overlay(&mut self, overlay: Overlay, until: Instant) {
        self.overlay = Some((overlay, until));
        self.dirty = true;
    }

    pub fn poll_commands(&mut self, out: &mut Vec<Command>) {
        self.screen.poll_commands(out);
    }

    pub fn is_open(&self) -> bool {
        self.screen.is_open()
    }
}
