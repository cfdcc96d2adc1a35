//! Compositor: turns small stylized frames into full-screen pixels.
//!
//! Stylized frames arrive a few times per second (e.g. 448x256); the screen is
//! redrawn at the display rate (e.g. 1920x1080 at 30 fps). So the expensive
//! part, scaling, runs once per *arriving* frame ([`Compositor::push`]), and
//! the per-redraw part ([`Compositor::render`]) is only a blend of two
//! pre-scaled screen-sized buffers, so the picture flows from one stylized
//! frame to the next instead of stepping.
//!
//! Everything is integer/fixed-point and allocation-free once the buffers and
//! tables exist (they are rebuilt only when the source size changes).

use std::time::{Duration, Instant};

use crate::config::Fit;
use crate::frame::RgbFrame;

/// Fixed-point one for the 8-bit interpolation weights.
const ONE: u32 = 256;
/// Bounds of the cross-fade duration (the estimated interval between frames).
pub const MIN_FADE: Duration = Duration::from_millis(50);
pub const MAX_FADE: Duration = Duration::from_secs(2);
/// Weight of the newest arrival gap in the interval estimate (exponential average).
const INTERVAL_SMOOTHING: f64 = 0.3;

/// Precomputed sampling for one axis: for each destination coordinate inside
/// the picture area, the two source indices and the weight of the second.
#[derive(Debug, Default, Clone)]
struct AxisTable {
    /// First destination coordinate covered by the picture (letterbox bar before it).
    start: usize,
    /// Source indices (`i0`, `i1`) and the weight of `i1` in 0..=256, one per
    /// destination coordinate from `start`.
    i0: Vec<u32>,
    i1: Vec<u32>,
    w: Vec<u32>,
}

impl AxisTable {
    /// `scale` = destination pixels per source pixel; `offset` = source
    /// coordinate of the picture area's left/top edge (crop for cover).
    fn build(&mut self, src: usize, dst_len: usize, start: usize, scale: f64, offset: f64) {
        self.start = start;
        self.i0.clear();
        self.i1.clear();
        self.w.clear();
        let last = (src - 1) as f64;
        for d in 0..dst_len {
            // Pixel centres map onto pixel centres.
            let s = ((d as f64 + 0.5) / scale - 0.5 + offset).clamp(0.0, last);
            let i0 = s.floor() as usize;
            let mut w = ((s - i0 as f64) * ONE as f64).round() as u32;
            let mut i0 = i0;
            if w >= ONE {
                // Rounded up to the next pixel.
                i0 += 1;
                w = 0;
            }
            let i1 = (i0 + 1).min(src - 1);
            self.i0.push(i0 as u32);
            self.i1.push(i1 as u32);
            self.w.push(w);
        }
    }

    fn len(&self) -> usize {
        self.i0.len()
    }
}

/// Scales stylized frames to the screen and cross-fades between them.
pub struct Compositor {
    screen_w: usize,
    screen_h: usize,
    fit: Fit,
    crossfade: bool,
    /// Source size the tables were built for.
    src_size: Option<(usize, usize)>,
    xs: AxisTable,
    ys: AxisTable,
    /// Horizontal pass of the current source: one row of `xs.len()` pixels per
    /// source row, 3 channels, 8.8 fixed point.
    hbuf: Vec<u16>,
    /// One vertically interpolated row, 3 channels (scratch).
    row: Vec<u8>,
    /// What the fade starts from (screen pixels, 0RGB).
    prev: Vec<u32>,
    /// The newest frame, scaled (screen pixels, 0RGB).
    cur: Vec<u32>,
    /// Geometry generation of the tables, and the one each buffer's bars were
    /// drawn with: a buffer from an older geometry is cleared before reuse so
    /// stale pixels never show in the letterbox bars.
    geom_gen: u64,
    cur_gen: u64,
    prev_gen: u64,
    has_frame: bool,
    /// The last `render` did not show the final picture yet (new frame or fade running).
    stale: bool,
    fade_start: Instant,
    fade_len: Duration,
    last_push: Option<Instant>,
    interval: Option<Duration>,
}

impl Compositor {
    pub fn new(screen_w: usize, screen_h: usize, fit: Fit) -> Self {
        let n = screen_w * screen_h;
        Compositor {
            screen_w,
            screen_h,
            fit,
            crossfade: true,
            src_size: None,
            xs: AxisTable::default(),
            ys: AxisTable::default(),
            hbuf: Vec::new(),
            row: Vec::new(),
            prev: vec![0; n],
            cur: vec![0; n],
            geom_gen: 0,
            cur_gen: 0,
            prev_gen: 0,
            has_frame: false,
            stale: true,
            fade_start: Instant::now(),
            fade_len: Duration::ZERO,
            last_push: None,
            interval: None,
        }
    }

