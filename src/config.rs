//! Configuration: `config/styleframe.toml`, TOML + serde, every key optional
//! with a default, unknown keys rejected.
//!
//! The schema (field names and types) is fixed; other modules code against it.
//! [`Config::load`] reads, parses and validates a file; every error names the
//! file, the dotted key (`camera.width`) and what would have been accepted,
//! because the reader is a gallery owner editing the file over SSH, not a
//! Rust programmer.

use chrono::NaiveTime;
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};

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
    pub mqtt: MqttConfig,
    pub remote: RemoteConfig,
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
            temporal_smoothing: 0.5,
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
    /// Minutes each style stays up in gallery mode (0.1 ..= 1440).
    pub interval_minutes: f32,
    /// Gallery walks the styles in order or shuffled.
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
    /// A Pi camera module (libcamera) when one is connected and no USB camera
    /// is plugged in or named, else a V4L2 camera.
    Auto,
    /// A V4L2 camera through nokhwa.
    Camera,
    /// A Pi camera module (CSI) through libcamera's `rpicam-vid`.
    Libcamera,
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
    /// Where pictures come from.
    pub source: SourceKind,
    /// Camera index ("0") or a part of its name ("C920"), for `source = "camera"`.
    pub device: String,
    /// File or folder, for the image/folder/video sources.
    pub path: Option<PathBuf>,
    /// Requested capture size (the camera may pick the nearest it supports).
    pub width: u32,
    pub height: u32,
    /// Requested capture rate.
    pub fps: u32,
    /// Camera pixel format; `auto` lets the driver choose.
    pub format: PixelFormat,
    /// libcamera source: the `rpicam-vid` program; "" = rpicam-vid, then libcamera-vid, on PATH.
    pub rpicam_vid: String,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            source: SourceKind::Auto,
            device: "0".into(),
            path: None,
            width: 640,
            height: 480,
            fps: 15,
            format: PixelFormat::Auto,
            rpicam_vid: String::new(),
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

/// Ceiling of `inference.max_pixels` (1024 x 768): the transfer network takes ~270 bytes
/// per pixel (216 MB peak for `still`, 259-311 MiB for `run` at this size, measured),
/// which fits the ~400 MiB a 512 MB Pi Zero 2 W has free beside its system.
/// The old ceiling, 4000000 pixels, took 719 MB in `run`.
/// The range of `styles.strength` (and of the control page's slider).
pub const STRENGTH: (f32, f32) = (0.0, 1.0);
/// The range of `styles.morph_seconds` (and of the control page's).
pub const MORPH_SECONDS: (f32, f32) = (0.0, 60.0);

/// Most inference threads (`inference.threads`, `still`/`bench --threads`).
pub const MAX_THREADS: u64 = 64;

pub const MAX_PIXELS_CEILING: u32 = 1024 * 768;

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
    /// How the camera picture is fitted to the screen's aspect.
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
    /// A window when a desktop runs (`WAYLAND_DISPLAY` or `DISPLAY` set), else
    /// KMS when a DRM card drives a connected screen, else the framebuffer:
    /// one config serves a desktop kiosk and Pi OS Lite.
    Auto,
    /// KMS/DRM: dumb buffers flipped on vblank, the connector powered off at night.
    Kms,
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
    /// Window backend: borderless full-screen window.
    pub fullscreen: bool,
    /// Framebuffer backend: the device to draw on.
    pub framebuffer: PathBuf,
    /// Framebuffer backend: pixel layout of the device.
    pub fb_format: FbFormat,
    /// KMS backend: the DRM card ("card1" or "/dev/dri/card1"); "" = probe them all.
    pub card: String,
    /// KMS backend: the connector ("HDMI-A-1", "DSI-1"); "" = the first connected one.
    pub connector: String,
    /// KMS backend: the mode ("1920x1080" or "1920x1080@60"); "" = the screen's preferred one.
    pub mode: String,
    /// Redraw rate; cross-fades between stylized frames run at this rate.
    pub fps: u32,
    /// Blend from one stylized frame to the next instead of cutting.
    pub crossfade: bool,
    /// Headless backend: write a PNG snapshot of every Nth shown frame here (unset = never).
    pub snapshot_dir: Option<PathBuf>,
    /// Snapshot every Nth shown frame (1 = every frame).
    pub snapshot_every: u32,
    /// Presence: power the screen down after this many minutes without
    /// motion in front of the camera, wake it on motion (0 = off).
    pub sleep_after_still_minutes: u32,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            backend: DisplayBackend::Auto,
            width: 0,
            height: 0,
            fullscreen: true,
            framebuffer: PathBuf::from("/dev/fb0"),
            fb_format: FbFormat::Xrgb8888,
            card: String::new(),
            connector: String::new(),
            mode: String::new(),
            fps: 30,
            crossfade: true,
            snapshot_dir: None,
            snapshot_every: 1,
            sleep_after_still_minutes: 0,
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
    /// Show the pairing QR code (the control page).
    Pair,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ButtonConfig {
    /// Watch a GPIO push-button.
    pub enabled: bool,
    /// "gpiochip0", or a path like "/dev/gpiochip0".
    pub chip: String,
    /// Line offset ("17") or line name ("GPIO17").
    pub line: String,
    /// The button pulls the line to ground when pressed (the usual wiring).
    pub active_low: bool,
    /// Internal pull resistor on the line.
    pub bias: Bias,
    /// Ignore contact bounce shorter than this.
    pub debounce_ms: u32,
    /// A press held at least this long is a long press.
    pub long_press_ms: u32,
    /// What a long press does (a short press always shows the next style).
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

/// Home Assistant over MQTT (issue #12): nothing connects unless `enabled`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub enabled: bool,
    /// "mqtt://host:1883" or "mqtts://host:8883" (TLS, rustls).
    pub broker: String,
    /// Broker user name; empty = none.
    pub username: String,
    /// Broker password; prefer `password_file` (readable by the service only).
    pub password: String,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) for mqtts://.
    pub ca_file: PathBuf,
    /// Client id and topic part (`styleframe/<device_id>/...`); empty = the host name.
    pub device_id: String,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// Frames with the same group follow one another's style changes; empty = none.
    pub group: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            broker: "mqtt://localhost:1883".into(),
            username: String::new(),
            password: String::new(),
            password_file: None,
            ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            device_id: String::new(),
            discovery_prefix: "homeassistant".into(),
            group: String::new(),
        }
    }
}

/// The control page (issue #12): nothing listens unless `enabled`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteConfig {
    /// Serve the control page.
    pub enabled: bool,
    /// Address and port to listen on, e.g. "0.0.0.0:8080".
    pub listen: String,
    /// Where the pairing token, the user styles (unless styles.user_file is
    /// set) and the preview tiles live; empty: `$STATE_DIRECTORY`, else
    /// /var/lib/styleframe when it exists, else ~/.local/state/styleframe.
    pub state_dir: PathBuf,
    /// Largest painting upload, in MiB.
    pub max_upload_mb: u32,
    /// Connections served at once; more get "503 busy".
    pub max_connections: u32,
    /// Serve the stylized frame (never the camera picture) to paired phones.
    pub preview: bool,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            enabled: false,
            listen: "0.0.0.0:8080".into(),
            state_dir: PathBuf::new(),
            max_upload_mb: 12,
            max_connections: 16,
            preview: false,
        }
    }
}

