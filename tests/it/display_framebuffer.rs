//! Framebuffer backend against a plain file standing in for /dev/fb0
//! (the fb ioctls fail with ENOTTY, so the configured geometry is used).

use std::path::Path;

use styleframe::config::{DisplayBackend, DisplayConfig, FbFormat};
use styleframe::display::framebuffer::{to_rgb565, FbLayout, FramebufferScreen};
use styleframe::display::{self, DisplayError, PowerMode, Screen};
use styleframe::frame::pack_rgb;

fn cfg(path: &Path, w: u32, h: u32, format: FbFormat) -> DisplayConfig {
    DisplayConfig {
        backend: DisplayBackend::Framebuffer,
        width: w,
        height: h,
        framebuffer: path.to_path_buf(),
        fb_format: format,
        ..DisplayConfig::default()
    }
}

fn fake_fb(len: usize, fill: u8) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), vec![fill; len]).unwrap();
    f
}

#[test]
fn xrgb8888_pixels_land_at_their_offsets_in_bgra_order() {
    let (w, h) = (5usize, 3usize);
    let file = fake_fb(w * h * 4, 0xAA);
    let mut screen = FramebufferScreen::open(&cfg(file.path(), 5, 3, FbFormat::Xrgb8888)).unwrap();
    assert_eq!(screen.size(), (5, 3));
    let g = screen.geometry();
    assert_eq!(g.stride, 20);
    assert!(!g.from_device);
    assert_eq!(g.layout, FbLayout::Xrgb8888 { alpha: 0 });

    let pixels: Vec<u32> = (0..w * h)
        .map(|i| pack_rgb(i as u8 * 10, 100 + i as u8, 200 - i as u8))
        .collect();
    screen.present(&pixels).unwrap();
    drop(screen);

    let bytes = std::fs::read(file.path()).unwrap();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let off = y * w * 4 + x * 4;
            assert_eq!(
                &bytes[off..off + 4],
                &[200 - i as u8, 100 + i as u8, i as u8 * 10, 0],
                "pixel ({x},{y}) as B,G,R,X"
            );
        }
    }
}

#[test]
fn rgb565_packs_five_six_five_little_endian() {
    assert_eq!(to_rgb565(pack_rgb(255, 0, 0)), 0xF800);
    assert_eq!(to_rgb565(pack_rgb(0, 255, 0)), 0x07E0);
    assert_eq!(to_rgb565(pack_rgb(0, 0, 255)), 0x001F);
    assert_eq!(
        to_rgb565(pack_rgb(0x84, 0x82, 0x88)),
        (0x10 << 11) | (0x20 << 5) | 0x11
    );

    let file = fake_fb(4 * 2 * 2, 0xAA);
    let mut screen = FramebufferScreen::open(&cfg(file.path(), 4, 2, FbFormat::Rgb565)).unwrap();
    assert_eq!(screen.geometry().stride, 8);
    let mut pixels = vec![0u32; 8];
    pixels[0] = pack_rgb(255, 0, 0);
    pixels[5] = pack_rgb(0, 0, 255);
    pixels[7] = pack_rgb(255, 255, 255);
    screen.present(&pixels).unwrap();
    drop(screen);
    let bytes = std::fs::read(file.path()).unwrap();
    assert_eq!(&bytes[0..2], &[0x00, 0xF8]);
    assert_eq!(&bytes[10..12], &[0x1F, 0x00]);
    assert_eq!(&bytes[14..16], &[0xFF, 0xFF]);
    assert_eq!(&bytes[2..4], &[0, 0]);
}

#[test]
fn blank_writes_zeros() {
    let file = fake_fb(3 * 2 * 4, 0x55);
    let mut screen = display::open(&cfg(file.path(), 3, 2, FbFormat::Xrgb8888)).unwrap();
    screen.present(&[0x00FF_FFFF; 6]).unwrap();
    screen.blank().unwrap();
    drop(screen);
    assert!(std::fs::read(file.path()).unwrap().iter().all(|&b| b == 0));
}

#[test]
fn power_off_without_fbioblank_falls_back_to_black_pixels() {
    // A plain file has no FBIOBLANK (ENOTTY): the panel cannot be powered down,
    // so it must at least show black, and say so.
    let file = fake_fb(3 * 2 * 4, 0x55);
    let mut screen = display::open(&cfg(file.path(), 3, 2, FbFormat::Xrgb8888)).unwrap();
    screen.present(&[0x00FF_FFFF; 6]).unwrap();
    assert_eq!(screen.set_power(false).unwrap(), PowerMode::Black);
    assert!(std::fs::read(file.path()).unwrap().iter().all(|&b| b == 0));
    assert_eq!(screen.set_power(true).unwrap(), PowerMode::On);
}

