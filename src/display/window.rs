//! Window backend: a minifb X11 window, full-screen borderless in a kiosk
//! session, cursor hidden, keyboard mapped to [`Command`]s.
//!
//! Screen size: `display.width`/`height` when set; otherwise the X screen's
//! size, asked from libX11 directly (minifb has no query for it; libX11 is
//! dlopen'ed like minifb does, so no new build dependency); if even that fails
//! 1280x720. Without a window manager (bare `xinit` kiosk) a screen-sized
//! window at (0,0) *is* full screen; under a window manager the window is also
//! borderless + topmost, and the WM is asked for `_NET_WM_STATE_FULLSCREEN`
//! (EWMH; minifb cannot do that itself) so panels do not cover the picture.
//!
//! Caveat: if the X server dies while running, Xlib's default I/O error
//! handler exits the process; systemd's `Restart=` brings it back.

use std::ffi::{c_char, c_int, c_long, c_ulong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use minifb::{Key, KeyRepeat, Scale, ScaleMode, Window, WindowOptions};

use crate::config::DisplayConfig;
use crate::frame::Command;

use super::{check_size, DisplayError, PowerMode, Screen};

/// Size used when neither the config nor X tells one.
pub const FALLBACK_SIZE: (usize, usize) = (1280, 720);
const TITLE: &str = "styleframe";

/// The key table: Right/Space/N next style, Left/P/Backspace previous,
/// G gallery, B blank, Esc/Q quit.
pub fn key_to_command(key: Key) -> Option<Command> {
    match key {
        Key::Right | Key::Space | Key::N => Some(Command::NextStyle),
        Key::Left | Key::P | Key::Backspace => Some(Command::PrevStyle),
        Key::G => Some(Command::ToggleGallery),
        Key::B => Some(Command::ToggleBlank),
        Key::C => Some(Command::ShowPairing),
        Key::Escape | Key::Q => Some(Command::Quit),
        _ => None,
    }
}

pub struct WindowScreen {
    window: Window,
    width: usize,
    height: usize,
    /// Commands seen by any window update since the last `poll_commands`
    /// (minifb only remembers the keys of the latest update).
    pending: Vec<Command>,
    /// Whether `present`/`blank` updated the window since the last poll
    /// (otherwise `poll_commands` must pump the events itself).
    updated: bool,
    /// Black picture for `blank`, made on first use.
    black: Vec<u32>,
}

impl WindowScreen {
    pub fn open(cfg: &DisplayConfig) -> Result<Self, DisplayError> {
        let display = std::env::var("DISPLAY").unwrap_or_default();
        if display.is_empty() && DesktopSession::from_env() == DesktopSession::Wayland {
            return Err(DisplayError::NoDisplay {
                message: "WAYLAND_DISPLAY is set but DISPLAY is not: the window needs \
                          XWayland (Pi OS's labwc starts it; check that the `xwayland` package \
                          is installed and that the session exports DISPLAY, e.g. \
                          `systemctl --user import-environment DISPLAY WAYLAND_DISPLAY`)"
                    .into(),
            });
        }
        if display.is_empty() {
            return Err(DisplayError::NoDisplay {
                message: "DISPLAY is not set: run styleframe inside an X session (kiosk: \
                          xinit/startx, or DISPLAY=:0 with XAUTHORITY), or set \
                          display.backend = \"framebuffer\" or \"headless\""
                    .into(),
            });
        }
        // Probe before minifb: it panics or aborts on some failures we can report cleanly.
        let conn = XConn::open().map_err(|e| DisplayError::NoDisplay {
            message: format!("cannot use X display {display:?}: {e}"),
        })?;
        let x_size = conn.as_ref().and_then(XConn::screen_size);
        let (width, height) = match (cfg.width as usize, cfg.height as usize) {
            (w, h) if w > 0 && h > 0 => (w, h),
            _ => x_size.unwrap_or(FALLBACK_SIZE),
        };

        let opts = WindowOptions {
            borderless: cfg.fullscreen,
            title: !cfg.fullscreen,
            resize: false,
            scale: Scale::X1,
            scale_mode: ScaleMode::Stretch,
            topmost: cfg.fullscreen,
            none: cfg.fullscreen,
            ..WindowOptions::default()
        };
        let mut window = catch_unwind(AssertUnwindSafe(|| Window::new(TITLE, width, height, opts)))
            .map_err(|_| DisplayError::NoDisplay {
                message: format!(
                    "minifb panicked opening a {width}x{height} window on {display:?}"
                ),
            })?
            .map_err(|e| DisplayError::NoDisplay {
                message: format!("cannot open a {width}x{height} window on {display:?}: {e}"),
            })?;
        window.set_cursor_visibility(false);
        if let (true, Some(conn)) = (cfg.fullscreen, &conn) {
            if let Err(e) = conn.request_fullscreen(window.get_window_handle() as XWindow) {
                log::warn!("could not ask the window manager for full screen: {e}");
            }
        }
        drop(conn); // minifb holds its own connection now
        window.set_target_fps(cfg.fps as usize);
        log::info!(
            "window {width}x{height} on {display} (fullscreen: {}, {} fps)",
            cfg.fullscreen,
            cfg.fps
        );
        Ok(WindowScreen {
            window,
            width,
            height,
            pending: Vec::new(),
            updated: false,
            black: Vec::new(),
        })
    }

    fn collect_keys(&mut self) {
        for key in self.window.get_keys_pressed(KeyRepeat::No) {
            if let Some(cmd) = key_to_command(key) {
                log::debug!("key {key:?} -> {cmd:?}");
                self.pending.push(cmd);
            }
        }
        self.updated = true;
    }

    fn after_update(&mut self, r: minifb::Result<()>) -> Result<(), DisplayError> {
        self.collect_keys();
        r.map_err(|e| DisplayError::Gone {
            message: format!("window update failed: {e}"),
        })?;
        if !self.window.is_open() {
            return Err(DisplayError::Gone {
                message: "the window was closed".into(),
            });
        }
        Ok(())
    }
}

impl Screen for WindowScreen {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn present(&mut self, pixels: &[u32]) -> Result<(), DisplayError> {
        check_size(pixels, self.width, self.height)?;
        // Also pumps X events and paces to the target fps (the stage's own clock).
        let r = self
            .window
            .update_with_buffer(pixels, self.width, self.height);
        self.after_update(r)
    }

    fn blank(&mut self) -> Result<(), DisplayError> {
        if self.black.len() != self.width * self.height {
            self.black = vec![0; self.width * self.height];
        }
        let r = self
            .window
            .update_with_buffer(&self.black, self.width, self.height);
        self.after_update(r)
    }

    /// The desktop's own way (wlopm on Wayland, xset on X11), after
    /// blanking the window; without it the black window stays lit.
    fn set_power(&mut self, on: bool) -> Result<PowerMode, DisplayError> {
        if !on {
            self.blank()?;
        }
        let session = DesktopSession::from_env();
        let Some((prog, args)) = desktop_power_command(session, on) else {
            return Ok(if on { PowerMode::On } else { PowerMode::Black });
        };
        let r = run_power_command(prog, &args, POWER_COMMAND_TIMEOUT).and_then(|_| {
            // `xset dpms force off` exits 0 even on a server without DPMS: ask.
            if session == DesktopSession::X11 && !on {
                let q = run_power_command("xset", &["q"], POWER_COMMAND_TIMEOUT)?;
                if !x11_monitor_off(&q) {
                    return Err("the X server reports no monitor off (no DPMS extension?)".into());
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => {
                log::info!(
                    "screen powered {} ({prog} {})",
                    if on { "on" } else { "off" },
                    args.join(" ")
                );
                Ok(if on { PowerMode::On } else { PowerMode::Off })
            }
            Err(e) if on => {
                log::warn!("cannot power the screen on with {prog}: {e}");
                Ok(PowerMode::On)
            }
            Err(e) => {
                log::info!(
                    "cannot power the screen off with {prog} ({e}); the window shows black instead \
                     (install {})",
                    if prog == "wlopm" { "wlopm" } else { "x11-xserver-utils" }
                );
                Ok(PowerMode::Black)
            }
        }
    }

    fn poll_commands(&mut self, out: &mut Vec<Command>) {
        if !self.updated {
            // Nothing was drawn since the last poll (e.g. blanked at night):
            // pump the events here so keys still work.
            self.window.update();
            self.collect_keys();
        }
        self.updated = false;
        out.append(&mut self.pending);
    }

    fn is_open(&self) -> bool {
        self.window.is_open()
    }
}

// ---- Screen power through the desktop ----

/// How long a desktop power command may take before it is given up on.
const POWER_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Which kind of desktop session the window lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesktopSession {
    /// A Wayland compositor (labwc, wayfire): the window is an XWayland client.
    Wayland,
    /// A plain X server.
    X11,
    None,
}

impl DesktopSession {
    pub fn from_env() -> Self {
        let set = |v: &str| std::env::var_os(v).is_some_and(|d| !d.is_empty());
        if set("WAYLAND_DISPLAY") {
            DesktopSession::Wayland
        } else if set("DISPLAY") {
            DesktopSession::X11
        } else {
            DesktopSession::None
        }
    }
}

/// The command that powers the desktop's screens off or on. Under Wayland
/// XWayland's own DPMS does not reach the outputs: the compositor's
/// wlr-output-power-management does (`wlopm`, labwc and wayfire support it).
pub fn desktop_power_command(
    session: DesktopSession,
    on: bool,
) -> Option<(&'static str, Vec<&'static str>)> {
    match session {
        DesktopSession::Wayland => Some(("wlopm", vec![if on { "--on" } else { "--off" }, "*"])),
        DesktopSession::X11 => Some(("xset", vec!["dpms", "force", if on { "on" } else { "off" }])),
        DesktopSession::None => None,
    }
}

/// Whether `xset q` says the monitor is off (its "DPMS is Enabled / Monitor is Off" lines).
pub fn x11_monitor_off(xset_q: &str) -> bool {
    xset_q.lines().any(|l| l.trim() == "Monitor is Off")
}

/// Runs `prog args`, waiting at most `timeout`: a hung command is killed, so
/// the display loop is held up at most that long (once a night). Returns its
/// stdout (a few lines: read after it ends).
pub fn run_power_command(
    prog: &str,
    args: &[&str],
    timeout: std::time::Duration,
) -> Result<String, String> {
    use std::io::Read;
    let mut child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let end = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                let mut out = String::new();
                if let Some(mut o) = child.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                return Ok(out);
            }
            Ok(Some(status)) => return Err(format!("{prog} failed ({status})")),
            Ok(None) if std::time::Instant::now() < end => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{prog} did not finish within {timeout:?}"));
            }
            Err(e) => return Err(format!("waiting for {prog}: {e}")),
        }
    }
}

