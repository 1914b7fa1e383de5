//! Request parameters: everything that changes an output lives here, in one struct per kind.

use crate::error::{Error, Result};

/// Seed used when the caller gives none (SteadyText's `DEFAULT_SEED`).
pub const DEFAULT_SEED: u32 = 42;
/// Output budget when the caller gives none.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 512;
/// The `eos_string` value that means "only the default stop strings".
pub const EOS_SENTINEL: &str = "[EOS]";
/// Stop strings SteadyText always uses; the model's end-of-generation tokens stop too.
pub const DEFAULT_STOP_SEQUENCES: [&str; 4] =
    ["<|im_end|>", "<|im_start|>", "</s>", "<|endoftext|>"];
/// Width of every embedding this library returns.
pub const EMBEDDING_DIMENSION: usize = 1024;

/// Sampling settings of SteadyText above temperature 0.
pub const TOP_K: i32 = 40;
/// Nucleus threshold above temperature 0.
pub const TOP_P: f32 = 0.95;
/// Minimum-probability threshold above temperature 0.
pub const MIN_P: f32 = 0.05;

/// How to generate: greedy at temperature 0, seeded sampling above it.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Most tokens to produce.
    pub max_new_tokens: usize,
    /// Seed of the `dist` sampler; no effect at temperature 0.
    pub seed: u32,
    /// 0 is greedy.
    pub temperature: f32,
    /// An extra stop string, or [`EOS_SENTINEL`] for none.
    pub eos_string: String,
    /// Threads for llama.cpp; `None` uses the engine's default.
    pub threads: Option<i32>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_new_tokens: DEFAULT_MAX_NEW_TOKENS,
            seed: DEFAULT_SEED,
            temperature: 0.0,
            eos_string: EOS_SENTINEL.to_string(),
            threads: None,
        }
    }
}

impl GenerateParams {
    /// Checks ranges that llama.cpp would otherwise accept silently.
    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "temperature must be a finite number >= 0, got {}",
                self.temperature
            )));
        }
        if self.max_new_tokens == 0 {
            return Err(Error::InvalidArgument(
                "max_new_tokens must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Stop strings for this request: the defaults plus `eos_string` unless it is the sentinel.
    pub fn stop_strings(&self) -> Vec<String> {
        let mut stops: Vec<String> = DEFAULT_STOP_SEQUENCES
            .iter()
            .map(|s| s.to_string())
            .collect();
        if self.eos_string != EOS_SENTINEL && !self.eos_string.is_empty() {
            stops.push(self.eos_string.clone());
        }
        stops
    }
}

/// Converts a caller's seed into the sampler's, rejecting negatives like SteadyText does.
pub fn validate_seed(seed: i64) -> Result<u32> {
    u32::try_from(seed).map_err(|_| {
        Error::InvalidArgument(format!(
            "Seed must be a non-negative integer no larger than {}, got {seed}",
            u32::MAX
        ))
    })
}

/// Which side of a retrieval pair a text is; decides the `Query: `/`Passage: ` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbedMode {
    /// A search query (the default).
    #[default]
    Query,
    /// A document to be found.
    Passage,
}

impl EmbedMode {
    /// The prefix SteadyText puts before the text.
    pub fn prefix(self) -> &'static str {
        match self {
            EmbedMode::Query => "Query: ",
            EmbedMode::Passage => "Passage: ",
        }
    }

    /// The lower-case name used in cache keys and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedMode::Query => "query",
            EmbedMode::Passage => "passage",
        }
    }

    /// The mode from `STEADYTEXT_EMBEDDING_MODE`, `query` when unset or unknown (as SteadyText).
    pub fn from_env() -> Self {
        std::env::var("STEADYTEXT_EMBEDDING_MODE")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or_default()
    }
}

impl std::str::FromStr for EmbedMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "query" => Ok(EmbedMode::Query),
            "passage" => Ok(EmbedMode::Passage),
            other => Err(Error::InvalidArgument(format!(
                "embedding mode must be 'query' or 'passage', got '{other}'"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eos_sentinel_adds_nothing() {
        let p = GenerateParams::default();
        assert_eq!(p.stop_strings().len(), 4);
        let p = GenerateParams {
            eos_string: "END".into(),
            ..Default::default()
        };
        assert_eq!(p.stop_strings().last().unwrap(), "END");
    }

    #[test]
    fn seeds_must_be_non_negative() {
        assert_eq!(validate_seed(0).unwrap(), 0);
        assert_eq!(validate_seed(2_147_483_647).unwrap(), 2_147_483_647);
        assert!(validate_seed(-1).is_err());
        assert!(validate_seed(1 << 40).is_err());
    }

    #[test]
    fn bad_temperature_is_rejected() {
        for t in [-0.1, f32::NAN, f32::INFINITY] {
            let p = GenerateParams {
                temperature: t,
                ..Default::default()
            };
            assert!(p.validate().is_err(), "{t}");
        }
    }

    #[test]
    fn mode_parses_case_insensitively() {
        assert_eq!("Passage".parse::<EmbedMode>().unwrap(), EmbedMode::Passage);
        assert!("both".parse::<EmbedMode>().is_err());
    }
}
