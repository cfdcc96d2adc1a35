//! Still-picture sources: one image file, or a folder of images shown in turn.
//!
//! Pictures are decoded once, through the one decode path of every still picture
//! ([`super::picture`]: strict, EXIF orientation, alpha over white, bounded memory), at the
//! smallest size that still covers the configured capture size, so re-delivering them at
//! the capture rate is a cheap copy. A folder file is taken only once it is complete: left
//! alone for [`SETTLE`] (a file being copied in keeps changing) and decoding cleanly.

use super::pacing::Pacer;
use super::picture::{load_picture, PictureError};
use super::{CaptureError, FrameSource};
use crate::frame::RgbFrame;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long the folder source shows each picture.
pub const FOLDER_SLIDE: Duration = Duration::from_secs(5);

/// A folder file modified more recently than this may still be being written: it waits.
pub const SETTLE: Duration = Duration::from_secs(1);

/// File name extensions the folder source picks up (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif"];

/// Decodes `path` and scales it down so that it just covers `width` x `height`
/// (aspect kept; small pictures are left alone).
pub fn load_image(path: &Path, width: u32, height: u32) -> Result<RgbImage, CaptureError> {
    load_picture(path, Some((width, height))).map_err(|e| match e {
        PictureError::Read { path, source } => CaptureError::Io { path, source },
        e => CaptureError::decode(path, e.reason()),
    })
}

/// True when `path` was last modified at least [`SETTLE`] ago (or its time is unknown).
fn settled(path: &Path) -> bool {
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    match modified {
        Ok(t) => SystemTime::now()
            .duration_since(t)
            .is_ok_and(|age| age >= SETTLE),
        Err(_) => true,
    }
}

fn deliver(img: &RgbImage, seq: &mut u64, frame: &mut RgbFrame) {
    frame.reshape(img.width(), img.height());
    frame.data.copy_from_slice(img.as_raw());
    frame.seq = *seq;
    *seq += 1;
    frame.captured_at = Instant::now();
}

/// One picture re-delivered at `fps`, as a still scene.
pub struct ImageSource {
    path: PathBuf,
    image: RgbImage,
    pacer: Pacer,
    seq: u64,
}

impl ImageSource {
    pub fn open(path: &Path, width: u32, height: u32, fps: u32) -> Result<Self, CaptureError> {
        let image = load_image(path, width, height)?;
        Ok(ImageSource {
            path: path.to_path_buf(),
            image,
            pacer: Pacer::new(fps as f64),
            seq: 0,
        })
    }
}

impl FrameSource for ImageSource {
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError> {
        self.pacer.wait();
        deliver(&self.image, &mut self.seq, frame);
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "image {} ({}x{}, {:.1} fps)",
            self.path.display(),
            self.image.width(),
            self.image.height(),
            1.0 / self.pacer.period().as_secs_f64()
        )
    }
}

/// Lists the pictures in `dir` (by extension), sorted by name.
pub fn scan_folder(dir: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CaptureError::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// All pictures of a folder, each shown for `slide` time, cycling. The folder is re-read at
/// the end of every cycle, so pictures added or removed on a running frame are picked up.
pub struct FolderSource {
    dir: PathBuf,
    files: Vec<PathBuf>,
    /// Index in `files` of the picture after the current one.
    next_index: usize,
    current: Option<(PathBuf, RgbImage)>,
    shown_since: Instant,
    slide: Duration,
    width: u32,
    height: u32,
    pacer: Pacer,
    seq: u64,
}

impl FolderSource {
    pub fn open(
        dir: &Path,
        width: u32,
        height: u32,
        fps: u32,
        slide: Duration,
    ) -> Result<Self, CaptureError> {
        let files = scan_folder(dir)?;
        if files.is_empty() {
            return Err(CaptureError::NoImages {
                path: dir.to_path_buf(),
            });
        }
        let mut source = FolderSource {
            dir: dir.to_path_buf(),
            files,
            next_index: 0,
            current: None,
            shown_since: Instant::now(),
            slide,
            width,
            height,
            pacer: Pacer::new(fps as f64),
            seq: 0,
        };
        // Fail at start-up, not later, when nothing in the folder can be read; files that
        // were just copied in are waited for (once: they settle within SETTLE).
        match source.advance() {
            Err(CaptureError::Unsettled { .. }) => {
                std::thread::sleep(SETTLE + Duration::from_millis(100));
                source.advance()?;
            }
            r => r?,
        }
        Ok(source)
    }

    /// Path of the picture being shown.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|(p, _)| p.as_path())
    }

    /// Loads the next readable picture, skipping unreadable ones with a warning and
    /// leaving files still being written for a later round.
    fn advance(&mut self) -> Result<(), CaptureError> {
        // The rest of this cycle, then (after a rescan) one whole cycle at most.
        let mut unsettled = 0;
        for _pass in 0..2 {
            while self.next_index < self.files.len() {
                let path = self.files[self.next_index].clone();
                self.next_index += 1;
                if !settled(&path) {
                    log::debug!("capture: {} is still changing; later", path.display());
                    unsettled += 1;
                    continue;
                }
                match load_image(&path, self.width, self.height) {
                    Ok(img) => {
                        log::debug!("capture: showing {}", path.display());
                        self.current = Some((path, img));
                        self.shown_since = Instant::now();
                        return Ok(());
                    }
                    Err(e) => log::warn!("capture: skipping unreadable picture: {e}"),
                }
            }
            match scan_folder(&self.dir) {
                Ok(files) => self.files = files,
                // Keep the old list if the folder is briefly unreadable (e.g. a remount).
                Err(e) => log::warn!("capture: {e}"),
            }
            self.next_index = 0;
        }
        // Nothing readable now; keep showing the last good picture if there is one.
        if self.current.is_some() {
            self.shown_since = Instant::now();
            return Ok(());
        }
        if unsettled > 0 {
            return Err(CaptureError::Unsettled {
                path: self.dir.clone(),
            });
        }
        Err(CaptureError::NoImages {
            path: self.dir.clone(),
        })
    }
}

impl FrameSource for FolderSource {
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError> {
        self.pacer.wait();
        if self.current.is_none() || self.shown_since.elapsed() >= self.slide {
            self.advance()?;
        }
        let Some((_, img)) = self.current.as_ref() else {
            return Err(CaptureError::NoImages {
                path: self.dir.clone(),
            });
        };
        deliver(img, &mut self.seq, frame);
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "folder {} ({} pictures, {:.0} s each, {:.1} fps)",
            self.dir.display(),
            self.files.len(),
            self.slide.as_secs_f64(),
            1.0 / self.pacer.period().as_secs_f64()
        )
    }
}
