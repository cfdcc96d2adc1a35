//! Capture stage: where pictures come from.
//!
//! INTERFACE (fixed; the implementation is being written): every source
//! implements [`FrameSource`]; [`open`] builds the one the config names.

use crate::frame::RgbFrame;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{0}")]
    Other(String),
}

/// A source of RGB frames (camera, file, folder, video, synthetic scene).
pub trait FrameSource: Send {
    /// Blocks until the next frame is ready and writes it into `frame`,
    /// reusing its buffer. Sources pace themselves (camera fps, file fps).
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError>;
    /// One line for logs: device/path, chosen mode.
    fn describe(&self) -> String;
}
