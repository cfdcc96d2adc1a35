//! V4L2 camera through nokhwa 0.10 (`input-native`), decoded by styleframe itself.
//!
//! nokhwa is used only to enumerate devices and modes and to hand out the raw mmap buffer;
//! the conversion to RGB (MJPEG, YUYV, NV12, grey, RGB/BGR) is ours, with size checks, so
//! a short or corrupt buffer is a `CorruptFrame`, not a panic. Behind [`RawCamera`] sits the
//! real device ([`V4lCamera`]) or a test fake.

use super::convert::{decode_jpeg_into, gray_to_rgb, nv12_to_rgb, rgb24_to_rgb, yuyv_to_rgb};
use super::{CaptureError, FrameSource};
use crate::config::{CameraConfig, PixelFormat};
use crate::frame::RgbFrame;
use nokhwa::backends::capture::V4LCaptureDevice;
use nokhwa::camera_traits::CaptureBackendTrait;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use std::borrow::Cow;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// What `styleframe doctor` shows about one camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraInfo {
    pub index: u32,
    pub name: String,
    /// "640x480 YUYV 30 fps", ...; empty when the device could not be opened (busy, metadata node).
    pub modes: Vec<String>,
}

/// Pixel layouts styleframe can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawFormat {
    Mjpeg,
    Yuyv,
    Nv12,
    Gray,
    Rgb24,
    Bgr24,
}

impl RawFormat {
    fn from_nokhwa(f: FrameFormat) -> RawFormat {
        match f {
            FrameFormat::MJPEG => RawFormat::Mjpeg,
            FrameFormat::YUYV => RawFormat::Yuyv,
            FrameFormat::NV12 => RawFormat::Nv12,
            FrameFormat::GRAY => RawFormat::Gray,
            FrameFormat::RAWRGB => RawFormat::Rgb24,
            FrameFormat::RAWBGR => RawFormat::Bgr24,
        }
    }

    fn to_nokhwa(self) -> FrameFormat {
        match self {
            RawFormat::Mjpeg => FrameFormat::MJPEG,
            RawFormat::Yuyv => FrameFormat::YUYV,
            RawFormat::Nv12 => FrameFormat::NV12,
            RawFormat::Gray => FrameFormat::GRAY,
            RawFormat::Rgb24 => FrameFormat::RAWRGB,
            RawFormat::Bgr24 => FrameFormat::RAWBGR,
        }
    }

    /// Tie-break order for `format = "auto"`: cheapest exact decode first.
    fn auto_rank(self) -> u32 {
        match self {
            RawFormat::Yuyv => 0,
            RawFormat::Mjpeg => 1,
            RawFormat::Nv12 => 2,
            RawFormat::Rgb24 => 3,
            RawFormat::Bgr24 => 4,
            RawFormat::Gray => 5,
        }
    }
}

/// One capture mode a device offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CameraMode {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: RawFormat,
}

impl fmt::Display for CameraMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} {:?} {} fps",
            self.width, self.height, self.format, self.fps
        )
    }
}

impl CameraMode {
    fn from_nokhwa(c: &CameraFormat) -> CameraMode {
        CameraMode {
            width: c.width(),
            height: c.height(),
            fps: c.frame_rate(),
            format: RawFormat::from_nokhwa(c.format()),
        }
    }

    fn to_nokhwa(self) -> CameraFormat {
        CameraFormat::new_from(self.width, self.height, self.format.to_nokhwa(), self.fps)
    }
}

fn wanted_format(format: PixelFormat) -> Option<RawFormat> {
    match format {
        PixelFormat::Auto => None,
        PixelFormat::Mjpeg => Some(RawFormat::Mjpeg),
        PixelFormat::Yuyv => Some(RawFormat::Yuyv),
    }
}

/// Picks the mode nearest to the request: the asked pixel format when the device has it,
/// then the resolution (smaller than asked costs more than larger, since we can shrink but
/// not invent pixels; aspect changes cost too), then the frame rate (too slow costs more).
pub fn choose_mode(
    modes: &[CameraMode],
    width: u32,
    height: u32,
    fps: u32,
    format: PixelFormat,
) -> Option<CameraMode> {
    let wanted = wanted_format(format);
    let has_wanted = wanted.is_some_and(|f| modes.iter().any(|m| m.format == f));
    let (w, h, fps) = (width.max(1) as f64, height.max(1) as f64, fps.max(1) as f64);
    let cost = |m: &CameraMode| -> f64 {
        let (mw, mh, mf) = (
            m.width.max(1) as f64,
            m.height.max(1) as f64,
            m.fps.max(1) as f64,
        );
        let area = (mw * mh) / (w * h);
        let res = if area >= 1.0 {
            area.ln()
        } else {
            -area.ln() * 2.0
        };
        let aspect = ((mw / mh) / (w / h)).ln().abs() * 2.0;
        let rate = if mf >= fps {
            (mf / fps).ln() * 0.1
        } else {
            (fps / mf).ln() * 1.5
        };
        res + aspect + rate + m.format.auto_rank() as f64 * 1e-3
    };
    modes
        .iter()
        .filter(|m| !has_wanted || Some(m.format) == wanted)
        .min_by(|a, b| cost(a).total_cmp(&cost(b)))
        .copied()
}

