//! Camera source: decoding, bad frames and reconnection through a fake device; device
//! lookup errors on this machine (no camera); and, opt-in, a real V4L2 device (vivid in a
//! qemu guest: see tests/lab/vivid.sh).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use styleframe::capture::camera::{CameraMode, CameraSource, RawCamera, RawFormat};
use styleframe::capture::{self, CaptureError, FrameSource};
use styleframe::config::{CameraConfig, PixelFormat, SourceKind};
use styleframe::frame::RgbFrame;

/// Plays back scripted raw buffers; an `Err` is a device failure.
struct FakeCamera {
    mode: CameraMode,
    script: VecDeque<Result<Vec<u8>, String>>,
    current: Vec<u8>,
}

impl RawCamera for FakeCamera {
    fn mode(&self) -> CameraMode {
        self.mode
    }
    fn grab(&mut self) -> Result<&[u8], String> {
        match self.script.pop_front() {
            Some(Ok(buf)) => {
                self.current = buf;
                Ok(&self.current)
            }
            Some(Err(e)) => Err(e),
            None => Err("script exhausted".into()),
        }
    }
    fn label(&self) -> String {
        "fake".into()
    }
}

const YUYV_4X2: CameraMode = CameraMode {
    width: 4,
    height: 2,
    fps: 30,
    format: RawFormat::Yuyv,
};

/// A 4x2 YUYV frame: left half black, right half white; `pad` extra bytes as mmap rounding.
fn yuyv_frame(pad: usize) -> Vec<u8> {
    let row = [16, 128, 16, 128, 235, 128, 235, 128];
    let mut v = [row, row].concat();
    v.extend(std::iter::repeat_n(0xAA, pad));
    v
}

fn source_with(mode: CameraMode, script: Vec<Result<Vec<u8>, String>>) -> CameraSource {
    let mut once = Some(FakeCamera {
        mode,
        script: script.into(),
        current: Vec::new(),
    });
    CameraSource::with_opener(
        "fake0",
        Box::new(move || match once.take() {
            Some(c) => Ok(Box::new(c) as Box<dyn RawCamera>),
            None => Err(CaptureError::NoCamera {
                device: "fake0".into(),
                available: "none".into(),
            }),
        }),
    )
    .unwrap()
}

#[test]
fn yuyv_camera_frames_decode_to_rgb_with_rising_seq() {
    let mut cam = source_with(YUYV_4X2, vec![Ok(yuyv_frame(0)), Ok(yuyv_frame(4096))]);
    let mut f = RgbFrame::new(1, 1);
    for seq in 0..2 {
        cam.next_frame(&mut f).unwrap();
        assert_eq!((f.width, f.height, f.seq), (4, 2, seq));
        assert_eq!(f.pixel(0, 1), [0, 0, 0]);
        assert_eq!(f.pixel(3, 0), [255, 255, 255]);
    }
    assert!(cam.describe().contains("fake0"));
}

#[test]
fn short_camera_buffer_is_a_corrupt_frame_and_the_next_one_is_fine() {
    let mut cam = source_with(YUYV_4X2, vec![Ok(vec![16; 5]), Ok(yuyv_frame(0))]);
    let mut f = RgbFrame::new(1, 1);
    let err = cam.next_frame(&mut f).unwrap_err();
    assert!(matches!(err, CaptureError::CorruptFrame { .. }), "{err:?}");
    assert!(err.is_transient() && !err.needs_backoff());
    assert!(err.to_string().contains("fake0"), "{err}");
    cam.next_frame(&mut f).unwrap();
    assert_eq!(f.pixel(3, 1), [255, 255, 255]);
}

#[test]
fn corrupt_mjpeg_from_the_camera_is_a_corrupt_frame() {
    let mode = CameraMode {
        format: RawFormat::Mjpeg,
        ..YUYV_4X2
    };
    let mut good = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut good)
        .encode_image(&image::RgbImage::from_pixel(4, 2, image::Rgb([0, 0, 250])))
        .unwrap();
    // Headers only: cut before the frame header and the scan.
    let bad = good[..40].to_vec();
    let mut cam = source_with(mode, vec![Ok(bad), Ok(good)]);
    let mut f = RgbFrame::new(1, 1);
    let err = cam.next_frame(&mut f).unwrap_err();
    assert!(matches!(err, CaptureError::CorruptFrame { .. }), "{err:?}");
    cam.next_frame(&mut f).unwrap();
    assert_eq!((f.width, f.height), (4, 2));
    assert!(f.pixel(1, 1)[2] > 200, "{:?}", f.pixel(1, 1));
}

