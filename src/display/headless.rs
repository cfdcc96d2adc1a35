//! Headless backend: no screen. The latest picture is kept in memory, readable
//! from any thread through a [`HeadlessHandle`]; PNG snapshots are written only
//! when `display.snapshot_dir` is set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::DisplayConfig;
use crate::frame::Command;

use super::{check_size, DisplayError, PowerMode, Screen};

/// Screen size used when the config leaves it at 0 (nothing to ask).
pub const DEFAULT_SIZE: (usize, usize) = (1280, 720);

/// Counters of a headless screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadlessStats {
    /// Pictures passed to `present`.
    pub frames_presented: u64,
    /// True after `blank` until the next `present`.
    pub blanked: bool,
    /// PNG files written.
    pub snapshots_written: u64,
    /// True after `set_power(false)` until `set_power(true)`: the panel would be off.
    pub powered_off: bool,
    /// How many times `set_power(false)` powered the panel down.
    pub power_offs: u64,
    /// Snapshots that could not be written (full disk, read-only folder):
    /// logged, and the frame counts as shown all the same.
    pub snapshots_failed: u64,
}

#[derive(Default)]
struct Shared {
    latest: Option<Vec<u32>>,
    stats: HeadlessStats,
    /// Commands injected by a test (stands in for a keyboard).
    commands: Vec<Command>,
    closed: bool,
}

/// Cloneable, `Send` view of a headless screen.
#[derive(Clone)]
pub struct HeadlessHandle {
    shared: Arc<Mutex<Shared>>,
    size: (usize, usize),
}

impl HeadlessHandle {
    /// A copy of the last presented picture (all zeros after `blank`), `None` before the first.
    pub fn latest(&self) -> Option<Vec<u32>> {
        self.lock().latest.clone()
    }

    pub fn stats(&self) -> HeadlessStats {
        self.lock().stats
    }

    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// Queues a command as if typed on a keyboard (returned by the next `poll_commands`).
    pub fn inject(&self, cmd: Command) {
        self.lock().commands.push(cmd);
    }

    /// Makes `is_open` return false, as if the user closed the window.
    pub fn close(&self) {
        self.lock().closed = true;
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock cannot leave the data inconsistent
        // (plain copies), so a poisoned lock is still usable.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct HeadlessScreen {
    handle: HeadlessHandle,
    snapshot_dir: Option<PathBuf>,
    snapshot_every: u64,
    /// Reused RGB buffer for PNG encoding.
    rgb: Vec<u8>,
    /// Reused buffer for the encoded PNG.
    png: Vec<u8>,
    dir_created: bool,
    /// When a snapshot failure was last logged (one line a minute at most).
    last_failure_log: Option<Instant>,
}

/// Snapshot failures are logged at most this often (a full disk would
/// otherwise log every frame).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Opens a headless screen and returns it with the handle that reads it.
/// Size: `cfg.width`x`cfg.height`, or [`DEFAULT_SIZE`] where they are 0.
pub fn open_headless(cfg: &DisplayConfig) -> (Box<dyn Screen>, HeadlessHandle) {
    let screen = HeadlessScreen::new(cfg);
    let handle = screen.handle();
    (Box::new(screen), handle)
}

impl HeadlessScreen {
    pub fn new(cfg: &DisplayConfig) -> Self {
        let w = if cfg.width > 0 {
            cfg.width as usize
        } else {
            DEFAULT_SIZE.0
        };
        let h = if cfg.height > 0 {
            cfg.height as usize
        } else {
            DEFAULT_SIZE.1
        };
        HeadlessScreen {
            handle: HeadlessHandle {
                shared: Arc::new(Mutex::new(Shared::default())),
                size: (w, h),
            },
            snapshot_dir: cfg.snapshot_dir.clone(),
            snapshot_every: cfg.snapshot_every.max(1) as u64,
            rgb: Vec::new(),
            png: Vec::new(),
            dir_created: false,
            last_failure_log: None,
        }
    }

