//! A real phone-sized browser on the control page of the real daemon: Debian's
//! chromium, headless, driven through chromedriver's W3C WebDriver endpoints
//! (plain HTTP with ureq). It pairs by opening the pairing address, taps next,
//! moves the strength slider and uploads a painting; after each step the
//! daemon's published state and the picture on its (headless) screen change.
//! It saves a screenshot of the page at 390x844 CSS pixels.
//!
//! Ignored by default (it needs `apt-get install chromium chromium-driver`);
//! .ci/run runs it: `cargo test --release --test it remote -- --ignored`.

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use styleframe::capture::{synthetic::still_scene, FrameSource};
use styleframe::daemon::notify::RecordingNotifier;
use styleframe::daemon::state::{FrameState, StateBoard};
use styleframe::daemon::{self, Parts, RunLimits};
use styleframe::display::{open_headless, HeadlessHandle};
use styleframe::frame::{unpack_rgb, Command};
use styleframe::inference::{PredictNet, Stylizer, TransferNet};
use styleframe::preprocess::psnr;
use styleframe::process::pool;
use styleframe::remote::{pair_url, pairing, user_style_file, Remote, RemoteParts};
use styleframe::styles::StyleSet;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

use crate::daemon::StillCamera;

/// chromedriver and one browser session; both end when dropped.
struct Browser {
    base: String,
    child: Child,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Process::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is missing: apt-get install chromium chromium-driver");
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{root}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            "mobileEmulation": {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0}}
        }}}});
        let mut b = Browser { base: root, child };
        let s = b.call("POST", "/session", Some(caps));
        let id = s["sessionId"].as_str().expect("no session id").to_string();
        b.base = format!("{}/session/{id}", b.base);
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let r = match body {
            Some(b) => ureq::request(method, &url)
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => ureq::request(method, &url).call(),
        };
        let v: Value = match r {
            Ok(r) => serde_json::from_str(&r.into_string().unwrap()).unwrap(),
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "{method} {path}: {code} {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("{method} {path}: {e}"),
        };
        v["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }

    /// Waits until the script returns true.
    fn wait_for(&self, what: &str, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.script(js) != json!(true) {
            if Instant::now() > deadline {
                let said = self.script("return document.getElementById('message')?.textContent");
                panic!("page: {what} never happened; the page says {said}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self, to: &Path) {
        use base64::Engine;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.base).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state_until(b: &StateBoard, what: &str, ok: impl Fn(&FrameState) -> bool) -> FrameState {
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut v, mut s) = b.snapshot();
    while !ok(&s) {
        assert!(Instant::now() < deadline, "{what}: the state stayed {s:?}");
        (v, s) = b.wait_newer(v, Duration::from_millis(200));
    }
    s
}

fn shown(h: &HeadlessHandle) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(f) = h.latest() {
            return f.iter().flat_map(|&p| unpack_rgb(p)).collect();
        }
        assert!(Instant::now() < deadline, "no frame shown");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the screen shows a picture clearly unlike `before`.
fn picture_changes(h: &HeadlessHandle, before: &[u8], what: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = shown(h);
        let p = psnr(before, &now);
        if p < 30.0 {
            println!("{what}: the screen changed ({p:.1} dB from before)");
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the screen did not change ({p:.1} dB)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The camera's picture at the network's size, as floats.
fn downsized_scene() -> Vec<f32> {
    use styleframe::preprocess::{Downsize, Preprocessor};
    let mut x = vec![];
    Preprocessor::new(styleframe::config::Fit::Cover)
        .downsize(&still_scene(320, 180), 128, 224, &mut x)
        .unwrap();
    x
}

/// Where the screenshot goes: $STYLEFRAME_SCREENSHOT, else the test's scratch folder.
fn screenshot_path() -> PathBuf {
    std::env::var_os("STYLEFRAME_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("control-phone.png"))
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get); .ci/run runs it"]
fn a_phone_browser_pairs_steers_the_frame_and_adds_a_painting() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = super::remote_config(dir.path(), 16);
    let display = common::headless_config(224, 128);
    cfg.display = display.display;
    cfg.inference = display.inference;
    cfg.styles.morph_seconds = 0.3;
    cfg.remote.preview = true;
    let transfer = common::models().join("style_transfer_f16_384.tflite");
    let predict = common::models().join("style_predict_quantized_256.tflite");
    let user = user_style_file(&cfg).unwrap();
    let load = {
        let user = user.clone();
        move || -> Result<StyleSet, String> {
            let set = StyleSet::builtin();
            Ok(match user.exists() {
                true => set.merged(StyleSet::load(&user).map_err(|e| e.to_string())?),
                false => set,
            })
        }
    };
    let (tx, rx) = daemon::command_channel();
    let state = Arc::new(StateBoard::default());
    let remote = Remote::start(
        &cfg,
        RemoteParts {
            commands: tx.clone(),
            state: state.clone(),
            transfer: Some(transfer.clone()),
            predict: Some(predict.clone()),
            styles: Arc::new(load.clone()),
        },
    )
    .unwrap();
    let (htx, hrx) = std::sync::mpsc::channel();
    let board = state.clone();
    let dcfg = cfg.clone();
    let daemon = std::thread::spawn(move || {
        let (screen, handle) = open_headless(&dcfg.display);
        htx.send(handle).unwrap();
        let reload_cfg = dcfg.clone();
        let parts = Parts {
            open_source: Box::new(|| {
                Ok(Box::new(StillCamera(still_scene(320, 180))) as Box<dyn FrameSource>)
            }),
            make_stylizer: Box::new(move |h, w| {
                TransferNet::load(&transfer, h, w, &pool(2))
                    .map(|n| Box::new(n) as Box<dyn Stylizer>)
            }),
            predict: Some(PredictNet::load(&predict, &pool(1)).unwrap()),
            screen,
            reopen_screen: None,
            notifier: Box::new(RecordingNotifier::new(None)),
            commands: rx,
            reload: Box::new(move || Ok((reload_cfg.clone(), load()?))),
            styles: StyleSet::builtin(),
            state: board,
            pairing_url: None,
        };
        daemon::run(
            dcfg,
            parts,
            RunLimits {
                duration: Some(Duration::from_secs(600)),
                ..Default::default()
            },
        )
        .unwrap()
    });
    let screen = hrx.recv_timeout(Duration::from_secs(30)).unwrap();
    let styles = StyleSet::builtin();

    let browser = Browser::start();
    let base = format!("http://{}", remote.addr());
    // Unpaired: the page is refused.
    browser.open(&format!("{base}/"));
    browser.wait_for(
        "the unpaired notice",
        "return document.body.innerText.includes('not paired')",
    );
    // Pairing: the address `styleframe pair` prints.
    let token = pairing::read_token(dir.path()).unwrap().unwrap();
    browser.open(&pair_url(&remote.addr(), &token));
    let first = &styles.styles[0];
    browser.wait_for(
        "the page showing the current style",
        &format!(
            "return document.getElementById('current')?.textContent === {:?}",
            first.title
        ),
    );

    // Next.
    let before = shown(&screen);
    browser.click("#next");
    state_until(&state, "next from the page", |s| {
        s.style == styles.styles[1].name
    });
    let after_next = picture_changes(&screen, &before, "next");
    browser.wait_for(
        "the page marking the new style",
        &format!(
            "return document.querySelector('.tile.current')?.dataset.name === {:?}",
            styles.styles[1].name
        ),
    );

    // Strength: a tap in the middle of the slider, then the arrow key down.
    browser.click("#strength");
    browser.type_into("#strength", "\u{E012}\u{E012}\u{E012}\u{E012}");
    // Below the slider's middle: at least one key press reached the frame
    // (a loaded machine may coalesce the four into fewer changes).
    let s = state_until(&state, "strength from the page", |s| s.strength < 0.49);
    println!("strength now {}", s.strength);
    picture_changes(&screen, &after_next, "strength");

    // Add a painting from the "camera roll".
    let painting = common::shared().join("images/style/zigzag_colorful.jpg");
    browser.type_into("#file", painting.to_str().unwrap());
    browser.type_into("#name", "Phone painting");
    let before = shown(&screen);
    browser.click("#upload");
    browser.wait_for(
        "the upload message",
        "return document.getElementById('message').textContent === 'Added Phone painting.'",
    );
    let s = state_until(&state, "the uploaded style shown", |s| {
        s.style == "Phone painting"
    });
    assert!(
        s.strength < 0.45,
        "the upload reset the strength: {}",
        s.strength
    );
    picture_changes(&screen, &before, "upload");
    let saved = StyleSet::load(&user).unwrap();
    assert_eq!(saved.styles.len(), 1);
    assert_eq!(saved.styles[0].name, "Phone painting");
    browser.wait_for(
        "the upload message",
        "return document.getElementById('message').textContent === 'Added Phone painting.'",
    );
    browser.wait_for(
        "every preview tile",
        "const t = [...document.querySelectorAll('.tile img')]; \
         return t.length === 10 && t.every(i => i.complete && i.naturalWidth > 0)",
    );
    // The live preview is the painted picture on the screen, not the camera's.
    browser.wait_for(
        "the live preview",
        "const i = document.getElementById('live'); return i.complete && i.naturalWidth > 0",
    );
    let cookie = format!("Cookie: {}={token}\r\n", pairing::COOKIE);
    let live = super::send(
        remote.addr(),
        &format!("GET /api/live.jpg HTTP/1.1\r\n{cookie}"),
        b"",
    );
    assert_eq!(live.status, 200);
    let live = image::load_from_memory(&live.body).unwrap().into_rgb8();
    let on_screen = shown(&screen);
    let mut camera = vec![];
    styleframe::preprocess::to_rgb8(&downsized_scene(), &mut camera);
    let (to_screen, to_camera) = (
        psnr(live.as_raw(), &on_screen),
        psnr(live.as_raw(), &camera),
    );
    println!(
        "live preview: {to_screen:.1} dB to the screen, {to_camera:.1} dB to the camera picture"
    );
    assert!(to_screen > 25.0 && to_screen > to_camera + 6.0);

    // The status line: frame rate and inference time, published every few seconds.
    state_until(&state, "the frame rate", |s| {
        s.fps > 0.0 && s.infer_ms.is_some()
    });
    browser.wait_for(
        "the frame rate on the page",
        "return document.getElementById('stats').textContent.includes('fps')",
    );
    browser.script("window.scrollTo(0, 0); return 0");
    let shot = screenshot_path();
    browser.screenshot(&shot);
    println!("screenshot: {}", shot.display());
    let img = image::open(&shot).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (780, 1688),
        "not a phone-sized screenshot"
    );

    // A reset revokes the browser: the page's next request is refused.
    pairing::reset(dir.path()).unwrap();
    browser.open(&format!("{base}/"));
    browser.wait_for(
        "the unpaired notice after a reset",
        "return document.body.innerText.includes('not paired')",
    );

    drop(browser);
    tx.send(Command::Quit).unwrap();
    daemon.join().unwrap();
    drop(remote);
}
