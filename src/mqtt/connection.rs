//! The broker connection (thread "mqtt-conn") and the state publisher
//! (thread "mqtt-pub"). Publishing uses `try_publish` only: a slow or absent
//! broker fills a small queue and further messages are dropped, never waited for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    Client, Connection, Event, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS,
    TlsConfiguration, Transport,
};

use super::commands::{self, LogLimit, RateLimit};
use super::group::{GroupMsg, GroupSync};
use super::topics::Topics;
use super::{discovery, stopping, Settings, Stats};
use crate::daemon::state::{FrameState, StateBoard};
use crate::frame::Command;

/// Requests queued towards the broker; discovery and state take ~16.
const QUEUE: usize = 64;
/// Largest packet either way (discovery with many styles is a few KB).
const MAX_PACKET: usize = 64 * 1024;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Commands accepted per second after a burst (a person or an automation, not a flood).
const RATE: f64 = 20.0;
const BURST: f64 = 40.0;

pub struct Shared {
    pub topics: Topics,
    /// "host:port", for log lines.
    pub broker: String,
    pub client: Client,
    pub board: Arc<StateBoard>,
    pub stats: Stats,
    pub stop: AtomicBool,
    /// Set on every (re)connect and Home Assistant restart: publish everything again.
    pub republish: AtomicBool,
    pub group: Mutex<GroupSync>,
}

impl Shared {
    pub fn new(s: &Settings, board: Arc<StateBoard>) -> (Arc<Shared>, Connection) {
        let (client, conn) = Client::new(options(s), QUEUE);
        let shared = Shared {
            topics: s.topics.clone(),
            broker: format!("{}:{}", s.addr.host, s.addr.port),
            client,
            board,
            stats: Stats::default(),
            stop: AtomicBool::new(false),
            republish: AtomicBool::new(false),
            group: Mutex::new(GroupSync::new(&s.topics.device_id)),
        };
        (Arc::new(shared), conn)
    }

    fn publish(&self, topic: String, retain: bool, payload: impl Into<Vec<u8>>) -> bool {
        let r = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload.into());
        r.is_ok()
    }

    pub fn say_offline(&self) {
        self.publish(self.topics.availability(), true, "offline");
        let _ = self.client.try_disconnect();
    }
}

fn options(s: &Settings) -> MqttOptions {
    let t = &s.topics;
    let mut o = MqttOptions::new(t.device_id.clone(), s.addr.host.clone(), s.addr.port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_request_channel_capacity(QUEUE)
        .set_last_will(LastWill::new(
            t.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    if !s.username.is_empty() || s.password.is_some() {
        o.set_credentials(s.username.clone(), s.password.clone().unwrap_or_default());
    }
    if let Some(ca) = &s.ca {
        o.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca: ca.clone(),
            alpn: None,
            client_auth: None,
        }));
    }
    o
}