    pub fn handle(&self) -> HeadlessHandle {
        self.handle.clone()
    }

    fn write_snapshot(&mut self, dir: &Path, n: u64, pixels: &[u32]) -> Result<(), DisplayError> {
        if !self.dir_created {
            std::fs::create_dir_all(dir).map_err(|source| DisplayError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            self.dir_created = true;
        }
        let path = dir.join(format!("frame_{n:06}.png"));
        self.rgb.clear();
        self.rgb
            .extend(pixels.iter().flat_map(|&p| crate::frame::unpack_rgb(p)));
        let (w, h) = self.handle.size;
        let failed = |message: String| DisplayError::Snapshot {
            path: path.clone(),
            message,
        };
        self.png.clear();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut self.png),
            &self.rgb,
            w as u32,
            h as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| failed(e.to_string()))?;
        // Atomic: a full disk leaves no cut-off PNG behind.
        crate::atomic::write(&path, &self.png).map_err(|e| failed(e.to_string()))?;
        log::debug!("snapshot {}", path.display());
        Ok(())
    }

    /// A snapshot is a by-product: its failure is counted and logged (once a
    /// minute at most, with how many failed meanwhile), never the screen's.
    fn snapshot_failed(&mut self, e: DisplayError) {
        let failed = {
            let mut s = self.handle.lock();
            s.stats.snapshots_failed += 1;
            s.stats.snapshots_failed
        };
        let now = Instant::now();
        if self
            .last_failure_log
            .is_none_or(|t| now.duration_since(t) >= FAILURE_LOG_EVERY)
        {
            self.last_failure_log = Some(now);
            log::error!(
                "{e} ({failed} snapshot(s) failed so far; the picture is shown regardless)"
            );
        }
    }
}

impl Screen for HeadlessScreen {
    fn size(&self) -> (usize, usize) {
        self.handle.size
    }

    /// Stores the picture; when snapshots are on, every Nth one is also saved
    /// as PNG (a failure there is logged, and the picture is shown regardless).
    fn present(&mut self, pixels: &[u32]) -> Result<(), DisplayError> {
        let (w, h) = self.handle.size;
        check_size(pixels, w, h)?;
        let n = {
            let mut s = self.handle.lock();
            match &mut s.latest {
                // Reuse the stored buffer: no allocation per frame.
                Some(buf) => buf.copy_from_slice(pixels),
                None => s.latest = Some(pixels.to_vec()),
            }
            s.stats.frames_presented += 1;
            s.stats.blanked = false;
            s.stats.frames_presented
        };
        if let Some(dir) = self.snapshot_dir.clone() {
            if n % self.snapshot_every == 0 {
                match self.write_snapshot(&dir, n, pixels) {
                    Ok(()) => self.handle.lock().stats.snapshots_written += 1,
                    Err(e) => self.snapshot_failed(e),
                }
            }
        }
        Ok(())
    }

    fn blank(&mut self) -> Result<(), DisplayError> {
        let (w, h) = self.handle.size;
        let mut s = self.handle.lock();
        match &mut s.latest {
            Some(buf) => buf.fill(0),
            None => s.latest = Some(vec![0; w * h]),
        }
        s.stats.blanked = true;
        Ok(())
    }

    /// Records the power state (daemon tests read it); off also blanks the picture.
    fn set_power(&mut self, on: bool) -> Result<PowerMode, DisplayError> {
        if !on {
            self.blank()?;
        }
        let mut s = self.handle.lock();
        if !on && !s.stats.powered_off {
            s.stats.power_offs += 1;
        }
        s.stats.powered_off = !on;
        Ok(if on { PowerMode::On } else { PowerMode::Off })
    }

    fn poll_commands(&mut self, out: &mut Vec<Command>) {
        out.append(&mut self.handle.lock().commands);
    }

    fn is_open(&self) -> bool {
        !self.handle.lock().closed
    }
}
