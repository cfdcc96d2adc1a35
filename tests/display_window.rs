//! Window backend without a usable X server: a clean error, never a panic.
//! (The real-window test runs under Xvfb: tests/display_xvfb.rs.)
//!
//! One test only: it changes `DISPLAY` for this whole test process.

use styleframe::config::{DisplayBackend, DisplayConfig};
use styleframe::display::{self, DisplayError};

#[test]
fn missing_or_unreachable_x_is_a_no_display_error() {
    let cfg = DisplayConfig {
        backend: DisplayBackend::Window,
        ..DisplayConfig::default()
    };

    std::env::remove_var("DISPLAY");
    std::env::remove_var("WAYLAND_DISPLAY");
    let err = display::open(&cfg).err().expect("no DISPLAY must fail");
    assert!(matches!(err, DisplayError::NoDisplay { .. }), "{err}");
    assert!(err.to_string().contains("DISPLAY is not set"), "{err}");

    // A Wayland session without XWayland: the window cannot open, and the
    // error says what is missing.
    std::env::set_var("WAYLAND_DISPLAY", "wayland-0");
    let err = display::open(&cfg)
        .err()
        .expect("Wayland without XWayland must fail");
    assert!(matches!(err, DisplayError::NoDisplay { .. }), "{err}");
    assert!(err.to_string().contains("needs XWayland"), "{err}");
    std::env::remove_var("WAYLAND_DISPLAY");

    // A display number nobody serves.
    std::env::set_var("DISPLAY", ":87");
    let err = display::open(&cfg).err().expect("unreachable X must fail");
    assert!(matches!(err, DisplayError::NoDisplay { .. }), "{err}");
    assert!(err.to_string().contains(":87"), "{err}");
}
