//! The page's HTTP interface: pairing, the checks every request passes
//! (rate limit, pairing cookie, CSRF on POST), then one route per action.
//! Actions become [`Command`]s for the daemon; what the frame does comes back
//! through the [`StateBoard`], so every open page sees every change.

use crate::config::{MORPH_SECONDS, STRENGTH};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::daemon::state::{FrameState, StateBoard};
use crate::frame::Command;

use super::assets;
use super::pairing::{self, Limiter};
use super::previews::Tiles;
use super::server::{Handler, Request, Response};
use super::uploads::Library;

/// Bodies of every request but an upload.
pub const SMALL_BODY: usize = 16 * 1024;
/// How long a page's poll for a change waits before it asks again.
pub const POLL_WAIT: Duration = Duration::from_secs(20);

pub struct Api {
    pub state_dir: PathBuf,
    pub limiter: Limiter,
    pub commands: Sender<Command>,
    pub state: Arc<StateBoard>,
    pub library: Library,
    pub tiles: Option<Arc<Tiles>>,
    pub max_upload: usize,
    /// `remote.preview`: serve the stylized frame at /api/live.jpg.
    pub preview: bool,
}

#[derive(Serialize)]
struct StateOut<'a> {
    version: u64,
    #[serde(flatten)]
    frame: &'a FrameState,
    /// Styles the page may rename or delete.
    user_styles: Vec<String>,
    cpu_temp_c: Option<f32>,
    uploads: bool,
    max_upload_bytes: usize,
    preview: bool,
}

fn cpu_temp() -> Option<f32> {
    let t = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    t.trim().parse::<f32>().ok().map(|m| m / 1000.0)
}

fn no_store(r: Response) -> Response {
    r.with("Cache-Control", "no-store")
}

fn unpaired() -> Response {
    Response::new(
        401,
        "text/html; charset=utf-8",
        "<!doctype html><meta name=viewport content=\"width=device-width\">\
         <title>styleframe</title><p>This phone is not paired with the frame. \
         Scan the code the frame shows, or open the address <code>styleframe pair</code> prints.</p>\n",
    )
}

#[derive(Deserialize)]
struct Name {
    name: String,
}
#[derive(Deserialize)]
struct Value {
    value: f32,
}
#[derive(Deserialize)]
struct On {
    on: bool,
}
#[derive(Deserialize)]
struct Rename {
    from: String,
    to: String,
}

fn parse<'a, T: Deserialize<'a>>(req: &'a Request) -> Result<T, Response> {
    serde_json::from_slice(&req.body)
        .map_err(|e| Response::text(400, format!("bad request body: {e}")))
}

impl Handler for Api {
    fn body_limit(&self, method: &str, path: &str) -> usize {
        if method == "POST" && path == "/api/upload" {
            self.max_upload
        } else {
            SMALL_BODY
        }
    }

    fn handle(&self, mut req: Request) -> Response {
        let now = Instant::now();
        if self.limiter.blocked(req.peer, now) {
            return Response::text(
                429,
                "too many wrong pairing tokens from this address; wait a minute",
            );
        }
        let token = match pairing::read_token(&self.state_dir) {
            Ok(Some(t)) => t,
            Ok(None) => return Response::text(503, "no pairing token yet: restart styleframe"),
            Err(e) => {
                log::error!("remote: {e}");
                return Response::text(500, "cannot read the pairing token");
            }
        };
        if req.path == "/pair" {
            return self.pair(&req, &token, now);
        }
        match req.header("cookie").and_then(pairing::cookie_value) {
            None => return unpaired(),
            Some(c) if !pairing::same_secret(c, &token) => {
                self.limiter.failed(req.peer, now);
                log::info!("remote: {}: an old or wrong pairing cookie", req.peer);
                return unpaired();
            }
            Some(_) => {}
        }
        if req.method == "POST" {
            if let Err(r) = check_csrf(&req, &token) {
                log::info!(
                    "remote: {}: {} {}: CSRF check failed",
                    req.peer,
                    req.method,
                    req.path
                );
                return r;
            }
        }
        no_store(match self.route(&mut req, &token) {
            Ok(r) | Err(r) => r,
        })
    }
}

/// POSTs carry the page's CSRF value, and if the browser names an origin it is this host.
fn check_csrf(req: &Request, token: &str) -> Result<(), Response> {
    let sent = req.header(pairing::CSRF_HEADER).unwrap_or("");
    if !pairing::same_secret(sent, &pairing::csrf_for(token)) {
        return Err(Response::text(
            403,
            "missing or wrong CSRF value: reload the page",
        ));
    }
    if let (Some(origin), Some(host)) = (req.header("origin"), req.header("host")) {
        let o = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if o != host {
            return Err(Response::text(403, "cross-origin request refused"));
        }
    }
    Ok(())
}

impl Api {
    fn pair(&self, req: &Request, token: &str, now: Instant) -> Response {
        let given = req.param("token").unwrap_or_default();
        if !pairing::same_secret(given.trim(), token) {
            self.limiter.failed(req.peer, now);
            log::warn!("remote: {}: a wrong pairing token", req.peer);
            return Response::text(401, "wrong pairing token");
        }
        log::info!("remote: {}: paired", req.peer);
        // A page, not a redirect: the cookie then goes with a same-site
        // navigation even when a QR scanner app opened this address.
        no_store(Response::new(
            200,
            "text/html; charset=utf-8",
            assets::PAIRED,
        ))
        .with("Set-Cookie", pairing::set_cookie(token))
    }