#[test]
fn mjpeg_camera_buffer_with_stale_bytes_after_the_jpeg_decodes() {
    // nokhwa hands out the whole mmap buffer, not just `bytesused`: after the JPEG come
    // leftovers of an earlier, longer frame.
    let mode = CameraMode {
        format: RawFormat::Mjpeg,
        width: 16,
        height: 8,
        ..YUYV_4X2
    };
    let encode = |c: [u8; 3]| {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .encode_image(&image::RgbImage::from_pixel(16, 8, image::Rgb(c)))
            .unwrap();
        out
    };
    let older = encode([250, 250, 250]);
    let mut buf = encode([200, 20, 20]);
    buf.extend_from_slice(&older[100..]);
    buf.resize(64 * 1024, 0xAA);
    let mut cam = source_with(mode, vec![Ok(buf)]);
    let mut f = RgbFrame::new(1, 1);
    cam.next_frame(&mut f).unwrap();
    assert_eq!((f.width, f.height), (16, 8));
    let p = f.pixel(8, 4);
    assert!(p[0] > 180 && p[1] < 50 && p[2] < 50, "{p:?}");
}

#[test]
fn unplugged_camera_reports_disconnected_and_reopens_on_a_later_call() {
    let opens = Arc::new(AtomicUsize::new(0));
    let counter = opens.clone();
    let mut cam = CameraSource::with_opener(
        "usbcam",
        Box::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            match n {
                // First open: one frame, then the cable is pulled.
                0 => Ok(Box::new(FakeCamera {
                    mode: YUYV_4X2,
                    script: vec![
                        Ok(yuyv_frame(0)),
                        Err("No such device (os error 19)".into()),
                    ]
                    .into(),
                    current: Vec::new(),
                }) as Box<dyn RawCamera>),
                // Still unplugged.
                1 => Err(CaptureError::NoCamera {
                    device: "usbcam".into(),
                    available: "none".into(),
                }),
                // Plugged back in.
                _ => Ok(Box::new(FakeCamera {
                    mode: YUYV_4X2,
                    script: vec![Ok(yuyv_frame(0))].into(),
                    current: Vec::new(),
                }) as Box<dyn RawCamera>),
            }
        }),
    )
    .unwrap();
    let mut f = RgbFrame::new(1, 1);
    cam.next_frame(&mut f).unwrap();

    let err = cam.next_frame(&mut f).unwrap_err();
    assert!(matches!(err, CaptureError::Disconnected { .. }), "{err:?}");
    assert!(err.is_transient() && err.needs_backoff());
    assert!(err.to_string().contains("usbcam") && err.to_string().contains("os error 19"));

    let err = cam.next_frame(&mut f).unwrap_err();
    assert!(matches!(err, CaptureError::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("reopen failed"), "{err}");

    cam.next_frame(&mut f).unwrap();
    assert_eq!(opens.load(Ordering::SeqCst), 3);
    assert_eq!(f.pixel(3, 0), [255, 255, 255]);
}

fn camera_cfg(device: &str) -> CameraConfig {
    CameraConfig {
        source: SourceKind::Camera,
        device: device.into(),
        ..CameraConfig::default()
    }
}

#[test]
fn camera_asked_by_a_name_that_is_not_there_is_a_clear_error() {
    let err = capture::open(&camera_cfg("NoSuchCam XYZ")).err().unwrap();
    assert!(matches!(err, CaptureError::NoCamera { .. }), "{err:?}");
    assert!(err.to_string().contains("\"NoSuchCam XYZ\""), "{err}");
    assert!(!err.is_transient());
}

#[test]
fn camera_asked_by_an_index_that_is_not_there_is_a_clear_error() {
    let err = capture::open(&camera_cfg("37")).err().unwrap();
    assert!(matches!(err, CaptureError::NoCamera { .. }), "{err:?}");
    assert!(err.to_string().contains("\"37\""), "{err}");
}

#[test]
fn listing_cameras_without_devices_is_empty_not_an_error() {
    let list = capture::list_cameras();
    let any_device = std::fs::read_dir("/dev").is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("video"))
    });
    if !any_device {
        assert!(list.is_empty(), "{list:?}");
    }
}

// ------------------------------------------------------------ real V4L2 device (opt-in)

