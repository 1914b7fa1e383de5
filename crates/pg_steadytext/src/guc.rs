//! Settings (`steadytext.*`). Settings that decide where data goes or which files are opened
//! (models, the daemon, downloads, limits) are superuser-only (PGC_SUSET; `GRANT SET ON
//! PARAMETER` can delegate them); per-call model arguments of non-superusers are held to registry
//! names and files in the models directory.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use steadytext::defaults::Limits;

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
pub static DAEMON_ENDPOINT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DAEMON_HOST: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DAEMON_PORT: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static JSON_OUTPUT_TAGS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static QUEUE_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(1);
pub static QUEUE_DATABASES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
pub static QUEUE_POLL_MS: GucSetting<i32> = GucSetting::<i32>::new(5000);
pub static WORKER_ROLE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"steadytext_worker"));
pub static ST_PATH: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"st"));
pub static MAX_PROMPT_LENGTH: GucSetting<i32> =
    GucSetting::<i32>::new(Limits::DEFAULT.max_prompt_length as i32);
pub static MAX_TOKENS_LIMIT: GucSetting<i32> =
    GucSetting::<i32>::new(Limits::DEFAULT.max_tokens as i32);
pub static MAX_BATCH_SIZE: GucSetting<i32> =
    GucSetting::<i32>::new(Limits::DEFAULT.max_batch_size as i32);
pub static MAX_REQUEST_LENGTH: GucSetting<i32> =
    GucSetting::<i32>::new(Limits::DEFAULT.max_request_length as i32);
pub static SUMMARY_MAX_FACTS: GucSetting<i32> = GucSetting::<i32>::new(100);
pub static MAX_TEMPLATE_MEMORY_MB: GucSetting<i32> =
    GucSetting::<i32>::new((steadytext::template::DEFAULT_MEMORY_BYTES >> 20) as i32);
pub static PROMPT_DENY_PATTERN: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static REMOTE_BASE_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REMOTE_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REMOTE_API_KEY_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static REMOTE_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(60_000);
pub static REMOTE_DETERMINISTIC: GucSetting<bool> = GucSetting::<bool>::new(false);

fn string_guc(
    name: &'static std::ffi::CStr,
    short: &'static std::ffi::CStr,
    long: &'static std::ffi::CStr,
    setting: &'static GucSetting<Option<CString>>,
    context: GucContext,
) {
    GucRegistry::define_string_guc(name, short, long, setting, context, GucFlags::default());
}

pub fn register() {
    register_models();
    register_limits();
    register_daemon();
    register_remote();
    GucRegistry::define_bool_guc(
        c"steadytext.json_output_tags",
        c"Wrap steadytext_generate_json's output in <json-output></json-output> tags.",
        c"Off: plain JSON that casts to jsonb. On: the Python extension's tagged form.",
        &JSON_OUTPUT_TAGS,
        GucContext::Userset,
        GucFlags::default(),
    );
    string_guc(
        c"steadytext.embedding_mode",
        c"Embedding prefix: query or passage.",
        c"Decides the 'Query: '/'Passage: ' prefix SteadyText puts before the text.",
        &EMBEDDING_MODE,
        GucContext::Userset,
    );
}

fn register_models() {
    string_guc(
        c"steadytext.generation_model",
        c"Generation model: a registry name (st models list), a .gguf file name or a path.",
        c"Empty means SteadyText's default model. Per-call model arguments take precedence.",
        &GENERATION_MODEL,
        GucContext::Suset,
    );
    string_guc(
        c"steadytext.embedding_model",
        c"Embedding model: a registry name, a .gguf file name or a path.",
        c"Empty means SteadyText's default embedding model.",
        &EMBEDDING_MODEL,
        GucContext::Suset,
    );
    string_guc(
        c"steadytext.reranking_model",
        c"Reranking model: a registry name, a .gguf file name or a path.",
        c"Empty means SteadyText's default reranking model.",
        &RERANKING_MODEL,
        GucContext::Suset,
    );
    string_guc(
        c"steadytext.models_dir",
        c"Directory of model files.",
        c"Empty means STEADYTEXT_MODELS_DIR or ~/.cache/steadytext/models of the server's user.",
        &MODELS_DIR,
        GucContext::Suset,
    );
    GucRegistry::define_bool_guc(
        c"steadytext.allow_model_downloads",
        c"Whether a backend may download a missing registry model from Hugging Face.",
        c"Off by default: a query should not start a multi-gigabyte download. Use st models download.",
        &ALLOW_MODEL_DOWNLOADS,
        GucContext::Suset,
        GucFlags::default(),
    );
}

