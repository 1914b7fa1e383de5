//! The two ends of `st cache sync`: copying entries between a daemon's frecency cache and
//! `steadytext_cache`. Keys are complete on both sides (the library computes them), so an entry
//! means the same thing in either place; only values and counts cross.
//!
//! Who may: `steadytext_admin`, or `steadytext_worker` (the role fleet hosts log in with) once
//! an admin vouches for the fleet's daemons with the config row `cache_sync = true`. Reading
//! shows every role's cached answers, including those of synchronous calls that never pass
//! through the queue; writing puts rows every role's calls read, whose values the server cannot
//! check.

use pgrx::prelude::*;
use pgrx::JsonB;
use serde::Deserialize;

use crate::errors::{raise, raise_with};
use crate::privilege::{as_owner, has_role, identity_name};
use crate::vector::Vector;

/// Most rows one call reads or writes.
const MAX_ROWS: i32 = 10_000;
/// Largest text accepted for one entry (a generation's answer).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

fn refuse(message: &str) -> ! {
    raise_with(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message)
}

/// Raises 42501 unless the caller is an admin, or a worker vouched for by `cache_sync`.
fn require_sync_privilege(function: &str) {
    let vouched = crate::config::bool("cache_sync").unwrap_or(false);
    if has_role("steadytext_admin") || (vouched && has_role("steadytext_worker")) {
        return;
    }
    refuse(&format!(
        "{function} needs steadytext_admin, or steadytext_worker once an admin sets the config \
         row cache_sync to true (SELECT steadytext_config_set('cache_sync', 'true')); {} has \
         neither",
        crate::privilege::current_user_name()
    ));
}

/// Entries after `after_key` in key order (paging), generations and embeddings, with their
/// access count and last access (microseconds since 1970).
// The row type is the SQL signature; pgrx reads the column names from it.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn steadytext_cache_export(
    after_key: default!(&str, "''"),
    max_rows: default!(i32, 1000),
) -> TableIterator<
    'static,
    (
        name!(cache_key, String),
        name!(kind, String),
        name!(response, Option<String>),
        name!(embedding, Option<Vec<f32>>),
        name!(access_count, i32),
        name!(last_access_us, i64),
    ),
> {
    require_sync_privilege("steadytext_cache_export");
    if !(1..=MAX_ROWS).contains(&max_rows) {
        raise(&format!(
            "max_rows must be between 1 and {MAX_ROWS}, got {max_rows}"
        ));
    }
    let rows = as_owner(|| {
        Spi::connect(|client| {
            let table = client.select(
                "SELECT c.cache_key, c.response, c.embedding, COALESCE(c.access_count, 1), \
                 (EXTRACT(EPOCH FROM COALESCE(c.last_accessed, c.created_at)) \
                  OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8 \
                 FROM public.steadytext_cache c \
                 WHERE c.cache_key OPERATOR(pg_catalog.>) $1 \
                   AND (c.response IS NOT NULL OR c.embedding IS NOT NULL) \
                 ORDER BY c.cache_key LIMIT $2",
                None,
                &[after_key.into(), i64::from(max_rows).into()],
            )?;
            let mut rows = Vec::new();
            for row in table {
                let response: Option<String> = row.get(2)?;
                let embedding: Option<Vector> = row.get(3)?;
                let kind = if embedding.is_some() {
                    "embedding"
                } else {
                    "generation"
                };
                rows.push((
                    row.get::<String>(1)?.unwrap_or_default(),
                    kind.to_string(),
                    response.filter(|_| embedding.is_none()),
                    embedding.map(|v| v.0),
                    row.get::<i32>(4)?.unwrap_or(1),
                    row.get::<i64>(5)?.unwrap_or(0),
                ));
            }
            Ok::<_, pgrx::spi::Error>(rows)
        })
    })
    .unwrap_or_else(|e| raise(&format!("cannot read steadytext_cache: {e}")));
    TableIterator::new(rows)
}

