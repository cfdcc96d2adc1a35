//! Display stage: puts pictures on the screen.
//!
//! INTERFACE (fixed; the implementation is being written).

use crate::frame::Command;

#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("{0}")]
    Other(String),
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
