//! Files styleframe writes, on a full disk and with bad input: nothing the user
//! had is lost, nothing cut off is left behind (issue #13.3, #13.11).
//!
//! A full disk is simulated with RLIMIT_FSIZE on the child process: writes
//! past the limit fail with EFBIG mid-write, as on a full file system.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_styleframe"));
    c.env("RUST_LOG", "info");
    c
}

/// Runs `cmd` with files limited to `bytes` (SIGXFSZ ignored, so the write
/// fails with EFBIG instead of killing the process).
fn on_full_disk(cmd: &mut Command, bytes: u64) -> Output {
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (signal, setrlimit), on plain values owned by the child.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file in `dir`, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn painting(name: &str) -> PathBuf {
    common::shared().join("images/style").join(name)
}

fn photo(name: &str) -> PathBuf {
    common::shared().join("images/content").join(name)
}

/// A style set file holding the shipped styles, as a user's would.
fn style_set(dir: &Path) -> (PathBuf, String) {
    let p = dir.join("mine.json");
    let text = styleframe::styles::BUILTIN_SET.to_string();
    std::fs::write(&p, &text).unwrap();
    (p, text)
}

#[test]
fn embed_on_a_full_disk_keeps_the_style_set_whole_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (set, before) = style_set(dir.path());
    let o = on_full_disk(
        sf().arg("embed")
            .arg(painting("zigzag_colorful.jpg"))
            .arg("--into")
            .arg(&set)
            .arg("--models")
            .arg(common::models()),
        before.len() as u64 + 100,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mine.json"), "the error names the file: {err}");
    assert_eq!(std::fs::read_to_string(&set).unwrap(), before);
    assert_eq!(names(dir.path()), ["mine.json"]);
}

#[test]
fn still_on_a_full_disk_keeps_the_old_picture_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    std::fs::write(&out, b"the user's old picture").unwrap();
    let o = on_full_disk(
        sf().arg("still")
            .arg(photo("famicom.jpg"))
            .arg(&out)
            .args(["--style", "starry_night", "--size", "64x64", "--models"])
            .arg(common::models()),
        1000,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("out.png"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the user's old picture");
    assert_eq!(names(dir.path()), ["out.png"]);
}

#[test]
fn models_fetch_on_a_full_disk_leaves_no_part_file() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("models");
    let o = on_full_disk(
        sf().args(["models", "fetch", "--from"])
            .arg(common::models())
            .arg("--dir")
            .arg(&dest),
        1 << 20,
    );
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(names(&dest), Vec::<String>::new(), "{err}");
}

/// A headless run on the synthetic scene writing snapshots to `snaps`.
fn headless_run(dir: &Path, snaps: &Path, extra_config: &str) -> Command {
    let cfg = dir.join("styleframe.toml");
    std::fs::write(
        &cfg,
        format!(
            "[models]\ndir = \"{}\"\n[styles]\nmorph_seconds = 0.3\n{extra_config}\n\
             [camera]\nsource = \"synthetic\"\nfps = 10\n\
             [inference]\nmax_pixels = 4096\nmin_pixels = 4096\ndegrade_after_ms = 0\n\
             [display]\nbackend = \"headless\"\nwidth = 64\nheight = 64\nfps = 10\n\
             snapshot_dir = \"{}\"\n",
            common::models().display(),
            snaps.display()
        ),
    )
    .unwrap();
    let mut c = sf();
    c.args(["run", "--seconds", "4", "--config"]).arg(&cfg);
    c
}

#[test]
fn snapshots_on_a_full_disk_cost_no_shown_frame_and_leave_no_cut_off_png() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps");
    std::fs::create_dir(&snaps).unwrap();
    // 64x64 PNGs of the painted scene are several kB: none fits in 200 bytes.
    let o = on_full_disk(&mut headless_run(dir.path(), &snaps, ""), 200);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("first stylized frame shown"), "{err}");
    assert_eq!(names(&snaps), Vec::<String>::new(), "cut-off files left");
    // The screen was never taken for down, and the failure is said once
    // (rate-limited), not every frame.
    assert!(!err.contains("retrying"), "{err}");
    assert_eq!(err.matches("snapshot(s) failed so far").count(), 1, "{err}");
}

#[test]
fn a_broken_user_style_file_is_logged_and_the_frame_runs_with_the_built_in_styles() {
    let dir = tempfile::tempdir().unwrap();
    let (set, text) = style_set(dir.path());
    // Cut off mid-file, as a full disk left it before the writes were atomic.
    std::fs::write(&set, &text[..text.len() / 2]).unwrap();
    let snaps = dir.path().join("snaps");
    let extra = format!("user_file = \"{}\"", set.display());
    let o = headless_run(dir.path(), &snaps, &extra).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("mine.json"), "the log names the file: {err}");
    assert!(err.contains("running without the user's styles"), "{err}");
    assert!(err.contains("first stylized frame shown"), "{err}");
}

#[test]
fn embed_never_writes_a_set_that_would_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let (set, before) = style_set(dir.path());
    // An empty name: refused as a usage error, the set untouched.
    let o = sf()
        .arg("embed")
        .arg(painting("zigzag_colorful.jpg"))
        .args(["--name", "", "--into"])
        .arg(&set)
        .arg("--models")
        .arg(common::models())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--name"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&set).unwrap(), before);

    // A name differing only in case from one in the set replaces that style
    // (the loader treats names case-insensitively).
    let o = sf()
        .arg("embed")
        .arg(painting("zigzag_colorful.jpg"))
        .args(["--name", "Starry_Night", "--into"])
        .arg(&set)
        .arg("--models")
        .arg(common::models())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let loaded = styleframe::styles::StyleSet::load(&set).unwrap();
    let shipped = styleframe::styles::StyleSet::builtin();
    assert_eq!(loaded.styles.len(), shipped.styles.len());
    assert_ne!(
        loaded.find("starry_night").unwrap().embedding,
        shipped.find("starry_night").unwrap().embedding
    );
}

#[test]
fn still_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("photo.jpg");
    std::fs::copy(photo("famicom.jpg"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let link = dir.path().join("link.jpg");
    std::fs::hard_link(&input, &link).unwrap();
    for out in [&input, &link] {
        let o = sf()
            .arg("still")
            .arg(&input)
            .arg(out)
            .args(["--style", "starry_night", "--size", "64x64", "--models"])
            .arg(common::models())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("input picture"), "{err}");
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
}
