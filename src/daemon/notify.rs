//! systemd notify/watchdog protocol.
//!
//! The daemon talks to its service manager through [`ServiceNotifier`]:
//! [`SdNotifier`] is the real one (datagrams to `$NOTIFY_SOCKET`, a no-op when
//! the daemon is not run by systemd), [`RecordingNotifier`] the test fake.
//!
//! [`WatchdogGate`] decides *when* to pet the watchdog. It only lets a ping
//! through when the pipeline has shown a new frame since the previous ping, so
//! a stalled pipeline (camera hung, inference deadlocked) stops pinging and
//! systemd restarts the service (`WatchdogSec=` in the unit), while a merely
//! alive main loop is not enough to keep a frozen picture on the wall.
//!
//! Expected use in the daemon's display loop:
//! ```
//! use std::time::{Duration, Instant};
//! use styleframe::daemon::notify::{RecordingNotifier, ServiceNotifier, WatchdogGate};
//!
//! let mut notifier = RecordingNotifier::new(Some(Duration::from_secs(30)));
//! let mut gate = WatchdogGate::from_notifier(&notifier);
//! notifier.ready();
//! // ... each time a new stylized frame reaches the screen:
//! let now = Instant::now();
//! if let Some(gate) = gate.as_mut() {
//!     gate.frame_shown(now);
//!     if gate.should_ping(now) {
//!         notifier.watchdog();
//!     }
//! }
//! assert_eq!(notifier.messages(), ["READY=1", "WATCHDOG=1"]);
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// What the daemon tells its service manager. Every method is fire-and-forget:
/// a daemon run by hand (or a manager that went away) must keep running, so
/// failures are logged, never returned.
pub trait ServiceNotifier: Send {
    /// Start-up finished (models loaded, first stage threads running): `READY=1`.
    /// Also sent again when a reload is complete.
    fn ready(&mut self);
    /// Free-form one-line status shown by `systemctl status`: `STATUS=...`.
    fn status(&mut self, text: &str);
    /// Pet the watchdog: `WATCHDOG=1`. Gate it with [`WatchdogGate`].
    fn watchdog(&mut self);
    /// Clean shutdown has begun: `STOPPING=1`.
    fn stopping(&mut self);
    /// A configuration reload has begun (`RELOADING=1`); send [`ready`](Self::ready)
    /// when it is done.
    fn reloading(&mut self);
    /// The watchdog timeout the manager expects, if it armed one for this process.
    fn watchdog_interval(&self) -> Option<Duration>;
}

/// Real notifier speaking the sd_notify(3) protocol through the `sd-notify` crate.
#[derive(Debug)]
pub struct SdNotifier {
    /// `false` when `NOTIFY_SOCKET` was unset at start: then every call is a no-op.
    enabled: bool,
    watchdog: Option<Duration>,
    /// Failed sends so far; only the first one is logged as a warning, so a
    /// vanished socket does not flood the journal with one line per ping.
    failures: u64,
}

impl SdNotifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    /// The variables are left in place: the daemon spawns no children that
    /// could inherit them, and unsetting them is unsafe once threads run.
    pub fn from_env() -> SdNotifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let watchdog = sd_notify::watchdog_enabled().filter(|d| !d.is_zero());
        if enabled {
            log::debug!("systemd notify socket present; watchdog: {watchdog:?}");
        }
        SdNotifier {
            enabled,
            watchdog,
            failures: 0,
        }
    }

    /// Whether the process was started with a notify socket (i.e. by systemd
    /// with `Type=notify`).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    fn send(&mut self, state: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(state) {
            self.failures += 1;
            let socket = std::env::var_os("NOTIFY_SOCKET").unwrap_or_default();
            if self.failures == 1 {
                log::warn!("cannot notify systemd at {}: {e}", socket.to_string_lossy());
            } else {
                log::debug!(
                    "cannot notify systemd at {} ({} failures): {e}",
                    socket.to_string_lossy(),
                    self.failures
                );
            }
        }
    }
}

impl ServiceNotifier for SdNotifier {
    fn ready(&mut self) {
        self.send(&[NotifyState::Ready]);
    }

    fn status(&mut self, text: &str) {
        let line = one_line(text);
        self.send(&[NotifyState::Status(&line)]);
    }

    fn watchdog(&mut self) {
        self.send(&[NotifyState::Watchdog]);
    }

    fn stopping(&mut self) {
        self.send(&[NotifyState::Stopping]);
    }

