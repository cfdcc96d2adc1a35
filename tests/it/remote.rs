//! The control page (src/remote/) over plain HTTP: pairing, the cookie, CSRF,
//! rate limits, size limits, slow clients, names, unknown styles, uploads.
//! The daemon's side is a state board and the command channel's receiver, so
//! each test sees exactly which commands a request produced. The test with a
//! real browser and the real daemon is in `browser` below (needs chromium).

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use styleframe::config::Config;
use styleframe::daemon::state::{StateBoard, StyleInfo};
use styleframe::frame::Command;
use styleframe::remote::{pairing, Remote, RemoteParts};
use styleframe::styles::StyleSet;

mod browser;

pub struct Page {
    /// Serving while the test holds it.
    pub _remote: Remote,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub commands: Receiver<Command>,
    pub state: Arc<StateBoard>,
}

impl Page {
    pub fn token(&self) -> String {
        pairing::read_token(self.dir.path()).unwrap().unwrap()
    }
    pub fn cookie(&self) -> String {
        format!("Cookie: {}={}\r\n", pairing::COOKIE, self.token())
    }
    pub fn csrf(&self) -> String {
        format!(
            "{}: {}\r\n",
            pairing::CSRF_HEADER,
            pairing::csrf_for(&self.token())
        )
    }
    pub fn user_file(&self) -> PathBuf {
        self.dir.path().join(styleframe::remote::USER_STYLES)
    }
    /// Commands sent so far.
    pub fn sent(&self) -> Vec<Command> {
        self.commands.try_iter().collect()
    }
}

pub fn remote_config(dir: &Path, max_connections: u32) -> Config {
    let mut cfg = Config::default();
    cfg.remote.enabled = true;
    cfg.remote.listen = "127.0.0.1:0".into();
    cfg.remote.state_dir = dir.to_path_buf();
    cfg.remote.max_connections = max_connections;
    cfg.remote.max_upload_mb = 2;
    cfg
}

/// The page on a free port, the daemon's side faked by a board showing the built-in styles.
fn page_with(max_connections: u32, predict: Option<PathBuf>) -> Page {
    page_cfg(max_connections, predict, false)
}

fn page_cfg(max_connections: u32, predict: Option<PathBuf>, preview: bool) -> Page {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = remote_config(dir.path(), max_connections);
    cfg.remote.preview = preview;
    let (tx, rx) = std::sync::mpsc::channel();
    let state = Arc::new(StateBoard::default());
    let set = StyleSet::builtin();
    state.update(|s| {
        s.style = set.styles[0].name.clone();
        s.styles = set.styles.iter().map(StyleInfo::from).collect();
        s.strength = 1.0;
        s.screen_on = true;
    });
    let remote = Remote::start(
        &cfg,
        RemoteParts {
            commands: tx,
            state: state.clone(),
            transfer: None,
            predict,
            styles: Arc::new(|| Ok(StyleSet::builtin())),
        },
    )
    .unwrap();
    Page {
        addr: remote.addr(),
        _remote: remote,
        dir,
        commands: rx,
        state,
    }
}

