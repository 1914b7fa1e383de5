//! The `steadytext_cache` table (L2). IMMUTABLE functions only read it; the VOLATILE `_cached`
//! functions also write rows, bump access counts and count lookups.

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::spi::read_one;
use crate::vector::Vector;

/// The cached text for `key`.
pub fn response(key: &str) -> Option<String> {
    read_one(
        "SELECT response FROM public.steadytext_cache WHERE cache_key = $1",
        key,
    )
}

/// The cached embedding for `key`.
pub fn embedding(key: &str) -> Option<Vec<f32>> {
    read_one::<Vector>(
        "SELECT embedding FROM public.steadytext_cache WHERE cache_key = $1",
        key,
    )
    .map(|v| v.0)
}

/// Records a lookup: a hit bumps the row's access count and time; both count toward the hit rate.
pub fn record_lookup(key: &str, hit: bool) {
    if hit {
        run(
            "UPDATE public.steadytext_cache SET access_count = access_count + 1, \
             last_accessed = now() WHERE cache_key = $1",
            key,
        );
    }
    let column = if hit { "hits" } else { "misses" };
    Spi::run(&format!(
        "UPDATE public.steadytext_cache_lookups SET {column} = {column} + 1 WHERE id = 1"
    ))
    .unwrap_or_else(|e| crate::errors::raise(&format!("cannot count a cache lookup: {e}")));
}

fn run(sql: &str, key: &str) {
    Spi::run_with_args(sql, &[key.into()])
        .unwrap_or_else(|e| crate::errors::raise(&format!("cache update failed: {e}")));
}

/// What a new row describes besides its key and value.
pub struct RowInfo<'a> {
    pub prompt: &'a str,
    pub model_name: &'a str,
    pub seed: i32,
    pub eos_string: Option<&'a str>,
    pub params: serde_json::Value,
    pub elapsed_ms: i32,
}

/// Inserts a generation row unless the key exists.
pub fn store_response(key: &str, response: &str, row: &RowInfo<'_>) {
    Spi::run_with_args(
        "INSERT INTO public.steadytext_cache (cache_key, prompt, response, model_name, seed, \
         eos_string, generation_params, response_size, generation_time_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (cache_key) DO NOTHING",
        &[
            key.into(),
            row.prompt.into(),
            response.into(),
            row.model_name.into(),
            row.seed.into(),
            row.eos_string.into(),
            JsonB(row.params.clone()).into(),
            (response.len() as i32).into(),
            row.elapsed_ms.into(),
        ],
    )
    .unwrap_or_else(|e| crate::errors::raise(&format!("cannot write the cache row: {e}")));
}

/// Inserts an embedding row unless the key exists.
pub fn store_embedding(key: &str, embedding: &[f32], row: &RowInfo<'_>) {
    Spi::run_with_args(
        "INSERT INTO public.steadytext_cache (cache_key, prompt, embedding, model_name, seed, \
         generation_params, generation_time_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (cache_key) DO NOTHING",
        &[
            key.into(),
            row.prompt.into(),
            Vector(embedding.to_vec()).into(),
            row.model_name.into(),
            row.seed.into(),
            JsonB(row.params.clone()).into(),
            row.elapsed_ms.into(),
        ],
    )
    .unwrap_or_else(|e| crate::errors::raise(&format!("cannot write the cache row: {e}")));
}
