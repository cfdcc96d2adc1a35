//! The user's own paintings from the phone: one worker thread, off the frame
//! path, decodes an upload (limits, EXIF orientation), computes its embedding
//! with the prediction network, writes the user style file atomically, then
//! asks the daemon to reload and show it. Renames and deletes go through the
//! same worker, so the file has one writer. Shipped styles are never touched.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Fit;
use crate::daemon::state::StateBoard;
use crate::frame::Command;
use crate::inference::{PredictNet, PREDICT_SIDE};
use crate::preprocess::{decode_rgb, fit_image};
use crate::styles::{Style, StyleSet};

pub const MAX_NAME_CHARS: usize = 40;

/// A refusal: the HTTP status and why.
pub type Refusal = (u16, String);

/// Checks a style name from the phone: trimmed, 1 to 40 characters, starting
/// with a letter or digit, letters, digits, spaces and `-_'.,&()!` only (no
/// slashes, control characters or dot-names: names never become paths, but
/// they appear in logs and pages).
pub fn check_name(raw: &str) -> Result<String, Refusal> {
    let name = raw.trim();
    let bad = |why: &str| Err((400, format!("style name {name:?}: {why}")));
    if name.is_empty() {
        return bad("empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad(&format!("longer than {MAX_NAME_CHARS} characters"));
    }
    if !name.chars().next().is_some_and(char::is_alphanumeric) {
        return bad("must start with a letter or a digit");
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_alphanumeric() || " -_'.,&()!".contains(c)))
    {
        return bad(&format!(
            "{c:?} is not allowed (letters, digits, spaces and -_'.,&()! are)"
        ));
    }
    Ok(name.to_string())
}

enum Job {
    Add { name: String, bytes: Vec<u8> },
    Rename { from: String, to: String },
    Delete { name: String },
}

type Reply = SyncSender<Result<String, Refusal>>;

/// The user style file and its one writer.
pub struct Library {
    file: Option<PathBuf>,
    jobs: Mutex<Sender<(Job, Reply)>>,
}

/// What the worker needs.
pub struct LibraryParts {
    /// The user style file (None: uploads are refused with a hint).
    pub file: Option<PathBuf>,
    /// The prediction network's file and id (for a new set's `model`).
    pub predict: Option<PathBuf>,
    pub predict_id: String,
    pub commands: Sender<Command>,
    pub state: Arc<StateBoard>,
}

impl Library {
    pub fn start(p: LibraryParts) -> std::io::Result<Library> {
        let (tx, rx) = mpsc::channel();
        let file = p.file.clone();
        std::thread::Builder::new()
            .name("remote-styles".into())
            .spawn(move || worker(p, rx))?;
        Ok(Library {
            file,
            jobs: Mutex::new(tx),
        })
    }

    /// Names in the user style file (the ones the page may rename or delete).
    pub fn user_names(&self) -> Vec<String> {
        match &self.file {
            Some(f) => load_user(f, "")
                .map(|s| s.styles.into_iter().map(|s| s.name).collect())
                .unwrap_or_default(),
            None => vec![],
        }
    }

    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    fn run(&self, job: Job) -> Result<String, Refusal> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((job, rtx));
        if sent.is_err() {
            return Err((503, "the style worker has stopped".into()));
        }
        rrx.recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| Err((503, "the style worker did not answer".into())))
    }

    pub fn add(&self, name: &str, bytes: Vec<u8>) -> Result<String, Refusal> {
        let name = check_name(name)?;
        self.run(Job::Add { name, bytes })
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<String, Refusal> {
        let to = check_name(to)?;
        self.run(Job::Rename {
            from: from.to_string(),
            to,
        })
    }

    pub fn delete(&self, name: &str) -> Result<String, Refusal> {
        self.run(Job::Delete {
            name: name.to_string(),
        })
    }
}

/// The user set, empty when the file does not exist yet.
fn load_user(file: &Path, model: &str) -> Result<StyleSet, Refusal> {
    if !file.exists() {
        return Ok(StyleSet::new(model));
    }
    StyleSet::load(file).map_err(|e| (500, e.to_string()))
}

/// Through [`StyleSet::save`]: checked (a set that would not load is never
/// written) and atomic.
fn save_user(file: &Path, set: &StyleSet) -> Result<(), Refusal> {
    set.save(file).map_err(|e| (500, e.to_string()))
}

struct Worker {
    p: LibraryParts,
    net: Option<PredictNet>,
}

