//! Preprocess stage: decode pictures safely, downsize them to the network's
//! size (cover + centre-crop, or letterbox) and turn them into RGB floats.
//!
//! Resizing uses `fast_image_resize`'s convolution bilinear filter, which
//! samples like Pillow's `BILINEAR` (the reference runtime's preprocessing):
//! "resize to cover, then crop" is done as one resize of the matching source
//! window, so no full-size intermediate is made.

use std::path::{Path, PathBuf};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use crate::capture::picture::{decode_picture, load_picture, PictureError};
use crate::config::Fit;
use crate::frame::RgbFrame;

/// Largest picture accepted from a file (either side; JPEGs are decoded at a
/// reduced size instead), so a hostile or huge file is an error instead of an
/// out-of-memory kill.
pub const MAX_SIDE: u32 = crate::capture::picture::MAX_SIDE;
/// Decoder memory budget.
pub const MAX_DECODE_BYTES: u64 = crate::capture::picture::MAX_DECODE_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a picture styleframe can read ({message})")]
    Decode { path: PathBuf, message: String },
    #[error("{path}: {w}x{h} is too large ({why})")]
    TooLarge {
        path: PathBuf,
        w: u32,
        h: u32,
        why: String,
    },
    #[error("resize failed: {0}")]
    Resize(String),
}

impl From<PictureError> for PreprocessError {
    fn from(e: PictureError) -> Self {
        match e {
            PictureError::Read { path, source } => PreprocessError::Read { path, source },
            PictureError::Decode { path, message } => PreprocessError::Decode { path, message },
            PictureError::TooLarge { path, w, h, why } => {
                PreprocessError::TooLarge { path, w, h, why }
            }
        }
    }
}

/// Decodes a picture file into RGB8 through the one decode path of every
/// still picture ([`crate::capture::picture`]): any format the app reads
/// (JPEG, PNG, GIF; 16-bit, greyscale, alpha, CMYK JPEG), strict (a cut or
/// damaged file is an error), EXIF orientation honoured, transparency
/// composited over white (a painting on a wall), memory bounded.
pub fn load_rgb(path: &Path) -> Result<RgbImage, PreprocessError> {
    Ok(load_picture(path, None)?)
}

/// [`load_rgb`] on bytes already in memory; `path` only names them in errors.
pub fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage, PreprocessError> {
    Ok(decode_picture(bytes, path, None)?)
}

/// The source window that, resized to `dw` x `dh`, covers it exactly like
/// Pillow's "resize so the picture covers, then centre-crop" does.
///
/// The window is computed in floating point from a rounded intermediate size,
/// so its far edge can land a rounding error past the picture's edge (a
/// 640x480 picture into 340x336 ended at row 480.000000001) and the resizer
/// refuses it: the window is clamped into the picture, by at most that error.
pub fn cover_window(sw: u32, sh: u32, dw: u32, dh: u32) -> (f64, f64, f64, f64) {
    let sc = (dh as f64 / sh as f64).max(dw as f64 / sw as f64);
    let nw = (dw as f64).max((sw as f64 * sc).round());
    let nh = (dh as f64).max((sh as f64 * sc).round());
    let (l, t) = (
        ((nw - dw as f64) / 2.0).floor(),
        ((nh - dh as f64) / 2.0).floor(),
    );
    let (fx, fy) = (sw as f64 / nw, sh as f64 / nh);
    let (l, cw) = clamp_span(l * fx, dw as f64 * fx, sw as f64);
    let (t, ch) = clamp_span(t * fy, dh as f64 * fy, sh as f64);
    (l, t, cw, ch)
}

/// Moves and shortens the span `start .. start + len` until it lies inside
/// `0 .. limit` (as the resizer adds them up, in f64).
fn clamp_span(start: f64, len: f64, limit: f64) -> (f64, f64) {
    let mut len = len.min(limit);
    let start = start.clamp(0.0, limit - len);
    while start + len > limit {
        len = len.next_down();
    }
    (start, len)
}

