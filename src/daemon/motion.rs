//! Presence: is anyone in front of the frame? The camera frames are reduced
//! to a coarse grid of brightness cells in memory and compared with the
//! previous grid; a change in enough cells is motion. Nothing is kept but the
//! grid, and nothing leaves the process.

use crate::frame::RgbFrame;

/// Grid cells across and down: coarse enough to ignore sensor noise and
/// compression artefacts, fine enough to see a person walk by.
const GRID_W: usize = 16;
const GRID_H: usize = 9;
/// A cell "changed" when its mean brightness moved by more than this (0..255).
const CELL_DELTA: u8 = 12;
/// Motion when at least this many cells changed (~3% of 144).
const MIN_CELLS: usize = 4;

#[derive(Default)]
pub struct MotionDetector {
    grid: Vec<u8>,
    prev: Vec<u8>,
    sums: Vec<u32>,
}

impl MotionDetector {
    /// True when `frame` differs from the previous one by motion. The first
    /// frame (and a change of size) counts as motion: wake rather than sleep.
    pub fn observe(&mut self, frame: &RgbFrame) -> bool {
        if frame.width == 0 || frame.height == 0 {
            return false;
        }
        self.reduce(frame);
        let moved = self.prev.len() != self.grid.len()
            || self
                .grid
                .iter()
                .zip(&self.prev)
                .filter(|(a, b)| a.abs_diff(**b) > CELL_DELTA)
                .count()
                >= MIN_CELLS;
        std::mem::swap(&mut self.grid, &mut self.prev);
        moved
    }

    /// Mean luma per cell, into `self.grid` (buffers reused frame to frame).
    fn reduce(&mut self, f: &RgbFrame) {
        let (w, h) = (f.width as usize, f.height as usize);
        self.sums.clear();
        self.sums.resize(GRID_W * GRID_H * 2, 0);
        // Integer Rec.601 luma: cheap and good enough to see change.
        let luma = |p: &[u8]| (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8;
        // Column x is in cell `x * GRID_W / w`: cell `cx` is columns
        // `bound(cx)..bound(cx + 1)` (no division per pixel).
        let bound = |cx: usize| (cx * w).div_ceil(GRID_W);
        for y in 0..h {
            let row = &f.data[y * w * 3..(y + 1) * w * 3];
            let cy = y * GRID_H / h;
            for cx in 0..GRID_W {
                let (a, b) = (bound(cx), bound(cx + 1));
                let c = cy * GRID_W + cx;
                self.sums[2 * c] += row[3 * a..3 * b].chunks_exact(3).map(luma).sum::<u32>();
                self.sums[2 * c + 1] += (b - a) as u32;
            }
        }
        self.grid.clear();
        self.grid.extend(
            self.sums
                .chunks_exact(2)
                .map(|s| (s[0] / s[1].max(1)) as u8),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::synthetic::still_scene;

    fn noisy(f: &RgbFrame, seed: u64) -> RgbFrame {
        let mut g = f.clone();
        let mut rng = fastrand::Rng::with_seed(seed);
        for v in &mut g.data {
            *v = v.saturating_add_signed(rng.i8(-6..=6));
        }
        g
    }

    #[test]
    fn the_first_frame_counts_as_motion() {
        assert!(MotionDetector::default().observe(&still_scene(160, 90)));
    }

    #[test]
    fn a_still_scene_with_sensor_noise_is_not_motion() {
        let scene = still_scene(320, 180);
        let mut m = MotionDetector::default();
        m.observe(&scene);
        for seed in 0..20 {
            assert!(
                !m.observe(&noisy(&scene, seed)),
                "noise seen as motion ({seed})"
            );
        }
    }

    #[test]
    fn someone_walking_into_the_picture_is_motion() {
        let scene = still_scene(320, 180);
        let mut m = MotionDetector::default();
        m.observe(&scene);
        // A dark figure a tenth of the picture wide, full height.
        let mut person = scene.clone();
        for y in 0..180 {
            for x in 100..132 {
                let i = (y * 320 + x) * 3;
                person.data[i..i + 3].copy_from_slice(&[20, 20, 25]);
            }
        }
        assert!(m.observe(&person));
        assert!(
            !m.observe(&person),
            "the figure standing still is not motion"
        );
    }

    /// The cells are the definition's, `x * GRID_W / w` and `y * GRID_H / h`,
    /// at sizes that do and do not divide evenly (and narrower than the grid).
    #[test]
    fn cells_are_the_definitions_mean_luma() {
        let mut rng = fastrand::Rng::with_seed(4);
        for (w, h) in [(64, 36), (37, 23), (5, 3), (1, 1), (1280, 720)] {
            let mut f = RgbFrame::new(w as u32, h as u32);
            f.data.iter_mut().for_each(|v| *v = rng.u8(..));
            let (mut sums, mut counts) = ([0u32; GRID_W * GRID_H], [0u32; GRID_W * GRID_H]);
            for y in 0..h {
                for x in 0..w {
                    let p = &f.data[(y * w + x) * 3..][..3];
                    let c = (y * GRID_H / h) * GRID_W + x * GRID_W / w;
                    sums[c] += (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8;
                    counts[c] += 1;
                }
            }
            let want: Vec<u8> = (0..sums.len())
                .map(|c| (sums[c] / counts[c].max(1)) as u8)
                .collect();
            let mut m = MotionDetector::default();
            m.reduce(&f);
            assert_eq!(m.grid, want, "{w}x{h}");
        }
    }

    #[test]
    fn tiny_and_odd_sizes_do_not_panic() {
        let mut m = MotionDetector::default();
        for (w, h) in [(1, 1), (3, 200), (200, 3), (17, 10)] {
            m.observe(&RgbFrame::new(w, h));
        }
        assert!(!m.observe(&RgbFrame::new(0, 0)));
    }
}
