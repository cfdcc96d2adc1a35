//! Home Assistant and MQTT (issue #12): discovery, retained state, commands
//! that act like the button, and groups of frames that follow one another.
//!
//! Everything here runs on two threads of its own: one drives the broker
//! connection (reconnects with backoff, incoming commands), one watches the
//! [`StateBoard`] and publishes. Neither is on the display or inference path:
//! publishing never blocks (a full queue drops the message; the whole state is
//! sent again on every reconnect), and commands reach the frame through the
//! same channel as the button's.

pub mod commands;
mod connection;
pub mod discovery;
pub mod group;
pub mod topics;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{parse_broker, BrokerAddr, MqttConfig};
use crate::daemon::state::StateBoard;
use crate::frame::Command;
use topics::Topics;

/// Everything needed to connect, resolved from the config (files read, host name known).
#[derive(Clone)]
pub struct Settings {
    pub addr: BrokerAddr,
    pub username: String,
    pub password: Option<String>,
    /// PEM roots for mqtts://.
    pub ca: Option<Vec<u8>>,
    pub topics: Topics,
}

impl Settings {
    pub fn from_config(cfg: &MqttConfig) -> Result<Settings, String> {
        let addr = parse_broker(&cfg.broker).map_err(|e| format!("mqtt.broker: expected {e}"))?;
        let password = match &cfg.password_file {
            Some(p) => Some(read_password(p)?),
            None => (!cfg.password.is_empty()).then(|| cfg.password.clone()),
        };
        let ca = if addr.tls {
            Some(
                std::fs::read(&cfg.ca_file)
                    .map_err(|e| format!("mqtt.ca_file: {}: {e}", cfg.ca_file.display()))?,
            )
        } else {
            None
        };
        let device_id = device_id(cfg);
        Ok(Settings {
            addr,
            username: cfg.username.clone(),
            password,
            ca,
            topics: Topics::new(&device_id, &cfg.discovery_prefix, &cfg.group),
        })
    }
}

fn read_password(p: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| format!("mqtt.password_file: {}: {e}", p.display()))?;
    Ok(text.lines().next().unwrap_or("").trim_end().to_string())
}

/// The configured id, else the host name made topic-safe.
pub fn device_id(cfg: &MqttConfig) -> String {
    if !cfg.device_id.is_empty() {
        return cfg.device_id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let id: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        "styleframe".into()
    } else {
        id
    }
}

/// What `doctor` says about MQTT: what is enabled and where, never the password.
pub fn describe(cfg: &MqttConfig) -> String {
    if !cfg.enabled {
        return "disabled (nothing connects)".into();
    }
    let auth = match (
        &cfg.password_file,
        cfg.password.is_empty(),
        cfg.username.is_empty(),
    ) {
        (Some(f), _, _) => format!(", user {:?}, password from {}", cfg.username, f.display()),
        (None, false, _) => format!(", user {:?}, password set in the config", cfg.username),
        (None, true, false) => format!(", user {:?}, no password", cfg.username),
        (None, true, true) => ", no login".into(),
    };
    let group = if cfg.group.is_empty() {
        String::new()
    } else {
        format!(", group {:?}", cfg.group)
    };
    format!(
        "enabled: broker {}, device id {:?}{auth}{group}, discovery under {}/",
        cfg.broker,
        device_id(cfg),
        cfg.discovery_prefix
    )
}

/// Counters for logs and tests.
#[derive(Default, Debug)]
pub struct Stats {
    /// Successful connections (the first and every reconnect).
    pub connects: AtomicU64,
    /// Commands passed on to the frame.
    pub commands: AtomicU64,
    /// Commands ignored: bad payload, unknown style, too large.
    pub rejected: AtomicU64,
    /// Messages dropped by the rate limit.
    pub limited: AtomicU64,
    /// Discovery rounds published (first connect, reconnects, Home Assistant restarts).
    pub discovery_rounds: AtomicU64,
    /// Style changes this frame sent to its group.
    pub group_sent: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The running MQTT client; [`Mqtt::stop`] says "offline" and disconnects.
pub struct Mqtt {
    shared: Arc<connection::Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    conn_done: std::sync::mpsc::Receiver<()>,
}

/// Connects (in the background) and starts publishing; returns at once.
pub fn spawn(
    cfg: &MqttConfig,
    board: Arc<StateBoard>,
    commands: Sender<Command>,
) -> Result<Mqtt, String> {
    let settings = Settings::from_config(cfg)?;
    let (shared, conn) = connection::Shared::new(&settings, board);
    let (done_tx, conn_done) = std::sync::mpsc::channel();
    let s1 = shared.clone();
    let s2 = shared.clone();
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| format!("mqtt: starting a thread: {e}"))
    };
    let threads = vec![
        spawn(
            "mqtt-conn",
            Box::new(move || {
                connection::run_connection(conn, &s1, commands);
                let _ = done_tx.send(());
            }),
        )?,
        spawn("mqtt-pub", Box::new(move || connection::run_publisher(&s2)))?,
    ];
    log::info!("mqtt: {}", describe(cfg));
    Ok(Mqtt {
        shared,
        threads,
        conn_done,
    })
}

impl Mqtt {
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Announces "offline", disconnects, and waits a little for it to go out;
    /// a broker that does not answer does not hold up the daemon's exit.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.say_offline();
        if self.conn_done.recv_timeout(Duration::from_secs(2)).is_ok() {
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// Whether the connection thread should stop.
fn stopping(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
