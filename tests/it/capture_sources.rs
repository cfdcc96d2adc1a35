//! File and synthetic capture sources, driven through `capture::open` with files written
//! into a temp dir.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use styleframe::capture::{self, CaptureError, FolderSource, FrameSource, Synthetic};
use styleframe::config::{CameraConfig, PixelFormat, SourceKind};
use styleframe::frame::RgbFrame;

fn cfg(source: SourceKind, path: Option<&Path>, w: u32, h: u32, fps: u32) -> CameraConfig {
    CameraConfig {
        source,
        device: "0".into(),
        path: path.map(Path::to_path_buf),
        width: w,
        height: h,
        fps,
        format: PixelFormat::Auto,
        rpicam_vid: String::new(),
    }
}

fn solid(w: u32, h: u32, c: [u8; 3]) -> image::RgbImage {
    image::RgbImage::from_pixel(w, h, image::Rgb(c))
}

/// Deterministic noise, so JPEGs have long entropy-coded data.
fn noisy(w: u32, h: u32, seed: u32) -> image::RgbImage {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    image::RgbImage::from_fn(w, h, |_, _| {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let b = s.to_le_bytes();
        image::Rgb([b[1], b[2], b[3]])
    })
}

fn jpeg(img: &image::RgbImage) -> Vec<u8> {
    crate::common::jpeg_q(img, 90)
}

fn save(dir: &Path, name: &str, img: &image::RgbImage) -> PathBuf {
    let p = dir.join(name);
    img.save(&p).unwrap();
    p
}

fn mean(f: &RgbFrame) -> [u8; 3] {
    let mut sum = [0u64; 3];
    for px in f.data.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += px[c] as u64;
        }
    }
    let n = (f.data.len() / 3).max(1) as u64;
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

fn near(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= tol)
}

#[test]
fn image_source_redelivers_the_picture_at_the_configured_rate() {
    let dir = tempfile::tempdir().unwrap();
    let p = save(dir.path(), "still.png", &solid(64, 48, [200, 30, 40]));
    let mut src = capture::open(&cfg(SourceKind::Image, Some(&p), 64, 48, 50)).unwrap();
    let mut f = RgbFrame::new(1, 1);
    let start = Instant::now();
    for i in 0..4 {
        src.next_frame(&mut f).unwrap();
        assert_eq!((f.width, f.height, f.seq), (64, 48, i));
        assert_eq!(f.pixel(10, 10), [200, 30, 40]);
    }
    // First frame at once, then three 20 ms periods.
    assert!(
        start.elapsed() >= Duration::from_millis(55),
        "{:?}",
        start.elapsed()
    );
    assert!(src.describe().contains("still.png"));
}

#[test]
fn image_source_scales_big_pictures_down_to_just_cover_the_capture_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = save(dir.path(), "wide.png", &solid(400, 100, [10, 200, 10]));
    let mut src = capture::open(&cfg(SourceKind::Image, Some(&p), 64, 48, 30)).unwrap();
    let mut f = RgbFrame::new(1, 1);
    src.next_frame(&mut f).unwrap();
    // Height is the tight side: 100 -> 48, width follows the aspect: 400 -> 192.
    assert_eq!((f.width, f.height), (192, 48));
    // Small pictures are not blown up.
    let p = save(dir.path(), "small.png", &solid(20, 10, [10, 200, 10]));
    let mut src = capture::open(&cfg(SourceKind::Image, Some(&p), 64, 48, 30)).unwrap();
    src.next_frame(&mut f).unwrap();
    assert_eq!((f.width, f.height), (20, 10));
}