#[test]
fn bytes_past_the_picture_are_left_alone() {
    // A file larger than the picture: only the first w*h*4 bytes are the screen.
    let file = fake_fb(2 * 2 * 4 + 8, 0x77);
    let mut screen = FramebufferScreen::open(&cfg(file.path(), 2, 2, FbFormat::Xrgb8888)).unwrap();
    screen.present(&[0; 4]).unwrap();
    drop(screen);
    let bytes = std::fs::read(file.path()).unwrap();
    assert!(bytes[..16].iter().all(|&b| b == 0));
    assert!(bytes[16..].iter().all(|&b| b == 0x77));
}

#[test]
fn wrong_picture_size_is_an_error_not_a_crash() {
    let file = fake_fb(2 * 2 * 4, 0);
    let mut screen = FramebufferScreen::open(&cfg(file.path(), 2, 2, FbFormat::Xrgb8888)).unwrap();
    let err = screen.present(&[0; 3]).unwrap_err();
    assert!(
        matches!(
            err,
            DisplayError::WrongSize {
                expected: 4,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_device_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fb7");
    let err = FramebufferScreen::open(&cfg(&path, 2, 2, FbFormat::Xrgb8888))
        .err()
        .expect("opening a missing framebuffer must fail");
    let msg = err.to_string();
    assert!(matches!(err, DisplayError::Framebuffer { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not found"), "{msg}");
}

#[test]
fn file_too_small_for_the_configured_geometry_is_refused() {
    let file = fake_fb(100, 0);
    let err = FramebufferScreen::open(&cfg(file.path(), 640, 480, FbFormat::Xrgb8888))
        .err()
        .expect("too small");
    let msg = err.to_string();
    assert!(msg.contains(&file.path().display().to_string()), "{msg}");
    assert!(msg.contains("1228800"), "{msg}");
}

#[test]
fn plain_file_without_configured_size_is_refused() {
    let file = fake_fb(64, 0);
    let err = FramebufferScreen::open(&cfg(file.path(), 0, 0, FbFormat::Xrgb8888))
        .err()
        .expect("no geometry");
    assert!(err.to_string().contains("display.width/height"), "{err}");
}

/// Takes the lock another styleframe would hold, on a descriptor of our own.
fn lock_as_another_instance(path: &Path) -> std::fs::File {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    f
}

#[test]
fn a_framebuffer_in_use_by_another_instance_is_refused_naming_its_pid() {
    let file = fake_fb(4 * 4 * 4, 0);
    let other = lock_as_another_instance(file.path());
    let c = cfg(file.path(), 4, 4, FbFormat::Xrgb8888);
    let e = FramebufferScreen::open(&c)
        .err()
        .expect("opened a locked framebuffer");
    let msg = e.to_string();
    assert!(msg.contains(&*file.path().to_string_lossy()), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    // Free again once the other one is gone.
    drop(other);
    let screen = FramebufferScreen::open(&c).unwrap();
    // While we hold it, another instance cannot take it...
    let f = std::fs::File::open(file.path()).unwrap();
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this test owns.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_ne!(r, 0, "the screen holds no lock");
    }
    // ...but this process may reopen it while the old screen still lives
    // (the daemon's retry does), and the lock ends with the last screen.
    let again = FramebufferScreen::open(&c).expect("reopening in the same process");
    drop(screen);
    drop(again);
    drop(lock_as_another_instance(file.path()));
}

#[test]
fn a_framebuffer_file_shrinking_under_the_mapping_is_an_error_not_a_sigbus() {
    let (w, h) = (64usize, 64usize);
    let file = fake_fb(w * h * 4, 0);
    let mut screen =
        FramebufferScreen::open(&cfg(file.path(), 64, 64, FbFormat::Xrgb8888)).unwrap();
    screen.present(&vec![0x00FF_0000; w * h]).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(file.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    let e = screen.present(&vec![0x0000_FF00; w * h]).unwrap_err();
    assert!(matches!(e, DisplayError::Framebuffer { .. }), "{e}");
    assert!(e.to_string().contains("shrank"), "{e}");
    assert!(screen.blank().is_err());
}
