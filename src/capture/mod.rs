//! Capture stage: where pictures come from.
//!
//! Every source implements [`FrameSource`]; [`open`] builds the one the config names:
//! a V4L2 camera ([`camera`]), a Pi camera module through `rpicam-vid` ([`libcamera`]), one image or a folder of images ([`files`]), a video file
//! ([`video`]: MJPEG stream or Y4M) or a procedurally drawn scene ([`synthetic`]).
//!
//! Error policy: [`CaptureError::is_transient`] tells the caller whether to keep going.
//! A `CorruptFrame` is one bad frame (skip it and count it); `Disconnected` means the camera
//! went away: call `next_frame` again after a backoff and the camera source reopens itself.
//! Everything else is a configuration or file problem that retrying will not fix
//! ([`CaptureError::is_permanent`]), except a camera that is absent or busy, which may come.

pub mod camera;
pub mod convert;
pub mod files;
pub mod libcamera;
pub mod pacing;
pub mod picture;
pub mod synthetic;
pub mod video;

use crate::config::{CameraConfig, SourceKind};
use crate::frame::RgbFrame;
use std::path::{Path, PathBuf};

pub use camera::{list_cameras, CameraInfo, CameraSource};
pub use files::{FolderSource, ImageSource};
pub use pacing::Pacer;
pub use synthetic::{still_scene, Synthetic};
pub use video::{MjpegFileSource, Y4mSource};

/// Largest picture a file source accepts (each side, JPEGs excepted: they are decoded
/// at a reduced size); bigger files are an error, not an OOM.
pub const MAX_IMAGE_SIDE: u32 = picture::MAX_SIDE;
/// Largest allocation a decoder may make for one picture or video frame.
pub const MAX_IMAGE_ALLOC: u64 = picture::MAX_DECODE_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No camera matches what the config asked for.
    #[error("no camera matching {device:?} (found: {available})")]
    NoCamera { device: String, available: String },
    /// The camera exists but could not be opened or configured.
    #[error("cannot open camera {device:?}: {message}")]
    Open { device: String, message: String },
    /// The camera stopped delivering (unplugged, driver error). Transient: retry after a backoff.
    #[error("camera {device:?} disconnected: {message}")]
    Disconnected { device: String, message: String },
    /// One bad frame (corrupt JPEG, short buffer). Transient: skip it and count it.
    #[error("corrupt frame: {what}")]
    CorruptFrame { what: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode {}: {message}", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("no images in {}", path.display())]
    NoImages { path: PathBuf },
    /// The folder's only pictures are still being written (copied in). Transient.
    #[error("the pictures in {} are still being written", path.display())]
    Unsettled { path: PathBuf },
    /// The config names a source that needs a path and has none, or a bad value.
    #[error("capture config: {0}")]
    Config(String),
}

impl CaptureError {
    /// True when the caller should keep the source and call `next_frame` again
    /// (after a backoff for `Disconnected`); false when the source cannot work.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CaptureError::CorruptFrame { .. } | CaptureError::Disconnected { .. }
        )
    }

    /// True when retrying the same configuration cannot help: a missing or unreadable file,
    /// a file that is not a usable picture or video, a bad setting. At start-up these end
    /// `run` with exit 2 (configuration error). A camera that is absent, busy or went away,
    /// and pictures still being copied in, may come back: false.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            CaptureError::Io { .. }
                | CaptureError::Decode { .. }
                | CaptureError::NoImages { .. }
                | CaptureError::Config(_)
        )
    }

    /// True when the caller should wait before retrying (the device is gone for now).
    pub fn needs_backoff(&self) -> bool {
        matches!(self, CaptureError::Disconnected { .. })
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CaptureError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn decode(path: &Path, message: impl ToString) -> Self {
        CaptureError::Decode {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// A source of RGB frames (camera, file, folder, video, synthetic scene).
pub trait FrameSource: Send {
    /// Blocks until the next frame is ready and writes it into `frame`,
    /// reusing its buffer. Sources pace themselves (camera fps, file fps).
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError>;
    /// One line for logs: device/path, chosen mode.
    fn describe(&self) -> String;
}

/// Builds the source the config names. Logs the chosen mode/path.
pub fn open(cfg: &CameraConfig) -> Result<Box<dyn FrameSource>, CaptureError> {
    if cfg.width == 0 || cfg.height == 0 {
        return Err(CaptureError::Config(format!(
            "camera width/height must be > 0 (got {}x{})",
            cfg.width, cfg.height
        )));
    }
    // fps = 0 means "no preference": the default rate.
    let fps = if cfg.fps == 0 { 15 } else { cfg.fps };
    let need_path = |what: &str| {
        cfg.path.clone().ok_or_else(|| {
            CaptureError::Config(format!("camera.source = \"{what}\" needs camera.path"))
        })
    };
    let kind = match cfg.source {
        SourceKind::Auto => resolve_auto(cfg),
        k => k,
    };
    let source: Box<dyn FrameSource> = match kind {
        SourceKind::Auto | SourceKind::Camera => {
            Box::new(CameraSource::open(&CameraConfig { fps, ..cfg.clone() })?)
        }
        SourceKind::Image => Box::new(ImageSource::open(
            &need_path("image")?,
            cfg.width,
            cfg.height,
            fps,
        )?),
        SourceKind::Folder => Box::new(FolderSource::open(
            &need_path("folder")?,
            cfg.width,
            cfg.height,
            fps,
            files::FOLDER_SLIDE,
        )?),
        SourceKind::Video => video::open_video(&need_path("video")?, fps, (cfg.width, cfg.height))?,
        SourceKind::Synthetic => Box::new(Synthetic::new(cfg.width, cfg.height, fps)),
        SourceKind::Libcamera => Box::new(libcamera::LibcameraSource::open(
            libcamera::Settings::from_config(&CameraConfig { fps, ..cfg.clone() })?,
        )?),
    };
    log::info!("capture: {}", source.describe());
    Ok(source)
}

/// What `camera.source = "auto"` stands for on this machine.
fn resolve_auto(cfg: &CameraConfig) -> SourceKind {
    let default_device = cfg.device.trim() == "0";
    let usb = libcamera::usb_camera_present();
    // Only ask libcamera (a second or so) when its answer could matter.
    // Asked again at each reopen: a camera plugged in since is taken.
    let csi = default_device
        && !usb
        && libcamera::list_csi_cameras(&cfg.rpicam_vid).is_ok_and(|(_, c)| !c.is_empty());
    let kind = auto_source(default_device, usb, csi);
    log::info!("camera.source = \"auto\": using {kind:?}");
    kind
}

/// `auto`: a Pi camera module when libcamera sees one, no USB camera is
/// plugged in, and `camera.device` does not name a camera; else V4L2.
pub fn auto_source(device_is_default: bool, usb_camera: bool, csi_camera: bool) -> SourceKind {
    if device_is_default && !usb_camera && csi_camera {
        SourceKind::Libcamera
    } else {
        SourceKind::Camera
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_the_pi_camera_only_when_no_usb_camera_is_there_or_named() {
        assert_eq!(auto_source(true, false, true), SourceKind::Libcamera);
        assert_eq!(
            auto_source(true, true, true),
            SourceKind::Camera,
            "USB plugged in"
        );
        assert_eq!(
            auto_source(false, false, true),
            SourceKind::Camera,
            "a camera named"
        );
        assert_eq!(
            auto_source(true, false, false),
            SourceKind::Camera,
            "no CSI camera"
        );
    }
}
