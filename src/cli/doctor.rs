//! `doctor`: what the frame has and what is missing, in plain words.
//!
//! Exit status: 0 ready; else the first problem in this order:
//! 12 config invalid, 11 model files, 10 no camera, 13 no display, 14 button.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use styleframe::config::{DisplayBackend, SourceKind};
use styleframe::models::{check_file, find_dir, Manifest};

use super::CliResult;

pub const NO_CAMERA: u8 = 10;
pub const MODELS: u8 = 11;
pub const CONFIG: u8 = 12;
pub const DISPLAY: u8 = 13;
pub const BUTTON: u8 = 14;

#[derive(Args)]
pub struct DoctorArgs {
    /// Configuration file (default: /etc/styleframe/styleframe.toml, then config/styleframe.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder with the model files.
    #[arg(long)]
    pub models: Option<PathBuf>,
}

pub fn doctor(a: DoctorArgs) -> CliResult {
    let mut problems: Vec<(u8, String)> = vec![];
    // Config.
    let cfg = match super::run::load_config(a.config.as_deref()) {
        Ok((path, cfg)) => {
            let shown = path
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in defaults".into());
            match cfg.validate() {
                Ok(()) => println!("config: {shown}: ok"),
                Err(e) => {
                    println!("config: {e}");
                    problems.push((CONFIG, e.to_string()));
                }
            }
            cfg
        }
        Err(f) => {
            println!("config: {}", super::describe(&f.error));
            problems.push((CONFIG, f.error.to_string()));
            Default::default()
        }
    };
    match super::run::load_style_sets(&cfg) {
        Ok((s, style_problems)) => {
            println!(
                "styles: {} ({})",
                s.styles.len(),
                s.styles
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for p in style_problems {
                println!("styles: {p}");
                problems.push((CONFIG, p));
            }
        }
        Err(e) => {
            println!("styles: {e}");
            problems.push((CONFIG, e));
        }
    }
    // Models.
    let manifest = Manifest::builtin();
    for id in [&cfg.models.transfer, &cfg.models.predict] {
        match manifest.get(id) {
            Ok(m) => {
                let dir = a.models.clone().unwrap_or_else(|| {
                    if cfg.models.dir.join(&m.file).is_file() {
                        cfg.models.dir.clone()
                    } else {
                        find_dir(None, &m.file)
                    }
                });
                let path = dir.join(&m.file);
                match check_file(&path, &m.sha256) {
                    Ok(()) => println!(
                        "model {id}: {} ok (sha256 {})",
                        path.display(),
                        &m.sha256[..12]
                    ),
                    Err(e) => {
                        println!("model {id}: {e}");
                        problems.push((MODELS, e.to_string()));
                    }
                }
            }
            Err(e) => {
                println!("model: {e}");
                problems.push((CONFIG, e.to_string()));
            }
        }
    }
    println!(
        "kernels: {}",
        styleframe::inference::kernels::table().describe()
    );
    // Cameras.
    let cams = styleframe::capture::camera::list_cameras();
    if cams.is_empty() {
        println!("cameras: none found (no /dev/video* device that captures)");
    }
    for c in &cams {
        println!("camera {}: {}", c.index, c.name);
        for m in &c.modes {
            println!("    {m}");
        }
    }
    let csi = report_csi_cameras(&cfg.camera.rpicam_vid);
    let source = match cfg.camera.source {
        SourceKind::Auto => {
            let kind = styleframe::capture::auto_source(
                cfg.camera.device.trim() == "0",
                styleframe::capture::libcamera::usb_camera_present(),
                csi > 0,
            );
            println!("source: auto -> {kind:?}");
            kind
        }
        k => k,
    };
    if source == SourceKind::Camera && cams.is_empty() {
        problems.push((NO_CAMERA, "no camera: plug in a USB (UVC) camera, or connect a Pi camera module (source \"auto\" or \"libcamera\"); `ls /dev/video*` or `rpicam-vid --list-cameras` should list it".into()));
    } else if source == SourceKind::Libcamera && csi == 0 {
        problems.push((NO_CAMERA, "no Pi camera module: `rpicam-vid --list-cameras` lists none (check the ribbon cable and camera_auto_detect=1 in config.txt)".into()));
    } else if source != SourceKind::Camera && source != SourceKind::Libcamera {
        println!(
            "source: {:?} {}",
            cfg.camera.source,
            cfg.camera
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    // Displays.
    let x = std::env::var("DISPLAY").unwrap_or_default();
    println!(
        "X display: {}",
        if x.is_empty() {
            "none (DISPLAY not set)".into()
        } else {
            x.clone()
        }
    );
    let fbs: Vec<String> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("fb"))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "framebuffers: {}",
        if fbs.is_empty() {
            "none".into()
        } else {
            fbs.join(", ")
        }
    );
    let wayland = std::env::var("WAYLAND_DISPLAY").unwrap_or_default();
    if !wayland.is_empty() {
        println!("Wayland display: {wayland} (the window opens through XWayland: DISPLAY must be set too)");
    }
    report_drm_cards();
    let kms = styleframe::display::kms::usable(&cfg.display);
    match &kms {
        Ok(c) => println!(
            "kms: would use {} ({}) {} {}",
            c.card.display(),
            c.driver,
            c.connector,
            c.mode
        ),
        Err(e) => println!("kms: {e}"),
    }
    let display_ok = match cfg.display.backend {
        DisplayBackend::Auto => !x.is_empty() || kms.is_ok() || cfg.display.framebuffer.exists(),
        DisplayBackend::Kms => kms.is_ok(),
        DisplayBackend::Window => !x.is_empty(),
        DisplayBackend::Framebuffer => cfg.display.framebuffer.exists(),
        DisplayBackend::Headless => true,
    };
    if !display_ok {
        problems.push((
            DISPLAY,
            format!(
                "display backend {:?} is not available ({})",
                cfg.display.backend,
                match cfg.display.backend {
                    DisplayBackend::Window =>
                        "no X display: set DISPLAY or use the framebuffer backend".into(),
                    DisplayBackend::Auto => format!(
                        "no X display (DISPLAY not set), no DRM card with a connected screen, \
                         and {} does not exist",
                        cfg.display.framebuffer.display()
                    ),
                    DisplayBackend::Kms => kms
                        .as_ref()
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                    _ => format!("{} does not exist", cfg.display.framebuffer.display()),
                }
            ),
        ));
    }
    // GPIO.
    let chips = styleframe::input::list_chips();
    if chips.is_empty() {
        println!("GPIO chips: none");
    }
    for c in &chips {
        println!(
            "GPIO {} ({}): {} lines, {} named",
            c.path.display(),
            c.label,
            c.lines,
            c.named_lines.len()
        );
    }
    if cfg.button.enabled {
        match styleframe::input::open_button(&cfg.button) {
            Ok(b) => println!("button: {}", b.describe()),
            Err(e) => {
                println!("button: {e}");
                problems.push((BUTTON, e.to_string()));
            }
        }
    } else {
        println!("button: disabled in the config");
    }
    println!("mqtt: {}", styleframe::mqtt::describe(&cfg.mqtt));
    if cfg.mqtt.enabled {
        if let Err(e) = styleframe::mqtt::Settings::from_config(&cfg.mqtt) {
            println!("mqtt: {e}");
            problems.push((CONFIG, e));
        }
    }
    println!("{}", super::pair::doctor_line(&cfg));
    problems.sort_by_key(|(code, _)| match *code {
        CONFIG => 0,
        MODELS => 1,
        NO_CAMERA => 2,
        DISPLAY => 3,
        _ => 4,
    });
    match problems.first() {
        None => {
            println!("ready");
            Ok(ExitCode::SUCCESS)
        }
        Some((code, _)) => {
            println!("not ready:");
            for (_, p) in &problems {
                println!("  - {p}");
            }
            Ok(ExitCode::from(*code))
        }
    }
}

/// One line per DRM card, one per connector: what `display.card`/`connector`/`mode` can name.
fn report_drm_cards() {
    let cards = styleframe::display::kms::list_cards();
    if cards.is_empty() {
        println!("DRM cards: none (no /dev/dri/card*)");
    }
    for (path, info) in cards {
        match info {
            Err(e) => println!("DRM {}: cannot open ({e})", path.display()),
            Ok(c) => {
                println!(
                    "DRM {} ({}): {}",
                    path.display(),
                    c.driver,
                    if c.dumb_buffers {
                        "can show pictures (dumb buffers)"
                    } else {
                        "render only (no dumb buffers)"
                    }
                );
                for k in &c.connectors {
                    let preferred = k.modes.iter().find(|m| m.preferred).or(k.modes.first());
                    println!(
                        "    {} {}{}",
                        k.name,
                        if k.connected {
                            "connected"
                        } else {
                            "disconnected"
                        },
                        preferred
                            .map(|m| format!(", {} modes, preferred {m}", k.modes.len()))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
}

/// The CSI cameras `rpicam-vid --list-cameras` sees; returns how many.
fn report_csi_cameras(configured: &str) -> usize {
    match styleframe::capture::libcamera::list_csi_cameras(configured) {
        Err(e) => {
            println!("Pi camera modules (libcamera): not checked: {e}");
            0
        }
        Ok((program, cams)) => {
            if cams.is_empty() {
                println!(
                    "Pi camera modules (libcamera): none ({} --list-cameras)",
                    program.display()
                );
            }
            for c in &cams {
                println!("Pi camera {} (libcamera): {}", c.index, c.description);
                for m in &c.modes {
                    println!("    {m}");
                }
            }
            cams.len()
        }
    }
}
