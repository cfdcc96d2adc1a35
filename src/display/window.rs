//! Window backend: a minifb X11 window, full-screen borderless in a kiosk
//! session, cursor hidden, keyboard mapped to [`Command`]s.
//!
//! Screen size: `display.width`/`height` when set; otherwise the X screen's
//! size, asked from libX11 directly (minifb has no query for it; libX11 is
//! dlopen'ed like minifb does, so no new build dependency); if even that fails
//! 1280x720. Without a window manager (bare `xinit` kiosk) a screen-sized
//! window at (0,0) *is* full screen; under a WM, borderless + topmost is the
//! closest minifb offers (it cannot set `_NET_WM_STATE_FULLSCREEN`).
//!
//! Caveat: if the X server dies while running, Xlib's default I/O error
//! handler exits the process; systemd's `Restart=` brings it back.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use minifb::{Key, KeyRepeat, Scale, ScaleMode, Window, WindowOptions};

use crate::config::DisplayConfig;
use crate::frame::Command;

use super::{check_size, DisplayError, Screen};

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
        if display.is_empty() {
            return Err(DisplayError::NoDisplay {
                message: "DISPLAY is not set: run styleframe inside an X session (kiosk: \
                          xinit/startx, or DISPLAY=:0 with XAUTHORITY), or set \
                          display.backend = \"framebuffer\" or \"headless\""
                    .into(),
            });
        }
        // Probe before minifb: it panics or aborts on some failures we can report cleanly.
        let x_size = x11_screen_size().map_err(|e| DisplayError::NoDisplay {
            message: format!("cannot use X display {display:?}: {e}"),
        })?;
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

// ---- X screen size through a dlopen'ed libX11 ----

type XOpenDisplay = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type XCloseDisplay = unsafe extern "C" fn(*mut c_void) -> c_int;
type XDefaultScreen = unsafe extern "C" fn(*mut c_void) -> c_int;
type XDisplayDim = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;

/// `Ok(Some(size))` from X, `Ok(None)` when libX11 cannot be loaded (minifb
/// will report that itself), `Err` when the X server refuses the connection.
fn x11_screen_size() -> Result<Option<(usize, usize)>, String> {
    // SAFETY: plain C calls with the signatures from Xlib.h; the display is
    // closed again and the library handle is released.
    unsafe {
        let mut lib = std::ptr::null_mut();
        for name in [c"libX11.so.6", c"libX11.so"] {
            lib = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if !lib.is_null() {
                break;
            }
        }
        if lib.is_null() {
            log::warn!("libX11 not loadable: cannot ask the X screen size");
            return Ok(None);
        }
        let sym = |name: &CStr| libc::dlsym(lib, name.as_ptr());
        let (open, close, screen, width, height) = (
            sym(c"XOpenDisplay"),
            sym(c"XCloseDisplay"),
            sym(c"XDefaultScreen"),
            sym(c"XDisplayWidth"),
            sym(c"XDisplayHeight"),
        );
        if [open, close, screen, width, height]
            .iter()
            .any(|p| p.is_null())
        {
            libc::dlclose(lib);
            return Ok(None);
        }
        let open: XOpenDisplay = std::mem::transmute(open);
        let close: XCloseDisplay = std::mem::transmute(close);
        let screen: XDefaultScreen = std::mem::transmute(screen);
        let width: XDisplayDim = std::mem::transmute(width);
        let height: XDisplayDim = std::mem::transmute(height);

        let dpy = open(std::ptr::null());
        if dpy.is_null() {
            libc::dlclose(lib);
            return Err(
                "XOpenDisplay failed: is the X server running, and may this user \
                        connect (XAUTHORITY, xhost)?"
                    .into(),
            );
        }
        let s = screen(dpy);
        let (w, h) = (width(dpy, s), height(dpy, s));
        close(dpy);
        libc::dlclose(lib);
        if w > 0 && h > 0 {
            Ok(Some((w as usize, h as usize)))
        } else {
            Ok(None)
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
}
