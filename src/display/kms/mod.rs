//! KMS/DRM backend: the screen driven directly through `/dev/dri/cardN`, as on
//! a Pi under `vc4-kms-v3d` (Pi OS Lite), without a desktop.
//!
//! Two dumb buffers (XRGB8888, mapped once): each picture is written into the
//! one not on screen, then a page flip swaps them at the next vblank, so there
//! is no tearing and cross-fades are paced by the display. `set_power` turns
//! the connector off through its DPMS property. On drop the CRTC gets back what
//! it showed before (the text console), and the buffers are freed.
//!
//! Card, connector and mode come from [`select`], which probes every card
//! unless `display.card`/`display.connector`/`display.mode` say otherwise.

pub mod select;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use drm::buffer::{Buffer, DrmFourcc};
use drm::control::dumbbuffer::DumbBuffer;
use drm::control::{
    connector, crtc, framebuffer, property, Device as ControlDevice, Event, Mode, ModeTypeFlags,
    PageFlipFlags,
};
use drm::{Device, DriverCapability};
use memmap2::{MmapMut, MmapOptions};

use crate::config::DisplayConfig;
use crate::frame::Command;

pub use select::{CardInfo, Choice, ConnectorInfo, DrmProbe, ModeInfo, NoScreen, Wanted};

use super::{check_size, DisplayError, PowerMode, Screen};

/// How long `present` waits for the previous flip before assuming its event was lost.
const FLIP_TIMEOUT_MS: i32 = 200;
/// `DRM_MODE_DPMS_ON` / `DRM_MODE_DPMS_OFF` (drm_mode.h).
const DPMS_ON: u64 = 0;
const DPMS_OFF: u64 = 3;

/// An open DRM card node.
struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl Device for Card {}
impl ControlDevice for Card {}

impl Card {
    fn open(path: &Path) -> io::Result<Card> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(Card)
    }
}

/// The machine's real cards under `/dev/dri`.
pub struct SysProbe;