/// The parts of an MQTT broker address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Parses "mqtt://host[:port]" or "mqtts://host[:port]" (ports default to 1883 and 8883).
pub fn parse_broker(s: &str) -> Result<BrokerAddr, String> {
    let (tls, rest) = if let Some(r) = s.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err("mqtt://host:port or mqtts://host:port".into());
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // "[v6]:port" keeps the colons of an IPv6 address out of the port.
    let (host, port) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((h, after)) => (
            h,
            (!after.is_empty()).then(|| after.strip_prefix(':').unwrap_or(after)),
        ),
        None => match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or("a port 1 ..= 65535")?,
        None if tls => 8883,
        None => 1883,
    };
    let ok = |c: char| c.is_ascii_alphanumeric() || ".-:_".contains(c);
    if host.is_empty() || !host.chars().all(ok) {
        return Err("a host name or IP address, no user, path or query".into());
    }
    Ok(BrokerAddr {
        tls,
        host: host.into(),
        port,
    })
}

/// Topic-safe names: letters, digits, `_` and `-`.
fn topic_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl MqttConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = parse_broker(&self.broker) {
            return Err(invalid("mqtt.broker", quote(&self.broker), e));
        }
        let name = "1 to 64 letters, digits, '_' or '-'";
        if !self.device_id.is_empty() && !topic_name_ok(&self.device_id) {
            return Err(invalid("mqtt.device_id", quote(&self.device_id), name));
        }
        if !self.group.is_empty() && !topic_name_ok(&self.group) {
            return Err(invalid("mqtt.group", quote(&self.group), name));
        }
        if !topic_name_ok(&self.discovery_prefix) {
            return Err(invalid(
                "mqtt.discovery_prefix",
                quote(&self.discovery_prefix),
                name,
            ));
        }
        if !self.password.is_empty() && self.password_file.is_some() {
            return Err(invalid(
                "mqtt.password_file",
                "set together with mqtt.password",
                "one of mqtt.password and mqtt.password_file",
            ));
        }
        Ok(())
    }
}

impl RemoteConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "remote.listen",
                quote(&self.listen),
                "an address and port such as \"0.0.0.0:8080\" or \"[::]:8080\"",
            ));
        }
        int_key("remote.max_upload_mb", self.max_upload_mb)?;
        int_key("remote.max_connections", self.max_connections)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Loading, validation and error reporting
// ---------------------------------------------------------------------------

/// What went wrong with a config file. Every variant names the file; `Parse`
/// and `Invalid` also name the key, so the message alone says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, permissions, a folder...).
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type. `message`
    /// starts with "line L, column C:" and ends with the offending line.
    #[error("{}{message}", path_prefix(path))]
    Parse { path: PathBuf, message: String },
    /// A well-formed value outside what styleframe accepts.
    #[error(
        "{}{key} = {value} is {}: expected {expected}",
        path_prefix(path),
        invalid_kind(expected)
    )]
    Invalid {
        path: PathBuf,
        /// Dotted key, e.g. `styles.strength`.
        key: String,
        /// The value as it would be written in the file, e.g. `1.7` or `"25:00"`.
        value: String,
        /// What is accepted, e.g. `0.0 ..= 1.0`.
        expected: String,
    },
}

impl ConfigError {
    /// The same error, reported against `path` (used for errors from
    /// [`Config::validate`], which does not know which file it checks).
    pub fn with_path(mut self, new_path: &Path) -> Self {
        match &mut self {
            ConfigError::Read { path, .. }
            | ConfigError::Parse { path, .. }
            | ConfigError::Invalid { path, .. } => *path = new_path.to_path_buf(),
        }
        self
    }

    /// The dotted key the error is about, for `Invalid` errors.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// `"<path>: "`, or nothing when the config did not come from a file.
fn path_prefix(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!("{}: ", path.display())
    }
}

/// A range violation reads "is out of range"; anything else (a missing path,
/// a malformed time) reads "is not valid".
fn invalid_kind(expected: &str) -> &'static str {
    if expected.contains("..=") {
        "out of range"
    } else {
        "not valid"
    }
}

impl Config {
    /// Reads, parses and validates the config file at `path`. Relative paths
    /// inside are left as written; see [`Config::resolve_relative`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "line {line}: the file is not UTF-8 text (an accented letter saved \
                     in another encoding?); save it as UTF-8"
                ),
            }
        })?;
        let config = Self::from_toml_str(&text, path)?;
        log::debug!("config loaded from {}", path.display());
        Ok(config)
    }

    /// Parses and validates TOML text; `origin` is only used in error messages.
    /// An empty text gives [`Config::default`].
    pub fn from_toml_str(s: &str, origin: &Path) -> Result<Config, ConfigError> {
        // Editors on Windows like to prepend a byte-order mark; TOML does not allow it.
        let s = s.strip_prefix('\u{feff}').unwrap_or(s);
        let config: Config = toml::from_str(s).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: describe_toml_error(s, &e),
        })?;
        config.validate().map_err(|e| e.with_path(origin))?;
        Ok(config)
    }

    /// Checks every value against its valid range and the rules that tie keys
    /// together. Reports the first problem, in file order. The error's path is
    /// empty; [`Config::from_toml_str`] fills it in.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.models.validate()?;
        self.styles.validate()?;
        self.gallery.validate()?;
        self.camera.validate()?;
        self.inference.validate()?;
        self.display.validate()?;
        self.button.validate()?;
        self.mqtt.validate()?;
        self.remote.validate()?;
        Ok(())
    }

    /// Makes the relative file paths (models.dir, styles.file, styles.user_file,
    /// camera.path, display.snapshot_dir) relative to `base` instead of the
    /// working directory, which under systemd is `/`. Absolute and empty paths
    /// are left alone.
    pub fn resolve_relative(&mut self, base: &Path) {
        fn fix(p: &mut PathBuf, base: &Path) {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        }
        fix(&mut self.models.dir, base);
        fix(&mut self.styles.file, base);
        if let Some(p) = &mut self.styles.user_file {
            fix(p, base);
        }
        if let Some(p) = &mut self.camera.path {
            fix(p, base);
        }
        if let Some(p) = &mut self.display.snapshot_dir {
            fix(p, base);
        }
        if let Some(p) = &mut self.mqtt.password_file {
            fix(p, base);
        }
        fix(&mut self.mqtt.ca_file, base);
        fix(&mut self.remote.state_dir, base);
    }
}

