//! Queued requests (`steadytext_queue` rows) as typed jobs. Both queue workers, the extension's
//! background workers and `st worker`, parse rows here, so a row means the same thing wherever
//! it runs and its result equals the synchronous function's.

use serde_json::Value;

use crate::grammar::Constraint;
use crate::params::{EmbedMode, GenerateParams, DEFAULT_SEED, EOS_SENTINEL};

/// One queued request.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// `steadytext_generate_async`: `steadytext_generate(prompt, max_tokens, use_cache, 42)`.
    Generate {
        prompt: String,
        params: GenerateParams,
        /// The generation model captured at enqueue time; `None` is the worker's default.
        model: Option<String>,
        use_cache: bool,
    },
    /// `steadytext_embed_async`: `steadytext_embed(text, use_cache, seed, model)`.
    Embed {
        text: String,
        mode: EmbedMode,
        model: Option<String>,
        use_cache: bool,
    },
    /// `steadytext_generate_{json,regex,choice}_async`: the synchronous structured function.
    Structured {
        prompt: String,
        params: GenerateParams,
        constraint: Constraint,
        model: Option<String>,
        use_cache: bool,
    },
    /// `steadytext_rerank_async` and each row of `steadytext_rerank_batch_async`.
    Rerank {
        query: String,
        documents: Vec<String>,
        task: String,
        return_scores: bool,
        /// The reranking model captured at enqueue time; `None` is the worker's default.
        model: Option<String>,
    },
}

/// Why a row cannot run. These are permanent: retrying the same row cannot succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidJob(pub String);

impl Job {
    /// Parses a row's `request_type`, `prompt` and `params`.
    pub fn parse(
        request_type: &str,
        prompt: Option<&str>,
        params: Option<&Value>,
    ) -> Result<Job, InvalidJob> {
        let empty = Value::Object(Default::default());
        let params = params.unwrap_or(&empty);
        match request_type {
            "generate" => Self::generate(prompt, params),
            "embed" => Self::embed(prompt, params),
            "generate_json" | "generate_regex" | "generate_choice" => {
                Self::structured(request_type, prompt, params)
            }
            "rerank" | "batch_rerank" => Self::rerank(params),
            other => Err(InvalidJob(format!(
                "request_type '{other}' has no handler in this version of pg_steadytext"
            ))),
        }
    }

