//! A scene drawn by styleframe itself (no camera, no files): sky, sun, mountains, hills with
//! houses and trees, and a lake reflecting them. It is rendered once into a canvas twice the
//! output size; frames are a slow pan/zoom (Ken Burns) over it, a pure function of time.

use super::pacing::Pacer;
use super::{CaptureError, FrameSource};
use crate::frame::RgbFrame;
use std::time::Instant;

/// Canvas size relative to the output: the pan/zoom window moves inside it.
const CANVAS_SCALE: f64 = 2.0;

/// A procedurally drawn landscape seen through a slowly moving camera.
pub struct Synthetic {
    width: u32,
    height: u32,
    fps: u32,
    canvas: Vec<u8>,
    cw: usize,
    ch: usize,
    /// Per output column: left canvas column and weight of the right one (reused).
    xmap: Vec<(u32, u16)>,
    pacer: Pacer,
    seq: u64,
}

impl Synthetic {
    /// Draws the scene for a `width` x `height` output (zero sizes become 1).
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let cw = (width as f64 * CANVAS_SCALE).ceil() as usize;
        let ch = (height as f64 * CANVAS_SCALE).ceil() as usize;
        let canvas = draw_scene(cw, ch);
        Synthetic {
            width,
            height,
            fps,
            canvas,
            cw,
            ch,
            xmap: Vec::with_capacity(width as usize),
            pacer: Pacer::new(fps.max(1) as f64),
            seq: 0,
        }
    }

    /// The view window at time `t`: (centre x, centre y, width, height) in canvas pixels.
    fn window(&self, t: f64) -> (f64, f64, f64, f64) {
        use std::f64::consts::TAU;
        let (cw, ch) = (self.cw as f64, self.ch as f64);
        // Window between ~55% and ~90% of the canvas; slow incommensurate periods, so the
        // motion never visibly repeats.
        let zoom = 0.725 + 0.175 * (TAU * t / 47.0).sin();
        let (ww, wh) = (cw * zoom, ch * zoom);
        let cx = cw / 2.0 + (cw - ww) / 2.0 * 0.9 * (TAU * t / 61.0).sin();
        let cy = ch / 2.0 + (ch - wh) / 2.0 * 0.9 * (TAU * t / 37.0 + 1.0).sin();
        (cx, cy, ww, wh)
    }

    /// Renders the view at `t_seconds` into `frame` (bilinear sampling). Deterministic,
    /// never sleeps, and reuses `frame.data`.
    pub fn render(&mut self, t_seconds: f64, frame: &mut RgbFrame) {
        let (w, h) = (self.width as usize, self.height as usize);
        frame.reshape(self.width, self.height);
        let (cx, cy, ww, wh) = self.window(t_seconds);
        let (x0, y0) = (cx - ww / 2.0, cy - wh / 2.0);
        let (sx, sy) = (ww / w as f64, wh / h as f64);
        let max_x = (self.cw - 2) as f64;
        let max_y = (self.ch - 2) as f64;
        self.xmap.clear();
        for x in 0..w {
            let fx = (x0 + (x as f64 + 0.5) * sx - 0.5).clamp(0.0, max_x);
            let ix = fx.floor();
            self.xmap
                .push((ix as u32, ((fx - ix) * 256.0).round() as u16));
        }
        let stride = self.cw * 3;
        for y in 0..h {
            let fy = (y0 + (y as f64 + 0.5) * sy - 0.5).clamp(0.0, max_y);
            let iy = fy.floor();
            let wy = ((fy - iy) * 256.0).round() as u32;
            let r0 = &self.canvas[iy as usize * stride..(iy as usize + 1) * stride];
            let r1 = &self.canvas[(iy as usize + 1) * stride..(iy as usize + 2) * stride];
            let out = &mut frame.data[y * w * 3..(y + 1) * w * 3];
            for (o, &(ix, wx)) in out.chunks_exact_mut(3).zip(self.xmap.iter()) {
                let (i, wx) = (ix as usize * 3, wx as u32);
                for c in 0..3 {
                    let top = r0[i + c] as u32 * (256 - wx) + r0[i + 3 + c] as u32 * wx;
                    let bot = r1[i + c] as u32 * (256 - wx) + r1[i + 3 + c] as u32 * wx;
                    o[c] = ((top * (256 - wy) + bot * wy + 32768) >> 16) as u8;
                }
            }
        }
    }
}

