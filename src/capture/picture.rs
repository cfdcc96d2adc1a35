//! One decode path for every still picture (`still`, `embed`, a painting given to `--style`,
//! the image and folder sources) and every MJPEG frame (video files, cameras).
//!
//! - **Strict**: a picture whose data ends early or does not decode cleanly is an error, never a
//!   half-gray picture. JPEGs go through libjpeg-turbo (`mozjpeg`) with every corrupt-data
//!   warning made an error (only 1-4 padding bytes before a marker, which some webcams send
//!   on every frame, are let through). PNG chunks are CRC-checked and a short PNG or GIF is
//!   an error from the `image` crate. Damage that still decodes to valid codes and leaves
//!   nothing over cannot be seen in a JPEG (it has no checksum).
//! - **Upright and opaque**: EXIF orientation applied, transparency composited over white.
//! - **Bounded memory**: every decode works within [`MAX_DECODE_BYTES`]. JPEGs decode at a
//!   reduced size where that is enough (libjpeg's DCT scaling, 1/8 to 8/8): just covering the
//!   size the caller needs, and never above the budget; a JPEG that needs its whole
//!   coefficient buffer (progressive, multi-scan) is refused when that buffer would not fit.
//!   Other formats decode at full size, so their size (decoded, plus the RGB conversion) must
//!   fit the budget; the file itself must be at most [`MAX_FILE_BYTES`].

use std::io;
use std::path::{Path, PathBuf};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// Working memory one decode may use: the decoded picture, its conversions and a JPEG's
/// coefficient buffer. With the network at `inference.max_pixels`' ceiling (~210 MB) this
/// keeps the process within what a 512 MB Pi Zero 2 W has free.
pub const MAX_DECODE_BYTES: u64 = 96 << 20;
/// Largest picture file read (the whole file is read into memory).
pub const MAX_FILE_BYTES: u64 = 96 << 20;
/// Largest side of a non-JPEG picture (JPEGs: 65535, their format's own limit).
pub const MAX_SIDE: u32 = 16384;

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("{}: cannot read it: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: not a picture styleframe can read ({message})", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("{}: {w}x{h} is too large ({why})", path.display())]
    TooLarge {
        path: PathBuf,
        w: u32,
        h: u32,
        why: String,
    },
}

/// Why one JPEG could not be used (no path: MJPEG frames have none).
#[derive(Debug)]
pub enum JpegError {
    TooLarge { w: u32, h: u32, why: String },
    Corrupt(String),
}

impl PictureError {
    /// The message without the file name (for errors that name it themselves).
    pub fn reason(&self) -> String {
        match self {
            PictureError::Read { source, .. } => source.to_string(),
            PictureError::Decode { message, .. } => message.clone(),
            PictureError::TooLarge { w, h, why, .. } => format!("{w}x{h} is too large ({why})"),
        }
    }
}

impl std::fmt::Display for JpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JpegError::TooLarge { w, h, why } => write!(f, "JPEG {w}x{h} is too large ({why})"),
            JpegError::Corrupt(m) => write!(f, "{m}"),
        }
    }
}

