//! Queued requests (`steadytext_queue` rows). Both queue workers, the extension's background
//! workers and `st worker`, read rows here into the same specs the synchronous functions build,
//! so a row means the same thing wherever it runs and its result equals the synchronous
//! function's.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::execute::Output;
use crate::request::{Builder, EmbedSpec, GenerateSpec, Request, RerankSpec, Spec};

/// One queued request, as a spec to build.
#[derive(Debug, Clone, PartialEq)]
// The variants are built once per queue row and moved a few times: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Job {
    /// `steadytext_generate_async` and the structured `*_async` functions.
    Generate(GenerateSpec),
    /// `steadytext_embed_async`.
    Embed(EmbedSpec),
    /// `steadytext_rerank_async` and each row of `steadytext_rerank_batch_async`.
    Rerank {
        /// The request.
        spec: RerankSpec,
        /// Whether the stored result has scores.
        return_scores: bool,
    },
}

/// What a row stores: `result` text or an `embedding`.
#[derive(Debug, Clone, PartialEq)]
pub enum RowResult {
    /// The `result` column.
    Text(String),
    /// The `embedding` column.
    Embedding(Vec<f32>),
}

impl Job {
    /// Parses a row's `request_type`, `prompt` and `params`. Errors are permanent (the same row
    /// cannot succeed later) and use the SQL functions' texts.
    pub fn parse(request_type: &str, prompt: Option<&str>, params: Option<&Value>) -> Result<Job> {
        let empty = Value::Object(Default::default());
        let params = params.unwrap_or(&empty);
        match request_type {
            "generate" | "generate_json" | "generate_regex" | "generate_choice"
            | "generate_grammar" => Self::generate(request_type, prompt, params),
            "embed" => Self::embed(prompt, params),
            "rerank" | "batch_rerank" => Self::rerank(params),
            other => Err(Error::invalid(format!(
                "request_type '{other}' has no handler in this version of pg_steadytext"
            ))),
        }
    }

    fn generate(kind: &str, prompt: Option<&str>, params: &Value) -> Result<Job> {
        let prompt = non_empty(prompt, "Prompt")?;
        let max_new_tokens = match params.get("max_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                // The upper bound is the limit of whoever builds the request (the queueing
                // session, then the worker: steadytext.max_tokens_limit), not a number here.
                v.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
                    Error::invalid(format!(
                        "max_tokens must be a whole number of at least 1, got {v}"
                    ))
                })? as usize,
            ),
        };
        let mut spec = GenerateSpec {
            prompt,
            max_new_tokens,
            seed: seed(params)?,
            model: text_field(params, "model"),
            use_cache: Some(use_cache(params)),
            ..GenerateSpec::default()
        };
        let field = |name: &str| {
            params
                .get(name)
                .cloned()
                .ok_or_else(|| Error::invalid(format!("params.{name} is missing")))
        };
        let text = |name: &str| -> Result<String> {
            field(name)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::invalid(format!("params.{name} must be a string")))
        };
        match kind {
            "generate_json" => spec.schema = Some(field("schema")?),
            "generate_regex" => spec.regex = Some(text("pattern")?),
            "generate_choice" => spec.choices = Some(field("choices")?),
            "generate_grammar" => spec.grammar = Some(text("grammar")?),
            _ => {}
        }
        Ok(Job::Generate(spec))
    }

    fn embed(prompt: Option<&str>, params: &Value) -> Result<Job> {
        // Rows queued by the Python extension's steadytext_embed_async keep the text in params.
        let text = prompt
            .map(str::to_string)
            .or_else(|| text_field(params, "text_input"));
        let text = non_empty(text.as_deref(), "Text")?;
        Ok(Job::Embed(EmbedSpec {
            texts: Some(vec![text]),
            mode: text_field(params, "mode"),
            model: text_field(params, "model"),
            use_cache: Some(use_cache(params)),
            ..EmbedSpec::default()
        }))
    }

    fn rerank(params: &Value) -> Result<Job> {
        let query = non_empty(params.get("query").and_then(Value::as_str), "Query")?;
        let documents: Vec<String> = params
            .get("documents")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .filter(|d: &Vec<String>| !d.is_empty())
            .ok_or_else(|| Error::invalid("Documents array cannot be empty"))?;
        Ok(Job::Rerank {
            spec: RerankSpec {
                query,
                documents: Value::from(documents),
                task: text_field(params, "task"),
                model: text_field(params, "model"),
                use_cache: Some(use_cache(params)),
                ..RerankSpec::default()
            },
            return_scores: params
                .get("return_scores")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        })
    }

    /// The spec this job stands for.
    pub fn spec(&self) -> Spec {
        match self {
            Job::Generate(spec) => Spec::Generate(spec.clone()),
            Job::Embed(spec) => Spec::Embed(spec.clone()),
            Job::Rerank { spec, .. } => Spec::Rerank(spec.clone()),
        }
    }

    /// The request this job stands for, built as `builder`'s route builds requests.
    pub fn build(&self, builder: &Builder) -> Result<Request> {
        self.spec().build(builder)
    }

    /// What the row stores for `output` of `request`.
    pub fn row_result(&self, request: &Request, output: Output) -> Result<RowResult> {
        match (self, request, output) {
            (Job::Embed(_), _, output) => {
                let mut vectors = output.into_embeddings()?;
                Ok(RowResult::Embedding(vectors.pop().unwrap_or_default()))
            }
            (Job::Rerank { return_scores, .. }, Request::Rerank(r), output) => {
                let ranked: Vec<(String, f64)> = output
                    .into_ranked()?
                    .into_iter()
                    .map(|s| (r.documents[s.index].clone(), s.score))
                    .collect();
                Ok(RowResult::Text(rerank_result(&ranked, *return_scores)))
            }
            (_, _, output) => Ok(RowResult::Text(output.into_text()?)),
        }
    }
}

