//! Bad and unusual picture files given to `still` and `embed` (real
//! processes, address space capped at 1 GiB), and to the decoder in-process.
//!
//! Exit codes (src/cli/mod.rs): a picture that cannot be used (not a picture,
//! truncated, too large, unreadable) is a runtime error, exit 1, with one
//! line naming the file; nothing is written. Every picture the decoder
//! accepts (1x1, 16-bit, greyscale, greyscale+alpha, RGBA, CMYK JPEG,
//! EXIF-rotated JPEG) stylizes with exit 0. Never a panic, never an abort.
//!
//! Also the regression inputs found by fuzzing (`fuzz/`).

use crate::common;

use std::io::Cursor;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, RgbImage, Rgba};
use styleframe::preprocess::{decode_rgb, psnr, PreprocessError};

/// Address-space cap for the child: a 20000x20000 picture decoded in full
/// would need 1.2 GB, so an attempt aborts instead of passing.
const AS_LIMIT: u64 = 1 << 30;

fn styleframe(args: &[&std::ffi::OsStr]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_styleframe"));
    cmd.args(args).env("RUST_LOG", "info");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT as libc::rlim_t,
                rlim_max: AS_LIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("cannot start styleframe")
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn models() -> PathBuf {
    common::models()
}

/// `styleframe still <input> <out> --style starry_night --size 64x64`.
fn still(input: &Path, out: &Path, size: &str) -> (Option<i32>, String) {
    let m = models();
    let o = styleframe(&[
        os("still"),
        input.as_os_str(),
        out.as_os_str(),
        os("--style"),
        os("starry_night"),
        os("--size"),
        os(size),
        os("--threads"),
        os("1"),
        os("--models"),
        m.as_os_str(),
    ]);
    code_and_stderr(o)
}

fn code_and_stderr(o: Output) -> (Option<i32>, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn embed(painting: &Path, into: &Path) -> (Option<i32>, String) {
    let m = models();
    let o = styleframe(&[
        os("embed"),
        painting.as_os_str(),
        os("--into"),
        into.as_os_str(),
        os("--threads"),
        os("1"),
        os("--models"),
        m.as_os_str(),
    ]);
    code_and_stderr(o)
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut v = vec![];
    img.write_to(&mut Cursor::new(&mut v), format).unwrap();
    v
}

/// Left half red, right half blue.
fn halves(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            Rgb([230, 20, 20])
        } else {
            Rgb([20, 20, 230])
        }
    })
}

fn jpeg(img: &image::RgbImage) -> Vec<u8> {
    crate::common::jpeg_q(img, 95)
}

/// The JPEG with an APP1 Exif segment (big-endian TIFF, one IFD entry:
/// Orientation = `orientation`) right after SOI, as a phone camera writes it.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\x00\x00".to_vec();
    payload.extend_from_slice(&tiff);
    assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut c = kind.to_vec();
    c.extend_from_slice(data);
    out.extend_from_slice(&c);
    out.extend_from_slice(&crc32(&c).to_be_bytes());
}

