//! Arguments and exit codes: every bad value is a usage error (exit 2) naming
//! the argument, never a panic (101) or an abort (134); messages say what is
//! wrong once, on one line (issue #13.8, #13.12).

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

fn sf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_styleframe"));
    c.env("RUST_LOG", "info");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every numeric argument with values out of its range: the command (up to
/// the argument), the argument, and the bad values.
const NUMERIC: &[(&[&str], &str, &[&str])] = &[
    (&["run"], "--seconds", &["-1", "nan", "inf", "1e30", "0"]),
    (&["run"], "--strength", &["-0.1", "1.5", "nan", "inf"]),
    (&["demo"], "--seconds", &["-1", "nan", "inf", "1e30", "0"]),
    (
        &["demo"],
        "--change-every",
        &["-1", "nan", "inf", "1e30", "0"],
    ),
    (
        &["still", "a.jpg", "b.png", "--style", "x"],
        "--strength",
        &["-1", "2", "nan", "inf"],
    ),
    (
        &["still", "a.jpg", "b.png", "--style", "x"],
        "--size",
        &["100000x100000", "0x0", "99999999999999999999x4", "-4x4"],
    ),
    (
        &["still", "a.jpg", "b.png", "--style", "x"],
        "--threads",
        &["0", "1000", "-1", "nan"],
    ),
    (
        &["embed", "a.jpg", "--into", "s.json"],
        "--threads",
        &["0", "1000", "-1"],
    ),
    (&["bench"], "--seconds", &["-1", "nan", "inf", "1e30", "0"]),
    (&["bench"], "--runs", &["0", "-1", "1e30"]),
    (&["bench"], "--predict-runs", &["0", "-1"]),
    (&["bench"], "--thread-counts", &["0", "1000", "1,1000"]),
    (&["bench"], "--sizes", &["100000x100000", "0x0"]),
    (&["bench"], "--threads", &["0", "1000"]),
    (&["psnr", "a.png", "b.png"], "--min", &["nan", "-1", "inf"]),
];

#[test]
fn every_numeric_argument_out_of_range_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = vec![];
    for (cmd, arg, values) in NUMERIC {
        for v in *values {
            let o = sf()
                .current_dir(dir.path())
                .args(*cmd)
                .arg(format!("{arg}={v}"))
                .output()
                .unwrap();
            let err = stderr(&o);
            if o.status.code() != Some(2) || !err.contains(arg) {
                failures.push(format!(
                    "{} {arg}={v}: exit {:?}: {}",
                    cmd.join(" "),
                    o.status.code(),
                    err.lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a refused command wrote files"
    );
}

#[test]
fn usage_errors_of_still_and_embed_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let photo = common::shared().join("images/content/famicom.jpg");
    let painting = common::shared().join("images/style/zigzag_colorful.jpg");
    let models = common::models();
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        // A painting file that is not there is said as such.
        (
            vec![
                "still".as_ref(),
                photo.as_os_str(),
                "out.png".as_ref(),
                "--style".as_ref(),
                "/nonexistent.jpg".as_ref(),
            ],
            "no such painting file",
        ),
        // An output the program cannot write.
        (
            vec![
                "still".as_ref(),
                photo.as_os_str(),
                "out.xyz".as_ref(),
                "--style".as_ref(),
                "starry_night".as_ref(),
            ],
            "out.xyz",
        ),
        // --name with two paintings.
        (
            vec![
                "embed".as_ref(),
                painting.as_os_str(),
                painting.as_os_str(),
                "--name".as_ref(),
                "two".as_ref(),
                "--into".as_ref(),
                "s.json".as_ref(),
            ],
            "--name",
        ),
        // A network id that is not in the manifest.
        (
            vec![
                "still".as_ref(),
                photo.as_os_str(),
                "out.png".as_ref(),
                "--style".as_ref(),
                "starry_night".as_ref(),
                "--model".as_ref(),
                "nope".as_ref(),
            ],
            "nope",
        ),
    ];
    for (args, needle) in cases {
        let o = sf()
            .current_dir(dir.path())
            .args(&args)
            .arg("--models")
            .arg(&models)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("unknown style"), "{args:?}: {err}");
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// A config for `run` on the synthetic scene, headless, for a second.
fn config(dir: &Path, models: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("styleframe.toml");
    std::fs::write(
        &p,
        format!(
            "[models]\ndir = \"{}\"\n{extra}\n[camera]\nsource = \"synthetic\"\n\
             [inference]\nmax_pixels = 4096\nmin_pixels = 4096\n\
             [display]\nbackend = \"headless\"\nwidth = 64\nheight = 64\n",
            models.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn an_unknown_network_in_the_config_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &common::models(), "transfer = \"nope\"");
    let o = sf().args(["run", "--config"]).arg(&cfg).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("models.transfer = \"nope\""), "{err}");
    assert!(err.contains("style_transfer_f16_384"), "{err}");
}

#[test]
fn models_given_with_a_folder_come_from_that_folder_only() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let cfg = config(dir.path(), &common::models(), "");
    // The files are findable elsewhere (STYLEFRAME_MODELS), but --models
    // names a folder without them: an error naming it, not a silent fallback.
    let o = sf()
        .args(["run", "--seconds", "1", "--config"])
        .arg(&cfg)
        .arg("--models")
        .arg(&empty)
        .env("STYLEFRAME_MODELS", common::models())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains(&*empty.to_string_lossy()), "{err}");
}

#[test]
fn models_fetch_from_a_missing_mirror_is_an_error_not_a_download() {
    let dir = tempfile::tempdir().unwrap();
    let o = sf()
        .args(["models", "fetch", "--from", "/nonexistent", "--dir"])
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/nonexistent") && err.contains("not a folder"),
        "{err}"
    );
    assert!(!err.contains("downloading"), "{err}");
}
