//! OpenAI's HTTP API, the part this project speaks: the bodies `st daemon --http` accepts and
//! answers, and the ones the remote provider sends. A body becomes a [`Spec`] here and is then
//! built by the route's [`crate::request::Builder`] like any other request, so an HTTP call
//! gets the same checks, defaults and bytes as SQL.
//!
//! Where OpenAI and SteadyText differ, SteadyText wins: greedy unless `temperature` says
//! otherwise, seed 42 unless `seed` says otherwise, SteadyText's default budget. Parameters that
//! would change the output in ways this engine cannot honour (`n` > 1, `logprobs`, tools, more
//! than one stop string) are refused, not ignored.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::generate::Summary;
use crate::request::{EmbedSpec, GenerateSpec};

/// One chat message. `content` is a string or a list of `{"type": "text", "text": ...}` parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`...
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: Value,
}

/// `stop`: a string or a list of strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several (at most one is honoured).
    Many(Vec<String>),
}

/// `response_format`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `json_schema`: `{"name": ..., "schema": {...}, "strict": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
}

/// The parameters chat and text completions share.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sampling {
    /// A registry name, a file in the models directory, or (authorised clients) a path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The output budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// The newer name of the budget (chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<usize>,
    /// Sampler seed (SteadyText's 42 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// 0 (the default here) is greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Stop strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Choices wanted: only 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Token probabilities: not offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    /// Nucleus sampling: only 1 (no truncation) is honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Function calling: not offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Everything else.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// A string, or a list holding one string.
    pub prompt: Value,
    /// Everything else.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// A string or a list of strings.
    pub input: Value,
    /// The embedding model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `float` (the default) or `base64` (little-endian f32, what OpenAI's clients ask for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Must be the model's width when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
}

/// The model a request names; `default` (OpenAI's clients must send some name) and an empty
/// name mean the daemon's default model.
pub const DEFAULT_MODEL: &str = "default";

fn chosen(model: &Option<String>) -> Option<String> {
    model
        .clone()
        .filter(|m| !m.is_empty() && m != DEFAULT_MODEL)
}

fn invalid(param: &str, message: impl Into<String>) -> Error {
    Error::invalid(format!("{}: {}", param, message.into()))
}

/// The text of a message's content.
fn content_text(content: &Value) -> Result<String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(
                |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => Ok(t.as_str()),
                    _ => Err(invalid("messages", "only text content parts are supported")),
                },
            )
            .collect::<Result<Vec<_>>>()
            .map(|parts| parts.concat()),
        _ => Err(invalid(
            "messages",
            "content must be a string or a list of text parts",
        )),
    }
}

impl Sampling {
    /// The generation these parameters ask for, with `prompt` as its input.
    fn spec(&self, prompt: String) -> Result<GenerateSpec> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(invalid("n", "only one choice is generated per request"));
        }
        if self
            .logprobs
            .as_ref()
            .is_some_and(|l| l != &json!(false) && !l.is_null())
        {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "logprobs: token probabilities are not offered",
            ));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_null()) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "tools: function calling is not offered",
            ));
        }
        if self.top_p.is_some_and(|p| p != 1.0) {
            return Err(invalid(
                "top_p",
                "only 1 is honoured (the sampler does not truncate)",
            ));
        }
        let eos_string = match &self.stop {
            None => None,
            Some(Stop::One(s)) => Some(s.clone()),
            Some(Stop::Many(list)) if list.is_empty() => None,
            Some(Stop::Many(list)) if list.len() == 1 => Some(list[0].clone()),
            Some(Stop::Many(_)) => {
                return Err(invalid("stop", "at most one stop string is honoured"))
            }
        };
        let schema = match &self.response_format {
            None => None,
            Some(f) => match f.kind.as_str() {
                "text" => None,
                "json_object" => Some(json!({ "type": "object" })),
                "json_schema" => Some(
                    f.json_schema
                        .as_ref()
                        .and_then(|s| s.get("schema"))
                        .cloned()
                        .ok_or_else(|| invalid("response_format", "json_schema needs a schema"))?,
                ),
                other => {
                    return Err(invalid(
                        "response_format",
                        format!("unknown type {other:?}: text, json_object or json_schema"),
                    ))
                }
            },
        };
        Ok(GenerateSpec {
            prompt,
            max_new_tokens: self.max_completion_tokens.or(self.max_tokens),
            seed: self.seed,
            temperature: self.temperature,
            eos_string,
            model: chosen(&self.model),
            schema,
            ..GenerateSpec::default()
        })
    }
}

