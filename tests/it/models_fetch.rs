//! `models fetch`: mirror first, else the URL; every file sha256-checked.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;

use styleframe::models::{fetch, Fetched, Manifest, ModelEntry};

/// Serves `body` over HTTP on loopback for `n` requests; returns the base URL.
fn serve(body: Vec<u8>, n: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in l.incoming().take(n) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&body).unwrap();
        }
    });
    format!("http://{addr}")
}

fn manifest(url: &str, sha256: &str) -> Manifest {
    Manifest {
        model: vec![ModelEntry {
            id: "m".into(),
            role: "predict".into(),
            file: "m.tflite".into(),
            url: format!("{url}/m.tflite"),
            sha256: sha256.into(),
            optional: false,
            inputs: vec![],
            outputs: vec![],
        }],
    }
}

fn official() -> (Vec<u8>, String) {
    let m = Manifest::builtin();
    let e = m.get("style_transfer_f16_384").unwrap();
    (
        std::fs::read(common::models().join(&e.file)).unwrap(),
        e.sha256.clone(),
    )
}

#[test]
fn downloads_when_there_is_no_mirror_and_keeps_a_good_file() {
    let (bytes, sha) = official();
    let url = serve(bytes.clone(), 1);
    let dir = tempfile::tempdir().unwrap();
    let got = fetch(&manifest(&url, &sha), dir.path(), None, false, |_, _| {}).unwrap();
    assert!(matches!(&got[0], Fetched::Downloaded(u) if u.ends_with("/m.tflite")));
    assert_eq!(std::fs::read(dir.path().join("m.tflite")).unwrap(), bytes);
    // Second time: nothing to do (the server would refuse a second request).
    let got = fetch(&manifest(&url, &sha), dir.path(), None, false, |_, _| {}).unwrap();
    assert_eq!(got[0], Fetched::AlreadyThere);
}

#[test]
fn a_download_with_the_wrong_checksum_is_refused_and_leaves_nothing() {
    let url = serve(b"not the model".to_vec(), 1);
    let (_, sha) = official();
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&manifest(&url, &sha), dir.path(), None, false, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("/m.tflite") && err.contains(&sha), "{err}");
    assert!(!dir.path().join("m.tflite").exists());
}

#[test]
fn the_mirror_is_used_first() {
    let (_, sha) = official();
    let mirror = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::models().join("style_transfer_f16_384.tflite"),
        mirror.path().join("m.tflite"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // An unreachable URL: the mirror must make it unnecessary.
    let got = fetch(
        &manifest("http://127.0.0.1:9", &sha),
        dir.path(),
        Some(mirror.path()),
        false,
        |_, _| {},
    )
    .unwrap();
    assert!(matches!(&got[0], Fetched::FromMirror(_)));
}

#[test]
fn the_whole_official_set_installs_from_the_shared_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let got = fetch(
        &Manifest::builtin(),
        dir.path(),
        Some(&common::models()),
        true,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(got.len(), Manifest::builtin().model.len());
    for m in Manifest::builtin().model {
        styleframe::models::check_file(&dir.path().join(&m.file), &m.sha256).unwrap();
    }
}

#[test]
fn manifest_tensors_are_the_ones_in_the_files() {
    use styleframe::inference::tflite::{import, ImportOptions};
    for m in Manifest::builtin().model {
        let bytes = std::fs::read(common::models().join(&m.file)).unwrap();
        let i = import(&bytes, &ImportOptions::default()).unwrap();
        assert_eq!(i.inputs.len(), m.inputs.len(), "{}", m.id);
        for (t, text) in i.inputs.iter().zip(&m.inputs) {
            assert!(
                text.starts_with(&t.name),
                "{}: input {} vs {text}",
                m.id,
                t.name
            );
            if !text.contains("computed at run time") {
                let dims = format!("{:?}", t.shape).replace(' ', "");
                assert!(text.contains(&dims), "{}: input {dims} vs {text}", m.id);
            }
        }
        for (t, text) in i.outputs.iter().zip(&m.outputs) {
            assert!(
                text.starts_with(&t.name),
                "{}: output {} vs {text}",
                m.id,
                t.name
            );
        }
    }
}
