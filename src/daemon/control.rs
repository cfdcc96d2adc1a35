//! What is shown when: the current style, next/previous, gallery mode
//! (auto-advance, in order or shuffled), manual blanking and the night
//! schedule. Pure logic, driven by the daemon's clock.

use std::time::{Duration, Instant};

use crate::config::{GalleryConfig, GalleryOrder};
use crate::styles::{Style, StyleSet};

use super::power::DarkReasons;

pub struct Controller {
    styles: StyleSet,
    /// Position in `order`.
    pos: usize,
    /// Indices into `styles` in showing order (shuffled in shuffle mode).
    order: Vec<usize>,
    gallery: GalleryConfig,
    gallery_on: bool,
    last_change: Instant,
    manual_blank: bool,
    rng: fastrand::Rng,
}

impl Controller {
    /// `start`: style name to begin with ("" = the first).
    pub fn new(styles: StyleSet, start: &str, gallery: GalleryConfig, now: Instant) -> Self {
        let mut c = Controller {
            order: (0..styles.styles.len()).collect(),
            styles,
            pos: 0,
            gallery_on: gallery.enabled,
            gallery,
            last_change: now,
            manual_blank: false,
            rng: fastrand::Rng::with_seed(0x5eed),
        };
        c.reorder();
        if let Some(i) = c
            .styles
            .styles
            .iter()
            .position(|s| crate::styles::same_name(&s.name, start))
        {
            c.pos = c.order.iter().position(|&o| o == i).unwrap_or(0);
        }
        c
    }

    fn reorder(&mut self) {
        self.order = (0..self.styles.styles.len()).collect();
        if self.gallery.order == GalleryOrder::Shuffle {
            self.rng.shuffle(&mut self.order);
        }
    }

    pub fn current(&self) -> &Style {
        &self.styles.styles[self.order[self.pos]]
    }

    pub fn styles(&self) -> &StyleSet {
        &self.styles
    }

    pub fn next(&mut self, now: Instant) -> &Style {
        self.pos = (self.pos + 1) % self.order.len();
        if self.pos == 0 && self.gallery.order == GalleryOrder::Shuffle {
            let last = self.order[self.order.len() - 1];
            self.reorder();
            // Never show the same painting twice in a row across reshuffles.
            if self.order.len() > 1 && self.order[0] == last {
                self.order.swap(0, 1);
            }
        }
        self.last_change = now;
        self.current()
    }

    pub fn prev(&mut self, now: Instant) -> &Style {
        self.pos = (self.pos + self.order.len() - 1) % self.order.len();
        self.last_change = now;
        self.current()
    }

    /// Gallery mode: true when it is time to advance (call `next` then).
    pub fn gallery_due(&self, now: Instant) -> bool {
        self.gallery_on
            && now.saturating_duration_since(self.last_change)
                >= Duration::from_secs_f32(self.gallery.interval_minutes * 60.0)
    }

    pub fn toggle_gallery(&mut self, now: Instant) -> bool {
        self.gallery_on = !self.gallery_on;
        self.last_change = now;
        self.gallery_on
    }

    pub fn gallery_on(&self) -> bool {
        self.gallery_on
    }

    /// Jumps to the named style; None (and no change) when there is none.
    pub fn select(&mut self, name: &str, now: Instant) -> Option<&Style> {
        let i = self
            .styles
            .styles
            .iter()
            .position(|s| crate::styles::same_name(&s.name, name))?;
        self.pos = self.order.iter().position(|&o| o == i)?;
        self.last_change = now;
        Some(self.current())
    }

    pub fn set_gallery(&mut self, on: bool, now: Instant) {
        if on != self.gallery_on {
            self.toggle_gallery(now);
        }
    }

    pub fn set_blank(&mut self, on: bool) {
        self.manual_blank = on;
    }

    pub fn toggle_blank(&mut self) -> bool {
        self.manual_blank = !self.manual_blank;
        self.manual_blank
    }

    /// Why the screen should be dark at `local` time (none: it should be on).
    pub fn dark_reasons(&self, local: chrono::NaiveTime) -> DarkReasons {
        DarkReasons {
            night: self.gallery.is_night(local),
            blanked: self.manual_blank,
            still: false,
        }
    }