#[test]
fn missing_image_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.jpg");
    let err = capture::open(&cfg(SourceKind::Image, Some(&p), 64, 48, 30))
        .err()
        .unwrap();
    assert!(matches!(err, CaptureError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.jpg"), "{err}");
    assert!(!err.is_transient());
}

#[test]
fn truncated_image_is_a_decode_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = save(dir.path(), "cut.png", &noisy(64, 64, 1));
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let err = capture::open(&cfg(SourceKind::Image, Some(&p), 64, 48, 30))
        .err()
        .unwrap();
    assert!(matches!(err, CaptureError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("cut.png"), "{err}");
}

#[test]
fn oversized_image_is_refused_by_the_decoder_limits() {
    let dir = tempfile::tempdir().unwrap();
    let p = save(
        dir.path(),
        "huge.png",
        &solid(capture::MAX_IMAGE_SIDE + 1, 2, [0, 0, 0]),
    );
    let err = capture::open(&cfg(SourceKind::Image, Some(&p), 64, 48, 30))
        .err()
        .unwrap();
    assert!(matches!(err, CaptureError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("huge.png"), "{err}");
}

#[test]
fn sources_that_need_a_path_say_so() {
    for kind in [SourceKind::Image, SourceKind::Folder, SourceKind::Video] {
        let err = capture::open(&cfg(kind, None, 64, 48, 30)).err().unwrap();
        assert!(err.to_string().contains("camera.path"), "{err}");
    }
}

#[test]
fn empty_folder_is_an_error_naming_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a picture").unwrap();
    let err = capture::open(&cfg(SourceKind::Folder, Some(dir.path()), 64, 48, 30))
        .err()
        .unwrap();
    assert!(matches!(err, CaptureError::NoImages { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn folder_cycles_sorted_pictures_and_skips_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "a.png", &solid(32, 24, [255, 0, 0]));
    std::fs::write(dir.path().join("b.png"), b"not a png at all").unwrap();
    std::fs::write(dir.path().join("c.jpg"), jpeg(&solid(32, 24, [0, 0, 255]))).unwrap();
    std::fs::write(dir.path().join("readme.txt"), b"ignored").unwrap();
    let mut src = FolderSource::open(dir.path(), 32, 24, 200, Duration::from_millis(60)).unwrap();
    let mut f = RgbFrame::new(1, 1);
    let mut shown: Vec<[u8; 3]> = Vec::new();
    // Until four changes are seen (event-driven: a loaded machine only takes longer).
    let deadline = Instant::now() + Duration::from_secs(60);
    while shown.len() < 4 && Instant::now() < deadline {
        src.next_frame(&mut f).unwrap();
        let c = mean(&f);
        if shown.last().is_none_or(|l| !near(*l, c, 8)) {
            shown.push(c);
        }
    }
    assert!(shown.len() >= 4, "{shown:?}");
    for (i, c) in shown.iter().enumerate() {
        let want = if i % 2 == 0 { [255, 0, 0] } else { [0, 0, 255] };
        assert!(near(*c, want, 8), "picture {i}: {c:?}, all {shown:?}");
    }
}

fn mjpeg_stream(dir: &Path, parts: &[Vec<u8>]) -> PathBuf {
    let p = dir.join("clip.mjpeg");
    std::fs::write(&p, parts.concat()).unwrap();
    p
}

/// `jpeg` cut in the middle of its entropy-coded data.
fn cut_in_scan(jpeg: &[u8]) -> Vec<u8> {
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let len = u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]) as usize;
    let cut = sos + 2 + len + (jpeg.len() - sos - len) / 2;
    jpeg[..cut].to_vec()
}

#[test]
fn corrupt_frames_in_an_mjpeg_stream_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let a = jpeg(&solid(48, 32, [250, 250, 250]));
    let garbage = vec![0xFF, 0xD8, 0x12, 0x34, 0x56, 0x78];
    let cut = cut_in_scan(&jpeg(&noisy(48, 32, 7)));
    let c = jpeg(&solid(48, 32, [10, 10, 10]));
    let p = mjpeg_stream(dir.path(), &[a, garbage, cut, c]);
    let mut src = capture::open(&cfg(SourceKind::Video, Some(&p), 48, 32, 100)).unwrap();
    let mut f = RgbFrame::new(1, 1);

    src.next_frame(&mut f).unwrap();
    assert!(near(mean(&f), [250, 250, 250], 4));
    for _ in 0..2 {
        let err = src.next_frame(&mut f).unwrap_err();
        assert!(matches!(err, CaptureError::CorruptFrame { .. }), "{err:?}");
        assert!(err.is_transient());
        assert!(err.to_string().contains("clip.mjpeg"), "{err}");
    }
    src.next_frame(&mut f).unwrap();
    assert!(near(mean(&f), [10, 10, 10], 4));
    assert_eq!((f.width, f.height, f.seq), (48, 32, 1));
    // Looped: the first frame again.
    src.next_frame(&mut f).unwrap();
    assert!(near(mean(&f), [250, 250, 250], 4));
    assert_eq!(f.seq, 2);
}

