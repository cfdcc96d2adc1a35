//! `pair`: the address that pairs a phone with the control page, and
//! `--reset`, which revokes every paired phone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use styleframe::config::Config;
use styleframe::remote::{pair_url, pairing};

use super::{CliResult, Failure, EXIT_CONFIG};

#[derive(Args)]
pub struct PairArgs {
    /// Configuration file (default: /etc/styleframe/styleframe.toml, then config/styleframe.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Make a new token: every paired phone has to pair again.
    #[arg(long)]
    pub reset: bool,
}

pub fn pair(a: PairArgs) -> CliResult {
    let (_, cfg) = super::run::load_config(a.config.as_deref())?;
    if !cfg.remote.enabled {
        log::warn!("remote.enabled is false: the frame serves no control page until it is true");
    }
    let dir = pairing::state_dir(&cfg.remote);
    let missing = || {
        Failure {
        code: EXIT_CONFIG,
        error: anyhow::anyhow!(
            "no pairing token in {}: the frame creates it when it starts with remote.enabled = true \
             (run as the frame's user or with sudo; remote.state_dir sets the folder)",
            dir.display()
        ),
    }
    };
    if a.reset {
        if !dir.is_dir() {
            return Err(missing());
        }
        pairing::reset(&dir)?;
        println!("A new pairing token: every paired phone has to pair again.");
    }
    let token = pairing::read_token(&dir)?.ok_or_else(missing)?;
    let listen: SocketAddr = cfg.remote.listen.parse().map_err(|_| missing())?;
    println!("{}", pair_url(&listen, &token));
    Ok(ExitCode::SUCCESS)
}

/// `doctor`'s line about the control page.
pub fn doctor_line(cfg: &Config) -> String {
    if !cfg.remote.enabled {
        return "remote: disabled in the config (nothing listens)".into();
    }
    let dir = pairing::state_dir(&cfg.remote);
    let token = match pairing::read_token(&dir) {
        Ok(Some(_)) => "pairing token present".to_string(),
        Ok(None) => "no pairing token yet (made at the first start)".to_string(),
        Err(e) => e.to_string(),
    };
    format!(
        "remote: control page enabled on {} (state {}: {token}; live preview {})",
        cfg.remote.listen,
        dir.display(),
        if cfg.remote.preview { "on" } else { "off" }
    )
}