/// Raw frames from a capture device. The real one is [`V4lCamera`]; tests use fakes.
pub trait RawCamera: Send {
    /// The mode the device delivers.
    fn mode(&self) -> CameraMode;
    /// Blocks for the next raw buffer. An error means the device failed (unplugged...).
    /// The buffer may be longer than the frame (mmap buffers are page-rounded).
    fn grab(&mut self) -> Result<&[u8], String>;
    /// Device path and name, for logs.
    fn label(&self) -> String;
}

/// Decodes one raw buffer of `mode` into `frame` (reusing its allocation).
pub fn decode_raw(
    raw: &[u8],
    mode: CameraMode,
    frame: &mut RgbFrame,
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    let (w, h) = (mode.width, mode.height);
    if mode.format == RawFormat::Mjpeg {
        return decode_jpeg_into(raw, frame, scratch, None);
    }
    frame.reshape(w, h);
    let out = &mut frame.data;
    match mode.format {
        RawFormat::Yuyv => yuyv_to_rgb(raw, w, h, out),
        RawFormat::Nv12 => nv12_to_rgb(raw, w, h, out),
        RawFormat::Gray => gray_to_rgb(raw, w, h, out),
        RawFormat::Rgb24 => rgb24_to_rgb(raw, w, h, false, out),
        RawFormat::Bgr24 => rgb24_to_rgb(raw, w, h, true, out),
        RawFormat::Mjpeg => unreachable!("handled above"),
    }
}

type Opener = Box<dyn FnMut() -> Result<Box<dyn RawCamera>, CaptureError> + Send>;

/// A camera as a [`FrameSource`]: decodes raw frames, reports bad ones as `CorruptFrame`,
/// and after a `Disconnected` error reopens the device on the next call.
pub struct CameraSource {
    device: String,
    cam: Option<Box<dyn RawCamera>>,
    opener: Opener,
    mode: CameraMode,
    label: String,
    scratch: Vec<u8>,
    seq: u64,
}

impl CameraSource {
    /// Opens the V4L2 camera the config names (index, /dev/videoN, or part of its name).
    pub fn open(cfg: &CameraConfig) -> Result<Self, CaptureError> {
        CameraSource::open_in_format(cfg, None)
    }

    /// Like [`CameraSource::open`], but only modes in `format` are considered (`None`: all).
    /// The config can only ask for MJPEG or YUYV; diagnostics and tests use this for the rest.
    pub fn open_in_format(
        cfg: &CameraConfig,
        format: Option<RawFormat>,
    ) -> Result<Self, CaptureError> {
        let cfg2 = cfg.clone();
        let opener: Opener = Box::new(move || {
            let index = resolve_device(&cfg2.device)?;
            V4lCamera::open(index, &cfg2, format).map(|c| Box::new(c) as Box<dyn RawCamera>)
        });
        CameraSource::with_opener(&cfg.device, opener)
    }

    /// Builds a camera source over any [`RawCamera`]; `opener` is called now and again after
    /// each disconnection.
    pub fn with_opener(device: &str, mut opener: Opener) -> Result<Self, CaptureError> {
        let cam = opener()?;
        let mode = cam.mode();
        let label = cam.label();
        log::info!("camera {device:?}: {label}, mode {mode}");
        Ok(CameraSource {
            device: device.to_string(),
            cam: Some(cam),
            opener,
            mode,
            label,
            scratch: Vec::new(),
            seq: 0,
        })
    }

    pub fn mode(&self) -> CameraMode {
        self.mode
    }
}

