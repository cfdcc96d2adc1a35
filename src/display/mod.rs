//! Display stage: puts pictures on the screen.
//!
//! Three backends sit behind [`Screen`]:
//! - [`window`]: a minifb X11 window, full-screen borderless in a kiosk session,
//!   with the keyboard mapped to [`Command`]s;
//! - [`framebuffer`]: a memory-mapped Linux framebuffer (`/dev/fb0`, Pi OS Lite);
//! - [`headless`]: keeps the latest picture in memory (tests, servers), PNG
//!   snapshots only when asked.
//!
//! [`compose::Compositor`] turns small stylized frames into full-screen pixels
//! (scaling + cross-fade); it is pure and independent of the backend.

pub mod compose;
pub mod framebuffer;
pub mod headless;
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
        DisplayBackend::Auto => {
            let x = std::env::var("DISPLAY").is_ok_and(|d| !d.is_empty());
            if x {
                Ok(Box::new(window::WindowScreen::open(cfg)?))
            } else if cfg.framebuffer.exists() {
                Ok(Box::new(framebuffer::FramebufferScreen::open(cfg)?))
            } else {
                Err(DisplayError::NoDisplay {
                    message: format!(
                        "no screen found: DISPLAY is not set (no desktop) and {} does not exist; \
                         connect a screen, or set display.backend",
                        cfg.framebuffer.display()
                    ),
                })
            }
        }
        DisplayBackend::Window => Ok(Box::new(window::WindowScreen::open(cfg)?)),
        DisplayBackend::Framebuffer => Ok(Box::new(framebuffer::FramebufferScreen::open(cfg)?)),
        DisplayBackend::Headless => {
            let (screen, _handle) = open_headless(cfg);
            Ok(screen)
        }
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