/// Reads and decodes a picture file; `cover`: the size (w, h) the caller will scale it to
/// cover, so it may be decoded (and kept) smaller; `None`: full size within the budget.
pub fn load_picture(path: &Path, cover: Option<(u32, u32)>) -> Result<RgbImage, PictureError> {
    let read_err = |source| PictureError::Read {
        path: path.into(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_FILE_BYTES {
        return Err(PictureError::TooLarge {
            path: path.into(),
            w: 0,
            h: 0,
            why: format!("the file has {len} bytes, at most {MAX_FILE_BYTES} are read"),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    decode_picture(&bytes, path, cover)
}

/// [`load_picture`] on bytes already in memory; `path` only names them in errors.
pub fn decode_picture(
    bytes: &[u8],
    path: &Path,
    cover: Option<(u32, u32)>,
) -> Result<RgbImage, PictureError> {
    let img = if bytes.starts_with(&[0xFF, 0xD8]) {
        let (mut rgb, mut scratch) = (Vec::new(), Vec::new());
        let (w, h, orientation) =
            decode_jpeg(bytes, cover, &mut rgb, &mut scratch).map_err(|e| match e {
                JpegError::TooLarge { w, h, why } => PictureError::TooLarge {
                    path: path.into(),
                    w,
                    h,
                    why,
                },
                JpegError::Corrupt(message) => PictureError::Decode {
                    path: path.into(),
                    message,
                },
            })?;
        drop(scratch);
        let img = RgbImage::from_raw(w, h, rgb).expect("decoder filled w*h*3 bytes");
        let mut img = DynamicImage::ImageRgb8(img);
        img.apply_orientation(orientation);
        img.into_rgb8()
    } else {
        decode_other(bytes, path)?
    };
    Ok(match cover {
        Some((cw, ch)) => shrink_to_cover(img, cw, ch),
        None => img,
    })
}

/// PNG, GIF (first frame): full size, within the budget.
fn decode_other(bytes: &[u8], path: &Path) -> Result<RgbImage, PictureError> {
    let decode_err = |e: image::ImageError| PictureError::Decode {
        path: path.into(),
        message: e.to_string(),
    };
    let too_large = |w, h, why: String| PictureError::TooLarge {
        path: path.into(),
        w,
        h,
        why,
    };
    let mut reader = ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| PictureError::Read {
            path: path.into(),
            source,
        })?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let side = format!("at most {MAX_SIDE} pixels a side");
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            let (w, h) = header_dimensions(bytes).unwrap_or((0, 0));
            too_large(w, h, side.clone())
        }
        e => decode_err(e),
    })?;
    let (w, h) = decoder.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(too_large(w, h, side));
    }
    if w == 0 || h == 0 {
        return Err(PictureError::Decode {
            path: path.into(),
            message: format!("empty picture {w}x{h}"),
        });
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // What this picture will take: as decoded, plus the 8-bit RGB copy (none when it is
    // 8-bit RGB already), plus the copy a quarter turn makes.
    let rgb = w as u64 * h as u64 * 3;
    let native = decoder.total_bytes();
    let conversion = if decoder.color_type() == image::ColorType::Rgb8 {
        0
    } else {
        rgb
    };
    let turn = if swaps_sides(orientation) { rgb } else { 0 };
    let need = native + conversion + turn;
    if need > MAX_DECODE_BYTES {
        return Err(too_large(
            w,
            h,
            format!("decoding it takes {need} bytes, the limit is {MAX_DECODE_BYTES}"),
        ));
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(w, h, "over the decoder's memory limit".into()),
        e => decode_err(e),
    })?;
    img.apply_orientation(orientation);
    Ok(flatten_over_white(img))
}

fn swaps_sides(o: Orientation) -> bool {
    use Orientation::*;
    matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

/// The size a picture's header claims, read without decoding any pixels.
fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut reader = ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    reader.no_limits();
    reader.into_dimensions().ok()
}

fn flatten_over_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Scales `img` down (never up) so that it just covers `w` x `h`, aspect kept.
fn shrink_to_cover(img: RgbImage, w: u32, h: u32) -> RgbImage {
    let (iw, ih) = img.dimensions();
    let scale = (w as f64 / iw as f64).max(h as f64 / ih as f64);
    if scale >= 1.0 {
        return img;
    }
    let nw = ((iw as f64 * scale).ceil() as u32).clamp(1, iw);
    let nh = ((ih as f64 * scale).ceil() as u32).clamp(1, ih);
    let mut out = vec![0u8; nw as usize * nh as usize * 3];
    let resized = (|| -> Result<(), String> {
        let src =
            ImageRef::new(iw, ih, img.as_raw(), PixelType::U8x3).map_err(|e| e.to_string())?;
        let mut dst =
            Image::from_slice_u8(nw, nh, &mut out, PixelType::U8x3).map_err(|e| e.to_string())?;
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        Resizer::new()
            .resize(&src, &mut dst, &opts)
            .map_err(|e| e.to_string())
    })();
    match resized {
        Ok(()) => RgbImage::from_raw(nw, nh, out).expect("sized above"),
        // Cannot happen for the sizes above; the full picture is still a whole picture.
        Err(_) => img,
    }
}

// ---------------------------------------------------------------------------
// JPEG

