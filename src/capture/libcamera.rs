//! Pi camera modules (CSI: Camera Module 2/3, HQ) through libcamera, by running
//! the Pi's own `rpicam-vid` (`libcamera-vid` on older Pi OS) as a child that
//! streams raw YUV420 frames to a pipe.
//!
//! Why a child process and not bindings: rpicam-vid drives the Pi's ISP (the
//! sensors give raw Bayer), needs no linking against libcamera, whose ABI
//! changes with every 0.x release, and survives Pi OS upgrades.
//!
//! A reader thread reads whole frames from the child's stdout into a one-place
//! mailbox (a stale frame is dropped, its buffer reused); another logs the
//! child's stderr. `next_frame` waits at most `stall_timeout`: a child that
//! stalls, dies or writes a short frame is killed and reaped, and the error is
//! `Disconnected`, so the daemon reopens the source after its backoff; opening
//! waits for the first frame, so a child that keeps failing at start makes the
//! daemon's backoff grow. The child gets SIGTERM if styleframe dies (no orphan).

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::CameraConfig;
use crate::daemon::slot::LatestSlot;
use crate::frame::RgbFrame;

use super::{CaptureError, FrameSource};

/// The programs tried on PATH when `camera.rpicam_vid` is empty, newest name first.
pub const PROGRAMS: [&str; 2] = ["rpicam-vid", "libcamera-vid"];
/// A running camera that delivers nothing for this long is restarted.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Starting the camera (sensor probe, ISP set-up) may take this long.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// What to run and what to ask it for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub program: PathBuf,
    /// The camera's index in `rpicam-vid --list-cameras`.
    pub camera: u32,
    /// Frame size; the width is a multiple of 64, so rows have no padding
    /// (the ISP aligns YUV420 rows to 64 bytes).
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub stall_timeout: Duration,
    pub start_timeout: Duration,
}

impl Settings {
    /// From the `[camera]` section: the size rounded to what rpicam-vid gives unpadded.
    pub fn from_config(cfg: &CameraConfig) -> Result<Settings, CaptureError> {
        let program = find_program(&cfg.rpicam_vid).ok_or_else(|| CaptureError::Open {
            device: "libcamera".into(),
            message: format!(
                "{} not found: install the Pi's camera apps (sudo apt install rpicam-apps), \
                 or set camera.rpicam_vid to its path",
                if cfg.rpicam_vid.is_empty() {
                    PROGRAMS.join(" or ")
                } else {
                    cfg.rpicam_vid.clone()
                }
            ),
        })?;
        let camera = cfg.device.trim().parse().map_err(|_| {
            CaptureError::Config(format!(
                "camera.device = {:?}: the libcamera source takes a camera's index \
                 (0, 1, ... as `rpicam-vid --list-cameras` numbers them)",
                cfg.device
            ))
        })?;
        let (width, height) = unpadded_size(cfg.width, cfg.height);
        Ok(Settings {
            program,
            camera,
            width,
            height,
            fps: cfg.fps.max(1),
            stall_timeout: STALL_TIMEOUT,
            start_timeout: START_TIMEOUT,
        })
    }

    fn frame_len(&self) -> usize {
        let (w, h) = (self.width as usize, self.height as usize);
        w * h + 2 * (w / 2) * (h / 2)
    }

    /// The arguments: endless (-t 0), no preview window, raw YUV420 to stdout,
    /// flushed after every frame.
    pub fn args(&self) -> Vec<String> {
        ["-t", "0", "-n", "--codec", "yuv420", "--flush", "-o", "-"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                "--camera".into(),
                self.camera.to_string(),
                "--width".into(),
                self.width.to_string(),
                "--height".into(),
                self.height.to_string(),
                "--framerate".into(),
                self.fps.to_string(),
            ])
            .collect()
    }
}

/// Width rounded up to a multiple of 64 and height to an even number: the
/// ISP's YUV420 rows are 64-byte aligned, so any other width would come with
/// padding at the end of every row.
pub fn unpadded_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(64) * 64, height.div_ceil(2) * 2)
}

/// `configured` when set (a path, or a name looked up on PATH), else the first of [`PROGRAMS`] on PATH.
pub fn find_program(configured: &str) -> Option<PathBuf> {
    let names: Vec<&str> = if configured.is_empty() {
        PROGRAMS.to_vec()
    } else {
        vec![configured]
    };
    names.into_iter().find_map(|name| {
        if name.contains('/') {
            Path::new(name).is_file().then(|| PathBuf::from(name))
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        }
    })
}

/// The running child and the threads that read its output.
struct Child_ {
    child: Child,
    frames: Arc<LatestSlot<Vec<u8>>>,
    /// Why the stream ended (exit, short frame, read error); set before `frames` is closed.
    ended: Arc<Mutex<Option<String>>>,
    /// The child's last stderr line, for error messages.
    last_err: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
}

