//! The real window backend on a real X server (Xvfb): the picture is on the
//! screen, and a held key arrives as a command once.
//!
//! Needs `DISPLAY` pointing at an 800x480 Xvfb plus xwd, ImageMagick `convert`
//! and xdotool; run through `tests/lab/xvfb_window.sh`. Screenshots go to
//! `$STYLEFRAME_SHOT_DIR` (default: the system temp dir). Run with
//! `--test-threads=1`: each test screenshots the whole X screen.

use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::time::{Duration, Instant};

use styleframe::config::{DisplayBackend, DisplayConfig};
use styleframe::display::{self, PowerMode, Screen};
use styleframe::frame::{pack_rgb, Command};

const QUADRANTS: [[u8; 3]; 4] = [[230, 30, 20], [20, 200, 40], [30, 40, 220], [250, 240, 60]];

/// Four coloured quadrants (TL red, TR green, BL blue, BR yellow) and a
/// horizontal grey ramp in the middle band.
fn picture(w: usize, h: usize) -> Vec<u32> {
    let mut px = vec![0u32; w * h];
    for y in 0..h {
        for x in 0..w {
            let q = QUADRANTS[(y >= h / 2) as usize * 2 + (x >= w / 2) as usize];
            px[y * w + x] = if (h * 9 / 20..h * 11 / 20).contains(&y) {
                let v = (x * 255 / (w - 1)) as u8;
                pack_rgb(v, v, v)
            } else {
                pack_rgb(q[0], q[1], q[2])
            };
        }
    }
    px
}

fn shot_dir() -> PathBuf {
    let dir = std::env::var_os("STYLEFRAME_SHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn screenshot(path: &Path) -> image::RgbImage {
    let display = std::env::var("DISPLAY").unwrap();
    let cmd = format!(
        "xwd -root -silent -display {display} | convert xwd:- png:{}",
        path.display()
    );
    let st = Proc::new("sh").arg("-c").arg(&cmd).status().unwrap();
    assert!(st.success(), "{cmd} failed");
    image::open(path).unwrap().to_rgb8()
}

/// Keeps the window drawn (and its events pumped) for `d`.
fn run_for(screen: &mut dyn Screen, pic: &[u32], d: Duration, cmds: &mut Vec<Command>) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        screen.present(pic).unwrap();
        screen.poll_commands(cmds);
    }
}

#[test]
#[ignore = "needs Xvfb: run tests/lab/xvfb_window.sh"]
fn window_shows_the_picture_and_maps_a_held_key_once() {
    let cfg = DisplayConfig {
        backend: DisplayBackend::Window,
        fullscreen: true,
        width: 0, // ask X: the Xvfb screen is 800x480
        height: 0,
        fps: 30,
        ..DisplayConfig::default()
    };
    let mut screen = display::open(&cfg).expect("open window on Xvfb");
    let (w, h) = screen.size();
    println!("window size {w}x{h}");
    assert_eq!((w, h), (800, 480), "full screen = the X screen size");

    let pic = picture(w, h);
    let mut cmds = Vec::new();
    run_for(&mut *screen, &pic, Duration::from_millis(800), &mut cmds);
    assert!(cmds.is_empty(), "no keys typed yet: {cmds:?}");

    let dir = shot_dir();
    let shot_path = dir.join("styleframe_xvfb_shot.png");
    let shot = screenshot(&shot_path);
    println!("screenshot: {}", shot_path.display());
    assert_eq!(shot.dimensions(), (800, 480));
    for (i, (x, y)) in [(200, 60), (600, 60), (200, 420), (600, 420)]
        .iter()
        .enumerate()
    {
        assert_eq!(
            shot.get_pixel(*x, *y).0,
            QUADRANTS[i],
            "quadrant {i} at ({x},{y})"
        );
    }
    // The ramp, sampled anywhere, matches the picture exactly (no scaling, no offset).
    for x in [0u32, 123, 400, 799] {
        let want = (x as usize * 255 / (w - 1)) as u8;
        assert_eq!(shot.get_pixel(x, 240).0, [want; 3], "ramp at x={x}");
    }

    // Hold Right for 100 ms (the pointer is put over the window: without a
    // window manager X gives keyboard focus to the window under the pointer).
    let mut keys = Proc::new("sh")
        .arg("-c")
        .arg("xdotool mousemove 400 240 && xdotool keydown Right && sleep 0.1 && xdotool keyup Right")
        .spawn()
        .unwrap();
    run_for(&mut *screen, &pic, Duration::from_millis(1500), &mut cmds);
    assert!(keys.wait().unwrap().success(), "xdotool failed");
    println!("commands: {cmds:?}");
    assert_eq!(cmds, [Command::NextStyle], "one press, no auto-repeat");

    screen.blank().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let blank_path = dir.join("styleframe_xvfb_blank.png");
    let blank = screenshot(&blank_path);
    assert!(blank.pixels().all(|p| p.0 == [0, 0, 0]), "blank is black");
    assert!(screen.is_open());
}