    fn generate(prompt: Option<&str>, params: &Value) -> Result<Job, InvalidJob> {
        let prompt = non_empty(prompt, "Prompt")?;
        let max_tokens = match params.get("max_tokens") {
            None | Some(Value::Null) => crate::params::DEFAULT_MAX_NEW_TOKENS as u64,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=4096).contains(n))
                .ok_or_else(|| {
                    InvalidJob(format!("max_tokens must be between 1 and 4096, got {v}"))
                })?,
        };
        Ok(Job::Generate {
            prompt,
            params: GenerateParams {
                max_new_tokens: max_tokens as usize,
                seed: seed(params)?,
                temperature: 0.0,
                eos_string: EOS_SENTINEL.to_string(),
                threads: None,
            },
            model: text_field(params, "model"),
            use_cache: use_cache(params),
        })
    }

    fn embed(prompt: Option<&str>, params: &Value) -> Result<Job, InvalidJob> {
        // Rows queued by the Python extension's steadytext_embed_async keep the text in params.
        let text = prompt
            .map(str::to_string)
            .or_else(|| text_field(params, "text_input"));
        let text = non_empty(text.as_deref(), "Text")?;
        let mode = match text_field(params, "mode") {
            None => EmbedMode::Query,
            Some(m) => m
                .parse()
                .map_err(|_| InvalidJob(format!("mode must be 'query' or 'passage', got '{m}'")))?,
        };
        Ok(Job::Embed {
            text,
            mode,
            model: text_field(params, "model"),
            use_cache: use_cache(params),
        })
    }

    fn structured(kind: &str, prompt: Option<&str>, params: &Value) -> Result<Job, InvalidJob> {
        let Job::Generate {
            prompt,
            params: generate,
            model,
            use_cache,
        } = Self::generate(prompt, params)?
        else {
            unreachable!("generate() makes a Generate job")
        };
        let field = |name: &str| {
            params
                .get(name)
                .cloned()
                .ok_or_else(|| InvalidJob(format!("params.{name} is missing")))
        };
        let constraint = match kind {
            "generate_json" => Constraint::Json(field("schema")?),
            "generate_regex" => Constraint::Regex(
                field("pattern")?
                    .as_str()
                    .ok_or_else(|| InvalidJob("params.pattern must be a string".into()))?
                    .to_string(),
            ),
            _ => Constraint::Choice(
                serde_json::from_value(field("choices")?)
                    .map_err(|_| InvalidJob("params.choices must be a list of strings".into()))?,
            ),
        };
        constraint
            .to_gbnf()
            .map_err(|e| InvalidJob(e.to_string()))?;
        Ok(Job::Structured {
            prompt,
            params: generate,
            constraint,
            model,
            use_cache,
        })
    }

    fn rerank(params: &Value) -> Result<Job, InvalidJob> {
        let query = non_empty(params.get("query").and_then(Value::as_str), "Query")?;
        let documents: Vec<String> = params
            .get("documents")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .filter(|d: &Vec<String>| !d.is_empty())
            .ok_or_else(|| InvalidJob("Documents array cannot be empty".into()))?;
        Ok(Job::Rerank {
            query,
            documents,
            task: text_field(params, "task").unwrap_or_else(|| crate::rerank::DEFAULT_TASK.into()),
            return_scores: params
                .get("return_scores")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            model: text_field(params, "model"),
        })
    }

    /// The model setting the job asks for, if any.
    pub fn model(&self) -> Option<&str> {
        match self {
            Job::Generate { model, .. }
            | Job::Embed { model, .. }
            | Job::Structured { model, .. }
            | Job::Rerank { model, .. } => model.as_deref(),
        }
    }

    /// The model role the job runs on.
    pub fn role(&self) -> crate::Role {
        match self {
            Job::Generate { .. } | Job::Structured { .. } => crate::Role::Generation,
            Job::Embed { .. } => crate::Role::Embedding,
            Job::Rerank { .. } => crate::Role::Reranking,
        }
    }

    /// The cache key of this request with the model whose file has `model_sha256`, or `None`
    /// when the request opted out of the cache.
    pub fn cache_key(&self, model_sha256: &str) -> Option<String> {
        match self {
            Job::Generate {
                prompt,
                params,
                use_cache: true,
                ..
            } => Some(crate::cache_key::generation(
                model_sha256,
                prompt,
                params.max_new_tokens,
                params.seed,
                params.temperature,
                &params.eos_string,
            )),
            Job::Embed {
                text,
                mode,
                use_cache: true,
                ..
            } => Some(crate::cache_key::embedding(
                model_sha256,
                mode.as_str(),
                text,
            )),
            Job::Structured {
                prompt,
                params,
                constraint,
                use_cache: true,
                ..
            } => Some(crate::cache_key::structured(
                model_sha256,
                prompt,
                params.max_new_tokens,
                params.seed,
                params.temperature,
                &constraint.key(),
            )),
            _ => None,
        }
    }
}

/// What a job produced: `result` or `embedding` of its row.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Text(String),
    Embedding(Vec<f32>),
}

