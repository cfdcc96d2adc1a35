//! Input stage: the GPIO push-button and signals, turned into [`Command`]s.
//!
//! - [`press`]: pure debounce + short/long press logic ([`PressDetector`], [`press_command`]).
//! - [`button`]: the [`ButtonLine`] trait, the real gpiocdev line ([`GpioButton`]), a fake, and
//!   [`list_chips`] for `styleframe doctor`.
//! - [`spawn_button`]: the thread joining the two and sending commands.
//! - [`signals`]: SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2 as commands ([`spawn_signals`]).

pub mod button;
pub mod press;
pub mod signals;

pub use crate::frame::Command;
pub use button::{
    list_chips, ButtonLine, ChipInfo, FakeButton, FakeButtonHandle, GpioButton, InputError,
};
pub use press::{press_command, Edge, Press, PressDetector};
pub use signals::{ignore_sigpipe, signal_command, spawn_signals, SignalsHandle};

use crate::config::ButtonConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Longest the button thread waits for an edge, so it notices `stop` quickly.
const TICK: Duration = Duration::from_millis(100);
/// Reopen attempts after a line error: first after this, doubling up to [`REOPEN_MAX`].
const REOPEN_FIRST: Duration = Duration::from_secs(1);
const REOPEN_MAX: Duration = Duration::from_secs(5);

/// Now on `CLOCK_MONOTONIC`, the clock of the kernel's GPIO edge timestamps (and of
/// `std::time::Instant` on Linux, which cannot be turned into a `Duration` itself).
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Opens the configured button line (convenience for the daemon).
pub fn open_button(cfg: &ButtonConfig) -> Result<Box<dyn ButtonLine>, InputError> {
    Ok(Box::new(GpioButton::open(cfg)?))
}

