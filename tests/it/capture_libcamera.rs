//! The libcamera source against a fake `rpicam-vid`: a shell script that
//! records its arguments and emits known YUV420 frames, and on its first start
//! can stall, die with an error line, write a short frame or fail to start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use styleframe::capture::libcamera::{LibcameraSource, Settings};
use styleframe::capture::{CaptureError, FrameSource};
use styleframe::config::CameraConfig;
use styleframe::frame::RgbFrame;

const W: u32 = 64;
const H: u32 = 4;

/// 64x4: the left half white (Y 235), the right half black (Y 16), neutral
/// chroma; except the bottom-left 2x2 block, which is BT.601 red.
fn known_frame() -> Vec<u8> {
    let (w, h) = (W as usize, H as usize);
    let mut y = vec![0u8; w * h];
    for r in 0..h {
        for x in 0..w {
            y[r * w + x] = if x < w / 2 { 235 } else { 16 };
        }
    }
    let mut u = vec![128u8; w / 2 * h / 2];
    let mut v = vec![128u8; w / 2 * h / 2];
    // Chroma row 1 (pixel rows 2-3), column 0 (pixels 0-1): red.
    for (r, x) in [(2, 0), (2, 1), (3, 0), (3, 1)] {
        y[r * w + x] = 81;
    }
    u[w / 2] = 90;
    v[w / 2] = 240;
    [y, u, v].concat()
}

/// What the fake does on its first start; later starts always stream.
const STREAM: &str = "while true; do cat \"$DIR/frame.yuv\"; sleep 0.02; done";

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(first_start: &str) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("frame.yuv"), known_frame()).unwrap();
        let script = format!(
            "#!/bin/bash\n\
             DIR={dir}\n\
             echo \"$@\" > \"$DIR/args\"\n\
             echo $$ >> \"$DIR/pids\"\n\
             echo '[0:00:01.0] [42]  INFO Camera camera_manager.cpp:326 libcamera v0.5.1 (fake)' >&2\n\
             n=$(cat \"$DIR/starts\" 2>/dev/null || echo 0); echo $((n+1)) > \"$DIR/starts\"\n\
             if [ \"$n\" = 0 ]; then\n:\n{first_start}\nfi\n\
             {STREAM}\n",
            dir = dir.path().display()
        );
        let path = dir.path().join("rpicam-vid");
        std::fs::write(&path, script).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
        Fake { dir }
    }

    fn settings(&self) -> Settings {
        Settings {
            program: self.dir.path().join("rpicam-vid"),
            camera: 0,
            width: W,
            height: H,
            fps: 10,
            stall_timeout: Duration::from_millis(400),
            start_timeout: Duration::from_secs(10),
        }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn pids(&self) -> Vec<i32> {
        self.file("pids")
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// True when no process with this id exists any more (killed and reaped).
fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) != 0 }
}

fn check_known_picture(f: &RgbFrame) {
    assert_eq!((f.width, f.height), (W, H));
    let px = |x: u32, y: u32| f.pixel(x, y);
    assert_eq!(px(0, 0), [255, 255, 255], "white");
    assert_eq!(px(31, 3), [255, 255, 255], "white");
    assert_eq!(px(32, 0), [0, 0, 0], "black");
    assert_eq!(px(63, 3), [0, 0, 0], "black");
    let red = px(1, 3);
    assert!(
        red[0] >= 253 && red[1] <= 2 && red[2] <= 2,
        "red, got {red:?}"
    );
}

fn next(src: &mut LibcameraSource) -> Result<RgbFrame, CaptureError> {
    let mut f = RgbFrame::new(0, 0);
    src.next_frame(&mut f).map(|()| f)
}

#[test]
fn frames_arrive_converted_and_the_child_gets_the_asked_size_and_rate() {
    let fake = Fake::new("");
    let mut src = LibcameraSource::open(fake.settings()).unwrap();
    for _ in 0..3 {
        check_known_picture(&next(&mut src).unwrap());
    }
    let args = fake.file("args");
    for want in [
        "-t 0",
        "--codec yuv420",
        "-o -",
        "--width 64",
        "--height 4",
        "--framerate 10",
        "--camera 0",
    ] {
        assert!(args.contains(want), "{want:?} not in {args:?}");
    }
    assert!(src.describe().contains("64x4"), "{}", src.describe());
}

#[test]
fn a_stalled_child_is_detected_killed_and_restarted() {
    // One frame, then silence (the process stays alive, its pipe open).
    let fake = Fake::new("cat \"$DIR/frame.yuv\"; exec sleep 600");
    let mut src = LibcameraSource::open(fake.settings()).unwrap();
    check_known_picture(&next(&mut src).unwrap());
    let e = next(&mut src).unwrap_err();
    assert!(matches!(e, CaptureError::Disconnected { .. }), "{e}");
    assert!(e.to_string().contains("stalled"), "{e}");
    let stalled = fake.pids()[0];
    assert!(gone(stalled), "the stalled child {stalled} is still there");
    // The next call starts it again, and frames flow.
    check_known_picture(&next(&mut src).unwrap());
    assert_eq!(src.restarts(), 1);
    assert_eq!(fake.file("starts").trim(), "2");
}

