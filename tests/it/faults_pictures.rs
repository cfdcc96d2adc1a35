//! Issue #13, the picture-input half: "Nothing shown wrong, nothing lost".
//! One section per class of fault, in the order:
//!
//! 1. Every screen shape x every source shape x every fit x every pixel
//!    budget gives a network size whose picture can be made (square screens
//!    showed nothing: the cover window ended a rounding error past the
//!    picture's edge).
//!
//! The sweeps are deterministic (generated ranges, no random seed): a failure
//! names the exact sizes and repeats on every run.

use styleframe::config::Fit;
use styleframe::inference::size_for;
use styleframe::preprocess::{cover_window, Preprocessor};

// ---------------------------------------------------------------------------
// 1. Screen shapes.

/// Screen sizes users have (square, portrait, ultra-wide, tiny, 4K) and a
/// generated grid between them: widths and heights from 16 to 4096 in steps
/// that are not multiples of 2, 3, 4 or 5, so every remainder turns up.
fn screens() -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = vec![
        (720, 720),
        (320, 320),
        (480, 480),
        (600, 600),
        (1080, 1080),
        (480, 800),
        (1080, 1920),
        (3440, 1440),
        (5120, 1440),
        (128, 64),
        (16, 16),
        (3840, 2160),
        (4096, 2160),
        (1920, 1080),
        (1280, 720),
        (800, 480),
    ];
    for w in (16..=4096).step_by(127) {
        for h in (16..=4096).step_by(131) {
            v.push((w, h));
        }
    }
    v
}

/// Picture sizes sources deliver: camera modes, phone photos in both
/// orientations, odd sizes, 1-pixel lines, up to the 8192 limit.
fn sources() -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = vec![
        (640, 480),
        (1280, 720),
        (1920, 1080),
        (4032, 3024),
        (3024, 4032),
        (1, 1),
        (1, 8192),
        (8192, 1),
        (8192, 8192),
        (7, 5),
    ];
    for w in (1..=8192).step_by(509) {
        for h in (1..=8192).step_by(521) {
            v.push((w, h));
        }
    }
    v
}

/// Pixel budgets: the configured range's ends, the default and values between.
const BUDGETS: &[u32] = &[4096, 28_672, 65_536, 114_688, 147_456, 262_144, 1_000_000];

/// A screen (w, h), a pixel budget, and the network size (h, w) the daemon picks.
type Case = ((u32, u32), u32, (usize, usize));

/// The network sizes the daemon picks for `screens()` under every budget.
fn network_sizes() -> Vec<Case> {
    let mut v = vec![];
    for &(sw, sh) in &screens() {
        for &budget in BUDGETS {
            v.push(((sw, sh), budget, size_for(sw as f64 / sh as f64, budget)));
        }
    }
    v
}

/// Every cover window lies inside its picture, checked as the resizer checks
/// it (`left + width <= picture width`, in f64), for every network size of
/// every screen and budget and every source size: 2.1 million windows.
#[test]
fn every_cover_window_lies_inside_its_picture() {
    let sizes = network_sizes();
    let sources = sources();
    let mut checked = 0u64;
    for &((sw, sh), budget, (h, w)) in &sizes {
        for &(pw, ph) in &sources {
            let (l, t, cw, ch) = cover_window(pw, ph, w as u32, h as u32);
            let inside = l >= 0.0
                && t >= 0.0
                && cw > 0.0
                && ch > 0.0
                && l < pw as f64
                && t < ph as f64
                && l + cw <= pw as f64
                && t + ch <= ph as f64;
            assert!(
                inside,
                "screen {sw}x{sh}, max_pixels {budget}: network {w}x{h}, picture {pw}x{ph}: \
                 window ({l}, {t}) + {cw}x{ch} leaves the picture"
            );
            checked += 1;
        }
    }
    println!("{checked} cover windows checked");
}

/// The real resize, both fits, for every network size of every screen and
/// budget against a cycle of source shapes (15,000 resizes).
/// Cover leaves no black edge; letterbox keeps the picture in the middle.
#[test]
fn every_screen_shape_and_fit_makes_a_whole_network_picture() {
    let sizes = network_sizes();
    let sources = sources();
    let max_side = 2048u32;
    // One white picture the sources are cut from (sides capped to keep the
    // buffer small; the windows of the full sizes are checked above).
    let white = vec![255u8; (max_side * max_side * 3) as usize];
    let mut pre = Preprocessor::new(Fit::Cover);
    let mut out = vec![];
    let mut done = 0;
    for (i, &((sw, sh), budget, (h, w))) in sizes.iter().enumerate() {
        let (pw, ph) = sources[i % sources.len()];
        let (pw, ph) = (pw.min(max_side), ph.min(max_side));
        let src = &white[..(pw * ph * 3) as usize];
        for fit in [Fit::Cover, Fit::Letterbox] {
            pre.set_fit(fit);
            let case = format!(
                "screen {sw}x{sh}, max_pixels {budget}, {fit:?}: network {w}x{h}, picture {pw}x{ph}"
            );
            pre.fit_rgb8(src, pw, ph, w as u32, h as u32, &mut out)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(out.len(), w * h * 3, "{case}");
            if fit == Fit::Cover {
                assert!(
                    out.iter().all(|&v| v == 255),
                    "{case}: cover left part of the network picture black"
                );
            } else {
                let (l, t, r, b) = bounding_box(&out, w, h)
                    .unwrap_or_else(|| panic!("{case}: letterbox shows no picture"));
                assert!(
                    l.abs_diff(w - 1 - r) <= 1 && t.abs_diff(h - 1 - b) <= 1,
                    "{case}: letterboxed picture ({l},{t})..({r},{b}) is not centred"
                );
            }
            done += 1;
        }
    }
    println!("{done} resizes");
}

/// The smallest box (left, top, right, bottom) holding every white pixel.
fn bounding_box(rgb: &[u8], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    let mut bb: Option<(usize, usize, usize, usize)> = None;
    for y in 0..h {
        for x in 0..w {
            if rgb[(y * w + x) * 3] == 255 {
                let (l, t, r, b) = bb.unwrap_or((x, y, x, y));
                bb = Some((l.min(x), t.min(y), r.max(x), b.max(y)));
            }
        }
    }
    bb
}
