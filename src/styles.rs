//! Styles: embedding sets (`models/styles.json`), strength blending and morphs.
//!
//! A style is a 100-float embedding predicted from a painting. Blending with
//! the content picture's own embedding sets the strength
//! (`s * style + (1 - s) * content`), and interpolating two styles' embeddings
//! morphs one painting into the other.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use styleframe_engine::embedding::{Embedding, EMBEDDING_LEN};
pub const SET_FORMAT: &str = "styleframe-embeddings/1";

/// One named style.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Style {
    pub name: String,
    /// Title of the painting.
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub artist: String,
    /// Where the embedding came from: a painting's file name, or a recipe.
    #[serde(default)]
    pub source: String,
    pub embedding: Embedding,
}

/// A set of styles computed by one prediction network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleSet {
    pub format: String,
    /// Id of the prediction network (see `models/manifest.toml`).
    pub model: String,
    pub styles: Vec<Style>,
}

#[derive(Debug, thiserror::Error)]
pub enum StyleError {
    #[error("style set {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("style set {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("style set {path}: style {name:?}: {message}")]
    Invalid {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error("unknown style {name:?}; known styles: {known}")]
    Unknown { name: String, known: String },
    #[error("no styles: {0}")]
    Empty(String),
    /// Writing the set failed (full disk, read-only folder); the file on disk
    /// is the one from before.
    #[error("style set {path}: cannot write it: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The style set shipped in `models/styles.json`, built in so the demo and
/// the daemon work with no files beside the binary.
pub const BUILTIN_SET: &str = include_str!("../models/styles.json");

/// Whether two style names are the same style: compared case-blind in
/// Unicode ("Café" is "CAFÉ"), as a set's names are checked for repeats.
pub fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

impl StyleSet {
    pub fn builtin() -> StyleSet {
        StyleSet::parse(BUILTIN_SET, Path::new("(built-in styles.json)"))
            .expect("the built-in style set is checked by a test")
    }

    pub fn new(model: &str) -> Self {
        StyleSet {
            format: SET_FORMAT.into(),
            model: model.into(),
            styles: vec![],
        }
    }

