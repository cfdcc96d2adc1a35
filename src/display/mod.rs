//! Display stage: puts pictures on the screen.
//!
//! Four backends sit behind [`Screen`]:
//! - [`window`]: a minifb X11 window (also under Wayland, through XWayland),
//!   full-screen borderless in a kiosk session, with the keyboard mapped to [`Command`]s;
//! - [`kms`]: a DRM card driven directly (Pi OS Lite under `vc4-kms-v3d`):
//!   page flips on vblank, the connector powered off at night;
//! - [`framebuffer`]: a memory-mapped Linux framebuffer (`/dev/fb0`);
//! - [`headless`]: keeps the latest picture in memory (tests, servers), PNG
//!   snapshots only when asked.
//!
//! [`compose::Compositor`] turns small stylized frames into full-screen pixels
//! (scaling + cross-fade); it is pure and independent of the backend.

pub mod compose;
pub mod framebuffer;
pub mod headless;
pub mod kms;
pub mod qr;
pub mod window;

use std::path::PathBuf;

use crate::config::{DisplayBackend, DisplayConfig};
use crate::frame::Command;

pub use compose::Compositor;
pub use headless::{open_headless, HeadlessHandle, HeadlessStats};
pub use window::key_to_command;

#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// No window system to talk to (no `DISPLAY`, X server unreachable, window refused).
    #[error("no display: {message}")]
    NoDisplay { message: String },
    /// The framebuffer device (or its stand-in file) cannot be used as configured.
    #[error("framebuffer {}: {message}", path.display())]
    Framebuffer { path: PathBuf, message: String },
    /// An I/O error on a file or device.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The screen went away while running (window closed, X server gone).
    #[error("display gone: {message}")]
    Gone { message: String },
    /// `present` got a picture of the wrong size.
    #[error("picture has {got} pixels, the screen needs {expected} ({width}x{height})")]
    WrongSize {
        expected: usize,
        got: usize,
        width: usize,
        height: usize,
    },
    /// A headless PNG snapshot could not be written.
    #[error("snapshot {}: {message}", path.display())]
    Snapshot { path: PathBuf, message: String },
    /// Configuration values that cannot work (e.g. a zero size where one is needed).
    #[error("display config: {0}")]
    Config(String),
    /// A DRM card cannot be used (none fits, no permission, another DRM master...).
    #[error("kms {}: {message}", path.display())]
    Kms { path: PathBuf, message: String },
}

/// What [`Screen::set_power`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerMode {
    /// The panel shows pictures.
    On,
    /// The panel is powered down (DPMS off, `FBIOBLANK`, the desktop's own way).
    Off,
    /// The panel could not be powered down: it shows black pixels instead (still lit).
    Black,
}

/// A screen: a minifb window, a Linux framebuffer, or a headless sink.
/// Not `Send`: a window must stay on the thread that opened it.
pub trait Screen {
    /// Width and height in pixels.
    fn size(&self) -> (usize, usize);
    /// Shows one full-screen picture, `width*height` pixels in `0RGB` u32 format.
    fn present(&mut self, pixels: &[u32]) -> Result<(), DisplayError>;
    /// Turns the picture black (shutdown, night schedule).
    fn blank(&mut self) -> Result<(), DisplayError>;
    /// Powers the panel down (`false`: night, blank, shutdown) or up again.
    /// Backends that cannot do that show black pixels: this default.
    fn set_power(&mut self, on: bool) -> Result<PowerMode, DisplayError> {
        if on {
            Ok(PowerMode::On)
        } else {
            self.blank()?;
            Ok(PowerMode::Black)
        }
    }
    /// Appends the commands typed since the last call (keyboard; window only).
    fn poll_commands(&mut self, out: &mut Vec<Command>);
    /// False once the user closed the window.
    fn is_open(&self) -> bool;
}

/// Opens the backend chosen by `cfg.backend`.
///
/// For the headless backend the daemon usually wants [`open_headless`] instead,
/// to keep the [`HeadlessHandle`]; this variant drops it.
pub fn open(cfg: &DisplayConfig) -> Result<Box<dyn Screen>, DisplayError> {
    match cfg.backend {
        DisplayBackend::Auto => open_auto(cfg),
        DisplayBackend::Kms => Ok(Box::new(kms::KmsScreen::open(cfg)?)),
        DisplayBackend::Window => Ok(Box::new(window::WindowScreen::open(cfg)?)),
        DisplayBackend::Framebuffer => Ok(Box::new(framebuffer::FramebufferScreen::open(cfg)?)),
        DisplayBackend::Headless => {
            let (screen, _handle) = open_headless(cfg);
            Ok(screen)
        }
    }
}

