//! `steadytext_embed`, `steadytext_embed_cached` and `steadytext_embed_batch`.

use std::time::Instant;

use pgrx::prelude::*;
use steadytext::remote::RemoteRequest;
use steadytext::request::{EmbedRequest, EmbedSpec, Spec};
use steadytext::Request;

use crate::errors::{raise, raise_error, OrRaise};
use crate::vector::Vector;
use crate::{admission, cache, model, remote, route};

fn check_text(text_input: Option<&str>) -> &str {
    let Some(text) = text_input else {
        raise("Text cannot be null")
    };
    if text.trim().is_empty() {
        raise("Text cannot be empty");
    }
    text
}

/// Admits and builds an embedding request for `texts`; `None` (with a WARNING) when no model can
/// be used, so the caller gives zero vectors as the Python extension did.
fn build(
    function: &str,
    texts: Vec<String>,
    model: Option<&str>,
    use_cache: bool,
    unsafe_mode: bool,
) -> Option<EmbedRequest> {
    let spec = EmbedSpec {
        texts: Some(texts),
        model: model.map(str::to_string),
        mode: Some(model::embed_mode()),
        use_cache: Some(use_cache),
        unsafe_mode: Some(unsafe_mode),
        ..EmbedSpec::default()
    };
    admission::admit(&Spec::Embed(spec.clone()));
    match model::builder().embed(spec) {
        Ok(request) => Some(request),
        Err(e) if route::is_model_problem(&e) => {
            warning!(
                "{function}: no embedding model could be used, returning the zero vector: {e}. \
                 Set steadytext.embedding_model (a registry name, a .gguf file in \
                 steadytext.models_dir, or a path)"
            );
            None
        }
        Err(e) => raise_error(&e),
    }
}

/// The remote request for embedding `text`, or `None` when the model is local.
fn remote_request(
    text: &str,
    model: Option<&str>,
    unsafe_mode: Option<bool>,
) -> Option<RemoteRequest> {
    let spec = EmbedSpec {
        texts: Some(vec![text.to_string()]),
        model: model.map(str::to_string),
        unsafe_mode,
        ..EmbedSpec::default()
    };
    remote::request(&Spec::Embed(spec))
}

fn remote_vector(request: RemoteRequest) -> Vec<f32> {
    let mut vectors = remote::run(request).into_embeddings().or_raise();
    vectors.pop().unwrap_or_else(steadytext::embed::zero)
}

/// `steadytext_embed_cached` with a remote model: the row is written only when the answer may
/// be cached (see `remote`).
fn remote_cached(text: &str, request: RemoteRequest, seed: Option<i32>) -> Vec<f32> {
    let Some(key) = remote::embedding_key(&request, text) else {
        return remote_vector(request);
    };
    if let Some(hit) = cache::embedding(&key) {
        cache::record_lookup(&key, true);
        return hit;
    }
    cache::record_lookup(&key, false);
    let model_name = format!("{}:{}", request.model.provider, request.model.name);
    let started = Instant::now();
    let vector = remote_vector(request);
    let row = cache::RowInfo {
        prompt: text.to_string(),
        model_name,
        seed: seed.unwrap_or(steadytext::defaults::SEED as i32),
        eos_string: None,
        params: serde_json::json!({ "remote": true }),
        elapsed_ms: started.elapsed().as_millis() as i32,
    };
    cache::store_embedding(&key, &vector, &row);
    vector
}

/// Embeds with the model, or warns and returns `None` so the caller can give zero vectors.
fn compute(function: &str, request: EmbedRequest) -> Option<Vec<Vec<f32>>> {
    let embedded = route::run(Request::Embed(request)).and_then(|o| o.into_embeddings());
    match embedded {
        Ok(vectors) => Some(vectors),
        Err(e) if route::is_model_problem(&e) || e.kind() == steadytext::ErrorKind::Inference => {
            warning!("{function}: embedding failed, returning the zero vector: {e}");
            None
        }
        Err(e) => raise_error(&e),
    }
}

