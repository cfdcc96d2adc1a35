//! Signals become commands. One #[test] only: signals are process-wide, and tests in one file
//! run as threads of one process.

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::low_level::raise;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use styleframe::input::{spawn_signals, Command};

fn next(rx: &Receiver<Command>) -> Command {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a command within 60 s")
}

#[test]
fn signals_become_commands_and_a_storm_never_loses_quit() {
    let (tx, rx) = mpsc::channel();
    let handle = spawn_signals(tx).expect("signal thread");

    // One at a time, each answered before the next is raised.
    for (sig, want) in [
        (SIGUSR1, Command::NextStyle),
        (SIGUSR2, Command::PrevStyle),
        (SIGHUP, Command::ReloadConfig),
        (SIGINT, Command::Quit),
        (SIGTERM, Command::Quit),
    ] {
        raise(sig).unwrap();
        assert_eq!(next(&rx), want, "signal {sig}");
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "no extra commands"
    );

    // A storm: 1000 SIGUSR1 as fast as possible, then one SIGTERM. Raising must not block,
    // repeats may coalesce, and the Quit must arrive.
    let start = Instant::now();
    for _ in 0..1000 {
        raise(SIGUSR1).unwrap();
    }
    raise(SIGTERM).unwrap();
    let raised_in = start.elapsed();
    // A blocking raise would hang; the bound only catches that, generously.
    assert!(
        raised_in < Duration::from_secs(30),
        "raising took {raised_in:?}"
    );

    // Until the Quit arrives (event-driven), then whatever is still queued.
    let (mut next_styles, mut quits) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while quits == 0 && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Command::NextStyle) => next_styles += 1,
            Ok(Command::Quit) => quits += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => {}
        }
    }
    while let Ok(cmd) = rx.recv_timeout(Duration::from_millis(200)) {
        match cmd {
            Command::NextStyle => next_styles += 1,
            Command::Quit => quits += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(quits, 1, "the SIGTERM after the storm");
    assert!(
        (1..=1000).contains(&next_styles),
        "{next_styles} NextStyle for 1000 SIGUSR1"
    );
    eprintln!(
        "storm: 1000 SIGUSR1 raised in {raised_in:?} -> {next_styles} NextStyle, {quits} Quit"
    );

    // close() stops the thread promptly.
    let closing = Instant::now();
    handle.close();
    assert!(closing.elapsed() < Duration::from_secs(30));
}
