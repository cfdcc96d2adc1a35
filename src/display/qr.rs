//! The control page's pairing URL as a QR code drawn over the picture, so
//! a phone pairs by scanning the frame itself.

use qrcode::{Color, QrCode};

/// A picture placed on top of the screen's: `w`x`h` pixels at (`x`, `y`).
#[derive(Clone, Debug, PartialEq)]
pub struct Overlay {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
    pub pixels: Vec<u32>,
}

const WHITE: u32 = 0x00FF_FFFF;
const BLACK: u32 = 0;
/// Light modules around the code, as the standard asks for scanners.
const QUIET: usize = 4;

/// `text` as a QR code centred on a `sw`x`sh` screen, as large as fits in
/// 60% of its shorter side with whole pixels per module; None when the
/// text does not fit a QR code or the screen is too small for one.
pub fn qr_overlay(text: &str, sw: usize, sh: usize) -> Option<Overlay> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let n = code.width();
    let side = n + 2 * QUIET;
    let scale = (sw.min(sh) * 3 / 5) / side;
    if scale == 0 {
        return None;
    }
    let px = side * scale;
    let colors = code.to_colors();
    let mut pixels = vec![WHITE; px * px];
    for (i, row) in pixels.chunks_exact_mut(px).enumerate() {
        let my = i / scale;
        if !(QUIET..QUIET + n).contains(&my) {
            continue;
        }
        for (j, p) in row.iter_mut().enumerate() {
            let mx = j / scale;
            if (QUIET..QUIET + n).contains(&mx)
                && colors[(my - QUIET) * n + mx - QUIET] == Color::Dark
            {
                *p = BLACK;
            }
        }
    }
    Some(Overlay {
        x: (sw - px) / 2,
        y: (sh - px) / 2,
        w: px,
        h: px,
        pixels,
    })
}

impl Overlay {
    /// Copies the overlay onto a `width`-pixel-wide screen picture.
    pub fn blit(&self, screen: &mut [u32], width: usize) {
        for (r, src) in self.pixels.chunks_exact(self.w).enumerate() {
            let at = (self.y + r) * width + self.x;
            screen[at..at + self.w].copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_centred_square_and_within_the_screen() {
        let o = qr_overlay("http://192.168.1.20:8080/pair?token=abc", 800, 480).unwrap();
        assert_eq!(o.w, o.h);
        assert!(o.h <= 480 * 3 / 5);
        assert_eq!((o.x, o.y), ((800 - o.w) / 2, (480 - o.h) / 2));
        assert!(o.pixels.contains(&BLACK) && o.pixels.contains(&WHITE));
    }

    #[test]
    fn a_screen_too_small_for_the_code_gets_none() {
        assert!(qr_overlay("http://192.168.1.20:8080/pair?token=abc", 20, 20).is_none());
    }
}