pub struct LibcameraSource {
    settings: Settings,
    running: Option<Child_>,
    restarts: u64,
}

impl LibcameraSource {
    /// Starts the camera and waits for its first frame.
    pub fn open(settings: Settings) -> Result<Self, CaptureError> {
        let mut s = LibcameraSource {
            settings,
            running: None,
            restarts: 0,
        };
        s.start().map_err(|message| CaptureError::Open {
            device: s.device(),
            message,
        })?;
        Ok(s)
    }

    fn device(&self) -> String {
        format!("libcamera {}", self.settings.camera)
    }

    /// Spawns the child and waits until its first frame is there (kept for `next_frame`).
    fn start(&mut self) -> Result<(), String> {
        let running = spawn(&self.settings)?;
        let deadline = Instant::now() + self.settings.start_timeout;
        loop {
            if has_frame(&running.frames, Duration::from_millis(50)) {
                break;
            }
            let ended = running
                .ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(why) = ended {
                let last = stop(running);
                return Err(with_last_line(why, &last));
            }
            if Instant::now() >= deadline {
                stop(running);
                return Err(format!(
                    "{} gave no frame within {:?}",
                    self.settings.program.display(),
                    self.settings.start_timeout
                ));
            }
        }
        log::info!(
            "{}: camera {} streaming {}x{} YUV420 at {} fps",
            self.settings.program.display(),
            self.settings.camera,
            self.settings.width,
            self.settings.height,
            self.settings.fps
        );
        self.running = Some(running);
        Ok(())
    }

    /// Kills the child and says why, for a `Disconnected` error.
    fn fail(&mut self, why: String) -> CaptureError {
        let mut message = why;
        if let Some(r) = self.running.take() {
            let last = stop(r);
            message = with_last_line(message, &last);
        }
        CaptureError::Disconnected {
            device: self.device(),
            message,
        }
    }

    /// How many times the child was started again after a fault.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }
}

fn with_last_line(why: String, last: &str) -> String {
    if last.is_empty() {
        why
    } else {
        format!("{why}; it said: {last}")
    }
}

impl FrameSource for LibcameraSource {
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError> {
        if self.running.is_none() {
            // A fault ended the last child: start a new one.
            self.restarts += 1;
            let device = self.device();
            self.start()
                .map_err(|message| CaptureError::Disconnected { device, message })?;
        }
        let r = self.running.as_ref().expect("started above");
        let Some(buf) = r.frames.take(self.settings.stall_timeout) else {
            let ended = r.ended.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let why = ended.unwrap_or_else(|| {
                format!(
                    "no frame for {:?} (stalled); restarting it",
                    self.settings.stall_timeout
                )
            });
            return Err(self.fail(why));
        };
        let (w, h) = (self.settings.width, self.settings.height);
        frame.reshape(w, h);
        yuv420_to_rgb(&buf, w, h, w >= 1280 || h >= 720, &mut frame.data)
            .map_err(|what| CaptureError::CorruptFrame { what })?;
        frame.captured_at = Instant::now();
        r.frames.recycle(buf);
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "libcamera camera {} through {} ({}x{} YUV420, {} fps)",
            self.settings.camera,
            self.settings.program.display(),
            self.settings.width,
            self.settings.height,
            self.settings.fps
        )
    }
}

impl Drop for LibcameraSource {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            stop(r);
        }
    }
}

/// Waits up to `timeout` for a frame and leaves it in the mailbox.
fn has_frame(frames: &LatestSlot<Vec<u8>>, timeout: Duration) -> bool {
    match frames.take(timeout) {
        Some(v) => {
            // A newer frame may have come meanwhile: keep that one.
            match frames.try_take() {
                Some(newer) => {
                    frames.put(newer);
                    frames.recycle(v);
                }
                None => frames.put(v),
            }
            true
        }
        None => false,
    }
}

fn spawn(s: &Settings) -> Result<Child_, String> {
    let mut cmd = Command::new(&s.program);
    cmd.args(s.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent;
    // it asks the kernel to send SIGTERM to the child when its parent goes away.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", s.program.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let frames = Arc::new(LatestSlot::default());
    let ended = Arc::new(Mutex::new(None));
    let last_err = Arc::new(Mutex::new(String::new()));
    let name = s
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reader = {
        let (frames, ended, len) = (frames.clone(), ended.clone(), s.frame_len());
        let program = s.program.clone();
        std::thread::Builder::new()
            .name("rpicam-read".into())
            .spawn(move || read_frames(stdout, len, &program, &frames, &ended))
    };
    let logger = {
        let last_err = last_err.clone();
        std::thread::Builder::new()
            .name("rpicam-log".into())
            .spawn(move || log_lines(stderr, &name, &last_err))
    };
    let mut threads = vec![];
    for t in [reader, logger] {
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cannot start a thread: {e}"));
            }
        }
    }
    Ok(Child_ {
        child,
        frames,
        ended,
        last_err,
        threads,
    })
}

