//! The `steadytext_cache` table (L2). Callers have no privileges on it: these functions read and
//! write it as the extension's owner, by exact key, with values the extension computed. A row
//! records who caused it (`created_by`); row-level security shows a role only its own rows, while
//! an exact-key hit is shared (it needs the exact prompt, and the value is what anyone would
//! compute). IMMUTABLE functions only read; the VOLATILE `_cached` functions also write rows,
//! bump access counts and count lookups (not on a hot standby, which cannot write).

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::privilege::{as_owner, identity_name};
use crate::spi::read_one;
use crate::vector::Vector;

/// The cached text for `key`.
pub fn response(key: &str) -> Option<String> {
    as_owner(|| {
        read_one(
            "SELECT c.response FROM public.steadytext_cache c \
             WHERE c.cache_key OPERATOR(pg_catalog.=) $1",
            key,
        )
    })
}

/// The cached embedding for `key`.
pub fn embedding(key: &str) -> Option<Vec<f32>> {
    as_owner(|| {
        read_one::<Vector>(
            "SELECT c.embedding FROM public.steadytext_cache c \
             WHERE c.cache_key OPERATOR(pg_catalog.=) $1",
            key,
        )
    })
    .map(|v| v.0)
}

/// Writes a row, except on a hot standby: there the `_cached` functions read the replicated
/// cache and compute a miss without writing it.
fn run(sql: &str, args: &[pgrx::datum::DatumWithOid<'_>]) {
    if !crate::spi::writable() {
        return;
    }
    as_owner(|| Spi::run_with_args(sql, args))
        .unwrap_or_else(|e| crate::errors::raise(&format!("cache update failed: {e}")));
}

/// Records a lookup: a hit bumps the row's access count and time unless another transaction
/// holds the row (the count is a hint, and no caller waits on another); both count toward the
/// hit rate, as rows of their own (never an update of a shared row).
pub fn record_lookup(key: &str, hit: bool) {
    if hit {
        run(
            "UPDATE public.steadytext_cache c SET \
             access_count = c.access_count OPERATOR(pg_catalog.+) 1, \
             last_accessed = pg_catalog.now() \
             WHERE c.id OPERATOR(pg_catalog.=) ANY (SELECT h.id FROM public.steadytext_cache h \
             WHERE h.cache_key OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED)",
            &[key.into()],
        );
    }
    run(
        "INSERT INTO public.steadytext_cache_lookups (hits, misses) VALUES ($1, $2)",
        &[i64::from(hit).into(), i64::from(!hit).into()],
    );
}

/// What a new row describes besides its key and value.
pub struct RowInfo {
    pub prompt: String,
    pub model_name: String,
    pub seed: i32,
    pub eos_string: Option<String>,
    pub params: serde_json::Value,
    pub elapsed_ms: i32,
}

/// Inserts a generation row unless the key exists.
pub fn store_response(key: &str, response: &str, row: &RowInfo) {
    run(
        "INSERT INTO public.steadytext_cache (cache_key, prompt, response, model_name, seed, \
         eos_string, generation_params, response_size, generation_time_ms, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (cache_key) DO NOTHING",
        &[
            key.into(),
            row.prompt.as_str().into(),
            response.into(),
            row.model_name.as_str().into(),
            row.seed.into(),
            row.eos_string.as_deref().into(),
            JsonB(row.params.clone()).into(),
            (response.len() as i32).into(),
            row.elapsed_ms.into(),
            identity_name().into(),
        ],
    );
}

/// Inserts an embedding row unless the key exists.
pub fn store_embedding(key: &str, embedding: &[f32], row: &RowInfo) {
    run(
        "INSERT INTO public.steadytext_cache (cache_key, prompt, embedding, model_name, seed, \
         generation_params, generation_time_ms, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (cache_key) DO NOTHING",
        &[
            key.into(),
            row.prompt.as_str().into(),
            Vector(embedding.to_vec()).into(),
            row.model_name.as_str().into(),
            row.seed.into(),
            JsonB(row.params.clone()).into(),
            row.elapsed_ms.into(),
            identity_name().into(),
        ],
    );
}