/// Grabs frames from the real device; returns the mode used and the last frame.
fn check_real_frames(
    device: &str,
    format: PixelFormat,
    only: Option<RawFormat>,
) -> (CameraMode, RgbFrame) {
    let cfg = CameraConfig {
        source: SourceKind::Camera,
        device: device.into(),
        width: 640,
        height: 480,
        fps: 25,
        format,
        path: None,
        rpicam_vid: String::new(),
    };
    let mut cam = CameraSource::open_in_format(&cfg, only)
        .unwrap_or_else(|e| panic!("open {format:?}/{only:?}: {e}"));
    let mode = cam.mode();
    println!(
        "requested {format:?}/{only:?}: got {mode} ({})",
        cam.describe()
    );
    let mut f = RgbFrame::new(1, 1);
    let mut last_seq = None;
    let mut corrupt = 0;
    let start = std::time::Instant::now();
    let mut good = 0;
    while good < 8 {
        match cam.next_frame(&mut f) {
            Ok(()) => good += 1,
            Err(e) if e.is_transient() && corrupt < 3 => {
                corrupt += 1;
                println!("transient: {e}");
                continue;
            }
            Err(e) => panic!("{format:?}: {e}"),
        }
        assert_eq!((f.width, f.height), (mode.width, mode.height));
        assert_eq!(f.data.len(), (f.width * f.height * 3) as usize);
        if let Some(prev) = last_seq {
            assert!(f.seq > prev);
        }
        last_seq = Some(f.seq);
        // vivid draws a test pattern: far from a uniform picture.
        let first = f.pixel(0, 0);
        let distinct = (0..f.height)
            .step_by(7)
            .flat_map(|y| (0..f.width).step_by(7).map(move |x| (x, y)))
            .filter(|&(x, y)| f.pixel(x, y) != first)
            .count();
        assert!(
            distinct > 100,
            "{format:?}: picture looks uniform ({distinct})"
        );
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{format:?}: {good} frames in {secs:.2} s ({:.1} fps), {corrupt} corrupt, mean {:?}",
        good as f64 / secs,
        mean_rgb(&f)
    );
    (mode, f)
}

/// Mean absolute difference per sample between two same-sized pictures.
fn mean_abs_diff(a: &RgbFrame, b: &RgbFrame) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let sum: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.data.len() as f64
}

fn mean_rgb(f: &RgbFrame) -> [u64; 3] {
    let n = (f.data.len() / 3).max(1) as u64;
    let mut s = [0u64; 3];
    for px in f.data.chunks_exact(3) {
        for c in 0..3 {
            s[c] += px[c] as u64;
        }
    }
    [s[0] / n, s[1] / n, s[2] / n]
}

/// Needs a real V4L2 capture device (run by tests/lab/vivid.sh inside a qemu guest).
#[test]
#[ignore]
fn lab_vivid_real_device_delivers_frames_in_each_format() {
    let cams = capture::list_cameras();
    println!("cameras: {cams:#?}");
    let vivid = cams
        .iter()
        .find(|c| c.name.starts_with("vivid"))
        .unwrap_or_else(|| panic!("no vivid device among {cams:?}"));
    let dev = vivid.index.to_string();
    let (yuyv, yuyv_frame) = check_real_frames(&dev, PixelFormat::Yuyv, None);
    assert_eq!(yuyv.format, RawFormat::Yuyv);
    // vivid has no MJPEG: the request must fall back to a mode we can decode, not fail.
    let has_mjpeg = vivid.modes.iter().any(|m| m.contains("Mjpeg"));
    let (got, _) = check_real_frames(&dev, PixelFormat::Mjpeg, None);
    assert_eq!(got.format == RawFormat::Mjpeg, has_mjpeg);
    check_real_frames(&dev, PixelFormat::Auto, None);
    // Every other format the device offers decodes to the same picture (vivid draws the same
    // colour bars in each; RGB24 needs no conversion). Pixel by pixel, so that swapped
    // channels or a shifted chroma plane show up; only the frame-counter text changes.
    for f in [
        RawFormat::Rgb24,
        RawFormat::Bgr24,
        RawFormat::Nv12,
        RawFormat::Mjpeg,
    ] {
        let offered = vivid.modes.iter().any(|m| m.contains(&format!("{f:?}")));
        if !offered {
            println!("{f:?}: not offered by this device");
            continue;
        }
        let (mode, frame) = check_real_frames(&dev, PixelFormat::Auto, Some(f));
        assert_eq!(mode.format, f);
        let d = mean_abs_diff(&frame, &yuyv_frame);
        println!("{f:?} vs YUYV: mean abs difference {d:.2}");
        assert!(d < 6.0, "{f:?} differs from YUYV by {d:.2} per sample");
        let mut swapped = frame.clone();
        for px in swapped.data.chunks_exact_mut(3) {
            px.swap(0, 2);
        }
        assert!(
            mean_abs_diff(&swapped, &yuyv_frame) > 2.0 * d + 5.0,
            "test cannot see a swap"
        );
    }
    // Asking by part of the name works too.
    let name = vivid.name.chars().take(4).collect::<String>();
    let cfg = CameraConfig {
        device: name.clone(),
        ..camera_cfg("0")
    };
    let cam = CameraSource::open(&cfg).unwrap_or_else(|e| panic!("by name {name:?}: {e}"));
    println!("by name {name:?}: {}", cam.describe());
}

