//! Pixel conversions into RGB8: YUYV, NV12, planar YUV (Y4M), grey, BGR, and JPEG.
//!
//! Every function writes into a caller-owned buffer and checks sizes first, so a short
//! or odd buffer from a driver or file is an `Err`, never a panic or an out-of-bounds read.

use crate::frame::RgbFrame;

/// BT.601 limited range (what webcams and Y4M files use), integer arithmetic.
#[inline(always)]
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (y as i32 - 16);
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let clamp = |x: i32| (x >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e + 128),
        clamp(c - 100 * d - 208 * e + 128),
        clamp(c + 516 * d + 128),
    ]
}

fn rgb_len(width: u32, height: u32) -> usize {
    width as usize * height as usize * 3
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), String> {
    if got < want {
        Err(format!("{what}: buffer has {got} bytes, expected {want}"))
    } else {
        Ok(())
    }
}

/// Packed 4:2:2 YUYV (Y0 U Y1 V) -> RGB8. `src` may be longer than needed (mmap buffers are
/// page-rounded); `out.len()` must be `w*h*3`. Odd widths use the row stride `2*w` rounded up.
pub fn yuyv_to_rgb(src: &[u8], width: u32, height: u32, out: &mut [u8]) -> Result<(), String> {
    let (w, h) = (width as usize, height as usize);
    let stride = w.div_ceil(2) * 4;
    check_len("YUYV", src.len(), stride * h)?;
    check_len("RGB output", out.len(), rgb_len(width, height))?;
    for row in 0..h {
        let s = &src[row * stride..(row + 1) * stride];
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        for x in 0..w {
            let q = &s[(x / 2) * 4..(x / 2) * 4 + 4];
            let y = if x % 2 == 0 { q[0] } else { q[2] };
            o[x * 3..x * 3 + 3].copy_from_slice(&yuv_to_rgb(y, q[1], q[3]));
        }
    }
    Ok(())
}

/// Planar YUV with chroma subsampled by `1 << cx_shift` horizontally and `1 << cy_shift`
/// vertically (4:2:0 = 1,1; 4:2:2 = 1,0; 4:4:4 = 0,0) -> RGB8.
pub fn yuv_planar_to_rgb(
    planes: [&[u8]; 3],
    width: u32,
    height: u32,
    cx_shift: u32,
    cy_shift: u32,
    out: &mut [u8],
) -> Result<(), String> {
    let (w, h) = (width as usize, height as usize);
    let cw = (w + (1 << cx_shift) - 1) >> cx_shift;
    let ch = (h + (1 << cy_shift) - 1) >> cy_shift;
    check_len("Y plane", planes[0].len(), w * h)?;
    check_len("U plane", planes[1].len(), cw * ch)?;
    check_len("V plane", planes[2].len(), cw * ch)?;
    check_len("RGB output", out.len(), rgb_len(width, height))?;
    for row in 0..h {
        let yrow = &planes[0][row * w..(row + 1) * w];
        let crow = (row >> cy_shift) * cw;
        let (urow, vrow) = (&planes[1][crow..crow + cw], &planes[2][crow..crow + cw]);
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        for x in 0..w {
            let c = x >> cx_shift;
            o[x * 3..x * 3 + 3].copy_from_slice(&yuv_to_rgb(yrow[x], urow[c], vrow[c]));
        }
    }
    Ok(())
}

/// NV12 (Y plane, then interleaved UV at half resolution) -> RGB8.
pub fn nv12_to_rgb(src: &[u8], width: u32, height: u32, out: &mut [u8]) -> Result<(), String> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    check_len("NV12", src.len(), w * h + cw * ch * 2)?;
    check_len("RGB output", out.len(), rgb_len(width, height))?;
    let (ys, uv) = src.split_at(w * h);
    for row in 0..h {
        let crow = &uv[(row / 2) * cw * 2..(row / 2 + 1) * cw * 2];
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        for x in 0..w {
            let c = (x / 2) * 2;
            o[x * 3..x * 3 + 3].copy_from_slice(&yuv_to_rgb(ys[row * w + x], crow[c], crow[c + 1]));
        }
    }
    Ok(())
}

/// 8-bit grey -> RGB8.
pub fn gray_to_rgb(src: &[u8], width: u32, height: u32, out: &mut [u8]) -> Result<(), String> {
    let n = width as usize * height as usize;
    check_len("GRAY", src.len(), n)?;
    check_len("RGB output", out.len(), n * 3)?;
    for (o, &g) in out.chunks_exact_mut(3).zip(&src[..n]) {
        o.copy_from_slice(&[g, g, g]);
    }
    Ok(())
}

/// Packed RGB24 or BGR24 -> RGB8.
pub fn rgb24_to_rgb(
    src: &[u8],
    width: u32,
    height: u32,
    bgr: bool,
    out: &mut [u8],
) -> Result<(), String> {
    let n = rgb_len(width, height);
    check_len(if bgr { "BGR24" } else { "RGB24" }, src.len(), n)?;
    check_len("RGB output", out.len(), n)?;
    out[..n].copy_from_slice(&src[..n]);
    if bgr {
        for px in out[..n].chunks_exact_mut(3) {
            px.swap(0, 2);
        }
    }
    Ok(())
}

