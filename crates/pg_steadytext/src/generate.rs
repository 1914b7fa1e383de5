//! `steadytext_generate`, `steadytext_generate_stream` and `steadytext_generate_cached`.

use std::time::Instant;

use pgrx::prelude::*;
use steadytext::execute::{Execution, Output, Progress};
use steadytext::request::{GenerateRequest, GenerateSpec, Spec};
use steadytext::Request;

use crate::errors::{raise, raise_error, OrRaise};
use crate::route::{self, Interrupts};
use crate::{admission, cache, config, model, remote};

/// The prompt, refused when NULL or blank, with the Python extension's texts and before any
/// other argument is checked, as there.
pub(crate) fn check_prompt(prompt: Option<&str>) -> &str {
    let prompt = prompt.unwrap_or_else(|| raise("Prompt cannot be null"));
    steadytext::request::check_prompt(prompt).or_raise();
    prompt
}

/// `max_tokens`, or the `default_max_tokens` config row when NULL (the library's default
/// without one). The library refuses one below 1, after the checks the Python extension makes
/// first (a negative value reaches it as 0).
pub(crate) fn max_tokens_or_default(max_tokens: Option<i32>) -> Option<usize> {
    let max_tokens = max_tokens
        .map(i64::from)
        .or_else(|| config::int("default_max_tokens"))?;
    Some(usize::try_from(max_tokens).unwrap_or(0))
}

/// `seed`, or the `default_seed` config row when NULL.
pub(crate) fn seed_or_default(seed: Option<i32>) -> Option<i64> {
    seed.map(i64::from).or_else(|| config::int("default_seed"))
}

/// A call's model arguments.
#[derive(Default)]
pub(crate) struct ModelArgs<'a> {
    pub model: Option<&'a str>,
    pub model_repo: Option<&'a str>,
    pub model_filename: Option<&'a str>,
    pub size: Option<&'a str>,
}

/// Admits and builds the request; `None` (with a WARNING that says how to fix it) when no model
/// can be used, as the Python extension returned NULL.
pub(crate) fn build(function: &str, spec: GenerateSpec) -> Option<GenerateRequest> {
    admission::admit(&Spec::Generate(spec.clone()));
    match model::builder().generate(spec) {
        Ok(request) => Some(request),
        Err(e) if route::is_model_problem(&e) => {
            warning!(
                "{function}: no generation model could be used, returning NULL: {e}. Set \
                 steadytext.generation_model (a registry name from `st models list`, a .gguf file \
                 in steadytext.models_dir, or a path), or fetch the model with `st models \
                 download` (or turn on steadytext.allow_model_downloads)"
            );
            None
        }
        Err(e) => raise_error(&e),
    }
}

/// Generates for the extension's own prompts (summaries) with the call defaults, the model and
/// `unsafe_mode` given; `None` (with a WARNING) when no model can be used.
pub(crate) fn generate_for(
    function: &str,
    prompt: &str,
    model: Option<&str>,
    unsafe_mode: bool,
) -> Option<String> {
    steadytext::request::check_remote(model, unsafe_mode).or_raise();
    let models = ModelArgs {
        model,
        ..ModelArgs::default()
    };
    // unsafe_mode without a model is refused by generation; here it only lets a remote model in.
    let unsafe_mode = unsafe_mode && model.is_some();
    let spec = spec(prompt, None, Some(true), None, None, &models, unsafe_mode);
    let request = build(function, spec)?;
    Some(text(request))
}

/// Runs a generation (cache first when allowed); NOTICE when max_tokens did not fit the window.
pub(crate) fn text(request: GenerateRequest) -> String {
    if let Some(hit) = request.cache_key().and_then(|k| cache::response(&k)) {
        return hit;
    }
    let requested = request.params.max_new_tokens;
    match route::run(Request::Generate(request)).or_raise() {
        Output::Text { text, summary } => {
            if let Some(used) = summary.clamped {
                notice!(
                    "max_tokens {requested} is more than the model's window leaves after the \
                     prompt; the output is limited to {used} tokens"
                );
            }
            text
        }
        _ => raise("the daemon did not answer with text"),
    }
}

#[allow(clippy::too_many_arguments)]
fn spec(
    prompt: &str,
    max_tokens: Option<i32>,
    use_cache: Option<bool>,
    seed: Option<i32>,
    eos_string: Option<&str>,
    model: &ModelArgs<'_>,
    unsafe_mode: bool,
) -> GenerateSpec {
    GenerateSpec {
        prompt: prompt.to_string(),
        max_new_tokens: max_tokens_or_default(max_tokens),
        seed: seed_or_default(seed),
        eos_string: eos_string.map(str::to_string),
        model: model.model.map(str::to_string),
        model_repo: model.model_repo.map(str::to_string),
        model_filename: model.model_filename.map(str::to_string),
        size: model.size.map(str::to_string),
        use_cache: Some(use_cache.unwrap_or(true)),
        unsafe_mode: Some(unsafe_mode),
        ..GenerateSpec::default()
    }
}