impl ChatRequest {
    /// The generation: SteadyText renders its prompt as one user message through the model's
    /// chat template, so that is the conversation served.
    pub fn spec(&self) -> Result<GenerateSpec> {
        let prompt = match self.messages.as_slice() {
            [only] if only.role == "user" => content_text(&only.content)?,
            [] => return Err(invalid("messages", "at least one message is needed")),
            _ => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "messages: one user message is served (SteadyText's single-turn \
                     generation); put the instructions in it",
                ))
            }
        };
        self.sampling.spec(prompt)
    }
}

impl CompletionRequest {
    /// The generation (the prompt goes through the chat template, as SteadyText's does).
    pub fn spec(&self) -> Result<GenerateSpec> {
        let prompt = match &self.prompt {
            Value::String(s) => s.clone(),
            Value::Array(items) if items.len() == 1 && items[0].is_string() => {
                items[0].as_str().unwrap_or_default().to_string()
            }
            _ => {
                return Err(invalid(
                    "prompt",
                    "must be a string (or a list of one string)",
                ))
            }
        };
        self.sampling.spec(prompt)
    }
}

impl EmbeddingsRequest {
    /// One vector per input text.
    pub fn spec(&self) -> Result<EmbedSpec> {
        let texts = match &self.input {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("input", "must be a string or a list of strings"))?,
            _ => return Err(invalid("input", "must be a string or a list of strings")),
        };
        if texts.is_empty() {
            return Err(invalid("input", "at least one text is needed"));
        }
        if let Some(d) = self
            .dimensions
            .filter(|&d| d != crate::defaults::EMBEDDING_DIMENSION)
        {
            return Err(invalid(
                "dimensions",
                format!(
                    "the vectors have {} dimensions, not {d}",
                    crate::defaults::EMBEDDING_DIMENSION
                ),
            ));
        }
        match self.encoding_format.as_deref() {
            None | Some("float") | Some("base64") => {}
            Some(other) => {
                return Err(invalid(
                    "encoding_format",
                    format!("{other:?}: float or base64"),
                ))
            }
        }
        Ok(EmbedSpec {
            texts: Some(texts),
            model: chosen(&self.model),
            ..EmbedSpec::default()
        })
    }
}

/// `finish_reason`: "length" when the budget ran out, else "stop".
pub fn finish_reason(summary: &Summary, max_new_tokens: usize) -> &'static str {
    let budget = summary.clamped.unwrap_or(max_new_tokens);
    if !summary.completed && summary.generated_tokens >= budget {
        "length"
    } else {
        "stop"
    }
}

/// The `usage` object.
pub fn usage(summary: &Summary) -> Value {
    json!({
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.generated_tokens,
        "total_tokens": summary.prompt_tokens + summary.generated_tokens,
    })
}