impl FrameSource for CameraSource {
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError> {
        if self.cam.is_none() {
            match (self.opener)() {
                Ok(cam) => {
                    self.mode = cam.mode();
                    self.label = cam.label();
                    log::info!(
                        "camera {:?} reopened: {}, mode {}",
                        self.device,
                        self.label,
                        self.mode
                    );
                    self.cam = Some(cam);
                }
                Err(e) => {
                    return Err(CaptureError::Disconnected {
                        device: self.device.clone(),
                        message: format!("reopen failed: {e}"),
                    })
                }
            }
        }
        let Some(cam) = self.cam.as_mut() else {
            return Err(CaptureError::Disconnected {
                device: self.device.clone(),
                message: "no device".into(),
            });
        };
        let mode = self.mode;
        let (grabbed_at, result) = match cam.grab() {
            // Latency is measured from when the frame left the driver, before decoding.
            Ok(raw) => (
                Instant::now(),
                decode_raw(raw, mode, frame, &mut self.scratch),
            ),
            Err(message) => {
                // Drop the device (closes the fd) so the next call reopens it. v4l's stream
                // drop panics on unexpected errors (all but ENODEV): contain that here.
                let old = self.cam.take();
                if catch_unwind(AssertUnwindSafe(move || drop(old))).is_err() {
                    log::warn!(
                        "camera {:?}: closing the failed device panicked",
                        self.device
                    );
                }
                return Err(CaptureError::Disconnected {
                    device: self.device.clone(),
                    message,
                });
            }
        };
        let seq = self.seq;
        self.seq += 1;
        result.map_err(|why| CaptureError::CorruptFrame {
            what: format!("camera {:?} frame {seq} ({mode}): {why}", self.device),
        })?;
        frame.seq = seq;
        frame.captured_at = grabbed_at;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("camera {:?}: {}, {}", self.device, self.label, self.mode)
    }
}

// ---------------------------------------------------------------- the real device

/// Every format [`decode_raw`] handles, for nokhwa's format filter.
const DECODABLE: &[FrameFormat] = &[
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

/// A V4L2 capture device with its stream open.
pub struct V4lCamera {
    dev: V4LCaptureDevice<'static>,
    mode: CameraMode,
    index: u32,
    name: String,
    owned: Vec<u8>,
    /// nokhwa's file descriptor for the device, to wait for a frame with a timeout.
    fd: Option<i32>,
    /// True once the stream runs (buffers queued); polling before that would fail.
    streaming: bool,
    stall_timeout_ms: i32,
}

/// nokhwa does not expose its V4L2 file descriptor, and its frame read blocks forever on a
/// camera that stalls without an error (seen with UVC cameras on weak USB power). The fd
/// is found by its /proc/self/fd link instead (nokhwa keeps one fd per device and process),
/// so a stall becomes a `Disconnected` error and the camera is reopened.
fn find_device_fd(path: &str) -> Option<i32> {
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == path))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .max()
}

/// Waits until `fd` has a frame: Ok(true) ready, Ok(false) timed out.
fn wait_readable(fd: i32, timeout_ms: i32) -> std::io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Opens `/dev/video{index}` with whatever format it has now, and lists its modes.
/// nokhwa can panic on odd drivers (e.g. a zero step size), so that is caught here.
fn open_device(index: u32) -> Result<(V4LCaptureDevice<'static>, Vec<CameraMode>), String> {
    catch_unwind(|| {
        let req = RequestedFormat::with_formats(RequestedFormatType::None, DECODABLE);
        let mut dev =
            V4LCaptureDevice::new(&CameraIndex::Index(index), req).map_err(|e| e.to_string())?;
        let modes = dev
            .compatible_camera_formats()
            .map_err(|e| e.to_string())?
            .iter()
            .map(CameraMode::from_nokhwa)
            .collect();
        Ok((dev, modes))
    })
    .unwrap_or_else(|p| Err(format!("nokhwa panicked: {}", panic_message(p))))
}

