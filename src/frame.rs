//! Picture types shared by every pipeline stage.
//!
//! Buffers are plain `Vec`s owned by the stage that fills them, so a stage can
//! hand a frame on and get an old one back to refill instead of allocating.

use std::time::Instant;

/// An 8-bit RGB picture, row-major, tightly packed (`data.len() == w * h * 3`).
#[derive(Clone, Debug, PartialEq)]
pub struct RgbFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    /// Monotonic sequence number given by the source (0 for stills).
    pub seq: u64,
    /// When the source produced the frame, for latency measurement.
    pub captured_at: Instant,
}

impl RgbFrame {
    pub fn new(width: u32, height: u32) -> Self {
        RgbFrame {
            width,
            height,
            data: vec![0; width as usize * height as usize * 3],
            seq: 0,
            captured_at: Instant::now(),
        }
    }

    /// Re-shape in place, keeping the allocation when it is large enough.
    pub fn reshape(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        self.data.resize(width as usize * height as usize * 3, 0);
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    pub fn from_image(img: &image::RgbImage) -> Self {
        RgbFrame {
            width: img.width(),
            height: img.height(),
            data: img.as_raw().clone(),
            seq: 0,
            captured_at: Instant::now(),
        }
    }

    pub fn to_image(&self) -> image::RgbImage {
        image::RgbImage::from_raw(self.width, self.height, self.data.clone())
            .expect("RgbFrame invariant: data.len() == w*h*3")
    }
}

/// Packs RGB into minifb's `0RGB` u32 pixel format.
#[inline]
pub fn pack_rgb(r: u8, g: u8, b: u8) -> u32 {
    ((r as u32) << 16) | ((g as u32) << 8) | b as u32
}

/// Inverse of [`pack_rgb`].
#[inline]
pub fn unpack_rgb(p: u32) -> [u8; 3] {
    [(p >> 16) as u8, (p >> 8) as u8, p as u8]
}

/// What the user asked for, whichever input it came from (button, key,
/// signal, control page, MQTT).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    NextStyle,
    PrevStyle,
    ToggleGallery,
    ToggleBlank,
    ReloadConfig,
    Quit,
    /// Show the named style (case-insensitive); unknown names are logged and ignored.
    SetStyle(String),
    /// Style strength, clamped to 0..=1.
    SetStrength(f32),
    SetGallery(bool),
    /// Screen on (true) or dark (false), like the blank key.
    SetScreen(bool),
    /// Show the control page's pairing QR code on the frame for a minute.
    ShowPairing,
    /// How long a style change morphs, clamped to 0..=60 s.
    SetMorphSeconds(f32),
}
