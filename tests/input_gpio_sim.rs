//! Opt-in test against a REAL gpiochip: gpio-sim in a Debian kernel under qemu, driven by
//! `tests/lab/gpio_sim.sh` (which runs this binary inside the guest with `--ignored --exact`).
//!
//! The guest's init creates a 32-line gpio-sim chip with line 17 named `GPIO17` and exports
//! `SIM`, the line's sysfs `pull` file: writing `pull-down` presses the (active-low) button,
//! `pull-up` releases it. Everything between that file and the `Command`s is the real thing:
//! gpiocdev uAPI v2 request (bias, active-low, kernel debounce), kernel edge events, the
//! userspace press logic and the button thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};
use styleframe::config::{Bias, ButtonConfig, LongPressAction};
use styleframe::input::{
    list_chips, spawn_button, ButtonLine, Command, Edge, GpioButton, InputError,
};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

struct Sim(String);

impl Sim {
    fn set(&self, pressed: bool) {
        let v = if pressed { "pull-down" } else { "pull-up" };
        std::fs::write(&self.0, v).unwrap_or_else(|e| panic!("write {v} to {}: {e}", self.0));
    }
    /// Presses with `bounces` extra open/close flickers 2 ms apart, like a worn contact.
    fn bouncy(&self, pressed: bool, bounces: usize) {
        self.set(pressed);
        for _ in 0..bounces {
            sleep(ms(2));
            self.set(!pressed);
            sleep(ms(2));
            self.set(pressed);
        }
    }
}

fn config() -> ButtonConfig {
    ButtonConfig {
        enabled: true,
        chip: "gpiochip0".into(),
        line: "GPIO17".into(),
        active_low: true,
        bias: Bias::PullUp,
        debounce_ms: 20,
        long_press_ms: 800,
        long_press: LongPressAction::PreviousStyle,
    }
}

/// Counts the edges that reach the press logic.
struct Counting(GpioButton, Arc<AtomicUsize>);