/// What a JPEG's headers say, read by walking its segments (no pixels decoded).
struct JpegLayout {
    w: u32,
    h: u32,
    /// Per component (at most 4): horizontal and vertical sampling factors.
    sampling: [(u32, u32); 4],
    components: usize,
    progressive: bool,
    scans: usize,
}

/// Walks the segments of `b` up to EOI (or the end of the data).
fn jpeg_layout(b: &[u8]) -> Option<JpegLayout> {
    let mut layout = JpegLayout {
        w: 0,
        h: 0,
        sampling: [(1, 1); 4],
        components: 0,
        progressive: false,
        scans: 0,
    };
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            i += 1; // junk between segments: libjpeg skips it too
            continue;
        }
        let m = b[i + 1];
        if m == 0xFF || m == 0x01 || (0xD0..=0xD7).contains(&m) {
            i += if m == 0xFF { 1 } else { 2 };
            continue;
        }
        if m == 0xD9 {
            break;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let seg = b.get(i + 4..i + 2 + len.max(2))?;
        match m {
            0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC => {
                layout.progressive = matches!(m, 0xC2 | 0xC6 | 0xCA | 0xCE);
                let n = (*seg.get(5)? as usize).min(4);
                layout.h = u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]) as u32;
                layout.w = u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]) as u32;
                layout.components = n;
                for c in 0..n {
                    let s = *seg.get(7 + 3 * c)?;
                    layout.sampling[c] = ((s >> 4) as u32, (s & 15) as u32);
                }
            }
            0xDA => {
                layout.scans += 1;
                // Entropy-coded data: up to the next marker that is not a stuffed byte or RSTn.
                i += 2 + len;
                while i + 1 < b.len()
                    && !(b[i] == 0xFF && b[i + 1] != 0 && !(0xD0..=0xD7).contains(&b[i + 1]))
                {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 2 + len;
    }
    (layout.w > 0).then_some(layout)
}

impl JpegLayout {
    /// Bytes of the whole-picture coefficient buffer libjpeg keeps for a progressive or
    /// multi-scan JPEG (64 i16 coefficients per 8x8 block of every component).
    fn coefficient_bytes(&self) -> u64 {
        let sampling = &self.sampling[..self.components];
        let hmax = sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1) as u64;
        let vmax = sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1) as u64;
        let (w, h) = (self.w as u64, self.h as u64);
        sampling
            .iter()
            .map(|&(hs, vs)| {
                let bw = (w * hs as u64).div_ceil(hmax * 8) + 1;
                let bh = (h * vs as u64).div_ceil(vmax * 8) + 1;
                bw * bh * 128
            })
            .sum()
    }
}

/// Decodes a JPEG into `rgb` (`w*h*3`, reusing its allocation) at the smallest DCT scale
/// that still covers `cover` and fits [`MAX_DECODE_BYTES`]. Returns the decoded size and the
/// EXIF orientation (not applied). `scratch` holds CMYK pixels. Strict: see the module.
pub fn decode_jpeg(
    bytes: &[u8],
    cover: Option<(u32, u32)>,
    rgb: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(u32, u32, Orientation), JpegError> {
    let layout =
        jpeg_layout(bytes).ok_or_else(|| JpegError::Corrupt("no JPEG frame header".into()))?;
    let (w, h) = (layout.w, layout.h);
    if layout.progressive || layout.scans > 1 {
        let need = layout.coefficient_bytes();
        if need > MAX_DECODE_BYTES {
            return Err(JpegError::TooLarge {
                w,
                h,
                why: format!(
                    "a progressive or multi-scan JPEG keeps {need} bytes of coefficients, the limit is {MAX_DECODE_BYTES}"
                ),
            });
        }
    }
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jpeg_decompress(bytes, cover, rgb, scratch)
    }));
    match run {
        Ok(r) => r,
        Err(panic) => Err(JpegError::Corrupt(
            panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "the JPEG decoder failed".into()),
        )),
    }
}