impl DrmProbe for SysProbe {
    fn cards(&self) -> Vec<PathBuf> {
        let mut cards: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev/dri")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let n = name.strip_prefix("card")?.parse().ok()?;
                        Some((n, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        cards.sort();
        cards.into_iter().map(|(_, p)| p).collect()
    }

    fn probe(&self, path: &Path) -> io::Result<CardInfo> {
        let card = Card::open(path)?;
        let driver = card
            .get_driver()
            .map(|d| d.name().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown driver".into());
        let dumb_buffers = card
            .get_driver_capability(DriverCapability::DumbBuffer)
            .is_ok_and(|v| v != 0);
        // Render-only cards have no mode-setting resources: no connectors.
        let connectors = match card.resource_handles() {
            Ok(res) => res
                .connectors()
                .iter()
                .filter_map(|&h| card.get_connector(h, true).ok())
                .map(|c| connector_info(&c))
                .collect(),
            Err(_) => vec![],
        };
        Ok(CardInfo {
            path: path.to_path_buf(),
            driver,
            dumb_buffers,
            connectors,
        })
    }
}

fn connector_info(c: &connector::Info) -> ConnectorInfo {
    ConnectorInfo {
        name: c.to_string(),
        connected: c.state() == connector::State::Connected,
        modes: c.modes().iter().map(mode_info).collect(),
    }
}

fn mode_info(m: &Mode) -> ModeInfo {
    let (w, h) = m.size();
    ModeInfo {
        width: w.into(),
        height: h.into(),
        refresh: m.vrefresh(),
        preferred: m.mode_type().contains(ModeTypeFlags::PREFERRED),
    }
}

/// Every card with its connectors, for `doctor`: (card, what was read or the error).
pub fn list_cards() -> Vec<(PathBuf, io::Result<CardInfo>)> {
    let probe = SysProbe;
    probe
        .cards()
        .into_iter()
        .map(|p| {
            let info = probe.probe(&p);
            (p, info)
        })
        .collect()
}

/// Whether `auto` can use KMS: some card has dumb buffers and a connected screen.
pub fn usable(cfg: &DisplayConfig) -> Result<Choice, NoScreen> {
    select::select(&SysProbe, &wanted(cfg))
}

fn wanted(cfg: &DisplayConfig) -> Wanted {
    Wanted {
        card: cfg.card.clone(),
        connector: cfg.connector.clone(),
        mode: cfg.mode.clone(),
    }
}

/// One scan-out buffer: the dumb buffer, its framebuffer object and its mapping.
struct ScanBuf {
    dumb: DumbBuffer,
    fb: framebuffer::Handle,
    map: MmapMut,
    pitch: usize,
}

pub struct KmsScreen {
    card: Card,
    path: PathBuf,
    conn: connector::Handle,
    conn_name: String,
    crtc: crtc::Handle,
    mode: Mode,
    bufs: Vec<ScanBuf>,
    /// Index of the buffer on screen (or queued to be).
    front: usize,
    flip_pending: bool,
    /// What the CRTC showed before us, restored on drop.
    saved: Option<crtc::Info>,
    dpms: Option<property::Handle>,
    power_on: bool,
    /// Log the first picture after powering on (the lab test waits for it).
    announce_next: bool,
    width: usize,
    height: usize,
}

fn kms_err(path: &Path, message: impl Into<String>) -> DisplayError {
    DisplayError::Kms {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The error for a refused modeset: someone else (a desktop) is DRM master.
fn master_err(path: &Path, e: &io::Error) -> DisplayError {
    kms_err(
        path,
        format!(
            "another program holds DRM master ({e}): a desktop session is running. \
             Inside the desktop use display.backend = \"window\" (the kiosk user unit); \
             for a console-only frame stop the desktop (raspi-config: boot to console)"
        ),
    )
}

impl KmsScreen {
    pub fn open(cfg: &DisplayConfig) -> Result<Self, DisplayError> {
        let choice = select::select(&SysProbe, &wanted(cfg)).map_err(|e| {
            let path = PathBuf::from(if cfg.card.is_empty() {
                "/dev/dri"
            } else {
                &cfg.card
            });
            kms_err(&path, e.to_string())
        })?;
        let path = choice.card.clone();
        let card = Card::open(&path).map_err(|e| kms_err(&path, format!("cannot open: {e}")))?;
        // The first opener becomes master by itself; asking again is a no-op then,
        // and fails only when another program holds it.
        card.acquire_master_lock()
            .map_err(|e| master_err(&path, &e))?;
        let (conn, crtc, mode) = find_output(&card, &path, &choice)?;
        let saved = card.get_crtc(crtc).ok();
        let (w, h) = mode.size();
        let (width, height) = (w as usize, h as usize);
        let mut bufs = Vec::with_capacity(2);
        for _ in 0..2 {
            bufs.push(create_buf(&card, &path, width, height)?);
        }
        let dpms = find_property(&card, conn, "DPMS");
        let mut screen = KmsScreen {
            card,
            path,
            conn,
            conn_name: choice.connector.clone(),
            crtc,
            mode,
            bufs,
            front: 0,
            flip_pending: false,
            saved,
            dpms,
            power_on: true,
            announce_next: false,
            width,
            height,
        };
        screen.modeset()?;
        log::info!(
            "kms {} ({}): {} {}, double-buffered page flips{}",
            screen.path.display(),
            choice.driver,
            choice.connector,
            choice.mode,
            if screen.dpms.is_some() { ", DPMS" } else { "" }
        );
        Ok(screen)
    }

    /// The connector and mode, on the front buffer.
    fn modeset(&mut self) -> Result<(), DisplayError> {
        let fb = self.bufs[self.front].fb;
        self.card
            .set_crtc(self.crtc, Some(fb), (0, 0), &[self.conn], Some(self.mode))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => master_err(&self.path, &e),
                _ => kms_err(
                    &self.path,
                    format!("cannot set mode on {}: {e}", self.conn_name),
                ),
            })
    }

    /// Waits for the queued flip to happen, so its old buffer is free to draw in.
    fn wait_flip(&mut self) -> Result<(), DisplayError> {
        while self.flip_pending {
            let mut fds = [libc::pollfd {
                fd: self.card.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: one valid pollfd, its length passed with it.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, FLIP_TIMEOUT_MS) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(kms_err(&self.path, format!("waiting for vblank: {e}")));
            }
            if n == 0 {
                log::warn!(
                    "{}: no page-flip event within {FLIP_TIMEOUT_MS} ms; going on",
                    self.path.display()
                );
                self.flip_pending = false;
                break;
            }
            let events = self
                .card
                .receive_events()
                .map_err(|e| kms_err(&self.path, format!("reading DRM events: {e}")))?;
            for ev in events {
                if matches!(ev, Event::PageFlip(_)) {
                    self.flip_pending = false;
                }
            }
        }
        Ok(())
    }

    /// Writes a picture (or black) into the back buffer and flips to it at the next vblank.
    fn show(&mut self, pixels: Option<&[u32]>) -> Result<(), DisplayError> {
        self.wait_flip()?;
        let back = 1 - self.front;
        let (w, h) = (self.width, self.height);
        let buf = &mut self.bufs[back];
        for y in 0..h {
            let row = &mut buf.map[y * buf.pitch..y * buf.pitch + w * 4];
            match pixels {
                Some(p) => {
                    for (d, &s) in row.chunks_exact_mut(4).zip(&p[y * w..(y + 1) * w]) {
                        d.copy_from_slice(&(s & 0x00FF_FFFF).to_le_bytes());
                    }
                }
                None => row.fill(0),
            }
        }
        let fb = buf.fb;
        match self
            .card
            .page_flip(self.crtc, fb, PageFlipFlags::EVENT, None)
        {
            Ok(()) => {
                self.flip_pending = true;
                self.front = back;
                Ok(())
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => Err(DisplayError::Gone {
                    message: format!(
                        "{}: lost DRM master (another program took the screen): {e}",
                        self.path.display()
                    ),
                }),
                Some(libc::ENODEV) => Err(DisplayError::Gone {
                    message: format!("{}: the card went away: {e}", self.path.display()),
                }),
                // E.g. the CRTC was turned off behind our back: set the mode again.
                _ => {
                    log::warn!(
                        "{}: page flip failed ({e}); setting the mode again",
                        self.path.display()
                    );
                    self.front = back;
                    self.modeset()
                }
            },
        }
    }

    fn set_dpms(&mut self, on: bool) -> io::Result<()> {
        let prop = self
            .dpms
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no DPMS property"))?;
        self.card
            .set_property(self.conn, prop, if on { DPMS_ON } else { DPMS_OFF })
    }
}

fn find_output(
    card: &Card,
    path: &Path,
    choice: &Choice,
) -> Result<(connector::Handle, crtc::Handle, Mode), DisplayError> {
    let res = card
        .resource_handles()
        .map_err(|e| kms_err(path, format!("cannot read its resources: {e}")))?;
    let info = res
        .connectors()
        .iter()
        .filter_map(|&h| card.get_connector(h, false).ok())
        .find(|c| c.to_string() == choice.connector)
        .ok_or_else(|| kms_err(path, format!("connector {} went away", choice.connector)))?;
    let mode = *info
        .modes()
        .iter()
        .find(|m| mode_info(m) == choice.mode)
        .ok_or_else(|| kms_err(path, format!("mode {} went away", choice.mode)))?;
    let current = info
        .current_encoder()
        .and_then(|e| card.get_encoder(e).ok())
        .and_then(|e| e.crtc());
    let crtc = current
        .or_else(|| {
            info.encoders()
                .iter()
                .filter_map(|&e| card.get_encoder(e).ok())
                .find_map(|e| res.filter_crtcs(e.possible_crtcs()).first().copied())
        })
        .ok_or_else(|| kms_err(path, format!("no CRTC can drive {}", choice.connector)))?;
    Ok((info.handle(), crtc, mode))
}

fn create_buf(card: &Card, path: &Path, w: usize, h: usize) -> Result<ScanBuf, DisplayError> {
    let err = |what: &str, e: io::Error| kms_err(path, format!("{what} ({w}x{h}): {e}"));
    let dumb = card
        .create_dumb_buffer((w as u32, h as u32), DrmFourcc::Xrgb8888, 32)
        .map_err(|e| err("cannot create a dumb buffer", e))?;
    let fb = card
        .add_framebuffer(&dumb, 24, 32)
        .map_err(|e| err("cannot add a framebuffer", e))?;
    let offset = drm_ffi::mode::dumbbuffer::map(card.as_fd(), dumb.handle().into(), 0, 0)
        .map_err(|e| err("cannot map a dumb buffer", e))?
        .offset;
    let pitch = dumb.pitch() as usize;
    // SAFETY: the kernel gave this offset for this buffer on this fd, and the
    // length (pitch * height) lies within the buffer it allocated; only this
    // screen writes to the mapping.
    let mut map = unsafe {
        MmapOptions::new()
            .offset(offset)
            .len(pitch * h)
            .map_mut(&card.0)
    }
    .map_err(|e| err("cannot mmap a dumb buffer", e))?;
    map.fill(0);
    Ok(ScanBuf {
        dumb,
        fb,
        map,
        pitch,
    })
}

fn find_property(card: &Card, conn: connector::Handle, name: &str) -> Option<property::Handle> {
    let props = card.get_properties(conn).ok()?;
    let (handles, _) = props.as_props_and_values();
    handles.iter().copied().find(|&h| {
        card.get_property(h)
            .is_ok_and(|p| p.name().to_bytes() == name.as_bytes())
    })
}

impl Screen for KmsScreen {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn present(&mut self, pixels: &[u32]) -> Result<(), DisplayError> {
        check_size(pixels, self.width, self.height)?;
        if !self.power_on {
            // Powered down: nothing would be seen, and flips on an off CRTC fail.
            return Ok(());
        }
        self.show(Some(pixels))?;
        if std::mem::take(&mut self.announce_next) {
            log::info!("{}: first picture after powering on", self.path.display());
        }
        Ok(())
    }

    fn blank(&mut self) -> Result<(), DisplayError> {
        if !self.power_on {
            return Ok(());
        }
        self.show(None)
    }

    fn set_power(&mut self, on: bool) -> Result<PowerMode, DisplayError> {
        if on == self.power_on {
            return Ok(if on { PowerMode::On } else { PowerMode::Off });
        }
        self.wait_flip()?;
        match self.set_dpms(on) {
            Ok(()) => {
                self.power_on = on;
                log::info!(
                    "{}: {} powered {}",
                    self.path.display(),
                    self.conn_name,
                    if on { "on" } else { "off" }
                );
                if on {
                    self.announce_next = true;
                    // Some drivers drop the mode while off; make sure it is there.
                    self.modeset()?;
                    Ok(PowerMode::On)
                } else {
                    Ok(PowerMode::Off)
                }
            }
            Err(e) if !on => {
                log::warn!(
                    "{}: cannot power {} off ({e}); showing black instead",
                    self.path.display(),
                    self.conn_name
                );
                self.show(None)?;
                Ok(PowerMode::Black)
            }
            Err(e) => Err(kms_err(
                &self.path,
                format!("cannot power {} on: {e}", self.conn_name),
            )),
        }
    }

    fn poll_commands(&mut self, _out: &mut Vec<Command>) {
        // No keyboard on the console; the GPIO button is the input.
    }

    fn is_open(&self) -> bool {
        true
    }
}

impl Drop for KmsScreen {
    fn drop(&mut self) {
        let _ = self.wait_flip();
        // Give the CRTC back what it showed before (the text console).
        if let Some(s) = &self.saved {
            let conns: &[connector::Handle] = if s.mode().is_some() {
                &[self.conn]
            } else {
                &[]
            };
            if let Err(e) =
                self.card
                    .set_crtc(self.crtc, s.framebuffer(), s.position(), conns, s.mode())
            {
                log::debug!(
                    "{}: cannot restore the previous CRTC state: {e}",
                    self.path.display()
                );
            }
        }
        for b in self.bufs.drain(..) {
            drop(b.map);
            let _ = self.card.destroy_framebuffer(b.fb);
            let _ = self.card.destroy_dumb_buffer(b.dumb);
        }
    }
}
