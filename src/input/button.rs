//! The push-button's GPIO line: a small trait, the real gpiocdev (uAPI v2) implementation and a
//! fake for tests.

use super::monotonic_now;
use super::press::Edge;
use crate::config::{Bias, ButtonConfig};
use gpiocdev::line::{Bias as GpioBias, EdgeDetection, EdgeKind};
use gpiocdev::{Chip, Request};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Consumer label the kernel shows for our line (`gpioinfo`, and in "busy" errors of others).
const CONSUMER: &str = "styleframe";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("no GPIO chip `{chip}` ({})", chips_present(.available))]
    NoSuchChip {
        chip: String,
        available: Vec<String>,
    },

    #[error("no GPIO line named `{line}` (searched {}{})", list_or_none(.searched), could_not_open(.unreadable))]
    NoSuchLine {
        line: String,
        /// Chips whose line names were read.
        searched: Vec<String>,
        /// Chips that could not be opened, with the reason.
        unreadable: Vec<String>,
    },

    #[error("GPIO chip {chip} has no line {offset} (it has {lines} lines: 0..{lines})")]
    OffsetOutOfRange {
        chip: String,
        offset: u32,
        lines: u32,
    },

    #[error("GPIO line {line} on {chip} is busy (used by `{consumer}`): stop the other user (another styleframe? a sysfs export? a device-tree overlay?)")]
    Busy {
        chip: String,
        line: String,
        consumer: String,
    },

    #[error("permission denied on GPIO chip {chip} (line {line}): add the user to the `gpio` group (`sudo usermod -aG gpio $USER`, then log in again) or grant access with a udev rule")]
    PermissionDenied { chip: String, line: String },

    #[error("GPIO line {line} on {chip} is not open (it was lost and not reopened yet)")]
    NotOpen { chip: String, line: String },

    #[error("GPIO chip {chip}, line {line}: {source}")]
    Gpio {
        chip: String,
        line: String,
        #[source]
        source: gpiocdev::Error,
    },
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "no chips".into()
    } else {
        v.join(", ")
    }
}

fn chips_present(v: &[String]) -> String {
    if v.is_empty() {
        "this system has no GPIO chips under /dev".into()
    } else {
        format!("chips present: {}", v.join(", "))
    }
}

fn could_not_open(v: &[String]) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("; could not open: {}", v.join(", "))
    }
}

/// One push-button line delivering logical edges (`pressed` = true when pushed).
pub trait ButtonLine: Send {
    /// Waits up to `timeout` for the next edge; `Ok(None)` on timeout (or an interrupted wait).
    fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, InputError>;

    /// Human-readable description for logs ("/dev/gpiochip0 line 17 (GPIO17), ...").
    fn describe(&self) -> String;

    /// Re-acquires the line after `wait_edge` failed. The default does nothing (nothing to reopen).
    fn reopen(&mut self) -> Result<(), InputError> {
        Ok(())
    }
}

/// A GPIO chip and what is on it, for `styleframe doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipInfo {
    pub path: PathBuf,
    /// Kernel name ("gpiochip0"); the file name when the chip could not be opened.
    pub name: String,
    /// Driver label ("pinctrl-bcm2711"); `"<cannot open: REASON>"` when it could not be opened.
    pub label: String,
    pub lines: usize,
    /// Lines that have a name (offset, name), e.g. (17, "GPIO17").
    pub named_lines: Vec<(u32, String)>,
}

/// Every GPIO chip under /dev (empty when there is none). Never fails: a chip that cannot be
/// opened is listed with the reason in its label.
pub fn list_chips() -> Vec<ChipInfo> {
    chip_paths()
        .into_iter()
        .map(|path| {
            let fallback_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let opened = Chip::from_path(&path).and_then(|c| c.info().map(|i| (c, i)));
            match opened {
                Ok((chip, info)) => {
                    let named_lines = chip
                        .line_info_iter()
                        .map(|it| {
                            it.filter_map(Result::ok)
                                .filter(|li| !li.name.is_empty())
                                .map(|li| (li.offset, li.name))
                                .collect()
                        })
                        .unwrap_or_default();
                    ChipInfo {
                        path,
                        name: info.name,
                        label: info.label,
                        lines: info.num_lines as usize,
                        named_lines,
                    }
                }
                Err(e) => ChipInfo {
                    path,
                    name: fallback_name,
                    label: format!("<cannot open: {e}>"),
                    lines: 0,
                    named_lines: Vec::new(),
                },
            }
        })
        .collect()
}

