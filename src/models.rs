//! Model files: the manifest (`models/manifest.toml`, also built into the
//! binary), sha256 checks, and `models fetch` from a local mirror directory
//! or the official URLs.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The manifest shipped in `models/`, built in so the binary needs no file.
pub const BUILTIN_MANIFEST: &str = include_str!("../models/manifest.toml");

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    /// "predict" or "transfer".
    pub role: String,
    pub file: String,
    pub url: String,
    pub sha256: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: Vec<ModelEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model {id:?}; the manifest lists: {known}")]
    Unknown { id: String, known: String },
    #[error("model file {path} is missing. Run `styleframe models fetch` (or `styleframe models fetch --from DIR` with a folder holding the .tflite files)")]
    Missing { path: PathBuf },
    #[error("model file {path}: sha256 is {actual}, expected {expected}: the file is damaged or not the official one. Run `styleframe models fetch` to reinstall it")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("downloading {url}: {message}")]
    Download { url: String, message: String },
    /// `--from` / `STYLEFRAME_MODEL_MIRROR` names no folder: said, rather
    /// than going to the network instead.
    #[error("model mirror {path} is not a folder (given with --from or STYLEFRAME_MODEL_MIRROR)")]
    NoMirror { path: PathBuf },
    #[error("manifest: {0}")]
    Manifest(String),
}

impl Manifest {
    pub fn builtin() -> Manifest {
        Manifest::parse(BUILTIN_MANIFEST).expect("the built-in manifest is checked by a test")
    }

    pub fn parse(text: &str) -> Result<Manifest, ModelError> {
        toml::from_str(text).map_err(|e| ModelError::Manifest(e.to_string()))
    }