/// A valid PNG header claiming `w` x `h` RGB8, with a tiny IDAT (a few rows
/// of zeros): small on disk, 1.2 GB decoded.
fn huge_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = vec![];
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of a stored (uncompressed) block of 1000 zero bytes.
    let mut idat = vec![0x78, 0x01, 0x01];
    idat.extend_from_slice(&1000u16.to_le_bytes());
    idat.extend_from_slice(&(!1000u16).to_le_bytes());
    idat.extend_from_slice(&[0; 1000]);
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// An 8x8 CMYK JPEG (Adobe APP14, as Photoshop writes it) made with Pillow:
/// left half red, right half blue.
const CMYK_JPEG_HEX: &str = "ffd8ffee000e41646f626500640000000000ffdb0043000302020302020303030304030304050805050404050a070706080c0a0c0c0b0a0b0b0d0e12\
100d0e110e0b0b1016101113141515150c0f171816141812141514ffc000140800080008044311004d11005911004b1100ffc4001f00000105010101\
01010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d0102030004110512213141061351610722\
7114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63646566\
6768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5\
d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda000e0443004d0059004b00003f004ff82e77fcd13ffb8dff00ed857e55527fc10c\
7fe6b67fdc13ff006febf54ebfffd9";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every kind of picture file the tests use, by name.
fn write_inputs(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let photo = DynamicImage::ImageRgb8(halves(64, 48));
    let png = encode(&photo, ImageFormat::Png);
    let jpg = jpeg(&halves(64, 48));
    let gray = DynamicImage::ImageLuma8(ImageBuffer::from_fn(40, 30, |x, _| Luma([(x * 6) as u8])));
    let gray_alpha = DynamicImage::ImageLumaA8(ImageBuffer::from_fn(40, 30, |x, y| {
        LumaA([(x * 6) as u8, (y * 8) as u8])
    }));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(40, 30, |x, y| {
        Rgba([200, (x * 6) as u8, 50, (y * 8) as u8])
    }));
    let rgb16 = DynamicImage::ImageRgb16(ImageBuffer::from_fn(40, 30, |x, y| {
        Rgb([x as u16 * 1600, y as u16 * 2000, 40000])
    }));
    let one = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([10, 200, 30])));
    let files: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "not_a_picture",
            "notes.jpg",
            b"Shopping list: milk, eggs\n".to_vec(),
        ),
        ("empty", "empty.png", vec![]),
        ("truncated_jpeg", "cut.jpg", jpg[..jpg.len() / 2].to_vec()),
        ("truncated_png", "cut.png", png[..png.len() / 2].to_vec()),
        ("png_header_only", "header.png", png[..33].to_vec()),
        ("huge_png", "huge.png", huge_png(20000, 20000)),
        ("one_pixel", "one.png", encode(&one, ImageFormat::Png)),
        ("cmyk_jpeg", "cmyk.jpg", unhex(CMYK_JPEG_HEX)),
        ("png_16bit", "deep.png", encode(&rgb16, ImageFormat::Png)),
        ("grayscale", "gray.png", encode(&gray, ImageFormat::Png)),
        (
            "grayscale_alpha",
            "gray_alpha.png",
            encode(&gray_alpha, ImageFormat::Png),
        ),
        ("rgba", "rgba.png", encode(&rgba, ImageFormat::Png)),
        (
            "exif_rotated",
            "rotated.jpg",
            with_exif_orientation(&jpg, 6),
        ),
    ];
    files
        .into_iter()
        .map(|(name, file, bytes)| {
            let p = dir.join(file);
            std::fs::write(&p, bytes).unwrap();
            (name, p)
        })
        .collect()
}

const UNUSABLE: &[&str] = &[
    "not_a_picture",
    "empty",
    "truncated_jpeg",
    "truncated_png",
    "png_header_only",
    "huge_png",
];

fn input<'a>(inputs: &'a [(&str, PathBuf)], name: &str) -> &'a Path {
    &inputs.iter().find(|(n, _)| *n == name).unwrap().1
}

// ---------------------------------------------------------------------------
// In-process: what the decoder makes of each file.

#[test]
fn unusable_pictures_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path());
    for name in UNUSABLE {
        let path = input(&inputs, name);
        let bytes = std::fs::read(path).unwrap();
        let e = decode_rgb(&bytes, path).expect_err(name);
        println!("{name}: {e}");
        assert!(
            e.to_string().contains(&path.display().to_string()),
            "{name}: {e}"
        );
    }
    // The huge one is refused for its size, not for running out of memory.
    let huge = input(&inputs, "huge_png");
    let e = decode_rgb(&std::fs::read(huge).unwrap(), huge).unwrap_err();
    assert!(matches!(e, PreprocessError::TooLarge { .. }), "{e:?}");
    assert!(
        e.to_string().contains("20000x20000"),
        "the message should say how large: {e}"
    );
    assert!(std::fs::metadata(huge).unwrap().len() < 2000);
}

