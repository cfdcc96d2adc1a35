//! The shipped `config/styleframe.toml` is documentation as much as config:
//! these tests keep it complete, in schema order, and equal to the defaults
//! in `src/config.rs`, so its comments cannot drift from the code.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::path::{Path, PathBuf};
use styleframe::config::{
    ButtonConfig, CameraConfig, Config, ConfigError, DisplayConfig, GalleryConfig, InferenceConfig,
    ModelsConfig, MqttConfig, RemoteConfig, StylesConfig,
};

fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/styleframe.toml")
}

fn shipped_text() -> String {
    std::fs::read_to_string(shipped_path()).expect("config/styleframe.toml is readable")
}

/// A serde Deserializer that only records the field list a struct asks for,
/// so the test learns the schema's keys (in declaration order) from the code.
struct FieldRecorder<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldRecorder<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldRecorder(&mut fields));
    fields.expect("a struct with named fields")
}

/// Section name -> its keys, in schema order.
fn schema() -> Vec<(&'static str, &'static [&'static str])> {
    let sections = vec![
        ("models", fields_of::<ModelsConfig>()),
        ("styles", fields_of::<StylesConfig>()),
        ("gallery", fields_of::<GalleryConfig>()),
        ("camera", fields_of::<CameraConfig>()),
        ("inference", fields_of::<InferenceConfig>()),
        ("display", fields_of::<DisplayConfig>()),
        ("button", fields_of::<ButtonConfig>()),
        ("mqtt", fields_of::<MqttConfig>()),
        ("remote", fields_of::<RemoteConfig>()),
    ];
    // A new section in Config must be added here (and to the shipped file).
    let names: Vec<&str> = sections.iter().map(|(s, _)| *s).collect();
    assert_eq!(names, fields_of::<Config>());
    sections
}

/// One key as it appears in the file: set (`key = v`) or a switched-off
/// example (`# key = v`), with the comment block right above it.
#[derive(Debug)]
struct KeyLine {
    section: String,
    key: String,
    value: String,
    commented: bool,
    line_no: usize,
    comment_above: String,
}

fn key_lines(text: &str) -> (Vec<String>, Vec<KeyLine>) {
    let schema = schema();
    let mut sections = Vec::new();
    let mut keys = Vec::new();
    let mut comment = Vec::<&str>::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            sections.push(name.to_string());
            comment.clear();
            continue;
        }
        if t.is_empty() {
            comment.clear();
            continue;
        }
        let section = sections.last().cloned().unwrap_or_default();
        let known: &[&str] = schema
            .iter()
            .find(|(s, _)| *s == section)
            .map_or(&[], |(_, f)| f);
        let (body, commented) = match t.strip_prefix("# ") {
            Some(rest) => (rest, true),
            None if t.starts_with('#') => (t, true),
            None => (t, false),
        };
        let parsed = body
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !commented || known.contains(k));
        match parsed {
            Some((k, v)) => {
                keys.push(KeyLine {
                    section,
                    key: k.to_string(),
                    value: v.to_string(),
                    commented,
                    line_no: i + 1,
                    comment_above: comment.join("\n"),
                });
                comment.clear();
            }
            None => comment.push(t),
        }
    }
    (sections, keys)
}

#[test]
fn shipped_file_parses_validates_and_equals_the_defaults() {
    let cfg = Config::load(&shipped_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg, Config::default());
}

#[test]
fn shipped_file_lists_every_key_once_in_schema_order() {
    let (sections, keys) = key_lines(&shipped_text());
    let schema = schema();
    let want_sections: Vec<&str> = schema.iter().map(|(s, _)| *s).collect();
    assert_eq!(sections, want_sections);
    for (section, fields) in schema {
        let got: Vec<&str> = keys
            .iter()
            .filter(|k| k.section == section)
            .map(|k| k.key.as_str())
            .collect();
        assert_eq!(got, fields, "keys of [{section}] in config/styleframe.toml");
    }
}

#[test]
fn every_set_key_has_a_comment_stating_its_value_as_default() {
    let (_, keys) = key_lines(&shipped_text());
    for k in keys.iter().filter(|k| !k.commented) {
        let want = format!("Default: {}", k.value);
        assert!(
            k.comment_above.contains(&want),
            "line {}: {}.{} = {} needs a comment with {want:?} right above it, found:\n{}",
            k.line_no,
            k.section,
            k.key,
            k.value,
            k.comment_above
        );
    }
}

#[test]
fn switched_off_keys_are_the_optional_ones_and_explain_themselves() {
    let (_, keys) = key_lines(&shipped_text());
    let off: Vec<String> = keys
        .iter()
        .filter(|k| k.commented)
        .map(|k| format!("{}.{}", k.section, k.key))
        .collect();
    // Exactly the Option fields: TOML has no "unset" value to write for them.
    assert_eq!(
        off,
        [
            "styles.user_file",
            "camera.path",
            "display.snapshot_dir",
            "mqtt.password_file"
        ]
    );
    for k in keys.iter().filter(|k| k.commented) {
        assert!(
            k.comment_above.contains("Not set by default"),
            "line {}: {}",
            k.line_no,
            k.comment_above
        );
    }
}

#[test]
fn switched_off_examples_are_valid_when_switched_on() {
    let text = shipped_text();
    let (_, keys) = key_lines(&text);
    let on_lines: Vec<usize> = keys
        .iter()
        .filter(|k| k.commented)
        .map(|k| k.line_no)
        .collect();
    let switched_on: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let l = if on_lines.contains(&(i + 1)) {
                l.trim_start_matches("# ")
            } else {
                l
            };
            format!("{l}\n")
        })
        .collect();
    let cfg =
        Config::from_toml_str(&switched_on, &shipped_path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.styles.user_file.is_some());
    assert!(cfg.camera.path.is_some());
    assert!(cfg.display.snapshot_dir.is_some());
    assert!(cfg.mqtt.password_file.is_some());
}

#[test]
fn out_of_range_edit_of_shipped_file_names_file_key_value_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("styleframe.toml");
    let text = shipped_text().replace("\nstrength = 1.0\n", "\nstrength = 1.7\n");
    std::fs::write(&path, text).unwrap();
    let err = Config::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: styles.strength = 1.7 is out of range: expected 0.0 ..= 1.0",
            path.display()
        )
    );
}

#[test]
fn misspelt_key_in_shipped_file_names_its_line_and_dotted_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("styleframe.toml");
    let text = shipped_text();
    let line_no = text
        .lines()
        .position(|l| l == "fps = 15")
        .expect("camera fps line")
        + 1;
    std::fs::write(&path, text.replace("\nfps = 15\n", "\nfsp = 15\n")).unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: line {line_no}, column 1: ", path.display())),
        "{msg}"
    );
    assert!(
        msg.contains("unknown key `camera.fsp` (did you mean `fps`?)"),
        "{msg}"
    );
}

#[test]
fn missing_file_error_names_the_path() {
    let path = Path::new("/nonexistent/styleframe/styleframe.toml");
    let err = Config::load(path).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Read { path: p, .. } if p == path),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("/nonexistent/styleframe/styleframe.toml: cannot read the config file"),
        "{err}"
    );
}

#[test]
fn non_utf8_file_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[styles]\nstart = \"caf\xe9\"\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("line 2: "), "{msg}");
    assert!(msg.contains("UTF-8"), "{msg}");
}
