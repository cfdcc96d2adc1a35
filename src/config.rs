//! Configuration: `config/styleframe.toml`, TOML + serde, every key optional
//! with a default, unknown keys rejected.
//!
//! SCHEMA (fixed). Validation, loading and error reporting are being written.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub models: ModelsConfig,
    pub styles: StylesConfig,
    pub gallery: GalleryConfig,
    pub camera: CameraConfig,
    pub inference: InferenceConfig,
    pub display: DisplayConfig,
    pub button: ButtonConfig,
}

/// Where the network files live.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Folder holding the `.tflite` files named by `models/manifest.toml`.
    pub dir: PathBuf,
    /// Transfer network id from the manifest.
    pub transfer: String,
    /// Prediction network id from the manifest.
    pub predict: String,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: PathBuf::from("models"),
            transfer: "style_transfer_f16_384".into(),
            predict: "style_predict_quantized_256".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StylesConfig {
    /// The embedding set shipped with styleframe.
    pub file: PathBuf,
    /// Optional extra embedding set of the user's own paintings.
    pub user_file: Option<PathBuf>,
    /// Style shown first (name from a set); empty = the first one.
    pub start: String,
    /// 0 = the camera picture's own look, 1 = the painting's full style.
    pub strength: f32,
    /// Seconds a style change takes to morph from the old style to the new.
    pub morph_seconds: f32,
    /// 0 = off; up to 0.9: weight of the previous stylized frame (anti-flicker).
    pub temporal_smoothing: f32,
}

impl Default for StylesConfig {
    fn default() -> Self {
        StylesConfig {
            file: PathBuf::from("models/styles.json"),
            user_file: None,
            start: String::new(),
            strength: 1.0,
            morph_seconds: 1.5,
            temporal_smoothing: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GalleryOrder {
    InOrder,
    Shuffle,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GalleryConfig {
    /// Advance to the next style by itself.
    pub enabled: bool,
    pub interval_minutes: f32,
    pub order: GalleryOrder,
    /// "HH:MM" local time the screen goes dark (capture and inference pause); "" = never.
    pub night_start: String,
    /// "HH:MM" local time the picture comes back.
    pub night_end: String,
}

impl Default for GalleryConfig {
    fn default() -> Self {
        GalleryConfig {
            enabled: false,
            interval_minutes: 10.0,
            order: GalleryOrder::InOrder,
            night_start: String::new(),
            night_end: String::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A V4L2 camera through nokhwa.
    Camera,
    /// One image file, shown as a still scene.
    Image,
    /// A folder of images, cycled.
    Folder,
    /// A video file: MJPEG (.mjpeg/.mjpg, concatenated JPEGs) or Y4M.
    Video,
    /// A slow pan/zoom over a painting drawn by styleframe itself.
    Synthetic,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PixelFormat {
    Auto,
    Mjpeg,
    Yuyv,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    pub source: SourceKind,
    /// Camera index ("0") or a part of its name ("C920"), for `source = "camera"`.
    pub device: String,
    /// File or folder, for the image/folder/video sources.
    pub path: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: PixelFormat,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            source: SourceKind::Camera,
            device: "0".into(),
            path: None,
            width: 640,
            height: 480,
            fps: 15,
            format: PixelFormat::Auto,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// Fill the frame, cropping what sticks out.
    Cover,
    /// Show the whole picture with bars.
    Letterbox,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// Upper bound of network input pixels (H*W); the size follows the screen's aspect.
    pub max_pixels: u32,
    /// Smallest size the pipeline may degrade to when the CPU is slow (H*W).
    pub min_pixels: u32,
    /// Worker threads for the network.
    pub threads: usize,
    /// Upper bound of stylized frames per second (0 = as fast as the CPU allows).
    pub max_fps: f32,
    pub fit: Fit,
    /// Shrink the inference size when one frame takes longer than this (0 = never).
    pub degrade_after_ms: u32,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            max_pixels: 256 * 448,
            min_pixels: 128 * 224,
            threads: 2,
            max_fps: 0.0,
            fit: Fit::Cover,
            degrade_after_ms: 1000,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DisplayBackend {
    /// minifb window (X11), full-screen borderless in a kiosk session.
    Window,
    /// Linux framebuffer device (Pi OS Lite).
    Framebuffer,
    /// No screen: frames kept in memory, PNG snapshots only when asked.
    Headless,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FbFormat {
    Xrgb8888,
    Rgb565,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayConfig {
    pub backend: DisplayBackend,
    /// Screen size; 0 = ask the window system / framebuffer.
    pub width: u32,
    pub height: u32,
    pub fullscreen: bool,
    pub framebuffer: PathBuf,
    pub fb_format: FbFormat,
    /// Redraw rate; cross-fades between stylized frames run at this rate.
    pub fps: u32,
    pub crossfade: bool,
    /// Headless backend: write a PNG snapshot of every Nth shown frame here (unset = never).
    pub snapshot_dir: Option<PathBuf>,
    pub snapshot_every: u32,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            backend: DisplayBackend::Window,
            width: 0,
            height: 0,
            fullscreen: true,
            framebuffer: PathBuf::from("/dev/fb0"),
            fb_format: FbFormat::Xrgb8888,
            fps: 30,
            crossfade: true,
            snapshot_dir: None,
            snapshot_every: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Bias {
    PullUp,
    PullDown,
    Disabled,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LongPressAction {
    PreviousStyle,
    ToggleGallery,
    ToggleBlank,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ButtonConfig {
    pub enabled: bool,
    /// "gpiochip0", or a path like "/dev/gpiochip0".
    pub chip: String,
    /// Line offset ("17") or line name ("GPIO17").
    pub line: String,
    pub active_low: bool,
    pub bias: Bias,
    pub debounce_ms: u32,
    pub long_press_ms: u32,
    pub long_press: LongPressAction,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        ButtonConfig {
            enabled: false,
            chip: "gpiochip0".into(),
            line: "GPIO17".into(),
            active_low: true,
            bias: Bias::PullUp,
            debounce_ms: 30,
            long_press_ms: 1000,
            long_press: LongPressAction::PreviousStyle,
        }
    }
}