fn chip_paths() -> Vec<PathBuf> {
    // No /dev/gpiochip* at all is the normal case off a Pi: an empty list, not an error.
    gpiocdev::chip::chips().unwrap_or_default()
}

fn path_names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// "gpiochip0" -> /dev/gpiochip0; anything with a slash is a path already.
fn chip_path(chip: &str) -> PathBuf {
    if chip.contains('/') {
        PathBuf::from(chip)
    } else {
        Path::new("/dev").join(chip)
    }
}

/// The OS error number behind a gpiocdev error, if there is one.
fn errno(e: &gpiocdev::Error) -> Option<i32> {
    match e {
        gpiocdev::Error::Os(n) => Some(n.0),
        // gpiocdev_uapi's error type is not re-exported; its Display is io::Error's, which ends
        // with "(os error N)".
        gpiocdev::Error::Uapi(_, inner) => {
            let s = inner.to_string();
            let tail = s.rsplit_once("(os error ")?.1;
            tail.trim_end_matches(')').parse().ok()
        }
        _ => None,
    }
}

fn classify(e: gpiocdev::Error, chip: &Path, line: &str) -> InputError {
    let chip_s = chip.display().to_string();
    match errno(&e) {
        Some(libc::EACCES) | Some(libc::EPERM) => InputError::PermissionDenied {
            chip: chip_s,
            line: line.into(),
        },
        Some(libc::EBUSY) => InputError::Busy {
            chip: chip_s,
            line: line.into(),
            consumer: "unknown".into(),
        },
        Some(libc::ENOENT) | Some(libc::ENODEV) => InputError::NoSuchChip {
            chip: chip_s,
            available: path_names(&chip_paths()),
        },
        _ => InputError::Gpio {
            chip: chip_s,
            line: line.into(),
            source: e,
        },
    }
}

fn open_chip(path: &Path, line: &str) -> Result<Chip, InputError> {
    if !path.exists() {
        return Err(InputError::NoSuchChip {
            chip: path.display().to_string(),
            available: path_names(&chip_paths()),
        });
    }
    Chip::from_path(path).map_err(|e| classify(e, path, line))
}

/// Where the configured line is.
#[derive(Clone, Debug)]
struct LineLocation {
    chip: PathBuf,
    offset: u32,
    /// The line's name as the kernel reports it (may be empty).
    name: String,
}

fn locate(cfg: &ButtonConfig) -> Result<LineLocation, InputError> {
    let line = cfg.line.trim();
    let configured = chip_path(cfg.chip.trim());
    if let Ok(offset) = line.parse::<u32>() {
        let chip = open_chip(&configured, line)?;
        let info = chip.info().map_err(|e| classify(e, &configured, line))?;
        if offset >= info.num_lines {
            return Err(InputError::OffsetOutOfRange {
                chip: configured.display().to_string(),
                offset,
                lines: info.num_lines,
            });
        }
        let name = chip.line_info(offset).map(|li| li.name).unwrap_or_default();
        return Ok(LineLocation {
            chip: chip.path().to_path_buf(),
            offset,
            name,
        });
    }

    // A name: the configured chip first, then every chip (on a Pi 5 the header's lines are not
    // on gpiochip0 with every kernel, so the name is the portable way to say "GPIO17").
    let mut candidates = vec![configured.clone()];
    candidates.extend(chip_paths());
    let mut searched: Vec<PathBuf> = Vec::new();
    let mut unreadable = Vec::new();
    for path in candidates {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if searched.contains(&canonical) || !path.exists() {
            continue;
        }
        match Chip::from_path(&path) {
            Ok(chip) => {
                searched.push(canonical);
                if let Some(li) = chip.find_line_info(line) {
                    if path != configured {
                        log::info!(
                            "button line `{line}` found on {} (not on {})",
                            chip.path().display(),
                            configured.display()
                        );
                    }
                    return Ok(LineLocation {
                        chip: chip.path().to_path_buf(),
                        offset: li.offset,
                        name: li.name,
                    });
                }
            }
            Err(e) => {
                let err = classify(e, &path, line);
                if let InputError::PermissionDenied { .. } = err {
                    // Not being allowed to look is the likelier story than a wrong name.
                    if path == configured {
                        return Err(err);
                    }
                }
                searched.push(canonical);
                unreadable.push(format!("{}: {err}", path.display()));
            }
        }
    }
    Err(InputError::NoSuchLine {
        line: line.into(),
        searched: path_names(&searched),
        unreadable,
    })
}

