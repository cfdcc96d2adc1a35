//! SdNotifier against a real Unix datagram socket standing in for systemd's
//! notify socket. Environment variables are process-wide, so the tests that
//! touch them take ENV_LOCK (this file is its own process: no other test sees them).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use styleframe::daemon::notify::{SdNotifier, ServiceNotifier, WatchdogGate};

static ENV_LOCK: Mutex<()> = Mutex::new(());

fn lock_env() -> std::sync::MutexGuard<'static, ()> {
    ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fake service manager: binds the socket and reads one datagram per call.
struct FakeManager {
    sock: UnixDatagram,
    _dir: tempfile::TempDir,
}

impl FakeManager {
    fn bind() -> FakeManager {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        FakeManager { sock, _dir: dir }
    }

    fn path(&self) -> &Path {
        self._dir.path()
    }

    fn socket_path(&self) -> std::path::PathBuf {
        self.path().join("notify")
    }

    /// The next datagram's `KEY=VALUE` lines.
    fn recv(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).expect("a datagram within 5 s");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn nothing_pending(&self) -> bool {
        self.sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        let empty = self.sock.recv(&mut buf).is_err();
        self.sock.set_nonblocking(false).unwrap();
        empty
    }
}

fn set_env(socket: Option<&Path>, watchdog_usec: Option<&str>, watchdog_pid: Option<String>) {
    match socket {
        Some(p) => std::env::set_var("NOTIFY_SOCKET", p),
        None => std::env::remove_var("NOTIFY_SOCKET"),
    }
    match watchdog_usec {
        Some(v) => std::env::set_var("WATCHDOG_USEC", v),
        None => std::env::remove_var("WATCHDOG_USEC"),
    }
    match watchdog_pid {
        Some(v) => std::env::set_var("WATCHDOG_PID", v),
        None => std::env::remove_var("WATCHDOG_PID"),
    }
}

#[test]
fn sd_notifier_speaks_the_protocol_to_notify_socket() {
    let _env = lock_env();
    let mgr = FakeManager::bind();
    set_env(
        Some(&mgr.socket_path()),
        Some("30000000"),
        Some(std::process::id().to_string()),
    );
    let mut sd = SdNotifier::from_env();
    assert!(sd.is_enabled());
    assert_eq!(sd.watchdog_interval(), Some(Duration::from_secs(30)));

    sd.ready();
    assert_eq!(mgr.recv(), ["READY=1"]);
    sd.status("style 2/12: starry_night, 1.8 fps");
    assert_eq!(mgr.recv(), ["STATUS=style 2/12: starry_night, 1.8 fps"]);
    sd.watchdog();
    assert_eq!(mgr.recv(), ["WATCHDOG=1"]);
    sd.reloading();
    let reload = mgr.recv();
    assert_eq!(reload[0], "RELOADING=1");
    assert!(
        reload[1..].iter().all(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reload:?}"
    );
    sd.stopping();
    assert_eq!(mgr.recv(), ["STOPPING=1"]);
    assert!(mgr.nothing_pending());
}

#[test]
fn status_with_newline_stays_one_status_line() {
    let _env = lock_env();
    let mgr = FakeManager::bind();
    set_env(Some(&mgr.socket_path()), None, None);
    let mut sd = SdNotifier::from_env();
    sd.status("camera lost\nREADY=1");
    assert_eq!(mgr.recv(), ["STATUS=camera lost READY=1"]);
}

#[test]
fn watchdog_for_another_pid_is_not_ours() {
    let _env = lock_env();
    let mgr = FakeManager::bind();
    set_env(
        Some(&mgr.socket_path()),
        Some("30000000"),
        Some((std::process::id() + 1).to_string()),
    );
    assert_eq!(SdNotifier::from_env().watchdog_interval(), None);
}

#[test]
fn watchdog_without_pid_applies_to_us() {
    let _env = lock_env();
    set_env(None, Some("2000000"), None);
    let sd = SdNotifier::from_env();
    assert_eq!(sd.watchdog_interval(), Some(Duration::from_secs(2)));
    let gate = WatchdogGate::from_notifier(&sd).expect("watchdog armed");
    assert_eq!(gate.period(), Duration::from_secs(1));
}

#[test]
fn without_notify_socket_every_call_is_a_no_op() {
    let _env = lock_env();
    set_env(None, None, None);
    let mut sd = SdNotifier::from_env();
    assert!(!sd.is_enabled());
    assert_eq!(sd.watchdog_interval(), None);
    sd.ready();
    sd.status("nobody listens");
    sd.watchdog();
    sd.stopping();
}

#[test]
fn vanished_manager_does_not_stop_the_daemon() {
    let _env = lock_env();
    let mgr = FakeManager::bind();
    set_env(Some(&mgr.socket_path()), None, None);
    let mut sd = SdNotifier::from_env();
    let gone = mgr.socket_path();
    drop(mgr); // removes the tempdir and with it the socket
    assert!(!gone.exists());
    for _ in 0..3 {
        sd.watchdog(); // logged, not returned, no panic
    }
}
