//! `still` and `embed`: one picture at a time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use styleframe::process::pool;

use anyhow::Context;
use clap::Args;

use styleframe::config::Fit;
use styleframe::inference::{size_for, PredictNet, Stylizer, TransferNet, PREDICT_SIDE};
use styleframe::models::{find_dir, Manifest};
use styleframe::preprocess::{load_fitted, to_rgb8};
use styleframe::styles::{with_strength, Embedding, Style, StyleSet};

use super::CliResult;

#[derive(Args)]
pub struct ModelArgs {
    /// Folder with the model files (default: ./models, then /usr/share/styleframe/models).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Transfer network id from the manifest.
    #[arg(long, default_value = "style_transfer_f16_384")]
    pub model: String,
    /// Prediction network id from the manifest.
    #[arg(long, default_value = "style_predict_quantized_256")]
    pub predict: String,
    /// Threads for the network.
    #[arg(long, default_value_t = 2, value_parser = super::count_in(1, styleframe::config::MAX_THREADS))]
    pub threads: usize,
}

#[derive(Args)]
pub struct StillArgs {
    /// The photo to stylize.
    pub input: PathBuf,
    /// Where to write the stylized PNG.
    pub output: PathBuf,
    /// A style name from the style set, or a painting file.
    #[arg(long)]
    pub style: String,
    /// 0 = the photo's own look, 1 = the painting's full style.
    #[arg(long, default_value_t = 1.0, value_parser = super::f32_in(0.0, 1.0))]
    pub strength: f32,
    /// Network size HxW (multiples of 4), e.g. 256x448; default: the photo's aspect, ~384x384 pixels.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(usize, usize)>,
    /// cover (crop to fill) or letterbox (whole photo, black bars).
    #[arg(long, default_value = "cover", value_parser = parse_fit)]
    pub fit: Fit,
    /// Style set file (default: models/styles.json, else the built-in set).
    #[arg(long)]
    pub styles: Option<PathBuf>,
    #[command(flatten)]
    pub m: ModelArgs,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// Paintings to embed.
    #[arg(required = true)]
    pub paintings: Vec<PathBuf>,
    /// The style set to add them to (created when missing).
    #[arg(long)]
    pub into: PathBuf,
    /// Style name (one painting only; default: the file name).
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,
    #[arg(long, default_value = "")]
    pub title: String,
    #[arg(long, default_value = "")]
    pub artist: String,
    #[command(flatten)]
    pub m: ModelArgs,
}

/// Largest network size in pixels (as `inference.max_pixels`): what a
/// 512 MB Pi Zero 2 W can hold (see the README's Reliability section).
pub const MAX_PIXELS: usize = styleframe::config::MAX_PIXELS_CEILING as usize;

/// A style name: some visible text (an empty name would make the set unloadable).
fn parse_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.chars().any(char::is_control) {
        return Err("expected a name with visible characters, e.g. \"my_painting\"".into());
    }
    Ok(s.to_string())
}

pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected HxW, e.g. 256x448"))?;
    let h: usize = h
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: height is not a number"))?;
    let w: usize = w
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: width is not a number"))?;
    styleframe::inference::check_size(h, w).map_err(|e| e.to_string())?;
    match h.checked_mul(w) {
        Some(p) if p <= MAX_PIXELS => Ok((h, w)),
        _ => Err(format!(
            "{s:?} is out of range: expected at most {MAX_PIXELS} pixels (height x width), e.g. 768x1024"
        )),
    }
}

fn parse_fit(s: &str) -> Result<Fit, String> {
    match s {
        "cover" => Ok(Fit::Cover),
        "letterbox" => Ok(Fit::Letterbox),
        _ => Err(format!("{s:?}: expected cover or letterbox")),
    }
}

/// Loads a network file by manifest id, checking its sha256 first.
pub fn model_path(m: &ModelArgs, id: &str) -> anyhow::Result<PathBuf> {
    let manifest = Manifest::builtin();
    let entry = manifest.get(id)?;
    let dir = find_dir(m.models.as_deref(), &entry.file);
    Ok(manifest.verified_path(id, &dir)?)
}

pub fn load_predict(m: &ModelArgs) -> anyhow::Result<PredictNet> {
    Ok(PredictNet::load(
        &model_path(m, &m.predict)?,
        &pool(m.threads),
    )?)
}

/// The style set: the file given, else `styles.json` beside the models, else built in.
pub fn load_styles(explicit: Option<&Path>, models: Option<&Path>) -> anyhow::Result<StyleSet> {
    if let Some(p) = explicit {
        return Ok(StyleSet::load(p)?);
    }
    let dir = find_dir(models, "styles.json");
    let p = dir.join("styles.json");
    if p.is_file() {
        return Ok(StyleSet::load(&p)?);
    }
    Ok(StyleSet::builtin())
}

