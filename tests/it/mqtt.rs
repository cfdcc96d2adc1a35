//! Home Assistant over MQTT with a real broker (Debian's mosquitto on a free
//! loopback port, started here from a generated config) and the daemon in
//! process: discovery as Home Assistant documents it, commands, bad payloads
//! and floods, a group of two frames, and a broker that dies and hangs mid-run.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use crate::daemon::{config, start, state_until, wait_for_frame, Running};
use crate::daemon_process::write_config;
use styleframe::config::MqttConfig;
use styleframe::frame::Command;
use styleframe::mqtt::{self, Mqtt, Stats};
use styleframe::styles::StyleSet;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A mosquitto of our own: loopback only, anonymous, no persistence.
struct Broker {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Only this user may connect (none: anyone).
    login: Option<(String, String)>,
    /// More lines for the listener (TLS).
    extra: String,
}

impl Broker {
    /// None (and a clear message) when mosquitto is not installed.
    fn start() -> Option<Broker> {
        Broker::start_with(None)
    }

    fn start_with(login: Option<(&str, &str)>) -> Option<Broker> {
        Broker::start_conf(login, |_| String::new())
    }

    /// `extra` makes listener lines from the broker's scratch directory.
    fn start_conf(
        login: Option<(&str, &str)>,
        extra: impl FnOnce(&Path) -> String,
    ) -> Option<Broker> {
        if !Path::new(MOSQUITTO).is_file() {
            eprintln!("SKIPPED: {MOSQUITTO} is not installed (apt-get install mosquitto)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let extra = extra(dir.path());
        let mut b = Broker {
            port,
            dir,
            extra,
            child: None,
            login: login.map(|(u, p)| (u.into(), p.into())),
        };
        b.run();
        Some(b)
    }

    fn conf(&self) -> PathBuf {
        let p = self.dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&p).unwrap();
        writeln!(f, "listener {} 127.0.0.1\npersistence false", self.port).unwrap();
        writeln!(f, "{}", self.extra).unwrap();
        match &self.login {
            None => writeln!(f, "allow_anonymous true").unwrap(),
            Some((user, pass)) => {
                let pw = self.dir.path().join("passwd");
                let ok = Process::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&pw)
                    .args([user, pass])
                    .status()
                    .unwrap();
                assert!(ok.success());
                writeln!(f, "allow_anonymous false\npassword_file {}", pw.display()).unwrap();
            }
        }
        p
    }

    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).unwrap();
        let child = Process::new(MOSQUITTO)
            .arg("-c")
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let log = std::fs::read_to_string(self.dir.path().join("mosquitto.log"));
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {log:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Debug)]
struct Msg {
    topic: String,
    payload: Vec<u8>,
}