/// Sets a V4L2 control through a second file descriptor (controls are per device).
fn set_control(device: &str, id: u32, value: i32) {
    #[repr(C)]
    struct V4l2Control {
        id: u32,
        value: i32,
    }
    const VIDIOC_S_CTRL: libc::c_ulong = 0xC008_561C;
    let path = std::ffi::CString::new(device).unwrap();
    // SAFETY: plain open/ioctl/close on a path we own; the struct outlives the call.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR);
        assert!(
            fd >= 0,
            "open {device}: {}",
            std::io::Error::last_os_error()
        );
        let mut ctrl = V4l2Control { id, value };
        let r = libc::ioctl(fd, VIDIOC_S_CTRL, &mut ctrl);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        assert!(r == 0, "VIDIOC_S_CTRL {id:#x}={value} on {device}: {err}");
    }
}

/// vivid's error-injection controls (drivers/media/test-drivers/vivid/vivid-ctrls.c).
const VIVID_CID_PERC_DROPPED: u32 = 0x00f0_f000 + 64;
const VIVID_CID_DISCONNECT: u32 = 0x00f0_f000 + 65;

/// Needs vivid (tests/lab/vivid.sh). Unplugs the device, so it runs last of the `lab_`
/// tests (libtest runs tests in name order with --test-threads=1).
#[test]
#[ignore]
fn lab_vivid_stall_and_unplug_are_reported_and_the_camera_comes_back() {
    let cfg = CameraConfig {
        width: 640,
        height: 480,
        fps: 25,
        format: PixelFormat::Yuyv,
        ..camera_cfg("0")
    };
    let mut cam = CameraSource::open(&cfg).unwrap();
    let mut f = RgbFrame::new(1, 1);
    cam.next_frame(&mut f).unwrap();

    // Every buffer dropped: the camera goes silent without any error of its own.
    set_control("/dev/video0", VIVID_CID_PERC_DROPPED, 100);
    // Frames already captured into queued buffers still arrive first.
    let mut drained = 0;
    let (err, waited) = loop {
        let t0 = std::time::Instant::now();
        match cam.next_frame(&mut f) {
            Ok(()) => drained += 1,
            Err(e) => break (e, t0.elapsed()),
        }
        assert!(drained < 10, "frames keep coming with every buffer dropped");
    };
    println!("{drained} frames were already queued");
    println!("stall: {err} after {waited:?}");
    assert!(matches!(err, CaptureError::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("stalled"), "{err}");
    assert!(
        waited >= std::time::Duration::from_millis(4500),
        "{waited:?}"
    );

    // Frames flow again: the next call reopens the device.
    set_control("/dev/video0", VIVID_CID_PERC_DROPPED, 0);
    cam.next_frame(&mut f).unwrap();
    assert_eq!((f.width, f.height), (640, 480));
    println!("recovered after the stall: {}", cam.describe());

    // Unplug: the device node goes away under the open stream.
    set_control("/dev/video0", VIVID_CID_DISCONNECT, 0);
    let err = cam.next_frame(&mut f).unwrap_err();
    println!("unplug: {err}");
    assert!(matches!(err, CaptureError::Disconnected { .. }), "{err:?}");
    assert!(err.needs_backoff());
    // Closing our fd was the last use, so vivid registers the device again ("plugged back
    // in", vivid-core.c vivid_fop_release): the next call reopens it.
    cam.next_frame(&mut f).unwrap();
    assert_eq!((f.width, f.height), (640, 480));
    println!("replugged: {}", cam.describe());
}

/// Writes JPEGs into the output side of a v4l2loopback device, ~30 per second, so its
/// capture side behaves like an MJPEG webcam.
struct MjpegFeeder {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl MjpegFeeder {
    fn start(device: &str, width: u32, height: u32, jpegs: Vec<Vec<u8>>) -> MjpegFeeder {
        #[repr(C)]
        struct PixFormat {
            width: u32,
            height: u32,
            pixelformat: u32,
            field: u32,
            bytesperline: u32,
            sizeimage: u32,
            rest: [u32; 6],
        }
        /// struct v4l2_format on 64-bit: the union is 8-aligned and 200 bytes.
        #[repr(C)]
        struct V4l2Format {
            kind: u32,
            pad: u32,
            pix: PixFormat,
            rest: [u8; 200 - 48],
        }
        const VIDIOC_S_FMT: libc::c_ulong = 0xC0D0_5605;
        const V4L2_BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
        let path = std::ffi::CString::new(device).unwrap();
        // SAFETY: plain open/ioctl on a path we own; the struct outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
        assert!(
            fd >= 0,
            "open {device}: {}",
            std::io::Error::last_os_error()
        );
        let mut fmt = V4l2Format {
            kind: V4L2_BUF_TYPE_VIDEO_OUTPUT,
            pad: 0,
            pix: PixFormat {
                width,
                height,
                pixelformat: u32::from_le_bytes(*b"MJPG"),
                field: 1, // V4L2_FIELD_NONE
                bytesperline: 0,
                sizeimage: width * height * 2,
                rest: [0; 6],
            },
            rest: [0; 152],
        };
        // SAFETY: fd is open; fmt is a valid v4l2_format.
        let r = unsafe { libc::ioctl(fd, VIDIOC_S_FMT, &mut fmt) };
        assert!(
            r == 0,
            "S_FMT MJPG on {device}: {}",
            std::io::Error::last_os_error()
        );
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut written = 0u64;
            while !stop2.load(Ordering::SeqCst) {
                let j = &jpegs[(written as usize / 5) % jpegs.len()];
                // SAFETY: writing our own buffer to our own fd.
                let n = unsafe { libc::write(fd, j.as_ptr().cast(), j.len()) };
                assert_eq!(
                    n,
                    j.len() as isize,
                    "write: {}",
                    std::io::Error::last_os_error()
                );
                written += 1;
                std::thread::sleep(std::time::Duration::from_millis(33));
            }
            // SAFETY: closing the fd this thread owns.
            unsafe { libc::close(fd) };
            written
        });
        MjpegFeeder {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Needs v4l2loopback loaded as /dev/video9 named "styleframe-loopback" (tests/lab/vivid.sh):
/// a real V4L2 driver delivering MJPEG, which vivid does not offer.
#[test]
#[ignore]
fn lab_loopback_mjpeg_camera_frames_decode_to_the_pictures_sent() {
    let (w, h) = (640, 480);
    let a = capture::still_scene(w, h);
    let mut b = RgbFrame::new(1, 1);
    capture::Synthetic::new(w, h, 30).render(40.0, &mut b);
    let encode = |f: &RgbFrame| {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
            .encode_image(&f.to_image())
            .unwrap();
        out
    };
    let feeder = MjpegFeeder::start("/dev/video9", w, h, vec![encode(&a), encode(&b)]);
    // The capture side offers a format once the first frame is written.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cfg = CameraConfig {
        width: w,
        height: h,
        fps: 30,
        format: PixelFormat::Mjpeg,
        ..camera_cfg("styleframe-loop")
    };
    let mut cam = CameraSource::open(&cfg).unwrap_or_else(|e| panic!("open loopback: {e}"));
    println!("loopback: {}", cam.describe());
    assert_eq!(cam.mode().format, RawFormat::Mjpeg);
    let mut f = RgbFrame::new(1, 1);
    let (mut saw_a, mut saw_b) = (0, 0);
    for _ in 0..20 {
        cam.next_frame(&mut f).unwrap();
        assert_eq!((f.width, f.height), (w, h));
        let (da, db) = (mean_abs_diff(&f, &a), mean_abs_diff(&f, &b));
        assert!(
            da.min(db) < 3.0,
            "frame {} matches neither picture: {da:.2} / {db:.2}",
            f.seq
        );
        if da < db {
            saw_a += 1;
        } else {
            saw_b += 1;
        }
    }
    let written = feeder.stop();
    println!("loopback: wrote {written} JPEGs, decoded 20: {saw_a} of picture A, {saw_b} of B");
    assert!(saw_a > 0 && saw_b > 0, "the picture never changed");
}