    fn send(&self, c: Command) -> Result<Response, Response> {
        self.commands
            .send(c)
            .map(|_| Response::new(204, "text/plain", ""))
            .map_err(|_| Response::text(503, "the frame is stopping"))
    }

    fn state_json(&self, version: u64, frame: &FrameState) -> Response {
        Response::json(
            200,
            &StateOut {
                version,
                frame,
                user_styles: self.library.user_names(),
                cpu_temp_c: cpu_temp(),
                uploads: self.library.enabled(),
                max_upload_bytes: self.max_upload,
                preview: self.preview,
            },
        )
    }

    /// The stylized frame as the screen gets it (the daemon copies one only
    /// while a page asks); the camera's own picture is never served.
    fn live(&self) -> Result<Response, Response> {
        self.state.want_preview(Duration::from_secs(10));
        let f = self
            .state
            .preview_frame()
            .ok_or_else(|| Response::text(503, "no stylized frame yet"))?;
        let mut jpeg = vec![];
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode(&f.data, f.width, f.height, image::ExtendedColorType::Rgb8)
            .map_err(|e| Response::text(500, format!("cannot encode the preview: {e}")))?;
        Ok(Response::new(200, "image/jpeg", jpeg))
    }

    fn known_style(&self, name: &str) -> Result<(), Response> {
        let (_, s) = self.state.snapshot();
        if s.styles
            .iter()
            .any(|s| crate::styles::same_name(&s.name, name))
        {
            Ok(())
        } else {
            Err(Response::text(404, format!("no style named {name:?}")))
        }
    }

    fn route(&self, req: &mut Request, token: &str) -> Result<Response, Response> {
        let get = req.method == "GET";
        let post = req.method == "POST";
        match req.path.as_str() {
            "/" if get => Ok(assets::page(&pairing::csrf_for(token))),
            "/app.js" if get => Ok(Response::new(
                200,
                "text/javascript; charset=utf-8",
                assets::APP_JS,
            )),
            "/app.css" if get => Ok(Response::new(
                200,
                "text/css; charset=utf-8",
                assets::APP_CSS,
            )),
            "/api/state" if get => {
                let (v, s) = self.state.snapshot();
                Ok(self.state_json(v, &s))
            }
            "/api/events" if get => {
                let since = req.param("since").and_then(|v| v.parse().ok()).unwrap_or(0);
                let (v, s) = self.state.wait_newer(since, POLL_WAIT);
                Ok(self.state_json(v, &s))
            }
            "/api/tile" if get => {
                let name = req.param("name").unwrap_or_default();
                self.known_style(&name)?;
                match self.tiles.as_ref().and_then(|t| t.get(&name)) {
                    Some(jpeg) => Ok(Response::new(200, "image/jpeg", jpeg.to_vec())),
                    None => Err(Response::text(503, "the tile is being made")),
                }
            }
            "/api/live.jpg" if get && self.preview => self.live(),
            "/api/next" if post => self.send(Command::NextStyle),
            "/api/prev" if post => self.send(Command::PrevStyle),
            "/api/style" if post => {
                let n: Name = parse(req)?;
                self.known_style(&n.name)?;
                self.send(Command::SetStyle(n.name))
            }
            "/api/strength" if post => {
                let v: Value = parse(req)?;
                in_range("strength", v.value, STRENGTH.0, STRENGTH.1)?;
                self.send(Command::SetStrength(v.value))
            }
            "/api/morph" if post => {
                let v: Value = parse(req)?;
                in_range("morph time", v.value, MORPH_SECONDS.0, MORPH_SECONDS.1)?;
                self.send(Command::SetMorphSeconds(v.value))
            }
            "/api/gallery" if post => self.send(Command::SetGallery(parse::<On>(req)?.on)),
            "/api/screen" if post => self.send(Command::SetScreen(parse::<On>(req)?.on)),
            "/api/upload" if post => {
                let name = req.param("name").unwrap_or_default();
                // The upload (up to `remote.max_upload_mb`) moves, not copied.
                let bytes = std::mem::take(&mut req.body);
                match self.library.add(&name, bytes) {
                    Ok(_) => Ok(Response::text(201, "added")),
                    Err((code, why)) => Err(Response::text(code, why)),
                }
            }
            "/api/rename" if post => {
                let r: Rename = parse(req)?;
                self.library
                    .rename(&r.from, &r.to)
                    .map(|_| Response::text(200, "renamed"))
                    .map_err(|(c, w)| Response::text(c, w))
            }
            "/api/delete" if post => {
                let n: Name = parse(req)?;
                self.library
                    .delete(&n.name)
                    .map(|_| Response::text(200, "deleted"))
                    .map_err(|(c, w)| Response::text(c, w))
            }
            "/" | "/app.js" | "/app.css" | "/api/state" | "/api/events" | "/api/tile"
            | "/api/next" | "/api/prev" | "/api/style" | "/api/strength" | "/api/morph"
            | "/api/gallery" | "/api/screen" | "/api/upload" | "/api/rename" | "/api/delete" => {
                Err(Response::text(
                    405,
                    format!("{} is not allowed here", req.method),
                ))
            }
            _ => Err(Response::text(404, "not found")),
        }
    }
}

fn in_range(what: &str, v: f32, lo: f32, hi: f32) -> Result<(), Response> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Response::text(
            400,
            format!("{what} {v} is out of range: expected {lo} ..= {hi}"),
        ))
    }
}
