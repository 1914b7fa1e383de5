//! `pg_steadytext`: deterministic text generation and embeddings as SQL functions.
//!
//! Thin by design: each module converts SQL values, enforces the SQL-level semantics of the
//! Python extension it replaces, and calls the `steadytext` library, which builds and checks every
//! request (`model` turns a call's arguments and the settings into a request, `route` runs it in
//! the daemon or here). The schema, the config and cache management functions and the `st_*`
//! aliases are plain SQL in `sql/`; `privilege` and the grants at the end of `sql/functions.sql`
//! are the security model.

use pgrx::prelude::*;

mod admission;
mod audit;
mod cache;
mod cache_sync;
mod config;
mod daemon;
mod daemon_process;
mod embed;
mod errors;
mod generate;
mod guc;
mod info;
mod model;
mod privilege;
mod prompts;
mod queue;
mod rate_limit;
mod remote;
mod rerank;
mod route;
mod spi;
mod structured;
mod summarize;
mod supervisor;
mod vector;

::pgrx::pg_module_magic!();

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/functions.sql", name = "functions", finalize);
extension_sql_file!(
    "../sql/queue.sql",
    name = "queue",
    requires = [
        "schema",
        queue::_steadytext_enqueue,
        queue::_steadytext_enqueue_empty,
        info::steadytext_version,
    ]
);
extension_sql_file!(
    "../sql/structured.sql",
    name = "structured",
    requires = [
        "queue",
        rerank::steadytext_rerank,
        rerank::steadytext_rerank_batch,
        structured::steadytext_generate_json,
        structured::steadytext_generate_regex,
        structured::steadytext_generate_choice,
        structured::steadytext_generate_grammar,
        structured::_steadytext_check_constraint,
    ]
);
extension_sql_file!(
    "../sql/summarize.sql",
    name = "summarize",
    requires = [
        summarize::steadytext_summarize_accumulate,
        summarize::steadytext_summarize_combine,
        summarize::steadytext_summarize_finalize,
        summarize::steadytext_summarize_text,
        summarize::steadytext_extract_facts,
        summarize::steadytext_deduplicate_facts,
    ]
);
extension_sql_file!(
    "../sql/prompts.sql",
    name = "prompts",
    requires = [
        "schema",
        generate::steadytext_generate,
        prompts::steadytext_prompt_create,
        prompts::steadytext_prompt_update,
        prompts::steadytext_prompt_delete,
        prompts::_steadytext_render_template,
    ]
);

/// Whether the library was loaded by the postmaster (backends inherit it when they fork): only
/// then are its settings defined before any session can read them.
pub static PRELOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // A Rust panic becomes an ERROR whose DETAIL is a backtrace when the server's environment
    // has RUST_BACKTRACE: developers' information, never a client's. The variables go before
    // anything captures a backtrace (std reads them once), and before any thread starts.
    std::env::remove_var("RUST_BACKTRACE");
    std::env::remove_var("RUST_LIB_BACKTRACE");
    guc::register();
    // SAFETY: reads a flag the postmaster sets while loading shared_preload_libraries.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    if preloading {
        PRELOADED.store(true, std::sync::atomic::Ordering::Relaxed);
        guc::register_postmaster();
        if guc::DAEMON_AUTOSTART.get() {
            supervisor::register();
        }
        queue::register_workers();
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    /// The test cluster finds the test models through these settings.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        let dir = std::env::var("STEADYTEXT_TEST_MODELS")
            .unwrap_or_else(|_| "/var/cache/steadytext/test-models".to_string());
        vec![
            // The in-process engine is tested here; the pgTAP suite goes through the daemon.
            "steadytext.use_daemon = off",
            Box::leak(
                format!("steadytext.generation_model = '{dir}/smollm2-135m-instruct-q4_1.gguf'")
                    .into_boxed_str(),
            ),
            Box::leak(
                format!("steadytext.embedding_model = '{dir}/all-minilm-l6-v2-f32.gguf'")
                    .into_boxed_str(),
            ),
        ]
    }
}
