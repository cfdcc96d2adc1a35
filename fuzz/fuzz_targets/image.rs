//! The picture path of `still`/`embed`/the file sources: decode (with the
//! decoder limits) and fit to a small network size, both fits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use styleframe::config::Fit;
use styleframe::preprocess::{decode_rgb, Preprocessor};

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode_rgb(data, Path::new("fuzz.img")) {
        let mut out = vec![];
        for fit in [Fit::Cover, Fit::Letterbox] {
            let mut p = Preprocessor::new(fit);
            if p.fit_rgb8(img.as_raw(), img.width(), img.height(), 20, 12, &mut out)
                .is_ok()
            {
                assert_eq!(out.len(), 20 * 12 * 3);
            }
        }
    }
});
