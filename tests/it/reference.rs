//! The engine against the official TFLite runtime's outputs in
//! `../shared/reference/` (made by its `make_reference.py`).

use crate::common;
use styleframe::process::pool;

use std::collections::HashMap;

use serde::Deserialize;
use styleframe::inference::{PredictNet, Stylizer, TransferNet};
use styleframe::preprocess::{psnr, to_rgb8};
use styleframe::styles::{with_strength, Embedding, EMBEDDING_LEN};

#[derive(Deserialize)]
struct Case {
    model: String,
    content: String,
    style: String,
    strength: f32,
    shape: [usize; 3],
    png: String,
    f32: Option<String>,
}

fn reference_embeddings() -> HashMap<String, Embedding> {
    let text = std::fs::read_to_string(common::reference().join("embeddings.json")).unwrap();
    let raw: HashMap<String, Vec<f32>> = serde_json::from_str(&text).unwrap();
    raw.into_iter()
        .map(|(k, v)| {
            assert_eq!(v.len(), EMBEDDING_LEN);
            (k, Embedding(v.try_into().unwrap()))
        })
        .collect()
}

fn predict() -> PredictNet {
    PredictNet::load(
        &common::models().join("style_predict_quantized_256.tflite"),
        &pool(2),
    )
    .unwrap()
}

#[test]
fn embeddings_match_the_reference_runtime() {
    let reference = reference_embeddings();
    assert!(reference.len() >= 7);
    let mut net = predict();
    for (name, want) in &reference {
        let input = common::reference().join(format!("inputs/style_{name}_256x256.png"));
        let (_, _, rgb) = common::png(&input);
        let got = net.embed(&common::floats(&rgb)).unwrap();
        let cos = got.cosine(want);
        println!("{name}: cosine {cos:.6}");
        // The int8 prediction network is exact: 1.000000 as printed.
        assert!(
            cos >= 0.999999,
            "{name}: cosine similarity {cos} < 0.999999"
        );
    }
}

/// Every case of `model` against the official runtime: each at least
/// `min_db` (infinity: identical pixels).
fn check_cases(model: &str, min_db: f64) {
    let text = std::fs::read_to_string(common::reference().join("cases.json")).unwrap();
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap();
    let cases: Vec<&Case> = cases.iter().filter(|c| c.model == model).collect();
    assert!(cases.len() >= 10, "{model}: only {} cases", cases.len());
    let styles = reference_embeddings();
    let mut predict = predict();
    let mut nets: HashMap<(usize, usize), TransferNet> = HashMap::new();
    let mut worst = f64::INFINITY;
    let mut failures = vec![];
    for case in cases {
        let [h, w, _] = case.shape;
        let net = nets.entry((h, w)).or_insert_with(|| {
            TransferNet::load(
                &common::models().join(format!("{model}.tflite")),
                h,
                w,
                &pool(2),
            )
            .unwrap()
        });
        let (cw, ch, content) = common::png(&common::reference().join(&case.content));
        assert_eq!((ch as usize, cw as usize), (h, w));
        let style = styles[&case.style];
        let embedding = if case.strength < 1.0 {
            // The content's own embedding comes from its 256x256 centre crop.
            let stem = case.content.rsplit_once('_').unwrap().0;
            let (_, _, c256) =
                common::png(&common::reference().join(format!("{stem}_256x256.png")));
            let own = predict.embed(&common::floats(&c256)).unwrap();
            with_strength(&style, &own, case.strength)
        } else {
            style
        };
        let mut out = vec![];
        net.stylize(&common::floats(&content), &embedding, &mut out)
            .unwrap();
        let mut rgb = vec![];
        to_rgb8(&out, &mut rgb);
        let (_, _, want) = common::png(&common::reference().join(&case.png));
        let p = psnr(&rgb, &want);
        if let Some(raw) = &case.f32 {
            let bytes = std::fs::read(common::reference().join(raw)).unwrap();
            let want: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let max = out
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            println!("{}: raw max abs diff {max:.5}", case.png);
        }
        println!("{}: PSNR {p:.2} dB", case.png);
        worst = worst.min(p);
        if p < min_db {
            failures.push(format!("{}: PSNR {p:.2} dB < {min_db} dB", case.png));
        }
    }
    println!("{model}: worst PSNR {worst:.2} dB");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn fp16_transfer_matches_the_reference_runtime() {
    // As advertised (worst 77.25 dB on x86-64, 77.19 on aarch64), with a
    // 2 dB margin for other kernels' rounding.
    check_cases("style_transfer_f16_384", 75.0);
}

#[test]
fn int8_transfer_matches_the_reference_runtime() {
    // The int8 arithmetic is the official runtime's: bit for bit.
    check_cases("style_transfer_quantized_384", f64::INFINITY);
}

/// The optional dynamic-range file (weights int8, activations float, output
/// shape computed in the graph) loads too, at another size, and agrees with
/// the fp16 network (there is no reference output for it).
#[test]
fn dynamic_range_transfer_runs_at_256x448_close_to_fp16() {
    let styles = reference_embeddings();
    let (_, _, content) =
        common::png(&common::reference().join("inputs/colva_beach_sq_256x448.png"));
    let x = common::floats(&content);
    let run = |model: &str| {
        let mut net = TransferNet::load(
            &common::models().join(format!("{model}.tflite")),
            256,
            448,
            &pool(2),
        )
        .unwrap();
        let mut y = vec![];
        net.stylize(&x, &styles["Camille_Mauclair"], &mut y)
            .unwrap();
        let mut rgb = vec![];
        to_rgb8(&y, &mut rgb);
        rgb
    };
    let p = psnr(
        &run("style_transfer_quantized_dynamic"),
        &run("style_transfer_f16_384"),
    );
    println!("dynamic vs fp16: {p:.2} dB");
    // Its int8 weights alone move it ~27-37 dB from fp16; another style is ~12 dB away.
    assert!(
        p > 25.0,
        "dynamic-range network differs from fp16: {p:.2} dB"
    );
}
