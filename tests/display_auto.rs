//! `display.backend = "auto"`: a window on a desktop, else KMS, else the framebuffer
//! (this machine has no /dev/dri: the KMS step is covered by tests/lab/drm.sh).

use styleframe::config::{DisplayBackend, DisplayConfig};

// One test: it changes DISPLAY for the whole process.
#[test]
fn auto_picks_the_framebuffer_without_a_desktop_and_says_what_is_missing() {
    std::env::remove_var("DISPLAY");
    std::env::remove_var("WAYLAND_DISPLAY");
    let dir = tempfile::tempdir().unwrap();
    let fb = dir.path().join("fb0");
    let mut cfg = DisplayConfig {
        backend: DisplayBackend::Auto,
        framebuffer: fb.clone(),
        ..Default::default()
    };
    let err = match styleframe::display::open(&cfg) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened a screen with neither a desktop nor a framebuffer"),
    };
    assert!(err.contains("DISPLAY") && err.contains("fb0"), "{err}");
    // A plain file stands in for /dev/fb0 (geometry from the config).
    cfg.width = 64;
    cfg.height = 48;
    std::fs::write(&fb, vec![0u8; 64 * 48 * 4]).unwrap();
    let mut screen = styleframe::display::open(&cfg).unwrap();
    assert_eq!(screen.size(), (64, 48));
    screen.present(&vec![0x00ff_0000; 64 * 48]).unwrap();
    let bytes = std::fs::read(&fb).unwrap();
    assert_eq!(&bytes[..4], &[0, 0, 0xff, 0], "red in BGRA order");
}
