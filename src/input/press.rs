//! Press logic: debounced edges of one push-button turned into short and long presses.
//!
//! Pure (no clock, no I/O): it is driven by timestamped edges ([`PressDetector::feed`]) and by
//! the caller's notion of "now" ([`PressDetector::poll`]), both on the same monotonic clock
//! (the kernel's GPIO event clock is `CLOCK_MONOTONIC`, see [`super::monotonic_now`]).
//!
//! Rules:
//! - An edge that comes at least `debounce` after the previous edge (i.e. after a quiet line) is
//!   accepted at once, so a press is seen with no added latency.
//! - An edge closer than `debounce` to the previous edge (accepted or not) is a bounce and is
//!   ignored: the window slides with every bounce, so a bouncing contact yields one press
//!   however long its bounce train lasts, and a bouncing release does not start a second one.
//! - The line's last raw level is remembered even when its edge was ignored: once the line has
//!   been quiet for `debounce`, a raw level that disagrees with the accepted one wins
//!   ("settling"). A press that settles back to released this way never was a clean press: it
//!   is noise and emits nothing (otherwise a glitch would leave the detector stuck "pressed" and
//!   fire a phantom long press).
//! - Released before `long_press`: [`Press::Short`], emitted by the release edge.
//! - Held for `long_press` or more: [`Press::Long`], emitted once by `poll` while still held; the
//!   release then emits nothing. A release edge that arrives after the threshold without a poll
//!   having fired the long press yet emits `Long` (the user did hold it that long).

use crate::config::LongPressAction;
use crate::frame::Command;
use std::time::Duration;

/// One change of the button's logical level (`pressed` already accounts for active-low).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub pressed: bool,
    /// Monotonic timestamp of the change (e.g. the kernel's event timestamp).
    pub at: Duration,
}

impl Edge {
    pub fn press(at: Duration) -> Edge {
        Edge { pressed: true, at }
    }
    pub fn release(at: Duration) -> Edge {
        Edge { pressed: false, at }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Press {
    Short,
    Long,
}

/// The command a press stands for: short = next style, long = the configured action.
pub fn press_command(p: Press, long: LongPressAction) -> Command {
    match p {
        Press::Short => Command::NextStyle,
        Press::Long => match long {
            LongPressAction::PreviousStyle => Command::PrevStyle,
            LongPressAction::ToggleGallery => Command::ToggleGallery,
            LongPressAction::ToggleBlank => Command::ToggleBlank,
            LongPressAction::Pair => Command::ShowPairing,
        },
    }
}

/// Debounce + short/long classification for one button. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct PressDetector {
    debounce: Duration,
    long_press: Duration,
    /// Accepted (debounced) level.
    pressed: bool,
    /// Last level seen on the line, accepted or not, and when (`None` before the first edge).
    raw: bool,
    raw_at: Option<Duration>,
    /// Start of the current press (valid while `pressed`).
    press_start: Duration,
    long_fired: bool,
}

impl PressDetector {
    /// `long_press` is raised to `debounce` if smaller, so a press can always be told apart from
    /// a bounce before it counts as long.
    pub fn new(debounce: Duration, long_press: Duration) -> Self {
        PressDetector {
            debounce,
            long_press: long_press.max(debounce),
            pressed: false,
            raw: false,
            raw_at: None,
            press_start: Duration::ZERO,
            long_fired: false,
        }
    }

    /// The accepted (debounced) level.
    pub fn is_pressed(&self) -> bool {
        self.pressed
    }

    /// Forget everything (back to "released"), e.g. after the line was lost and reopened: a press
    /// in progress then emits nothing.
    pub fn reset(&mut self) {
        *self = PressDetector::new(self.debounce, self.long_press);
    }

    /// Handles one edge; returns the press it completes, if any.
    pub fn feed(&mut self, edge: Edge) -> Option<Press> {
        // A pending disagreement from before this edge is resolved first (it never emits).
        self.settle(edge.at);
        let bounce = self.within_debounce_of_last_edge(edge.at);
        self.raw = edge.pressed;
        self.raw_at = Some(edge.at);
        if edge.pressed == self.pressed || bounce {
            return None; // no change (repeated edge, release while released), or a bounce
        }
        self.accept(edge.pressed, edge.at)
    }

    /// Time passes without edges: fires a long press once the button has been held long enough.
    pub fn poll(&mut self, now: Duration) -> Option<Press> {
        self.settle(now);
        if self.pressed
            && !self.long_fired
            && now.saturating_sub(self.press_start) >= self.long_press
        {
            self.long_fired = true;
            return Some(Press::Long);
        }
        None
    }

