//! `steadytext_generate`, `steadytext_generate_stream` and `steadytext_generate_cached`.

use std::time::Instant;

use pgrx::prelude::*;
use steadytext::GenerateParams;

use crate::errors::{check_remote_model, raise, raise_library};
use crate::inference::{self, ModelArgs, ModelFile, THREADS};
use crate::{cache, config};
use steadytext::cache_key;

/// A validated generation call.
struct Request {
    prompt: String,
    params: GenerateParams,
    model: ModelArgs,
}

/// The prompt, refused when NULL or blank (the Python extension's texts).
pub(crate) fn check_prompt(prompt: Option<&str>) -> &str {
    let Some(prompt) = prompt else {
        raise("Prompt cannot be null")
    };
    if prompt.trim().is_empty() {
        raise("Prompt cannot be empty");
    }
    prompt
}

/// `max_tokens`, or the `default_max_tokens` config row when NULL (512 without one); at least 1.
pub(crate) fn max_tokens_or_default(max_tokens: Option<i32>) -> usize {
    let max_tokens = max_tokens
        .map(i64::from)
        .or_else(|| config::int("default_max_tokens"))
        .unwrap_or(512);
    if max_tokens < 1 {
        raise(&format!("max_tokens must be at least 1, got {max_tokens}"));
    }
    max_tokens as usize
}

impl Request {
    /// Validates in the Python extension's order, with its messages, and fills NULLs from the
    /// config rows.
    #[allow(clippy::too_many_arguments)]
    fn new(
        prompt: Option<&str>,
        max_tokens: Option<i32>,
        seed: Option<i32>,
        eos_string: Option<&str>,
        model: ModelArgs,
        unsafe_mode: bool,
    ) -> Self {
        let prompt = check_prompt(prompt);
        let seed = seed
            .map(i64::from)
            .or_else(|| config::int("default_seed"))
            .unwrap_or(42);
        if seed < 0 {
            raise("seed must be non-negative");
        }
        check_remote_model(model.model.as_deref(), unsafe_mode);
        if unsafe_mode && model.model.is_none() {
            raise("unsafe_mode=TRUE requires a model parameter");
        }
        let max_tokens = max_tokens_or_default(max_tokens);
        Request {
            prompt: prompt.to_string(),
            params: GenerateParams {
                max_new_tokens: max_tokens,
                seed: seed as u32,
                temperature: 0.0,
                eos_string: eos_string
                    .unwrap_or(steadytext::params::EOS_SENTINEL)
                    .to_string(),
                threads: Some(THREADS),
            },
            model,
        }
    }

    /// The model, or a WARNING that says why there is none and how to fix it.
    fn model(&self, function: &str) -> Option<ModelFile> {
        match inference::generation_model(&self.model) {
            Ok(model) => Some(model),
            Err(e) => {
                warning!(
                    "{function}: no generation model could be loaded, returning NULL: {e}. \
                     Set steadytext.generation_model to a GGUF file or a registry name \
                     (see `st models list`), or download the model with `st models download`."
                );
                None
            }
        }
    }

    fn cache_key(&self, model: &ModelFile) -> String {
        let sha = model
            .sha256()
            .unwrap_or_else(|e| raise_library("cannot fingerprint the model", &e));
        cache_key::generation(
            &sha,
            &self.prompt,
            self.params.max_new_tokens,
            self.params.seed,
            self.params.temperature,
            &self.params.eos_string,
        )
    }

    /// The cached text, when `use_cache` and the cache has this request.
    fn cached(&self, model: &ModelFile, use_cache: Option<bool>) -> Option<String> {
        if !use_cache.unwrap_or(true) {
            return None;
        }
        cache::response(&self.cache_key(model))
    }

    /// Generates (in the daemon or here), checking for cancellation between tokens.
    fn run(&self, model: &ModelFile) -> String {
        inference::generate(model, &self.prompt, &self.params)
    }
}