    fn reloading(&mut self) {
        // MONOTONIC_USEC is required by Type=notify-reload (systemd >= 253) and
        // ignored by older managers, so sending it keeps both unit types working.
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// A newline inside `STATUS=` would start a new `KEY=VALUE` assignment in the
/// datagram (a status text could otherwise send `READY=1` or `WATCHDOG=1`).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect()
}

/// Test fake: records the protocol lines a real notifier would send
/// (`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`, `RELOADING=1`) in a
/// log shared with clones, so a test keeps a handle while the daemon owns the box.
#[derive(Clone, Debug, Default)]
pub struct RecordingNotifier {
    log: Arc<Mutex<Vec<String>>>,
    watchdog: Option<Duration>,
}

impl RecordingNotifier {
    /// `watchdog`: what [`ServiceNotifier::watchdog_interval`] reports (as if
    /// `WatchdogSec=` were set).
    pub fn new(watchdog: Option<Duration>) -> RecordingNotifier {
        RecordingNotifier {
            log: Arc::new(Mutex::new(Vec::new())),
            watchdog,
        }
    }

    /// The shared log.
    pub fn log(&self) -> Arc<Mutex<Vec<String>>> {
        Arc::clone(&self.log)
    }

    /// A copy of the lines recorded so far.
    pub fn messages(&self) -> Vec<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A test thread that panicked while holding the lock must not hide the log.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&mut self, line: String) {
        self.lock().push(line);
    }
}

impl ServiceNotifier for RecordingNotifier {
    fn ready(&mut self) {
        self.push("READY=1".into());
    }

    fn status(&mut self, text: &str) {
        self.push(format!("STATUS={}", one_line(text)));
    }

    fn watchdog(&mut self) {
        self.push("WATCHDOG=1".into());
    }

    fn stopping(&mut self) {
        self.push("STOPPING=1".into());
    }

    fn reloading(&mut self) {
        self.push("RELOADING=1".into());
    }

    fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// Decides when to pet the watchdog: at most every `interval / 2`, and only
/// if at least one *new* frame was shown since the previous ping.
///
/// Pure (the caller passes `now`), so it is tested without sleeping.
///
/// Intentional pauses (night mode, blanked screen) produce no frames; the
/// daemon declares them with [`set_paused`](Self::set_paused) and the gate then
/// pings on the timer alone, since the loop calling [`should_ping`](Self::should_ping)
/// is itself the proof of life in that state.
#[derive(Clone, Debug)]
pub struct WatchdogGate {
    period: Duration,
    last_ping: Option<Instant>,
    last_frame: Option<Instant>,
    frame_since_ping: bool,
    paused: bool,
}

impl WatchdogGate {
    /// `interval`: the watchdog timeout (`WatchdogSec=`), as reported by
    /// [`ServiceNotifier::watchdog_interval`].
    pub fn new(interval: Duration) -> WatchdogGate {
        WatchdogGate {
            period: interval / 2,
            last_ping: None,
            last_frame: None,
            frame_since_ping: false,
            paused: false,
        }
    }

    /// A gate for the notifier's watchdog, or `None` when no watchdog is armed.
    pub fn from_notifier(notifier: &dyn ServiceNotifier) -> Option<WatchdogGate> {
        notifier.watchdog_interval().map(WatchdogGate::new)
    }

    /// Time between pings (half the watchdog timeout).
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Record that a new frame reached the screen.
    pub fn frame_shown(&mut self, now: Instant) {
        self.frame_since_ping = true;
        self.last_frame = Some(now);
    }

    /// Age of the newest frame (for a status line), `None` before the first.
    pub fn since_last_frame(&self, now: Instant) -> Option<Duration> {
        self.last_frame.map(|t| now.saturating_duration_since(t))
    }

    /// Declare an intentional pause in which no frames are expected (or its end).
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Whether to send `WATCHDOG=1` now. Returning `true` counts as the ping:
    /// the next one needs a new period (and, unless paused, a new frame).
    pub fn should_ping(&mut self, now: Instant) -> bool {
        let due = match self.last_ping {
            None => true,
            Some(last) => now.saturating_duration_since(last) >= self.period,
        };
        if due && (self.frame_since_ping || self.paused) {
            self.last_ping = Some(now);
            self.frame_since_ping = false;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WATCHDOG: Duration = Duration::from_secs(30);

    fn at(start: Instant, secs: f32) -> Instant {
        start + Duration::from_secs_f32(secs)
    }

    #[test]
    fn gate_pings_at_half_the_watchdog_interval() {
        assert_eq!(
            WatchdogGate::new(WATCHDOG).period(),
            Duration::from_secs(15)
        );
    }

    #[test]
    fn first_frame_pings_immediately() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        gate.frame_shown(t0);
        assert!(gate.should_ping(t0));
    }

    #[test]
    fn no_ping_before_the_first_frame() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        assert!(!gate.should_ping(t0));
        assert!(!gate.should_ping(at(t0, 100.0)));
    }

