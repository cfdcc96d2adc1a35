//! Headless backend: pictures kept in memory, snapshots only when asked.

use styleframe::config::{DisplayBackend, DisplayConfig};
use styleframe::display::{open_headless, HeadlessStats, PowerMode};
use styleframe::frame::{pack_rgb, Command};

fn cfg(w: u32, h: u32) -> DisplayConfig {
    DisplayConfig {
        backend: DisplayBackend::Headless,
        width: w,
        height: h,
        ..DisplayConfig::default()
    }
}

#[test]
fn latest_frame_is_readable_from_another_thread() {
    let (mut screen, handle) = open_headless(&cfg(4, 2));
    assert_eq!(screen.size(), (4, 2));
    assert_eq!(handle.latest(), None);
    let pic: Vec<u32> = (0..8).map(|i| pack_rgb(i, 2 * i, 3 * i)).collect();
    screen.present(&pic).unwrap();
    let h2 = handle.clone();
    let seen = std::thread::spawn(move || h2.latest()).join().unwrap();
    assert_eq!(seen, Some(pic));
    assert_eq!(
        handle.stats(),
        HeadlessStats {
            frames_presented: 1,
            blanked: false,
            snapshots_written: 0,
            powered_off: false,
            power_offs: 0,
            snapshots_failed: 0,
        }
    );
}

#[test]
fn blank_turns_the_picture_black_until_the_next_present() {
    let (mut screen, handle) = open_headless(&cfg(2, 2));
    screen.present(&[0x00FF_FFFF; 4]).unwrap();
    screen.blank().unwrap();
    assert_eq!(handle.latest(), Some(vec![0; 4]));
    assert!(handle.stats().blanked);
    screen.present(&[7; 4]).unwrap();
    assert!(!handle.stats().blanked);
    assert_eq!(handle.stats().frames_presented, 2);
}

#[test]
fn power_off_is_recorded_and_black_until_powered_on() {
    let (mut screen, handle) = open_headless(&cfg(2, 2));
    screen.present(&[0x00FF_FFFF; 4]).unwrap();
    assert_eq!(screen.set_power(false).unwrap(), PowerMode::Off);
    assert!(handle.stats().powered_off);
    assert_eq!(handle.latest(), Some(vec![0; 4]));
    // Asking twice is one power-down.
    screen.set_power(false).unwrap();
    assert_eq!(handle.stats().power_offs, 1);
    assert_eq!(screen.set_power(true).unwrap(), PowerMode::On);
    assert!(!handle.stats().powered_off);
    screen.set_power(false).unwrap();
    assert_eq!(handle.stats().power_offs, 2);
}

#[test]
fn zero_size_in_config_means_default_size() {
    let (screen, _) = open_headless(&cfg(0, 0));
    assert_eq!(screen.size(), (1280, 720));
}

#[test]
fn never_writes_files_without_snapshot_dir() {
    let cwd_before: Vec<_> = std::fs::read_dir(".").unwrap().collect();
    let (mut screen, handle) = open_headless(&cfg(2, 2));
    for _ in 0..3 {
        screen.present(&[1; 4]).unwrap();
    }
    assert_eq!(handle.stats().snapshots_written, 0);
    assert_eq!(std::fs::read_dir(".").unwrap().count(), cwd_before.len());
}

#[test]
fn snapshots_every_nth_frame_as_png_when_dir_set() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps"); // created on demand
    let c = DisplayConfig {
        snapshot_dir: Some(snaps.clone()),
        snapshot_every: 2,
        ..cfg(3, 2)
    };
    let (mut screen, handle) = open_headless(&c);
    for i in 1..=5u8 {
        let mut pic = vec![pack_rgb(10 * i, 20, 30); 6];
        pic[5] = pack_rgb(255, 0, 128);
        screen.present(&pic).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["frame_000002.png", "frame_000004.png"]);
    assert_eq!(handle.stats().snapshots_written, 2);

    let img = image::open(snaps.join("frame_000004.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(img.dimensions(), (3, 2));
    assert_eq!(img.get_pixel(0, 0).0, [40, 20, 30]);
    assert_eq!(img.get_pixel(2, 1).0, [255, 0, 128]);
}

#[test]
fn injected_commands_and_close_behave_like_a_window() {
    let (mut screen, handle) = open_headless(&cfg(1, 1));
    handle.inject(Command::NextStyle);
    handle.inject(Command::Quit);
    let mut out = Vec::new();
    screen.poll_commands(&mut out);
    assert_eq!(out, [Command::NextStyle, Command::Quit]);
    screen.poll_commands(&mut out);
    assert_eq!(out.len(), 2, "commands are delivered once");
    assert!(screen.is_open());
    handle.close();
    assert!(!screen.is_open());
}

#[test]
fn a_snapshot_that_cannot_be_written_never_costs_the_shown_frame() {
    let dir = tempfile::tempdir().unwrap();
    // A folder that cannot be made (its parent is a file): fails for root too.
    let file = dir.path().join("a_file");
    std::fs::write(&file, b"x").unwrap();
    let c = DisplayConfig {
        snapshot_dir: Some(file.join("snaps")),
        ..cfg(2, 2)
    };
    let (mut screen, handle) = open_headless(&c);
    for i in 0..3u8 {
        screen
            .present(&[pack_rgb(i, i, i); 4])
            .expect("a snapshot failure is not the screen's");
    }
    let s = handle.stats();
    assert_eq!(s.frames_presented, 3);
    assert_eq!((s.snapshots_written, s.snapshots_failed), (0, 3));
    assert_eq!(handle.latest(), Some(vec![pack_rgb(2, 2, 2); 4]));
}