impl ModelsConfig {
    /// The network ids must be in the manifest built into the binary, each
    /// in its role: a typo is a configuration error, not a damaged model.
    fn validate(&self) -> Result<(), ConfigError> {
        let manifest = crate::models::Manifest::builtin();
        for (key, id, role) in [
            ("models.transfer", &self.transfer, "transfer"),
            ("models.predict", &self.predict, "predict"),
        ] {
            let ids: Vec<String> = manifest
                .model
                .iter()
                .filter(|m| m.role == role)
                .map(|m| quote(&m.id))
                .collect();
            if !ids.contains(&quote(id)) {
                return Err(invalid(
                    key,
                    quote(id),
                    format!("one of {} (see models/manifest.toml)", ids.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

impl StylesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        float_in("styles.strength", self.strength, STRENGTH.0, STRENGTH.1)?;
        float_in(
            "styles.morph_seconds",
            self.morph_seconds,
            MORPH_SECONDS.0,
            MORPH_SECONDS.1,
        )?;
        float_in(
            "styles.temporal_smoothing",
            self.temporal_smoothing,
            0.0,
            0.9,
        )?;
        Ok(())
    }
}

/// Accepted spelling of a night time, shared by validation and [`parse_hhmm`].
const HHMM_EXPECTED: &str =
    "a time \"HH:MM\" on the 24-hour clock, from \"00:00\" to \"23:59\", or \"\" for never";

/// Parses a 24-hour "HH:MM" time of day ("07:30", "7:30", "23:59").
/// The error text says what was wrong and what is accepted.
pub fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    let bad =
        || format!("{s:?} is not a time of day: expected \"HH:MM\" from \"00:00\" to \"23:59\"");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

impl GalleryConfig {
    /// The night (screen dark) window as (start, end), or `None` when no valid
    /// window is configured. `start > end` means the window wraps midnight.
    pub fn night_window(&self) -> Option<(NaiveTime, NaiveTime)> {
        let start = parse_hhmm(&self.night_start).ok()?;
        let end = parse_hhmm(&self.night_end).ok()?;
        (start != end).then_some((start, end))
    }

    /// Whether `now` (local time) falls in the night window: start inclusive,
    /// end exclusive. Always false without a window.
    pub fn is_night(&self, now: NaiveTime) -> bool {
        match self.night_window() {
            Some((start, end)) if start < end => start <= now && now < end,
            // Wraps midnight, e.g. 23:00-07:00.
            Some((start, end)) => now >= start || now < end,
            None => false,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        float_in(
            "gallery.interval_minutes",
            self.interval_minutes,
            0.1,
            1440.0,
        )?;
        let parse = |key: &str, s: &str| -> Result<Option<NaiveTime>, ConfigError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            parse_hhmm(s)
                .map(Some)
                .map_err(|_| invalid(key, quote(s), HHMM_EXPECTED))
        };
        let start = parse("gallery.night_start", &self.night_start)?;
        let end = parse("gallery.night_end", &self.night_end)?;
        match (start, end) {
            (Some(_), None) => Err(invalid(
                "gallery.night_end",
                quote(&self.night_end),
                "a time \"HH:MM\" too, because gallery.night_start is set \
                 (leave both empty for a screen that never goes dark)",
            )),
            (None, Some(_)) => Err(invalid(
                "gallery.night_start",
                quote(&self.night_start),
                "a time \"HH:MM\" too, because gallery.night_end is set \
                 (leave both empty for a screen that never goes dark)",
            )),
            (Some(s), Some(e)) if s == e => Err(invalid(
                "gallery.night_end",
                quote(&self.night_end),
                format!(
                    "a time different from gallery.night_start ({})",
                    quote(&self.night_start)
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The TOML spelling of a source, for messages.
fn source_name(source: SourceKind) -> &'static str {
    match source {
        SourceKind::Auto => "auto",
        SourceKind::Camera => "camera",
        SourceKind::Libcamera => "libcamera",
        SourceKind::Image => "image",
        SourceKind::Folder => "folder",
        SourceKind::Video => "video",
        SourceKind::Synthetic => "synthetic",
    }
}

impl CameraConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        int_key("camera.width", self.width)?;
        int_key("camera.height", self.height)?;
        int_key("camera.fps", self.fps)?;
        let needs_path = match self.source {
            SourceKind::Image => Some("the image file to show"),
            SourceKind::Folder => Some("the folder of images to show"),
            SourceKind::Video => Some("the video file to play (.mjpeg, .mjpg or .y4m)"),
            SourceKind::Auto
            | SourceKind::Camera
            | SourceKind::Libcamera
            | SourceKind::Synthetic => None,
        };
        if let Some(what) = needs_path {
            let value = match &self.path {
                None => Some("(not set)".to_string()),
                Some(p) if p.as_os_str().is_empty() => Some(quote("")),
                Some(_) => None,
            };
            if let Some(value) = value {
                return Err(invalid(
                    "camera.path",
                    value,
                    format!(
                        "{what}, because camera.source = {}",
                        quote(source_name(self.source))
                    ),
                ));
            }
        }
        if matches!(self.source, SourceKind::Camera | SourceKind::Auto)
            && self.device.trim().is_empty()
        {
            return Err(invalid(
                "camera.device",
                quote(&self.device),
                format!(
                    "a camera index such as \"0\" or part of its name such as \"C920\", \
                     because camera.source = {}",
                    quote(source_name(self.source))
                ),
            ));
        }
        if self.source == SourceKind::Libcamera && self.device.trim().parse::<u32>().is_err() {
            return Err(invalid(
                "camera.device",
                quote(&self.device),
                "a camera index such as \"0\" (see `rpicam-vid --list-cameras`), \
                 because camera.source = \"libcamera\"",
            ));
        }
        Ok(())
    }
}

impl InferenceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        int_key("inference.max_pixels", self.max_pixels)?;
        if !(4096..=self.max_pixels).contains(&self.min_pixels) {
            return Err(invalid(
                "inference.min_pixels",
                self.min_pixels.to_string(),
                format!("4096 ..= {} (inference.max_pixels)", self.max_pixels),
            ));
        }
        int_key("inference.threads", self.threads as u64)?;
        float_in("inference.max_fps", self.max_fps, 0.0, 120.0)?;
        int_key("inference.degrade_after_ms", self.degrade_after_ms)?;
        Ok(())
    }
}

impl DisplayConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        const SIZE: &str = "0 (ask the screen) or 16 ..= 16384";
        for (key, v) in [
            ("display.width", self.width),
            ("display.height", self.height),
        ] {
            if v != 0 && !(16..=16384).contains(&v) {
                return Err(invalid(key, v.to_string(), SIZE));
            }
        }
        // Half a size is most likely a typo; refuse rather than guess.
        if (self.width == 0) != (self.height == 0) {
            let (zero, set) = if self.width == 0 {
                ("display.width", "display.height")
            } else {
                ("display.height", "display.width")
            };
            return Err(invalid(
                zero,
                "0",
                format!(
                    "16 ..= 16384 as well, because {set} is set \
                     (or 0 for both to ask the screen)"
                ),
            ));
        }
        if self.backend == DisplayBackend::Framebuffer && self.framebuffer.as_os_str().is_empty() {
            return Err(invalid(
                "display.framebuffer",
                quote(""),
                "a framebuffer device such as \"/dev/fb0\", because display.backend = \"framebuffer\"",
            ));
        }
        if !self.mode.is_empty() && parse_mode(&self.mode).is_none() {
            return Err(invalid(
                "display.mode",
                quote(&self.mode),
                "\"WIDTHxHEIGHT\" or \"WIDTHxHEIGHT@HZ\" such as \"1920x1080@60\", \
                 or \"\" for the screen's preferred mode",
            ));
        }
        int_key("display.fps", self.fps)?;
        if matches!(&self.snapshot_dir, Some(p) if p.as_os_str().is_empty()) {
            return Err(invalid(
                "display.snapshot_dir",
                quote(""),
                "a folder path, or no snapshot_dir line at all for no snapshots",
            ));
        }
        if self.snapshot_every < 1 {
            return Err(invalid(
                "display.snapshot_every",
                self.snapshot_every.to_string(),
                "1 or more (1 = every shown frame)",
            ));
        }
        int_key(
            "display.sleep_after_still_minutes",
            self.sleep_after_still_minutes,
        )?;
        Ok(())
    }
}

/// `"1920x1080"` or `"1920x1080@60"` as (width, height, refresh or None).
pub fn parse_mode(s: &str) -> Option<(u32, u32, Option<u32>)> {
    let (size, hz) = match s.split_once('@') {
        Some((size, hz)) => (size, Some(hz.trim().parse().ok().filter(|&h| h > 0)?)),
        None => (s, None),
    };
    let (w, h) = size.split_once(['x', 'X'])?;
    let (w, h): (u32, u32) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0 && h > 0).then_some((w, h, hz))
}

impl ButtonConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.chip.trim().is_empty() {
            return Err(invalid(
                "button.chip",
                quote(&self.chip),
                "a GPIO chip such as \"gpiochip0\" or \"/dev/gpiochip0\"",
            ));
        }
        if self.line.trim().is_empty() {
            return Err(invalid(
                "button.line",
                quote(&self.line),
                "a line number such as \"17\" or a line name such as \"GPIO17\"",
            ));
        }
        int_key("button.debounce_ms", self.debounce_ms)?;
        int_key("button.long_press_ms", self.long_press_ms)?;
        if self.long_press_ms <= self.debounce_ms {
            return Err(invalid(
                "button.long_press_ms",
                self.long_press_ms.to_string(),
                format!(
                    "more than button.debounce_ms ({}), within 100 ..= 10000",
                    self.debounce_ms
                ),
            ));
        }
        Ok(())
    }
}

fn invalid(key: &str, value: impl Into<String>, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: PathBuf::new(),
        key: key.to_string(),
        value: value.into(),
        expected: expected.into(),
    }
}

