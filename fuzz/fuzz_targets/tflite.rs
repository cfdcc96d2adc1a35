//! The TFLite importer on arbitrary bytes: a damaged or hostile model file
//! must be an error, never a panic, an abort or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use styleframe::inference::tflite::{import, ImportOptions};

fuzz_target!(|data: &[u8]| {
    let _ = import(data, &ImportOptions::default());
    let _ = import(
        data,
        &ImportOptions {
            input_hw: Some((16, 16)),
            emulate_int8: true,
        },
    );
});