    #[test]
    fn steady_frames_ping_once_per_half_interval() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        let mut pings = Vec::new();
        // 10 fps for 60 s, asking after every frame.
        for i in 0..600 {
            let now = at(t0, i as f32 * 0.1);
            gate.frame_shown(now);
            if gate.should_ping(now) {
                pings.push(now.duration_since(t0).as_secs_f32().round() as u32);
            }
        }
        assert_eq!(pings, [0, 15, 30, 45]);
    }

    #[test]
    fn stalled_pipeline_stops_pinging() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        gate.frame_shown(t0);
        assert!(gate.should_ping(t0));
        // The loop keeps asking, but no frame arrives any more.
        for s in 1..120 {
            assert!(!gate.should_ping(at(t0, s as f32)), "pinged at {s}s");
        }
    }

    #[test]
    fn frame_between_pings_is_needed_even_when_due() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        gate.frame_shown(t0);
        assert!(gate.should_ping(t0));
        gate.frame_shown(at(t0, 1.0)); // consumed by nothing yet
        assert!(!gate.should_ping(at(t0, 14.9)), "not due yet");
        assert!(gate.should_ping(at(t0, 15.0)), "due and a frame was shown");
        assert!(!gate.should_ping(at(t0, 31.0)), "due but no new frame");
    }

    #[test]
    fn pinging_resumes_when_frames_come_back() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        gate.frame_shown(t0);
        assert!(gate.should_ping(t0));
        assert!(!gate.should_ping(at(t0, 20.0)));
        gate.frame_shown(at(t0, 25.0));
        assert!(gate.should_ping(at(t0, 25.0)));
    }

    #[test]
    fn paused_gate_pings_on_the_timer_without_frames() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        gate.set_paused(true);
        assert!(gate.should_ping(t0));
        assert!(!gate.should_ping(at(t0, 10.0)));
        assert!(gate.should_ping(at(t0, 15.0)));
        gate.set_paused(false);
        assert!(
            !gate.should_ping(at(t0, 30.0)),
            "unpaused: frames needed again"
        );
    }

    #[test]
    fn clock_going_backwards_does_not_ping() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        gate.frame_shown(at(t0, 10.0));
        assert!(gate.should_ping(at(t0, 10.0)));
        gate.frame_shown(t0);
        assert!(!gate.should_ping(t0));
    }

    #[test]
    fn gate_reports_the_age_of_the_last_frame() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(WATCHDOG);
        assert_eq!(gate.since_last_frame(t0), None);
        gate.frame_shown(t0);
        assert_eq!(
            gate.since_last_frame(at(t0, 4.0)),
            Some(Duration::from_secs(4))
        );
    }

    #[test]
    fn gate_exists_only_when_a_watchdog_is_armed() {
        assert!(WatchdogGate::from_notifier(&RecordingNotifier::new(None)).is_none());
        let gate = WatchdogGate::from_notifier(&RecordingNotifier::new(Some(WATCHDOG)));
        assert_eq!(gate.map(|g| g.period()), Some(Duration::from_secs(15)));
    }

    #[test]
    fn recording_notifier_shares_its_log_with_clones() {
        let rec = RecordingNotifier::new(None);
        let log = rec.log();
        let mut boxed: Box<dyn ServiceNotifier> = Box::new(rec.clone());
        boxed.ready();
        boxed.status("style: starry_night");
        boxed.watchdog();
        boxed.reloading();
        boxed.stopping();
        let expected = [
            "READY=1",
            "STATUS=style: starry_night",
            "WATCHDOG=1",
            "RELOADING=1",
            "STOPPING=1",
        ];
        assert_eq!(*log.lock().unwrap(), expected);
        assert_eq!(rec.messages(), expected);
    }

    #[test]
    fn status_newlines_cannot_inject_protocol_lines() {
        let mut rec = RecordingNotifier::new(None);
        rec.status("oops\nWATCHDOG=1\r\nREADY=1");
        assert_eq!(rec.messages(), ["STATUS=oops WATCHDOG=1  READY=1"]);
    }

    #[test]
    fn sd_notifier_without_socket_is_a_silent_no_op() {
        // NOTIFY_SOCKET is never set for unit tests (the socket test lives in
        // tests/notify_socket.rs, its own process), so this must not fail or block.
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            return;
        }
        let mut sd = SdNotifier::from_env();
        assert!(!sd.is_enabled());
        sd.ready();
        sd.status("x");
        sd.watchdog();
        sd.reloading();
        sd.stopping();
        assert_eq!(sd.failures, 0);
    }
}