#[test]
fn mjpeg_file_without_any_jpeg_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = mjpeg_stream(dir.path(), &[b"just some text".to_vec()]);
    let err = capture::open(&cfg(SourceKind::Video, Some(&p), 48, 32, 30))
        .err()
        .unwrap();
    assert!(matches!(err, CaptureError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("clip.mjpeg"), "{err}");
}

/// A stream in which no frame decodes can never show anything: refused at open (so `run`
/// ends with exit 2), not retried frame after frame.
#[test]
fn mjpeg_stream_of_only_broken_frames_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = mjpeg_stream(
        dir.path(),
        &[vec![0xFF, 0xD8, 0x00, 0x01], vec![0xFF, 0xD8]],
    );
    let err = capture::open(&cfg(SourceKind::Video, Some(&p), 48, 32, 200))
        .err()
        .expect("no frame here can decode");
    assert!(matches!(err, CaptureError::Decode { .. }), "{err:?}");
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.to_string().contains("clip.mjpeg"), "{err}");
}

/// Y4M 4:2:0 frames of uniform BT.601 colours.
fn y4m_file(dir: &Path, name: &str, colours: &[(u8, u8, u8)], extra: &[u8]) -> PathBuf {
    let (w, h) = (16usize, 8usize);
    let mut out = Vec::new();
    {
        let mut enc = y4m::encode(w, h, y4m::Ratio::new(30, 1))
            .with_colorspace(y4m::Colorspace::C420)
            .write_header(&mut out)
            .unwrap();
        for &(y, u, v) in colours {
            let (yp, up, vp) = (vec![y; w * h], vec![u; w * h / 4], vec![v; w * h / 4]);
            enc.write_frame(&y4m::Frame::new([&yp, &up, &vp], None))
                .unwrap();
        }
    }
    out.extend_from_slice(extra);
    let p = dir.join(name);
    std::fs::write(&p, out).unwrap();
    p
}

const RED: (u8, u8, u8) = (81, 90, 240);
const GREEN: (u8, u8, u8) = (145, 54, 34);
const BLUE: (u8, u8, u8) = (41, 240, 110);

#[test]
fn y4m_frames_convert_to_rgb_loop_and_follow_the_file_rate() {
    let dir = tempfile::tempdir().unwrap();
    let p = y4m_file(dir.path(), "clip.y4m", &[RED, GREEN, BLUE], b"");
    // cfg.fps is 1: the file's own 30 fps must win.
    let mut src = capture::open(&cfg(SourceKind::Video, Some(&p), 16, 8, 1)).unwrap();
    let mut f = RgbFrame::new(1, 1);
    let want = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 0]];
    let start = Instant::now();
    for (i, w) in want.iter().enumerate() {
        src.next_frame(&mut f).unwrap();
        assert_eq!((f.width, f.height, f.seq), (16, 8, i as u64));
        assert!(near(f.pixel(3, 3), *w, 3), "frame {i}: {:?}", f.pixel(3, 3));
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(90), "{took:?}");
    // Not cfg.fps (1 fps would take 3 s); generous for a loaded machine.
    assert!(took < Duration::from_millis(2900), "{took:?}");
}