/// A string as it would be written in TOML.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// A float as it would be written in TOML (`1.0`, `nan`, `inf`).
fn toml_float(v: f32) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

fn float_in(key: &str, v: f32, lo: f32, hi: f32) -> Result<(), ConfigError> {
    let range = format!("{lo:?} ..= {hi:?}");
    if !v.is_finite() {
        return Err(invalid(
            key,
            toml_float(v),
            format!("a finite number in {range}"),
        ));
    }
    if v < lo || v > hi {
        return Err(invalid(key, toml_float(v), range));
    }
    Ok(())
}

/// The whole-number keys with a plain range: checked by `validate`, and
/// quoted when a value does not even fit the type (`-1`, `99999999999`), so
/// both say the same range.
const INT_RANGES: &[(&str, u64, u64)] = &[
    ("camera.width", 16, 7680),
    ("camera.height", 16, 4320),
    ("camera.fps", 1, 120),
    ("inference.max_pixels", 4096, MAX_PIXELS_CEILING as u64),
    ("inference.threads", 1, MAX_THREADS),
    ("inference.degrade_after_ms", 0, 60_000),
    ("display.fps", 1, 240),
    ("display.sleep_after_still_minutes", 0, 1440),
    ("remote.max_upload_mb", 1, 64),
    ("remote.max_connections", 2, 256),
    ("button.debounce_ms", 0, 1000),
    ("button.long_press_ms", 100, 10_000),
];

/// What a whole-number key accepts, in the words `validate` uses.
fn int_expected(key: &str) -> Option<String> {
    if let Some((_, lo, hi)) = INT_RANGES.iter().find(|(k, _, _)| *k == key) {
        return Some(format!("{lo} ..= {hi}"));
    }
    match key {
        "inference.min_pixels" => Some("4096 ..= inference.max_pixels".into()),
        "display.width" | "display.height" => Some("0 (ask the screen) or 16 ..= 16384".into()),
        "display.snapshot_every" => Some("1 or more (1 = every shown frame)".into()),
        _ => None,
    }
}

