//! A stand-in daemon for tests/systemd.sh: a real `systemd --user` runs this
//! test binary as the styleframe service (`--ignored --exact standin_daemon`) to
//! prove the unit + SdNotifier + WatchdogGate chain end to end, before (and
//! independently of) the real `styleframe run`.
//!
//! Behaviour, steered by the environment the unit drop-in sets:
//! - `STANDIN_EXIT=N`: send READY=1, then exit with N (restart-policy checks).
//! - otherwise "show" a frame every 100 ms for `STANDIN_FRAMES_SECS` seconds
//!   (default: forever), then keep looping without frames: the gate stops the
//!   watchdog pings and systemd must kill and restart the service.
//! - SIGHUP: RELOADING=1, then READY=1 and `STATUS=reloaded N`.
//! - SIGTERM: STOPPING=1, exit 0.
//!
//! Run normally (`cargo test`), the ignored test is skipped; run with
//! `--ignored` but without the switch it returns at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use styleframe::daemon::notify::{SdNotifier, ServiceNotifier, WatchdogGate};

const SWITCH: &str = "STYLEFRAME_NOTIFY_STANDIN";

#[test]
#[ignore = "run by tests/systemd.sh under a real systemd --user"]
fn standin_daemon() {
    if std::env::var_os(SWITCH).is_none() {
        return;
    }
    let hup = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup)).unwrap();
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&term)).unwrap();

    let mut sd = SdNotifier::from_env();
    sd.ready();
    if let Some(code) = std::env::var("STANDIN_EXIT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        std::process::exit(code);
    }
    let frames_for = std::env::var("STANDIN_FRAMES_SECS")
        .ok()
        .and_then(|s| s.parse::<f32>().ok())
        .map(Duration::from_secs_f32);
    let mut gate = WatchdogGate::from_notifier(&sd);
    let start = Instant::now();
    let mut reloads = 0;
    sd.status("showing frames");
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        if term.load(Ordering::Relaxed) {
            sd.stopping();
            std::process::exit(0);
        }
        if hup.swap(false, Ordering::Relaxed) {
            reloads += 1;
            sd.reloading();
            sd.ready();
            sd.status(&format!("reloaded {reloads}"));
        }
        let Some(gate) = gate.as_mut() else { continue };
        let showing = match frames_for {
            None => true,
            Some(d) => now.duration_since(start) < d,
        };
        if showing {
            gate.frame_shown(now);
        }
        if gate.should_ping(now) {
            sd.watchdog();
        }
    }
}
