//! Video file sources, looped: MJPEG streams (.mjpeg/.mjpg: concatenated JPEGs) and Y4M.
//!
//! A bad frame is a `CorruptFrame` error (the caller skips it) and the next call goes on with
//! the next frame. A file with no decodable frame at all is a `Decode` error, so a broken
//! file cannot spin forever.

use super::convert::{decode_jpeg_into, gray_to_rgb, yuv_planar_to_rgb};
use super::pacing::Pacer;
use super::{CaptureError, FrameSource, MAX_IMAGE_ALLOC, MAX_IMAGE_SIDE};
use crate::frame::RgbFrame;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A single JPEG larger than this is treated as corrupt (no valid camera frame is this big).
pub const MAX_JPEG_BYTES: usize = 32 * 1024 * 1024;

/// Opens a video file, choosing the reader by extension, else by the first bytes.
/// MJPEG frames are decoded at a reduced size that still covers `cover` (the capture size).
pub fn open_video(
    path: &Path,
    fps: u32,
    cover: (u32, u32),
) -> Result<Box<dyn FrameSource>, CaptureError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mjpeg" | "mjpg" => return Ok(Box::new(MjpegFileSource::open(path, fps, cover)?)),
        "y4m" => return Ok(Box::new(Y4mSource::open(path, fps)?)),
        _ => {}
    }
    let mut head = [0u8; 9];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| CaptureError::io(path, e))?;
    if head[..n].starts_with(b"YUV4MPEG2") {
        Ok(Box::new(Y4mSource::open(path, fps)?))
    } else if head[..n].starts_with(&[0xFF, 0xD8]) {
        Ok(Box::new(MjpegFileSource::open(path, fps, cover)?))
    } else {
        Err(CaptureError::decode(
            path,
            "unsupported video format (use an MJPEG stream .mjpeg/.mjpg or a .y4m file)",
        ))
    }
}

/// What [`JpegSplitter::next_jpeg`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// A complete JPEG (SOI .. EOI) is in the buffer.
    Jpeg,
    /// A broken JPEG was skipped; the reason says why. The stream resyncs on the next SOI.
    Corrupt(String),
    /// No more JPEGs.
    End,
}

/// Splits a byte stream into JPEGs by walking the marker segments, so FFD9 bytes inside an
/// APP segment (e.g. an EXIF thumbnail) do not cut a frame short.
pub struct JpegSplitter<R: BufRead> {
    r: R,
    /// The SOI of the next frame was already consumed (it cut the previous frame short).
    pending_soi: bool,
}

impl<R: BufRead> JpegSplitter<R> {
    pub fn new(r: R) -> Self {
        JpegSplitter {
            r,
            pending_soi: false,
        }
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        let b = match self.r.fill_buf()? {
            [] => return Ok(None),
            buf => buf[0],
        };
        self.r.consume(1);
        Ok(Some(b))
    }