fn bias(b: Bias) -> GpioBias {
    match b {
        Bias::PullUp => GpioBias::PullUp,
        Bias::PullDown => GpioBias::PullDown,
        Bias::Disabled => GpioBias::Disabled,
    }
}

/// Requests the line as an input with both edges; returns the request and whether the kernel
/// debounces it.
fn request(loc: &LineLocation, cfg: &ButtonConfig) -> Result<(Request, bool), InputError> {
    let line = loc.offset.to_string();
    // Ask first who holds the line, so "busy" can name the other user.
    let chip = open_chip(&loc.chip, &line)?;
    if let Ok(info) = chip.line_info(loc.offset) {
        if info.used {
            return Err(InputError::Busy {
                chip: loc.chip.display().to_string(),
                line: describe_line(loc),
                consumer: if info.consumer.is_empty() {
                    "unnamed consumer".into()
                } else {
                    info.consumer
                },
            });
        }
    }
    drop(chip);

    let attempt = |debounce: Option<Duration>| {
        let mut b = Request::builder();
        b.on_chip(&loc.chip)
            .with_consumer(CONSUMER)
            .with_line(loc.offset)
            .as_input()
            .with_bias(bias(cfg.bias))
            .with_edge_detection(EdgeDetection::BothEdges);
        if cfg.active_low {
            // The kernel then reports logical levels: a rising edge is a press.
            b.as_active_low();
        }
        if let Some(d) = debounce {
            b.with_debounce_period(d);
        }
        b.request()
    };
    let debounce = (cfg.debounce_ms > 0).then(|| Duration::from_millis(cfg.debounce_ms.into()));
    match attempt(debounce) {
        Ok(r) => Ok((r, debounce.is_some())),
        Err(e) => {
            let err = classify(e, &loc.chip, &describe_line(loc));
            match err {
                InputError::Gpio { .. } if debounce.is_some() => {
                    // Some drivers/kernels refuse a debounce period; the userspace debounce in
                    // PressDetector still applies.
                    log::warn!(
                        "GPIO {} line {}: kernel debounce refused ({err}); relying on userspace debounce",
                        loc.chip.display(),
                        describe_line(loc)
                    );
                    attempt(None)
                        .map(|r| (r, false))
                        .map_err(|e| classify(e, &loc.chip, &describe_line(loc)))
                }
                other => Err(other),
            }
        }
    }
}

fn describe_line(loc: &LineLocation) -> String {
    if loc.name.is_empty() {
        loc.offset.to_string()
    } else {
        format!("{} ({})", loc.offset, loc.name)
    }
}

/// The real button: one GPIO line through the kernel's character device (uAPI v2).
pub struct GpioButton {
    cfg: ButtonConfig,
    loc: LineLocation,
    req: Option<Request>,
    kernel_debounce: bool,
    /// Edge events read from the kernel but not handed out yet (u64 words, as gpiocdev reads
    /// them). gpiocdev 0.8's `Request::read_edge_event` reads up to 8 events and returns only
    /// the first, silently dropping the others (seen on gpio-sim: a press and its release
    /// queued together lost the release), so we read and split them ourselves.
    events: Vec<u64>,
    /// Next unread word in `events` / number of words filled.
    events_pos: usize,
    events_len: usize,
}

/// Edge events read per `read(2)`.
const EVENTS_PER_READ: usize = 16;

impl GpioButton {
    /// Finds and requests the line named by `cfg.chip` / `cfg.line`.
    pub fn open(cfg: &ButtonConfig) -> Result<GpioButton, InputError> {
        let loc = locate(cfg)?;
        let (req, kernel_debounce) = request(&loc, cfg)?;
        let words = EVENTS_PER_READ * req.edge_event_u64_size();
        let b = GpioButton {
            cfg: cfg.clone(),
            loc,
            req: Some(req),
            kernel_debounce,
            events: vec![0; words],
            events_pos: 0,
            events_len: 0,
        };
        log::info!("button: {}", b.describe());
        Ok(b)
    }