impl V4lCamera {
    /// Opens `/dev/video{index}` in the mode nearest to `cfg`, among modes in `only` if given.
    pub fn open(
        index: u32,
        cfg: &CameraConfig,
        only: Option<RawFormat>,
    ) -> Result<Self, CaptureError> {
        let device = format!("/dev/video{index}");
        let open_err = |message: String| CaptureError::Open {
            device: device.clone(),
            message,
        };
        let (mut dev, mut modes) = open_device(index).map_err(open_err)?;
        modes.sort_by_key(|m| (m.format.auto_rank(), m.width, m.height, m.fps));
        modes.dedup();
        if let Some(f) = only {
            modes.retain(|m| m.format == f);
        }
        let Some(chosen) = choose_mode(&modes, cfg.width, cfg.height, cfg.fps, cfg.format) else {
            return Err(open_err(match only {
                Some(f) => format!("no {f:?} mode"),
                None => "no mode in a format styleframe can decode".into(),
            }));
        };
        if wanted_format(cfg.format).is_some_and(|f| f != chosen.format) {
            log::warn!(
                "camera {device}: no {:?} mode, using {chosen} instead",
                cfg.format
            );
        }
        let set = catch_unwind(AssertUnwindSafe(|| {
            dev.set_camera_format(chosen.to_nokhwa())
        }));
        match set {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("camera {device}: cannot set {chosen}: {e}; keeping current"),
            Err(p) => log::warn!("camera {device}: cannot set {chosen}: {}", panic_message(p)),
        }
        let mode = CameraMode::from_nokhwa(&dev.camera_format());
        dev.open_stream().map_err(|e| open_err(e.to_string()))?;
        let name = dev.camera_info().human_name();
        log::info!(
            "camera {device} ({name}): chose {mode} for requested {}x{} @ {} fps ({:?}) among {} modes",
            cfg.width,
            cfg.height,
            cfg.fps,
            cfg.format,
            modes.len()
        );
        let fd = find_device_fd(&device);
        if fd.is_none() {
            log::warn!("camera {device}: fd not found, a stalled camera will block");
        }
        // Cameras lower their rate in the dark; allow 10 frame periods, at least 5 s.
        let stall_timeout_ms = (10_000 / mode.fps.max(1)).max(5_000) as i32;
        Ok(V4lCamera {
            dev,
            mode,
            index,
            name,
            owned: Vec::new(),
            fd,
            streaming: false,
            stall_timeout_ms,
        })
    }
}

impl RawCamera for V4lCamera {
    fn mode(&self) -> CameraMode {
        self.mode
    }

    fn grab(&mut self) -> Result<&[u8], String> {
        if let (true, Some(fd)) = (self.streaming, self.fd) {
            match wait_readable(fd, self.stall_timeout_ms) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "no frame for {} ms (camera stalled)",
                        self.stall_timeout_ms
                    ))
                }
                Err(e) => return Err(format!("poll: {e}")),
            }
        }
        let raw = self.dev.frame_raw().map_err(|e| e.to_string());
        self.streaming = true;
        match raw? {
            Cow::Borrowed(b) => Ok(b),
            Cow::Owned(v) => {
                self.owned = v;
                Ok(&self.owned)
            }
        }
    }

    fn label(&self) -> String {
        format!("/dev/video{} ({})", self.index, self.name)
    }
}