// ---- A few Xlib calls through a dlopen'ed libX11 (as minifb itself does) ----

type Dpy = *mut c_void;
type XWindow = c_ulong;
type Atom = c_ulong;

/// `XClientMessageEvent` (Xlib.h), inside the 24-long `XEvent` union.
#[repr(C)]
#[derive(Clone, Copy)]
struct XClientMessageEvent {
    type_: c_int,
    serial: c_ulong,
    send_event: c_int,
    display: Dpy,
    window: XWindow,
    message_type: Atom,
    format: c_int,
    data: [c_long; 5],
}

#[repr(C)]
union XEvent {
    client: XClientMessageEvent,
    pad: [c_long; 24],
}

/// `XSizeHints` (Xutil.h): flags, then 17 ints; all zero = no constraints.
#[repr(C)]
struct XSizeHints {
    flags: c_long,
    fields: [c_int; 17],
}

const CLIENT_MESSAGE: c_int = 33;
const SUBSTRUCTURE_NOTIFY_MASK: c_long = 1 << 19;
const SUBSTRUCTURE_REDIRECT_MASK: c_long = 1 << 20;
const NET_WM_STATE_ADD: c_long = 1;

type OpenDisplayFn = unsafe extern "C" fn(*const c_char) -> Dpy;
type DpyIntFn = unsafe extern "C" fn(Dpy) -> c_int;
type DpyScreenIntFn = unsafe extern "C" fn(Dpy, c_int) -> c_int;
type RootWindowFn = unsafe extern "C" fn(Dpy) -> XWindow;
type InternAtomFn = unsafe extern "C" fn(Dpy, *const c_char, c_int) -> Atom;
type SendEventFn = unsafe extern "C" fn(Dpy, XWindow, c_int, c_long, *mut XEvent) -> c_int;
type SetHintsFn = unsafe extern "C" fn(Dpy, XWindow, *mut XSizeHints);