impl ButtonLine for Counting {
    fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, InputError> {
        let e = self.0.wait_edge(timeout)?;
        if let Some(e) = e {
            self.1.fetch_add(1, Ordering::SeqCst);
            eprintln!("  edge {e:?}");
        }
        Ok(e)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

fn quiet(rx: &Receiver<Command>, d: Duration) {
    if let Ok(c) = rx.recv_timeout(d) {
        panic!("unexpected extra command {c:?}");
    }
}

#[test]
#[ignore = "needs a gpio-sim chip: run tests/lab/gpio_sim.sh"]
fn gpio_sim_button_presses_become_commands() {
    let _ = env_logger::builder().is_test(true).try_init();
    let sim = Sim(std::env::var("SIM").expect("SIM: path of the gpio-sim line's pull file"));

    // doctor's view of the hardware
    let chips = list_chips();
    eprintln!("chips: {chips:?}");
    assert!(
        chips
            .iter()
            .any(|c| c.named_lines.contains(&(17, "GPIO17".into()))),
        "{chips:?}"
    );

    // The line, found by name, requested with pull-up + active-low + kernel debounce.
    sim.set(false);
    let mut line = GpioButton::open(&config()).expect("open GPIO17");
    eprintln!(
        "opened: {} (kernel debounce: {})",
        line.describe(),
        line.kernel_debounce()
    );
    assert!(
        !line.is_pressed().unwrap(),
        "released at rest (pulled up, active-low)"
    );

    // Error paths, with the real kernel answering.
    match GpioButton::open(&config()) {
        Err(e @ InputError::Busy { .. }) => {
            eprintln!("second open: {e}");
            assert!(e.to_string().contains("styleframe"), "{e}");
        }
        other => panic!("expected Busy, got {:?}", other.map(|b| b.describe())),
    }
    let err = GpioButton::open(&ButtonConfig {
        line: "GPIO99".into(),
        ..config()
    })
    .err()
    .expect("no such line name");
    eprintln!("unknown name: {err}");
    assert!(matches!(err, InputError::NoSuchLine { ref searched, .. } if !searched.is_empty()));
    let err = GpioButton::open(&ButtonConfig {
        line: "40".into(),
        ..config()
    })
    .err()
    .expect("offset out of range");
    eprintln!("bad offset: {err}");
    assert!(
        matches!(err, InputError::OffsetOutOfRange { lines: 32, .. }),
        "{err}"
    );
    let err = GpioButton::open(&ButtonConfig {
        chip: "gpiochip9".into(),
        line: "17".into(),
        ..config()
    })
    .err()
    .expect("no such chip");
    eprintln!("bad chip: {err}");
    assert!(
        err.to_string().contains("/dev/gpiochip0"),
        "lists the chips present: {err}"
    );

    // Raw edges: polarity is logical (pull-down = pressed), and the kernel debounce collapses a
    // bouncy press into one edge each way. Both edges are queued before the first read: this
    // also guards against gpiocdev 0.8's read_edge_event, which drops all but the first of the
    // events one read(2) returns (it lost exactly this release before GpioButton split reads).
    sim.bouncy(true, 5);
    sleep(ms(150));
    sim.bouncy(false, 3);
    sleep(ms(150));
    let mut edges = Vec::new();
    while let Some(e) = line.wait_edge(ms(300)).expect("edge") {
        edges.push(e);
    }
    eprintln!("raw edges of a 5-bounce press: {edges:?}");
    assert!(
        edges.first().is_some_and(|e| e.pressed),
        "first edge is the press: {edges:?}"
    );
    assert!(
        edges.last().is_some_and(|e| !e.pressed),
        "last edge is the release: {edges:?}"
    );
    if line.kernel_debounce() {
        assert_eq!(
            edges.len(),
            2,
            "kernel debounce: one edge each way: {edges:?}"
        );
    }

    // The button thread, end to end.
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let t = spawn_button(Box::new(line), &config(), tx, stop.clone());

    // 1. clean short press
    sim.set(true);
    sleep(ms(150));
    sim.set(false);
    assert_eq!(
        rx.recv_timeout(ms(3000)),
        Ok(Command::NextStyle),
        "clean short press"
    );
    quiet(&rx, ms(500));

    // 2. bouncy short press (5 bounces in ~20 ms, bouncy release): exactly one NextStyle
    sim.bouncy(true, 5);
    sleep(ms(200));
    sim.bouncy(false, 3);
    assert_eq!(
        rx.recv_timeout(ms(3000)),
        Ok(Command::NextStyle),
        "bouncy press"
    );
    quiet(&rx, ms(700));

    // 3. long press: fires while still held, and the release is silent
    let held = Instant::now();
    sim.bouncy(true, 2);
    assert_eq!(
        rx.recv_timeout(ms(4000)),
        Ok(Command::PrevStyle),
        "long press while held"
    );
    let after = held.elapsed();
    eprintln!("long press fired {after:?} after pressing (threshold 800 ms)");
    assert!(after >= ms(780), "fired too early: {after:?}");
    sleep(ms(300));
    sim.set(false);
    quiet(&rx, ms(800));

    // 4. two quick presses: two NextStyle
    for _ in 0..2 {
        sim.set(true);
        sleep(ms(120));
        sim.set(false);
        sleep(ms(150));
    }
    assert_eq!(
        rx.recv_timeout(ms(3000)),
        Ok(Command::NextStyle),
        "first of two"
    );
    assert_eq!(
        rx.recv_timeout(ms(3000)),
        Ok(Command::NextStyle),
        "second of two"
    );
    quiet(&rx, ms(500));

    let stopping = Instant::now();
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    eprintln!("button thread stopped in {:?}", stopping.elapsed());
    assert!(stopping.elapsed() < ms(1000));

    // 5. Userspace debounce alone (as when a driver refuses the kernel debounce): the line is
    // requested without one, so the bounces reach the press logic, which must still see one
    // press each time.
    let raw = GpioButton::open(&ButtonConfig {
        debounce_ms: 0,
        ..config()
    })
    .expect("reopen");
    assert!(!raw.kernel_debounce());
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let edges = Arc::new(AtomicUsize::new(0));
    let counting = Counting(raw, edges.clone());
    // 50 ms: under qemu's TCG the 2 ms sleeps between bounces stretch to ~15 ms.
    let userspace = ButtonConfig {
        debounce_ms: 50,
        ..config()
    };
    let t = spawn_button(Box::new(counting), &userspace, tx, stop.clone());
    sim.bouncy(true, 5);
    sleep(ms(200));
    sim.bouncy(false, 3);
    assert_eq!(
        rx.recv_timeout(ms(3000)),
        Ok(Command::NextStyle),
        "userspace-debounced press"
    );
    quiet(&rx, ms(700));
    let seen = edges.load(Ordering::SeqCst);
    eprintln!("without kernel debounce a 5+3-bounce press delivered {seen} edges");
    assert!(
        seen > 2,
        "the bounces must reach userspace for this to test anything: {seen}"
    );
    sim.bouncy(true, 3);
    assert_eq!(
        rx.recv_timeout(ms(4000)),
        Ok(Command::PrevStyle),
        "userspace-debounced long press"
    );
    sim.bouncy(false, 3);
    quiet(&rx, ms(700));
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
}