/// Turns a camera frame into network input. One trait so the daemon's
/// downsize stage can be swapped in tests.
pub trait Downsize: Send {
    /// Fits `src` into `h` x `w` and writes H*W*3 floats in [0, 1] to `out`.
    fn downsize(
        &mut self,
        src: &RgbFrame,
        h: usize,
        w: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), PreprocessError>;
}

/// Resizer with reusable buffers: after the first frame of a size, the
/// per-frame path allocates nothing.
pub struct Preprocessor {
    resizer: Resizer,
    fit: Fit,
    /// Letterbox: the picture before the bars are added.
    scaled: Vec<u8>,
    /// `downsize`: the fitted RGB8 picture before conversion to floats.
    rgb: Vec<u8>,
}

impl Preprocessor {
    pub fn new(fit: Fit) -> Self {
        Preprocessor {
            resizer: Resizer::new(),
            fit,
            scaled: vec![],
            rgb: vec![],
        }
    }

    pub fn set_fit(&mut self, fit: Fit) {
        self.fit = fit;
    }

    /// Fits `src` (w*h RGB8) into an RGB8 `out` of `dw` x `dh`.
    pub fn fit_rgb8(
        &mut self,
        src: &[u8],
        sw: u32,
        sh: u32,
        dw: u32,
        dh: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), PreprocessError> {
        let rerr = |e: &dyn std::fmt::Display| PreprocessError::Resize(e.to_string());
        out.clear();
        out.resize(dw as usize * dh as usize * 3, 0);
        if sw == 0 || sh == 0 {
            return Err(PreprocessError::Resize("empty source picture".into()));
        }
        let src = ImageRef::new(sw, sh, src, PixelType::U8x3).map_err(|e| rerr(&e))?;
        let bilinear = ResizeAlg::Convolution(FilterType::Bilinear);
        match self.fit {
            Fit::Cover => {
                let (l, t, cw, ch) = cover_window(sw, sh, dw, dh);
                let mut dst =
                    Image::from_slice_u8(dw, dh, out, PixelType::U8x3).map_err(|e| rerr(&e))?;
                let opts = ResizeOptions::new().resize_alg(bilinear).crop(l, t, cw, ch);
                self.resizer
                    .resize(&src, &mut dst, &opts)
                    .map_err(|e| rerr(&e))?;
            }
            Fit::Letterbox => {
                let sc = (dw as f64 / sw as f64).min(dh as f64 / sh as f64);
                let iw = ((sw as f64 * sc).round() as u32).clamp(1, dw);
                let ih = ((sh as f64 * sc).round() as u32).clamp(1, dh);
                self.scaled.clear();
                self.scaled.resize(iw as usize * ih as usize * 3, 0);
                let mut dst = Image::from_slice_u8(iw, ih, &mut self.scaled, PixelType::U8x3)
                    .map_err(|e| rerr(&e))?;
                let opts = ResizeOptions::new().resize_alg(bilinear);
                self.resizer
                    .resize(&src, &mut dst, &opts)
                    .map_err(|e| rerr(&e))?;
                let (ox, oy) = ((dw - iw) / 2, (dh - ih) / 2);
                for y in 0..ih as usize {
                    let d = ((oy as usize + y) * dw as usize + ox as usize) * 3;
                    let s = y * iw as usize * 3;
                    out[d..d + iw as usize * 3]
                        .copy_from_slice(&self.scaled[s..s + iw as usize * 3]);
                }
            }
        }
        Ok(())
    }
}

impl Downsize for Preprocessor {
    fn downsize(
        &mut self,
        src: &RgbFrame,
        h: usize,
        w: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), PreprocessError> {
        // Taken out and put back so `fit_rgb8` can borrow `self` mutably.
        let mut rgb = std::mem::take(&mut self.rgb);
        let r = self.fit_rgb8(
            &src.data, src.width, src.height, w as u32, h as u32, &mut rgb,
        );
        if r.is_ok() {
            to_f32(&rgb, out);
        }
        self.rgb = rgb;
        r
    }
}