    /// `false` = every new frame replaces the old one at once (hard cut).
    pub fn set_crossfade(&mut self, on: bool) {
        self.crossfade = on;
    }

    pub fn size(&self) -> (usize, usize) {
        (self.screen_w, self.screen_h)
    }

    /// The current estimate of the time between stylized frames (the fade length),
    /// `None` before the second frame.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// A new stylized frame arrived at `now`. Frames with no pixels or a data
    /// length that does not match their size are ignored (logged).
    pub fn push(&mut self, frame: &RgbFrame, now: Instant) {
        let (w, h) = (frame.width as usize, frame.height as usize);
        if w == 0 || h == 0 || frame.data.len() != w * h * 3 {
            log::warn!(
                "compositor: ignoring malformed frame {}x{} with {} bytes",
                w,
                h,
                frame.data.len()
            );
            return;
        }
        if self.screen_w == 0 || self.screen_h == 0 {
            return;
        }

        // Estimate the arrival interval: the fade should last until the next
        // frame is expected, so motion never pauses nor jumps.
        if let Some(last) = self.last_push {
            let gap = now.saturating_duration_since(last).as_secs_f64();
            let est = match self.interval {
                None => gap,
                Some(i) => i.as_secs_f64() * (1.0 - INTERVAL_SMOOTHING) + gap * INTERVAL_SMOOTHING,
            };
            self.interval = Some(Duration::from_secs_f64(est).clamp(MIN_FADE, MAX_FADE));
        }
        self.last_push = Some(now);

        if self.has_frame && self.crossfade {
            // Start the new fade from what is on screen right now, so a frame
            // arriving mid-fade continues smoothly instead of jumping.
            let a = self.alpha(now);
            if a >= ONE {
                std::mem::swap(&mut self.prev, &mut self.cur);
                std::mem::swap(&mut self.prev_gen, &mut self.cur_gen);
            } else if a > 0 {
                blend_into(&mut self.prev, &self.cur, a);
                self.prev_gen = u64::MAX; // a mix of geometries
            }
            // a == 0: prev is already what is shown.
            self.fade_start = now;
            self.fade_len = self.interval.unwrap_or(MIN_FADE);
        } else {
            self.fade_start = now;
            self.fade_len = Duration::ZERO;
        }

        if self.src_size != Some((w, h)) {
            self.rebuild_tables(w, h);
        }
        self.scale_into_cur(frame);
        self.has_frame = true;
        self.stale = true;
    }

    /// Writes the picture for time `now` into `out` (`screen_w*screen_h` 0RGB pixels).
    /// Black until the first frame arrived. A wrong-sized `out` is filled as far as it goes.
    pub fn render(&mut self, now: Instant, out: &mut [u32]) {
        let n = out.len().min(self.cur.len());
        if !self.has_frame {
            out.fill(0);
            self.stale = false;
            return;
        }
        let a = self.alpha(now);
        self.stale = a < ONE;
        if a >= ONE {
            out[..n].copy_from_slice(&self.cur[..n]);
        } else if a == 0 {
            out[..n].copy_from_slice(&self.prev[..n]);
        } else {
            blend(&self.prev[..n], &self.cur[..n], a, &mut out[..n]);
        }
        out[n..].fill(0);
    }

    /// False when the last `render` already produced what `render(now)` would:
    /// no new frame since, no fade running. The daemon can then skip the
    /// redraw and leave the CPU to inference.
    pub fn needs_redraw(&self, now: Instant) -> bool {
        self.stale || self.is_fading(now)
    }

    /// True while a cross-fade is running at `now`.
    pub fn is_fading(&self, now: Instant) -> bool {
        self.has_frame && self.alpha(now) < ONE
    }

    /// Weight of the new frame at `now`, 0..=256.
    fn alpha(&self, now: Instant) -> u32 {
        if !self.crossfade || self.fade_len.is_zero() {
            return ONE;
        }
        let t = now.saturating_duration_since(self.fade_start);
        if t >= self.fade_len {
            return ONE;
        }
        ((t.as_nanos() * ONE as u128) / self.fade_len.as_nanos()) as u32
    }

