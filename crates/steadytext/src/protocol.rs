//! SteadyText's daemon wire protocol: ZeroMQ, one JSON object per message.
//!
//! `{"method", "params", "id"}` → `{"id", "result", "error"}`. Methods: `ping`, `shutdown`,
//! `generate`, `generate_iter`, `embed` (SteadyText's), and `cancel`, `stats`, `embed_batch`
//! (new; old clients never see them). A stream answers with `{"result": {"token": piece}}`
//! frames, each acknowledged by the client with the raw bytes `ACK`, and ends with the token
//! `##STREAM_END##` (not acknowledged).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The token that ends a stream.
pub const STREAM_END: &str = "##STREAM_END##";
/// What a client sends after each stream frame.
pub const ACK: &[u8] = b"ACK";
/// SteadyText's port.
pub const DEFAULT_PORT: u16 = 5555;
/// Loopback only unless configured.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// A request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Method name.
    pub method: String,
    /// Method parameters (an object).
    #[serde(default)]
    pub params: Value,
    /// Caller's id; echoed in the response, and the handle for `cancel`.
    #[serde(default)]
    pub id: String,
}

/// A response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: String,
    /// The result, or null on error.
    pub result: Value,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

impl Response {
    /// A successful response.
    pub fn ok(id: &str, result: Value) -> Self {
        Response {
            id: id.to_string(),
            result,
            error: None,
        }
    }

    /// A failed response.
    pub fn err(id: &str, error: impl Into<String>) -> Self {
        Response {
            id: id.to_string(),
            result: Value::Null,
            error: Some(error.into()),
        }
    }

    /// One stream frame.
    pub fn token(id: &str, token: &str) -> Self {
        Self::ok(id, serde_json::json!({ "token": token }))
    }
}

/// Parameters of `generate` and `generate_iter`, as SteadyText's client sends them (extra
/// fields are ignored).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: String,
    /// Output budget; null means the library default.
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    /// Sampler seed.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Temperature (0 = greedy).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Extra stop string, `[EOS]` for none.
    #[serde(default)]
    pub eos_string: Option<String>,
    /// Registry name or path.
    #[serde(default)]
    pub model: Option<String>,
    /// Hugging Face repository.
    #[serde(default)]
    pub model_repo: Option<String>,
    /// File in the repository.
    #[serde(default)]
    pub model_filename: Option<String>,
    /// mini, small, large.
    #[serde(default)]
    pub size: Option<String>,
    /// SteadyText's logprobs flag (always answered without logprobs, as SteadyText in practice).
    #[serde(default)]
    pub return_logprobs: bool,
    /// Structured generation: a JSON schema the output must validate against.
    #[serde(default)]
    pub schema: Option<Value>,
    /// Structured generation: a regular expression the output must match in full.
    #[serde(default)]
    pub regex: Option<String>,
    /// Structured generation: the output is exactly one of these strings.
    #[serde(default)]
    pub choices: Option<Value>,
}

impl GenerateRequest {
    /// The structured-generation constraint, if the request has one (at most one is allowed).
    pub fn constraint(&self) -> Result<Option<crate::Constraint>, String> {
        use crate::Constraint;
        let mut found = Vec::new();
        if let Some(schema) = &self.schema {
            found.push(Constraint::Json(schema.clone()));
        }
        if let Some(regex) = &self.regex {
            found.push(Constraint::Regex(regex.clone()));
        }
        if let Some(choices) = &self.choices {
            let list: Vec<String> = serde_json::from_value(choices.clone())
                .map_err(|_| "choices must be a list of strings".to_string())?;
            found.push(Constraint::Choice(list));
        }
        if found.len() > 1 {
            return Err("only one of schema, regex and choices may be given".into());
        }
        Ok(found.pop())
    }
}

/// The JSON parameters of a `generate` request for `prompt` under `params` (the fields
/// [`GenerateRequest`] reads back), with `model` a registry name or a path.
pub fn generate_params(
    prompt: &str,
    params: &crate::GenerateParams,
    model: Option<&std::path::Path>,
) -> Value {
    serde_json::json!({
        "prompt": prompt,
        "max_new_tokens": params.max_new_tokens,
        "seed": params.seed,
        "temperature": params.temperature,
        "eos_string": params.eos_string,
        "model": model,
    })
}

/// Adds `constraint` to a `generate` request's JSON parameters as the field
/// [`GenerateRequest::constraint`] reads back (`schema`, `regex` or `choices`).
pub fn set_constraint(request: &mut Value, constraint: &crate::Constraint) {
    use crate::Constraint;
    let (field, value) = match constraint {
        Constraint::Json(schema) => ("schema", schema.clone()),
        Constraint::Regex(pattern) => ("regex", Value::from(pattern.as_str())),
        Constraint::Choice(choices) => ("choices", Value::from(choices.clone())),
    };
    request[field] = value;
}

/// Parameters of `rerank`, as SteadyText's client sends them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RerankRequest {
    /// The query.
    pub query: String,
    /// A string or a list of strings.
    pub documents: Value,
    /// The instruction; SteadyText's default when absent.
    #[serde(default)]
    pub task: Option<String>,
    /// `[[doc, score], ...]` when true (the default), `[doc, ...]` otherwise.
    #[serde(default)]
    pub return_scores: Option<bool>,
    /// Accepted and ignored: scores come from logits, not sampling.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Registry name or path of the reranking model.
    #[serde(default)]
    pub model: Option<String>,
}

/// Parameters of `embed`: one text, or a list (averaged into one vector, as SteadyText).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// A string or a list of strings.
    pub text_input: Value,
    /// Accepted and ignored: the seed does not change local embeddings.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Registry name or path.
    #[serde(default)]
    pub model: Option<String>,
    /// `query` or `passage` (SteadyText's daemon ignored it; this one does not).
    #[serde(default)]
    pub mode: Option<String>,
}

/// Parameters of `embed_batch`: one vector per text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmbedBatchRequest {
    /// The texts.
    pub texts: Vec<String>,
    /// Registry name or path.
    #[serde(default)]
    pub model: Option<String>,
    /// `query` or `passage`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// Parameters of `cancel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelRequest {
    /// The id of the request to stop.
    pub request_id: String,
}
