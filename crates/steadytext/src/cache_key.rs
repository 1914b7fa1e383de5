//! Where the cache keys are built, for the daemon's cache and the extension's table alike. A key
//! covers everything that changes the output: the kind of request, the model file's sha256, the
//! engine build, and every parameter. (SteadyText keyed generation on the prompt alone, so a short
//! max_tokens answer poisoned later calls.)

use sha2::{Digest, Sha256};

/// Digest of `fields` under `kind`; each field is length-prefixed so no two field lists collide.
fn digest(kind: &str, fields: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    let fingerprint = crate::build_info::fingerprint();
    for field in [kind.as_bytes(), fingerprint.as_bytes()]
        .iter()
        .chain(fields)
    {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field);
    }
    format!("{kind}:{}", hex::encode(hasher.finalize()))
}

/// Key of a generation request.
pub fn generation(
    model_sha256: &str,
    prompt: &str,
    max_tokens: usize,
    seed: u32,
    temperature: f32,
    eos_string: &str,
) -> String {
    digest(
        "generate",
        &[
            model_sha256.as_bytes(),
            prompt.as_bytes(),
            &(max_tokens as u64).to_le_bytes(),
            &seed.to_le_bytes(),
            &temperature.to_bits().to_le_bytes(),
            eos_string.as_bytes(),
        ],
    )
}

/// Key of a structured generation request (`constraint` is [`crate::Constraint::key`]).
pub fn structured(
    model_sha256: &str,
    prompt: &str,
    max_tokens: usize,
    seed: u32,
    temperature: f32,
    constraint: &str,
) -> String {
    digest(
        "structured",
        &[
            model_sha256.as_bytes(),
            prompt.as_bytes(),
            &(max_tokens as u64).to_le_bytes(),
            &seed.to_le_bytes(),
            &temperature.to_bits().to_le_bytes(),
            constraint.as_bytes(),
        ],
    )
}

/// Key of one document's reranking score.
pub fn rerank(model_sha256: &str, query: &str, document: &str, task: &str) -> String {
    digest(
        "rerank",
        &[
            model_sha256.as_bytes(),
            query.as_bytes(),
            document.as_bytes(),
            task.as_bytes(),
        ],
    )
}

/// Key of an embedding request.
pub fn embedding(model_sha256: &str, mode: &str, text: &str) -> String {
    digest(
        "embed",
        &[model_sha256.as_bytes(), mode.as_bytes(), text.as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_changes_the_key() {
        let base = generation("m", "p", 10, 42, 0.0, "[EOS]");
        assert_eq!(base, generation("m", "p", 10, 42, 0.0, "[EOS]"));
        for other in [
            generation("n", "p", 10, 42, 0.0, "[EOS]"),
            generation("m", "q", 10, 42, 0.0, "[EOS]"),
            generation("m", "p", 11, 42, 0.0, "[EOS]"),
            generation("m", "p", 10, 43, 0.0, "[EOS]"),
            generation("m", "p", 10, 42, 0.5, "[EOS]"),
            generation("m", "p", 10, 42, 0.0, "END"),
        ] {
            assert_ne!(base, other);
        }
        assert!(base.starts_with("generate:"));
        assert_ne!(embedding("m", "query", "x"), embedding("m", "passage", "x"));
    }

    #[test]
    fn fields_cannot_run_together() {
        assert_ne!(embedding("m", "query", "ab"), embedding("m", "querya", "b"));
    }
}