/// One entry as `st cache sync` sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    cache_key: String,
    kind: String,
    #[serde(default)]
    response: Option<String>,
    #[serde(default)]
    embedding: Option<Vec<f32>>,
    access_count: i64,
    last_access_us: i64,
}

/// The key prefixes (`steadytext::cache_key`) each kind of entry may have.
fn prefixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "generation" => &["generate", "structured"],
        "embedding" => &["embed"],
        _ => &[],
    }
}

fn check(entry: &Entry) -> Result<(), String> {
    let well_formed = entry
        .cache_key
        .split_once(':')
        .is_some_and(|(prefix, digest)| {
            prefixes(&entry.kind).contains(&prefix)
                && digest.len() == 64
                && digest.bytes().all(|b| b.is_ascii_hexdigit())
        });
    if !well_formed {
        return Err(format!(
            "cache_key {:?} is not the key of a {} entry",
            entry.cache_key, entry.kind
        ));
    }
    match (entry.kind.as_str(), &entry.response, &entry.embedding) {
        ("generation", Some(text), None) if text.len() <= MAX_RESPONSE_BYTES => Ok(()),
        ("generation", Some(_), None) => Err(format!(
            "the response of {} is over {MAX_RESPONSE_BYTES} bytes",
            entry.cache_key
        )),
        ("embedding", None, Some(v))
            if v.len() == steadytext::defaults::EMBEDDING_DIMENSION
                && v.iter().all(|x| x.is_finite()) =>
        {
            Ok(())
        }
        ("embedding", None, Some(_)) => Err(format!(
            "the embedding of {} is not {} finite numbers",
            entry.cache_key,
            steadytext::defaults::EMBEDDING_DIMENSION
        )),
        _ => Err(format!(
            "entry {} must be a generation with a response or an embedding with an embedding",
            entry.cache_key
        )),
    }
}

/// Writes entries from a daemon's cache: new keys become rows; for keys already there the value
/// stays and the counts merge (the larger access count, the later access), so repeating a sync
/// changes nothing. Returns the number of rows written or merged.
#[pg_extern(volatile, parallel_unsafe)]
fn steadytext_cache_import(entries: JsonB) -> i64 {
    require_sync_privilege("steadytext_cache_import");
    let entries: Vec<Entry> = serde_json::from_value(entries.0)
        .unwrap_or_else(|e| raise(&format!("entries must be a list of cache entries: {e}")));
    if entries.len() > MAX_ROWS as usize {
        raise(&format!(
            "{} entries in one call, more than {MAX_ROWS}",
            entries.len()
        ));
    }
    for entry in &entries {
        check(entry).unwrap_or_else(|e| raise(&e));
    }
    crate::spi::require_writable("import cache entries");
    let user = identity_name();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    as_owner(|| {
        for e in &entries {
            Spi::run_with_args(
                "INSERT INTO public.steadytext_cache AS c (cache_key, prompt, response, embedding, \
                 model_name, access_count, last_accessed, generation_params, created_by) \
                 VALUES ($1, '', $2, $3, 'st cache sync', $4, \
                 pg_catalog.to_timestamp($5::pg_catalog.float8 OPERATOR(pg_catalog./) 1000000), \
                 '{\"source\": \"st cache sync\"}', $6) \
                 ON CONFLICT (cache_key) DO UPDATE SET \
                 access_count = GREATEST(c.access_count, EXCLUDED.access_count), \
                 last_accessed = GREATEST(c.last_accessed, EXCLUDED.last_accessed)",
                &[
                    e.cache_key.as_str().into(),
                    e.response.as_deref().into(),
                    e.embedding.clone().map(Vector).into(),
                    (e.access_count.clamp(1, i64::from(i32::MAX)) as i32).into(),
                    // A future use would outrank every real one in frecency.
                    e.last_access_us.clamp(0, now_us).into(),
                    user.as_str().into(),
                ],
            )?;
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| raise(&format!("cannot write steadytext_cache: {e}")));
    entries.len() as i64
}
