//! Preview tiles for the page: each style's stylization of styleframe's own
//! synthetic scene, made on the device (only embeddings ship) by a worker
//! thread at a low CPU priority (nice 10), one network run per style, cached in
//! memory and in `<state dir>/previews/` under a hash of the model and the
//! embedding (so a file name never comes from a style name).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::capture::synthetic::still_scene;
use crate::config::Fit;
use crate::daemon::state::StateBoard;
use crate::inference::{Stylizer, TransferNet};
use crate::preprocess::{to_rgb8, Downsize, Preprocessor};
use crate::styles::{Embedding, StyleSet};

/// Tile size (network size: multiples of 4).
pub const TILE: usize = 160;

/// The current style sets, embeddings included (the daemon's own loader).
pub type StyleLoader = Arc<dyn Fn() -> Result<StyleSet, String> + Send + Sync>;

pub struct TileParts {
    pub transfer: PathBuf,
    pub model_id: String,
    pub dir: PathBuf,
    pub styles: StyleLoader,
    pub state: Arc<StateBoard>,
}

/// Name (lower case) -> JPEG.
#[derive(Default)]
pub struct Tiles {
    ready: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl Tiles {
    pub fn start(p: TileParts) -> std::io::Result<Arc<Tiles>> {
        let tiles = Arc::new(Tiles::default());
        let t2 = tiles.clone();
        std::thread::Builder::new()
            .name("remote-tiles".into())
            .spawn(move || worker(p, t2))?;
        Ok(tiles)
    }

    /// The tile of a style, once made.
    pub fn get(&self, name: &str) -> Option<Arc<Vec<u8>>> {
        self.map().get(&name.to_lowercase()).cloned()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u8>>>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn key(model: &str, e: &Embedding) -> String {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    for v in e.0 {
        h.update(v.to_le_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The worker yields the CPU to the frame: a low priority for this thread (at 19 it starved behind a busy frame).
fn lower_priority() {
    // SAFETY: setpriority with PRIO_PROCESS and who = 0 changes only the
    // calling thread's nice value on Linux; it reads no memory of ours.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if r != 0 {
        log::debug!("remote: tiles: cannot lower the thread's priority");
    }
}

fn worker(p: TileParts, tiles: Arc<Tiles>) {
    lower_priority();
    let dir = p.dir.join("previews");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        log::warn!(
            "remote: tiles: {}: {e}; tiles stay in memory only",
            dir.display()
        );
    }
    let mut net: Option<TransferNet> = None;
    let mut scene = vec![];
    let mut seen = 0;
    let mut names: Vec<String> = vec![];
    // Ends with the page (then only this thread holds the tiles).
    while Arc::strong_count(&tiles) > 1 {
        let (v, s) = p.state.wait_newer(seen, Duration::from_secs(5));
        let now: Vec<String> = s.styles.iter().map(|s| s.name.clone()).collect();
        seen = v;
        if now == names || now.is_empty() {
            continue;
        }
        names = now;
        let set = match (p.styles)() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("remote: tiles: {e}");
                continue;
            }
        };
        // A tile already made (or renamed: same embedding) is a file read.
        for style in &set.styles {
            match tile(&p, &dir, &mut net, &mut scene, &style.embedding) {
                Ok(jpeg) => {
                    tiles
                        .map()
                        .insert(style.name.to_lowercase(), Arc::new(jpeg));
                }
                Err(e) => {
                    log::warn!("remote: tiles: {}: {e}", style.name);
                    break;
                }
            }
        }
    }
}

fn tile(
    p: &TileParts,
    dir: &std::path::Path,
    net: &mut Option<TransferNet>,
    scene: &mut Vec<f32>,
    e: &Embedding,
) -> Result<Vec<u8>, String> {
    let file = dir.join(format!("{}.jpg", key(&p.model_id, e)));
    if let Ok(b) = std::fs::read(&file) {
        return Ok(b);
    }
    if scene.is_empty() {
        Preprocessor::new(Fit::Cover)
            .downsize(&still_scene(320, 320), TILE, TILE, scene)
            .map_err(|e| e.to_string())?;
    }
    let net = match net {
        Some(n) => n,
        None => net.insert(
            TransferNet::load(&p.transfer, TILE, TILE, &crate::process::pool(1))
                .map_err(|e| e.to_string())?,
        ),
    };
    let mut y = vec![];
    net.stylize(scene, e, &mut y).map_err(|e| e.to_string())?;
    let mut rgb = vec![];
    to_rgb8(&y, &mut rgb);
    let mut jpeg = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode(
            &rgb,
            TILE as u32,
            TILE as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| e.to_string())?;
    if let Err(e) = crate::atomic::write(&file, &jpeg) {
        log::debug!("remote: tiles: {}: {e}", file.display());
    }
    Ok(jpeg)
}