#[test]
fn unusual_pictures_decode_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path());
    let load = |name: &str| {
        let p = input(&inputs, name);
        decode_rgb(&std::fs::read(p).unwrap(), p).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(load("one_pixel").get_pixel(0, 0).0, [10, 200, 30]);
    // Greyscale comes out grey.
    let g = load("grayscale");
    assert_eq!(g.get_pixel(10, 3).0, [60, 60, 60]);
    // Alpha over white: a transparent row is white, an opaque pixel keeps its value.
    let ga = load("grayscale_alpha");
    assert_eq!(ga.get_pixel(10, 0).0, [255, 255, 255]);
    let rgba = load("rgba");
    assert_eq!(rgba.get_pixel(0, 0).0, [255, 255, 255]);
    assert!(
        rgba.get_pixel(39, 29).0[2] < 200,
        "an almost opaque blue-less pixel turned white"
    );
    // 16-bit scaled to 8-bit.
    let d = load("png_16bit");
    assert_eq!(
        d.get_pixel(0, 0).0[2],
        (40000.0f64 * 255.0 / 65535.0).round() as u8
    );
    // CMYK: red stays red, blue stays blue (Adobe's inverted CMYK handled).
    let c = load("cmyk_jpeg");
    let (l, r) = (c.get_pixel(1, 4).0, c.get_pixel(6, 4).0);
    println!("cmyk left {l:?} right {r:?}");
    assert!(l[0] > 180 && l[2] < 90, "left half should be red: {l:?}");
    assert!(r[2] > 90 && r[0] < 90, "right half should be blue: {r:?}");
}

#[test]
fn exif_orientation_6_turns_the_picture_upright() {
    let stored = halves(64, 32);
    let j = with_exif_orientation(&jpeg(&stored), 6);
    let img = decode_rgb(&j, Path::new("rotated.jpg")).unwrap();
    // Stored 64x32 with red on the left; shown rotated 90° clockwise: 32x64, red on top.
    assert_eq!(img.dimensions(), (32, 64));
    let (top, bottom) = (img.get_pixel(16, 8).0, img.get_pixel(16, 56).0);
    assert!(top[0] > 180 && top[2] < 80, "top should be red: {top:?}");
    assert!(
        bottom[2] > 180 && bottom[0] < 80,
        "bottom should be blue: {bottom:?}"
    );
    // Without the Exif segment the same bytes stay as stored.
    assert_eq!(
        decode_rgb(&jpeg(&stored), Path::new("plain.jpg"))
            .unwrap()
            .dimensions(),
        (64, 32)
    );
}

// ---------------------------------------------------------------------------
// Real processes.

#[test]
fn still_refuses_unusable_pictures_with_exit_1_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path());
    let missing = dir.path().join("no_such_photo.jpg");
    let mut cases: Vec<(&str, &Path)> = UNUSABLE.iter().map(|n| (*n, input(&inputs, n))).collect();
    cases.push(("missing", &missing));
    cases.push(("a_folder", dir.path()));
    for (name, path) in cases {
        let out = dir.path().join(format!("{name}.out.png"));
        let (code, err) = still(path, &out, "64x64");
        println!("{name}: exit {code:?}: {}", err.trim());
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(
            err.contains(&path.display().to_string()),
            "{name}: the error does not name the file: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("memory allocation"),
            "{name}: {err}"
        );
        assert!(!out.exists(), "{name}: an output was written");
    }
}

#[test]
fn still_stylizes_every_picture_the_decoder_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path());
    for (name, path) in inputs.iter().filter(|(n, _)| !UNUSABLE.contains(n)) {
        let out = dir.path().join(format!("{name}.out.png"));
        let (code, err) = still(path, &out, "64x64");
        assert_eq!(code, Some(0), "{name}: {err}");
        let img = image::open(&out).unwrap_or_else(|e| panic!("{name}: output unreadable: {e}"));
        assert_eq!((img.width(), img.height()), (64, 64), "{name}");
    }
}