/// OpenAI's error body, and the HTTP status a kind of error answers with.
pub fn error_body(error: &Error) -> (u16, Value) {
    let (status, kind, code) = match error.kind() {
        ErrorKind::InvalidArgument | ErrorKind::ContextLength | ErrorKind::Incomplete => {
            (400, "invalid_request_error", error.kind().as_str())
        }
        ErrorKind::LimitExceeded => (400, "invalid_request_error", "limit_exceeded"),
        ErrorKind::Unsupported => (400, "invalid_request_error", "unsupported"),
        ErrorKind::Forbidden => (403, "permission_error", "forbidden"),
        ErrorKind::ModelMissing => (404, "invalid_request_error", "model_not_found"),
        ErrorKind::Busy => (429, "rate_limit_error", "busy"),
        ErrorKind::Cancelled => (499, "server_error", "cancelled"),
        ErrorKind::Unavailable => (503, "server_error", "unavailable"),
        ErrorKind::ModelLoad | ErrorKind::Inference | ErrorKind::Io | ErrorKind::Protocol => {
            (500, "server_error", error.kind().as_str())
        }
    };
    let param = error
        .message()
        .split_once(':')
        .map(|(p, _)| p)
        .filter(|p| PARAMS.contains(p));
    (
        status,
        json!({ "error": {
            "message": error.message(),
            "type": kind,
            "param": param,
            "code": code,
        }}),
    )
}

/// Parameter names an error message may start with.
const PARAMS: &[&str] = &[
    "messages",
    "prompt",
    "input",
    "n",
    "logprobs",
    "tools",
    "top_p",
    "stop",
    "response_format",
    "dimensions",
    "encoding_format",
];

/// Reads an OpenAI error body (a remote's), for the message a caller sees.
pub fn error_message(body: &Value) -> Option<String> {
    body.get("error")
        .and_then(|e| e.get("message").or(Some(e)))
        .map(|m| match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
}

/// Vectors as `encoding_format: base64` sends them: little-endian f32, base64.
pub fn base64_vector(vector: &[f32]) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<GenerateSpec> {
        serde_json::from_value::<ChatRequest>(body).unwrap().spec()
    }

    #[test]
    fn one_user_message_is_the_prompt() {
        let spec = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 7, "seed": 3, "stop": ["END"]}),
        )
        .unwrap();
        assert_eq!(spec.prompt, "Hi");
        assert_eq!(spec.max_new_tokens, Some(7));
        assert_eq!(spec.seed, Some(3));
        assert_eq!(spec.eos_string.as_deref(), Some("END"));
        assert_eq!(spec.temperature, None, "greedy unless asked");
    }

    #[test]
    fn text_parts_are_joined() {
        let spec = chat(json!({"messages": [{"role": "user", "content":
            [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}))
        .unwrap();
        assert_eq!(spec.prompt, "ab");
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        for body in [
            json!({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]}),
            json!({"messages": [{"role": "user", "content": "y"}], "n": 2}),
            json!({"messages": [{"role": "user", "content": "y"}], "logprobs": true}),
            json!({"messages": [{"role": "user", "content": "y"}], "stop": ["a", "b"]}),
            json!({"messages": [{"role": "user", "content": "y"}], "top_p": 0.5}),
            json!({"messages": []}),
        ] {
            assert!(chat(body.clone()).is_err(), "{body}");
        }
    }

    #[test]
    fn json_schema_becomes_the_constraint() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        let spec = chat(json!({"messages": [{"role": "user", "content": "y"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}))
        .unwrap();
        assert_eq!(spec.schema, Some(schema));
    }

    #[test]
    fn errors_have_openai_shape_and_status() {
        let (status, body) = error_body(&Error::invalid("stop: at most one"));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["param"], "stop");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let (status, _) = error_body(&Error::new(ErrorKind::ModelMissing, "no file"));
        assert_eq!(status, 404);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(base64_vector(&[1.0]), "AACAPw==");
    }

    #[test]
    fn finish_reason_says_length_at_the_budget() {
        let s = Summary {
            prompt_tokens: 3,
            generated_tokens: 8,
            clamped: None,
            completed: false,
        };
        assert_eq!(finish_reason(&s, 8), "length");
        assert_eq!(
            finish_reason(
                &Summary {
                    completed: true,
                    ..s
                },
                8
            ),
            "stop"
        );
    }
}