struct Xlib {
    lib: *mut c_void,
    open_display: OpenDisplayFn,
    close_display: DpyIntFn,
    default_screen: DpyIntFn,
    display_width: DpyScreenIntFn,
    display_height: DpyScreenIntFn,
    default_root_window: RootWindowFn,
    intern_atom: InternAtomFn,
    send_event: SendEventFn,
    set_wm_normal_hints: SetHintsFn,
    flush: DpyIntFn,
}

impl Xlib {
    /// `None` when libX11 is not installed (minifb then reports it itself).
    fn load() -> Option<Xlib> {
        // SAFETY: symbols are looked up by their Xlib names and cast to the
        // signatures declared in Xlib.h.
        unsafe {
            let mut lib = std::ptr::null_mut();
            for name in [c"libX11.so.6", c"libX11.so"] {
                lib = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                if !lib.is_null() {
                    break;
                }
            }
            if lib.is_null() {
                return None;
            }
            macro_rules! sym {
                ($name:literal, $ty:ty) => {{
                    let p = libc::dlsym(lib, $name.as_ptr());
                    if p.is_null() {
                        libc::dlclose(lib);
                        return None;
                    }
                    std::mem::transmute::<*mut c_void, $ty>(p)
                }};
            }
            Some(Xlib {
                open_display: sym!(c"XOpenDisplay", OpenDisplayFn),
                close_display: sym!(c"XCloseDisplay", DpyIntFn),
                default_screen: sym!(c"XDefaultScreen", DpyIntFn),
                display_width: sym!(c"XDisplayWidth", DpyScreenIntFn),
                display_height: sym!(c"XDisplayHeight", DpyScreenIntFn),
                default_root_window: sym!(c"XDefaultRootWindow", RootWindowFn),
                intern_atom: sym!(c"XInternAtom", InternAtomFn),
                send_event: sym!(c"XSendEvent", SendEventFn),
                set_wm_normal_hints: sym!(c"XSetWMNormalHints", SetHintsFn),
                flush: sym!(c"XFlush", DpyIntFn),
                lib,
            })
        }
    }
}