fn int_key(key: &str, v: impl Into<u64>) -> Result<(), ConfigError> {
    let (_, lo, hi) = INT_RANGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .copied()
        .unwrap_or_else(|| panic!("{key} has no entry in INT_RANGES"));
    let v = v.into();
    if v < lo || v > hi {
        return Err(invalid(key, v.to_string(), format!("{lo} ..= {hi}")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Turning toml/serde errors into something a gallery owner can act on
// ---------------------------------------------------------------------------

/// "line L, column C: <what is wrong, naming the dotted key>" followed by the
/// offending line with a caret marker.
fn describe_toml_error(src: &str, err: &toml::de::Error) -> String {
    let raw = err.message().trim();
    let Some(span) = err.span() else {
        return humanize(raw, None);
    };
    let start = floor_char_boundary(src, span.start.min(src.len()));
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    let line_text = src[line_start..line_end].trim_end_matches('\r');
    let line_no = src[..line_start].matches('\n').count() + 1;
    let col = src[line_start..start].chars().count() + 1;
    let end = floor_char_boundary(src, span.end.clamp(start, line_end));
    let width = src[start..end].chars().count().max(1);

    let key = key_path_at(src, line_start, line_text);
    let what = humanize(raw, key.as_deref());
    let gutter = " ".repeat(line_no.to_string().len());
    format!(
        "line {line_no}, column {col}: {what}\n {line_no} | {line_text}\n {gutter} | {}{}",
        " ".repeat(col - 1),
        "^".repeat(width)
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Best-effort dotted key for an error on the line starting at `line_start`:
/// the enclosing `[section]` plus the key left of `=`, or the
/// header itself when the error sits on a `[section]` line. Good enough for
/// the flat files styleframe uses; `None` when unsure.
fn key_path_at(src: &str, line_start: usize, line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        return header_name(trimmed);
    }
    let eq = line.find('=')?;
    let key = clean_dotted(&line[..eq])?;
    let section = src[..line_start]
        .lines()
        .rev()
        .find_map(|l| {
            let t = l.trim_start();
            t.starts_with('[').then(|| header_name(t))
        })
        .flatten();
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key,
    })
}

/// `[ camera ]` / `[[x]]` / `["a".b]` -> `camera` / `x` / `a.b`.
fn header_name(header: &str) -> Option<String> {
    let inner = header.trim_start_matches('[');
    let inner = &inner[..inner.find(']')?];
    clean_dotted(inner)
}

fn clean_dotted(key: &str) -> Option<String> {
    let parts: Vec<&str> = key
        .split('.')
        .map(|p| p.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts.join("."))
}

/// Rewrites serde's messages ("unknown field", "invalid type: ..., expected
/// u32") in the file's own vocabulary: keys, sections, numbers, quoted text.
fn humanize(raw: &str, key: Option<&str>) -> String {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let valid = backticked(tail);
        // The line's key may be dotted (`camera.widht = 1`, `a.b.c = 1`): the
        // unknown key is the path up to the segment serde complained about.
        let path = key
            .and_then(|k| {
                let segs: Vec<&str> = k.split('.').collect();
                let at = segs.iter().position(|s| *s == name)?;
                Some(segs[..=at].join("."))
            })
            .unwrap_or_else(|| name.to_string());
        let section = path.rsplit_once('.').map(|(s, _)| s);
        let mut msg = format!("unknown key `{path}`");
        if let Some(guess) = closest(name, &valid) {
            msg += &format!(" (did you mean `{guess}`?)");
        }
        let place = match section {
            Some(s) => format!("in [{s}]"),
            None => "at the top level".to_string(),
        };
        if valid.is_empty() {
            msg += &format!("; there are no keys {place}");
        } else {
            msg += &format!("; valid keys {place}: {}", valid.join(", "));
        }
        return msg;
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let valid = backticked(tail);
        let mut msg = match key {
            Some(k) => format!("{k} = {name:?} is not one of the choices"),
            None => format!("{name:?} is not one of the choices"),
        };
        if let Some(guess) = closest(name, &valid) {
            msg += &format!(" (did you mean {guess:?}?)");
        }
        let quoted: Vec<String> = valid.iter().map(|v| quote(v)).collect();
        msg += &format!("; expected one of {}", quoted.join(", "));
        return msg;
    }
    let subject = key.unwrap_or("the value");
    if let Some((found, expected)) = raw
        .strip_prefix("invalid type: ")
        .and_then(|r| r.rsplit_once(", expected "))
    {
        return format!(
            "{subject} has the wrong type: found {found}, expected {}",
            plain_type(expected, key)
        );
    }
    if let Some((found, expected)) = raw
        .strip_prefix("invalid value: ")
        .and_then(|r| r.rsplit_once(", expected "))
    {
        // "integer `-5`" -> "-5": show the value as it is written in the file.
        let value = found.split('`').nth(1).unwrap_or(found);
        // The key's own range, not the type's ("0 ..= 60000", not "0 to 4294967295").
        let expected = key
            .and_then(int_expected)
            .unwrap_or_else(|| plain_type(expected, key));
        return format!("{subject} = {value} is out of range: expected {expected}");
    }
    if raw == "wanted string or table" {
        return format!(
            "{subject} has the wrong type: expected one of the choices in double quotes"
        );
    }
    // Syntax errors: toml spreads them over lines ("invalid table header\nexpected `.`, `]`").
    let flat = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match key {
        Some(k) if raw.starts_with("missing field") || raw.starts_with("invalid length") => {
            format!("{k}: {flat}")
        }
        _ => flat,
    }
}

/// All `names` between backticks in serde's "expected one of `a`, `b`".
fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// serde/Rust type names -> words for the file's reader.
fn plain_type(expected: &str, key: Option<&str>) -> String {
    match expected.trim() {
        "u32" => "a whole number from 0 to 4294967295, without quotes".into(),
        "u64" | "usize" => "a whole number, 0 or more, without quotes".into(),
        "i32" | "i64" => "a whole number, without quotes".into(),
        "f32" | "f64" => "a number such as 1.5, without quotes".into(),
        "a boolean" => "true or false, without quotes".into(),
        "a string" | "path string" => "text in double quotes".into(),
        other if other.starts_with("struct ") => match key {
            Some(k) => format!("a section: [{k}] on a line of its own, then its keys"),
            None => "a section".into(),
        },
        other if other.starts_with("enum ") => "one of the listed choices in double quotes".into(),
        other => other.to_string(),
    }
}

/// The valid name closest to a misspelt one, if it is close enough to be a typo.
fn closest<'a>(name: &str, valid: &'a [String]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    valid
        .iter()
        .map(|v| (edit_distance(name, v), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "/home/pi/styleframe/config/styleframe.toml";

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(src, Path::new(ORIGIN))
    }

    fn parse_error(src: &str) -> String {
        match parse(src) {
            Err(e @ ConfigError::Parse { .. }) => e.to_string(),
            other => panic!("expected a parse error for {src:?}, got {other:?}"),
        }
    }

    /// The error names the file, the dotted key, the value as written and the accepted range.
    fn assert_rejected(src: &str, want_key: &str, want_value: &str, want_expected: &str) {
        let err = parse(src).expect_err(src);
        let text = err.to_string();
        match &err {
            ConfigError::Invalid {
                path,
                key,
                value,
                expected,
            } => {
                assert_eq!(path, Path::new(ORIGIN), "{text}");
                assert_eq!(key, want_key, "{text}");
                assert_eq!(value, want_value, "{text}");
                assert!(expected.contains(want_expected), "{text}");
            }
            other => panic!("expected an Invalid error for {src:?}, got {other:?}"),
        }
        assert!(
            text.starts_with(&format!("{ORIGIN}: {want_key} = {want_value} is ")),
            "{text}"
        );
        assert!(text.contains(want_expected), "{text}");
    }

    macro_rules! rejects {
        ($($name:ident: $src:expr => $key:expr, $value:expr, $expected:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_rejected($src, $key, $value, $expected);
            }
        )*};
    }

    rejects! {
        strength_above_one_is_rejected: "[styles]\nstrength = 1.7" => "styles.strength", "1.7", "0.0 ..= 1.0";
        strength_below_zero_is_rejected: "[styles]\nstrength = -0.1" => "styles.strength", "-0.1", "0.0 ..= 1.0";
        morph_over_a_minute_is_rejected: "[styles]\nmorph_seconds = 61" => "styles.morph_seconds", "61.0", "0.0 ..= 60.0";
        smoothing_above_point_nine_is_rejected: "[styles]\ntemporal_smoothing = 0.95" => "styles.temporal_smoothing", "0.95", "0.0 ..= 0.9";
        interval_too_short_is_rejected: "[gallery]\ninterval_minutes = 0.05" => "gallery.interval_minutes", "0.05", "0.1 ..= 1440.0";
        interval_over_a_day_is_rejected: "[gallery]\ninterval_minutes = 1441" => "gallery.interval_minutes", "1441.0", "0.1 ..= 1440.0";
        night_start_hour_25_is_rejected: "[gallery]\nnight_start = \"25:00\"\nnight_end = \"07:00\"" => "gallery.night_start", "\"25:00\"", "\"HH:MM\"";
        night_end_without_colon_is_rejected: "[gallery]\nnight_start = \"23:00\"\nnight_end = \"0700\"" => "gallery.night_end", "\"0700\"", "\"00:00\" to \"23:59\"";
        night_start_alone_is_rejected: "[gallery]\nnight_start = \"23:00\"" => "gallery.night_end", "\"\"", "because gallery.night_start is set";
        night_end_alone_is_rejected: "[gallery]\nnight_end = \"07:00\"" => "gallery.night_start", "\"\"", "because gallery.night_end is set";
        night_start_equal_to_end_is_rejected: "[gallery]\nnight_start = \"07:00\"\nnight_end = \"7:00\"" => "gallery.night_end", "\"7:00\"", "different from gallery.night_start";
        camera_width_too_small_is_rejected: "[camera]\nwidth = 8" => "camera.width", "8", "16 ..= 7680";
        camera_width_too_large_is_rejected: "[camera]\nwidth = 7681" => "camera.width", "7681", "16 ..= 7680";
        camera_height_too_large_is_rejected: "[camera]\nheight = 4321" => "camera.height", "4321", "16 ..= 4320";
        camera_fps_zero_is_rejected: "[camera]\nfps = 0" => "camera.fps", "0", "1 ..= 120";
        camera_fps_too_high_is_rejected: "[camera]\nfps = 121" => "camera.fps", "121", "1 ..= 120";
        image_source_without_path_is_rejected: "[camera]\nsource = \"image\"" => "camera.path", "(not set)", "because camera.source = \"image\"";
        folder_source_with_empty_path_is_rejected: "[camera]\nsource = \"folder\"\npath = \"\"" => "camera.path", "\"\"", "because camera.source = \"folder\"";
        video_source_without_path_is_rejected: "[camera]\nsource = \"video\"" => "camera.path", "(not set)", "because camera.source = \"video\"";
        camera_source_with_empty_device_is_rejected: "[camera]\nsource = \"camera\"\ndevice = \" \"" => "camera.device", "\" \"", "because camera.source = \"camera\"";
        auto_source_with_empty_device_is_rejected: "[camera]\ndevice = \" \"" => "camera.device", "\" \"", "because camera.source = \"auto\"";
        libcamera_source_with_a_camera_name_is_rejected: "[camera]\nsource = \"libcamera\"\ndevice = \"C920\"" => "camera.device", "\"C920\"", "see `rpicam-vid --list-cameras`";
        max_pixels_too_small_is_rejected: "[inference]\nmax_pixels = 4095" => "inference.max_pixels", "4095", "4096 ..= 786432";
        max_pixels_too_large_is_rejected: "[inference]\nmax_pixels = 786433" => "inference.max_pixels", "786433", "4096 ..= 786432";
        max_pixels_of_old_ceiling_is_rejected: "[inference]\nmax_pixels = 4000000" => "inference.max_pixels", "4000000", "4096 ..= 786432";
        min_pixels_too_small_is_rejected: "[inference]\nmin_pixels = 4000" => "inference.min_pixels", "4000", "4096 ..= 114688 (inference.max_pixels)";
        min_pixels_above_max_is_rejected: "[inference]\nmax_pixels = 50000\nmin_pixels = 50001" => "inference.min_pixels", "50001", "4096 ..= 50000 (inference.max_pixels)";
        zero_threads_are_rejected: "[inference]\nthreads = 0" => "inference.threads", "0", "1 ..= 64";
        too_many_threads_are_rejected: "[inference]\nthreads = 65" => "inference.threads", "65", "1 ..= 64";
        max_fps_too_high_is_rejected: "[inference]\nmax_fps = 121" => "inference.max_fps", "121.0", "0.0 ..= 120.0";
        negative_max_fps_is_rejected: "[inference]\nmax_fps = -1" => "inference.max_fps", "-1.0", "0.0 ..= 120.0";
        degrade_after_too_long_is_rejected: "[inference]\ndegrade_after_ms = 60001" => "inference.degrade_after_ms", "60001", "0 ..= 60000";
        display_width_too_small_is_rejected: "[display]\nwidth = 15\nheight = 600" => "display.width", "15", "0 (ask the screen) or 16 ..= 16384";
        display_height_too_large_is_rejected: "[display]\nwidth = 800\nheight = 16385" => "display.height", "16385", "16 ..= 16384";
        display_width_without_height_is_rejected: "[display]\nwidth = 800" => "display.height", "0", "because display.width is set";
        display_height_without_width_is_rejected: "[display]\nheight = 600" => "display.width", "0", "because display.height is set";
        display_fps_zero_is_rejected: "[display]\nfps = 0" => "display.fps", "0", "1 ..= 240";
        display_fps_too_high_is_rejected: "[display]\nfps = 241" => "display.fps", "241", "1 ..= 240";
        snapshot_every_zero_is_rejected: "[display]\nsnapshot_every = 0" => "display.snapshot_every", "0", "1 or more";
        presence_over_a_day_is_rejected: "[display]\nsleep_after_still_minutes = 1441" => "display.sleep_after_still_minutes", "1441", "0 ..= 1440";
        debounce_over_a_second_is_rejected: "[button]\ndebounce_ms = 1001" => "button.debounce_ms", "1001", "0 ..= 1000";
        long_press_too_short_is_rejected: "[button]\nlong_press_ms = 99" => "button.long_press_ms", "99", "100 ..= 10000";
        long_press_too_long_is_rejected: "[button]\nlong_press_ms = 10001" => "button.long_press_ms", "10001", "100 ..= 10000";
        long_press_not_above_debounce_is_rejected: "[button]\ndebounce_ms = 500\nlong_press_ms = 500" => "button.long_press_ms", "500", "more than button.debounce_ms (500)";
        empty_button_line_is_rejected: "[button]\nline = \"\"" => "button.line", "\"\"", "\"GPIO17\"";
        empty_button_chip_is_rejected: "[button]\nchip = \"\"" => "button.chip", "\"\"", "\"gpiochip0\"";
        empty_framebuffer_for_framebuffer_backend_is_rejected: "[display]\nbackend = \"framebuffer\"\nframebuffer = \"\"" => "display.framebuffer", "\"\"", "\"/dev/fb0\"";
        display_mode_without_height_is_rejected: "[display]\nbackend = \"kms\"\nmode = \"1920\"" => "display.mode", "\"1920\"", "\"WIDTHxHEIGHT\"";
        display_mode_with_zero_refresh_is_rejected: "[display]\nmode = \"1920x1080@0\"" => "display.mode", "\"1920x1080@0\"", "\"1920x1080@60\"";
        nan_strength_is_rejected: "[styles]\nstrength = nan" => "styles.strength", "nan", "a finite number in 0.0 ..= 1.0";
        infinite_max_fps_is_rejected: "[inference]\nmax_fps = inf" => "inference.max_fps", "inf", "a finite number";
        nan_interval_is_rejected: "[gallery]\ninterval_minutes = nan" => "gallery.interval_minutes", "nan", "finite";
    }

    #[test]
    fn out_of_range_message_reads_file_key_value_and_range() {
        let err = parse("[styles]\nstrength = 1.7").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{ORIGIN}: styles.strength = 1.7 is out of range: expected 0.0 ..= 1.0")
        );
    }

    #[test]
    fn values_on_the_range_edges_are_accepted() {
        for src in [
            "[styles]\nstrength = 0.0\nmorph_seconds = 60\ntemporal_smoothing = 0.9",
            "[styles]\nstrength = 1\nmorph_seconds = 0\ntemporal_smoothing = 0",
            "[gallery]\ninterval_minutes = 0.1",
            "[gallery]\ninterval_minutes = 1440\nnight_start = \"00:00\"\nnight_end = \"23:59\"",
            "[camera]\nwidth = 16\nheight = 16\nfps = 1",
            "[camera]\nwidth = 7680\nheight = 4320\nfps = 120",
            "[camera]\nsource = \"synthetic\"\ndevice = \"\"",
            "[camera]\nsource = \"image\"\npath = \"scene.jpg\"\ndevice = \"\"",
            "[inference]\nmax_pixels = 4096\nmin_pixels = 4096\nthreads = 1\nmax_fps = 0\ndegrade_after_ms = 0",
            "[inference]\nmax_pixels = 786432\nmin_pixels = 786432\nthreads = 64\nmax_fps = 120\ndegrade_after_ms = 60000",
            "[display]\nwidth = 16\nheight = 16384\nfps = 1\nsnapshot_every = 1",
            "[display]\nwidth = 0\nheight = 0\nfps = 240",
            "[button]\ndebounce_ms = 0\nlong_press_ms = 100",
            "[button]\ndebounce_ms = 1000\nlong_press_ms = 10000",
        ] {
            if let Err(e) = parse(src) {
                panic!("{src:?} should be accepted, got: {e}");
            }
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("# only a comment\n\n").unwrap(), Config::default());
        assert_eq!(parse("[camera]\n[display]\n").unwrap(), Config::default());
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn given_keys_override_only_themselves() {
        let cfg = parse("[camera]\nwidth = 1280\nheight = 720").unwrap();
        assert_eq!((cfg.camera.width, cfg.camera.height), (1280, 720));
        assert_eq!(cfg.camera.fps, CameraConfig::default().fps);
        assert_eq!(cfg.styles, StylesConfig::default());
    }

    #[test]
    fn byte_order_mark_is_tolerated() {
        assert_eq!(parse("\u{feff}[camera]\nfps = 10").unwrap().camera.fps, 10);
    }

    #[test]
    fn unknown_top_level_key_is_rejected_naming_it() {
        let msg = parse_error("colour = \"red\"");
        assert!(msg.starts_with(ORIGIN), "{msg}");
        assert!(msg.contains("unknown key `colour`"), "{msg}");
        assert!(
            msg.contains("models, styles, gallery, camera, inference, display, button"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_section_is_rejected_with_a_suggestion() {
        let msg = parse_error("[camrea]\nwidth = 640");
        assert!(
            msg.contains("unknown key `camrea` (did you mean `camera`?)"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_in_a_section_names_the_dotted_key_and_lists_valid_keys() {
        let msg = parse_error("[styles]\nstrength = 0.5\n\n[camera]\nwidht = 640");
        assert!(msg.contains("line 5, column 1"), "{msg}");
        assert!(
            msg.contains("unknown key `camera.widht` (did you mean `width`?)"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "valid keys in [camera]: source, device, path, width, height, fps, format"
            ),
            "{msg}"
        );
        // The offending line is quoted so it can be found without counting lines.
        assert!(msg.contains("5 | widht = 640"), "{msg}");
    }

    #[test]
    fn unknown_dotted_key_is_named_in_full() {
        let msg = parse_error("display.fullscrean = true");
        assert!(msg.contains("unknown key `display.fullscrean`"), "{msg}");
        assert!(msg.contains("did you mean `fullscreen`?"), "{msg}");
    }

    #[test]
    fn wrong_type_error_names_the_key_and_the_expected_type() {
        let msg = parse_error("[camera]\nwidth = \"640\"");
        assert!(msg.contains("line 2, column 9"), "{msg}");
        assert!(msg.contains("camera.width has the wrong type"), "{msg}");
        assert!(msg.contains("found string \"640\""), "{msg}");
        assert!(msg.contains("a whole number"), "{msg}");

        let msg = parse_error("[display]\nfullscreen = \"yes\"");
        assert!(
            msg.contains("display.fullscreen has the wrong type"),
            "{msg}"
        );
        assert!(msg.contains("true or false"), "{msg}");

        let msg = parse_error("[styles]\nstrength = \"full\"");
        assert!(msg.contains("styles.strength has the wrong type"), "{msg}");
        assert!(msg.contains("a number"), "{msg}");
    }

    #[test]
    fn negative_whole_number_error_names_the_key_and_value() {
        let msg = parse_error("[button]\ndebounce_ms = -5");
        assert!(
            msg.contains("button.debounce_ms = -5 is out of range"),
            "{msg}"
        );
    }

    #[test]
    fn a_value_that_does_not_fit_the_type_reports_the_keys_own_range() {
        for (src, want) in [
            ("[inference]\ndegrade_after_ms = -1", "expected 0 ..= 60000"),
            ("[camera]\nfps = 99999999999", "expected 1 ..= 120"),
            (
                "[display]\nwidth = -1",
                "expected 0 (ask the screen) or 16 ..= 16384",
            ),
        ] {
            let msg = parse_error(src);
            assert!(msg.contains(want), "{src}: {msg}");
            assert!(!msg.contains("4294967295"), "{src}: {msg}");
        }
        // The same range as validation says for a value that fits the type.
        assert_rejected(
            "[inference]\ndegrade_after_ms = 60001",
            "inference.degrade_after_ms",
            "60001",
            "0 ..= 60000",
        );
    }

    #[test]
    fn a_network_id_not_in_the_manifest_is_a_config_error_naming_the_key() {
        assert_rejected(
            "[models]\ntransfer = \"nope\"",
            "models.transfer",
            "\"nope\"",
            "one of \"style_transfer_f16_384\"",
        );
        // A prediction network where a transfer network belongs.
        assert_rejected(
            "[models]\ntransfer = \"style_predict_quantized_256\"",
            "models.transfer",
            "\"style_predict_quantized_256\"",
            "style_transfer_quantized_384",
        );
    }

    #[test]
    fn unknown_choice_lists_the_valid_choices() {
        let msg = parse_error("[camera]\nsource = \"webcam\"");
        assert!(
            msg.contains("camera.source = \"webcam\" is not one of the choices"),
            "{msg}"
        );
        assert!(
            msg.contains("\"auto\", \"camera\", \"libcamera\", \"image\", \"folder\", \"video\", \"synthetic\""),
            "{msg}"
        );
        let msg = parse_error("[display]\nbackend = \"framebufer\"");
        assert!(msg.contains("did you mean \"framebuffer\"?"), "{msg}");
    }

    #[test]
    fn choice_of_wrong_type_names_the_key() {
        let msg = parse_error("[camera]\nformat = 1");
        assert!(msg.contains("camera.format has the wrong type"), "{msg}");
    }

    #[test]
    fn section_given_as_a_value_is_explained() {
        let msg = parse_error("camera = 5");
        assert!(msg.contains("camera has the wrong type"), "{msg}");
        assert!(msg.contains("[camera] on a line of its own"), "{msg}");
    }

    #[test]
    fn syntax_error_gives_line_and_column_on_one_line() {
        let msg = parse_error("[styles]\nstrength = 0.5\n[camera\n");
        let first = msg.lines().next().unwrap();
        assert!(
            first.starts_with(&format!("{ORIGIN}: line 3, column 8: ")),
            "{msg}"
        );
        assert!(first.contains("invalid table header"), "{msg}");
    }

    #[test]
    fn duplicate_key_is_reported_with_its_line() {
        let msg = parse_error("[camera]\nfps = 10\nfps = 12");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("duplicate key `fps`"), "{msg}");
    }

    #[test]
    fn validate_without_a_file_has_no_path_prefix() {
        let mut cfg = Config::default();
        cfg.camera.fps = 0;
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.key(), Some("camera.fps"));
        assert_eq!(
            err.to_string(),
            "camera.fps = 0 is out of range: expected 1 ..= 120"
        );
        let err = err.with_path(Path::new("/etc/sf.toml"));
        assert!(err.to_string().starts_with("/etc/sf.toml: camera.fps = 0"));
    }

    #[test]
    fn non_range_problems_read_not_valid() {
        let err = parse("[camera]\nsource = \"image\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("camera.path = (not set) is not valid: expected the image file"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.toml");
        let err = Config::load(&path).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Read { path: p, .. } if *p == path),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains("cannot read"), "{msg}");
    }

    #[test]
    fn parse_hhmm_accepts_24_hour_times() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(parse_hhmm("00:00"), Ok(t(0, 0)));
        assert_eq!(parse_hhmm("07:30"), Ok(t(7, 30)));
        assert_eq!(parse_hhmm("7:30"), Ok(t(7, 30)));
        assert_eq!(parse_hhmm(" 23:59 "), Ok(t(23, 59)));
    }

    #[test]
    fn parse_hhmm_rejects_anything_else_quoting_the_input() {
        for bad in [
            "", "24:00", "12:60", "7", "0700", "7:5", "07:30:00", "-1:00", "+7:00", "ab:cd", "7pm",
            "123:00",
        ] {
            let err = parse_hhmm(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("HH:MM"), "{err}");
        }
    }

    fn gallery(start: &str, end: &str) -> GalleryConfig {
        GalleryConfig {
            night_start: start.into(),
            night_end: end.into(),
            ..GalleryConfig::default()
        }
    }

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn night_window_wrapping_midnight_covers_late_evening_and_early_morning() {
        let g = gallery("23:00", "07:00");
        assert_eq!(g.night_window(), Some((at(23, 0), at(7, 0))));
        assert!(g.is_night(at(23, 0)));
        assert!(g.is_night(at(23, 59)));
        assert!(g.is_night(at(0, 0)));
        assert!(g.is_night(at(6, 59)));
        assert!(!g.is_night(at(7, 0)));
        assert!(!g.is_night(at(12, 0)));
        assert!(!g.is_night(at(22, 59)));
    }

    #[test]
    fn night_window_within_one_day_covers_only_its_hours() {
        let g = gallery("01:30", "05:00");
        assert!(!g.is_night(at(1, 29)));
        assert!(g.is_night(at(1, 30)));
        assert!(g.is_night(at(4, 59)));
        assert!(!g.is_night(at(5, 0)));
        assert!(!g.is_night(at(23, 0)));
    }

    #[test]
    fn no_night_window_means_never_night() {
        let g = GalleryConfig::default();
        assert_eq!(g.night_window(), None);
        assert!(!g.is_night(at(3, 0)));
        assert_eq!(gallery("23:00", "").night_window(), None);
        assert_eq!(gallery("07:00", "07:00").night_window(), None);
    }

    #[test]
    fn resolve_relative_joins_relative_paths_to_base_only() {
        let mut cfg = parse(
            "[models]\ndir = \"models\"\n[styles]\nfile = \"/opt/sf/styles.json\"\nuser_file = \"mine.json\"\n\
             [camera]\nsource = \"folder\"\npath = \"pictures\"\n[display]\nsnapshot_dir = \"snaps\"",
        )
        .unwrap();
        cfg.resolve_relative(Path::new("/opt/sf"));
        assert_eq!(cfg.models.dir, Path::new("/opt/sf/models"));
        assert_eq!(cfg.styles.file, Path::new("/opt/sf/styles.json"));
        assert_eq!(
            cfg.styles.user_file.as_deref(),
            Some(Path::new("/opt/sf/mine.json"))
        );
        assert_eq!(
            cfg.camera.path.as_deref(),
            Some(Path::new("/opt/sf/pictures"))
        );
        assert_eq!(
            cfg.display.snapshot_dir.as_deref(),
            Some(Path::new("/opt/sf/snaps"))
        );
        assert_eq!(cfg.display.framebuffer, Path::new("/dev/fb0"));
    }

    #[test]
    fn resolve_relative_keeps_unset_paths_unset() {
        let mut cfg = Config::default();
        cfg.resolve_relative(Path::new("/base"));
        assert_eq!(cfg.styles.user_file, None);
        assert_eq!(cfg.camera.path, None);
        assert_eq!(cfg.styles.file, Path::new("/base/models/styles.json"));
    }

    rejects! {
        mqtt_broker_needs_a_scheme: "[mqtt]\nbroker = \"http://h:1883\"" => "mqtt.broker", "\"http://h:1883\"", "mqtt://host:port";
        mqtt_broker_port_is_checked: "[mqtt]\nbroker = \"mqtt://h:99999\"" => "mqtt.broker", "\"mqtt://h:99999\"", "1 ..= 65535";
        mqtt_broker_has_no_user_in_it: "[mqtt]\nbroker = \"mqtt://u:p@h\"" => "mqtt.broker", "\"mqtt://u:p@h\"", "a port";
        mqtt_device_id_is_topic_safe: "[mqtt]\ndevice_id = \"a/#\"" => "mqtt.device_id", "\"a/#\"", "letters, digits";
        mqtt_group_is_topic_safe: "[mqtt]\ngroup = \"x+\"" => "mqtt.group", "\"x+\"", "letters, digits";
        mqtt_one_password_source: "[mqtt]\npassword = \"p\"\npassword_file = \"f\"" => "mqtt.password_file", "set together with mqtt.password", "one of";
    }

    #[test]
    fn mqtt_broker_addresses_parse_with_default_ports() {
        let p = |s| parse_broker(s).unwrap();
        let a = |tls, host: &str, port| BrokerAddr {
            tls,
            host: host.into(),
            port,
        };
        assert_eq!(p("mqtt://hub.local"), a(false, "hub.local", 1883));
        assert_eq!(p("mqtts://hub.local"), a(true, "hub.local", 8883));
        assert_eq!(p("mqtt://10.0.0.2:1884/"), a(false, "10.0.0.2", 1884));
        assert_eq!(p("mqtt://[::1]:1885"), a(false, "::1", 1885));
        assert!(parse_broker("mqtt://").is_err());
        assert!(parse_broker("mqtt://[::1]x").is_err());
        assert!(parse_broker("mqtt://h/path").is_err());
    }
}