    /// Reads a marker code after an 0xFF, skipping fill bytes.
    fn marker_code(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.byte()? {
                Some(0xFF) => continue,
                other => return Ok(other),
            }
        }
    }

    /// Appends `n` bytes to `buf`; false at end of input.
    fn copy(&mut self, n: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
        let mut left = n;
        while left > 0 {
            let chunk = self.r.fill_buf()?;
            if chunk.is_empty() {
                return Ok(false);
            }
            let k = chunk.len().min(left);
            buf.extend_from_slice(&chunk[..k]);
            self.r.consume(k);
            left -= k;
        }
        Ok(true)
    }

    /// Entropy-coded data after SOS: copies it and returns the marker that ends it.
    fn scan_data(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<u8>> {
        loop {
            let Some(b) = self.byte()? else {
                return Ok(None);
            };
            if b != 0xFF {
                buf.push(b);
                if buf.len() > MAX_JPEG_BYTES {
                    return Ok(Some(0x00)); // caller reports "too large"
                }
                continue;
            }
            let Some(n) = self.marker_code()? else {
                return Ok(None);
            };
            if n == 0x00 || (0xD0..=0xD7).contains(&n) {
                buf.extend_from_slice(&[0xFF, n]); // stuffed byte or restart marker
            } else {
                return Ok(Some(n));
            }
        }
    }

    /// Reads the next JPEG into `buf` (cleared first; its allocation is reused).
    pub fn next_jpeg(&mut self, buf: &mut Vec<u8>) -> io::Result<Chunk> {
        buf.clear();
        if !self.pending_soi {
            let mut prev = 0u8;
            loop {
                let Some(b) = self.byte()? else {
                    return Ok(Chunk::End);
                };
                if prev == 0xFF && b == 0xD8 {
                    break;
                }
                prev = b;
            }
        }
        self.pending_soi = false;
        buf.extend_from_slice(&[0xFF, 0xD8]);
        let mut next_marker: Option<u8> = None;
        loop {
            let m = match next_marker.take() {
                Some(m) => m,
                None => match self.byte()? {
                    None => return Ok(Chunk::Corrupt("file ends inside a JPEG".into())),
                    Some(0xFF) => match self.marker_code()? {
                        Some(m) => m,
                        None => return Ok(Chunk::Corrupt("file ends inside a JPEG".into())),
                    },
                    Some(b) => {
                        return Ok(Chunk::Corrupt(format!(
                            "expected a marker after {} bytes, found 0x{b:02X}",
                            buf.len()
                        )))
                    }
                },
            };
            match m {
                0xD9 => {
                    buf.extend_from_slice(&[0xFF, 0xD9]);
                    return Ok(Chunk::Jpeg);
                }
                0xD8 => {
                    self.pending_soi = true;
                    return Ok(Chunk::Corrupt(
                        "JPEG cut short (next frame starts before its end)".into(),
                    ));
                }
                0x00 => return Ok(Chunk::Corrupt("JPEG larger than the limit".into())),
                0x01 | 0xD0..=0xD7 => buf.extend_from_slice(&[0xFF, m]),
                _ => {
                    buf.extend_from_slice(&[0xFF, m]);
                    let (Some(hi), Some(lo)) = (self.byte()?, self.byte()?) else {
                        return Ok(Chunk::Corrupt("file ends inside a JPEG".into()));
                    };
                    let len = u16::from_be_bytes([hi, lo]) as usize;
                    if len < 2 {
                        return Ok(Chunk::Corrupt(format!("bad segment length {len}")));
                    }
                    buf.extend_from_slice(&[hi, lo]);
                    if !self.copy(len - 2, buf)? {
                        return Ok(Chunk::Corrupt("file ends inside a JPEG".into()));
                    }
                    if m == 0xDA {
                        match self.scan_data(buf)? {
                            Some(code) => next_marker = Some(code),
                            None => return Ok(Chunk::Corrupt("file ends inside a JPEG".into())),
                        }
                    }
                }
            }
        }
    }
}

/// A looped MJPEG stream file, paced at `fps` (the file has no timing of its own).
pub struct MjpegFileSource {
    path: PathBuf,
    splitter: JpegSplitter<BufReader<File>>,
    jpeg: Vec<u8>,
    scratch: Vec<u8>,
    /// Frames are decoded at the smallest DCT scale that still covers this.
    cover: (u32, u32),
    pacer: Pacer,
    fps: u32,
    seq: u64,
    /// Index of the next frame in the file, for error messages.
    frame_no: u64,
    good_this_loop: u64,
}

fn open_reader(path: &Path) -> Result<BufReader<File>, CaptureError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(256 * 1024, f))
        .map_err(|e| CaptureError::io(path, e))
}

impl MjpegFileSource {
    pub fn open(path: &Path, fps: u32, cover: (u32, u32)) -> Result<Self, CaptureError> {
        // Fail now, not on every loop, on a file in which no frame decodes.
        let mut probe = JpegSplitter::new(open_reader(path)?);
        let (mut jpeg, mut scratch) = (Vec::new(), Vec::new());
        let mut frame = RgbFrame::new(0, 0);
        let mut last_error = String::from("no JPEG frames (no FFD8 marker)");
        loop {
            match probe
                .next_jpeg(&mut jpeg)
                .map_err(|e| CaptureError::io(path, e))?
            {
                Chunk::Jpeg => match decode_jpeg_into(&jpeg, &mut frame, &mut scratch, Some(cover))
                {
                    Ok(()) => break,
                    Err(e) => last_error = e,
                },
                Chunk::Corrupt(why) => last_error = why,
                Chunk::End => {
                    return Err(CaptureError::decode(
                        path,
                        format!("no decodable JPEG frame ({last_error})"),
                    ))
                }
            }
        }
        Ok(MjpegFileSource {
            path: path.to_path_buf(),
            splitter: JpegSplitter::new(open_reader(path)?),
            jpeg,
            scratch,
            cover,
            pacer: Pacer::new(fps as f64),
            fps,
            seq: 0,
            frame_no: 0,
            good_this_loop: 0,
        })
    }