impl Drop for Xlib {
    fn drop(&mut self) {
        // SAFETY: every connection opened through this library is closed.
        unsafe {
            libc::dlclose(self.lib);
        }
    }
}

const OPEN_ATTEMPTS: u32 = 5;
const OPEN_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// A connection to `$DISPLAY`, closed on drop.
///
/// Held open until minifb has connected too: an X server with no other
/// client (bare `xinit` kiosk, Xvfb) resets when its last client leaves, and
/// refuses connections while it does, so closing the probe first made
/// minifb's own `XOpenDisplay` fail now and then.
struct XConn {
    x: Xlib,
    dpy: Dpy,
}

impl XConn {
    /// `Ok(None)` when libX11 cannot be loaded (minifb then reports it
    /// itself), `Err` when the X server refuses the connection.
    fn open() -> Result<Option<XConn>, String> {
        let Some(x) = Xlib::load() else {
            log::warn!("libX11 not loadable: cannot ask the X screen size");
            return Ok(None);
        };
        // A few tries: a server that is starting, or resetting after its
        // previous last client left, refuses connections for a moment.
        let mut dpy = std::ptr::null_mut();
        for attempt in 0..OPEN_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(OPEN_RETRY_DELAY);
            }
            // SAFETY: a null name means `$DISPLAY`; the result is checked.
            dpy = unsafe { (x.open_display)(std::ptr::null()) };
            if !dpy.is_null() {
                break;
            }
        }
        if dpy.is_null() {
            return Err(
                "XOpenDisplay failed: is the X server running, and may this \
                        user connect (XAUTHORITY, xhost)?"
                    .into(),
            );
        }
        Ok(Some(XConn { x, dpy }))
    }

    fn screen_size(&self) -> Option<(usize, usize)> {
        // SAFETY: `dpy` is a live connection.
        let (w, h) = unsafe {
            let s = (self.x.default_screen)(self.dpy);
            (
                (self.x.display_width)(self.dpy, s),
                (self.x.display_height)(self.dpy, s),
            )
        };
        (w > 0 && h > 0).then_some((w as usize, h as usize))
    }

    /// Asks the window manager (EWMH `_NET_WM_STATE_FULLSCREEN`) to show the
    /// window full screen, above panels. Without a window manager nobody
    /// listens, which is fine: the window already covers the screen.
    fn request_fullscreen(&self, window: XWindow) -> Result<(), String> {
        let (x, dpy) = (&self.x, self.dpy);
        // SAFETY: `dpy` is live; the hints and the event are fully
        // initialised as Xutil.h and EWMH specify.
        let ok = unsafe {
            // minifb pins min = max size; WMs then refuse to grow a window
            // smaller than the screen (configured size), so lift the pin and
            // let minifb stretch the picture to whatever size the WM gives.
            let mut hints = XSizeHints {
                flags: 0,
                fields: [0; 17],
            };
            (x.set_wm_normal_hints)(dpy, window, &mut hints);
            let state = (x.intern_atom)(dpy, c"_NET_WM_STATE".as_ptr(), 0);
            let full = (x.intern_atom)(dpy, c"_NET_WM_STATE_FULLSCREEN".as_ptr(), 0);
            let root = (x.default_root_window)(dpy);
            let mut ev = XEvent { pad: [0; 24] };
            ev.client = XClientMessageEvent {
                type_: CLIENT_MESSAGE,
                serial: 0,
                send_event: 1,
                display: dpy,
                window,
                message_type: state,
                format: 32,
                // add, the property, no second property, source = application.
                data: [NET_WM_STATE_ADD, full as c_long, 0, 1, 0],
            };
            let ok = (x.send_event)(
                dpy,
                root,
                0,
                SUBSTRUCTURE_REDIRECT_MASK | SUBSTRUCTURE_NOTIFY_MASK,
                &mut ev,
            );
            (x.flush)(dpy);
            ok
        };
        if ok != 0 {
            Ok(())
        } else {
            Err("XSendEvent failed".into())
        }
    }
}

