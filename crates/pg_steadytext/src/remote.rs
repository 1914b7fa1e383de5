//! Remote models in SQL: `steadytext_generate(..., model => 'openai:NAME', unsafe_mode => true)`
//! and `steadytext_embed(...)`/`steadytext_embed_cached(...)` the same way.
//!
//! Off unless a superuser sets `steadytext.remote_base_url`; then callers with the privileges of
//! `steadytext_user` may use it (the text leaves the server, and the endpoint may bill for it).
//! The key comes from `steadytext.remote_api_key` (superuser-only, hidden from SHOW) or
//! `steadytext.remote_api_key_file`. The call runs on its own thread while this backend checks
//! for interrupts every 50 ms, so a cancel or statement_timeout ends it at once.
//!
//! Caching: a remote answer is cached only when a superuser declared the endpoint deterministic
//! (`steadytext.remote_deterministic`) and the request is greedy; its cache key names the
//! endpoint and the model, never a local model's sha256.

use std::time::Duration;

use steadytext::execute::Output;
use steadytext::remote::{Provider, RemoteRequest, RemoteTask};
use steadytext::request::{is_remote, Spec};
use steadytext::{Error, ErrorKind};

use crate::errors::{raise_error, OrRaise};
use crate::{guc, model, privilege, route};

/// The remote request `spec` asks for, or `None` when its model is local. Raises when the
/// model is remote but remote calls are off or not allowed for this role.
pub fn request(spec: &Spec) -> Option<RemoteRequest> {
    let model = match spec {
        Spec::Generate(s) => s.model.as_deref(),
        Spec::Embed(s) => s.model.as_deref(),
        Spec::Rerank(_) => None,
    };
    let unsafe_mode = match spec {
        Spec::Generate(s) => s.unsafe_mode.unwrap_or(false),
        Spec::Embed(s) => s.unsafe_mode.unwrap_or(false),
        Spec::Rerank(_) => false,
    };
    if !model.is_some_and(is_remote) || !unsafe_mode {
        return None; // a local model, or the builder's "require unsafe_mode=TRUE"
    }
    guc::string(&guc::REMOTE_BASE_URL)?;
    privilege::require_role("steadytext_user", "a remote model");
    let request = model::builder().remote(spec).or_raise();
    crate::admission::admit(spec);
    request
}

/// The endpoint, as the superuser configured it.
fn provider() -> Provider {
    let base_url = guc::string(&guc::REMOTE_BASE_URL).unwrap_or_default();
    Provider {
        base_url,
        api_key: api_key(),
        timeout: Duration::from_millis(guc::REMOTE_TIMEOUT_MS.get().max(1) as u64),
    }
}

fn api_key() -> Option<String> {
    if let Some(key) = guc::string(&guc::REMOTE_API_KEY) {
        // Until a session loads the library, PostgreSQL keeps a setting from the configuration
        // files as a placeholder that every role can SHOW: the key is safe only when preloaded.
        if !crate::PRELOADED.load(std::sync::atomic::Ordering::Relaxed) {
            crate::errors::raise_with(
                pgrx::PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "steadytext.remote_api_key is used only when pg_steadytext is in \
                 shared_preload_libraries (otherwise any role can SHOW it in a session that has \
                 not loaded the library yet): use steadytext.remote_api_key_file, or preload",
            );
        }
        return Some(key);
    }
    let file = guc::string(&guc::REMOTE_API_KEY_FILE)?;
    match std::fs::read_to_string(&file) {
        Ok(key) if !key.trim().is_empty() => Some(key.trim().to_string()),
        Ok(_) => raise_error(&Error::new(
            ErrorKind::Io,
            format!("steadytext.remote_api_key_file {file} is empty"),
        )),
        Err(e) => raise_error(&Error::new(
            ErrorKind::Io,
            format!("cannot read steadytext.remote_api_key_file {file}: {e}"),
        )),
    }
}

/// Runs `request`, checking for interrupts while it waits.
pub fn run(request: RemoteRequest) -> Output {
    let mut execution = provider().start(request);
    let mut interrupts = route::Interrupts;
    loop {
        use steadytext::Sink;
        interrupts.keep_going();
        match execution.advance().or_raise() {
            steadytext::Progress::Done(output) => return output,
            _ => continue,
        }
    }
}

/// The cache key of a remote generation, when its answer may be cached.
pub fn generation_key(request: &RemoteRequest) -> Option<String> {
    let RemoteTask::Generate {
        prompt,
        params,
        constraint,
    } = &request.task
    else {
        return None;
    };
    let identity = cacheable(request, params.temperature)?;
    Some(match constraint {
        Some(c) => steadytext::cache_key::structured(
            &identity,
            prompt,
            params.max_new_tokens,
            params.seed,
            params.temperature,
            &c.key(),
        ),
        None => steadytext::cache_key::generation(
            &identity,
            prompt,
            params.max_new_tokens,
            params.seed,
            params.temperature,
            &params.eos_string,
        ),
    })
}

/// The cache key of one remotely embedded text, when it may be cached.
pub fn embedding_key(request: &RemoteRequest, text: &str) -> Option<String> {
    let identity = cacheable(request, 0.0)?;
    Some(steadytext::cache_key::embedding(&identity, "remote", text))
}

/// The model identity for cache keys, when the endpoint is declared deterministic and the
/// request is greedy.
fn cacheable(request: &RemoteRequest, temperature: f32) -> Option<String> {
    if !guc::REMOTE_DETERMINISTIC.get() || temperature != 0.0 {
        return None;
    }
    let base_url = guc::string(&guc::REMOTE_BASE_URL)?;
    Some(request.model.cache_identity(&base_url))
}