/// Embeddings of `texts` with the default embedding model, for the extension's own use
/// (deduplicating facts); `None` (with a WARNING) when no model can be used.
pub(crate) fn vectors(function: &str, texts: Vec<String>) -> Option<Vec<Vec<f32>>> {
    let request = build(function, texts, None, true, false)?;
    compute(function, request)
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
    // The seed does not change local embeddings (as in SteadyText): it is accepted for
    // compatibility and, since it changes nothing, is in no cache key.
    let _ = seed;
    let text = check_text(text_input);
    let use_cache = use_cache.unwrap_or(true);
    if let Some(request) = remote_request(text, model, unsafe_mode) {
        let key = remote::embedding_key(&request, text).filter(|_| use_cache);
        if let Some(hit) = key.as_deref().and_then(cache::embedding) {
            return Vector(hit);
        }
        return Vector(remote_vector(request));
    }
    let Some(request) = build(
        "steadytext_embed",
        vec![text.to_string()],
        model,
        use_cache,
        unsafe_mode.unwrap_or(false),
    ) else {
        return Vector(steadytext::embed::zero());
    };
    if let Some(hit) = request.cache_key(text).and_then(|k| cache::embedding(&k)) {
        return Vector(hit);
    }
    let vector = compute("steadytext_embed", request).and_then(|mut v| v.pop());
    Vector(vector.unwrap_or_else(steadytext::embed::zero))
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
    let text = check_text(text_input);
    if let Some(request) = remote_request(text, model, unsafe_mode) {
        return Vector(remote_cached(text, request, seed));
    }
    let Some(request) = build(
        "steadytext_embed_cached",
        vec![text.to_string()],
        model,
        true,
        unsafe_mode.unwrap_or(false),
    ) else {
        return Vector(steadytext::embed::zero());
    };
    let key = request.cache_key(text).expect("use_cache is on");
    if let Some(hit) = cache::embedding(&key) {
        cache::record_lookup(&key, true);
        return Vector(hit);
    }
    cache::record_lookup(&key, false);
    let started = Instant::now();
    let row = cache::RowInfo {
        prompt: text.to_string(),
        model_name: request.model.file_name(),
        seed: seed.unwrap_or(steadytext::defaults::SEED as i32),
        eos_string: None,
        params: serde_json::json!({ "mode": request.mode.as_str(), "model_sha256": request.model.sha256 }),
        elapsed_ms: 0,
    };
    let Some(vector) = compute("steadytext_embed_cached", request).and_then(|mut v| v.pop()) else {
        return Vector(steadytext::embed::zero());
    };
    if vector.iter().any(|&x| x != 0.0) {
        let row = cache::RowInfo {
            elapsed_ms: started.elapsed().as_millis() as i32,
            ..row
        };
        cache::store_embedding(&key, &vector, &row);
    }
    Vector(vector)
}

/// Embeds many texts in one call: one row per input, in input order (`index` counts from 1).
/// Each vector is bit-identical to `steadytext_embed` of that text; NULL or blank elements give
/// the zero vector (and are not sent to the model).
#[pg_extern(immutable, parallel_safe)]
fn steadytext_embed_batch(
    texts: Option<Vec<Option<String>>>,
) -> TableIterator<'static, (name!(index, i32), name!(embedding, Vector))> {
    let Some(texts) = texts else {
        raise("Texts cannot be null")
    };
    let limits = model::limits();
    if texts.len() > limits.max_batch_size {
        raise_error(&steadytext::Error::limit(
            &format!("the batch has {} texts", texts.len()),
            limits.max_batch_size,
            steadytext::request::MAX_BATCH_SIZE,
        ));
    }
    let present: Vec<(usize, String)> = texts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.as_ref()
                .filter(|t| !t.trim().is_empty())
                .map(|t| (i, t.clone()))
        })
        .collect();
    let mut vectors = vec![steadytext::embed::zero(); texts.len()];
    if !present.is_empty() {
        let wanted = present.iter().map(|(_, t)| t.clone()).collect();
        if let Some(request) = build("steadytext_embed_batch", wanted, None, true, false) {
            if let Some(computed) = compute("steadytext_embed_batch", request) {
                for ((i, _), v) in present.iter().zip(computed) {
                    vectors[*i] = v;
                }
            }
        }
    }
    let rows: Vec<(i32, Vector)> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as i32 + 1, Vector(v)))
        .collect();
    TableIterator::new(rows)
}