    pub fn get(&self, id: &str) -> Result<&ModelEntry, ModelError> {
        self.model
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| ModelError::Unknown {
                id: id.into(),
                known: self
                    .model
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Path of model `id` in `dir`, checked: present and with the right sha256.
    pub fn verified_path(&self, id: &str, dir: &Path) -> Result<PathBuf, ModelError> {
        let m = self.get(id)?;
        let path = dir.join(&m.file);
        check_file(&path, &m.sha256)?;
        Ok(path)
    }
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |source| ModelError::Io {
        path: path.into(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks presence and checksum of one file.
pub fn check_file(path: &Path, expected: &str) -> Result<(), ModelError> {
    if !path.is_file() {
        return Err(ModelError::Missing { path: path.into() });
    }
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(ModelError::Checksum {
            path: path.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// Where one model file came from during `fetch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    AlreadyThere,
    FromMirror(PathBuf),
    Downloaded(String),
}

/// Installs the manifest's files into `dest`: kept when already right, else
/// copied from `mirror` when it has a file with the right checksum, else
/// downloaded from the official URL. Every file is checked before it is
/// moved into place, so a failed fetch never leaves a bad model behind.
/// `progress` is told each file's id and where it came from.
pub fn fetch(
    manifest: &Manifest,
    dest: &Path,
    mirror: Option<&Path>,
    include_optional: bool,
    mut progress: impl FnMut(&ModelEntry, &Fetched),
) -> Result<Vec<Fetched>, ModelError> {
    if let Some(m) = mirror.filter(|m| !m.is_dir()) {
        return Err(ModelError::NoMirror { path: m.into() });
    }
    std::fs::create_dir_all(dest).map_err(|source| ModelError::Io {
        path: dest.into(),
        source,
    })?;
    let mut done = vec![];
    for m in manifest
        .model
        .iter()
        .filter(|m| include_optional || !m.optional)
    {
        let target = dest.join(&m.file);
        let how = if check_file(&target, &m.sha256).is_ok() {
            Fetched::AlreadyThere
        } else if let Some(src) = mirror.map(|d| d.join(&m.file)).filter(|p| p.is_file()) {
            check_file(&src, &m.sha256)?;
            let data = std::fs::read(&src).map_err(|source| ModelError::Io {
                path: src.clone(),
                source,
            })?;
            write_atomically(&target, &data, &m.sha256)?;
            Fetched::FromMirror(src)
        } else {
            if let Some(dir) = mirror {
                log::warn!(
                    "{}: not in the mirror {}; downloading it from {}",
                    m.file,
                    dir.display(),
                    m.url
                );
            }
            let data = download(&m.url)?;
            write_atomically(&target, &data, &m.sha256).map_err(|e| match e {
                ModelError::Checksum {
                    expected, actual, ..
                } => ModelError::Download {
                    url: m.url.clone(),
                    message: format!("sha256 is {actual}, expected {expected}"),
                },
                e => e,
            })?;
            Fetched::Downloaded(m.url.clone())
        };
        progress(m, &how);
        done.push(how);
    }
    Ok(done)
}

fn write_atomically(target: &Path, data: &[u8], sha256: &str) -> Result<(), ModelError> {
    let actual = hex(&Sha256::digest(data));
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(ModelError::Checksum {
            path: target.into(),
            expected: sha256.into(),
            actual,
        });
    }
    crate::atomic::write(target, data).map_err(|source| ModelError::Io {
        path: target.into(),
        source,
    })
}

/// Largest model file we accept from the network (the biggest is ~3 MB).
const MAX_DOWNLOAD: u64 = 64 * 1024 * 1024;

fn download(url: &str) -> Result<Vec<u8>, ModelError> {
    let err = |message: String| ModelError::Download {
        url: url.into(),
        message,
    };
    let resp = ureq::get(url)
        .timeout(std::time::Duration::from_secs(120))
        .call()
        .map_err(|e| err(without_url(&e)))?;
    let mut data = vec![];
    resp.into_reader()
        .take(MAX_DOWNLOAD)
        .read_to_end(&mut data)
        .map_err(|e| err(e.to_string()))?;
    Ok(data)
}

/// ureq's error without the URL it puts in front (ours names it already).
fn without_url(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, _) => format!("HTTP status {code}"),
        ureq::Error::Transport(t) => {
            let mut text = t.kind().to_string();
            if let Some(m) = t.message() {
                text += &format!(": {m}");
            }
            if let Some(source) = std::error::Error::source(t) {
                text += &format!(": {source}");
            }
            text
        }
    }
}

/// Where to look for the model files: the folder given, else
/// `$STYLEFRAME_MODELS`, `./models`, `<exe>/../share/styleframe/models`,
/// `/usr/share/styleframe/models`: the first that has `file`.
pub fn find_dir(explicit: Option<&Path>, file: &str) -> PathBuf {
    if let Some(d) = explicit {
        return d.to_owned();
    }
    let mut candidates: Vec<PathBuf> = vec![];
    if let Some(d) = std::env::var_os("STYLEFRAME_MODELS") {
        candidates.push(d.into());
    }
    candidates.push("models".into());
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        candidates.push(exe_dir.join("../share/styleframe/models"));
    }
    candidates.push("/usr/share/styleframe/models".into());
    candidates
        .iter()
        .find(|d| d.join(file).is_file())
        .cloned()
        .unwrap_or_else(|| candidates[0].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_lists_both_roles() {
        let m = Manifest::builtin();
        assert!(m.model.iter().any(|e| e.role == "predict"));
        assert!(m.model.iter().any(|e| e.role == "transfer"));
        for e in &m.model {
            assert_eq!(e.sha256.len(), 64, "{}", e.id);
            assert!(e.url.starts_with("https://"), "{}", e.id);
        }
    }

    #[test]
    fn unknown_model_lists_known_ones() {
        let err = Manifest::builtin().get("nope").unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("style_transfer_f16_384"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_download_names_its_url_once() {
        // Port 1 on the loopback: refused at once, no network needed.
        let url = "http://127.0.0.1:1/style_predict.tflite";
        let err = download(url).unwrap_err().to_string();
        assert_eq!(err.matches(url).count(), 1, "{err}");
        assert!(err.contains("Connection Failed"), "{err}");
    }

    #[test]
    fn a_mirror_that_is_not_a_folder_is_an_error_not_a_download() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nonexistent");
        let err = fetch(
            &Manifest::builtin(),
            &dir.path().join("models"),
            Some(&missing),
            false,
            |_, _| {},
        )
        .unwrap_err();
        assert!(matches!(err, ModelError::NoMirror { .. }), "{err}");
        assert!(err.to_string().contains("nonexistent"), "{err}");
    }

    #[test]
    fn missing_and_wrong_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.tflite");
        let err = check_file(&p, "00").unwrap_err().to_string();
        assert!(
            err.contains("m.tflite") && err.contains("models fetch"),
            "{err}"
        );
        std::fs::write(&p, b"garbage").unwrap();
        let err = check_file(&p, &"0".repeat(64)).unwrap_err().to_string();
        assert!(
            err.contains("m.tflite") && err.contains(&"0".repeat(64)),
            "{err}"
        );
    }
}