    fn corrupt(&self, why: &str) -> CaptureError {
        CaptureError::CorruptFrame {
            what: format!("{} frame {}: {why}", self.path.display(), self.frame_no),
        }
    }
}

impl FrameSource for MjpegFileSource {
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError> {
        self.pacer.wait();
        loop {
            let chunk = self
                .splitter
                .next_jpeg(&mut self.jpeg)
                .map_err(|e| CaptureError::io(&self.path, e))?;
            match chunk {
                Chunk::Jpeg => {
                    let result =
                        decode_jpeg_into(&self.jpeg, frame, &mut self.scratch, Some(self.cover));
                    self.frame_no += 1;
                    if let Err(why) = result {
                        return Err(self.corrupt(&why));
                    }
                    self.good_this_loop += 1;
                    frame.seq = self.seq;
                    self.seq += 1;
                    frame.captured_at = Instant::now();
                    return Ok(());
                }
                Chunk::Corrupt(why) => {
                    self.frame_no += 1;
                    return Err(self.corrupt(&why));
                }
                Chunk::End => {
                    if self.good_this_loop == 0 {
                        return Err(CaptureError::decode(&self.path, "no decodable JPEG frame"));
                    }
                    self.splitter = JpegSplitter::new(open_reader(&self.path)?);
                    self.frame_no = 0;
                    self.good_this_loop = 0;
                }
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "MJPEG file {} (looped, {} fps)",
            self.path.display(),
            self.fps
        )
    }
}

/// Reads W and H from a Y4M header line without trusting them, so a hostile header cannot
/// make the decoder allocate a huge frame buffer. Returns them and the header's length.
fn y4m_header_size(path: &Path) -> Result<(usize, usize, u64), CaptureError> {
    let mut line = Vec::new();
    open_reader(path)?
        .take(1024)
        .read_until(b'\n', &mut line)
        .map_err(|e| CaptureError::io(path, e))?;
    if !line.starts_with(b"YUV4MPEG2") {
        return Err(CaptureError::decode(
            path,
            "not a Y4M file (no YUV4MPEG2 header)",
        ));
    }
    let field = |tag: u8| -> Option<usize> {
        line.split(|&b| b == b' ' || b == b'\n')
            .find(|f| f.first() == Some(&tag))
            .and_then(|f| std::str::from_utf8(&f[1..]).ok()?.parse().ok())
    };
    match (field(b'W'), field(b'H')) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Ok((w, h, line.len() as u64)),
        _ => Err(CaptureError::decode(path, "Y4M header without a valid W/H")),
    }
}

/// Checks that the file is what its header says: every frame starts with `FRAME` where
/// the header's size puts it, and at least one frame is complete. A wrong W, H or colour
/// space otherwise shows as a striped garbage frame. Only the frame headers are read.
fn y4m_check_layout(path: &Path, header_len: u64, frame_len: u64) -> Result<(), CaptureError> {
    use std::io::{Seek, SeekFrom};
    let bad = |why: String| CaptureError::decode(path, why);
    let mut r = open_reader(path)?;
    let file_len = r
        .get_ref()
        .metadata()
        .map_err(|e| CaptureError::io(path, e))?
        .len();
    let (mut at, mut complete) = (header_len, 0u64);
    while at < file_len {
        r.seek(SeekFrom::Start(at))
            .map_err(|e| CaptureError::io(path, e))?;
        let mut tag = Vec::new();
        (&mut r)
            .take(256)
            .read_until(b'\n', &mut tag)
            .map_err(|e| CaptureError::io(path, e))?;
        if !tag.starts_with(b"FRAME") || tag.last() != Some(&b'\n') {
            return Err(bad(format!(
                "frame {complete} does not start with FRAME at byte {at}: \
                 the header's size or colour space does not match the data"
            )));
        }
        at += tag.len() as u64 + frame_len;
        if at <= file_len {
            complete += 1;
        }
    }
    if complete == 0 {
        return Err(bad("no complete Y4M frame".into()));
    }
    Ok(())
}

/// Counts the bytes the Y4M decoder consumes: the `y4m` crate reports a frame cut short by
/// the end of the file as a plain end of stream, and only the count tells them apart.
struct Counting<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Y4mDecoder = y4m::Decoder<Counting<BufReader<File>>>;