fn worker(p: LibraryParts, rx: Receiver<(Job, Reply)>) {
    let mut w = Worker { p, net: None };
    for (job, reply) in rx {
        let r = w.run(job);
        if let Err((code, why)) = &r {
            log::warn!("remote: styles: refused ({code}): {why}");
        }
        let _ = reply.send(r);
    }
}

impl Worker {
    fn run(&mut self, job: Job) -> Result<String, Refusal> {
        let file = self.p.file.clone().ok_or((
            409,
            "no user style file: set styles.user_file (or enable remote with a writable state directory)".to_string(),
        ))?;
        let mut set = load_user(&file, &self.p.predict_id)?;
        let (_, shown) = self.p.state.snapshot();
        let taken = |n: &str| {
            shown
                .styles
                .iter()
                .any(|s| crate::styles::same_name(&s.name, n))
                || set
                    .styles
                    .iter()
                    .any(|s| crate::styles::same_name(&s.name, n))
        };
        let mine = |set: &StyleSet, n: &str| {
            set.styles
                .iter()
                .position(|s| crate::styles::same_name(&s.name, n))
        };
        let show = match job {
            Job::Add { name, bytes } => {
                if taken(&name) {
                    return Err((409, format!("a style named {name:?} exists already")));
                }
                let embedding = self.embed(&name, &bytes)?;
                set.upsert(Style {
                    name: name.clone(),
                    title: name.clone(),
                    artist: String::new(),
                    source: "uploaded from the control page".into(),
                    embedding,
                });
                log::info!("remote: added the style {name:?}");
                Some(name)
            }
            Job::Rename { from, to } => {
                let i = mine(&set, &from).ok_or_else(|| not_mine(&shown, &from))?;
                if !to.eq_ignore_ascii_case(&from) && taken(&to) {
                    return Err((409, format!("a style named {to:?} exists already")));
                }
                let was_shown = shown.style.eq_ignore_ascii_case(&from);
                set.styles[i].name = to.clone();
                log::info!("remote: renamed the style {from:?} to {to:?}");
                was_shown.then_some(to)
            }
            Job::Delete { name } => {
                let i = mine(&set, &name).ok_or_else(|| not_mine(&shown, &name))?;
                set.styles.remove(i);
                log::info!("remote: deleted the style {name:?}");
                None
            }
        };
        save_user(&file, &set)?;
        self.apply(show);
        Ok(file.display().to_string())
    }

    /// Reloads the style sets; strength and morph time as the page left them.
    fn apply(&self, show: Option<String>) {
        let (_, now) = self.p.state.snapshot();
        let c = &self.p.commands;
        let _ = c.send(Command::ReloadConfig);
        let _ = c.send(Command::SetStrength(now.strength));
        let _ = c.send(Command::SetMorphSeconds(now.morph_seconds));
        if let Some(name) = show {
            let _ = c.send(Command::SetStyle(name));
        }
    }

    fn embed(&mut self, name: &str, bytes: &[u8]) -> Result<crate::styles::Embedding, Refusal> {
        let what = PathBuf::from(format!("upload {name:?}"));
        let img = decode_rgb(bytes, &what).map_err(|e| (422, e.to_string()))?;
        let x = fit_image(&img, PREDICT_SIDE, PREDICT_SIDE, Fit::Cover)
            .map_err(|e| (422, e.to_string()))?;
        let net = match &mut self.net {
            Some(n) => n,
            None => {
                let path = self
                    .p
                    .predict
                    .as_ref()
                    .ok_or((503, "the prediction network is not installed".to_string()))?;
                let n = PredictNet::load(path, &crate::process::pool(1))
                    .map_err(|e| (503, e.to_string()))?;
                self.net.insert(n)
            }
        };
        net.embed(&x).map_err(|e| (500, e.to_string()))
    }
}

fn not_mine(shown: &crate::daemon::state::FrameState, name: &str) -> Refusal {
    if shown
        .styles
        .iter()
        .any(|s| s.name.eq_ignore_ascii_case(name))
    {
        (
            403,
            format!("{name:?} is a shipped style: it cannot be renamed or deleted"),
        )
    } else {
        (404, format!("no style named {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  Sunflowers 2 ").unwrap(), "Sunflowers 2");
        assert_eq!(check_name("Café (détail)").unwrap(), "Café (détail)");
        for bad in [
            "",
            "   ",
            "../etc/passwd",
            "a/b",
            "a\\b",
            ".hidden",
            "a\nb",
            "a\0b",
            "<script>",
        ] {
            assert_eq!(check_name(bad).unwrap_err().0, 400, "{bad:?} was accepted");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
