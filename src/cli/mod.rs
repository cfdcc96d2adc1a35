//! Command-line interface (`clap`): subcommands and exit codes.
//!
//! Exit codes (also in the README, and used by the systemd unit):
//! 0 done / clean stop, 1 runtime error, 2 configuration or usage error,
//! 3 model file missing or damaged; `doctor`: 10 no camera, 11 models,
//! 12 config, 13 display, 14 button.

mod bench;
mod doctor;
mod pair;
mod run;
mod still;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;
pub const EXIT_MODEL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "styleframe",
    version,
    about = "A live art frame: camera -> neural style transfer -> full-screen painting"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the art frame (the daemon systemd starts).
    Run(run::RunArgs),
    /// A few seconds of the whole pipeline on a synthetic moving scene (no camera needed).
    Demo(run::DemoArgs),
    /// Stylize one picture.
    Still(still::StillArgs),
    /// Compute style embeddings of paintings into a style set.
    Embed(still::EmbedArgs),
    /// Install or inspect the model files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Check cameras, displays, GPIO, model files and the config; say what is missing.
    Doctor(doctor::DoctorArgs),
    /// Peak signal-to-noise ratio of two pictures (dB).
    Psnr {
        a: PathBuf,
        b: PathBuf,
        /// Exit with status 1 when the PSNR is below this.
        #[arg(long, value_parser = float_in(0.0, 1000.0))]
        min: Option<f64>,
    },
    /// Benchmarks: inference speed, or the full pipeline with --pipeline.
    Bench(bench::BenchArgs),
    /// Print the address that pairs a phone with the control page (--reset revokes all phones).
    Pair(pair::PairArgs),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Install the model files (from a mirror folder when given, else the official URLs), sha256-checked.
    Fetch {
        /// A folder holding the .tflite files (used first).
        #[arg(long)]
        from: Option<PathBuf>,
        /// Where to install them.
        #[arg(long, default_value = "models")]
        dir: PathBuf,
        /// Also the optional files (the dynamic-range transfer network).
        #[arg(long)]
        all: bool,
    },
    /// Show the installed files, their checksums and their input/output tensors.
    Info {
        #[arg(long, default_value = "models")]
        dir: PathBuf,
    },
}

/// An error with the exit code it should end the process with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        Failure {
            code: exit_code_for(&error),
            error,
        }
    }
}

/// Classifies an error chain by its root cause.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause
            .downcast_ref::<styleframe::config::ConfigError>()
            .is_some()
        {
            return EXIT_CONFIG;
        }
        // An unknown model id is a typo on the command line or in the config.
        if let Some(
            styleframe::models::ModelError::Unknown { .. }
            | styleframe::models::ModelError::NoMirror { .. },
        ) = cause.downcast_ref()
        {
            return EXIT_CONFIG;
        }
        if cause
            .downcast_ref::<styleframe::models::ModelError>()
            .is_some()
            || cause
                .downcast_ref::<styleframe::inference::EngineError>()
                .is_some_and(|e| !matches!(e, styleframe::inference::EngineError::BadSize { .. }))
        {
            return EXIT_MODEL;
        }
        // A style set that cannot be read or is invalid is configuration; one
        // that cannot be written (full disk) is not.
        match cause.downcast_ref::<styleframe::styles::StyleError>() {
            Some(styleframe::styles::StyleError::Write { .. }) => return EXIT_RUNTIME,
            Some(_) => return EXIT_CONFIG,
            None => {}
        }
    }
    EXIT_RUNTIME
}

pub type CliResult = Result<ExitCode, Failure>;

/// A usage error found after parsing (arguments that do not go together):
/// exit 2, as clap's own usage errors.
pub fn usage(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_CONFIG,
        error: anyhow::anyhow!("{message}"),
    }
}

/// A clap value parser: a finite number within `lo ..= hi`. clap puts the
/// argument's name in front of the message.
pub fn float_in(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("not a number: expected {lo} ..= {hi}"))?;
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(format!(
                "{s} is out of range: expected a number in {lo} ..= {hi}"
            ))
        }
    }
}

/// [`float_in`] for `f32` arguments (strengths).
pub fn f32_in(lo: f32, hi: f32) -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync {
    let f = float_in(lo as f64, hi as f64);
    move |s: &str| f(s).map(|v| v as f32)
}