/// A rerank job's `result`: `[[doc, score], ...]` best first, or `[doc, ...]`, in jsonb's text
/// form (what the Python worker stored, and what `::jsonb::text` of the same value gives).
pub fn rerank_result(ranked: &[(String, f64)], return_scores: bool) -> String {
    let quote = |d: &String| serde_json::Value::from(d.as_str()).to_string();
    let items: Vec<String> = ranked
        .iter()
        .map(|(d, s)| {
            if return_scores {
                format!("[{}, {}]", quote(d), serde_json::Value::from(*s))
            } else {
                quote(d)
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

impl Output {
    /// The text form pgvector accepts (`[1,2,3]`), for workers that pass vectors as text.
    pub fn vector_literal(values: &[f32]) -> String {
        let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        format!("[{}]", items.join(","))
    }
}

fn non_empty(value: Option<&str>, what: &str) -> Result<String, InvalidJob> {
    match value {
        None => Err(InvalidJob(format!("{what} cannot be null"))),
        Some(v) if v.trim().is_empty() => Err(InvalidJob(format!("{what} cannot be empty"))),
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

fn seed(params: &Value) -> Result<u32, InvalidJob> {
    match params.get("seed") {
        None | Some(Value::Null) => Ok(DEFAULT_SEED),
        Some(v) => v
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| InvalidJob(format!("seed must be a non-negative integer, got {v}"))),
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
        let Job::Generate { params, model, .. } = &job else {
            panic!("not a generation: {job:?}")
        };
        assert_eq!(params.max_new_tokens, 7);
        assert_eq!(params.seed, 42);
        assert_eq!(params.temperature, 0.0);
        assert_eq!(*model, None);
        assert!(job.cache_key("sha").unwrap().starts_with("generate:"));
    }

    #[test]
    fn embed_rows_read_the_text_from_prompt_or_params() {
        let from_params = Job::parse("embed", None, Some(&json!({"text_input": "x"}))).unwrap();
        let from_prompt = Job::parse("embed", Some("x"), None).unwrap();
        assert_eq!(from_params, from_prompt);
        let passage = Job::parse("embed", Some("x"), Some(&json!({"mode": "passage"}))).unwrap();
        assert_ne!(passage.cache_key("m"), from_prompt.cache_key("m"));
        let uncached = Job::parse("embed", Some("x"), Some(&json!({"use_cache": false}))).unwrap();
        assert_eq!(uncached.cache_key("m"), None);
    }

    #[test]
    fn bad_rows_are_permanent_errors_with_the_sql_texts() {
        let err = |t: &str, p: Option<&str>, v: Value| Job::parse(t, p, Some(&v)).unwrap_err().0;
        assert_eq!(err("generate", None, json!({})), "Prompt cannot be null");
        assert_eq!(
            err("generate", Some(" "), json!({})),
            "Prompt cannot be empty"
        );
        assert_eq!(err("embed", Some(""), json!({})), "Text cannot be empty");
        assert!(err("generate", Some("p"), json!({"max_tokens": 0})).contains("between 1 and 4096"));
        assert!(err("generate", Some("p"), json!({"seed": -1})).contains("seed"));
        assert!(err("embed", Some("p"), json!({"mode": "x"})).contains("mode"));
        assert!(err("batch_embed", Some("p"), json!({})).contains("no handler"));
        assert!(
            err("generate_regex", Some("p"), json!({"pattern": "(a)\\1"}))
                .contains("backreferences")
        );
        assert_eq!(
            err("rerank", None, json!({"query": "q", "documents": []})),
            "Documents array cannot be empty"
        );
    }

    #[test]
    fn structured_and_rerank_rows_parse() {
        let job = Job::parse(
            "generate_choice",
            Some("p"),
            Some(&json!({"choices": ["a", "b"], "max_tokens": 9})),
        )
        .unwrap();
        assert!(
            matches!(&job, Job::Structured { constraint: Constraint::Choice(c), params, .. } if c.len() == 2 && params.max_new_tokens == 9)
        );
        assert!(job.cache_key("m").unwrap().starts_with("structured:"));
        let job = Job::parse(
            "batch_rerank",
            Some("q"),
            Some(&json!({"query": "q", "documents": ["x"]})),
        )
        .unwrap();
        assert!(
            matches!(&job, Job::Rerank { task, return_scores: true, .. } if task == crate::rerank::DEFAULT_TASK)
        );
        let two = [("d".to_string(), 0.5), ("e\"".to_string(), 0.25)];
        assert_eq!(rerank_result(&two, true), r#"[["d", 0.5], ["e\"", 0.25]]"#);
        assert_eq!(rerank_result(&two, false), r#"["d", "e\""]"#);
    }
}