#[test]
fn truncated_y4m_reports_the_cut_frame_then_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let half_frame = [b"FRAME\n".as_slice(), &[16u8; 40]].concat();
    let p = y4m_file(dir.path(), "cut.y4m", &[RED, GREEN], &half_frame);
    let mut src = capture::open(&cfg(SourceKind::Video, Some(&p), 16, 8, 30)).unwrap();
    let mut f = RgbFrame::new(1, 1);
    src.next_frame(&mut f).unwrap();
    src.next_frame(&mut f).unwrap();
    let err = src.next_frame(&mut f).unwrap_err();
    assert!(matches!(err, CaptureError::CorruptFrame { .. }), "{err:?}");
    assert!(err.to_string().contains("cut.y4m"), "{err}");
    src.next_frame(&mut f).unwrap();
    assert!(near(f.pixel(0, 0), [255, 0, 0], 3), "{:?}", f.pixel(0, 0));
}

#[test]
fn y4m_with_a_huge_frame_size_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.y4m");
    std::fs::write(&p, b"YUV4MPEG2 W100000 H90000 F30:1 C420\nFRAME\n").unwrap();
    let err = capture::open(&cfg(SourceKind::Video, Some(&p), 16, 8, 30))
        .err()
        .unwrap();
    assert!(matches!(err, CaptureError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("huge.y4m"), "{err}");
}

#[test]
fn video_format_is_sniffed_when_the_extension_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let y = y4m_file(dir.path(), "clip.bin", &[GREEN], b"");
    let mut src = capture::open(&cfg(SourceKind::Video, Some(&y), 16, 8, 30)).unwrap();
    let mut f = RgbFrame::new(1, 1);
    src.next_frame(&mut f).unwrap();
    assert!(near(f.pixel(0, 0), [0, 255, 0], 3));
    let other = dir.path().join("clip.avi");
    std::fs::write(&other, b"RIFF....AVI ").unwrap();
    let err = capture::open(&cfg(SourceKind::Video, Some(&other), 16, 8, 30))
        .err()
        .unwrap();
    assert!(err.to_string().contains("clip.avi"), "{err}");
}

#[test]
fn synthetic_source_is_paced_sized_and_moving() {
    let mut src = capture::open(&cfg(SourceKind::Synthetic, None, 96, 64, 25)).unwrap();
    let mut f = RgbFrame::new(1, 1);
    let start = Instant::now();
    src.next_frame(&mut f).unwrap();
    let first = f.data.clone();
    for _ in 0..5 {
        src.next_frame(&mut f).unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(190),
        "{:?}",
        start.elapsed()
    );
    assert_eq!((f.width, f.height, f.seq), (96, 64, 5));
    // The pan is slow but never still.
    assert_ne!(first, f.data);
}

#[test]
fn synthetic_render_is_a_pure_function_of_time() {
    let mut a = Synthetic::new(120, 80, 15);
    let mut b = Synthetic::new(120, 80, 15);
    let (mut fa, mut fb) = (RgbFrame::new(1, 1), RgbFrame::new(1, 1));
    a.render(5.0, &mut fa);
    a.render(0.0, &mut fb); // disturb any hidden state
    b.render(5.0, &mut fb);
    assert_eq!(fa.data, fb.data);
    a.render(0.0, &mut fb);
    assert_ne!(fa.data, fb.data, "t=0 and t=5 must differ");
    let still = capture::still_scene(120, 80);
    assert_eq!(still.data, fb.data, "still_scene is the scene at t=0");
}

#[test]
fn zero_capture_size_is_a_config_error() {
    let err = capture::open(&cfg(SourceKind::Synthetic, None, 0, 64, 25))
        .err()
        .unwrap();
    assert!(matches!(err, CaptureError::Config(_)), "{err:?}");
}
