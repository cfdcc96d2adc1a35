//! What the frame is doing, published for observers that live off the frame
//! path (the control page, MQTT). The display loop writes it on every change,
//! whatever caused it; observers read snapshots or wait for a newer version.
//! Writers never wait on readers: the lock is held only to copy a few fields.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::frame::RgbFrame;

use serde::Serialize;

/// One style as observers see it (no embedding).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StyleInfo {
    pub name: String,
    pub title: String,
    pub artist: String,
}

impl From<&crate::styles::Style> for StyleInfo {
    fn from(s: &crate::styles::Style) -> Self {
        StyleInfo {
            name: s.name.clone(),
            title: s.title.clone(),
            artist: s.artist.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FrameState {
    /// The style shown (or being morphed to).
    pub style: String,
    pub styles: Vec<StyleInfo>,
    pub strength: f32,
    /// How long a style change morphs.
    pub morph_seconds: f32,
    pub gallery: bool,
    /// False while the screen is dark (night schedule or blank).
    pub screen_on: bool,
    /// Stylized frames per second over the last status interval.
    pub fps: f32,
    /// Median inference time, when frames have been stylized.
    pub infer_ms: Option<f32>,
}

/// A versioned [`FrameState`]; the version grows on every change.
#[derive(Default)]
pub struct StateBoard {
    inner: Mutex<(u64, FrameState)>,
    changed: Condvar,
    preview: Mutex<Preview>,
}

/// The live preview: a copy of a stylized frame (never a camera picture),
/// made only while an observer asked for one recently, at most twice a second.
#[derive(Default)]
struct Preview {
    wanted_until: Option<Instant>,
    copied_at: Option<Instant>,
    frame: Option<RgbFrame>,
}

/// How often the preview copy is refreshed while wanted.
pub const PREVIEW_EVERY: Duration = Duration::from_millis(500);

impl StateBoard {
    fn lock(&self) -> MutexGuard<'_, (u64, FrameState)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `f`; observers wake only if the state really changed.
    pub fn update(&self, f: impl FnOnce(&mut FrameState)) {
        let mut g = self.lock();
        let mut next = g.1.clone();
        f(&mut next);
        if next != g.1 {
            g.0 += 1;
            g.1 = next;
            self.changed.notify_all();
        }
    }

    /// The current version and state.
    pub fn snapshot(&self) -> (u64, FrameState) {
        self.lock().clone()
    }

    /// Waits up to `timeout` for a version newer than `seen`, then returns
    /// the current one (which equals `seen` on time-out).
    pub fn wait_newer(&self, seen: u64, timeout: Duration) -> (u64, FrameState) {
        let g = self.lock();
        let (g, _) = self
            .changed
            .wait_timeout_while(g, timeout, |s| s.0 <= seen)
            .unwrap_or_else(|p| p.into_inner());
        g.clone()
    }
}

impl StateBoard {
    fn preview(&self) -> MutexGuard<'_, Preview> {
        self.preview.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An observer wants preview frames for the next `d`.
    pub fn want_preview(&self, d: Duration) {
        self.preview().wanted_until = Some(Instant::now() + d);
    }

    /// The display loop offers each new stylized frame; it is copied (into
    /// the same buffer) only while wanted and not more often than [`PREVIEW_EVERY`].
    pub fn offer_frame(&self, f: &RgbFrame, now: Instant) {
        let mut p = self.preview();
        let wanted = p.wanted_until.is_some_and(|u| now < u);
        let due = p
            .copied_at
            .is_none_or(|t| now.saturating_duration_since(t) >= PREVIEW_EVERY);
        if wanted && due {
            p.copied_at = Some(now);
            match &mut p.frame {
                Some(old) => {
                    old.reshape(f.width, f.height);
                    old.data.copy_from_slice(&f.data);
                    old.seq = f.seq;
                    old.captured_at = f.captured_at;
                }
                None => p.frame = Some(f.clone()),
            }
        }
    }

    /// The latest preview copy, if one was made.
    pub fn preview_frame(&self) -> Option<RgbFrame> {
        self.preview().frame.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn frames_are_copied_for_the_preview_only_while_wanted() {
        let b = StateBoard::default();
        let t = Instant::now();
        let mut f = RgbFrame::new(2, 2);
        b.offer_frame(&f, t);
        assert!(b.preview_frame().is_none(), "copied while nobody wanted it");
        b.want_preview(Duration::from_secs(60));
        f.data[0] = 7;
        b.offer_frame(&f, t);
        assert_eq!(b.preview_frame().unwrap().data[0], 7);
        f.data[0] = 9;
        b.offer_frame(&f, t + PREVIEW_EVERY / 2);
        assert_eq!(
            b.preview_frame().unwrap().data[0],
            7,
            "copied more often than PREVIEW_EVERY"
        );
        b.offer_frame(&f, t + PREVIEW_EVERY);
        assert_eq!(b.preview_frame().unwrap().data[0], 9);
    }

    #[test]
    fn only_real_changes_bump_the_version() {
        let b = StateBoard::default();
        b.update(|s| s.style = "wave".into());
        let (v1, s) = b.snapshot();
        assert_eq!((v1, s.style.as_str()), (1, "wave"));
        b.update(|s| s.style = "wave".into());
        assert_eq!(b.snapshot().0, 1);
    }

    #[test]
    fn a_waiting_observer_wakes_on_a_change_and_times_out_without_one() {
        let b = Arc::new(StateBoard::default());
        assert_eq!(b.wait_newer(0, Duration::from_millis(20)).0, 0);
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.wait_newer(0, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        b.update(|s| s.gallery = true);
        let (v, s) = t.join().unwrap();
        assert_eq!(v, 1);
        assert!(s.gallery);
    }
}