/// Kills and reaps the child (no zombie), then joins its threads (their pipes
/// are closed now, so every line it wrote has been logged); returns its last error line.
fn stop(mut r: Child_) -> String {
    let _ = r.child.kill();
    let _ = r.child.wait();
    for t in r.threads.drain(..) {
        let _ = t.join();
    }
    let last = r.last_err.lock().unwrap_or_else(|p| p.into_inner()).clone();
    last
}

/// Reads whole frames until the stream ends; then records why and closes the mailbox.
fn read_frames(
    mut out: ChildStdout,
    len: usize,
    program: &Path,
    frames: &LatestSlot<Vec<u8>>,
    ended: &Mutex<Option<String>>,
) {
    let why = loop {
        let mut buf = frames.spare().unwrap_or_default();
        buf.resize(len, 0);
        match read_full(&mut out, &mut buf) {
            Ok(n) if n == len => frames.put(buf),
            Ok(0) => break format!("{} exited", program.display()),
            Ok(n) => {
                break format!(
                    "{} ended with a short frame ({n} of {len} bytes)",
                    program.display()
                )
            }
            Err(e) => break format!("reading from {}: {e}", program.display()),
        }
    };
    *ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    frames.close();
}

/// Like `read_exact`, but says how many bytes came before the end of the stream.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Logs the child's stderr line by line: errors as warnings, the rest as info.
fn log_lines(err: impl Read, name: &str, last_err: &Mutex<String>) {
    for line in BufReader::new(err).lines() {
        let Ok(line) = line else { break };
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if line.contains("ERROR") || line.to_ascii_lowercase().contains("error") {
            log::warn!("{name}: {line}");
            *last_err.lock().unwrap_or_else(|p| p.into_inner()) = line.to_string();
        } else {
            log::info!("{name}: {line}");
        }
    }
}

/// Planar YUV 4:2:0 (Y, then U and V at half size) into RGB8, limited range;
/// BT.709 for HD sizes, BT.601 below (the colour spaces rpicam-vid picks).
pub fn yuv420_to_rgb(
    src: &[u8],
    width: u32,
    height: u32,
    bt709: bool,
    out: &mut [u8],
) -> Result<(), String> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w / 2, h / 2);
    if w % 2 != 0 || h % 2 != 0 {
        return Err(format!("YUV420 {w}x{h}: odd size"));
    }
    let need = w * h + 2 * cw * ch;
    if src.len() < need || out.len() < w * h * 3 {
        return Err(format!(
            "YUV420 {w}x{h}: {} bytes in, {} out; need {need} and {}",
            src.len(),
            out.len(),
            w * h * 3
        ));
    }
    // Coefficients x256: (V->R, U->G, V->G, U->B).
    let (rv, gu, gv, bu) = if bt709 {
        (459, 55, 136, 541)
    } else {
        (409, 100, 208, 516)
    };
    let (ys, rest) = src.split_at(w * h);
    let (us, vs) = rest.split_at(cw * ch);
    let clamp = |x: i32| (x >> 8).clamp(0, 255) as u8;
    for row in 0..h {
        let c0 = (row / 2) * cw;
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        for x in 0..w {
            let c = 298 * (ys[row * w + x] as i32 - 16) + 128;
            let u = us[c0 + x / 2] as i32 - 128;
            let v = vs[c0 + x / 2] as i32 - 128;
            o[x * 3] = clamp(c + rv * v);
            o[x * 3 + 1] = clamp(c - gu * u - gv * v);
            o[x * 3 + 2] = clamp(c + bu * u);
        }
    }
    Ok(())
}

/// One camera as `rpicam-vid --list-cameras` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsiCamera {
    pub index: u32,
    /// E.g. `imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)`.
    pub description: String,
    /// The sensor modes, one line each as printed.
    pub modes: Vec<String>,
}

/// Parses `--list-cameras` output ("0 : imx708 [...] (...)", then indented mode lines).
pub fn parse_camera_list(text: &str) -> Vec<CsiCamera> {
    let mut cams: Vec<CsiCamera> = vec![];
    for line in text.lines() {
        let t = line.trim();
        let head = t
            .split_once(" : ")
            .and_then(|(n, rest)| n.trim().parse::<u32>().ok().map(|n| (n, rest.trim())));
        match head {
            Some((index, rest)) if !line.starts_with(char::is_whitespace) => cams.push(CsiCamera {
                index,
                description: rest.to_string(),
                modes: vec![],
            }),
            _ => {
                if let Some(c) = cams.last_mut() {
                    let mode = t.strip_prefix("Modes:").unwrap_or(t).trim();
                    if !mode.is_empty() {
                        c.modes.push(mode.to_string());
                    }
                }
            }
        }
    }
    cams
}