/// A rerank job's `result`: `[[doc, score], ...]` best first, or `[doc, ...]`, in jsonb's text
/// form (what the Python worker stored, and what `::jsonb::text` of the same value gives).
pub fn rerank_result(ranked: &[(String, f64)], return_scores: bool) -> String {
    let quote = |d: &String| Value::from(d.as_str()).to_string();
    let items: Vec<String> = ranked
        .iter()
        .map(|(d, s)| {
            if return_scores {
                format!("[{}, {}]", quote(d), Value::from(*s))
            } else {
                quote(d)
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// The text form pgvector accepts (`[1,2,3]`), for workers that pass vectors as text.
pub fn vector_literal(values: &[f32]) -> String {
    let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(","))
}

fn non_empty(value: Option<&str>, what: &str) -> Result<String> {
    match value {
        None => Err(Error::invalid(format!("{what} cannot be null"))),
        Some(v) if v.trim().is_empty() => Err(Error::invalid(format!("{what} cannot be empty"))),
        Some(v) => Ok(v.to_string()),
    }
}

fn text_field(params: &Value, key: &str) -> Option<String> {
    params
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn use_cache(params: &Value) -> bool {
    params
        .get("use_cache")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

fn seed(params: &Value) -> Result<Option<i64>> {
    match params.get("seed") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| Error::invalid(format!("seed must be a non-negative integer, got {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generate_rows_become_the_synchronous_call() {
        let job = Job::parse(
            "generate",
            Some("hi"),
            Some(&json!({"max_tokens": 7, "use_cache": true, "seed": 42})),
        )
        .unwrap();
        let Job::Generate(spec) = &job else {
            panic!("not a generation: {job:?}")
        };
        assert_eq!(spec.max_new_tokens, Some(7));
        assert_eq!(spec.seed, Some(42));
        assert_eq!(spec.model, None);
    }

    #[test]
    fn embed_rows_read_the_text_from_prompt_or_params() {
        let from_params = Job::parse("embed", None, Some(&json!({"text_input": "x"}))).unwrap();
        let from_prompt = Job::parse("embed", Some("x"), None).unwrap();
        assert_eq!(from_params, from_prompt);
    }

    #[test]
    fn bad_rows_are_permanent_errors_with_the_sql_texts() {
        let err = |t: &str, p: Option<&str>, v: Value| {
            let e = Job::parse(t, p, Some(&v)).unwrap_err();
            assert!(e.is_permanent());
            e.to_string()
        };
        assert_eq!(err("generate", None, json!({})), "Prompt cannot be null");
        assert_eq!(
            err("generate", Some(" "), json!({})),
            "Prompt cannot be empty"
        );
        assert_eq!(err("embed", Some(""), json!({})), "Text cannot be empty");
        assert!(err("generate", Some("p"), json!({"max_tokens": 0})).contains("at least 1, got 0"));
        assert!(err("generate", Some("p"), json!({"seed": "x"})).contains("seed"));
        assert!(err("batch_embed", Some("p"), json!({})).contains("no handler"));
        assert_eq!(
            err("rerank", None, json!({"query": "q", "documents": []})),
            "Documents array cannot be empty"
        );
    }

    #[test]
    fn rerank_results_are_jsonb_text() {
        let two = [("d".to_string(), 0.5), ("e\"".to_string(), 0.25)];
        assert_eq!(rerank_result(&two, true), r#"[["d", 0.5], ["e\"", 0.25]]"#);
        assert_eq!(rerank_result(&two, false), r#"["d", "e\""]"#);
    }
}
