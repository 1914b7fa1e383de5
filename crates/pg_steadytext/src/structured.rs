//! `steadytext_generate_json`, `_regex`, `_choice` and `_grammar`: generation constrained by
//! llguidance, greedy by default, in the daemon or the backend.
//!
//! The JSON, regex and choice functions have the Python extension's seven arguments. Sampling is
//! reached through an overload whose third argument is `temperature` (no default), so no call
//! of the seven-argument form becomes ambiguous and `DROP FUNCTION name(seven types)` still
//! names the reference function:
//! `steadytext_generate_json(prompt, schema, temperature => 0.8, seed => 7)`.

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;
use steadytext::request::GenerateSpec;
use steadytext::Constraint;

use crate::errors::{raise, raise_error};
use crate::generate::{self, check_prompt, max_tokens_or_default, seed_or_default};
use crate::guc;

/// A structured call's arguments.
struct Call<'a> {
    function: &'a str,
    prompt: Option<&'a str>,
    max_tokens: Option<i32>,
    use_cache: Option<bool>,
    seed: Option<i32>,
    unsafe_mode: Option<bool>,
    model: Option<&'a str>,
    temperature: Option<f64>,
}

impl Call<'_> {
    /// Checks in the Python extension's order (the prompt, the constraint, the remote-model
    /// gate), builds and runs the request. `None` (with a WARNING) when there is no model.
    fn run(self, constraint: impl FnOnce() -> Constraint) -> Option<String> {
        let prompt = check_prompt(self.prompt);
        let constraint = constraint();
        let mut spec = GenerateSpec {
            prompt: prompt.to_string(),
            max_new_tokens: max_tokens_or_default(self.max_tokens),
            seed: seed_or_default(self.seed),
            temperature: self.temperature.map(|t| t as f32),
            model: self.model.map(str::to_string),
            use_cache: Some(self.use_cache.unwrap_or(true)),
            unsafe_mode: Some(self.unsafe_mode.unwrap_or(false)),
            ..GenerateSpec::default()
        };
        match constraint {
            Constraint::Json(schema) => spec.schema = Some(schema),
            Constraint::Regex(pattern) => spec.regex = Some(pattern),
            Constraint::Choice(choices) => spec.choices = Some(Value::from(choices)),
            Constraint::Grammar(grammar) => spec.grammar = Some(grammar),
        }
        let request = generate::build(self.function, spec)?;
        Some(generate::text(request))
    }
}

fn schema_constraint(schema: Option<JsonB>) -> impl FnOnce() -> Constraint {
    move || match schema {
        None => raise("Schema cannot be null"),
        Some(JsonB(schema)) => Constraint::Json(schema),
    }
}

fn regex_constraint(pattern: Option<&str>) -> impl FnOnce() -> Constraint + '_ {
    move || match pattern {
        Some(p) if !p.is_empty() => Constraint::Regex(p.to_string()),
        _ => raise("Pattern cannot be null or empty"),
    }
}

fn choice_constraint(choices: Option<Vec<Option<String>>>) -> impl FnOnce() -> Constraint {
    move || {
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
    }
}

fn grammar_constraint(grammar: Option<&str>) -> impl FnOnce() -> Constraint + '_ {
    move || match grammar {
        Some(g) if !g.trim().is_empty() => Constraint::Grammar(g.to_string()),
        _ => raise("Grammar cannot be null or empty"),
    }
}

/// Plain JSON, or the Python extension's `<json-output>` form when the setting asks for it.
fn json_output(json: Option<String>) -> Option<String> {
    json.map(|j| {
        if guc::JSON_OUTPUT_TAGS.get() {
            format!("<json-output>{j}</json-output>")
        } else {
            j
        }
    })
}

/// JSON that validates against `schema`.
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
) -> Option<String> {
    let call = Call {
        function: "steadytext_generate_json",
        prompt,
        max_tokens,
        use_cache,
        seed,
        unsafe_mode,
        model,
        temperature: None,
    };
    json_output(call.run(schema_constraint(schema)))
}