/// A looped Y4M file (8-bit mono, 4:2:0, 4:2:2 or 4:4:4), paced at the file's own rate.
pub struct Y4mSource {
    path: PathBuf,
    decoder: Y4mDecoder,
    consumed: Arc<AtomicU64>,
    /// Bytes consumed when the last whole frame (or the header) had been read.
    frame_end: u64,
    width: u32,
    height: u32,
    /// Chroma subsampling shifts (x, y); None for mono.
    chroma: Option<(u32, u32)>,
    pacer: Pacer,
    fps: f64,
    seq: u64,
    frame_no: u64,
    good_this_loop: u64,
    rewind: bool,
}

fn y4m_decoder(path: &Path) -> Result<(Y4mDecoder, Arc<AtomicU64>), CaptureError> {
    let limits = y4m::Limits {
        bytes: MAX_IMAGE_ALLOC as usize,
    };
    let consumed = Arc::new(AtomicU64::new(0));
    let reader = Counting {
        inner: open_reader(path)?,
        consumed: consumed.clone(),
    };
    let decoder = y4m::Decoder::new_with_limits(reader, limits)
        .map_err(|e| CaptureError::decode(path, format!("Y4M header: {e:?}")))?;
    Ok((decoder, consumed))
}

impl Y4mSource {
    /// `fallback_fps` is used when the file states no usable rate.
    pub fn open(path: &Path, fallback_fps: u32) -> Result<Self, CaptureError> {
        let (w, h, header_len) = y4m_header_size(path)?;
        if w > MAX_IMAGE_SIDE as usize || h > MAX_IMAGE_SIDE as usize {
            return Err(CaptureError::decode(
                path,
                format!("Y4M frame {w}x{h} exceeds the {MAX_IMAGE_SIDE} pixel limit"),
            ));
        }
        let (decoder, consumed) = y4m_decoder(path)?;
        use y4m::Colorspace as C;
        let chroma = match decoder.get_colorspace() {
            C::Cmono => None,
            C::C420 | C::C420jpeg | C::C420paldv | C::C420mpeg2 => Some((1, 1)),
            C::C422 => Some((1, 0)),
            C::C444 => Some((0, 0)),
            other => {
                return Err(CaptureError::decode(
                    path,
                    format!("unsupported Y4M colourspace {other:?} (8-bit only)"),
                ))
            }
        };
        let frame_len = match chroma {
            None => w * h,
            Some((cx, cy)) => {
                w * h + 2 * (((w + (1 << cx) - 1) >> cx) * ((h + (1 << cy) - 1) >> cy))
            }
        } as u64;
        // The frame as read plus its RGB conversion.
        let need = frame_len + w as u64 * h as u64 * 3;
        if need > MAX_IMAGE_ALLOC {
            return Err(CaptureError::decode(
                path,
                format!("Y4M frame {w}x{h} needs {need} bytes, the limit is {MAX_IMAGE_ALLOC}"),
            ));
        }
        y4m_check_layout(path, header_len, frame_len)?;
        let rate = decoder.get_framerate();
        let stated = rate.num as f64 / rate.den.max(1) as f64;
        let fps = if rate.num > 0 && rate.den > 0 && stated <= super::pacing::MAX_FPS {
            stated
        } else {
            if rate.num > 0 {
                log::warn!(
                    "{}: frame rate {}:{} is not usable; playing at {fallback_fps} fps",
                    path.display(),
                    rate.num,
                    rate.den
                );
            }
            fallback_fps as f64
        };
        Ok(Y4mSource {
            path: path.to_path_buf(),
            width: decoder.get_width() as u32,
            height: decoder.get_height() as u32,
            frame_end: consumed.load(Ordering::Relaxed),
            consumed,
            decoder,
            chroma,
            pacer: Pacer::new(fps),
            fps,
            seq: 0,
            frame_no: 0,
            good_this_loop: 0,
            rewind: false,
        })
    }

    fn restart(&mut self) -> Result<(), CaptureError> {
        if self.good_this_loop == 0 {
            return Err(CaptureError::decode(&self.path, "no complete Y4M frame"));
        }
        (self.decoder, self.consumed) = y4m_decoder(&self.path)?;
        self.frame_end = self.consumed.load(Ordering::Relaxed);
        self.frame_no = 0;
        self.good_this_loop = 0;
        self.rewind = false;
        Ok(())
    }
}