/// The request of a generate or stream call, checked in the Python extension's order.
#[allow(clippy::too_many_arguments)]
fn request(
    function: &str,
    prompt: Option<&str>,
    max_tokens: Option<i32>,
    use_cache: Option<bool>,
    seed: Option<i32>,
    eos_string: Option<&str>,
    model: ModelArgs<'_>,
    unsafe_mode: Option<bool>,
) -> Option<GenerateRequest> {
    let prompt = check_prompt(prompt);
    let unsafe_mode = unsafe_mode.unwrap_or(false);
    let spec = spec(
        prompt,
        max_tokens,
        use_cache,
        seed,
        eos_string,
        &model,
        unsafe_mode,
    );
    build(function, spec)
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
    let models = ModelArgs {
        model,
        model_repo,
        model_filename,
        size,
    };
    if let Some(text) = remote_text(
        prompt,
        max_tokens,
        use_cache,
        seed,
        eos_string,
        &models,
        unsafe_mode,
    ) {
        return Some(text);
    }
    let request = request(
        "steadytext_generate",
        prompt,
        max_tokens,
        use_cache,
        seed,
        eos_string,
        models,
        unsafe_mode,
    )?;
    Some(text(request))
}

/// A generation by a remote model (see `remote`), or `None` when the model is local.
#[allow(clippy::too_many_arguments)]
fn remote_text(
    prompt: Option<&str>,
    max_tokens: Option<i32>,
    use_cache: Option<bool>,
    seed: Option<i32>,
    eos_string: Option<&str>,
    models: &ModelArgs<'_>,
    unsafe_mode: Option<bool>,
) -> Option<String> {
    let unsafe_mode = unsafe_mode.unwrap_or(false);
    if !models.model.is_some_and(steadytext::request::is_remote) || !unsafe_mode {
        return None;
    }
    let spec = spec(
        check_prompt(prompt),
        max_tokens,
        use_cache,
        seed,
        eos_string,
        models,
        unsafe_mode,
    );
    let use_cache = spec.use_cache.unwrap_or(true);
    let request = remote::request(&Spec::Generate(spec))?;
    let key = remote::generation_key(&request).filter(|_| use_cache);
    if let Some(hit) = key.as_deref().and_then(cache::response) {
        return Some(hit);
    }
    Some(remote::run(request).into_text().or_raise())
}

/// Pieces of a generation as rows, one per call, produced while the model decodes.
struct Pieces {
    execution: Box<dyn Execution + 'static>,
    done: bool,
}

impl Iterator for Pieces {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        use steadytext::Sink;
        while !self.done {
            Interrupts.keep_going();
            match self.execution.advance().or_raise() {
                Progress::Piece(piece) => return Some(piece),
                Progress::Working => {}
                Progress::Done(_) => self.done = true,
            }
        }
        None
    }
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
    let models = ModelArgs {
        model,
        model_repo,
        model_filename,
        size,
    };
    let Some(request) = request(
        "steadytext_generate_stream",
        prompt,
        max_tokens,
        use_cache,
        seed,
        eos_string,
        models,
        unsafe_mode,
    ) else {
        return SetOfIterator::new(Vec::new());
    };
    if let Some(text) = request.cache_key().and_then(|k| cache::response(&k)) {
        return SetOfIterator::new(vec![text]);
    }
    let execution = route::start(Request::Generate(request)).or_raise();
    SetOfIterator::new(Pieces {
        execution,
        done: false,
    })
}

/// Generates through the cache: reads it, and on a miss generates and writes the row.
#[pg_extern(volatile)]
fn steadytext_generate_cached(
    prompt: Option<&str>,
    max_tokens: default!(Option<i32>, "NULL"),
    seed: default!(Option<i32>, 42),
) -> Option<String> {
    let prompt = check_prompt(prompt);
    let spec = spec(
        prompt,
        max_tokens,
        Some(true),
        seed,
        None,
        &ModelArgs::default(),
        false,
    );
    let request = build("steadytext_generate_cached", spec)?;
    let key = request.cache_key().expect("use_cache is on");
    if let Some(text) = cache::response(&key) {
        cache::record_lookup(&key, true);
        return Some(text);
    }
    cache::record_lookup(&key, false);
    let started = Instant::now();
    let row = cache::RowInfo {
        prompt: request.prompt.clone(),
        model_name: request.model.file_name(),
        seed: request.params.seed as i32,
        eos_string: Some(request.params.eos_string.clone()),
        params: serde_json::json!({
            "max_tokens": request.params.max_new_tokens,
            "seed": request.params.seed,
            "temperature": request.params.temperature,
            "model_sha256": request.model.sha256,
        }),
        elapsed_ms: 0,
    };
    let text = text(request);
    cache::store_response(
        &key,
        &text,
        &cache::RowInfo {
            elapsed_ms: started.elapsed().as_millis() as i32,
            ..row
        },
    );
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