#[test]
fn a_dying_child_is_reported_with_its_error_line_and_restarted() {
    let fake = Fake::new(
        "cat \"$DIR/frame.yuv\" \"$DIR/frame.yuv\"; \
         echo 'ERROR: *** camera fell over ***' >&2; exit 1",
    );
    let mut src = LibcameraSource::open(fake.settings()).unwrap();
    let mut err = None;
    for _ in 0..4 {
        match next(&mut src) {
            Ok(f) => check_known_picture(&f),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let e = err.expect("the child's death was not reported");
    assert!(matches!(e, CaptureError::Disconnected { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("exited"), "{msg}");
    assert!(msg.contains("camera fell over"), "{msg}");
    check_known_picture(&next(&mut src).unwrap());
    assert_eq!(src.restarts(), 1);
}

#[test]
fn a_short_frame_is_a_fault_not_a_picture() {
    let fake = Fake::new("cat \"$DIR/frame.yuv\"; head -c 100 \"$DIR/frame.yuv\"; exit 0");
    let mut src = LibcameraSource::open(fake.settings()).unwrap();
    check_known_picture(&next(&mut src).unwrap());
    let e = next(&mut src).unwrap_err();
    assert!(
        e.to_string().contains("short frame (100 of 384 bytes)"),
        "{e}"
    );
    check_known_picture(&next(&mut src).unwrap());
}

#[test]
fn a_camera_that_cannot_start_is_an_open_error_quoting_it() {
    let fake = Fake::new("echo 'ERROR: *** no cameras available ***' >&2; exit 1");
    let e = LibcameraSource::open(fake.settings())
        .err()
        .expect("opened a camera that failed");
    assert!(matches!(e, CaptureError::Open { .. }), "{e}");
    assert!(e.to_string().contains("exited"), "{e}");
    assert!(e.to_string().contains("no cameras available"), "{e}");
    assert!(gone(fake.pids()[0]));
}

#[test]
fn dropping_the_source_stops_the_child() {
    let fake = Fake::new("");
    let src = LibcameraSource::open(fake.settings()).unwrap();
    let pid = fake.pids()[0];
    assert!(!gone(pid));
    drop(src);
    assert!(gone(pid), "child {pid} outlived the source");
}

#[test]
fn the_configured_program_is_used_and_a_missing_one_says_what_to_install() {
    let fake = Fake::new("");
    let cfg = CameraConfig {
        rpicam_vid: fake.path().join("rpicam-vid").display().to_string(),
        width: 60,
        height: 4,
        ..CameraConfig::default()
    };
    let s = Settings::from_config(&cfg).unwrap();
    assert_eq!(s.program, PathBuf::from(&cfg.rpicam_vid));
    assert_eq!(
        (s.width, s.height),
        (64, 4),
        "width rounded up to unpadded rows"
    );
    let cfg = CameraConfig {
        rpicam_vid: "/nonexistent/rpicam-vid".into(),
        ..CameraConfig::default()
    };
    let e = Settings::from_config(&cfg).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/rpicam-vid not found"), "{e}");
    assert!(e.contains("rpicam-apps"), "{e}");
}

/// A camera.device that is not an index is refused, naming the key and the
/// value, instead of opening camera 0 (and the error is a permanent one).
#[test]
fn a_device_that_is_not_a_libcamera_index_is_refused() {
    let fake = Fake::new("");
    let rpicam_vid = fake.path().join("rpicam-vid").display().to_string();
    let cfg = |device: &str| CameraConfig {
        rpicam_vid: rpicam_vid.clone(),
        device: device.into(),
        ..CameraConfig::default()
    };
    assert_eq!(Settings::from_config(&cfg("1")).unwrap().camera, 1);
    let e = Settings::from_config(&cfg("/dev/video0")).unwrap_err();
    assert!(e.is_permanent(), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("camera.device") && e.contains("/dev/video0"),
        "{e}"
    );
}

#[test]
fn doctor_lists_the_pi_cameras_rpicam_vid_sees() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("rpicam-vid");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = --list-cameras ] || exit 2\n\
         echo 'Available cameras'\necho '-----------------'\n\
         echo '0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)'\n\
         echo \"    Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let config = dir.path().join("frame.toml");
    std::fs::write(
        &config,
        format!(
            "[camera]\nsource = \"libcamera\"\nrpicam_vid = \"{}\"\n",
            fake.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_styleframe"))
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Pi camera 0 (libcamera): imx708 [4608x2592 10-bit RGGB]"),
        "{text}"
    );
    assert!(text.contains("1536x864 [120.13 fps"), "{text}");
    assert!(!text.contains("no Pi camera module"), "{text}");
}