    /// The next time at which [`poll`](Self::poll) may change something (a long press to fire or
    /// a bounce to settle), so a caller can sleep until then; `None` when only an edge can.
    pub fn next_deadline(&self) -> Option<Duration> {
        let settle = match self.raw_at {
            Some(at) if self.raw != self.pressed => Some(at + self.debounce),
            _ => None,
        };
        let long = (self.pressed && !self.long_fired).then(|| self.press_start + self.long_press);
        match (settle, long) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn within_debounce_of_last_edge(&self, at: Duration) -> bool {
        // Timestamps going backwards (should not happen) count as bounces, never as presses.
        matches!(self.raw_at, Some(prev) if at < prev || at - prev < self.debounce)
    }

    /// If the line has been quiet for `debounce` and sits at another level than the accepted
    /// one, the line is right: adopt its level as of its last edge. Emits nothing (module docs).
    fn settle(&mut self, now: Duration) {
        if self.raw == self.pressed || self.within_debounce_of_last_edge(now) {
            return;
        }
        let Some(at) = self.raw_at else { return };
        if self.raw {
            // The release was noise (the contact is closed again): a new press starts.
            self.pressed = true;
            self.press_start = at;
            self.long_fired = false;
        } else {
            // The press never was clean: noise.
            self.pressed = false;
        }
    }

    fn accept(&mut self, pressed: bool, at: Duration) -> Option<Press> {
        self.pressed = pressed;
        if pressed {
            self.press_start = at;
            self.long_fired = false;
            return None;
        }
        if self.long_fired {
            None
        } else if at.saturating_sub(self.press_start) >= self.long_press {
            self.long_fired = true;
            Some(Press::Long)
        } else {
            Some(Press::Short)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(30);
    const LONG: Duration = Duration::from_millis(1000);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn detector() -> PressDetector {
        PressDetector::new(DEBOUNCE, LONG)
    }

    /// Feeds `(pressed, at_ms)` edges, polling every millisecond in between (as a caller looping
    /// on a timeout would), and collects every press emitted up to `until_ms`.
    fn run(edges: &[(bool, u64)], until_ms: u64) -> Vec<(Press, u64)> {
        let mut d = detector();
        let mut out = Vec::new();
        let mut next = edges.iter().peekable();
        for t in 0..=until_ms {
            while let Some(&&(pressed, at)) = next.peek() {
                if at != t {
                    break;
                }
                next.next();
                if let Some(p) = d.feed(Edge {
                    pressed,
                    at: ms(at),
                }) {
                    out.push((p, t));
                }
            }
            if let Some(p) = d.poll(ms(t)) {
                out.push((p, t));
            }
        }
        out
    }

    #[test]
    fn clean_short_press_emits_short_on_release() {
        let mut d = detector();
        assert_eq!(d.feed(Edge::press(ms(100))), None);
        assert_eq!(d.poll(ms(200)), None);
        assert_eq!(d.feed(Edge::release(ms(250))), Some(Press::Short));
        assert_eq!(d.poll(ms(5000)), None, "nothing more after the release");
    }

    #[test]
    fn bouncy_press_yields_exactly_one_short() {
        // 5 bounces within 20 ms on the way down, then held 200 ms and released cleanly.
        let edges = [
            (true, 100),
            (false, 103),
            (true, 107),
            (false, 110),
            (true, 114),
            (false, 117),
            (true, 120),
            (false, 300),
        ];
        assert_eq!(run(&edges, 3000), vec![(Press::Short, 300)]);
    }

    #[test]
    fn release_bounce_is_ignored() {
        let edges = [
            (true, 100),
            (false, 300),
            (true, 303),
            (false, 306),
            (true, 310),
            (false, 315),
        ];
        assert_eq!(run(&edges, 3000), vec![(Press::Short, 300)]);
    }

    #[test]
    fn long_press_fires_at_threshold_while_held_and_release_is_silent() {
        let edges = [(true, 100), (false, 2500)];
        assert_eq!(run(&edges, 4000), vec![(Press::Long, 1100)]);
    }

    #[test]
    fn long_press_fires_only_once_however_often_polled() {
        let mut d = detector();
        d.feed(Edge::press(ms(0)));
        assert_eq!(d.poll(ms(999)), None);
        assert_eq!(d.poll(ms(1000)), Some(Press::Long));
        for t in 1001..1100 {
            assert_eq!(d.poll(ms(t)), None);
        }
        assert_eq!(d.feed(Edge::release(ms(1500))), None);
    }

    #[test]
    fn bouncy_long_press_fires_once() {
        let edges = [
            (true, 0),
            (false, 2),
            (true, 4),
            (false, 6),
            (true, 8),
            (false, 1500),
            (true, 1503),
            (false, 1506),
        ];
        assert_eq!(run(&edges, 3000), vec![(Press::Long, 1000)]);
    }

    #[test]
    fn two_quick_presses_give_two_shorts() {
        let edges = [(true, 100), (false, 180), (true, 260), (false, 340)];
        assert_eq!(
            run(&edges, 2000),
            vec![(Press::Short, 180), (Press::Short, 340)]
        );
    }

    #[test]
    fn release_just_before_threshold_is_short() {
        let mut d = detector();
        d.feed(Edge::press(ms(0)));
        assert_eq!(d.poll(ms(998)), None);
        assert_eq!(d.feed(Edge::release(ms(999))), Some(Press::Short));
    }

    #[test]
    fn release_exactly_at_threshold_without_poll_is_long() {
        let mut d = detector();
        d.feed(Edge::press(ms(0)));
        assert_eq!(d.feed(Edge::release(ms(1000))), Some(Press::Long));
        assert_eq!(d.poll(ms(3000)), None);
    }

    #[test]
    fn edge_exactly_one_debounce_after_the_previous_edge_is_accepted() {
        let mut d = detector();
        d.feed(Edge::press(ms(0)));
        assert_eq!(d.feed(Edge::release(ms(29))), None, "29 ms: bounce");
        let mut d = detector();
        d.feed(Edge::press(ms(0)));
        assert_eq!(d.feed(Edge::release(ms(30))), Some(Press::Short));
    }

    #[test]
    fn glitch_shorter_than_debounce_is_not_a_press() {
        // A 2 ms spike with nothing after it: no short, and above all no phantom long press.
        let edges = [(true, 100), (false, 102)];
        assert_eq!(run(&edges, 5000), vec![]);
    }

    #[test]
    fn press_after_a_glitch_still_counts() {
        let edges = [(true, 100), (false, 102), (true, 500), (false, 600)];
        assert_eq!(run(&edges, 3000), vec![(Press::Short, 600)]);
    }

    #[test]
    fn release_while_released_is_ignored() {
        // E.g. the button was held when the program started: its release is not a press.
        let mut d = detector();
        assert_eq!(d.feed(Edge::release(ms(100))), None);
        assert_eq!(d.poll(ms(5000)), None);
        assert!(!d.is_pressed());
    }

    #[test]
    fn edges_settle_without_polling_before_the_next_edge() {
        // No poll at all between edges: the glitch at 100..102 settles when the press at 500
        // arrives, and that press is accepted.
        let mut d = detector();
        assert_eq!(d.feed(Edge::press(ms(100))), None);
        assert_eq!(d.feed(Edge::release(ms(102))), None);
        assert_eq!(d.feed(Edge::press(ms(500))), None);
        assert_eq!(d.feed(Edge::release(ms(620))), Some(Press::Short));
    }

    #[test]
    fn reset_drops_a_press_in_progress() {
        let mut d = detector();
        d.feed(Edge::press(ms(0)));
        d.reset();
        assert_eq!(d.poll(ms(5000)), None);
        assert_eq!(d.feed(Edge::release(ms(5100))), None);
    }

    #[test]
    fn next_deadline_points_at_the_long_press_threshold() {
        let mut d = detector();
        assert_eq!(d.next_deadline(), None);
        d.feed(Edge::press(ms(200)));
        assert_eq!(d.next_deadline(), Some(ms(1200)));
        d.poll(ms(1200));
        assert_eq!(d.next_deadline(), None, "long press already fired");
    }

    #[test]
    fn next_deadline_points_at_the_end_of_a_pending_bounce() {
        let mut d = detector();
        d.feed(Edge::press(ms(200)));
        d.feed(Edge::release(ms(205)));
        assert_eq!(
            d.next_deadline(),
            Some(ms(235)),
            "quiet for 30 ms after the last edge"
        );
    }

    #[test]
    fn a_bounce_train_longer_than_debounce_is_still_one_press() {
        // A worn contact chattering for 80 ms, every gap shorter than the 30 ms debounce.
        let mut edges = vec![];
        let mut level = true;
        for t in (100..=180).step_by(20) {
            edges.push((level, t));
            level = !level;
        }
        assert_eq!(edges.last(), Some(&(true, 180)));
        edges.push((false, 400));
        edges.extend([(true, 420), (false, 445), (true, 470), (false, 490)]);
        assert_eq!(run(&edges, 3000), vec![(Press::Short, 400)]);
    }

    #[test]
    fn bounce_train_ending_released_is_noise() {
        let edges = [(true, 100), (false, 110), (true, 125), (false, 140)];
        assert_eq!(run(&edges, 3000), vec![]);
    }

    #[test]
    fn long_threshold_shorter_than_debounce_is_raised() {
        let mut d = PressDetector::new(ms(50), ms(10));
        d.feed(Edge::press(ms(0)));
        assert_eq!(
            d.poll(ms(20)),
            None,
            "not long before the debounce window is over"
        );
        assert_eq!(d.poll(ms(50)), Some(Press::Long));
    }

    #[test]
    fn presses_map_to_commands() {
        use LongPressAction::*;
        assert_eq!(press_command(Press::Short, ToggleBlank), Command::NextStyle);
        assert_eq!(
            press_command(Press::Long, PreviousStyle),
            Command::PrevStyle
        );
        assert_eq!(
            press_command(Press::Long, ToggleGallery),
            Command::ToggleGallery
        );
        assert_eq!(press_command(Press::Long, Pair), Command::ShowPairing);
        assert_eq!(
            press_command(Press::Long, ToggleBlank),
            Command::ToggleBlank
        );
    }
}