impl Msg {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A test client that records everything under `styleframe/#` and the
/// discovery prefix, reconnecting (and resubscribing) when the broker comes back.
struct Watcher {
    client: Client,
    seen: Arc<Mutex<Vec<Msg>>>,
}

impl Watcher {
    fn new(b: &Broker, id: &str) -> Watcher {
        let mut o = MqttOptions::new(id, "127.0.0.1", b.port);
        o.set_max_packet_size(4 << 20, 4 << 20);
        if let Some((u, p)) = &b.login {
            o.set_credentials(u.clone(), p.clone());
        }
        let (client, mut conn) = Client::new(o, 100);
        let seen = Arc::new(Mutex::new(vec![]));
        let (c2, s2) = (client.clone(), seen.clone());
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for t in ["styleframe/#", "homeassistant/#"] {
                            let _ = c2.try_subscribe(t, QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => s2.lock().unwrap().push(Msg {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                    }),
                    Ok(_) => {}
                    Err(rumqttc::ConnectionError::RequestsDone) => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        Watcher { client, seen }
    }

    fn send(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .unwrap();
    }

    fn all(&self) -> Vec<Msg> {
        self.seen.lock().unwrap().clone()
    }

    /// The last payload seen on `topic`, waiting until `ok` holds for it.
    fn until(&self, topic: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        // Long enough for a reconnect after the backoff (up to 60 s); ends on the event.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let last = self.all().into_iter().rev().find(|m| m.topic == topic);
            if let Some(m) = last.filter(|m| ok(&m.text())) {
                return m.text();
            }
            assert!(Instant::now() < deadline, "{what}: nothing on {topic}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn count(&self, topic: &str) -> usize {
        self.all().iter().filter(|m| m.topic == topic).count()
    }
}

fn mqtt_config(b: &Broker, id: &str, group: &str) -> MqttConfig {
    MqttConfig {
        enabled: true,
        broker: b.url(),
        device_id: id.into(),
        group: group.into(),
        ..Default::default()
    }
}

fn connect(run: &Running, cfg: &MqttConfig) -> Mqtt {
    mqtt::spawn(cfg, run.state.clone(), run.tx.clone()).unwrap()
}

fn until_count(what: &str, counter: impl Fn() -> u64, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter() < at_least {
        assert!(Instant::now() < deadline, "{what}: stayed at {}", counter());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stat(m: &Mqtt, f: impl Fn(&Stats) -> &std::sync::atomic::AtomicU64) -> u64 {
    Stats::get(f(m.stats()))
}

fn quit(run: Running) {
    run.tx.send(Command::Quit).unwrap();
    run.join.join().unwrap();
}

/// The keys Home Assistant's MQTT integrations require or this frame relies
/// on, per platform (home-assistant.io/integrations/<platform>.mqtt).
fn check_discovery(topic: &str, v: &Value, styles: &[String]) {
    let parts: Vec<&str> = topic.split('/').collect();
    assert_eq!(parts.len(), 5, "{topic}");
    let (platform, node) = (parts[1], parts[2]);
    assert_eq!((parts[0], parts[4]), ("homeassistant", "config"), "{topic}");
    assert_eq!(node, "frame1", "{topic}");
    let has = |k: &str| {
        assert!(
            v.get(k).is_some_and(|x| !x.is_null()),
            "{topic}: no {k:?} in {v}"
        )
    };
    for k in ["name", "unique_id", "availability_topic"] {
        has(k);
    }
    assert_eq!(v["availability_topic"], "styleframe/frame1/availability");
    let ids = v["device"]["identifiers"].as_array();
    assert!(
        ids.is_some_and(|i| !i.is_empty()),
        "{topic}: device.identifiers"
    );
    match platform {
        "select" => {
            for k in ["command_topic", "state_topic", "options"] {
                has(k);
            }
            let opts: Vec<&str> = v["options"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap())
                .collect();
            assert_eq!(opts, styles, "select options are the style names");
        }
        "number" => {
            for k in ["command_topic", "state_topic", "min", "max", "step"] {
                has(k);
            }
            assert_eq!(
                (v["min"].as_f64(), v["max"].as_f64()),
                (Some(0.0), Some(1.0))
            );
        }
        "switch" => ["command_topic", "state_topic"].iter().for_each(|k| has(k)),
        "button" => has("command_topic"),
        "sensor" => has("state_topic"),
        other => panic!("unexpected platform {other} ({topic})"),
    }
}

fn discovery(w: &Watcher) -> Vec<(String, Value)> {
    let mut last = std::collections::BTreeMap::new();
    for m in w.all() {
        if m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config") {
            last.insert(m.topic.clone(), serde_json::from_slice(&m.payload).unwrap());
        }
    }
    last.into_iter().collect()
}

fn until_discovery(w: &Watcher) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = discovery(w);
        if d.len() >= 8 {
            return d;
        }
        assert!(Instant::now() < deadline, "discovery: {} of 8", d.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn style_names() -> Vec<String> {
    StyleSet::builtin()
        .styles
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn home_assistant_discovers_the_frame_and_its_commands_act_like_the_button() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let names = style_names();
    let run = start(config(), Duration::from_secs(120));
    let w = Watcher::new(&broker, "watch1");
    // A command retained on the broker is old news when the frame connects.
    w.client
        .publish(
            "styleframe/frame1/style/set",
            QoS::AtLeastOnce,
            true,
            names[5].clone(),
        )
        .unwrap();
    // On the broker before the frame connects (else the frame may get it live).
    w.until("styleframe/frame1/style/set", "the retained command", |p| {
        p == names[5]
    });
    let m = connect(&run, &mqtt_config(&broker, "frame1", ""));
    until_count(
        "the retained command rejected",
        || stat(&m, |s| &s.rejected),
        1,
    );

    // Discovery: eight entities, each valid for its platform.
    let d = until_discovery(&w);
    let mut platforms: Vec<&str> = d
        .iter()
        .map(|(t, _)| t.split('/').nth(1).unwrap())
        .collect();
    platforms.sort();
    assert_eq!(
        platforms,
        ["button", "button", "number", "select", "sensor", "sensor", "switch", "switch"]
    );
    for (t, v) in &d {
        check_discovery(t, v, &names);
    }
    w.until("styleframe/frame1/availability", "online", |p| {
        p == "online"
    });
    w.until("styleframe/frame1/style", "state", |p| p == names[0]);
    w.until("styleframe/frame1/screen", "state", |p| p == "ON");
    assert_eq!(
        run.state.snapshot().1.style,
        names[0],
        "a retained command was applied"
    );
    // Home Assistant restarting asks for discovery again.
    let rounds = stat(&m, |s| &s.discovery_rounds);
    w.send("homeassistant/status", "online");
    until_count(
        "discovery after HA's restart",
        || stat(&m, |s| &s.discovery_rounds),
        rounds + 1,
    );

    // A command changes the frame, and the change comes back as state.
    w.send("styleframe/frame1/style/set", names[2].clone());
    state_until(&run.state, "style from MQTT", |s| s.style == names[2]);
    w.until("styleframe/frame1/style", "state after set", |p| {
        p == names[2]
    });
    // A change from elsewhere (the button's channel) is published too.
    run.tx.send(Command::NextStyle).unwrap();
    w.until("styleframe/frame1/style", "state after button", |p| {
        p == names[3]
    });
    w.send("styleframe/frame1/gallery/set", "ON");
    state_until(&run.state, "gallery from MQTT", |s| s.gallery);
    w.until("styleframe/frame1/gallery", "gallery state", |p| p == "ON");
    w.send("styleframe/frame1/gallery/set", "OFF");
    state_until(&run.state, "gallery off", |s| !s.gallery);

    // Bad payloads: each ignored (counted, logged), the frame unchanged.
    let bad: [(&str, Vec<u8>); 5] = [
        ("style", vec![0xff, 0xfe, 0xfd]),
        ("style", vec![b'x'; 20_000]),
        ("style", b"no such style".to_vec()),
        ("strength", b"abc".to_vec()),
        ("strength", b"NaN".to_vec()),
    ];
    let before = stat(&m, |s| &s.rejected);
    for (entity, payload) in &bad {
        w.send(&format!("styleframe/frame1/{entity}/set"), payload.clone());
    }
    until_count(
        "bad payloads rejected",
        || stat(&m, |s| &s.rejected),
        before + 5,
    );
    let s = run.state.snapshot().1;
    assert_eq!((s.style.as_str(), s.strength), (names[3].as_str(), 1.0));
    // A packet larger than the client accepts at all costs a reconnect, not the frame.
    let connects = stat(&m, |s| &s.connects);
    w.send("styleframe/frame1/style/set", vec![b'y'; 200_000]);
    until_count(
        "reconnect after an oversized packet",
        || stat(&m, |s| &s.connects),
        connects + 1,
    );
    w.send("styleframe/frame1/strength/set", "0.5");
    state_until(&run.state, "good command after bad ones", |s| {
        s.strength == 0.5
    });

    // A flood: most of it dropped by the rate limit, the frame keeps showing.
    let shown = run.screen.stats().frames_presented;
    for _ in 0..2000 {
        w.send("styleframe/frame1/strength/set", "0.75");
    }
    until_count("flood limited", || stat(&m, |s| &s.limited), 1);
    state_until(&run.state, "flood applied", |s| s.strength == 0.75);
    let deadline = Instant::now() + Duration::from_secs(20);
    while run.screen.stats().frames_presented <= shown + 3 {
        assert!(Instant::now() < deadline, "frames stopped during the flood");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "flood: {} commands passed, {} dropped by the limit",
        stat(&m, |s| &s.commands),
        stat(&m, |s| &s.limited)
    );

    // Stopping says offline (retained).
    m.stop();
    w.until("styleframe/frame1/availability", "offline", |p| {
        p == "offline"
    });
    quit(run);
}

#[test]
fn frames_in_a_group_follow_one_another_without_echo() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let names = style_names();
    let a = start(config(), Duration::from_secs(120));
    let b = start(config(), Duration::from_secs(120));
    let w = Watcher::new(&broker, "watch2");
    let ma = connect(&a, &mqtt_config(&broker, "frame-a", "hall"));
    let mb = connect(&b, &mqtt_config(&broker, "frame-b", "hall"));
    for (r, m) in [(&a, &ma), (&b, &mb)] {
        state_until(&r.state, "started", |s| s.style == names[0]);
        until_count("connected", || stat(m, |s| &s.discovery_rounds), 1);
    }
    let group = "styleframe/group/hall";
    assert_eq!(w.count(group), 0, "starting frames spread their style");

    // The button on A: both show the next style.
    a.tx.send(Command::NextStyle).unwrap();
    state_until(&a.state, "A pressed", |s| s.style == names[1]);
    state_until(&b.state, "B follows A", |s| s.style == names[1]);
    // A page or Home Assistant on B: A follows.
    w.send("styleframe/frame-b/style/set", names[4].clone());
    state_until(&b.state, "B set", |s| s.style == names[4]);
    state_until(&a.state, "A follows B", |s| s.style == names[4]);

    // Quiet for a few seconds: one group message per change, no echo.
    std::thread::sleep(Duration::from_secs(3));
    let msgs: Vec<String> = w
        .all()
        .iter()
        .filter(|m| m.topic == group)
        .map(Msg::text)
        .collect();
    println!("group messages: {msgs:?}");
    assert_eq!(msgs.len(), 2, "echo on the group topic: {msgs:?}");
    assert_eq!(
        stat(&ma, |s| &s.group_sent) + stat(&mb, |s| &s.group_sent),
        2
    );
    for (r, m) in [(a, ma), (b, mb)] {
        m.stop();
        quit(r);
    }
}

/// Frames presented per second over `secs`.
fn rate(run: &Running, secs: u64) -> (u64, f64) {
    let n0 = run.screen.stats().frames_presented;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let n = run.screen.stats().frames_presented - n0;
    (n, n as f64 / t.elapsed().as_secs_f64())
}

#[test]
fn a_broker_that_dies_or_hangs_mid_run_changes_nothing_on_screen() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    let names = style_names();
    let run = start(config(), Duration::from_secs(150));
    wait_for_frame(&run.screen);
    let m = connect(&run, &mqtt_config(&broker, "frame1", ""));
    until_count("first discovery", || stat(&m, |s| &s.discovery_rounds), 1);

    let (_, up) = rate(&run, 4);
    broker.kill();
    // The frame changes while the broker is away.
    run.tx.send(Command::SetStyle(names[2].clone())).unwrap();
    let (n_down, down) = rate(&run, 4);
    println!("frames per second: broker up {up:.1}, broker down {down:.1}");
    assert!(
        n_down > 0,
        "no frame was presented while the broker was down"
    );

    // Back: the client reconnects by itself and republishes discovery and the
    // current state (this broker keeps nothing across restarts).
    broker.run();
    let w = Watcher::new(&broker, "watch3");
    until_count("reconnected", || stat(&m, |s| &s.connects), 2);
    assert_eq!(until_discovery(&w).len(), 8);
    w.until("styleframe/frame1/availability", "online again", |p| {
        p == "online"
    });
    w.until("styleframe/frame1/style", "state again", |p| p == names[2]);
    w.send("styleframe/frame1/style/set", names[1].clone());
    state_until(&run.state, "command after the reconnect", |s| {
        s.style == names[1]
    });

    // A hung broker (stopped, connection open): publishing never waits on it.
    broker.signal(libc::SIGSTOP);
    for i in 0..200 {
        run.tx
            .send(Command::SetStrength((i % 10) as f32 / 10.0))
            .unwrap();
    }
    let (n_hung, hung) = rate(&run, 4);
    broker.signal(libc::SIGCONT);
    println!("frames per second with the broker hung: {hung:.1}");
    assert!(n_hung > 0, "no frame was presented while the broker hung");
    state_until(&run.state, "commands applied while hung", |s| {
        s.strength == 0.9
    });
    // No `clear` here: the broker may forward the state as soon as it runs
    // again, before this line; the last strength seen must become 0.90 (it
    // was 1.00 before the hang).
    w.until("styleframe/frame1/strength", "state after the hang", |p| {
        p == "0.90"
    });
    m.stop();
    quit(run);
}

fn sf(args: &[&str], cfg: &Path) -> std::process::Output {
    Process::new(env!("CARGO_BIN_EXE_styleframe"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn the_daemon_connects_only_when_enabled_and_doctor_never_shows_the_password() {
    let Some(broker) = Broker::start_with(Some(("frame", "s3cret-pw"))) else {
        return;
    };
    let w = Watcher::new(&broker, "watch4");
    let dir = tempfile::tempdir().unwrap();

    // Not enabled: doctor says so and a running frame sends nothing anywhere.
    let off = write_config(dir.path(), "");
    let text = String::from_utf8_lossy(&sf(&["doctor"], &off).stdout).into_owned();
    assert!(text.contains("mqtt: disabled"), "{text}");
    let o = sf(&["run", "--seconds", "3"], &off);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        w.all().is_empty(),
        "a frame without [mqtt] published: {:?}",
        w.all()
    );

    // Enabled, with the password in a file: doctor names the broker, not the password.
    let pw = dir.path().join("mqtt-password");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    let on = write_config(
        dir.path(),
        &format!(
            "[mqtt]\nenabled = true\nbroker = \"{}\"\nusername = \"frame\"\n\
             password_file = \"{}\"\ndevice_id = \"proc1\"\n",
            broker.url(),
            pw.display()
        ),
    );
    let o = sf(&["doctor"], &on);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.contains(&format!("mqtt: enabled: broker {}", broker.url())),
        "{text}"
    );
    assert!(text.contains("device id \"proc1\""), "{text}");
    assert!(
        !text.contains("s3cret"),
        "doctor showed the password:\n{text}"
    );

    // The daemon logs in with it, announces itself, and says offline on exit.
    let o = sf(&["run", "--seconds", "8"], &on);
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{log}");
    assert!(!log.contains("s3cret"), "the log shows the password");
    assert_eq!(
        discovery(&w).len(),
        8,
        "discovery from the daemon process; log:\n{log}"
    );
    w.until("styleframe/proc1/availability", "offline on exit", |p| {
        p == "offline"
    });
    assert!(w
        .all()
        .iter()
        .any(|m| m.topic == "styleframe/proc1/availability" && m.text() == "online"));
}

/// A CA and a server certificate for "localhost" made with the openssl tool
/// (tests only; styleframe itself links no OpenSSL). Returns the CA's path.
fn make_certs(dir: &Path, ca_name: &str) -> PathBuf {
    let run = |args: &[&str]| {
        let o = Process::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl tool (apt-get install openssl)");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = format!("{ca_name}.crt");
    let ca_key = format!("{ca_name}.key");
    let mut a = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=styleframe test CA",
    ];
    a.extend(ec);
    a.extend(["-keyout", &ca_key, "-out", &ca]);
    run(&a);
    let mut a = vec![
        "req",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ];
    a.extend(ec);
    run(&a);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    // Mosquitto started as root drops to its own user: let it read them (test keys).
    use std::os::unix::fs::PermissionsExt;
    for f in [
        Path::new("."),
        Path::new("server.key"),
        Path::new("server.crt"),
        Path::new(&ca),
    ] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.join(ca)
}

#[test]
fn mqtts_connects_with_rustls_and_checks_the_certificate() {
    let mut ca = PathBuf::new();
    let Some(broker) = Broker::start_conf(None, |d| {
        ca = make_certs(d, "ca");
        format!(
            "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}",
            ca.display(),
            d.join("server.crt").display(),
            d.join("server.key").display()
        )
    }) else {
        return;
    };
    let board = Arc::new(styleframe::daemon::state::StateBoard::default());
    board.update(|s| {
        s.style = "wave".into();
        s.styles = ["wave", "scream"]
            .map(|n| styleframe::daemon::state::StyleInfo {
                name: n.into(),
                ..Default::default()
            })
            .to_vec();
    });
    let cfg = |id: &str, ca_file: PathBuf| MqttConfig {
        enabled: true,
        broker: format!("mqtts://localhost:{}", broker.port),
        device_id: id.into(),
        ca_file,
        ..Default::default()
    };

    // Trusting the broker's CA: connected, discovery sent, commands arrive.
    let (tx, rx) = std::sync::mpsc::channel();
    let m = mqtt::spawn(&cfg("tls1", ca.clone()), board.clone(), tx).unwrap();
    until_count("TLS connection", || stat(&m, |s| &s.discovery_rounds), 1);
    let port = broker.port.to_string();
    let o = Process::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &port, "--cafile"])
        .arg(&ca)
        .args(["-t", "styleframe/tls1/style/set", "-m", "scream"])
        .output()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(got, Command::SetStyle("scream".into()));
    m.stop();

    // Trusting another CA only: no connection.
    let other = tempfile::tempdir().unwrap();
    let other_ca = make_certs(other.path(), "other");
    let (tx, _rx) = std::sync::mpsc::channel();
    let m = mqtt::spawn(&cfg("tls2", other_ca), board, tx).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        stat(&m, |s| &s.connects),
        0,
        "connected to a broker it should not trust"
    );
    m.stop();
}
