//! Framebuffer backend: writes pixels straight into a memory-mapped Linux
//! framebuffer (`/dev/fb0` on Pi OS Lite, no X needed).
//!
//! Geometry comes from the `FBIOGET_VSCREENINFO`/`FBIOGET_FSCREENINFO` ioctls.
//! When they fail (ENOTTY: a plain file standing in for the device, as in the
//! tests) the configured `width`/`height`/`fb_format` are used, with rows packed
//! tightly (stride = width * bytes per pixel).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use memmap2::{MmapMut, MmapOptions};

use crate::config::{DisplayConfig, FbFormat};
use crate::frame::Command;

use super::{check_size, DisplayError, PowerMode, Screen};

/// How one pixel is stored in the framebuffer memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FbLayout {
    /// 32 bit little-endian `XRGB`: bytes B, G, R, X in memory. `alpha` goes
    /// into the X byte (0xFF when the device declares an alpha channel).
    Xrgb8888 { alpha: u8 },
    /// 32 bit with red and blue swapped: bytes R, G, B, X.
    Xbgr8888 { alpha: u8 },
    /// 16 bit little-endian `RRRRRGGG GGGBBBBB`.
    Rgb565,
}

impl FbLayout {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            FbLayout::Xrgb8888 { .. } | FbLayout::Xbgr8888 { .. } => 4,
            FbLayout::Rgb565 => 2,
        }
    }

    fn from_config(f: FbFormat) -> Self {
        match f {
            FbFormat::Xrgb8888 => FbLayout::Xrgb8888 { alpha: 0 },
            FbFormat::Rgb565 => FbLayout::Rgb565,
        }
    }
}

/// Where the visible picture lives in the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FbGeometry {
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Byte offset of the top-left visible pixel (panning offset on a device).
    pub offset: usize,
    pub layout: FbLayout,
    /// Bytes to map.
    pub map_len: usize,
    /// True when read from the device, false when taken from the config.
    pub from_device: bool,
}

pub struct FramebufferScreen {
    path: PathBuf,
    geom: FbGeometry,
    map: MmapMut,
    /// The open device, locked for this process (see [`lock`]): kept open to
    /// hold the lock and to check its size before each picture.
    file: Arc<File>,
    /// Whether `FBIOBLANK` powered the panel down (so waking must unblank it).
    powered_down: bool,
    /// Log the first picture after powering on (the lab test waits for it).
    announce_next: bool,
    /// Keeps the text console from drawing over the picture (real devices only).
    _console: Option<ConsoleGraphicsMode>,
}