    fn rebuild_tables(&mut self, w: usize, h: usize) {
        let (sw, sh) = (self.screen_w as f64, self.screen_h as f64);
        let (fw, fh) = (w as f64, h as f64);
        match self.fit {
            Fit::Cover => {
                let scale = (sw / fw).max(sh / fh);
                // Source region that fits the screen, centred.
                let off_x = (fw - sw / scale) / 2.0;
                let off_y = (fh - sh / scale) / 2.0;
                self.xs.build(w, self.screen_w, 0, scale, off_x);
                self.ys.build(h, self.screen_h, 0, scale, off_y);
            }
            Fit::Letterbox => {
                let scale = (sw / fw).min(sh / fh);
                let dw = ((fw * scale).round() as usize).clamp(1, self.screen_w);
                let dh = ((fh * scale).round() as usize).clamp(1, self.screen_h);
                let x0 = (self.screen_w - dw) / 2;
                let y0 = (self.screen_h - dh) / 2;
                // Scale per axis from the rounded area so the picture fills it exactly.
                self.xs.build(w, dw, x0, dw as f64 / fw, 0.0);
                self.ys.build(h, dh, y0, dh as f64 / fh, 0.0);
            }
        }
        self.hbuf.clear();
        self.hbuf.resize(h * self.xs.len() * 3, 0);
        self.row.clear();
        self.row.resize(self.xs.len() * 3, 0);
        // prev keeps the old picture (already in screen space) so the fade still works.
        self.geom_gen += 1;
        self.src_size = Some((w, h));
    }

    /// Bilinear scale in two passes: horizontal for every source row (few rows),
    /// then vertical per screen row. Writes only the picture area of `cur`.
    fn scale_into_cur(&mut self, frame: &RgbFrame) {
        if self.cur_gen != self.geom_gen {
            // Bars of the current geometry must be black.
            self.cur.fill(0);
            self.cur_gen = self.geom_gen;
        }
        let src_w = frame.width as usize;
        let dw = self.xs.len();
        let src = &frame.data;

        for (row, hrow) in self.hbuf.chunks_exact_mut(dw * 3).enumerate() {
            let line = &src[row * src_w * 3..(row + 1) * src_w * 3];
            for (x, px) in hrow.chunks_exact_mut(3).enumerate() {
                let i0 = self.xs.i0[x] as usize * 3;
                let i1 = self.xs.i1[x] as usize * 3;
                let w1 = self.xs.w[x];
                let w0 = ONE - w1;
                for c in 0..3 {
                    px[c] = (line[i0 + c] as u32 * w0 + line[i1 + c] as u32 * w1) as u16;
                }
            }
        }

        let x0 = self.xs.start;
        for (y, ((&r0, &r1), &w1)) in self
            .ys
            .i0
            .iter()
            .zip(&self.ys.i1)
            .zip(&self.ys.w)
            .enumerate()
        {
            let w0 = ONE - w1;
            let a = &self.hbuf[r0 as usize * dw * 3..(r0 as usize + 1) * dw * 3];
            let b = &self.hbuf[r1 as usize * dw * 3..(r1 as usize + 1) * dw * 3];
            let start = (self.ys.start + y) * self.screen_w + x0;
            let out = &mut self.cur[start..start + dw];
            // Flat per-channel pass first (vectorises well), then packing.
            // 8.8 * 8-bit weights = 16.16; round back to 8 bits.
            for ((o, &pa), &pb) in self.row.iter_mut().zip(a).zip(b) {
                *o = ((pa as u32 * w0 + pb as u32 * w1 + 0x8000) >> 16) as u8;
            }
            for (o, px) in out.iter_mut().zip(self.row.chunks_exact(3)) {
                *o = ((px[0] as u32) << 16) | ((px[1] as u32) << 8) | px[2] as u32;
            }
        }
    }
}

/// `out = prev*(1-a) + cur*a` per channel, `a` in 1..=255 (of 256).
/// Red and blue share one multiply: their 8-bit lanes have 8 spare bits between them.
#[inline]
fn mix(p: u32, c: u32, a: u32) -> u32 {
    let ia = ONE - a;
    let rb = ((p & 0x00FF_00FF) * ia + (c & 0x00FF_00FF) * a) >> 8;
    let g = ((p & 0x0000_FF00) * ia + (c & 0x0000_FF00) * a) >> 8;
    (rb & 0x00FF_00FF) | (g & 0x0000_FF00)
}

fn blend(prev: &[u32], cur: &[u32], a: u32, out: &mut [u32]) {
    for ((o, &p), &c) in out.iter_mut().zip(prev).zip(cur) {
        *o = mix(p, c, a);
    }
}