/// `steadytext_generate_json` with sampling: `temperature` is the third argument.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, name = "steadytext_generate_json")]
fn steadytext_generate_json_sampled(
    prompt: Option<&str>,
    schema: Option<JsonB>,
    temperature: Option<f64>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    unsafe_mode: default!(Option<bool>, false),
    model: default!(Option<&str>, "NULL"),
) -> Option<String> {
    let call = Call {
        function: "steadytext_generate_json",
        prompt,
        max_tokens,
        use_cache,
        seed,
        unsafe_mode,
        model,
        temperature,
    };
    json_output(call.run(schema_constraint(schema)))
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
) -> Option<String> {
    let call = Call {
        function: "steadytext_generate_regex",
        prompt,
        max_tokens,
        use_cache,
        seed,
        unsafe_mode,
        model,
        temperature: None,
    };
    call.run(regex_constraint(pattern))
}

/// `steadytext_generate_regex` with sampling: `temperature` is the third argument.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, name = "steadytext_generate_regex")]
fn steadytext_generate_regex_sampled(
    prompt: Option<&str>,
    pattern: Option<&str>,
    temperature: Option<f64>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    unsafe_mode: default!(Option<bool>, false),
    model: default!(Option<&str>, "NULL"),
) -> Option<String> {
    let call = Call {
        function: "steadytext_generate_regex",
        prompt,
        max_tokens,
        use_cache,
        seed,
        unsafe_mode,
        model,
        temperature,
    };
    call.run(regex_constraint(pattern))
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
) -> Option<String> {
    let call = Call {
        function: "steadytext_generate_choice",
        prompt,
        max_tokens,
        use_cache,
        seed,
        unsafe_mode,
        model,
        temperature: None,
    };
    call.run(choice_constraint(choices))
}

/// `steadytext_generate_choice` with sampling: `temperature` is the third argument.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, name = "steadytext_generate_choice")]
fn steadytext_generate_choice_sampled(
    prompt: Option<&str>,
    choices: Option<Vec<Option<String>>>,
    temperature: Option<f64>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    unsafe_mode: default!(Option<bool>, false),
    model: default!(Option<&str>, "NULL"),
) -> Option<String> {
    let call = Call {
        function: "steadytext_generate_choice",
        prompt,
        max_tokens,
        use_cache,
        seed,
        unsafe_mode,
        model,
        temperature,
    };
    call.run(choice_constraint(choices))
}

/// Text in the language of a Lark grammar (llguidance's dialect).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn steadytext_generate_grammar(
    prompt: Option<&str>,
    grammar: Option<&str>,
    max_tokens: default!(Option<i32>, "NULL"),
    use_cache: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
    unsafe_mode: default!(Option<bool>, false),
    model: default!(Option<&str>, "NULL"),
    temperature: default!(Option<f64>, 0.0),
) -> Option<String> {
    let call = Call {
        function: "steadytext_generate_grammar",
        prompt,
        max_tokens,
        use_cache,
        seed,
        unsafe_mode,
        model,
        temperature,
    };
    call.run(grammar_constraint(grammar))
}

/// Raises the SQL-level error for a bad constraint (`kind` is json, regex, choice or grammar),
/// so that the `*_async` functions refuse what the synchronous ones would.
#[pg_extern(immutable, parallel_safe)]
fn _steadytext_check_constraint(kind: &str, value: JsonB) {
    let constraint = match (kind, value.0) {
        ("json", schema) => Constraint::Json(schema),
        ("regex", Value::String(p)) => Constraint::Regex(p),
        ("grammar", Value::String(g)) => Constraint::Grammar(g),
        ("choice", choices) => Constraint::Choice(
            serde_json::from_value(choices)
                .unwrap_or_else(|_| raise("Choices cannot contain null elements")),
        ),
        (other, _) => raise(&format!("unknown constraint kind '{other}'")),
    };
    if let Err(e) = constraint.check() {
        raise_error(&e);
    }
}