/// The backend `auto` stands for, from what the machine offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoChoice {
    Window,
    Kms,
    Framebuffer,
    Nothing,
}

/// `auto`: a window when a desktop session runs (its compositor owns the
/// screen), else KMS when a card drives a connected screen, else the
/// framebuffer device when it exists.
pub fn auto_choice(desktop: bool, kms_usable: bool, framebuffer_exists: bool) -> AutoChoice {
    if desktop {
        AutoChoice::Window
    } else if kms_usable {
        AutoChoice::Kms
    } else if framebuffer_exists {
        AutoChoice::Framebuffer
    } else {
        AutoChoice::Nothing
    }
}

/// Whether a desktop session is reachable: `WAYLAND_DISPLAY` or `DISPLAY` set.
pub fn desktop_session() -> bool {
    window::DesktopSession::from_env() != window::DesktopSession::None
}

fn open_auto(cfg: &DisplayConfig) -> Result<Box<dyn Screen>, DisplayError> {
    let desktop = desktop_session();
    let kms = if desktop {
        None
    } else {
        Some(kms::usable(cfg))
    };
    let kms_ok = matches!(kms, Some(Ok(_)));
    match auto_choice(desktop, kms_ok, cfg.framebuffer.exists()) {
        AutoChoice::Window => Ok(Box::new(window::WindowScreen::open(cfg)?)),
        AutoChoice::Kms => match kms::KmsScreen::open(cfg) {
            Ok(s) => Ok(Box::new(s)),
            // E.g. a desktop holds DRM master but its variables are not in our
            // environment (a system unit): the framebuffer may still work.
            Err(e) if cfg.framebuffer.exists() => {
                log::warn!("{e}; using {} instead", cfg.framebuffer.display());
                Ok(Box::new(framebuffer::FramebufferScreen::open(cfg)?))
            }
            Err(e) => Err(e),
        },
        AutoChoice::Framebuffer => {
            if let Some(Err(why)) = &kms {
                log::info!("kms not used: {why}");
            }
            Ok(Box::new(framebuffer::FramebufferScreen::open(cfg)?))
        }
        AutoChoice::Nothing => Err(DisplayError::NoDisplay {
            message: format!(
                "no screen found: no desktop (WAYLAND_DISPLAY and DISPLAY are not set), \
                 no DRM card with a connected screen ({}), and {} does not exist; \
                 connect a screen, or set display.backend",
                kms.and_then(|k| k.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                cfg.framebuffer.display()
            ),
        }),
    }
}

/// Checks a picture's length against the screen, shared by the backends.
pub(crate) fn check_size(pixels: &[u32], width: usize, height: usize) -> Result<(), DisplayError> {
    if pixels.len() != width * height {
        return Err(DisplayError::WrongSize {
            expected: width * height,
            got: pixels.len(),
            width,
            height,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_the_desktop_then_kms_then_the_framebuffer() {
        assert_eq!(auto_choice(true, true, true), AutoChoice::Window);
        assert_eq!(auto_choice(false, true, true), AutoChoice::Kms);
        assert_eq!(auto_choice(false, false, true), AutoChoice::Framebuffer);
        assert_eq!(auto_choice(false, false, false), AutoChoice::Nothing);
    }

    /// A screen that only knows how to draw: the trait's default `set_power`.
    struct Pixels(Vec<u32>);

    impl Screen for Pixels {
        fn size(&self) -> (usize, usize) {
            (2, 1)
        }
        fn present(&mut self, pixels: &[u32]) -> Result<(), DisplayError> {
            self.0.copy_from_slice(pixels);
            Ok(())
        }
        fn blank(&mut self) -> Result<(), DisplayError> {
            self.0.fill(0);
            Ok(())
        }
        fn poll_commands(&mut self, _out: &mut Vec<Command>) {}
        fn is_open(&self) -> bool {
            true
        }
    }

    #[test]
    fn default_power_off_shows_black_and_says_so() {
        let mut s = Pixels(vec![0xFF_FFFF; 2]);
        assert_eq!(s.set_power(false).unwrap(), PowerMode::Black);
        assert_eq!(s.0, vec![0, 0]);
        assert_eq!(s.set_power(true).unwrap(), PowerMode::On);
    }
}
