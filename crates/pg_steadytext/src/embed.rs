//! `steadytext_embed`, `steadytext_embed_cached` and `steadytext_embed_batch`.

use std::time::Instant;

use pgrx::prelude::*;
use steadytext::EmbedMode;

use crate::errors::{check_remote_model, raise, raise_with};
use crate::inference::{self, ModelFile, Route};
use crate::vector::Vector;
use crate::{cache, guc};
use steadytext::cache_key;

fn mode() -> EmbedMode {
    let setting = guc::string(&guc::EMBEDDING_MODE).unwrap_or_else(|| "query".into());
    setting.parse().unwrap_or_else(|_| {
        raise_with(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            &format!("steadytext.embedding_mode must be 'query' or 'passage', got '{setting}'"),
        )
    })
}

fn validate(text_input: Option<&str>, model: Option<&str>, unsafe_mode: bool) -> String {
    let Some(text) = text_input else {
        raise("Text cannot be null")
    };
    if text.trim().is_empty() {
        raise("Text cannot be empty");
    }
    check_remote_model(model, unsafe_mode);
    text.to_string()
}

/// Embeds with the model, or warns and returns `None` so the caller can give the zero vector.
/// `route` is decided on first use and reused for the rest of the statement.
fn compute(
    function: &str,
    model: Option<&ModelFile>,
    text: &str,
    mode: EmbedMode,
    route: &mut Option<Route>,
) -> Option<Vec<f32>> {
    let result = model
        .ok_or_else(|| "no embedding model".to_string())
        .and_then(|m| inference::embed(*route.get_or_insert_with(inference::route), m, text, mode));
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            warning!("{function}: embedding failed, returning the zero vector: {e}");
            None
        }
    }
}

fn load(function: &str, model: Option<&str>) -> Option<ModelFile> {
    inference::embedding_model(model)
        .map_err(|e| {
            warning!(
                "{function}: no embedding model could be loaded: {e}. Set \
                 steadytext.embedding_model to a GGUF file or a registry name."
            )
        })
        .ok()
}

fn key(model: &ModelFile, mode: EmbedMode, text: &str) -> Option<String> {
    let sha = model.sha256().ok()?;
    Some(cache_key::embedding(&sha, mode.as_str(), text))
}

/// A 1024-wide unit vector; the zero vector (with a WARNING) when embedding fails, never NULL.
#[pg_extern(immutable, parallel_safe)]
fn steadytext_embed(
    text_input: Option<&str>,
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    model: default!(Option<&str>, "NULL"),
    unsafe_mode: default!(Option<bool>, false),
) -> Vector {
    // The seed does not change local embeddings (as in SteadyText); it is accepted for
    // compatibility.
    let _ = seed;
    let text = validate(text_input, model, unsafe_mode.unwrap_or(false));
    let mode = mode();
    let loaded = load("steadytext_embed", model);
    if use_cache.unwrap_or(true) {
        if let Some(hit) = loaded
            .as_ref()
            .and_then(|m| key(m, mode, &text))
            .and_then(|k| cache::embedding(&k))
        {
            return Vector(hit);
        }
    }
    Vector(
        compute("steadytext_embed", loaded.as_ref(), &text, mode, &mut None)
            .unwrap_or_else(steadytext::embed::zero),
    )
}

/// Embeds through the cache: reads it, and on a miss embeds and writes the row (never a zero
/// vector).
#[pg_extern(volatile)]
fn steadytext_embed_cached(
    text_input: Option<&str>,
    seed: default!(Option<i32>, 42),
    model: default!(Option<&str>, "NULL"),
    unsafe_mode: default!(Option<bool>, false),
) -> Vector {
    let text = validate(text_input, model, unsafe_mode.unwrap_or(false));
    let mode = mode();
    let loaded = load("steadytext_embed_cached", model);
    let key = loaded.as_ref().and_then(|m| key(m, mode, &text));
    if let Some(key) = &key {
        if let Some(hit) = cache::embedding(key) {
            cache::record_lookup(key, true);
            return Vector(hit);
        }
        cache::record_lookup(key, false);
    }
    let started = Instant::now();
    let Some(vector) = compute(
        "steadytext_embed_cached",
        loaded.as_ref(),
        &text,
        mode,
        &mut None,
    ) else {
        return Vector(steadytext::embed::zero());
    };
    if let (Some(key), Some(model)) = (key, loaded) {
        let row = cache::RowInfo {
            prompt: &text,
            model_name: &model.name(),
            seed: seed.unwrap_or(42),
            eos_string: None,
            params: serde_json::json!({ "mode": mode.as_str(), "model_sha256": model.sha256().ok() }),
            elapsed_ms: started.elapsed().as_millis() as i32,
        };
        cache::store_embedding(&key, &vector, &row);
    }
    Vector(vector)
}

/// Embeds many texts in one call: one row per input, in input order (`index` is 1-based). Each
/// vector is bit-identical to `steadytext_embed` of that text; NULL or blank elements give the
/// zero vector.
#[pg_extern(immutable, parallel_safe)]
fn steadytext_embed_batch(
    texts: Option<Vec<Option<String>>>,
) -> TableIterator<'static, (name!(index, i32), name!(embedding, Vector))> {
    let Some(texts) = texts else {
        raise("Texts cannot be null")
    };
    let mode = mode();
    let loaded = load("steadytext_embed_batch", None);
    let mut route = None;
    let rows: Vec<(i32, Vector)> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            pgrx::check_for_interrupts!();
            let text = text.as_deref().unwrap_or("");
            let v = if text.trim().is_empty() {
                steadytext::embed::zero()
            } else {
                compute(
                    "steadytext_embed_batch",
                    loaded.as_ref(),
                    text,
                    mode,
                    &mut route,
                )
                .unwrap_or_else(steadytext::embed::zero)
            };
            (i as i32 + 1, Vector(v))
        })
        .collect();
    TableIterator::new(rows)
}