/// Packs a `0RGB` pixel into RGB565.
#[inline]
pub fn to_rgb565(p: u32) -> u16 {
    let r = (p >> 16) & 0xFF;
    let g = (p >> 8) & 0xFF;
    let b = p & 0xFF;
    (((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)) as u16
}

impl FramebufferScreen {
    pub fn open(cfg: &DisplayConfig) -> Result<Self, DisplayError> {
        let path = cfg.framebuffer.clone();
        let file = lock(&path)?;

        let geom = match query_device(&file) {
            Ok((var, fix)) => device_geometry(&path, cfg, &var, &fix)?,
            Err(e) => {
                log::info!(
                    "{}: not a framebuffer device ({e}); using the configured geometry",
                    path.display()
                );
                config_geometry(&path, cfg, &file)?
            }
        };

        // SAFETY: the mapping is only accessed through `self.map`; the lock
        // keeps other styleframes off, and another process writing the same
        // framebuffer can at worst garble pixels. A file or device shrinking
        // under the mapping is caught by `check_mapping` before every write.
        let map = unsafe { MmapOptions::new().len(geom.map_len).map_mut(&file) }.map_err(|e| {
            DisplayError::Framebuffer {
                path: path.clone(),
                message: format!("cannot map {} bytes: {e}", geom.map_len),
            }
        })?;
        log::info!(
            "framebuffer {}: {}x{} {:?}, stride {} bytes",
            path.display(),
            geom.width,
            geom.height,
            geom.layout,
            geom.stride
        );
        let console = if geom.from_device {
            ConsoleGraphicsMode::enter()
        } else {
            None
        };
        Ok(FramebufferScreen {
            path,
            geom,
            map,
            file,
            powered_down: false,
            announce_next: false,
            _console: console,
        })
    }

    /// The mapping must still be backed: a plain file truncated or a device
    /// whose memory shrank (a mode change) would make the next write a
    /// SIGBUS that kills the process without a word. Checked before each
    /// picture; a change is an error the presenter handles (retry, reopen).
    fn check_mapping(&self) -> Result<(), DisplayError> {
        let err = |message: String| DisplayError::Framebuffer {
            path: self.path.clone(),
            message,
        };
        if self.geom.from_device {
            let (var, fix) = query_device(&self.file)
                .map_err(|e| err(format!("cannot read the device's geometry: {e}")))?;
            let smem = fix.smem_len as usize;
            if (smem != 0 && smem < self.geom.map_len)
                || fix.line_length as usize != self.geom.stride
                || var.bits_per_pixel as usize != 8 * self.geom.layout.bytes_per_pixel()
            {
                return Err(err(format!(
                    "the framebuffer changed under the picture ({} bytes, {} per row, \
                     {} bpp; mapped {} bytes, {} per row)",
                    fix.smem_len,
                    fix.line_length,
                    var.bits_per_pixel,
                    self.geom.map_len,
                    self.geom.stride
                )));
            }
        } else {
            let len = self
                .file
                .metadata()
                .map_err(|source| DisplayError::Io {
                    path: self.path.clone(),
                    source,
                })?
                .len();
            if len < self.geom.map_len as u64 {
                return Err(err(format!(
                    "shrank to {len} bytes under the picture, which needs {}",
                    self.geom.map_len
                )));
            }
        }
        Ok(())
    }

    pub fn geometry(&self) -> FbGeometry {
        self.geom
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let g = &self.geom;
        let start = g.offset + y * g.stride;
        &mut self.map[start..start + g.width * g.layout.bytes_per_pixel()]
    }
}

impl Screen for FramebufferScreen {
    fn size(&self) -> (usize, usize) {
        (self.geom.width, self.geom.height)
    }

    fn present(&mut self, pixels: &[u32]) -> Result<(), DisplayError> {
        let (w, h) = (self.geom.width, self.geom.height);
        check_size(pixels, w, h)?;
        self.check_mapping()?;
        let layout = self.geom.layout;
        for (y, src) in pixels.chunks_exact(w).enumerate() {
            let row = self.row_mut(y);
            match layout {
                FbLayout::Xrgb8888 { alpha } => {
                    let a = (alpha as u32) << 24;
                    for (d, &p) in row.chunks_exact_mut(4).zip(src) {
                        d.copy_from_slice(&((p & 0x00FF_FFFF) | a).to_le_bytes());
                    }
                }
                FbLayout::Xbgr8888 { alpha } => {
                    for (d, &p) in row.chunks_exact_mut(4).zip(src) {
                        d.copy_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, p as u8, alpha]);
                    }
                }
                FbLayout::Rgb565 => {
                    for (d, &p) in row.chunks_exact_mut(2).zip(src) {
                        d.copy_from_slice(&to_rgb565(p).to_le_bytes());
                    }
                }
            }
        }
        if std::mem::take(&mut self.announce_next) {
            log::info!("{}: first picture after powering on", self.path.display());
        }
        Ok(())
    }

    fn blank(&mut self) -> Result<(), DisplayError> {
        self.check_mapping()?;
        for y in 0..self.geom.height {
            self.row_mut(y).fill(0);
        }
        Ok(())
    }

    /// `FBIOBLANK`: powers the panel down (DPMS off under KMS's fbdev
    /// emulation). A device without it (or a plain file) shows black instead.
    fn set_power(&mut self, on: bool) -> Result<PowerMode, DisplayError> {
        if on && !self.powered_down {
            return Ok(PowerMode::On);
        }
        let level = if on {
            FB_BLANK_UNBLANK
        } else {
            FB_BLANK_POWERDOWN
        };
        // SAFETY: FBIOBLANK takes an int argument by value.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), FBIOBLANK as _, level) };
        if r == 0 {
            self.powered_down = !on;
            self.announce_next = on;
            log::info!(
                "{}: panel powered {}",
                self.path.display(),
                if on { "on" } else { "off" }
            );
            return Ok(if on { PowerMode::On } else { PowerMode::Off });
        }
        let e = io::Error::last_os_error();
        if on {
            return Err(DisplayError::Framebuffer {
                path: self.path.clone(),
                message: format!("cannot unblank (FBIOBLANK): {e}"),
            });
        }
        log::info!(
            "{}: cannot power the panel off (FBIOBLANK: {e}); showing black instead",
            self.path.display()
        );
        self.blank()?;
        Ok(PowerMode::Black)
    }

    fn poll_commands(&mut self, _out: &mut Vec<Command>) {
        // No keyboard on a bare framebuffer; the GPIO button is the input.
    }

    fn is_open(&self) -> bool {
        true
    }
}

// ---- One styleframe per framebuffer: an exclusive lock on the device ----