/// Embeds a painting file (256x256 centre crop, as the reference does).
pub fn embed_painting(net: &mut PredictNet, path: &Path) -> anyhow::Result<Embedding> {
    let x = load_fitted(path, PREDICT_SIDE, PREDICT_SIDE, Fit::Cover)?;
    Ok(net.embed(&x)?)
}

/// Usage errors found before any work: the output would overwrite the
/// input, or its extension names no picture format we write.
fn check_output(input: &Path, output: &Path) -> Result<image::ImageFormat, super::Failure> {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(i), Ok(o)) = (std::fs::metadata(input), std::fs::metadata(output)) {
        if (i.dev(), i.ino()) == (o.dev(), o.ino()) {
            return Err(super::usage(format!(
                "{} is the input picture itself: give another output file",
                output.display()
            )));
        }
    }
    image::ImageFormat::from_path(output)
        .ok()
        .filter(|f| f.writing_enabled())
        .ok_or_else(|| {
            super::usage(format!(
                "{}: the extension names no picture format styleframe writes: use .png or .jpg",
                output.display()
            ))
        })
}

/// `--style` names a painting file when it looks like a path (a folder
/// part or a picture extension): then a missing file is said as such, not
/// as an unknown style name.
fn painting_path(style: &str) -> Result<Option<&Path>, super::Failure> {
    let p = Path::new(style);
    if p.is_file() {
        return Ok(Some(p));
    }
    let looks_like_path = style.contains('/') || image::ImageFormat::from_path(p).is_ok();
    if looks_like_path {
        return Err(super::usage(format!(
            "--style {style}: no such painting file (a style name from the set has no '/' and no picture extension)"
        )));
    }
    Ok(None)
}

pub fn still(a: StillArgs) -> CliResult {
    let format = check_output(&a.input, &a.output)?;
    let painting = painting_path(&a.style)?;
    let photo = styleframe::preprocess::load_rgb(&a.input)?;
    let (h, w) = match a.size {
        Some(s) => s,
        None => size_for(photo.width() as f64 / photo.height() as f64, 384 * 384),
    };
    let mut predict = None;
    let style = if let Some(style_path) = painting {
        let net = predict.insert(load_predict(&a.m)?);
        embed_painting(net, style_path)
            .with_context(|| format!("embedding {}", style_path.display()))?
    } else {
        load_styles(a.styles.as_deref(), a.m.models.as_deref())?
            .find(&a.style)?
            .embedding
    };
    let embedding = if a.strength < 1.0 {
        let net = match predict.as_mut() {
            Some(n) => n,
            None => predict.insert(load_predict(&a.m)?),
        };
        let own = embed_painting(net, &a.input)?;
        with_strength(&style, &own, a.strength)
    } else {
        style
    };
    let mut net = TransferNet::load(&model_path(&a.m, &a.m.model)?, h, w, &pool(a.m.threads))?;
    let mut pre = styleframe::preprocess::Preprocessor::new(a.fit);
    let mut rgb = vec![];
    pre.fit_rgb8(
        photo.as_raw(),
        photo.width(),
        photo.height(),
        w as u32,
        h as u32,
        &mut rgb,
    )?;
    let mut x = vec![];
    styleframe::preprocess::to_f32(&rgb, &mut x);
    let t = std::time::Instant::now();
    let mut y = vec![];
    net.stylize(&x, &embedding, &mut y)?;
    log::info!("stylized {}x{} in {} ms", w, h, t.elapsed().as_millis());
    to_rgb8(&y, &mut rgb);
    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb).context("output size")?;
    // Encoded in memory, then written in one go: nothing half-written is
    // ever at the output's name.
    let mut encoded = std::io::Cursor::new(vec![]);
    img.write_to(&mut encoded, format)
        .with_context(|| format!("encoding {}", a.output.display()))?;
    styleframe::atomic::write(&a.output, encoded.get_ref())
        .with_context(|| format!("writing {}", a.output.display()))?;
    log::info!("wrote {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

pub fn embed(a: EmbedArgs) -> CliResult {
    if a.name.is_some() && a.paintings.len() > 1 {
        return Err(super::usage("--name needs exactly one painting"));
    }
    let mut set = if a.into.is_file() {
        StyleSet::load(&a.into)?
    } else {
        StyleSet::new(&a.m.predict)
    };
    let mut net = load_predict(&a.m)?;
    let bar = indicatif::ProgressBar::new(a.paintings.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .expect("static template"),
    );
    for p in &a.paintings {
        bar.set_message(p.display().to_string());
        let embedding =
            embed_painting(&mut net, p).with_context(|| format!("embedding {}", p.display()))?;
        let name = a.name.clone().unwrap_or_else(|| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let source = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        set.upsert(Style {
            name,
            title: a.title.clone(),
            artist: a.artist.clone(),
            source,
            embedding,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    set.save(&a.into)
        .with_context(|| format!("writing {}", a.into.display()))?;
    log::info!("{} styles in {}", set.styles.len(), a.into.display());
    Ok(ExitCode::SUCCESS)
}
