//! The control page (issue #12): a phone on the LAN pairs with the frame and
//! steers it (styles, strength, morph time, gallery, screen), sees what it
//! does, and adds its own paintings as styles. Nothing listens unless
//! `remote.enabled`. Everything here runs on its own threads and talks to
//! the daemon only through the command channel and the [`StateBoard`], so
//! the frame never waits on the network.
//!
//! One module per concern: [`server`] (HTTP, limits, time-outs), [`pairing`]
//! (token, cookie, CSRF, rate limit), [`api`] (routes), [`assets`] (the page),
//! [`previews`] (style tiles), [`uploads`] (the user style file).

pub mod api;
pub mod assets;
pub mod pairing;
pub mod previews;
pub mod server;
pub mod uploads;

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::config::Config;
use crate::daemon::state::StateBoard;
use crate::frame::Command;

pub use previews::StyleLoader;

/// The user style file in the state directory when `styles.user_file` is unset.
pub const USER_STYLES: &str = "user-styles.json";

/// What the control page needs from the daemon.
pub struct RemoteParts {
    pub commands: Sender<Command>,
    pub state: Arc<StateBoard>,
    /// Transfer network file (preview tiles; none: no tiles).
    pub transfer: Option<PathBuf>,
    /// Prediction network file (uploads; none: uploads answer 503).
    pub predict: Option<PathBuf>,
    /// The current style sets with their embeddings.
    pub styles: StyleLoader,
}

/// The running control page; dropping it stops listening.
pub struct Remote {
    server: server::Server,
    _tiles: Option<Arc<previews::Tiles>>,
}

/// Where uploads go: `styles.user_file`, else (with remote enabled) the
/// state directory's user-styles.json (read as empty while it does not exist).
pub fn user_style_file(cfg: &Config) -> Option<PathBuf> {
    cfg.styles.user_file.clone().or_else(|| {
        cfg.remote
            .enabled
            .then(|| pairing::state_dir(&cfg.remote).join(USER_STYLES))
    })
}

impl Remote {
    /// Creates the pairing token if needed and starts listening on `remote.listen`.
    pub fn start(cfg: &Config, p: RemoteParts) -> io::Result<Remote> {
        let dir = pairing::state_dir(&cfg.remote);
        pairing::load_or_create(&dir)?;
        let listener = TcpListener::bind(&cfg.remote.listen).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("remote.listen {}: {e}", cfg.remote.listen),
            )
        })?;
        let tiles = match &p.transfer {
            Some(t) => Some(previews::Tiles::start(previews::TileParts {
                transfer: t.clone(),
                model_id: cfg.models.transfer.clone(),
                dir: dir.clone(),
                styles: p.styles.clone(),
                state: p.state.clone(),
            })?),
            None => None,
        };
        let library = uploads::Library::start(uploads::LibraryParts {
            file: user_style_file(cfg),
            predict: p.predict.clone(),
            predict_id: cfg.models.predict.clone(),
            commands: p.commands.clone(),
            state: p.state.clone(),
        })?;
        let api = api::Api {
            state_dir: dir,
            limiter: Default::default(),
            commands: p.commands,
            state: p.state,
            library,
            tiles: tiles.clone(),
            max_upload: cfg.remote.max_upload_mb as usize * 1024 * 1024,
            preview: cfg.remote.preview,
        };
        let limits = server::Limits {
            max_connections: cfg.remote.max_connections as usize,
            ..Default::default()
        };
        let server = server::Server::start(listener, Arc::new(api), limits)?;
        log::info!(
            "remote: control page on http://{} (`styleframe pair` prints the pairing address)",
            server.addr()
        );
        Ok(Remote {
            server,
            _tiles: tiles,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

/// The address a phone on the LAN can reach: the listen address, or when
/// that is "any", the address of the interface the default route uses (no
/// packet is sent: connecting a UDP socket only picks the route).
pub fn reachable_ip(listen: &SocketAddr) -> IpAddr {
    if !listen.ip().is_unspecified() {
        return listen.ip();
    }
    let probe = || -> io::Result<IpAddr> {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.connect("192.0.2.1:9")?;
        Ok(s.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The pairing address for `token`.
pub fn pair_url(listen: &SocketAddr, token: &str) -> String {
    let ip = reachable_ip(listen);
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    format!("http://{host}:{}/pair?token={token}", listen.port())
}