    /// Whether the kernel debounces the line (else only the userspace debounce does).
    pub fn kernel_debounce(&self) -> bool {
        self.kernel_debounce
    }

    /// Current logical level (true = pressed).
    pub fn is_pressed(&self) -> Result<bool, InputError> {
        let req = self.req.as_ref().ok_or_else(|| self.not_open())?;
        req.lone_value()
            .map(|v| v == gpiocdev::line::Value::Active)
            .map_err(|e| classify(e, &self.loc.chip, &describe_line(&self.loc)))
    }

    fn not_open(&self) -> InputError {
        InputError::NotOpen {
            chip: self.loc.chip.display().to_string(),
            line: describe_line(&self.loc),
        }
    }
}

impl ButtonLine for GpioButton {
    fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, InputError> {
        let req = self.req.as_ref().ok_or_else(|| self.not_open())?;
        let to_err = |e| classify(e, &self.loc.chip, &describe_line(&self.loc));
        let size = req.edge_event_u64_size();
        if self.events_pos >= self.events_len {
            match req.wait_edge_event(timeout) {
                Ok(false) => return Ok(None),
                Ok(true) => {}
                // A signal landing on this thread interrupts poll(2): not an error.
                Err(e) if errno(&e) == Some(libc::EINTR) => return Ok(None),
                Err(e) => return Err(to_err(e)),
            }
            let n = req
                .read_edge_events_into_slice(&mut self.events)
                .map_err(to_err)?;
            self.events_pos = 0;
            self.events_len = n - n % size;
            if self.events_len == 0 {
                return Ok(None);
            }
        }
        let slice = &self.events[self.events_pos..self.events_pos + size];
        self.events_pos += size;
        let ev = req.edge_event_from_slice(slice).map_err(to_err)?;
        Ok(Some(Edge {
            pressed: ev.kind == EdgeKind::Rising,
            at: Duration::from_nanos(ev.timestamp_ns),
        }))
    }

    fn describe(&self) -> String {
        format!(
            "{} line {}, {}, bias {:?}, debounce {} ms ({}){}",
            self.loc.chip.display(),
            describe_line(&self.loc),
            if self.cfg.active_low {
                "active-low"
            } else {
                "active-high"
            },
            self.cfg.bias,
            self.cfg.debounce_ms,
            if self.kernel_debounce {
                "kernel + userspace"
            } else {
                "userspace only"
            },
            if self.req.is_none() { ", not open" } else { "" }
        )
    }

    fn reopen(&mut self) -> Result<(), InputError> {
        // Release our old request first, or the new one would find the line busy (with us).
        self.req = None;
        // Locate again: after a driver reload the chip number may have changed.
        let loc = locate(&self.cfg)?;
        let (req, kernel_debounce) = request(&loc, &self.cfg)?;
        self.loc = loc;
        self.events_pos = 0;
        self.events_len = 0;
        self.events
            .resize(EVENTS_PER_READ * req.edge_event_u64_size(), 0);
        self.req = Some(req);
        self.kernel_debounce = kernel_debounce;
        Ok(())
    }
}

/// A button for tests: edges (or errors) are pushed through a [`FakeButtonHandle`].
pub struct FakeButton {
    rx: Receiver<Result<Edge, InputError>>,
    reopens: Arc<AtomicUsize>,
}

/// The test's end of a [`FakeButton`].
#[derive(Clone)]
pub struct FakeButtonHandle {
    tx: Sender<Result<Edge, InputError>>,
    reopens: Arc<AtomicUsize>,
}

impl FakeButton {
    pub fn new() -> (FakeButton, FakeButtonHandle) {
        let (tx, rx) = mpsc::channel();
        let reopens = Arc::new(AtomicUsize::new(0));
        (
            FakeButton {
                rx,
                reopens: reopens.clone(),
            },
            FakeButtonHandle { tx, reopens },
        )
    }
}

impl FakeButtonHandle {
    /// An edge stamped now (monotonic clock, as real GPIO events are). False if the button is gone.
    pub fn edge(&self, pressed: bool) -> bool {
        self.send(Ok(Edge {
            pressed,
            at: monotonic_now(),
        }))
    }

    pub fn press(&self) -> bool {
        self.edge(true)
    }

