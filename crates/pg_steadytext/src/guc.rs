//! Settings (`steadytext.*`). Each model setting is a registry name or a path to a GGUF file;
//! empty means the library's default (SteadyText's model, after `STEADYTEXT_*` environment
//! overrides in the server's environment).

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static GENERATION_MODEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static EMBEDDING_MODEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static RERANKING_MODEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static MODELS_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static EMBEDDING_MODE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"query"));
pub static ALLOW_MODEL_DOWNLOADS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static USE_DAEMON: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static DAEMON_AUTOSTART: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static INPROCESS_FALLBACK: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static DAEMON_HOST: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DAEMON_PORT: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static JSON_OUTPUT_TAGS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static QUEUE_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(1);
pub static QUEUE_DATABASES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
pub static QUEUE_POLL_MS: GucSetting<i32> = GucSetting::<i32>::new(5000);
pub static ST_PATH: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"st"));

pub fn register() {
    GucRegistry::define_string_guc(
        c"steadytext.generation_model",
        c"Generation model: a registry name (st models list) or a GGUF path.",
        c"Empty means SteadyText's default model. Per-call model arguments take precedence.",
        &GENERATION_MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"steadytext.embedding_model",
        c"Embedding model: a registry name or a GGUF path.",
        c"Empty means SteadyText's default embedding model.",
        &EMBEDDING_MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"steadytext.reranking_model",
        c"Reranking model: a registry name or a GGUF path.",
        c"Empty means SteadyText's default reranking model.",
        &RERANKING_MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"steadytext.models_dir",
        c"Directory of downloaded model files.",
        c"Empty means STEADYTEXT_MODELS_DIR or ~/.cache/steadytext/models of the server's user.",
        &MODELS_DIR,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"steadytext.embedding_mode",
        c"Embedding prefix: query or passage.",
        c"Decides the 'Query: '/'Passage: ' prefix SteadyText puts before the text.",
        &EMBEDDING_MODE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"steadytext.allow_model_downloads",
        c"Whether a backend may download a missing registry model from Hugging Face.",
        c"Off by default: a query should not start a multi-gigabyte download. Use st models download.",
        &ALLOW_MODEL_DOWNLOADS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"steadytext.json_output_tags",
        c"Wrap steadytext_generate_json's output in <json-output></json-output> tags.",
        c"Off: plain JSON that casts to jsonb. On: the Python extension's tagged form.",
        &JSON_OUTPUT_TAGS,
        GucContext::Userset,
        GucFlags::default(),
    );
    register_daemon();
}

/// The daemon settings, defined separately to keep `register` readable.
fn register_daemon() {
    GucRegistry::define_bool_guc(
        c"steadytext.use_daemon",
        c"Send inference to the st daemon (one model owner for every connection).",
        c"Off: every backend runs the engine itself.",
        &USE_DAEMON,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"steadytext.inprocess_fallback",
        c"Run the engine in the backend when the daemon cannot be reached.",
        c"Off: such calls fail with an error naming the daemon's endpoint.",
        &INPROCESS_FALLBACK,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"steadytext.daemon_host",
        c"Host of the st daemon; empty means the daemon_host config row.",
        c"",
        &DAEMON_HOST,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"steadytext.daemon_port",
        c"Port of the st daemon; 0 means the daemon_port config row.",
        c"",
        &DAEMON_PORT,
        0,
        65535,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"steadytext.st_path",
        c"The st binary used to start the daemon on demand.",
        c"Started without a shell: `st daemon start --host H --port P --no-preload`.",
        &ST_PATH,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"steadytext.queue_poll_interval",
        c"How often an idle queue worker looks for work it was not woken for.",
        c"A safety net: an enqueue wakes the workers at once.",
        &QUEUE_POLL_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
}

/// The postmaster settings (`steadytext.daemon_autostart`, the queue workers): they can only be
/// defined while the library is preloaded.
pub fn register_postmaster() {
    GucRegistry::define_bool_guc(
        c"steadytext.daemon_autostart",
        c"With pg_steadytext preloaded, a background worker starts and supervises the st daemon.",
        c"It listens at steadytext.daemon_host/steadytext.daemon_port (default localhost:5555).",
        &DAEMON_AUTOSTART,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"steadytext.queue_workers",
        c"Background workers serving steadytext_queue, per database in steadytext.queue_databases.",
        c"0 disables them; st worker can serve the queue instead.",
        &QUEUE_WORKERS,
        0,
        64,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"steadytext.queue_databases",
        c"Comma-separated databases whose steadytext_queue the background workers serve.",
        c"A worker idles while its database does not have pg_steadytext installed.",
        &QUEUE_DATABASES,
        GucContext::Postmaster,
        GucFlags::default(),
    );
}

/// A string setting, `None` when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}