/// A clap value parser: a whole number within `lo ..= hi`.
pub fn count_in(lo: u64, hi: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(lo..=hi)
}

pub fn main() -> ExitCode {
    init_logging();
    styleframe::process::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Demo(a) => run::demo(a),
        Command::Still(a) => still::still(a),
        Command::Embed(a) => still::embed(a),
        Command::Models { command } => models(command),
        Command::Doctor(a) => doctor::doctor(a),
        Command::Psnr { a, b, min } => psnr(&a, &b, min),
        Command::Bench(a) => bench::bench(a),
        Command::Pair(a) => pair::pair(a),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            log::error!("{}", describe(&f.error));
            ExitCode::from(f.code)
        }
    }
}

/// The error and its causes on one line, skipping causes whose text the
/// message already contains (our errors embed their source's text).
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !text.contains(&c) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&c);
        }
    }
    text
}

/// The error on one line, for a log line in the middle of a run (journald
/// shows each line as an entry of its own): a config file's source line and
/// caret marker become "(at: `…`)".
pub fn one_line(e: &anyhow::Error) -> String {
    let text = describe(e);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().to_string();
    // The quoted source line is the one with " | " after the line number.
    match lines.find_map(|l| l.split_once(" | ").map(|(_, src)| src.trim())) {
        Some(src) if !src.is_empty() => format!("{first} (at: `{src}`)"),
        _ => first,
    }
}

/// Logs go to stderr (journald keeps them); `RUST_LOG` overrides the level.
fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let mut b = env_logger::Builder::from_env(env);
    // Under systemd the journal adds its own timestamps.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.format_timestamp(None);
    }
    b.init();
}

fn models(cmd: ModelsCommand) -> CliResult {
    use styleframe::models::{fetch, Fetched, Manifest};
    let manifest = Manifest::builtin();
    match cmd {
        ModelsCommand::Fetch { from, dir, all } => {
            let from = from.or_else(mirror_from_env);
            fetch(&manifest, &dir, from.as_deref(), all, |m, how| match how {
                Fetched::AlreadyThere => log::info!("{}: already installed", m.file),
                Fetched::FromMirror(p) => log::info!("{}: copied from {}", m.file, p.display()),
                Fetched::Downloaded(u) => log::info!("{}: downloaded from {u}", m.file),
            })?;
            log::info!("model files ready in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Info { dir } => {
            for m in &manifest.model {
                let path = dir.join(&m.file);
                let status = match styleframe::models::check_file(&path, &m.sha256) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e.to_string(),
                };
                println!("{} ({}): {status}", m.id, m.role);
                if path.is_file() {
                    let bytes = std::fs::read(&path)?;
                    let opts = styleframe::inference::tflite::ImportOptions::default();
                    match styleframe::inference::tflite::import(&bytes, &opts) {
                        Ok(i) => {
                            for t in &i.inputs {
                                println!("  input  {} {:?}", t.name, t.shape);
                            }
                            for t in &i.outputs {
                                println!("  output {} {:?}", t.name, t.shape);
                            }
                        }
                        Err(e) => println!("  cannot import: {e}"),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `STYLEFRAME_MODEL_MIRROR`: a folder with the official files (tests, offline installs).
pub fn mirror_from_env() -> Option<PathBuf> {
    std::env::var_os("STYLEFRAME_MODEL_MIRROR").map(PathBuf::from)
}

fn psnr(a: &Path, b: &Path, min: Option<f64>) -> CliResult {
    let ia = styleframe::preprocess::load_rgb(a)?;
    let ib = styleframe::preprocess::load_rgb(b)?;
    if ia.dimensions() != ib.dimensions() {
        return Err(anyhow::anyhow!(
            "{} is {:?} but {} is {:?}",
            a.display(),
            ia.dimensions(),
            b.display(),
            ib.dimensions()
        )
        .into());
    }
    let p = styleframe::preprocess::psnr(ia.as_raw(), ib.as_raw());
    println!("{p:.2}");
    match min {
        Some(m) if p < m => {
            log::error!("PSNR {p:.2} dB is below {m} dB");
            Ok(ExitCode::from(1))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