fn page() -> Page {
    page_with(8, None)
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body`.
pub fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!(
        "{head}Host: {addr}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_reply(&mut s)
}

fn read_reply(s: &mut TcpStream) -> Reply {
    let mut all = vec![];
    let _ = s.read_to_end(&mut all);
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no reply head in {:?}", String::from_utf8_lossy(&all)));
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        head,
        body: all[split + 4..].to_vec(),
    }
}

fn get(p: &Page, path: &str) -> Reply {
    send(
        p.addr,
        &format!("GET {path} HTTP/1.1\r\n{}", p.cookie()),
        b"",
    )
}

fn post(p: &Page, path: &str, json: &str) -> Reply {
    send(
        p.addr,
        &format!("POST {path} HTTP/1.1\r\n{}{}", p.cookie(), p.csrf()),
        json.as_bytes(),
    )
}

#[test]
fn without_the_pairing_cookie_every_request_is_401() {
    let p = page();
    for path in [
        "/",
        "/app.js",
        "/api/state",
        "/api/events?since=0",
        "/api/tile?name=starry_night",
    ] {
        let r = send(p.addr, &format!("GET {path} HTTP/1.1\r\n"), b"");
        assert_eq!(r.status, 401, "GET {path}");
        assert!(!r.text().contains(&p.token()));
    }
    let r = send(
        p.addr,
        &format!("POST /api/next HTTP/1.1\r\n{}", p.csrf()),
        b"",
    );
    assert_eq!(r.status, 401);
    assert!(p.sent().is_empty(), "an unpaired request reached the frame");
}

#[test]
fn the_pairing_address_sets_a_strict_httponly_cookie_that_opens_the_page() {
    let p = page();
    let r = send(
        p.addr,
        &format!("GET /pair?token={} HTTP/1.1\r\n", p.token()),
        b"",
    );
    assert_eq!(r.status, 200);
    let cookie = r
        .head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("no cookie set");
    assert!(
        cookie.contains(&p.token())
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
    );
    let page = get(&p, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains(&pairing::csrf_for(&p.token())),
        "no CSRF value in the page"
    );
    assert!(page.head.contains("Content-Security-Policy"));
    let state: serde_json::Value = serde_json::from_slice(&get(&p, "/api/state").body).unwrap();
    assert_eq!(state["style"], StyleSet::builtin().styles[0].name.as_str());
    assert_eq!(
        state["styles"].as_array().unwrap().len(),
        StyleSet::builtin().styles.len()
    );
}

#[test]
fn wrong_tokens_are_rate_limited_even_before_a_right_one() {
    let p = page();
    for i in 0..pairing::MAX_FAILURES {
        let r = send(
            p.addr,
            &format!("GET /pair?token=guess{i} HTTP/1.1\r\n"),
            b"",
        );
        assert_eq!(r.status, 401, "wrong token #{i}");
    }
    let r = send(
        p.addr,
        &format!("GET /pair?token={} HTTP/1.1\r\n", p.token()),
        b"",
    );
    assert_eq!(r.status, 429, "the right token after too many wrong ones");
    assert_eq!(
        get(&p, "/api/state").status,
        429,
        "a paired request from a blocked address"
    );
}

#[test]
fn wrong_cookies_count_as_wrong_tokens() {
    let p = page();
    for _ in 0..pairing::MAX_FAILURES {
        let r = send(
            p.addr,
            &format!(
                "GET /api/state HTTP/1.1\r\nCookie: {}=0000\r\n",
                pairing::COOKIE
            ),
            b"",
        );
        assert_eq!(r.status, 401);
    }
    assert_eq!(get(&p, "/api/state").status, 429);
}

#[test]
fn state_changes_need_post_and_the_pages_csrf_value() {
    let p = page();
    let no_csrf = send(
        p.addr,
        &format!("POST /api/next HTTP/1.1\r\n{}", p.cookie()),
        b"",
    );
    assert_eq!(no_csrf.status, 403);
    let wrong = send(
        p.addr,
        &format!(
            "POST /api/next HTTP/1.1\r\n{}{}: {}\r\n",
            p.cookie(),
            pairing::CSRF_HEADER,
            "0".repeat(64)
        ),
        b"",
    );
    assert_eq!(wrong.status, 403);
    let cross = send(
        p.addr,
        &format!(
            "POST /api/next HTTP/1.1\r\n{}{}Origin: http://evil.example\r\n",
            p.cookie(),
            p.csrf()
        ),
        b"",
    );
    assert_eq!(cross.status, 403);
    assert_eq!(get(&p, "/api/next").status, 405);
    assert!(p.sent().is_empty(), "a refused request reached the frame");
    let origin = format!("Origin: http://{}\r\n", p.addr);
    let ok = send(
        p.addr,
        &format!(
            "POST /api/next HTTP/1.1\r\n{}{}{origin}",
            p.cookie(),
            p.csrf()
        ),
        b"",
    );
    assert_eq!(ok.status, 204);
    let r = post(&p, "/api/strength", r#"{"value":0.25}"#);
    assert_eq!(r.status, 204, "{}", r.text());
    let r = post(&p, "/api/morph", r#"{"value":3}"#);
    assert_eq!(r.status, 204, "{}", r.text());
    let r = post(&p, "/api/gallery", r#"{"on":true}"#);
    assert_eq!(r.status, 204, "{}", r.text());
    let r = post(&p, "/api/screen", r#"{"on":false}"#);
    assert_eq!(r.status, 204, "{}", r.text());
    let r = post(&p, "/api/style", r#"{"name":"THE_SCREAM"}"#);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        p.sent(),
        vec![
            Command::NextStyle,
            Command::SetStrength(0.25),
            Command::SetMorphSeconds(3.0),
            Command::SetGallery(true),
            Command::SetScreen(false),
            Command::SetStyle("THE_SCREAM".into()),
        ]
    );
}

#[test]
fn unknown_styles_bad_values_and_bad_bodies_are_4xx() {
    let p = page();
    let r = post(&p, "/api/style", r#"{"name":"no such style"}"#);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(post(&p, "/api/strength", r#"{"value":1.5}"#).status, 400);
    assert_eq!(post(&p, "/api/morph", r#"{"value":-1}"#).status, 400);
    assert_eq!(post(&p, "/api/strength", r#"{"value":"#).status, 400);
    assert_eq!(post(&p, "/api/gallery", r#"{"on":"yes"}"#).status, 400);
    assert_eq!(get(&p, "/api/tile?name=no%20such").status, 404);
    assert_eq!(get(&p, "/../../etc/passwd").status, 404);
    assert!(p.sent().is_empty());
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let p = page();
    // Refused from Content-Length alone: the body is never sent.
    let mut s = TcpStream::connect(p.addr).unwrap();
    let head = format!(
        "POST /api/strength HTTP/1.1\r\nHost: h\r\n{}{}Content-Length: 100000\r\n\r\n",
        p.cookie(),
        p.csrf()
    );
    s.write_all(head.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut s).status, 413);
    // send() adds a second Content-Length.
    let two = format!(
        "POST /api/strength HTTP/1.1\r\n{}{}Content-Length: 5\r\n",
        p.cookie(),
        p.csrf()
    );
    assert_eq!(send(p.addr, &two, b"").status, 400);
    let mut s = TcpStream::connect(p.addr).unwrap();
    let head = format!(
        "POST /api/upload?name=x HTTP/1.1\r\nHost: h\r\n{}{}Content-Length: {}\r\n\r\n",
        p.cookie(),
        p.csrf(),
        3 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).unwrap();
    assert_eq!(
        read_reply(&mut s).status,
        413,
        "an upload over remote.max_upload_mb"
    );
    let huge_head = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n", "a".repeat(20_000));
    assert_eq!(send(p.addr, &huge_head, b"").status, 431);
    assert_eq!(send(p.addr, "GARBAGE\0 / HTTP/1.1\r\n", b"").status, 400);
    let chunked = format!(
        "POST /api/next HTTP/1.1\r\n{}{}Transfer-Encoding: chunked\r\n",
        p.cookie(),
        p.csrf()
    );
    assert_eq!(send(p.addr, &chunked, b"").status, 411);
    assert!(p.sent().is_empty());
    // Still serving.
    assert_eq!(get(&p, "/api/state").status, 200);
}

#[test]
fn slow_clients_do_not_block_others_and_are_dropped() {
    let p = page_with(4, None);
    // Three half-open clients: a request line, then nothing.
    let mut slow: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(p.addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        get(&p, "/api/state").status,
        200,
        "a slow client held the server"
    );
    // Past the cap: answered 503 at once, not queued. (The pause lets the
    // request above release its connection.)
    std::thread::sleep(Duration::from_millis(300));
    let extra: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(p.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut busy = TcpStream::connect(p.addr).unwrap();
    assert_eq!(read_reply(&mut busy).status, 503);
    drop(extra);
    // The server gives up on a slow client itself (408) rather than waiting forever.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        assert_eq!(read_reply(s).status, 408);
    }
    assert_eq!(get(&p, "/api/state").status, 200);
}

#[test]
fn reset_revokes_every_paired_phone() {
    let p = page();
    let old = p.cookie();
    assert_eq!(get(&p, "/api/state").status, 200);
    pairing::reset(p.dir.path()).unwrap();
    let r = send(p.addr, &format!("GET /api/state HTTP/1.1\r\n{old}"), b"");
    assert_eq!(r.status, 401);
    assert_eq!(
        get(&p, "/api/state").status,
        200,
        "the new token does not pair"
    );
}

fn painting(name: &str) -> Vec<u8> {
    std::fs::read(common::shared().join("images/style").join(name)).unwrap()
}

fn upload(p: &Page, name: &str, bytes: &[u8]) -> Reply {
    let q: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    send(
        p.addr,
        &format!(
            "POST /api/upload?name={q} HTTP/1.1\r\n{}{}",
            p.cookie(),
            p.csrf()
        ),
        bytes,
    )
}

#[test]
fn names_with_path_tricks_and_taken_names_are_refused() {
    let p = page_with(
        8,
        Some(common::models().join("style_predict_quantized_256.tflite")),
    );
    let jpeg = painting("starry_night.jpg");
    for bad in [
        "../../etc/passwd",
        "a/b",
        ".hidden",
        "",
        "x\ny",
        &"x".repeat(41),
    ] {
        let r = upload(&p, bad, &jpeg);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
    }
    let r = upload(&p, "Starry_Night", &jpeg);
    assert_eq!(r.status, 409, "a shipped style's name: {}", r.text());
    assert!(
        !p.user_file().exists(),
        "a refused upload wrote the user file"
    );
    assert!(p.sent().is_empty());
}

#[test]
fn uploads_add_rename_and_delete_user_styles_and_never_shipped_ones() {
    let p = page_with(
        8,
        Some(common::models().join("style_predict_quantized_256.tflite")),
    );
    p.state.update(|s| s.strength = 0.5);
    let r = upload(&p, "My Starry", &painting("starry_night.jpg"));
    assert_eq!(r.status, 201, "{}", r.text());
    let set = StyleSet::load(&p.user_file()).unwrap();
    assert_eq!(set.styles.len(), 1);
    assert_eq!(set.styles[0].name, "My Starry");
    // The same painting as the shipped style: nearly the same embedding.
    let shipped = StyleSet::builtin().find("starry_night").unwrap().embedding;
    let cos = cosine(&set.styles[0].embedding.0, &shipped.0);
    assert!(cos > 0.95, "cosine to the shipped embedding {cos}");
    assert_eq!(
        p.sent(),
        vec![
            Command::ReloadConfig,
            Command::SetStrength(0.5),
            Command::SetMorphSeconds(0.0),
            Command::SetStyle("My Starry".into()),
        ]
    );
    // As the daemon would publish it after the reload.
    p.state.update(|s| {
        s.styles.push(StyleInfo {
            name: "My Starry".into(),
            ..Default::default()
        });
        s.style = "My Starry".into();
    });
    let before = std::fs::read(p.user_file()).unwrap();
    let r = upload(&p, "Broken", b"\xff\xd8\xff\xe0 not a jpeg at all");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        upload(&p, "my starry", &painting("the_scream.jpg")).status,
        409
    );
    assert_eq!(
        std::fs::read(p.user_file()).unwrap(),
        before,
        "a refused upload changed the file"
    );
    let state: serde_json::Value = serde_json::from_slice(&get(&p, "/api/state").body).unwrap();
    assert_eq!(state["user_styles"], serde_json::json!(["My Starry"]));

    assert_eq!(
        post(&p, "/api/rename", r#"{"from":"starry_night","to":"x"}"#).status,
        403
    );
    assert_eq!(
        post(&p, "/api/delete", r#"{"name":"the_scream"}"#).status,
        403
    );
    assert_eq!(post(&p, "/api/delete", r#"{"name":"nobody"}"#).status, 404);
    assert_eq!(
        post(&p, "/api/rename", r#"{"from":"My Starry","to":"../x"}"#).status,
        400
    );
    p.sent();
    assert_eq!(
        post(
            &p,
            "/api/rename",
            r#"{"from":"my starry","to":"Night Sky"}"#
        )
        .status,
        200
    );
    assert_eq!(
        StyleSet::load(&p.user_file()).unwrap().styles[0].name,
        "Night Sky"
    );
    assert!(
        p.sent().contains(&Command::SetStyle("Night Sky".into())),
        "the shown style was renamed away"
    );
    assert_eq!(
        post(&p, "/api/delete", r#"{"name":"Night Sky"}"#).status,
        200
    );
    assert!(StyleSet::load(&p.user_file()).unwrap().styles.is_empty());
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn nothing_listens_unless_enabled() {
    let cfg = Config::default();
    assert!(!cfg.remote.enabled);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/styleframe.toml"
    ))
    .unwrap();
    let example = Config::from_toml_str(&text, Path::new("config/styleframe.toml")).unwrap();
    assert!(
        !example.remote.enabled,
        "the example config turns the control page on"
    );
    assert!(!text.contains("token ="), "a token in the example config");
}

#[test]
fn the_live_preview_is_off_unless_enabled_and_serves_the_frame_the_daemon_offers() {
    let off = page();
    assert_eq!(get(&off, "/api/live.jpg").status, 404);
    let state: serde_json::Value = serde_json::from_slice(&get(&off, "/api/state").body).unwrap();
    assert_eq!(state["preview"], false);

    let p = page_cfg(8, None, true);
    // Nothing offered yet: the daemon copies frames only once a page asked.
    let mut f = styleframe::frame::RgbFrame::new(64, 48);
    p.state.offer_frame(&f, std::time::Instant::now());
    assert_eq!(get(&p, "/api/live.jpg").status, 503);
    f.data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = (i % 251) as u8);
    p.state.offer_frame(&f, std::time::Instant::now());
    let r = get(&p, "/api/live.jpg");
    assert_eq!(r.status, 200);
    let img = image::load_from_memory(&r.body).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_styleframe"))
        .args(args)
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap()
}

#[test]
fn pair_prints_the_pairing_address_and_reset_revokes_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cfg = dir.path().join("styleframe.toml");
    std::fs::write(
        &cfg,
        format!(
            "[remote]\nenabled = true\nlisten = \"127.0.0.1:8099\"\nstate_dir = {:?}\n",
            state.display().to_string()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    // The frame makes the token; `pair` never does.
    let none = cli(&["pair", "--config", c]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no pairing token"));
    let token = pairing::load_or_create(&state).unwrap();
    let out = cli(&["pair", "--config", c]);
    assert!(out.status.success());
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(url, format!("http://127.0.0.1:8099/pair?token={token}"));
    let reset = cli(&["pair", "--config", c, "--reset"]);
    assert!(reset.status.success());
    let new = pairing::read_token(&state).unwrap().unwrap();
    assert_ne!(new, token);
    assert!(String::from_utf8_lossy(&reset.stdout).contains(&new));
    let doctor = cli(&["doctor", "--config", c]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        said.contains("remote: control page enabled on 127.0.0.1:8099")
            && said.contains("pairing token present"),
        "{said}"
    );
}
