//! The command line as a user types it.

use crate::common;

use std::process::Command;

fn sf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_styleframe"));
    c.env("RUST_LOG", "info");
    c
}

fn content(name: &str) -> std::path::PathBuf {
    common::shared().join("images/content").join(name)
}

#[test]
fn still_stylizes_a_photo_at_the_requested_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let o = sf()
        .args(["still"])
        .arg(content("golden_gate.jpg"))
        .arg(&out)
        .args(["--style", "starry_night", "--size", "256x448", "--models"])
        .arg(common::models())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&out).unwrap().into_rgb8();
    assert_eq!(img.dimensions(), (448, 256));
    // A painting file as the style, at half strength, works too and differs.
    let out2 = dir.path().join("out2.png");
    let o = sf()
        .args(["still"])
        .arg(content("golden_gate.jpg"))
        .arg(&out2)
        .arg("--style")
        .arg(common::shared().join("images/style/the_scream.jpg"))
        .args(["--strength", "0.5", "--size", "256x448", "--models"])
        .arg(common::models())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img2 = image::open(&out2).unwrap().into_rgb8();
    let p = styleframe::preprocess::psnr(img.as_raw(), img2.as_raw());
    assert!(
        p < 25.0,
        "two different styles gave nearly the same picture ({p:.1} dB)"
    );
}

#[test]
fn an_unknown_style_names_the_known_ones_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = sf()
        .args(["still"])
        .arg(content("famicom.jpg"))
        .arg(dir.path().join("x.png"))
        .args(["--style", "mona_lisa", "--models"])
        .arg(common::models())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mona_lisa") && err.contains("starry_night"),
        "{err}"
    );
    assert!(!dir.path().join("x.png").exists());
}

#[test]
fn embed_adds_paintings_to_a_style_set_matching_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("mine.json");
    let o = sf()
        .arg("embed")
        .arg(common::shared().join("images/style/starry_night.jpg"))
        .arg(common::shared().join("images/style/shipwreck.jpg"))
        .arg("--into")
        .arg(&set)
        .arg("--models")
        .arg(common::models())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = styleframe::styles::StyleSet::load(&set).unwrap();
    assert_eq!(s.styles.len(), 2);
    let reference: std::collections::HashMap<String, Vec<f32>> = serde_json::from_str(
        &std::fs::read_to_string(common::reference().join("embeddings.json")).unwrap(),
    )
    .unwrap();
    for st in &s.styles {
        let r = styleframe::styles::Embedding(reference[&st.name].clone().try_into().unwrap());
        let cos = st.embedding.cosine(&r);
        println!(
            "{}: cosine {cos:.5} to the reference runtime (from the JPEG)",
            st.name
        );
        assert!(cos >= 0.999, "{}: {cos}", st.name);
    }
}

#[test]
fn doctor_says_what_is_missing_and_exits_10_without_a_camera() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[models]\ndir = \"{}\"\n[display]\nbackend = \"headless\"\n",
            common::models().display()
        ),
    )
    .unwrap();
    let o = sf()
        .args(["doctor", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    if std::path::Path::new("/dev/video0").exists() {
        eprintln!("this machine has a camera: skipping the no-camera expectation");
        return;
    }
    assert_eq!(o.status.code(), Some(10), "{text}");
    assert!(
        text.contains("no camera") && text.contains("model style_transfer_f16_384"),
        "{text}"
    );
}
