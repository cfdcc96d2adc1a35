//! Frame pacing for the sources that have no clock of their own (files, synthetic scene).

use std::time::{Duration, Instant};

/// Sleeps until the next frame deadline. When the caller is late (a slow decode, a stalled
/// consumer) the schedule restarts from now instead of bursting frames to catch up.
#[derive(Debug, Clone)]
pub struct Pacer {
    period: Duration,
    next: Option<Instant>,
}

/// Highest rate a paced source runs at: a file claiming 4000000000 fps must not busy-loop.
pub const MAX_FPS: f64 = 240.0;

impl Pacer {
    /// `fps` <= 0 or NaN is treated as 1 fps; above [`MAX_FPS`] as `MAX_FPS`.
    pub fn new(fps: f64) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps.min(MAX_FPS)
        } else {
            1.0
        };
        Pacer {
            period: Duration::from_secs_f64(1.0 / fps),
            next: None,
        }
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Blocks until the next deadline (the first call returns at once) and returns the time.
    pub fn wait(&mut self) -> Instant {
        let now = Instant::now();
        let (sleep, next) = schedule(self.next, now, self.period);
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
        self.next = Some(next);
        now + sleep
    }

    /// Forget the schedule (after a pause), so the next `wait` returns at once.
    pub fn reset(&mut self) {
        self.next = None;
    }
}

/// Pure scheduling rule, separate so it can be tested without sleeping:
/// returns how long to sleep now and the deadline after this frame.
pub fn schedule(next: Option<Instant>, now: Instant, period: Duration) -> (Duration, Instant) {
    match next {
        None => (Duration::ZERO, now + period),
        Some(deadline) if deadline > now => (deadline - now, deadline + period),
        // Late: deliver now, and measure the next period from now (no burst).
        Some(_) => (Duration::ZERO, now + period),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frame_is_immediate() {
        let now = Instant::now();
        let (sleep, next) = schedule(None, now, Duration::from_millis(100));
        assert_eq!(sleep, Duration::ZERO);
        assert_eq!(next, now + Duration::from_millis(100));
    }

    #[test]
    fn early_caller_sleeps_until_deadline_and_keeps_the_grid() {
        let now = Instant::now();
        let p = Duration::from_millis(100);
        let (sleep, next) = schedule(Some(now + Duration::from_millis(30)), now, p);
        assert_eq!(sleep, Duration::from_millis(30));
        assert_eq!(next, now + Duration::from_millis(130));
    }

    #[test]
    fn late_caller_does_not_burst() {
        let now = Instant::now();
        let p = Duration::from_millis(100);
        // 1 s late: one frame now, the next a full period later, not ten at once.
        let (sleep, next) = schedule(Some(now - Duration::from_secs(1)), now, p);
        assert_eq!(sleep, Duration::ZERO);
        assert_eq!(next, now + p);
    }

    #[test]
    fn pacer_holds_the_rate() {
        let mut pacer = Pacer::new(50.0);
        let start = Instant::now();
        for _ in 0..6 {
            pacer.wait();
        }
        // 6 frames at 50 fps: the first is immediate, then 5 periods of 20 ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
    }

    #[test]
    fn nonsense_fps_falls_back_to_one() {
        assert_eq!(Pacer::new(0.0).period(), Duration::from_secs(1));
        assert_eq!(Pacer::new(f64::NAN).period(), Duration::from_secs(1));
    }

    #[test]
    fn absurd_fps_is_capped_so_a_source_cannot_busy_loop() {
        let floor = Duration::from_secs_f64(1.0 / MAX_FPS);
        assert_eq!(Pacer::new(4_000_000_000.0).period(), floor);
        assert_eq!(Pacer::new(f64::INFINITY).period(), Duration::from_secs(1));
    }
}
