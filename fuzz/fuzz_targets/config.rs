//! The TOML config parser and its validation: any text is a Config or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = styleframe::config::Config::from_toml_str(text, Path::new("fuzz.toml")) {
            // A config that parsed must also pass validation (from_toml_str validates).
            cfg.validate()
                .expect("from_toml_str returned a config that does not validate");
            let _ = cfg.gallery.night_window();
        }
    }
});