/// Drives the connection until stopped: reconnects with backoff, hands
/// incoming commands to the frame.
pub fn run_connection(mut conn: Connection, sh: &Shared, tx: Sender<Command>) {
    let mut backoff = BACKOFF_MIN;
    let mut incoming = Incoming::new(sh, tx);
    let mut errors = LogLimit::new(Duration::from_secs(60));
    for ev in conn.iter() {
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_MIN;
                on_connect(sh);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => incoming.handle(&p),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                if stopping(&sh.stop) {
                    break;
                }
                if let Some(line) = errors.line(Instant::now(), || {
                    format!(
                        "mqtt: broker {}: {e}; retrying (backoff up to {BACKOFF_MAX:?})",
                        sh.broker
                    )
                }) {
                    log::warn!("{line}");
                }
                sleep_unless_stopped(backoff, &sh.stop);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn on_connect(sh: &Shared) {
    let n = sh.stats.connects.fetch_add(1, Ordering::Relaxed) + 1;
    log::info!(
        "mqtt: connected as {} (connection {n})",
        sh.topics.device_id
    );
    let t = &sh.topics;
    let mut subs = vec![t.command_filter(), t.ha_status()];
    subs.extend(t.group.clone());
    for s in subs {
        let _ = sh.client.try_subscribe(s, QoS::AtLeastOnce);
    }
    sh.republish.store(true, Ordering::Relaxed);
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stopping(stop) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Incoming messages: rate-limited, bounded, parsed, passed on.
struct Incoming<'a> {
    sh: &'a Shared,
    tx: Sender<Command>,
    rate: RateLimit,
    rejected_log: LogLimit,
    limited_log: LogLimit,
}

impl<'a> Incoming<'a> {
    fn new(sh: &'a Shared, tx: Sender<Command>) -> Self {
        Incoming {
            sh,
            tx,
            rate: RateLimit::new(RATE, BURST),
            rejected_log: LogLimit::new(Duration::from_secs(10)),
            limited_log: LogLimit::new(Duration::from_secs(10)),
        }
    }

    fn handle(&mut self, p: &Publish) {
        let t = &self.sh.topics;
        let now = Instant::now();
        if p.topic == t.ha_status() {
            if p.payload.as_ref() == b"online" {
                self.sh.republish.store(true, Ordering::Relaxed);
            }
            return;
        }
        if !self.rate.allow(now) {
            self.sh.stats.limited.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = self.limited_log.line(now, || {
                format!(
                    "mqtt: too many messages (over {RATE}/s); dropping {}",
                    p.topic
                )
            }) {
                log::warn!("{l}");
            }
            return;
        }
        let r = if t.group.as_deref() == Some(p.topic.as_str()) {
            self.group(&p.payload)
        } else if let Some(entity) = t.command_entity(&p.topic) {
            // Retained on subscribe = sent some time ago, not a press now.
            if p.retain {
                Err("a retained command (stale; publish commands without retain)".into())
            } else {
                let styles = self.sh.board.snapshot().1.styles;
                commands::parse(entity, &p.payload, &styles).map(Some)
            }
        } else {
            Ok(None)
        };
        match r {
            Ok(Some(cmd)) => {
                log::info!("mqtt: {} -> {cmd:?}", p.topic);
                self.sh.stats.commands.fetch_add(1, Ordering::Relaxed);
                let _ = self.tx.send(cmd);
            }
            Ok(None) => {}
            Err(why) => {
                self.sh.stats.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(l) = self
                    .rejected_log
                    .line(now, || format!("mqtt: ignored {}: {why}", p.topic))
                {
                    log::warn!("{l}");
                }
            }
        }
    }

    /// A group message: the style to follow, if any.
    fn group(&self, payload: &[u8]) -> Result<Option<Command>, String> {
        if payload.len() > commands::MAX_PAYLOAD {
            return Err(format!(
                "{} bytes (at most {})",
                payload.len(),
                commands::MAX_PAYLOAD
            ));
        }
        let m: GroupMsg =
            serde_json::from_slice(payload).map_err(|e| format!("group message: {e}"))?;
        let mut g = self.sh.group.lock().unwrap_or_else(|p| p.into_inner());
        Ok(g.remote(m).map(Command::SetStyle))
    }
}

/// Publishes discovery, availability and state, and the frame's own style
/// changes to its group, until stopped.
pub fn run_publisher(sh: &Shared) {
    let mut seen = 0;
    let mut sent: HashMap<String, String> = HashMap::new();
    let mut options: Vec<String> = vec![];
    let mut shown_style = String::new();
    let mut unsent = false;
    while !stopping(&sh.stop) {
        let (v, s) = sh.board.wait_newer(seen, Duration::from_millis(250));
        if s.style.is_empty() {
            continue; // the frame has not started yet
        }
        let names: Vec<String> = s.styles.iter().map(|i| i.name.clone()).collect();
        let again = sh.republish.swap(false, Ordering::Relaxed);
        if again || names != options {
            if again {
                sent.clear();
            }
            if !publish_discovery(sh, &s) {
                sh.republish.store(true, Ordering::Relaxed); // queue full: next round
            }
            options = names;
        }
        // `unsent`: a full queue dropped some; try again without waiting for a change.
        if v != seen || again || unsent {
            seen = v;
            unsent = !publish_state(sh, &s, &mut sent);
        }
        if s.style != shown_style {
            shown_style = s.style.clone();
            to_group(sh, &s.style);
        }
    }
}

fn publish_discovery(sh: &Shared, s: &FrameState) -> bool {
    let mut ok = true;
    for (topic, payload) in discovery::messages(&sh.topics, s) {
        ok &= sh.publish(topic, true, payload.to_string());
    }
    ok &= sh.publish(sh.topics.availability(), true, "online");
    if ok {
        sh.stats.discovery_rounds.fetch_add(1, Ordering::Relaxed);
    }
    ok
}

/// Publishes the state topics whose payload changed since last sent; false
/// when some could not be queued.
fn publish_state(sh: &Shared, s: &FrameState, sent: &mut HashMap<String, String>) -> bool {
    let mut all = true;
    for (topic, payload) in discovery::state_messages(&sh.topics, s) {
        if sent.get(&topic) == Some(&payload) {
            continue;
        }
        if sh.publish(topic.clone(), true, payload.clone()) {
            sent.insert(topic, payload);
        } else {
            all = false;
        }
    }
    all
}

fn to_group(sh: &Shared, style: &str) {
    let Some(topic) = &sh.topics.group else {
        return;
    };
    let msg = sh
        .group
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .local(style);
    if let Some(m) = msg {
        let payload = serde_json::to_string(&m).unwrap_or_default();
        if sh.publish(topic.clone(), false, payload) {
            sh.stats.group_sent.fetch_add(1, Ordering::Relaxed);
        } else {
            log::warn!("mqtt: group {topic}: queue full, style {style:?} not sent");
        }
    }
}
