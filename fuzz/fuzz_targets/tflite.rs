//! The TFLite importer on arbitrary bytes: a damaged or hostile model file
//! must be an error, never a panic, an abort or a huge allocation; a file
//! that imports is also run once on a small input, so the kernels see the
//! crafted shapes too (a 1x9 depthwise layer, odd strides, ...).
#![no_main]

use libfuzzer_sys::fuzz_target;
use styleframe::inference::run_on_zeros;
use styleframe::inference::tflite::{import, ImportOptions};

fuzz_target!(|data: &[u8]| {
    let _ = import(data, &ImportOptions::default());
    let small = ImportOptions {
        input_hw: Some((16, 16)),
        emulate_int8: true,
    };
    if let Ok(imported) = import(data, &small) {
        let _ = run_on_zeros(imported, 1 << 16);
    }
});