impl FrameSource for Synthetic {
    fn next_frame(&mut self, frame: &mut RgbFrame) -> Result<(), CaptureError> {
        self.pacer.wait();
        // Time from the frame index, so the motion is smooth even if the consumer stalls.
        let t = self.seq as f64 / self.fps.max(1) as f64;
        self.render(t, frame);
        frame.seq = self.seq;
        frame.captured_at = Instant::now();
        self.seq += 1;
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "synthetic landscape {}x{} at {} fps (canvas {}x{})",
            self.width, self.height, self.fps, self.cw, self.ch
        )
    }
}

/// The scene at t = 0, for the CLI demo.
pub fn still_scene(width: u32, height: u32) -> RgbFrame {
    let mut s = Synthetic::new(width, height, 1);
    let mut frame = RgbFrame::new(s.width, s.height);
    s.render(0.0, &mut frame);
    frame
}

// ---------------------------------------------------------------- drawing

type Rgb = [f32; 3];

fn hash(i: i64, j: i64) -> f32 {
    let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (h & 0xFF_FFFF) as f32 / 16_777_215.0
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// 2-D value noise in [0, 1].
fn noise(x: f32, y: f32) -> f32 {
    let (ix, iy) = (x.floor(), y.floor());
    let (fx, fy) = (smooth(x - ix), smooth(y - iy));
    let (ix, iy) = (ix as i64, iy as i64);
    let a = hash(ix, iy) + (hash(ix + 1, iy) - hash(ix, iy)) * fx;
    let b = hash(ix, iy + 1) + (hash(ix + 1, iy + 1) - hash(ix, iy + 1)) * fx;
    a + (b - a) * fy
}

/// Fractal noise, 4 octaves, in [0, 1].
fn fbm(x: f32, y: f32) -> f32 {
    let (mut sum, mut amp, mut f, mut norm) = (0.0, 0.5, 1.0, 0.0);
    for _ in 0..4 {
        sum += amp * noise(x * f, y * f);
        norm += amp;
        amp *= 0.5;
        f *= 2.0;
    }
    sum / norm
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn scale(a: Rgb, k: f32) -> Rgb {
    [a[0] * k, a[1] * k, a[2] * k]
}

const SHORE: f32 = 0.74;
const SUN: (f32, f32, f32) = (0.68, 0.36, 0.055); // x (fraction of width), y, radius

struct House {
    x: f32,
    w: f32,
    h: f32,
    wall: Rgb,
    roof: Rgb,
}

struct Tree {
    x: f32,
    r: f32,
}

/// Ground line under a house or tree (precomputed: the noise is not cheap).
fn ground(x: f32) -> f32 {
    hill_top(x) + 0.012
}

/// Hill top height (fraction of canvas height) at horizontal fraction `u`.
fn hill_top(u: f32) -> f32 {
    0.60 + 0.035 * (u * 7.0 + 1.3).sin() + 0.025 * (u * 17.0).sin() + 0.02 * fbm(u * 6.0, 3.7)
}

fn mountain_top(u: f32) -> f32 {
    0.40 + 0.09 * fbm(u * 3.5, 0.5) + 0.04 * (u * 5.0).sin()
}

/// Colour of the land/sky scene above the shore line at (x, y); x in canvas-height units.
/// `mt`/`ht`: mountain and hill tops of this column; `bases`: ground under trees, then houses.
#[allow(clippy::too_many_arguments)]
fn land_pixel(
    x: f32,
    y: f32,
    aspect: f32,
    mt: f32,
    ht: f32,
    houses: &[House],
    trees: &[Tree],
    bases: &[f32],
) -> Rgb {
    // Sky: deep blue at the top to warm orange at the horizon, sun glow, soft clouds.
    let sky_t = (y / 0.6).clamp(0.0, 1.0);
    let mut c = mix([28.0, 52.0, 130.0], [245.0, 165.0, 95.0], sky_t.powf(1.6));
    let (sx, sy, sr) = (SUN.0 * aspect, SUN.1, SUN.2);
    let d = ((x - sx).powi(2) + (y - sy).powi(2)).sqrt();
    c = mix(c, [255.0, 215.0, 150.0], (-(d / 0.18).powi(2)).exp() * 0.8);
    let cloud = (fbm(x * 3.0, y * 9.0) - 0.55).max(0.0) * 3.0 * (1.0 - sky_t);
    c = mix(c, [255.0, 235.0, 225.0], cloud);
    if d < sr {
        c = mix(
            [255.0, 245.0, 210.0],
            c,
            ((d - sr * 0.85) / (sr * 0.15)).max(0.0),
        );
    }
    // Far mountains, hazy violet, lighter toward the horizon.
    if y > mt {
        let shade = fbm(x * 8.0, y * 8.0);
        let m = mix(
            [70.0, 70.0, 125.0],
            [120.0, 105.0, 150.0],
            (y - mt) * 4.0 + shade * 0.3,
        );
        c = mix(m, c, 0.15);
    }
    // Near hills: green, darker with noise, with a light rim where the sun grazes them.
    if y > ht {
        let n = fbm(x * 14.0, y * 14.0);
        c = mix(
            [70.0, 135.0, 55.0],
            [35.0, 85.0, 40.0],
            n * 1.3 - 0.1 + (y - ht) * 2.0,
        );
        if y - ht < 0.006 {
            c = mix(c, [190.0, 200.0, 90.0], 0.6);
        }
    }
    for (t, &base) in trees.iter().zip(bases) {
        let tx = t.x * aspect;
        let crown_y = base - t.r * 2.2;
        let in_trunk = (x - tx).abs() < t.r * 0.18 && y < base && y > crown_y;
        let dc = ((x - tx).powi(2) + ((y - crown_y) * 0.8).powi(2)).sqrt();
        if dc < t.r {
            let n = fbm(x * 40.0, y * 40.0);
            c = mix(
                [30.0, 95.0, 40.0],
                [15.0, 55.0, 25.0],
                n + (x - tx) / t.r * 0.3,
            );
        } else if in_trunk {
            c = [90.0, 60.0, 35.0];
        }
    }
    for (hs, &base) in houses.iter().zip(&bases[trees.len()..]) {
        let hx = hs.x * aspect;
        let base = base + 0.003;
        let top = base - hs.h;
        let half = hs.w / 2.0;
        if (x - hx).abs() < half && y > top && y < base {
            c = hs.wall;
            // Two lit windows and a door.
            let wx = ((x - hx).abs() - half * 0.5).abs() < half * 0.16;
            let wy = (y - (top + hs.h * 0.35)).abs() < hs.h * 0.13;
            if wx && wy {
                c = [255.0, 215.0, 110.0];
            }
            if (x - hx).abs() < half * 0.14 && y > base - hs.h * 0.45 {
                c = [95.0, 55.0, 35.0];
            }
        } else {
            let roof_h = hs.h * 0.7;
            let dy = top - y;
            if dy >= 0.0 && dy < roof_h && (x - hx).abs() < (half * 1.15) * (1.0 - dy / roof_h) {
                c = hs.roof;
            }
        }
    }
    c
}

/// Draws the landscape into a `cw` x `ch` RGB8 buffer.
fn draw_scene(cw: usize, ch: usize) -> Vec<u8> {
    let aspect = cw as f32 / ch as f32;
    let houses = [
        House {
            x: 0.22,
            w: 0.06,
            h: 0.05,
            wall: [235.0, 225.0, 205.0],
            roof: [150.0, 50.0, 40.0],
        },
        House {
            x: 0.30,
            w: 0.045,
            h: 0.04,
            wall: [220.0, 180.0, 90.0],
            roof: [90.0, 50.0, 40.0],
        },
        House {
            x: 0.52,
            w: 0.07,
            h: 0.055,
            wall: [200.0, 80.0, 60.0],
            roof: [60.0, 45.0, 45.0],
        },
        House {
            x: 0.61,
            w: 0.05,
            h: 0.045,
            wall: [240.0, 240.0, 235.0],
            roof: [40.0, 70.0, 120.0],
        },
        House {
            x: 0.83,
            w: 0.055,
            h: 0.05,
            wall: [170.0, 200.0, 220.0],
            roof: [140.0, 60.0, 45.0],
        },
    ];
    let trees = [
        Tree { x: 0.08, r: 0.035 },
        Tree { x: 0.14, r: 0.025 },
        Tree { x: 0.37, r: 0.03 },
        Tree { x: 0.43, r: 0.022 },
        Tree { x: 0.69, r: 0.028 },
        Tree { x: 0.75, r: 0.034 },
        Tree { x: 0.92, r: 0.026 },
    ];
    let mut buf = vec![0u8; cw * ch * 3];
    let shore_row = ((SHORE * ch as f32) as usize).min(ch);
    let put = |buf: &mut [u8], i: usize, c: Rgb| {
        for k in 0..3 {
            buf[i + k] = c[k].round().clamp(0.0, 255.0) as u8;
        }
    };
    let bases: Vec<f32> = trees
        .iter()
        .map(|t| ground(t.x))
        .chain(houses.iter().map(|h| ground(h.x)))
        .collect();
    let tops: Vec<(f32, f32)> = (0..cw)
        .map(|px| {
            let u = (px as f32 + 0.5) / cw as f32;
            (mountain_top(u), hill_top(u))
        })
        .collect();
    for py in 0..shore_row {
        let y = (py as f32 + 0.5) / ch as f32;
        for (px, &(mt, ht)) in tops.iter().enumerate() {
            let x = (px as f32 + 0.5) / ch as f32;
            let c = land_pixel(x, y, aspect, mt, ht, &houses, &trees, &bases);
            put(&mut buf, (py * cw + px) * 3, c);
        }
    }
    // Lake: the land mirrored at the shore, rippled, darkened and tinted blue, with the sun's
    // glitter path. It reads rows already drawn above the shore.
    for py in shore_row..ch {
        let y = (py as f32 + 0.5) / ch as f32;
        let depth = (y - SHORE) / (1.0 - SHORE);
        for px in 0..cw {
            let x = (px as f32 + 0.5) / ch as f32;
            // Gentle horizontal wobble in bands, stronger toward the viewer.
            let ripple = (y * 320.0 + (x * 7.0).sin() * 1.5).sin() * 0.0025 * (0.3 + depth)
                + (fbm(x * 6.0, y * 90.0) - 0.5) * 0.004;
            let mirror_y = (2.0 * SHORE - y).clamp(0.0, SHORE - 0.001);
            let mirror_x = (x + ripple).clamp(0.0, aspect - 0.001);
            let my = ((mirror_y * ch as f32) as usize).min(shore_row.saturating_sub(1));
            let mx = ((mirror_x * ch as f32) as usize).min(cw - 1);
            let i = (my * cw + mx) * 3;
            let refl: Rgb = [buf[i] as f32, buf[i + 1] as f32, buf[i + 2] as f32];
            let mut c = mix(scale(refl, 0.8), [25.0, 60.0, 95.0], 0.3 + depth * 0.4);
            let glitter = (-((x - SUN.0 * aspect) / (0.03 + depth * 0.08)).powi(2)).exp()
                * ((fbm(x * 60.0, y * 200.0) - 0.45).max(0.0) * 4.0);
            c = mix(c, [255.0, 230.0, 170.0], glitter);
            if py == shore_row {
                c = mix(c, [40.0, 40.0, 35.0], 0.5);
            }
            put(&mut buf, (py * cw + px) * 3, c);
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_at(s: &mut Synthetic, t: f64) -> RgbFrame {
        let mut f = RgbFrame::new(1, 1);
        s.render(t, &mut f);
        f
    }

    #[test]
    fn same_time_gives_same_pixels() {
        let mut a = Synthetic::new(160, 120, 15);
        let mut b = Synthetic::new(160, 120, 15);
        assert_eq!(render_at(&mut a, 3.25).data, render_at(&mut b, 3.25).data);
        assert_eq!(render_at(&mut a, 3.25).data, render_at(&mut a, 3.25).data);
    }

    #[test]
    fn scene_moves_over_time() {
        let mut s = Synthetic::new(160, 120, 15);
        let (f0, f5) = (render_at(&mut s, 0.0), render_at(&mut s, 5.0));
        let diff: u64 = f0
            .data
            .iter()
            .zip(&f5.data)
            .map(|(a, b)| a.abs_diff(*b) as u64)
            .sum();
        assert!(
            diff / f0.data.len() as u64 >= 2,
            "mean abs diff {}",
            diff as f64 / f0.data.len() as f64
        );
    }

    #[test]
    fn output_has_the_configured_size_and_rich_content() {
        let f = still_scene(200, 100);
        assert_eq!((f.width, f.height, f.data.len()), (200, 100, 200 * 100 * 3));
        // Sky is bluer at the top than the lake's glitter-free corners; many distinct colours.
        let mut colours: Vec<[u8; 3]> = (0..100)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .map(|(x, y)| f.pixel(x, y))
            .collect();
        colours.sort();
        colours.dedup();
        assert!(colours.len() > 500, "only {} colours", colours.len());
        let top = f.pixel(100, 2);
        assert!(top[2] > top[0], "sky at the top should be blue: {top:?}");
    }

    #[test]
    fn render_reuses_the_frame_buffer() {
        let mut s = Synthetic::new(64, 48, 15);
        let mut f = RgbFrame::new(64, 48);
        let ptr = f.data.as_ptr();
        s.render(1.0, &mut f);
        s.render(2.0, &mut f);
        assert_eq!(f.data.as_ptr(), ptr);
    }
}