/// Scale numerator n (of 8) for a `w` x `h` JPEG: the smallest that covers `cover`, then
/// smaller until `bytes_per_pixel` at that size fits the budget; 0 when even 1/8 does not.
fn jpeg_scale(w: u32, h: u32, cover: Option<(u32, u32)>, bytes_per_pixel: u64) -> u8 {
    let out = |n: u8, side: u32| (side as u64 * n as u64).div_ceil(8);
    let mut n = 8u8;
    if let Some((cw, ch)) = cover {
        while n > 1 && out(n - 1, w) >= cw as u64 && out(n - 1, h) >= ch as u64 {
            n -= 1;
        }
    }
    while n > 0 && out(n, w) * out(n, h) * bytes_per_pixel > MAX_DECODE_BYTES {
        n -= 1;
    }
    n
}

fn jpeg_decompress(
    bytes: &[u8],
    cover: Option<(u32, u32)>,
    rgb: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(u32, u32, Orientation), JpegError> {
    use mozjpeg::{ColorSpace, Decompress, Marker};
    let io_err = |e: io::Error| JpegError::Corrupt(e.to_string());
    let mut dec = Decompress::builder()
        .with_err(strict::error_mgr())
        .with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
        .map_err(io_err)?;
    let orientation = dec
        .markers()
        .filter(|m| m.marker == Marker::APP(1))
        .find_map(|m| {
            m.data
                .strip_prefix(b"Exif\0\0")
                .and_then(Orientation::from_exif_chunk)
        })
        .unwrap_or(Orientation::NoTransforms);
    let (w, h) = (dec.width() as u32, dec.height() as u32);
    if w == 0 || h == 0 {
        return Err(JpegError::Corrupt(format!(
            "JPEG has an empty size {w}x{h}"
        )));
    }
    let cmyk = matches!(
        dec.color_space(),
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK
    );
    // Output, plus the CMYK pixels, plus the copy a quarter turn makes.
    let per_pixel = 3 + if cmyk { 4 } else { 0 } + if swaps_sides(orientation) { 3 } else { 0 };
    let cover = cover.map(|(cw, ch)| {
        if swaps_sides(orientation) {
            (ch, cw)
        } else {
            (cw, ch)
        }
    });
    let n = jpeg_scale(w, h, cover, per_pixel);
    if n == 0 {
        return Err(JpegError::TooLarge {
            w,
            h,
            why: format!("even decoded at 1/8 it takes more than {MAX_DECODE_BYTES} bytes"),
        });
    }
    dec.scale(n);
    let mut started = if cmyk {
        dec.to_colorspace(ColorSpace::JCS_CMYK)
    } else {
        dec.rgb()
    }
    .map_err(io_err)?;
    let (ow, oh) = (started.width(), started.height());
    rgb.clear();
    rgb.resize(ow * oh * 3, 0);
    if cmyk {
        scratch.clear();
        scratch.resize(ow * oh * 4, 0);
        started
            .read_scanlines_into(&mut scratch[..])
            .map_err(io_err)?;
        // Adobe writes CMYK inverted (0 = full ink): R = C*K/255 on the stored values.
        for (o, p) in rgb.chunks_exact_mut(3).zip(scratch.chunks_exact(4)) {
            let k = p[3] as u32;
            for c in 0..3 {
                o[c] = ((p[c] as u32 * k + 127) / 255) as u8;
            }
        }
    } else {
        started.read_scanlines_into(&mut rgb[..]).map_err(io_err)?;
    }
    // Reads to EOI: a picture cut after its last row still fails here.
    started.finish().map_err(io_err)?;
    Ok((ow as u32, oh as u32, orientation))
}

/// libjpeg's error manager with warnings made errors.
mod strict {
    use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error, JWRN_EXTRANEOUS_DATA};
    use std::os::raw::c_int;

    pub fn error_mgr() -> jpeg_error_mgr {
        // SAFETY: jpeg_error_mgr is a C struct of integers, pointers and optional function
        // pointers, for which all-zero is valid; jpeg_std_error then fills in every field.
        let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
        // SAFETY: `err` is a valid, exclusively borrowed error manager.
        unsafe { jpeg_std_error(&mut err) };
        err.error_exit = Some(fail);
        err.emit_message = Some(warn);
        err
    }

    /// The message libjpeg has for its current code.
    fn message(cinfo: &mut jpeg_common_struct) -> String {
        let mut buf = [0u8; 80];
        // SAFETY: `cinfo.err` points at the error manager libjpeg is calling us from.
        let format = unsafe { (*cinfo.err).format_message };
        if let Some(f) = format {
            // SAFETY: format_message writes at most JMSG_LENGTH_MAX (80) bytes, NUL
            // included, into the buffer; the binding declares it `&[u8; 80]` though C
            // writes to it, so the pointer is cast to the mutable signature (as the
            // mozjpeg crate's own handler does). Same ABI: both are one pointer.
            unsafe {
                let f: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8) =
                    std::mem::transmute(f);
                f(cinfo, buf.as_mut_ptr());
            }
        }
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    }

    /// Fatal errors: unwind to `decode_jpeg`'s catch_unwind (the mozjpeg crate builds
    /// libjpeg with unwinding support for exactly this).
    extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
        let m = message(cinfo);
        std::panic::resume_unwind(Box::new(m));
    }

    /// Warnings (level -1) are corrupt data ("premature end of JPEG file", "bad Huffman
    /// code"...): fatal too. Damaged scan data that still reads as valid codes shows as
    /// bytes left over when the last block is decoded ("N extraneous bytes before marker"):
    /// fatal, except for the 1-4 padding bytes some webcams put before FFD9 on every frame.
    /// Trace messages (level >= 0): ignored.
    extern "C-unwind" fn warn(cinfo: &mut jpeg_common_struct, level: c_int) {
        if level >= 0 {
            return;
        }
        // SAFETY: as in `message`; for this code libjpeg stores the byte count and the
        // marker in the first two ints of msg_parm.
        let (code, count) = unsafe {
            (
                (*cinfo.err).msg_code,
                (*cinfo.err).msg_parm._bindgen_data_[0],
            )
        };
        if code == JWRN_EXTRANEOUS_DATA && count <= MAX_PADDING {
            return;
        }
        let m = message(cinfo);
        std::panic::resume_unwind(Box::new(m));
    }

    /// Padding bytes before a marker that are let through (see `warn`).
    const MAX_PADDING: u32 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_scale_is_the_smallest_that_still_covers() {
        // 4000x3000 for a 640x480 capture: 1/6.25 would do; 2/8 = 1000x750 is the
        // smallest eighth that covers (1/8 = 500x375 does not).
        assert_eq!(jpeg_scale(4000, 3000, Some((640, 480)), 3), 2);
        // Already small: full size, never up.
        assert_eq!(jpeg_scale(320, 240, Some((640, 480)), 3), 8);
        // No size asked for: full size when it fits the budget.
        assert_eq!(jpeg_scale(6000, 4000, None, 3), 8);
    }

    #[test]
    fn jpeg_scale_stays_within_the_budget() {
        for (w, h) in [(8000, 8000), (20000, 15000), (65535, 9000)] {
            let n = jpeg_scale(w, h, None, 3);
            let out = |side: u32| (side as u64 * n as u64).div_ceil(8);
            assert!(
                n >= 1 && out(w) * out(h) * 3 <= MAX_DECODE_BYTES,
                "{w}x{h}: {n}"
            );
            assert!(
                n == 8 || {
                    let bigger = |side: u32| (side as u64 * (n as u64 + 1)).div_ceil(8);
                    bigger(w) * bigger(h) * 3 > MAX_DECODE_BYTES
                }
            );
        }
        // 65535x65535 does not fit even at 1/8 (8192x8192x3 = 192 MiB).
        assert_eq!(jpeg_scale(65535, 65535, None, 3), 0);
    }

    #[test]
    fn layout_reads_size_sampling_and_scans() {
        let img = image::RgbImage::from_pixel(40, 24, image::Rgb([9, 99, 199]));
        let mut j = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut j)
            .encode_image(&img)
            .unwrap();
        let l = jpeg_layout(&j).unwrap();
        assert_eq!(
            (l.w, l.h, l.components, l.scans, l.progressive),
            (40, 24, 3, 1, false)
        );
        // A whole-picture coefficient buffer is at least 2 bytes a sample.
        assert!(l.coefficient_bytes() >= 40 * 24 * 2);
    }
}