/// The CSI cameras libcamera sees, by running `PROGRAM --list-cameras` (at most 10 s).
/// `Err` says why none could be listed (program missing, failed, hung).
pub fn list_csi_cameras(configured: &str) -> Result<(PathBuf, Vec<CsiCamera>), String> {
    let program = find_program(configured).ok_or_else(|| {
        format!(
            "{} not found (sudo apt install rpicam-apps)",
            PROGRAMS.join(" or ")
        )
    })?;
    let mut child = Command::new(&program)
        .arg("--list-cameras")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} --list-cameras did not finish",
                    program.display()
                ));
            }
        }
    }
    let text = reader.join().unwrap_or_default();
    Ok((program, parse_camera_list(&text)))
}

/// Whether a USB (UVC) camera is plugged in: a video4linux node whose driver is uvcvideo.
pub fn usb_camera_present() -> bool {
    std::fs::read_dir("/sys/class/video4linux")
        .map(|d| {
            d.filter_map(|e| e.ok()).any(|e| {
                std::fs::read_link(e.path().join("device/driver"))
                    .is_ok_and(|l| l.file_name().is_some_and(|n| n == "uvcvideo"))
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_up_to_whole_64_byte_rows() {
        assert_eq!(unpadded_size(640, 480), (640, 480));
        assert_eq!(unpadded_size(780, 361), (832, 362));
        assert_eq!(unpadded_size(1280, 720), (1280, 720));
    }

    #[test]
    fn limited_range_white_black_and_primaries() {
        // 2x2 pixels, one chroma sample: white, then black, then BT.601 red.
        let rgb = |y: u8, u: u8, v: u8, bt709: bool| {
            let mut out = vec![0; 12];
            yuv420_to_rgb(&[y, y, y, y, u, v], 2, 2, bt709, &mut out).unwrap();
            [out[0], out[1], out[2]]
        };
        assert_eq!(rgb(235, 128, 128, false), [255, 255, 255]);
        assert_eq!(rgb(16, 128, 128, true), [0, 0, 0]);
        let red601 = rgb(81, 90, 240, false);
        assert!(
            red601[0] >= 253 && red601[1] <= 2 && red601[2] <= 2,
            "{red601:?}"
        );
        // The same red in BT.709 is (63, 102, 240).
        let red709 = rgb(63, 102, 240, true);
        assert!(
            red709[0] >= 253 && red709[1] <= 2 && red709[2] <= 2,
            "{red709:?}"
        );
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let mut out = vec![0; 4 * 2 * 3];
        assert!(yuv420_to_rgb(&[0; 11], 4, 2, false, &mut out).is_err());
        assert!(yuv420_to_rgb(&[0; 12], 3, 2, false, &mut out).is_err());
    }

    #[test]
    fn list_cameras_output_is_parsed() {
        let text = "Available cameras\n-----------------\n\
            0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)\n    \
            Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\n                             \
            2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]\n\n\
            1 : imx477 [4056x3040 12-bit RGGB] (/base/axi/pcie@120000/rp1/i2c@80000/imx477@1a)\n    \
            Modes: 'SRGGB12_CSI2P' : 4056x3040 [10.00 fps - (0, 0)/4056x3040 crop]\n";
        let cams = parse_camera_list(text);
        assert_eq!(cams.len(), 2);
        assert_eq!(cams[0].index, 0);
        assert!(cams[0].description.starts_with("imx708 [4608x2592"));
        assert_eq!(cams[0].modes.len(), 2);
        assert!(cams[0].modes[1].starts_with("2304x1296"));
        assert_eq!(cams[1].index, 1);
        assert!(cams[1].description.starts_with("imx477"));
        assert!(parse_camera_list("No cameras available!\n").is_empty());
    }

    #[test]
    fn arguments_ask_for_endless_raw_yuv420_on_stdout() {
        let s = Settings {
            program: "rpicam-vid".into(),
            camera: 1,
            width: 640,
            height: 480,
            fps: 15,
            stall_timeout: STALL_TIMEOUT,
            start_timeout: START_TIMEOUT,
        };
        let a = s.args().join(" ");
        assert_eq!(
            a,
            "-t 0 -n --codec yuv420 --flush -o - --camera 1 --width 640 --height 480 --framerate 15"
        );
        assert_eq!(s.frame_len(), 640 * 480 * 3 / 2);
    }
}