fn register_limits() {
    GucRegistry::define_int_guc(
        c"steadytext.max_prompt_length",
        c"Most characters in a prompt, an embedded text, a query or a document.",
        c"Checked before anything is tokenized; SQLSTATE 54000.",
        &MAX_PROMPT_LENGTH,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"steadytext.max_tokens_limit",
        c"Most tokens a generation may ask for (max_tokens).",
        c"Checked before anything is tokenized; SQLSTATE 54000.",
        &MAX_TOKENS_LIMIT,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"steadytext.max_batch_size",
        c"Most texts or documents in one call.",
        c"Checked before anything is tokenized; SQLSTATE 54000.",
        &MAX_BATCH_SIZE,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"steadytext.max_request_length",
        c"Most characters in all the texts of one call together.",
        c"A rerank's documents with its query and task, a batch's texts, a prompt with its \
          constraint: checked before anything is tokenized; SQLSTATE 54000.",
        &MAX_REQUEST_LENGTH,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"steadytext.max_template_memory",
        c"Most memory one prompt template rendering may use.",
        c"Templates render in a child process with this much address space beyond the backend's; \
          more is SQLSTATE 54000, whatever the template does.",
        &MAX_TEMPLATE_MEMORY_MB,
        1,
        4096,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    GucRegistry::define_int_guc(
        c"steadytext.summary_max_facts",
        c"Most distinct facts a steadytext_summarize state keeps (each at most 500 characters).",
        c"The kept facts are those with the smallest hashes: the same set whatever the row order.",
        &SUMMARY_MAX_FACTS,
        1,
        1000,
        GucContext::Userset,
        GucFlags::default(),
    );
    string_guc(
        c"steadytext.prompt_deny_pattern",
        c"A regular expression; prompts that match it are refused.",
        c"Empty by default. Pattern matching is no defence against prompt injection.",
        &PROMPT_DENY_PATTERN,
        GucContext::Suset,
    );
}

/// Remote providers: superuser-only, and the key is hidden from everyone else (SHOW, pg_settings).
fn register_remote() {
    // Hidden too: a URL may carry credentials.
    GucRegistry::define_string_guc(
        c"steadytext.remote_base_url",
        c"OpenAI-compatible endpoint for remote models (model => 'openai:NAME', unsafe_mode => true).",
        c"Up to and including /v1. Empty (the default): remote models are refused.",
        &REMOTE_BASE_URL,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_string_guc(
        c"steadytext.remote_api_key",
        c"Bearer token sent to steadytext.remote_base_url.",
        c"Readable by superusers only. steadytext.remote_api_key_file keeps it out of the catalogs.",
        &REMOTE_API_KEY,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    string_guc(
        c"steadytext.remote_api_key_file",
        c"A file (read by the server's OS user) holding the remote provider's bearer token.",
        c"Used when steadytext.remote_api_key is empty.",
        &REMOTE_API_KEY_FILE,
        GucContext::Suset,
    );
    GucRegistry::define_int_guc(
        c"steadytext.remote_timeout",
        c"Most time a remote provider call may take.",
        c"A query cancel or statement_timeout stops the call sooner.",
        &REMOTE_TIMEOUT_MS,
        100,
        3_600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"steadytext.remote_deterministic",
        c"The remote endpoint answers the same bytes for the same greedy request.",
        c"On: greedy (temperature 0) remote results are cached like local ones. Off (the default): never cached.",
        &REMOTE_DETERMINISTIC,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// The daemon settings.
fn register_daemon() {
    GucRegistry::define_bool_guc(
        c"steadytext.use_daemon",
        c"Send inference to the st daemon (one model owner for every connection).",
        c"Off: every backend runs the engine itself.",
        &USE_DAEMON,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"steadytext.inprocess_fallback",
        c"Run the engine in the backend when the daemon cannot be reached.",
        c"Off: such calls fail with an error naming the daemon's endpoint.",
        &INPROCESS_FALLBACK,
        GucContext::Suset,
        GucFlags::default(),
    );
    string_guc(
        c"steadytext.daemon_endpoint",
        c"The st daemon's ZeroMQ endpoint (ipc:///path or tcp://host:port).",
        c"Empty: the server's private socket, ipc://<data directory>/pg_steadytext/daemon.sock.",
        &DAEMON_ENDPOINT,
        GucContext::Suset,
    );
    string_guc(
        c"steadytext.daemon_host",
        c"With steadytext.daemon_port: a TCP endpoint for the daemon (when daemon_endpoint is empty).",
        c"",
        &DAEMON_HOST,
        GucContext::Suset,
    );
    GucRegistry::define_int_guc(
        c"steadytext.daemon_port",
        c"With steadytext.daemon_host: a TCP endpoint for the daemon (0: not used).",
        c"",
        &DAEMON_PORT,
        0,
        65535,
        GucContext::Suset,
        GucFlags::default(),
    );
    string_guc(
        c"steadytext.st_path",
        c"The st binary used to start the daemon.",
        c"Started without a shell: `st daemon start --endpoint E --no-preload`.",
        &ST_PATH,
        GucContext::Suset,
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
        c"It listens at the endpoint of steadytext.daemon_endpoint (the private socket by default).",
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
    string_guc(
        c"steadytext.queue_databases",
        c"Comma-separated databases whose steadytext_queue the background workers serve.",
        c"A worker idles while its database does not have pg_steadytext installed.",
        &QUEUE_DATABASES,
        GucContext::Postmaster,
    );
    string_guc(
        c"steadytext.worker_role",
        c"The role the background queue workers connect as (a non-superuser with LOGIN).",
        c"steadytext_worker, created by the extension, by default.",
        &WORKER_ROLE,
        GucContext::Postmaster,
    );
}

/// A string setting, `None` when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}