/// Runs the button on its own thread until `stop` is set (noticed within ~100 ms) or `tx`'s
/// receiver is gone: edges -> [`PressDetector`] -> [`press_command`] -> `tx`.
///
/// Long presses fire while the button is still held (the thread wakes at the threshold).
/// On a line error (rare: chip unbound, device gone) it logs once, forgets any press in
/// progress, and calls [`ButtonLine::reopen`] after 1 s, 2 s, 4 s, then every 5 s until it
/// works (logging the recovery); the rest of the daemon keeps running meanwhile.
pub fn spawn_button(
    line: Box<dyn ButtonLine>,
    cfg: &ButtonConfig,
    tx: Sender<Command>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let debounce = Duration::from_millis(cfg.debounce_ms.into());
    let long = Duration::from_millis(cfg.long_press_ms.into());
    let action = cfg.long_press;
    thread::Builder::new()
        .name("button".into())
        .spawn(move || {
            let mut line = line;
            let mut detector = PressDetector::new(debounce, long);
            let send = |p: Press| {
                let cmd = press_command(p, action);
                log::info!("button: {p:?} press -> {cmd:?}");
                tx.send(cmd).is_ok()
            };
            while !stop.load(Ordering::Relaxed) {
                // Wake at the long-press threshold (or bounce settling) if that comes first.
                let now = monotonic_now();
                let timeout = detector
                    .next_deadline()
                    .map_or(TICK, |d| d.saturating_sub(now).min(TICK));
                match line.wait_edge(timeout) {
                    Ok(Some(edge)) => {
                        if let Some(p) = detector.feed(edge) {
                            if !send(p) {
                                break;
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::error!(
                            "button {}: {e}; retrying in the background",
                            line.describe()
                        );
                        detector.reset();
                        if !reopen_until_ok(line.as_mut(), &stop) {
                            break;
                        }
                        continue;
                    }
                }
                if let Some(p) = detector.poll(monotonic_now()) {
                    if !send(p) {
                        break;
                    }
                }
            }
            log::debug!("button thread stopped");
        })
        .expect("spawning the button thread")
}

/// Calls `reopen` with back-off until it succeeds (true) or `stop` is set (false).
fn reopen_until_ok(line: &mut dyn ButtonLine, stop: &AtomicBool) -> bool {
    let mut delay = REOPEN_FIRST;
    let mut attempts = 0u32;
    loop {
        if !sleep_unless_stopped(delay, stop) {
            return false;
        }
        attempts += 1;
        match line.reopen() {
            Ok(()) => {
                log::info!(
                    "button {}: reopened after {attempts} attempt(s)",
                    line.describe()
                );
                return true;
            }
            // Logged once above at error level; repeats would flood the journal over months.
            Err(e) => log::debug!("button reopen attempt {attempts} failed: {e}"),
        }
        delay = (delay * 2).min(REOPEN_MAX);
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) -> bool {
    let mut left = total;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let step = left.min(TICK);
        thread::sleep(step);
        left -= step;
    }
    !stop.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LongPressAction;
    use std::sync::mpsc::{self, Receiver};
    use std::time::Instant;

    fn config(long_press: LongPressAction) -> ButtonConfig {
        ButtonConfig {
            enabled: true,
            debounce_ms: 20,
            long_press_ms: 300,
            long_press,
            ..ButtonConfig::default()
        }
    }

    fn start(
        long_press: LongPressAction,
    ) -> (
        FakeButtonHandle,
        Receiver<Command>,
        Arc<AtomicBool>,
        JoinHandle<()>,
    ) {
        let (button, handle) = FakeButton::new();
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let t = spawn_button(Box::new(button), &config(long_press), tx, stop.clone());
        (handle, rx, stop, t)
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_now();
        thread::sleep(ms(5));
        let b = monotonic_now();
        assert!(b >= a + ms(5), "{a:?} -> {b:?}");
    }

    #[test]
    fn short_press_sends_next_style() {
        let (h, rx, stop, t) = start(LongPressAction::PreviousStyle);
        h.press();
        thread::sleep(ms(60));
        h.release();
        assert_eq!(rx.recv_timeout(ms(1000)), Ok(Command::NextStyle));
        assert!(rx.recv_timeout(ms(400)).is_err(), "one press, one command");
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }

    #[test]
    fn long_press_fires_while_held_and_release_is_silent() {
        let (h, rx, stop, t) = start(LongPressAction::ToggleBlank);
        let pressed = Instant::now();
        h.press();
        // Still held: the command must arrive without a release.
        assert_eq!(rx.recv_timeout(ms(2000)), Ok(Command::ToggleBlank));
        let waited = pressed.elapsed();
        assert!(
            waited >= ms(290),
            "fired after {waited:?}, threshold 300 ms"
        );
        assert!(waited < ms(600), "fired late: {waited:?}");
        h.release();
        assert!(
            rx.recv_timeout(ms(400)).is_err(),
            "release after long press is silent"
        );
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }

    #[test]
    fn stop_is_noticed_quickly() {
        let (_h, _rx, stop, t) = start(LongPressAction::PreviousStyle);
        thread::sleep(ms(50));
        let asked = Instant::now();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        assert!(asked.elapsed() < ms(500), "took {:?}", asked.elapsed());
    }

    #[test]
    fn thread_ends_when_the_receiver_is_gone() {
        let (h, rx, _stop, t) = start(LongPressAction::PreviousStyle);
        drop(rx);
        h.press();
        thread::sleep(ms(40));
        h.release();
        let asked = Instant::now();
        t.join().unwrap();
        assert!(asked.elapsed() < ms(1000));
    }

    #[test]
    fn line_error_is_survived_by_reopening() {
        let (h, rx, stop, t) = start(LongPressAction::PreviousStyle);
        h.press(); // a press in progress when the line fails must not complete later
        h.send(Err(InputError::NotOpen {
            chip: "fake".into(),
            line: "17".into(),
        }));
        h.release();
        thread::sleep(ms(1300)); // first reopen after 1 s
        assert_eq!(h.reopens(), 1);
        assert!(
            rx.try_recv().is_err(),
            "the interrupted press emitted nothing"
        );
        h.press();
        thread::sleep(ms(60));
        h.release();
        assert_eq!(rx.recv_timeout(ms(1000)), Ok(Command::NextStyle));
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }
}