/// Xvfb has no DPMS extension, and `xset dpms force off` still exits 0 there:
/// the window must not claim the panel is off. It shows black, says `Black`,
/// and pictures come back when powered on.
#[test]
#[ignore = "needs Xvfb: run tests/lab/xvfb_window.sh"]
fn window_power_off_without_dpms_is_black_and_says_so() {
    std::env::remove_var("WAYLAND_DISPLAY");
    let cfg = DisplayConfig {
        backend: DisplayBackend::Window,
        fullscreen: true,
        fps: 30,
        ..DisplayConfig::default()
    };
    let mut screen = display::open(&cfg).expect("open window on Xvfb");
    let (w, h) = screen.size();
    let pic = picture(w, h);
    let mut cmds = Vec::new();
    run_for(&mut *screen, &pic, Duration::from_millis(500), &mut cmds);
    assert_eq!(screen.set_power(false).unwrap(), PowerMode::Black);
    std::thread::sleep(Duration::from_millis(200));
    let dir = shot_dir();
    let off = screenshot(&dir.join("styleframe_xvfb_power_off.png"));
    assert!(
        off.pixels().all(|p| p.0 == [0, 0, 0]),
        "powered-off window is black"
    );
    assert_eq!(screen.set_power(true).unwrap(), PowerMode::On);
    run_for(&mut *screen, &pic, Duration::from_millis(500), &mut cmds);
    let on = screenshot(&dir.join("styleframe_xvfb_power_on.png"));
    assert_eq!(on.get_pixel(200, 60).0, QUADRANTS[0], "the picture is back");
}

/// Under an EWMH window manager (the script starts openbox when
/// `XVFB_WM=openbox`), a smaller configured window asks for full screen and
/// the picture, stretched by minifb, covers the whole X screen.
#[test]
#[ignore = "needs Xvfb + an EWMH window manager: XVFB_WM=openbox tests/lab/xvfb_window.sh"]
fn window_manager_makes_the_window_full_screen() {
    let cfg = DisplayConfig {
        backend: DisplayBackend::Window,
        fullscreen: true,
        width: 400, // half the 800x480 screen
        height: 240,
        fps: 30,
        ..DisplayConfig::default()
    };
    let mut screen = display::open(&cfg).expect("open window on Xvfb");
    assert_eq!(screen.size(), (400, 240));
    let pic = picture(400, 240);
    let mut cmds = Vec::new();
    run_for(&mut *screen, &pic, Duration::from_millis(1500), &mut cmds);

    let path = shot_dir().join("styleframe_xvfb_wm_shot.png");
    let shot = screenshot(&path);
    println!("screenshot: {}", path.display());
    // Corners of the X screen show the corner quadrants: the window fills it.
    for (i, (x, y)) in [(5, 5), (794, 5), (5, 474), (794, 474)].iter().enumerate() {
        assert_eq!(
            shot.get_pixel(*x, *y).0,
            QUADRANTS[i],
            "quadrant {i} at ({x},{y})"
        );
    }
}