impl Drop for XConn {
    fn drop(&mut self) {
        // SAFETY: opened in `open`, closed once here.
        unsafe {
            (self.x.close_display)(self.dpy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table() {
        let table = [
            (Key::Right, Some(Command::NextStyle)),
            (Key::Space, Some(Command::NextStyle)),
            (Key::N, Some(Command::NextStyle)),
            (Key::Left, Some(Command::PrevStyle)),
            (Key::P, Some(Command::PrevStyle)),
            (Key::Backspace, Some(Command::PrevStyle)),
            (Key::G, Some(Command::ToggleGallery)),
            (Key::B, Some(Command::ToggleBlank)),
            (Key::C, Some(Command::ShowPairing)),
            (Key::Escape, Some(Command::Quit)),
            (Key::Q, Some(Command::Quit)),
            (Key::A, None),
            (Key::Up, None),
            (Key::Enter, None),
        ];
        for (key, want) in table {
            assert_eq!(key_to_command(key), want, "{key:?}");
        }
    }

    #[test]
    fn wayland_powers_outputs_through_the_compositor_x11_through_dpms() {
        let cmd = |s, on| desktop_power_command(s, on).map(|(p, a)| format!("{p} {}", a.join(" ")));
        assert_eq!(
            cmd(DesktopSession::Wayland, false).unwrap(),
            "wlopm --off *"
        );
        assert_eq!(cmd(DesktopSession::Wayland, true).unwrap(), "wlopm --on *");
        assert_eq!(
            cmd(DesktopSession::X11, false).unwrap(),
            "xset dpms force off"
        );
        assert_eq!(
            cmd(DesktopSession::X11, true).unwrap(),
            "xset dpms force on"
        );
        assert_eq!(cmd(DesktopSession::None, false), None);
    }

    #[test]
    fn x11_monitor_state_is_read_from_xset_q() {
        let on = "DPMS (Energy Star):\n  Standby: 600    Suspend: 600    Off: 600\n  DPMS is Enabled\n  Monitor is On\n";
        let off = on.replace("Monitor is On", "Monitor is Off");
        let none = "DPMS (Energy Star):\n  Server does not have the DPMS Extension\n";
        assert!(!x11_monitor_off(on));
        assert!(x11_monitor_off(&off));
        assert!(!x11_monitor_off(none));
    }

    #[test]
    fn power_command_failures_are_errors_and_a_hung_one_is_killed() {
        let t = std::time::Duration::from_secs(5);
        assert_eq!(run_power_command("true", &[], t), Ok(String::new()));
        assert_eq!(run_power_command("echo", &["hi"], t), Ok("hi\n".into()));
        let e = run_power_command("false", &[], t).unwrap_err();
        assert!(e.contains("false failed"), "{e}");
        let e = run_power_command("styleframe-no-such-program", &[], t).unwrap_err();
        assert!(e.contains("cannot run styleframe-no-such-program"), "{e}");
        let e =
            run_power_command("sleep", &["30"], std::time::Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
    }
}
