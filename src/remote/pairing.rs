//! Pairing: one long random token in the state directory. A phone that
//! opened the pairing URL (`/pair?token=...`) holds it in an HttpOnly,
//! SameSite=Strict cookie; replacing the token (`styleframe pair --reset`)
//! revokes every paired phone at once, since the token file is read on every
//! request. State-changing requests also carry a CSRF value derived from the
//! token, which only the page served to a paired browser knows. Wrong tokens
//! are counted per address and rate limited.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::RemoteConfig;

pub const TOKEN_FILE: &str = "pair-token";
pub const COOKIE: &str = "styleframe_pair";
pub const CSRF_HEADER: &str = "x-styleframe-csrf";
/// Wrong tokens allowed per address per [`FAILURE_WINDOW`]; then 429.
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Where the token, user styles and preview tiles live: `remote.state_dir`,
/// else `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else
/// /var/lib/styleframe when it exists (the packaged service's, for `sudo
/// styleframe pair`), else `$XDG_STATE_HOME/styleframe` or
/// ~/.local/state/styleframe.
pub fn state_dir(cfg: &RemoteConfig) -> PathBuf {
    if !cfg.state_dir.as_os_str().is_empty() {
        return cfg.state_dir.clone();
    }
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        // systemd may list several, separated by colons: ours is the first.
        let d = d.to_string_lossy().into_owned();
        return PathBuf::from(d.split(':').next().unwrap_or(&d));
    }
    let system = Path::new("/var/lib/styleframe");
    if system.is_dir() {
        return system.to_path_buf();
    }
    match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(x), _) if !x.is_empty() => PathBuf::from(x).join("styleframe"),
        (_, Some(h)) => PathBuf::from(h).join(".local/state/styleframe"),
        _ => system.to_path_buf(),
    }
}

fn new_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn token_path(dir: &Path) -> PathBuf {
    dir.join(TOKEN_FILE)
}

/// The token, or None when there is none yet.
pub fn read_token(dir: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(token_path(dir)) {
        Ok(t) if t.trim().len() >= 32 => Ok(Some(t.trim().to_string())),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is damaged (too short); run `styleframe pair --reset`",
                token_path(dir).display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{}: {e}", token_path(dir).display()),
        )),
    }
}

/// The daemon at start: the token, created (with its folder) the first time.
pub fn load_or_create(dir: &Path) -> io::Result<String> {
    if let Some(t) = read_token(dir)? {
        return Ok(t);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    write_token(dir)
}

/// A new token: every paired phone has to pair again.
pub fn reset(dir: &Path) -> io::Result<String> {
    write_token(dir)
}

fn write_token(dir: &Path) -> io::Result<String> {
    let token = new_token()?;
    let path = token_path(dir);
    crate::atomic::write_with(&path, |f| {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        // `sudo styleframe pair --reset` must leave a file the service's user can read.
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(dir)?;
        if f.metadata()?.uid() != owner.uid() {
            std::os::unix::fs::fchown(&*f, Some(owner.uid()), Some(owner.gid()))?;
        }
        f.write_all(format!("{token}\n").as_bytes())
    })
    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(token)
}

/// The CSRF value for a token: only a page served to a paired browser has it.
pub fn csrf_for(token: &str) -> String {
    let d = Sha256::digest(format!("styleframe-csrf:{token}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The pairing cookie's value in a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value that pairs a browser (about a year; HttpOnly: no
/// script reads it; Strict: no other site's page sends it).
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Strict")
}

/// Wrong tokens per address.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Limiter {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `ip` used up its wrong tokens for now.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.map().get(&ip).is_some_and(|&(n, since)| {
            n >= MAX_FAILURES && now.duration_since(since) < FAILURE_WINDOW
        })
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut m = self.map();
        if m.len() > 4096 {
            m.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
        }
        let e = m.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= FAILURE_WINDOW {
            *e = (0, now);
        }
        e.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_kept_and_replaced_by_reset() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("state");
        assert!(read_token(&d).unwrap().is_none());
        let t = load_or_create(&d).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(load_or_create(&d).unwrap(), t);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the token file is readable by others: {mode:o}"
        );
        let t2 = reset(&d).unwrap();
        assert_ne!(t, t2);
        assert_eq!(read_token(&d).unwrap().as_deref(), Some(t2.as_str()));
    }

    #[test]
    fn cookies_and_secrets() {
        assert_eq!(cookie_value("a=1; styleframe_pair=abc ; b=2"), Some("abc"));
        assert_eq!(cookie_value("styleframe_pairx=abc"), None);
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert!(
            set_cookie("t").contains("HttpOnly") && set_cookie("t").contains("SameSite=Strict")
        );
    }

    #[test]
    fn an_address_is_blocked_after_too_many_wrong_tokens_for_a_while() {
        let l = Limiter::default();
        let ip = IpAddr::from([10, 0, 0, 2]);
        let t = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(!l.blocked(ip, t));
            l.failed(ip, t);
        }
        assert!(l.blocked(ip, t));
        assert!(!l.blocked(IpAddr::from([10, 0, 0, 3]), t));
        assert!(!l.blocked(ip, t + FAILURE_WINDOW));
    }
}