    pub fn release(&self) -> bool {
        self.edge(false)
    }

    /// Any edge (timestamps on the monotonic clock), or an error for `wait_edge` to return.
    pub fn send(&self, item: Result<Edge, InputError>) -> bool {
        self.tx.send(item).is_ok()
    }

    /// How often [`ButtonLine::reopen`] was called.
    pub fn reopens(&self) -> usize {
        self.reopens.load(Ordering::SeqCst)
    }
}

impl ButtonLine for FakeButton {
    fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, InputError> {
        match self.rx.recv_timeout(timeout) {
            Ok(item) => item.map(Some),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                // Like an idle line: nobody presses any more.
                std::thread::sleep(timeout);
                Ok(None)
            }
        }
    }

    fn describe(&self) -> String {
        "fake button".into()
    }

    fn reopen(&mut self) -> Result<(), InputError> {
        self.reopens.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(chip: &str, line: &str) -> ButtonConfig {
        ButtonConfig {
            enabled: true,
            chip: chip.into(),
            line: line.into(),
            ..ButtonConfig::default()
        }
    }

    #[test]
    fn missing_chip_is_named_in_the_error() {
        let err = GpioButton::open(&cfg("gpiochip97", "17"))
            .err()
            .expect("no such chip");
        let msg = err.to_string();
        assert!(matches!(err, InputError::NoSuchChip { .. }), "{msg}");
        assert!(msg.contains("/dev/gpiochip97"), "{msg}");
    }

    #[test]
    fn unknown_line_name_says_which_chips_were_searched() {
        let err = GpioButton::open(&cfg("gpiochip97", "NO_SUCH_LINE_XYZ"))
            .err()
            .expect("no such line");
        let msg = err.to_string();
        match &err {
            InputError::NoSuchLine { line, searched, .. } => {
                assert_eq!(line, "NO_SUCH_LINE_XYZ");
                assert_eq!(searched.len(), list_chips().len(), "{msg}");
            }
            other => panic!("expected NoSuchLine, got {other:?}"),
        }
        assert!(msg.contains("NO_SUCH_LINE_XYZ"), "{msg}");
    }

    #[test]
    fn error_messages_carry_the_hints() {
        let e = InputError::NoSuchChip {
            chip: "gpiochip9".into(),
            available: vec![],
        };
        assert!(e.to_string().contains("no GPIO chips"), "{e}");
        let e = InputError::NoSuchChip {
            chip: "gpiochip9".into(),
            available: vec!["/dev/gpiochip0".into(), "/dev/gpiochip1".into()],
        };
        assert!(
            e.to_string().contains("/dev/gpiochip0, /dev/gpiochip1"),
            "{e}"
        );
        let e = InputError::PermissionDenied {
            chip: "/dev/gpiochip0".into(),
            line: "17".into(),
        };
        assert!(e.to_string().contains("`gpio` group"), "{e}");
        let e = InputError::Busy {
            chip: "/dev/gpiochip0".into(),
            line: "17 (GPIO17)".into(),
            consumer: "sysfs".into(),
        };
        assert!(e.to_string().contains("`sysfs`"), "{e}");
    }

    #[test]
    fn chip_names_map_to_dev_paths() {
        assert_eq!(chip_path("gpiochip0"), PathBuf::from("/dev/gpiochip0"));
        assert_eq!(chip_path("/dev/gpiochip4"), PathBuf::from("/dev/gpiochip4"));
    }

    #[test]
    fn list_chips_does_not_fail_without_hardware() {
        // Here (no /dev/gpiochip*) it is empty; on a board every entry must be consistent.
        for c in list_chips() {
            assert!(c.path.starts_with("/dev"), "{c:?}");
            assert!(c
                .named_lines
                .iter()
                .all(|(o, _)| (*o as usize) < c.lines.max(1)));
        }
    }

    #[test]
    fn fake_button_delivers_edges_then_times_out() {
        let (mut b, h) = FakeButton::new();
        assert!(h.press());
        let e = b.wait_edge(Duration::from_millis(10)).unwrap().unwrap();
        assert!(e.pressed);
        assert_eq!(b.wait_edge(Duration::from_millis(10)).unwrap(), None);
        drop(h);
        assert_eq!(b.wait_edge(Duration::from_millis(1)).unwrap(), None);
    }
}