    pub fn load(path: &Path) -> Result<StyleSet, StyleError> {
        let text = std::fs::read_to_string(path).map_err(|source| StyleError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates a set: names unique and non-empty, 100 finite floats each.
    pub fn parse(text: &str, path: &Path) -> Result<StyleSet, StyleError> {
        let set: StyleSet = serde_json::from_str(text).map_err(|e| StyleError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        set.validate(path)?;
        Ok(set)
    }

    /// The rules `parse` enforces; `save` checks them too, so a set that
    /// would not load is never written.
    pub fn validate(&self, path: &Path) -> Result<(), StyleError> {
        let set = self;
        if set.format != SET_FORMAT {
            return Err(StyleError::Parse {
                path: path.to_owned(),
                message: format!("format {:?}, expected {SET_FORMAT:?}", set.format),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for s in &set.styles {
            let invalid = |message: String| StyleError::Invalid {
                path: path.to_owned(),
                name: s.name.clone(),
                message,
            };
            if s.name.trim().is_empty() {
                return Err(invalid("empty name".into()));
            }
            if !seen.insert(s.name.to_lowercase()) {
                return Err(invalid("name used twice".into()));
            }
            if let Some(i) = s.embedding.0.iter().position(|v| !v.is_finite()) {
                return Err(invalid(format!("value #{i} is not a finite number")));
            }
        }
        Ok(())
    }

    /// Writes the set atomically (the old file stays whole when anything
    /// fails), after checking it would load again.
    pub fn save(&self, path: &Path) -> Result<(), StyleError> {
        self.validate(path)?;
        let text = serde_json::to_string_pretty(self).map_err(|e| StyleError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        crate::atomic::write(path, (text + "\n").as_bytes()).map_err(|source| StyleError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Adds or replaces the style with the same name, compared as `parse`
    /// compares names (ignoring case), so the result always loads again.
    pub fn upsert(&mut self, style: Style) {
        match self
            .styles
            .iter_mut()
            .find(|s| same_name(&s.name, &style.name))
        {
            Some(s) => *s = style,
            None => self.styles.push(style),
        }
    }

    /// Finds a style by name, case-insensitively.
    pub fn find(&self, name: &str) -> Result<&Style, StyleError> {
        self.styles
            .iter()
            .find(|s| same_name(&s.name, name))
            .ok_or_else(|| StyleError::Unknown {
                name: name.into(),
                known: self
                    .styles
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// This set followed by `other`'s styles whose names are new (user styles
    /// with a shipped style's name replace it).
    pub fn merged(mut self, other: StyleSet) -> StyleSet {
        for s in other.styles {
            self.upsert(s);
        }
        self
    }
}

/// The style being shown and the morph towards the next one.
///
/// `current()` is the embedding to use now: during a morph it moves from the
/// old style to the new one along a smoothstep curve over `morph` time.
#[derive(Clone, Debug)]
pub struct StyleMorph {
    from: Embedding,
    to: Embedding,
    started: Instant,
    duration: Duration,
}

impl StyleMorph {
    pub fn new(start: Embedding, duration: Duration) -> Self {
        StyleMorph {
            from: start,
            to: start,
            started: Instant::now(),
            duration,
        }
    }

    /// Starts morphing from wherever the picture is now towards `target`.
    pub fn go_to(&mut self, target: Embedding, now: Instant) {
        self.from = self.at(now);
        self.to = target;
        self.started = now;
    }

    pub fn set_duration(&mut self, d: Duration) {
        self.duration = d;
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Progress 0..=1 of the current morph.
    pub fn progress(&self, now: Instant) -> f32 {
        if self.duration.is_zero() {
            return 1.0;
        }
        let t =
            now.saturating_duration_since(self.started).as_secs_f32() / self.duration.as_secs_f32();
        t.clamp(0.0, 1.0)
    }

    pub fn is_morphing(&self, now: Instant) -> bool {
        self.progress(now) < 1.0
    }

    pub fn at(&self, now: Instant) -> Embedding {
        let t = self.progress(now);
        let eased = t * t * (3.0 - 2.0 * t);
        self.to.mix(&self.from, eased)
    }

    pub fn target(&self) -> &Embedding {
        &self.to
    }
}

/// The embedding fed to the network for a strength: `s * style + (1 - s) * content`.
pub fn with_strength(style: &Embedding, content: &Embedding, strength: f32) -> Embedding {
    style.mix(content, strength.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(v: f32) -> Embedding {
        Embedding([v; EMBEDDING_LEN])
    }

    fn set_json(styles: &str) -> String {
        format!(r#"{{"format":"{SET_FORMAT}","model":"m","styles":[{styles}]}}"#)
    }

    fn style_json(name: &str, n: usize, v: &str) -> String {
        let vals = vec![v; n].join(",");
        format!(r#"{{"name":"{name}","embedding":[{vals}]}}"#)
    }

    #[test]
    fn strength_blends_style_with_content_embedding() {
        let e = with_strength(&emb(2.0), &emb(0.0), 0.25);
        assert!(e.0.iter().all(|&v| (v - 0.5).abs() < 1e-6));
        assert_eq!(with_strength(&emb(2.0), &emb(1.0), 1.0), emb(2.0));
        assert_eq!(with_strength(&emb(2.0), &emb(1.0), 0.0), emb(1.0));
    }

    #[test]
    fn morph_moves_from_old_to_new_style_over_its_duration() {
        let t0 = Instant::now();
        let mut m = StyleMorph::new(emb(0.0), Duration::from_secs(2));
        m.go_to(emb(1.0), t0);
        assert_eq!(m.at(t0), emb(0.0));
        let mid = m.at(t0 + Duration::from_secs(1)).0[0];
        assert!((mid - 0.5).abs() < 1e-6, "midpoint {mid}");
        assert_eq!(m.at(t0 + Duration::from_secs(2)), emb(1.0));
        assert!(!m.is_morphing(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn a_new_target_mid_morph_starts_from_the_current_picture() {
        let t0 = Instant::now();
        let mut m = StyleMorph::new(emb(0.0), Duration::from_secs(2));
        m.go_to(emb(1.0), t0);
        let t1 = t0 + Duration::from_secs(1);
        m.go_to(emb(-1.0), t1);
        assert!((m.at(t1).0[0] - 0.5).abs() < 1e-6);
        assert_eq!(m.at(t1 + Duration::from_secs(2)), emb(-1.0));
    }

    #[test]
    fn set_parses_and_finds_styles_case_insensitively() {
        let text = set_json(
            &[
                style_json("Starry", 100, "0.5"),
                style_json("scream", 100, "1"),
            ]
            .join(","),
        );
        let set = StyleSet::parse(&text, Path::new("s.json")).unwrap();
        assert_eq!(set.find("starry").unwrap().name, "Starry");
        let err = set.find("mona").unwrap_err().to_string();
        assert!(
            err.contains("mona") && err.contains("Starry, scream"),
            "{err}"
        );
    }

    #[test]
    fn wrong_length_embedding_is_rejected_naming_the_file() {
        let text = set_json(&style_json("short", 99, "0.5"));
        let err = StyleSet::parse(&text, Path::new("styles.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("styles.json") && err.contains("99"), "{err}");
    }

    #[test]
    fn non_finite_values_and_duplicate_names_are_rejected() {
        let big = set_json(&style_json("big", 100, "1e39"));
        let err = StyleSet::parse(&big, Path::new("s.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("big") && err.contains("finite"), "{err}");
        let dup = set_json(&[style_json("a", 100, "0"), style_json("A", 100, "0")].join(","));
        let err = StyleSet::parse(&dup, Path::new("s.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
    }

    fn style(name: &str, v: f32) -> Style {
        Style {
            name: name.into(),
            title: "".into(),
            artist: "".into(),
            source: "".into(),
            embedding: emb(v),
        }
    }

    /// One rule for "the same name" everywhere (finding, replacing, repeats
    /// in a file): case-blind in Unicode, so "CAFÉ" can never sit next to
    /// "Café" or replace it unnoticed.
    #[test]
    fn names_are_the_same_case_blind_beyond_ascii() {
        let mut set = StyleSet::new("m");
        set.upsert(style("Café", 1.0));
        assert_eq!(set.find("CAFÉ").unwrap().name, "Café");
        set.upsert(style("CAFÉ", 2.0));
        assert_eq!(set.styles.len(), 1);
        assert!(!same_name("Café", "Cafe"));
    }

    #[test]
    fn save_never_writes_a_set_that_would_not_load_and_keeps_the_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mine.json");
        let mut set = StyleSet::new("m");
        set.upsert(style("a", 0.0));
        set.save(&p).unwrap();
        let before = std::fs::read_to_string(&p).unwrap();
        assert_eq!(StyleSet::load(&p).unwrap(), set);
        for bad in [style(" ", 0.0), style("b", f32::NAN)] {
            let mut broken = set.clone();
            broken.styles.push(bad);
            let e = broken.save(&p).unwrap_err();
            assert!(matches!(e, StyleError::Invalid { .. }), "{e}");
            assert_eq!(std::fs::read_to_string(&p).unwrap(), before);
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn upsert_replaces_a_style_whose_name_differs_only_in_case() {
        let mut set = StyleSet::new("m");
        set.upsert(style("Starry", 0.0));
        set.upsert(style("starry", 1.0));
        set.upsert(style("ÉTÉ", 0.0));
        set.upsert(style("été", 2.0));
        assert_eq!(set.styles.len(), 2);
        assert_eq!(set.find("STARRY").unwrap().embedding, emb(1.0));
        set.validate(Path::new("s.json")).unwrap();
    }

    #[test]
    fn user_styles_replace_shipped_ones_with_the_same_name() {
        let mut a = StyleSet::new("m");
        a.upsert(Style {
            name: "x".into(),
            title: "".into(),
            artist: "".into(),
            source: "".into(),
            embedding: emb(0.0),
        });
        let mut b = StyleSet::new("m");
        b.upsert(Style {
            name: "x".into(),
            title: "".into(),
            artist: "".into(),
            source: "".into(),
            embedding: emb(1.0),
        });
        b.upsert(Style {
            name: "y".into(),
            title: "".into(),
            artist: "".into(),
            source: "".into(),
            embedding: emb(2.0),
        });
        let m = a.merged(b);
        assert_eq!(m.styles.len(), 2);
        assert_eq!(m.find("x").unwrap().embedding, emb(1.0));
    }
}