#[test]
fn still_honours_exif_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let stored = halves(128, 64);
    let rotated_file = dir.path().join("phone.jpg");
    std::fs::write(&rotated_file, with_exif_orientation(&jpeg(&stored), 6)).unwrap();
    // The same scene already upright (rotated 90° clockwise by hand), and as stored.
    let upright_file = dir.path().join("upright.jpg");
    std::fs::write(&upright_file, jpeg(&image::imageops::rotate90(&stored))).unwrap();
    let plain_file = dir.path().join("plain.jpg");
    std::fs::write(&plain_file, jpeg(&stored)).unwrap();
    let mut outs = vec![];
    for f in [&rotated_file, &upright_file, &plain_file] {
        let out = f.with_extension("out.png");
        // Portrait network size: 96 tall, 48 wide.
        let (code, err) = still(f, &out, "96x48");
        assert_eq!(code, Some(0), "{}: {err}", f.display());
        outs.push(image::open(&out).unwrap().into_rgb8().into_raw());
    }
    let (to_upright, to_plain) = (psnr(&outs[0], &outs[1]), psnr(&outs[0], &outs[2]));
    println!("EXIF-rotated output vs upright: {to_upright:.1} dB, vs as stored: {to_plain:.1} dB");
    assert!(
        to_upright > to_plain + 6.0,
        "the EXIF orientation was not applied"
    );
    assert!(to_upright > 25.0);
}

#[test]
fn embed_refuses_unusable_paintings_and_leaves_the_set_alone() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path());
    let set = dir.path().join("mine.json");
    for name in ["not_a_picture", "truncated_jpeg", "huge_png"] {
        let path = input(&inputs, name);
        let (code, err) = embed(path, &set);
        println!("{name}: exit {code:?}: {}", err.trim());
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("memory allocation"),
            "{name}: {err}"
        );
        assert!(!set.exists(), "{name}: the style set was written");
    }
    // A good painting (with alpha) after all that: the set is created.
    let (code, err) = embed(input(&inputs, "rgba"), &set);
    assert_eq!(code, Some(0), "{err}");
    let s = styleframe::styles::StyleSet::load(&set).unwrap();
    assert_eq!(s.styles.len(), 1);
    assert_eq!(s.styles[0].name, "rgba");
}

// ---------------------------------------------------------------------------
// Damaged model files: the importer returns an error, never panics.

#[test]
fn damaged_model_files_are_import_errors_never_panics() {
    use styleframe::inference::tflite::{import, ImportOptions};
    let opts = ImportOptions {
        input_hw: Some((16, 16)),
        emulate_int8: true,
    };
    let mut panics = vec![];
    let mut errors = 0;
    let mut try_import = |what: String, bytes: &[u8]| match std::panic::catch_unwind(|| {
        import(bytes, &opts).map(|_| ())
    }) {
        Ok(Ok(())) => {}
        Ok(Err(_)) => errors += 1,
        Err(_) => panics.push(what),
    };
    for file in [
        "style_transfer_quantized_dynamic.tflite",
        "style_transfer_f16_384.tflite",
    ] {
        let good = std::fs::read(models().join(file)).unwrap();
        for cut in [
            0,
            3,
            4,
            8,
            16,
            100,
            1000,
            good.len() / 3,
            good.len() / 2,
            good.len() - 1,
        ] {
            try_import(format!("{file} cut at {cut}"), &good[..cut]);
        }
        // Bytes flipped in the flatbuffer's tables (the first KiB holds the
        // root offsets and vtables), and anywhere.
        let mut rng = fastrand::Rng::with_seed(0x5afe);
        for i in 0..40 {
            let mut bad = good.clone();
            let at = if i < 20 {
                rng.usize(..1024)
            } else {
                rng.usize(..bad.len())
            };
            bad[at] ^= rng.u8(1..);
            try_import(format!("{file} byte {at} flipped"), &bad);
        }
    }
    try_import("nothing".into(), &[]);
    try_import("a PNG".into(), &huge_png(8, 8));
    println!("{errors} import errors, panics: {panics:?}");
    assert!(panics.is_empty(), "the importer panicked on: {panics:?}");
    assert!(errors >= 20, "damaged files were accepted");
}
