//! `steadytext_generate_json`, `steadytext_generate_regex` and `steadytext_generate_choice`:
//! generation constrained by a grammar, greedy by default, in the daemon or the backend.

use pgrx::prelude::*;
use pgrx::JsonB;
use steadytext::{cache_key, Constraint, GenerateParams};

use crate::errors::{check_remote_model, raise};
use crate::generate::{check_prompt, max_tokens_or_default};
use crate::inference::{self, ModelArgs, ModelFile, THREADS};
use crate::{cache, guc};

/// A validated structured call.
struct Request {
    prompt: String,
    constraint: Constraint,
    params: GenerateParams,
    model: ModelArgs,
}

impl Request {
    /// Validates in the Python extension's order and with its texts: the prompt, the
    /// constraint, then the remote-model gate.
    fn new(
        prompt: Option<&str>,
        constraint: impl FnOnce() -> Constraint,
        max_tokens: Option<i32>,
        seed: Option<i32>,
        temperature: Option<f32>,
        model: Option<&str>,
        unsafe_mode: Option<bool>,
    ) -> Self {
        let prompt = check_prompt(prompt);
        let constraint = constraint();
        if let Err(e) = constraint.to_gbnf() {
            raise(&e.to_string());
        }
        check_remote_model(model, unsafe_mode.unwrap_or(false));
        let max_tokens = max_tokens_or_default(max_tokens);
        let seed = seed.map(i64::from).unwrap_or(42);
        if seed < 0 {
            raise("seed must be non-negative");
        }
        let temperature = temperature.unwrap_or(0.0);
        if !temperature.is_finite() || temperature < 0.0 {
            raise(&format!("temperature must be >= 0, got {temperature}"));
        }
        Request {
            prompt: prompt.to_string(),
            constraint,
            params: GenerateParams {
                max_new_tokens: max_tokens,
                seed: seed as u32,
                temperature,
                eos_string: steadytext::params::EOS_SENTINEL.to_string(),
                threads: Some(THREADS),
            },
            model: ModelArgs {
                model: model.map(str::to_string),
                ..Default::default()
            },
        }
    }

    /// The output: from the cache when allowed, else generated. `None` (with a WARNING) when
    /// there is no model.
    fn run(&self, function: &str, use_cache: Option<bool>) -> Option<String> {
        let file = match inference::generation_model(&self.model) {
            Ok(file) => file,
            Err(e) => {
                warning!(
                    "{function}: no generation model could be loaded, returning NULL: {e}. Set \
                     steadytext.generation_model to a GGUF file or a registry name."
                );
                return None;
            }
        };
        if use_cache.unwrap_or(true) {
            if let Some(hit) = self.key(&file).and_then(|k| cache::response(&k)) {
                return Some(hit);
            }
        }
        Some(inference::generate_constrained(
            &file,
            &self.prompt,
            &self.params,
            &self.constraint,
        ))
    }

    fn key(&self, file: &ModelFile) -> Option<String> {
        let sha = file.sha256().ok()?;
        Some(cache_key::structured(
            &sha,
            &self.prompt,
            self.params.max_new_tokens,
            self.params.seed,
            self.params.temperature,
            &self.constraint.key(),
        ))
    }
}

/// JSON that validates against `schema` (plain JSON, so `::jsonb` works; with
/// `steadytext.json_output_tags` on, wrapped in `<json-output>` tags as the Python extension
/// returned it).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn steadytext_generate_json(
    prompt: Option<&str>,
    schema: Option<JsonB>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    unsafe_mode: default!(Option<bool>, false),
    model: default!(Option<&str>, "NULL"),
    temperature: default!(Option<f32>, 0.0),
) -> Option<String> {
    let request = Request::new(
        prompt,
        || match schema {
            None => raise("Schema cannot be null"),
            Some(JsonB(schema)) => Constraint::Json(schema),
        },
        max_tokens,
        seed,
        temperature,
        model,
        unsafe_mode,
    );
    let json = request.run("steadytext_generate_json", use_cache)?;
    Some(if guc::JSON_OUTPUT_TAGS.get() {
        format!("<json-output>{json}</json-output>")
    } else {
        json
    })
}

/// Text that `pattern` matches in full.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn steadytext_generate_regex(
    prompt: Option<&str>,
    pattern: Option<&str>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    unsafe_mode: default!(Option<bool>, false),
    model: default!(Option<&str>, "NULL"),
    temperature: default!(Option<f32>, 0.0),
) -> Option<String> {
    let request = Request::new(
        prompt,
        || match pattern {
            Some(p) if !p.is_empty() => Constraint::Regex(p.to_string()),
            _ => raise("Pattern cannot be null or empty"),
        },
        max_tokens,
        seed,
        temperature,
        model,
        unsafe_mode,
    );
    request.run("steadytext_generate_regex", use_cache)
}

/// Exactly one of `choices`.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn steadytext_generate_choice(
    prompt: Option<&str>,
    choices: Option<Vec<Option<String>>>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    unsafe_mode: default!(Option<bool>, false),
    model: default!(Option<&str>, "NULL"),
    temperature: default!(Option<f32>, 0.0),
) -> Option<String> {
    let request = Request::new(
        prompt,
        || {
            let choices = match choices {
                Some(c) if !c.is_empty() => c,
                _ => raise("Choices cannot be null or empty"),
            };
            if choices.len() < 2 {
                raise("Must provide at least 2 choices");
            }
            let Some(choices) = choices.into_iter().collect::<Option<Vec<String>>>() else {
                raise("Choices cannot contain null elements")
            };
            Constraint::Choice(choices)
        },
        max_tokens,
        seed,
        temperature,
        model,
        unsafe_mode,
    );
    request.run("steadytext_generate_choice", use_cache)
}

/// Raises the SQL-level error for a bad constraint (`kind` is json, regex or choice), so that
/// the `*_async` functions refuse what the synchronous ones would.
#[pg_extern(immutable, parallel_safe)]
fn _steadytext_check_constraint(kind: &str, value: JsonB) {
    let constraint = match (kind, value.0) {
        ("json", schema) => Constraint::Json(schema),
        ("regex", serde_json::Value::String(p)) => Constraint::Regex(p),
        ("choice", choices) => Constraint::Choice(
            serde_json::from_value(choices)
                .unwrap_or_else(|_| raise("Choices cannot contain null elements")),
        ),
        (other, _) => raise(&format!("unknown constraint kind '{other}'")),
    };
    if let Err(e) = constraint.to_gbnf() {
        raise(&e.to_string());
    }
}
