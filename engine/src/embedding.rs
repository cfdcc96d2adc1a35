//! The style embedding: the 100 floats the prediction network makes from a
//! painting and the transfer network takes with the content picture.

use serde::{Deserialize, Serialize};

pub const EMBEDDING_LEN: usize = 100;

/// A style embedding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Embedding(pub [f32; EMBEDDING_LEN]);

impl Default for Embedding {
    fn default() -> Self {
        Embedding([0.0; EMBEDDING_LEN])
    }
}

impl Embedding {
    /// `t * self + (1 - t) * other`: t = 1 gives `self`.
    pub fn mix(&self, other: &Embedding, t: f32) -> Embedding {
        let mut e = [0f32; EMBEDDING_LEN];
        for (i, v) in e.iter_mut().enumerate() {
            *v = t * self.0[i] + (1.0 - t) * other.0[i];
        }
        Embedding(e)
    }

    /// Cosine similarity, for tests and `embed`'s report.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        let dot: f32 = self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum();
        let na: f32 = self.0.iter().map(|a| a * a).sum::<f32>().sqrt();
        let nb: f32 = other.0.iter().map(|a| a * a).sum::<f32>().sqrt();
        dot / (na * nb).max(f32::MIN_POSITIVE)
    }
}

impl Serialize for Embedding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.to_vec().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Embedding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<f32>::deserialize(d)?;
        let arr: [f32; EMBEDDING_LEN] = v.as_slice().try_into().map_err(|_| {
            serde::de::Error::custom(format!(
                "embedding has {} values, expected {EMBEDDING_LEN}",
                v.len()
            ))
        })?;
        Ok(Embedding(arr))
    }
}