/// Decodes one JPEG into `frame` (re-shaped to the decoded size, buffer reused), strictly
/// and within the decode budget (see [`super::picture`]): at the smallest DCT scale that
/// still covers `cover` when given. `scratch` is reused for CMYK JPEGs. A damaged or cut
/// JPEG is an error, never a partly gray frame.
pub fn decode_jpeg_into(
    bytes: &[u8],
    frame: &mut RgbFrame,
    scratch: &mut Vec<u8>,
    cover: Option<(u32, u32)>,
) -> Result<(), String> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err("not a JPEG (no SOI marker)".into());
    }
    match super::picture::decode_jpeg(bytes, cover, &mut frame.data, scratch) {
        Ok((w, h, _orientation)) => {
            frame.width = w;
            frame.height = h;
            Ok(())
        }
        Err(e) => {
            // Never leave a frame whose buffer does not match its size.
            frame.reshape(frame.width, frame.height);
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= 2)
    }

    #[test]
    fn yuyv_known_colors_convert_to_rgb() {
        // BT.601 limited-range YUV of white, black, red, green, blue, in pairs of pixels.
        let colors = [
            ((235, 128, 128), [255, 255, 255]),
            ((16, 128, 128), [0, 0, 0]),
            ((81, 90, 240), [255, 0, 0]),
            ((145, 54, 34), [0, 255, 0]),
            ((41, 240, 110), [0, 0, 255]),
        ];
        let mut src = Vec::new();
        for ((y, u, v), _) in colors {
            src.extend_from_slice(&[y, u, y, v]);
        }
        let mut out = vec![0u8; colors.len() * 2 * 3];
        yuyv_to_rgb(&src, colors.len() as u32 * 2, 1, &mut out).unwrap();
        for (i, (_, want)) in colors.iter().enumerate() {
            for px in [2 * i, 2 * i + 1] {
                let got = [out[px * 3], out[px * 3 + 1], out[px * 3 + 2]];
                assert!(close(got, *want), "pixel {px}: got {got:?}, want {want:?}");
            }
        }
    }

    #[test]
    fn yuyv_uses_each_pixels_own_luma() {
        let src = [16, 128, 235, 128];
        let mut out = [0u8; 6];
        yuyv_to_rgb(&src, 2, 1, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn yuyv_short_buffer_is_an_error_not_a_panic() {
        let mut out = vec![0u8; 4 * 2 * 3];
        let err = yuyv_to_rgb(&[0u8; 10], 4, 2, &mut out).unwrap_err();
        assert!(err.contains("expected 16"), "{err}");
    }

    #[test]
    fn yuv420_planar_shares_chroma_over_2x2_blocks() {
        // 2x2 picture: one chroma sample (red) for all four pixels.
        let y = [81u8, 81, 81, 81];
        let mut out = [0u8; 12];
        yuv_planar_to_rgb([&y, &[90], &[240]], 2, 2, 1, 1, &mut out).unwrap();
        for px in out.chunks(3) {
            assert!(close([px[0], px[1], px[2]], [255, 0, 0]), "{px:?}");
        }
    }

    #[test]
    fn nv12_converts_and_checks_size() {
        let src = [235u8, 235, 235, 235, 128, 128];
        let mut out = [0u8; 12];
        nv12_to_rgb(&src, 2, 2, &mut out).unwrap();
        assert!(out.iter().all(|&b| b == 255));
        assert!(nv12_to_rgb(&src[..5], 2, 2, &mut out).is_err());
    }

    #[test]
    fn bgr_is_swapped_to_rgb() {
        let mut out = [0u8; 3];
        rgb24_to_rgb(&[1, 2, 3], 1, 1, true, &mut out).unwrap();
        assert_eq!(out, [3, 2, 1]);
    }

    #[test]
    fn garbage_is_not_a_jpeg() {
        let mut f = RgbFrame::new(1, 1);
        let mut scratch = Vec::new();
        assert!(decode_jpeg_into(b"hello world", &mut f, &mut scratch, None).is_err());
        assert!(decode_jpeg_into(&[0xFF, 0xD8, 0xFF, 0xD9], &mut f, &mut scratch, None).is_err());
    }

    #[test]
    fn jpeg_decodes_into_reused_frame() {
        let img = image::RgbImage::from_fn(16, 8, |x, _| image::Rgb([x as u8 * 16, 0, 0]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95)
            .encode_image(&img)
            .unwrap();
        let mut f = RgbFrame::new(100, 100);
        let cap = f.data.capacity();
        let mut scratch = Vec::new();
        decode_jpeg_into(&bytes, &mut f, &mut scratch, None).unwrap();
        assert_eq!((f.width, f.height, f.data.len()), (16, 8, 16 * 8 * 3));
        assert_eq!(f.data.capacity(), cap, "buffer reused");
        assert!(f.pixel(15, 4)[0] > 200 && f.pixel(0, 4)[0] < 30);
    }
}