/// The devices this process has open and locked, by (device, inode): a
/// screen reopened while the old one is still alive (the presenter's retry)
/// shares the lock instead of finding itself in the way.
static LOCKED: Mutex<Vec<(FileId, Weak<File>)>> = Mutex::new(Vec::new());

/// (device, inode) of an open file.
type FileId = (u64, u64);

/// Opens the framebuffer and takes an exclusive `flock` on it, so a second
/// styleframe (a kiosk unit next to the system unit, a manual run) does not
/// draw over the first: it fails, naming the process that holds it.
fn lock(path: &Path) -> Result<Arc<File>, DisplayError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|source| DisplayError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let id = (meta.dev(), meta.ino());
    let mut locked = LOCKED.lock().unwrap_or_else(|e| e.into_inner());
    locked.retain(|(_, w)| w.strong_count() > 0);
    if let Some(held) = locked
        .iter()
        .find(|(k, _)| *k == id)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(held);
    }
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        let message = if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!(
                "in use by {}: only one program can draw on a framebuffer \
                 (stop the other one, e.g. `systemctl stop styleframe`)",
                holder(id).unwrap_or_else(|| "another process".into())
            )
        } else {
            format!("cannot lock it: {e}")
        };
        return Err(DisplayError::Framebuffer {
            path: path.to_path_buf(),
            message,
        });
    }
    let file = Arc::new(file);
    locked.push((id, Arc::downgrade(&file)));
    Ok(file)
}

/// "pid N (name)" of the process holding a flock on the file `id`, from
/// /proc/locks ("1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF").
fn holder((dev, ino): FileId) -> Option<String> {
    let want = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4).map(|p| p.to_string()))
            .flatten()
    })?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Some(format!("pid {pid} ({})", name.trim()))
}

fn open_error(path: &Path, e: io::Error) -> DisplayError {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => {
            "not found: check display.framebuffer, and that a framebuffer exists \
             (Pi: dtoverlay=vc4-kms-v3d in config.txt; `ls /dev/fb*`)"
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied: the user must be in the `video` group \
             (sudo usermod -aG video USER, or SupplementaryGroups=video in the systemd unit)"
        }
        _ => "cannot open for reading and writing",
    };
    DisplayError::Framebuffer {
        path: path.to_path_buf(),
        message: format!("{hint} ({e})"),
    }
}

// ---- Console: text mode would draw its cursor and messages over the picture ----

const KDSETMODE: libc::c_ulong = 0x4B3A;
const KD_TEXT: libc::c_int = 0;
const KD_GRAPHICS: libc::c_int = 1;
const CONSOLE: &str = "/dev/tty0";

/// The active virtual terminal switched to graphics mode (no cursor, no
/// text drawn on the framebuffer); back to text mode when dropped.
struct ConsoleGraphicsMode {
    tty: File,
}

impl ConsoleGraphicsMode {
    /// Best effort: without permission (root, or CAP_SYS_TTY_CONFIG) the
    /// picture still shows, the console may just blink its cursor over it.
    fn enter() -> Option<Self> {
        let result = OpenOptions::new()
            .read(true)
            .write(true)
            .open(CONSOLE)
            .and_then(|tty| {
                // SAFETY: KDSETMODE takes an int argument by value.
                if unsafe { libc::ioctl(tty.as_raw_fd(), KDSETMODE as _, KD_GRAPHICS) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(tty)
            });
        match result {
            Ok(tty) => {
                log::info!("{CONSOLE}: text console switched to graphics mode");
                Some(ConsoleGraphicsMode { tty })
            }
            Err(e) => {
                log::info!(
                    "{CONSOLE}: cannot switch the text console to graphics mode ({e}); \
                     its cursor may show over the picture (boot with \
                     vt.global_cursor_default=0 to hide it)"
                );
                None
            }
        }
    }
}

impl Drop for ConsoleGraphicsMode {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        if unsafe { libc::ioctl(self.tty.as_raw_fd(), KDSETMODE as _, KD_TEXT) } != 0 {
            log::warn!(
                "{CONSOLE}: cannot restore text mode: {}",
                io::Error::last_os_error()
            );
        }
    }
}

// ---- Linux fbdev ioctls (linux/fb.h) ----