fn query_devices() -> Vec<(u32, String)> {
    let found = catch_unwind(|| nokhwa::query(ApiBackend::Video4Linux));
    match found {
        Ok(Ok(list)) => list
            .iter()
            .filter_map(|i| Some((i.index().as_index().ok()?, i.human_name())))
            .collect(),
        Ok(Err(e)) => {
            log::warn!("camera query failed: {e}");
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

fn describe_available(devs: &[(u32, String)]) -> String {
    if devs.is_empty() {
        "none: no /dev/video* device".into()
    } else {
        devs.iter()
            .map(|(i, n)| format!("{i}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Config `device` -> V4L2 index: "0", "/dev/video0", or a case-insensitive part of the name.
pub fn resolve_device(device: &str) -> Result<u32, CaptureError> {
    resolve_in(device, &query_devices())
}

/// [`resolve_device`] over a given device list (index, name).
pub fn resolve_in(device: &str, devs: &[(u32, String)]) -> Result<u32, CaptureError> {
    let asked = device.trim();
    let as_index = asked
        .strip_prefix("/dev/video")
        .unwrap_or(asked)
        .parse::<u32>()
        .ok();
    let found = match as_index {
        Some(i) => devs.iter().find(|(d, _)| *d == i),
        None if asked.is_empty() => None,
        None => {
            let needle = asked.to_lowercase();
            devs.iter()
                .find(|(_, n)| n.to_lowercase().contains(&needle))
        }
    };
    found
        .map(|(i, _)| *i)
        .ok_or_else(|| CaptureError::NoCamera {
            device: device.to_string(),
            available: describe_available(devs),
        })
}

/// "640x480 Yuyv 5/10/25 fps" lines: one per format and size, rates ascending.
fn group_modes(modes: &[CameraMode]) -> Vec<String> {
    let mut sorted = modes.to_vec();
    sorted.sort_by_key(|m| (m.format.auto_rank(), m.width, m.height, m.fps));
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let m = sorted[i];
        let mut rates = Vec::new();
        while i < sorted.len()
            && (sorted[i].format, sorted[i].width, sorted[i].height)
                == (m.format, m.width, m.height)
        {
            rates.push(sorted[i].fps.to_string());
            i += 1;
        }
        out.push(format!(
            "{}x{} {:?} {} fps",
            m.width,
            m.height,
            m.format,
            rates.join("/")
        ));
    }
    out
}

/// Cameras and their modes, for `styleframe doctor`. Empty (not an error) without cameras.
pub fn list_cameras() -> Vec<CameraInfo> {
    query_devices()
        .into_iter()
        .map(|(index, name)| {
            let modes = match open_device(index) {
                Ok((_dev, modes)) => group_modes(&modes),
                Err(e) => {
                    log::debug!("camera {index} ({name}): cannot list modes: {e}");
                    Vec::new()
                }
            };
            CameraInfo { index, name, modes }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(width: u32, height: u32, fps: u32, format: RawFormat) -> CameraMode {
        CameraMode {
            width,
            height,
            fps,
            format,
        }
    }

    /// Roughly what a Logitech C920 offers over USB 2.
    fn c920() -> Vec<CameraMode> {
        vec![
            m(640, 480, 30, RawFormat::Yuyv),
            m(1280, 720, 10, RawFormat::Yuyv),
            m(1920, 1080, 5, RawFormat::Yuyv),
            m(320, 240, 30, RawFormat::Yuyv),
            m(640, 480, 30, RawFormat::Mjpeg),
            m(1280, 720, 30, RawFormat::Mjpeg),
            m(1920, 1080, 30, RawFormat::Mjpeg),
        ]
    }

    #[test]
    fn exact_match_wins() {
        let got = choose_mode(&c920(), 640, 480, 30, PixelFormat::Auto).unwrap();
        assert_eq!(got, m(640, 480, 30, RawFormat::Yuyv));
    }

    #[test]
    fn asked_format_is_preferred_when_available() {
        let got = choose_mode(&c920(), 640, 480, 15, PixelFormat::Mjpeg).unwrap();
        assert_eq!(got, m(640, 480, 30, RawFormat::Mjpeg));
    }

    #[test]
    fn auto_takes_mjpeg_when_yuyv_is_too_slow_at_that_size() {
        let got = choose_mode(&c920(), 1280, 720, 15, PixelFormat::Auto).unwrap();
        assert_eq!(got, m(1280, 720, 30, RawFormat::Mjpeg));
    }

    #[test]
    fn larger_mode_is_preferred_over_smaller() {
        let modes = [
            m(320, 240, 30, RawFormat::Yuyv),
            m(800, 600, 30, RawFormat::Yuyv),
        ];
        let got = choose_mode(&modes, 640, 480, 30, PixelFormat::Auto).unwrap();
        assert_eq!(got.width, 800);
    }

    #[test]
    fn missing_format_falls_back_to_the_nearest_other() {
        let modes = [
            m(640, 480, 25, RawFormat::Yuyv),
            m(1280, 720, 25, RawFormat::Yuyv),
        ];
        let got = choose_mode(&modes, 640, 480, 15, PixelFormat::Mjpeg).unwrap();
        assert_eq!(got, m(640, 480, 25, RawFormat::Yuyv));
        assert_eq!(choose_mode(&[], 640, 480, 15, PixelFormat::Auto), None);
    }

    #[test]
    fn doctor_lists_one_line_per_format_and_size() {
        let lines = group_modes(&c920());
        assert!(
            lines.contains(&"640x480 Yuyv 30 fps".to_string()),
            "{lines:?}"
        );
        let modes = [
            m(640, 480, 30, RawFormat::Nv12),
            m(640, 480, 5, RawFormat::Nv12),
        ];
        assert_eq!(
            group_modes(&modes),
            vec!["640x480 Nv12 5/30 fps".to_string()]
        );
    }

    #[test]
    fn device_resolves_by_index_path_or_name() {
        let devs = vec![
            (0, "vivid".to_string()),
            (2, "HD Pro Webcam C920".to_string()),
        ];
        assert_eq!(resolve_in("0", &devs).unwrap(), 0);
        assert_eq!(resolve_in("/dev/video2", &devs).unwrap(), 2);
        assert_eq!(resolve_in("c920", &devs).unwrap(), 2);
        let err = resolve_in("Brio", &devs).unwrap_err().to_string();
        assert!(
            err.contains("\"Brio\"") && err.contains("2: HD Pro Webcam C920"),
            "{err}"
        );
        assert!(resolve_in("1", &devs).is_err());
    }
}
