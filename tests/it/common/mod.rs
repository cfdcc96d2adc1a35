//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` beside the clone (or `$STYLEFRAME_SHARED`): the official model
/// files, test pictures and the reference runtime's outputs. Tests that need
/// it fail loudly when it is absent rather than silently passing.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("STYLEFRAME_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("models/SHA256SUMS").is_file() && dir.join("reference/cases.json").is_file(),
        "the shared test data is missing: expected {} with models/ and reference/ \
         (set STYLEFRAME_SHARED to its path)",
        dir.display()
    );
    dir
}

pub fn models() -> PathBuf {
    shared().join("models")
}

pub fn reference() -> PathBuf {
    shared().join("reference")
}

/// An RGB8 PNG as (width, height, bytes).
pub fn png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_rgb8();
    (img.width(), img.height(), img.into_raw())
}

pub fn floats(rgb: &[u8]) -> Vec<f32> {
    let mut v = vec![];
    styleframe::preprocess::to_f32(rgb, &mut v);
    v
}

/// A config for in-process daemon tests: headless screen of exactly the
/// network size (so what is shown is the network's output), no cross-fade,
/// no degradation, quick morphs.
pub fn headless_config(w: usize, h: usize) -> styleframe::config::Config {
    use styleframe::config::{Config, DisplayBackend, DisplayConfig};
    let mut cfg = Config {
        display: DisplayConfig {
            backend: DisplayBackend::Headless,
            width: w as u32,
            height: h as u32,
            crossfade: false,
            ..Default::default()
        },
        ..Default::default()
    };
    cfg.inference.max_pixels = (h * w) as u32;
    cfg.inference.degrade_after_ms = 0;
    cfg.styles.morph_seconds = 0.3;
    cfg
}

/// `img` as a JPEG of the given quality (test pictures).
pub fn jpeg_q(img: &image::RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}