const FBIOGET_VSCREENINFO: libc::c_ulong = 0x4600;
const FBIOGET_FSCREENINFO: libc::c_ulong = 0x4602;
const FBIOBLANK: libc::c_ulong = 0x4611;
const FB_BLANK_UNBLANK: libc::c_int = 0;
const FB_BLANK_POWERDOWN: libc::c_int = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FbBitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FbVarScreeninfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: FbBitfield,
    green: FbBitfield,
    blue: FbBitfield,
    transp: FbBitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    pixclock: u32,
    left_margin: u32,
    right_margin: u32,
    upper_margin: u32,
    lower_margin: u32,
    hsync_len: u32,
    vsync_len: u32,
    sync: u32,
    vmode: u32,
    rotate: u32,
    colorspace: u32,
    reserved: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FbFixScreeninfo {
    id: [u8; 16],
    smem_start: libc::c_ulong,
    smem_len: u32,
    type_: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: libc::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

fn query_device(file: &File) -> io::Result<(FbVarScreeninfo, FbFixScreeninfo)> {
    let fd = file.as_raw_fd();
    let mut var = FbVarScreeninfo::default();
    let mut fix = FbFixScreeninfo::default();
    // SAFETY: the structs match linux/fb.h and outlive the calls.
    // The request argument type differs between libc targets (c_ulong on
    // glibc, c_int on musl), hence the inferred cast.
    unsafe {
        if libc::ioctl(
            fd,
            FBIOGET_VSCREENINFO as _,
            &mut var as *mut FbVarScreeninfo,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::ioctl(
            fd,
            FBIOGET_FSCREENINFO as _,
            &mut fix as *mut FbFixScreeninfo,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((var, fix))
}

fn device_geometry(
    path: &Path,
    cfg: &DisplayConfig,
    var: &FbVarScreeninfo,
    fix: &FbFixScreeninfo,
) -> Result<FbGeometry, DisplayError> {
    let err = |message: String| DisplayError::Framebuffer {
        path: path.to_path_buf(),
        message,
    };
    let alpha = if var.transp.length > 0 { 0xFF } else { 0 };
    let layout = match var.bits_per_pixel {
        32 if var.red.offset == 0 => FbLayout::Xbgr8888 { alpha },
        32 => FbLayout::Xrgb8888 { alpha },
        16 => FbLayout::Rgb565,
        bpp => {
            return Err(err(format!(
                "{bpp} bits per pixel is not supported (need 32 or 16; try `fbset -depth 32`)"
            )))
        }
    };
    if layout.bytes_per_pixel() != FbLayout::from_config(cfg.fb_format).bytes_per_pixel() {
        log::warn!(
            "{}: device is {} bpp, display.fb_format says {:?}: using the device's format",
            path.display(),
            var.bits_per_pixel,
            cfg.fb_format
        );
    }
    let (xres, yres) = (var.xres as usize, var.yres as usize);
    let pick = |want: u32, have: usize, name: &str| {
        let want = want as usize;
        if want == 0 {
            have
        } else if want > have {
            log::warn!("display.{name} = {want} exceeds the framebuffer's {have}: using {have}");
            have
        } else {
            want
        }
    };
    let width = pick(cfg.width, xres, "width");
    let height = pick(cfg.height, yres, "height");
    let bpp = layout.bytes_per_pixel();
    let stride = fix.line_length as usize;
    let offset = var.yoffset as usize * stride + var.xoffset as usize * bpp;
    let map_len = if fix.smem_len > 0 {
        fix.smem_len as usize
    } else {
        stride * var.yres_virtual.max(var.yres) as usize
    };
    let geom = FbGeometry {
        width,
        height,
        stride,
        offset,
        layout,
        map_len,
        from_device: true,
    };
    check_fits(path, &geom)?;
    Ok(geom)
}

fn config_geometry(
    path: &Path,
    cfg: &DisplayConfig,
    file: &File,
) -> Result<FbGeometry, DisplayError> {
    if cfg.width == 0 || cfg.height == 0 {
        return Err(DisplayError::Framebuffer {
            path: path.to_path_buf(),
            message: "not a framebuffer device, and display.width/height are not set \
                      to describe it"
                .into(),
        });
    }
    let layout = FbLayout::from_config(cfg.fb_format);
    let (width, height) = (cfg.width as usize, cfg.height as usize);
    let stride = width * layout.bytes_per_pixel();
    let file_len = file
        .metadata()
        .map_err(|source| DisplayError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len() as usize;
    let geom = FbGeometry {
        width,
        height,
        stride,
        offset: 0,
        layout,
        map_len: stride * height,
        from_device: false,
    };
    if file_len < geom.map_len {
        return Err(DisplayError::Framebuffer {
            path: path.to_path_buf(),
            message: format!(
                "{file_len} bytes, but {width}x{height} {:?} needs {}",
                cfg.fb_format, geom.map_len
            ),
        });
    }
    check_fits(path, &geom)?;
    Ok(geom)
}

/// The last visible byte must lie inside the mapping, or `present` would fault.
fn check_fits(path: &Path, g: &FbGeometry) -> Result<(), DisplayError> {
    let row_bytes = g.width * g.layout.bytes_per_pixel();
    let ok = g.width > 0
        && g.height > 0
        && g.stride >= row_bytes
        && g.offset + (g.height - 1) * g.stride + row_bytes <= g.map_len;
    if ok {
        Ok(())
    } else {
        Err(DisplayError::Framebuffer {
            path: path.to_path_buf(),
            message: format!("inconsistent geometry {g:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_structs_match_linux_fb_h() {
        assert_eq!(std::mem::size_of::<FbVarScreeninfo>(), 160);
        let fix = if cfg!(target_pointer_width = "64") {
            80
        } else {
            68
        };
        assert_eq!(std::mem::size_of::<FbFixScreeninfo>(), fix);
        assert_eq!(std::mem::offset_of!(FbFixScreeninfo, line_length), fix - 32);
    }

    fn pi_1080p(bpp: u32) -> (FbVarScreeninfo, FbFixScreeninfo) {
        let mut var = FbVarScreeninfo {
            xres: 1920,
            yres: 1080,
            xres_virtual: 1920,
            yres_virtual: 1080,
            bits_per_pixel: bpp,
            ..Default::default()
        };
        if bpp == 32 {
            var.red = FbBitfield {
                offset: 16,
                length: 8,
                msb_right: 0,
            };
        }
        let bytes = bpp / 8;
        let fix = FbFixScreeninfo {
            smem_len: 1920 * 1080 * bytes,
            line_length: 1920 * bytes,
            ..Default::default()
        };
        (var, fix)
    }

    fn cfg(w: u32, h: u32) -> DisplayConfig {
        DisplayConfig {
            width: w,
            height: h,
            ..DisplayConfig::default()
        }
    }

    #[test]
    fn device_geometry_comes_from_the_ioctls() {
        let (var, fix) = pi_1080p(32);
        let g = device_geometry(Path::new("/dev/fb0"), &cfg(0, 0), &var, &fix).unwrap();
        assert_eq!(
            (g.width, g.height, g.stride, g.offset),
            (1920, 1080, 7680, 0)
        );
        assert_eq!(g.layout, FbLayout::Xrgb8888 { alpha: 0 });
        assert_eq!(g.map_len, 1920 * 1080 * 4);
        assert!(g.from_device);

        let (var, fix) = pi_1080p(16);
        let g = device_geometry(Path::new("/dev/fb0"), &cfg(0, 0), &var, &fix).unwrap();
        assert_eq!((g.stride, g.layout), (3840, FbLayout::Rgb565));
    }

    #[test]
    fn device_with_padded_rows_and_panning_offset() {
        let (mut var, mut fix) = pi_1080p(32);
        fix.line_length = 8192; // padded rows
        var.yres_virtual = 2160; // double buffer, showing the second half
        var.yoffset = 1080;
        fix.smem_len = 8192 * 2160;
        let g = device_geometry(Path::new("/dev/fb0"), &cfg(0, 0), &var, &fix).unwrap();
        assert_eq!((g.stride, g.offset), (8192, 8192 * 1080));
    }

    #[test]
    fn configured_size_is_clamped_to_the_device() {
        let (var, fix) = pi_1080p(32);
        let g = device_geometry(Path::new("/dev/fb0"), &cfg(1280, 4000), &var, &fix).unwrap();
        assert_eq!((g.width, g.height, g.stride), (1280, 1080, 7680));
    }

    #[test]
    fn bgr_and_alpha_devices_are_recognised() {
        let (mut var, fix) = pi_1080p(32);
        var.red.offset = 0;
        var.transp.length = 8;
        let g = device_geometry(Path::new("/dev/fb0"), &cfg(0, 0), &var, &fix).unwrap();
        assert_eq!(g.layout, FbLayout::Xbgr8888 { alpha: 0xFF });
    }

    #[test]
    fn unsupported_depth_and_short_memory_are_errors_naming_the_device() {
        let (var, fix) = pi_1080p(24);
        let e = device_geometry(Path::new("/dev/fb1"), &cfg(0, 0), &var, &fix).unwrap_err();
        assert!(e.to_string().contains("/dev/fb1"), "{e}");
        assert!(e.to_string().contains("24 bits"), "{e}");

        let (var, mut fix) = pi_1080p(32);
        fix.smem_len = 1000;
        let e = device_geometry(Path::new("/dev/fb1"), &cfg(0, 0), &var, &fix).unwrap_err();
        assert!(e.to_string().contains("inconsistent geometry"), "{e}");
    }
}
