//! What the frame is doing, published for observers that live off the frame
//! path (the control page, MQTT). The display loop writes it on every change,
//! whatever caused it; observers read snapshots or wait for a newer version.
//! Writers never wait on readers: the lock is held only to copy a few fields.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

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
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