impl FrameSource for Y4mSource {
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError> {
        self.pacer.wait();
        if self.rewind {
            self.restart()?;
        }
        for _attempt in 0..2 {
            let (w, h) = (self.width, self.height);
            frame.reshape(w, h);
            let result = match self.decoder.read_frame() {
                Ok(f) => match self.chroma {
                    None => gray_to_rgb(f.get_y_plane(), w, h, &mut frame.data),
                    Some((cx, cy)) => yuv_planar_to_rgb(
                        [f.get_y_plane(), f.get_u_plane(), f.get_v_plane()],
                        w,
                        h,
                        cx,
                        cy,
                        &mut frame.data,
                    ),
                },
                Err(y4m::Error::EOF) if self.consumed.load(Ordering::Relaxed) == self.frame_end => {
                    self.restart()?;
                    continue;
                }
                Err(y4m::Error::EOF) => Err("file ends inside a frame (truncated)".to_string()),
                Err(y4m::Error::IoError(e)) => return Err(CaptureError::io(&self.path, e)),
                Err(e) => Err(format!("{e:?}")),
            };
            let no = self.frame_no;
            self.frame_no += 1;
            self.frame_end = self.consumed.load(Ordering::Relaxed);
            return match result {
                Ok(()) => {
                    self.good_this_loop += 1;
                    frame.seq = self.seq;
                    self.seq += 1;
                    frame.captured_at = Instant::now();
                    Ok(())
                }
                Err(why) => {
                    // A Y4M stream cannot resync after a bad frame: start over next time.
                    self.rewind = true;
                    Err(CaptureError::CorruptFrame {
                        what: format!("{} frame {no}: {why}", self.path.display()),
                    })
                }
            };
        }
        Err(CaptureError::decode(&self.path, "no complete Y4M frame"))
    }

    fn describe(&self) -> String {
        format!(
            "Y4M file {} ({}x{}, looped, {:.2} fps)",
            self.path.display(),
            self.width,
            self.height,
            self.fps
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn jpeg_bytes(w: u32, h: u32, shade: u8) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([shade, shade, shade]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn splitter_returns_each_concatenated_jpeg_whole() {
        let (a, b) = (jpeg_bytes(8, 8, 10), jpeg_bytes(16, 8, 200));
        let stream = [a.clone(), b.clone()].concat();
        let mut s = JpegSplitter::new(Cursor::new(stream));
        let mut buf = Vec::new();
        assert_eq!(s.next_jpeg(&mut buf).unwrap(), Chunk::Jpeg);
        assert_eq!(buf, a);
        assert_eq!(s.next_jpeg(&mut buf).unwrap(), Chunk::Jpeg);
        assert_eq!(buf, b);
        assert_eq!(s.next_jpeg(&mut buf).unwrap(), Chunk::End);
    }

    #[test]
    fn splitter_ignores_eoi_bytes_inside_a_segment() {
        // An APP1 segment whose payload holds FF D9 (as an EXIF thumbnail would).
        let a = jpeg_bytes(8, 8, 10);
        let mut with_app = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9];
        with_app.extend_from_slice(&a[2..]);
        let mut s = JpegSplitter::new(Cursor::new(with_app.clone()));
        let mut buf = Vec::new();
        assert_eq!(s.next_jpeg(&mut buf).unwrap(), Chunk::Jpeg);
        assert_eq!(buf, with_app);
    }

    #[test]
    fn splitter_reports_a_cut_frame_and_resyncs_on_the_next() {
        let mut s = 1u32;
        let noisy = image::RgbImage::from_fn(32, 32, |_, _| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            image::Rgb([(s >> 8) as u8, (s >> 16) as u8, (s >> 24) as u8])
        });
        let mut a = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut a)
            .encode_image(&noisy)
            .unwrap();
        let b = jpeg_bytes(8, 8, 90);
        // Cut `a` in its entropy-coded data (after the SOS header).
        let sos = a.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let cut = sos + 2 + (a.len() - sos) / 2;
        let stream = [&a[..cut], &b[..]].concat();
        let mut s = JpegSplitter::new(Cursor::new(stream));
        let mut buf = Vec::new();
        assert!(matches!(s.next_jpeg(&mut buf).unwrap(), Chunk::Corrupt(_)));
        assert_eq!(s.next_jpeg(&mut buf).unwrap(), Chunk::Jpeg);
        assert_eq!(buf, b);
    }
}