/// RGB8 -> floats in [0, 1], as the networks expect (`u8 / 255`).
pub fn to_f32(rgb: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.extend(rgb.iter().map(|&v| v as f32 * (1.0 / 255.0)));
}

/// Network output floats -> RGB8, rounding like the reference (`clip*255+0.5`).
pub fn to_rgb8(values: &[f32], out: &mut Vec<u8>) {
    out.clear();
    out.extend(
        values
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8),
    );
}

/// Loads a picture file and fits it to `h` x `w` floats (stills, paintings).
pub fn load_fitted(path: &Path, h: usize, w: usize, fit: Fit) -> Result<Vec<f32>, PreprocessError> {
    fit_image(&load_rgb(path)?, h, w, fit)
}

/// A decoded picture fitted to `h` x `w` floats, as [`load_fitted`] does.
pub fn fit_image(
    img: &RgbImage,
    h: usize,
    w: usize,
    fit: Fit,
) -> Result<Vec<f32>, PreprocessError> {
    let mut p = Preprocessor::new(fit);
    let mut rgb = vec![];
    p.fit_rgb8(
        img.as_raw(),
        img.width(),
        img.height(),
        w as u32,
        h as u32,
        &mut rgb,
    )?;
    let mut out = vec![];
    to_f32(&rgb, &mut out);
    Ok(out)
}

/// Peak signal-to-noise ratio of two RGB8 buffers (dB; infinite when equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "psnr of buffers of different sizes");
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_window_crops_the_long_side_centrally() {
        // 800x400 into 200x200: scale 0.5 -> 400x200, crop 100 px each side.
        let (l, t, w, h) = cover_window(800, 400, 200, 200);
        assert_eq!((l, t, w, h), (200.0, 0.0, 400.0, 400.0));
    }

    #[test]
    fn cover_fills_and_letterbox_pads_with_black() {
        // A 4x2 white picture into 4x4.
        let src = vec![255u8; 4 * 2 * 3];
        let mut out = vec![];
        let mut p = Preprocessor::new(Fit::Letterbox);
        p.fit_rgb8(&src, 4, 2, 4, 4, &mut out).unwrap();
        assert_eq!(&out[0..3], &[0, 0, 0], "top bar is black");
        assert_eq!(&out[(4 + 1) * 3..(4 + 1) * 3 + 3], &[255, 255, 255]);
        p.set_fit(Fit::Cover);
        p.fit_rgb8(&src, 4, 2, 4, 4, &mut out).unwrap();
        assert!(out.iter().all(|&v| v == 255), "cover leaves no bars");
    }

    #[test]
    fn float_conversion_round_trips() {
        let rgb: Vec<u8> = (0..=255).collect();
        let mut f = vec![];
        to_f32(&rgb, &mut f);
        let mut back = vec![];
        to_rgb8(&f, &mut back);
        assert_eq!(rgb, back);
        to_rgb8(&[-1.0, 2.0], &mut back);
        assert_eq!(back, vec![0, 255]);
    }

    #[test]
    fn garbage_is_a_decode_error_naming_the_file() {
        let err = decode_rgb(b"definitely not a picture", Path::new("x.jpg")).unwrap_err();
        assert!(err.to_string().contains("x.jpg"), "{err}");
    }

    #[test]
    fn transparent_pixels_become_white() {
        let mut img = image::RgbaImage::new(1, 1);
        img.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        let mut png = vec![];
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let rgb = decode_rgb(&png, Path::new("a.png")).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    }

    #[test]
    fn psnr_of_equal_buffers_is_infinite_and_drops_with_noise() {
        let a = vec![100u8; 300];
        assert!(psnr(&a, &a).is_infinite());
        let mut b = a.clone();
        b[0] = 110;
        let p1 = psnr(&a, &b);
        b[1] = 110;
        assert!(psnr(&a, &b) < p1);
    }
}