    /// New settings (SIGHUP): keeps showing the same style when it still exists.
    pub fn reconfigure(&mut self, styles: StyleSet, gallery: GalleryConfig, now: Instant) {
        let name = self.current().name.clone();
        let enabled_changed = gallery.enabled != self.gallery.enabled;
        self.styles = styles;
        self.gallery = gallery;
        if enabled_changed {
            self.gallery_on = self.gallery.enabled;
        }
        self.reorder();
        self.pos = self
            .styles
            .styles
            .iter()
            .position(|s| s.name == name)
            .and_then(|i| self.order.iter().position(|&o| o == i))
            .unwrap_or(0);
        self.last_change = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::styles::{Embedding, Style};

    fn set(names: &[&str]) -> StyleSet {
        let mut s = StyleSet::new("m");
        for (i, n) in names.iter().enumerate() {
            s.upsert(Style {
                name: n.to_string(),
                title: String::new(),
                artist: String::new(),
                source: String::new(),
                embedding: Embedding([i as f32; 100]),
            });
        }
        s
    }

    #[test]
    fn next_and_previous_cycle_through_the_styles() {
        let t = Instant::now();
        let mut c = Controller::new(set(&["a", "b", "c"]), "", GalleryConfig::default(), t);
        assert_eq!(c.current().name, "a");
        assert_eq!(c.next(t).name, "b");
        assert_eq!(c.next(t).name, "c");
        assert_eq!(c.next(t).name, "a");
        assert_eq!(c.prev(t).name, "c");
    }

    #[test]
    fn starts_on_the_configured_style() {
        let c = Controller::new(
            set(&["a", "b", "c"]),
            "B",
            GalleryConfig::default(),
            Instant::now(),
        );
        assert_eq!(c.current().name, "b");
    }

    #[test]
    fn gallery_mode_advances_after_its_interval() {
        let t = Instant::now();
        let g = GalleryConfig {
            enabled: true,
            interval_minutes: 1.0,
            ..Default::default()
        };
        let mut c = Controller::new(set(&["a", "b"]), "", g, t);
        assert!(!c.gallery_due(t + Duration::from_secs(59)));
        assert!(c.gallery_due(t + Duration::from_secs(60)));
        c.next(t + Duration::from_secs(60));
        assert!(!c.gallery_due(t + Duration::from_secs(61)));
        c.toggle_gallery(t);
        assert!(!c.gallery_due(t + Duration::from_secs(600)));
    }

    #[test]
    fn shuffle_shows_every_style_once_per_round() {
        let t = Instant::now();
        let g = GalleryConfig {
            order: GalleryOrder::Shuffle,
            ..Default::default()
        };
        let mut c = Controller::new(set(&["a", "b", "c", "d", "e"]), "", g, t);
        let mut seen = vec![c.current().name.clone()];
        for _ in 0..4 {
            seen.push(c.next(t).name.clone());
        }
        seen.sort();
        assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn select_jumps_to_a_named_style_and_ignores_unknown_names() {
        let t = Instant::now();
        let mut c = Controller::new(StyleSet::builtin(), "", GalleryConfig::default(), t);
        let name = StyleSet::builtin().styles[2].name.clone();
        assert_eq!(c.select(&name.to_uppercase(), t).unwrap().name, name);
        assert!(c.select("no such style", t).is_none());
        assert_eq!(c.current().name, name);
    }

    #[test]
    fn night_window_and_manual_blank_darken_the_screen() {
        let g = GalleryConfig {
            night_start: "23:00".into(),
            night_end: "07:00".into(),
            ..Default::default()
        };
        let mut c = Controller::new(set(&["a"]), "", g, Instant::now());
        let at = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(c.dark_reasons(at(2, 0)).any());
        assert!(!c.dark_reasons(at(12, 0)).any());
        c.toggle_blank();
        assert!(c.dark_reasons(at(12, 0)).any());
    }

    #[test]
    fn reconfigure_keeps_the_current_style() {
        let t = Instant::now();
        let mut c = Controller::new(set(&["a", "b", "c"]), "b", GalleryConfig::default(), t);
        c.reconfigure(set(&["z", "b"]), GalleryConfig::default(), t);
        assert_eq!(c.current().name, "b");
        c.reconfigure(set(&["x", "y"]), GalleryConfig::default(), t);
        assert_eq!(c.current().name, "x");
    }
}