fn model_args(
    model: Option<&str>,
    model_repo: Option<&str>,
    model_filename: Option<&str>,
    size: Option<&str>,
) -> ModelArgs {
    ModelArgs {
        model: model.map(str::to_string),
        model_repo: model_repo.map(str::to_string),
        model_filename: model_filename.map(str::to_string),
        size: size.map(str::to_string),
    }
}

/// Generates text; NULL (with a WARNING) when no model can be loaded.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn steadytext_generate(
    prompt: Option<&str>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    eos_string: default!(Option<&str>, "'[EOS]'"),
    model: default!(Option<&str>, "NULL"),
    model_repo: default!(Option<&str>, "NULL"),
    model_filename: default!(Option<&str>, "NULL"),
    size: default!(Option<&str>, "NULL"),
    unsafe_mode: default!(Option<bool>, false),
) -> Option<String> {
    let args = model_args(model, model_repo, model_filename, size);
    let request = Request::new(
        prompt,
        max_tokens,
        seed,
        eos_string,
        args,
        unsafe_mode.unwrap_or(false),
    );
    let model = request.model("steadytext_generate")?;
    Some(
        request
            .cached(&model, use_cache)
            .unwrap_or_else(|| request.run(&model)),
    )
}

/// Streams the generation as rows while the model decodes. Rows arrive one per call in the
/// select list or through a cursor; `SELECT * FROM` materialises them first.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn steadytext_generate_stream(
    prompt: Option<&str>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    eos_string: default!(Option<&str>, "'[EOS]'"),
    model: default!(Option<&str>, "NULL"),
    model_repo: default!(Option<&str>, "NULL"),
    model_filename: default!(Option<&str>, "NULL"),
    size: default!(Option<&str>, "NULL"),
    unsafe_mode: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let args = model_args(model, model_repo, model_filename, size);
    let request = Request::new(
        prompt,
        max_tokens,
        seed,
        eos_string,
        args,
        unsafe_mode.unwrap_or(false),
    );
    let Some(model) = request.model("steadytext_generate_stream") else {
        return SetOfIterator::new(Vec::new());
    };
    if let Some(text) = request.cached(&model, use_cache) {
        return SetOfIterator::new(vec![text]);
    }
    SetOfIterator::new(inference::stream(&model, &request.prompt, &request.params))
}

/// Generates through the cache: reads it, and on a miss generates and writes the row.
#[pg_extern(volatile)]
fn steadytext_generate_cached(
    prompt: Option<&str>,
    max_tokens: default!(Option<i32>, "NULL"),
    seed: default!(Option<i32>, 42),
) -> Option<String> {
    let request = Request::new(prompt, max_tokens, seed, None, ModelArgs::default(), false);
    let model = request.model("steadytext_generate_cached")?;
    let key = request.cache_key(&model);
    if let Some(text) = cache::response(&key) {
        cache::record_lookup(&key, true);
        return Some(text);
    }
    cache::record_lookup(&key, false);
    let started = Instant::now();
    let text = request.run(&model);
    let row = cache::RowInfo {
        prompt: &request.prompt,
        model_name: &model.name(),
        seed: request.params.seed as i32,
        eos_string: Some(&request.params.eos_string),
        params: serde_json::json!({
            "max_tokens": request.params.max_new_tokens,
            "seed": request.params.seed,
            "temperature": request.params.temperature,
            "model_sha256": model.sha256().ok(),
        }),
        elapsed_ms: started.elapsed().as_millis() as i32,
    };
    cache::store_response(&key, &text, &row);
    Some(text)
}

/// `st_generate_stream`: the alias is a C function too, so its rows stream like the original's.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn st_generate_stream(
    prompt: Option<&str>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    eos_string: default!(Option<&str>, "'[EOS]'"),
    model: default!(Option<&str>, "NULL"),
    model_repo: default!(Option<&str>, "NULL"),
    model_filename: default!(Option<&str>, "NULL"),
    size: default!(Option<&str>, "NULL"),
    unsafe_mode: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    steadytext_generate_stream(
        prompt,
        max_tokens,
        use_cache,
        seed,
        eos_string,
        model,
        model_repo,
        model_filename,
        size,
        unsafe_mode,
    )
}