fn blend_into(prev: &mut [u32], cur: &[u32], a: u32) {
    for (p, &c) in prev.iter_mut().zip(cur) {
        *p = mix(*p, c, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{pack_rgb, unpack_rgb};

    fn frame(w: u32, h: u32, px: &[[u8; 3]]) -> RgbFrame {
        let mut f = RgbFrame::new(w, h);
        f.data = px.iter().flatten().copied().collect();
        f
    }

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbFrame {
        frame(w, h, &vec![rgb; (w * h) as usize])
    }

    fn render(c: &mut Compositor, now: Instant) -> Vec<u32> {
        let (w, h) = c.size();
        let mut out = vec![0xDEAD_BEEF; w * h];
        c.render(now, &mut out);
        out
    }

    #[test]
    fn same_size_is_an_exact_copy() {
        let px: Vec<[u8; 3]> = (0..12u8).map(|i| [i * 20, 255 - i * 20, i]).collect();
        let f = frame(4, 3, &px);
        let mut c = Compositor::new(4, 3, Fit::Cover);
        let t = Instant::now();
        c.push(&f, t);
        let out = render(&mut c, t);
        let want: Vec<u32> = px.iter().map(|p| pack_rgb(p[0], p[1], p[2])).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn two_by_two_scales_bilinearly_to_four_by_four() {
        // Black | white on top, red | blue below.
        let f = frame(
            2,
            2,
            &[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]],
        );
        let mut c = Compositor::new(4, 4, Fit::Cover);
        let t = Instant::now();
        c.push(&f, t);
        let out = render(&mut c, t);
        let at = |x: usize, y: usize| unpack_rgb(out[y * 4 + x]);
        // Corners land exactly on the source pixels.
        assert_eq!(at(0, 0), [0, 0, 0]);
        assert_eq!(at(3, 0), [255, 255, 255]);
        assert_eq!(at(0, 3), [255, 0, 0]);
        assert_eq!(at(3, 3), [0, 0, 255]);
        // x=1 samples 1/4 of the way from black to white: 64 (of 255, rounded).
        assert_eq!(at(1, 0), [64, 64, 64]);
        assert_eq!(at(2, 0), [191, 191, 191]);
        // y=1 on the left column: 1/4 from black to red.
        assert_eq!(at(0, 1), [64, 0, 0]);
        // Interior: 0.75*(0.75*black+0.25*white) + 0.25*(0.75*red+0.25*blue).
        let r = 0.75 * 0.25 * 255.0 + 0.25 * 0.75 * 255.0;
        let g = 0.75 * 0.25 * 255.0;
        let b = 0.75 * 0.25 * 255.0 + 0.25 * 0.25 * 255.0;
        let got = at(1, 1);
        for (c, want) in [r, g, b].iter().enumerate() {
            assert!(
                (got[c] as f64 - want).abs() <= 1.0,
                "channel {c}: got {}, want {want}",
                got[c]
            );
        }
    }

    #[test]
    fn letterbox_shows_whole_picture_between_black_bars() {
        // 4x2 picture on a 4x4 screen: rows 1-2 are the picture, 0 and 3 bars.
        let px: Vec<[u8; 3]> = (0..8u8).map(|i| [10 + i * 30, 100, 200]).collect();
        let f = frame(4, 2, &px);
        let mut c = Compositor::new(4, 4, Fit::Letterbox);
        let t = Instant::now();
        c.push(&f, t);
        let out = render(&mut c, t);
        assert!(out[0..4].iter().all(|&p| p == 0), "top bar black");
        assert!(out[12..16].iter().all(|&p| p == 0), "bottom bar black");
        let want: Vec<u32> = px.iter().map(|p| pack_rgb(p[0], p[1], p[2])).collect();
        assert_eq!(&out[4..12], &want[..]);
    }

    #[test]
    fn cover_fills_the_screen_and_crops_the_sides() {
        // 8x2 picture in column pairs blue|red|green|yellow; on a square
        // screen cover keeps only the middle (red|green) and crops the rest.
        let mut px = Vec::new();
        for _ in 0..2 {
            for c in [[0, 0, 255], [255, 0, 0], [0, 255, 0], [255, 255, 0]] {
                px.extend_from_slice(&[c, c]);
            }
        }
        let f = frame(8, 2, &px);
        let mut c = Compositor::new(4, 4, Fit::Cover);
        let t = Instant::now();
        c.push(&f, t);
        let out = render(&mut c, t);
        assert!(out.iter().all(|&p| p != 0), "no black bars in cover mode");
        for y in 0..4 {
            assert_eq!(unpack_rgb(out[y * 4]), [255, 0, 0], "left edge is red");
            assert_eq!(
                unpack_rgb(out[y * 4 + 3]),
                [0, 255, 0],
                "right edge is green"
            );
        }
    }

    #[test]
    fn letterbox_bars_on_the_sides_for_a_tall_picture() {
        let f = solid(2, 4, [200, 100, 50]);
        let mut c = Compositor::new(8, 4, Fit::Letterbox);
        let t = Instant::now();
        c.push(&f, t);
        let out = render(&mut c, t);
        for y in 0..4 {
            let row = &out[y * 8..(y + 1) * 8];
            assert_eq!(&row[..3], &[0, 0, 0]);
            assert_eq!(&row[5..], &[0, 0, 0]);
            assert_eq!(row[3], pack_rgb(200, 100, 50));
            assert_eq!(row[4], pack_rgb(200, 100, 50));
        }
    }

    #[test]
    fn black_before_the_first_frame_and_first_frame_shows_at_once() {
        let mut c = Compositor::new(3, 2, Fit::Cover);
        let t = Instant::now();
        assert!(render(&mut c, t).iter().all(|&p| p == 0));
        c.push(&solid(3, 2, [9, 8, 7]), t);
        assert!(render(&mut c, t).iter().all(|&p| p == pack_rgb(9, 8, 7)));
    }

    #[test]
    fn crossfade_midpoint_is_the_average_and_ends_on_the_new_frame() {
        let mut c = Compositor::new(4, 4, Fit::Cover);
        let t0 = Instant::now();
        let gap = Duration::from_millis(400);
        c.push(&solid(2, 2, [0, 100, 250]), t0);
        c.push(&solid(2, 2, [200, 50, 10]), t0 + gap);
        assert_eq!(c.interval(), Some(gap));
        // Fade starts on the old frame.
        let start = render(&mut c, t0 + gap);
        assert!(start.iter().all(|&p| p == pack_rgb(0, 100, 250)));
        let mid = render(&mut c, t0 + gap + gap / 2);
        for p in mid {
            let [r, g, b] = unpack_rgb(p);
            assert!((r as i32 - 100).abs() <= 1, "r {r}");
            assert!((g as i32 - 75).abs() <= 1, "g {g}");
            assert!((b as i32 - 130).abs() <= 1, "b {b}");
        }
        assert!(c.is_fading(t0 + gap + gap / 2));
        let end = render(&mut c, t0 + gap * 2);
        assert!(end.iter().all(|&p| p == pack_rgb(200, 50, 10)));
        assert!(!c.is_fading(t0 + gap * 2));
    }

    #[test]
    fn hard_cut_when_crossfade_disabled() {
        let mut c = Compositor::new(4, 4, Fit::Cover);
        c.set_crossfade(false);
        let t0 = Instant::now();
        c.push(&solid(2, 2, [0, 100, 250]), t0);
        let t1 = t0 + Duration::from_millis(400);
        c.push(&solid(2, 2, [200, 50, 10]), t1);
        assert!(render(&mut c, t1)
            .iter()
            .all(|&p| p == pack_rgb(200, 50, 10)));
    }

    #[test]
    fn fade_length_is_clamped() {
        let mut c = Compositor::new(2, 2, Fit::Cover);
        let t0 = Instant::now();
        c.push(&solid(2, 2, [0, 0, 0]), t0);
        c.push(&solid(2, 2, [0, 0, 0]), t0 + Duration::from_millis(5));
        assert_eq!(c.interval(), Some(MIN_FADE));
        let mut c = Compositor::new(2, 2, Fit::Cover);
        c.push(&solid(2, 2, [0, 0, 0]), t0);
        c.push(&solid(2, 2, [0, 0, 0]), t0 + Duration::from_secs(30));
        assert_eq!(c.interval(), Some(MAX_FADE));
    }

    #[test]
    fn frame_arriving_mid_fade_continues_from_what_is_shown() {
        let mut c = Compositor::new(2, 2, Fit::Cover);
        let t0 = Instant::now();
        let gap = Duration::from_millis(400);
        c.push(&solid(2, 2, [0, 0, 0]), t0);
        c.push(&solid(2, 2, [200, 200, 200]), t0 + gap);
        // Third frame at the middle of the second fade: the picture must not jump.
        let t2 = t0 + gap + gap / 2;
        let before = render(&mut c, t2);
        c.push(&solid(2, 2, [0, 0, 200]), t2);
        let after = render(&mut c, t2);
        assert_eq!(before, after);
        let [r, _, _] = unpack_rgb(after[0]);
        assert!((r as i32 - 100).abs() <= 1);
    }

    #[test]
    fn source_size_change_rebuilds_the_scaling() {
        let mut c = Compositor::new(4, 4, Fit::Letterbox);
        c.set_crossfade(false);
        let t = Instant::now();
        c.push(&solid(4, 2, [50, 50, 50]), t);
        c.push(&solid(2, 2, [70, 70, 70]), t);
        let out = render(&mut c, t);
        // Square picture on a square screen: no bars any more.
        assert!(out.iter().all(|&p| p == pack_rgb(70, 70, 70)));
    }

    #[test]
    fn bars_stay_black_after_the_picture_shape_changes() {
        let mut c = Compositor::new(4, 4, Fit::Letterbox);
        let t0 = Instant::now();
        let gap = Duration::from_millis(100);
        c.push(&solid(2, 2, [90, 90, 90]), t0); // fills the screen
        c.push(&solid(4, 2, [50, 50, 50]), t0 + gap); // bars at rows 0 and 3
        c.push(&solid(4, 2, [60, 60, 60]), t0 + gap * 3);
        let out = render(&mut c, t0 + gap * 10);
        assert!(out[0..4].iter().all(|&p| p == 0), "top bar black");
        assert!(out[12..16].iter().all(|&p| p == 0), "bottom bar black");
        assert!(out[4..12].iter().all(|&p| p == pack_rgb(60, 60, 60)));
    }

    #[test]
    fn redraw_needed_only_while_something_changes() {
        let mut c = Compositor::new(2, 2, Fit::Cover);
        let mut out = vec![0u32; 4];
        let t0 = Instant::now();
        assert!(c.needs_redraw(t0), "nothing rendered yet");
        c.render(t0, &mut out);
        assert!(!c.needs_redraw(t0), "black shown, nothing new");
        c.push(&solid(2, 2, [1, 2, 3]), t0);
        assert!(c.needs_redraw(t0));
        c.render(t0, &mut out);
        assert!(!c.needs_redraw(t0 + Duration::from_millis(10)));
        let gap = Duration::from_millis(200);
        c.push(&solid(2, 2, [9, 9, 9]), t0 + gap);
        c.render(t0 + gap + gap / 2, &mut out);
        assert!(c.needs_redraw(t0 + gap + gap / 2), "fade still running");
        c.render(t0 + gap * 2, &mut out);
        assert!(!c.needs_redraw(t0 + gap * 3), "fade done and shown");
    }

    #[test]
    fn malformed_frame_is_ignored() {
        let mut c = Compositor::new(2, 2, Fit::Cover);
        let t = Instant::now();
        let mut bad = RgbFrame::new(2, 2);
        bad.data.truncate(5);
        c.push(&bad, t);
        assert!(render(&mut c, t).iter().all(|&p| p == 0));
    }

    fn time_compositor(sw: usize, sh: usize) -> Vec<u32> {
        let px: Vec<[u8; 3]> = (0..448 * 256)
            .map(|i| [(i % 251) as u8, (i % 241) as u8, (i % 239) as u8])
            .collect();
        let f = frame(448, 256, &px);
        let mut c = Compositor::new(sw, sh, Fit::Cover);
        let mut out = vec![0u32; sw * sh];
        let t0 = Instant::now();
        c.push(&f, t0);
        let n = 10;
        let start = Instant::now();
        for i in 1..=n {
            // Each push lands mid-fade: scale + materialise the blend.
            c.push(&f, t0 + Duration::from_millis(300 * i));
        }
        let push = start.elapsed() / n as u32;
        let start = Instant::now();
        for i in 0..n {
            c.render(t0 + Duration::from_millis(300 * n + 5 * i), &mut out);
        }
        let render = start.elapsed() / n as u32;
        println!("compositor 448x256 -> {sw}x{sh}: push {push:?}, render {render:?}");
        out
    }

    #[test]
    fn renders_720p_and_1080p_from_a_stylized_frame() {
        // Timing is printed, not asserted (machines differ).
        let out = time_compositor(1280, 720);
        assert!(out.iter().any(|&p| p != 0));
        let out = time_compositor(1920, 1080);
        assert!(out.iter().any(|&p| p != 0));
    }
}
