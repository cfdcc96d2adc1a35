//! The embedding-set parser: any text is a style set or an error; a parsed
//! set holds only finite values and unique names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(set) = styleframe::styles::StyleSet::parse(text, Path::new("fuzz.json")) {
            for s in &set.styles {
                assert!(s.embedding.0.iter().all(|v| v.is_finite()));
                assert!(set.find(&s.name).is_ok());
            }
        }
    }
});
