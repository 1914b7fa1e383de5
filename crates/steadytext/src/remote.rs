//! Remote providers: `model => 'openai:NAME'` (and the reference's other OpenAI-compatible
//! prefixes) sends the request to an OpenAI-compatible endpoint instead of a local model.
//!
//! The request is built and checked by the same [`crate::request::Builder`] as a local one
//! (prompt, budget, seed, temperature, limits); only the model differs. The call runs on its own
//! thread so the caller can keep checking for a cancel between 50 ms waits: a cancelled call
//! returns at once, and the abandoned HTTP request ends at its timeout.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::{json, Value};

use crate::embed;
use crate::error::{Error, ErrorKind, Result};
use crate::execute::{finish_text, Execution, Output, Progress};
use crate::generate::{GenerateParams, Summary};
use crate::openai;
use crate::structured::Constraint;

/// The prefixes the reference treats as remote providers and that speak OpenAI's API.
/// (`voyageai:` and `jina:` have their own APIs and are refused.)
pub const PROVIDERS: &[&str] = &["openai", "cerebras", "openrouter"];

/// A remote model: its provider prefix and the name the endpoint knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteModel {
    /// `openai`, `cerebras` or `openrouter`.
    pub provider: String,
    /// What is sent as `model`.
    pub name: String,
}

impl RemoteModel {
    /// Reads `provider:name`.
    pub fn parse(model: &str) -> Result<RemoteModel> {
        let (provider, name) = model
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("'{model}' is not provider:name")))?;
        if !PROVIDERS.contains(&provider) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "remote provider '{provider}' is not supported: the OpenAI-compatible \
                     providers are {}",
                    PROVIDERS.join(", ")
                ),
            ));
        }
        if name.trim().is_empty() {
            return Err(Error::invalid(format!(
                "'{model}' names no model after the ':'"
            )));
        }
        Ok(RemoteModel {
            provider: provider.to_string(),
            name: name.to_string(),
        })
    }

    /// What stands for the model file's sha256 in cache keys: the endpoint and the name, so a
    /// remote answer can never be mistaken for a local model's.
    pub fn cache_identity(&self, base_url: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!(
            "remote\0{base_url}\0{}:{}",
            self.provider, self.name
        ));
        hex::encode(digest)
    }
}

/// What a remote call does.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteTask {
    /// A generation (a JSON-schema constraint is sent as `response_format`).
    Generate {
        /// The prompt, sent as one user message.
        prompt: String,
        /// Budget and sampling.
        params: GenerateParams,
        /// Only [`Constraint::Json`] is sent on; the builder refuses the others.
        constraint: Option<Constraint>,
    },
    /// One vector per text.
    Embed {
        /// The texts.
        texts: Vec<String>,
    },
}

/// A remote request, complete and checked (see [`crate::request::Builder::remote`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRequest {
    /// The model.
    pub model: RemoteModel,
    /// The work.
    pub task: RemoteTask,
}

/// An OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Sent as a bearer token.
    pub api_key: Option<String>,
    /// For the whole call.
    pub timeout: Duration,
}

impl Provider {
    /// Starts `request` on its own thread.
    pub fn start(&self, request: RemoteRequest) -> Box<dyn Execution + Send> {
        let (tx, rx) = mpsc::channel();
        let provider = self.clone();
        std::thread::spawn(move || {
            let _ = tx.send(provider.call(&request));
        });
        Box::new(Call { rx })
    }

    /// Runs `request` and waits for it.
    pub fn call(&self, request: &RemoteRequest) -> Result<Output> {
        match &request.task {
            RemoteTask::Generate {
                prompt,
                params,
                constraint,
            } => self.generate(&request.model, prompt, params, constraint.as_ref()),
            RemoteTask::Embed { texts } => self.embed(&request.model, texts),
        }
    }

    fn generate(
        &self,
        model: &RemoteModel,
        prompt: &str,
        params: &GenerateParams,
        constraint: Option<&Constraint>,
    ) -> Result<Output> {
        let mut body = json!({
            "model": model.name,
            "messages": [{ "role": "user", "content": prompt }],
            "max_tokens": params.max_new_tokens,
            "seed": params.seed,
            "temperature": params.temperature,
        });
        if params.eos_string != crate::defaults::EOS_SENTINEL {
            body["stop"] = json!([params.eos_string]);
        }
        if let Some(Constraint::Json(schema)) = constraint {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": { "name": "output", "schema": schema },
            });
        }
        let reply = self.post("chat/completions", &body)?;
        let malformed = || malformed("chat completion", &reply);
        let choice = reply["choices"].get(0).ok_or_else(malformed)?;
        let text = choice["message"]["content"]
            .as_str()
            .ok_or_else(malformed)?;
        let count = |k: &str| reply["usage"][k].as_u64().unwrap_or(0) as usize;
        Ok(Output::Text {
            text: finish_text(text, constraint.is_some()),
            summary: Summary {
                prompt_tokens: count("prompt_tokens"),
                generated_tokens: count("completion_tokens"),
                clamped: None,
                completed: choice["finish_reason"] == "stop",
            },
        })
    }

    fn embed(&self, model: &RemoteModel, texts: &[String]) -> Result<Output> {
        let reply = self.post(
            "embeddings",
            &json!({ "model": model.name, "input": texts, "encoding_format": "float" }),
        )?;
        let malformed = || malformed("embeddings list", &reply);
        let data = reply["data"].as_array().ok_or_else(malformed)?;
        if data.len() != texts.len() {
            return Err(malformed());
        }
        let mut vectors = vec![Vec::new(); texts.len()];
        for item in data {
            let index = item["index"].as_u64().ok_or_else(malformed)? as usize;
            if vectors.get(index).is_none_or(|v| !v.is_empty()) {
                return Err(malformed()); // out of range, or an index given twice
            }
            let values = item["embedding"].as_array().ok_or_else(malformed)?;
            let vector = values
                .iter()
                .map(|v| v.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(malformed)?;
            // As SteadyText does with provider vectors: to 1024 wide, then unit length.
            *vectors.get_mut(index).ok_or_else(malformed)? =
                embed::normalize(embed::fit_width(vector));
        }
        Ok(Output::Embeddings(vectors))
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let full = format!("{}/{path}", self.base_url.trim_end_matches('/'));
        let url = redact(&full);
        let agent = ureq::AgentBuilder::new().timeout(self.timeout).build();
        let mut request = agent.post(&full);
        if let Some(key) = &self.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        match request.send_json(body) {
            Ok(response) => response.into_json::<Value>().map_err(|e| {
                Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "the remote provider at {url} answered with a body that is not JSON: {e}"
                    ),
                )
            }),
            Err(ureq::Error::Status(status, response)) => {
                let body: Value = response.into_json().unwrap_or(Value::Null);
                let message = openai::error_message(&body).unwrap_or_else(|| body.to_string());
                Err(Error::new(
                    status_kind(status),
                    format!("the remote provider at {url} answered HTTP {status}: {message}"),
                ))
            }
            Err(ureq::Error::Transport(e)) => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot reach the remote provider at {url} (timeout {} ms): {e}",
                    self.timeout.as_millis()
                ),
            )),
        }
    }
}

/// The URL as messages show it: without credentials or a query, which may hold secrets.
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

fn malformed(what: &str, reply: &Value) -> Error {
    let mut shown = reply.to_string();
    if shown.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push_str("...");
    }
    Error::new(
        ErrorKind::Protocol,
        format!("the remote provider's reply is not an OpenAI {what}: {shown}"),
    )
}

/// How an HTTP status from the provider is reported.
fn status_kind(status: u16) -> ErrorKind {
    match status {
        400 | 422 => ErrorKind::InvalidArgument,
        401 | 403 => ErrorKind::Forbidden,
        404 => ErrorKind::ModelMissing,
        429 => ErrorKind::Busy,
        _ => ErrorKind::Unavailable,
    }
}

/// A call running on its thread.
struct Call {
    rx: Receiver<Result<Output>>,
}

impl Execution for Call {
    fn advance(&mut self) -> Result<Progress> {
        match self.rx.recv_timeout(Duration::from_millis(50)) {
            Ok(result) => result.map(Progress::Done),
            Err(RecvTimeoutError::Timeout) => Ok(Progress::Working),
            Err(RecvTimeoutError::Disconnected) => Err(Error::new(
                ErrorKind::Inference,
                "the remote call's thread ended without an answer",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_show_no_credentials() {
        assert_eq!(
            redact("https://user:pw@api.example/v1/chat?key=s#x"),
            "https://api.example/v1/chat"
        );
        assert_eq!(redact("http://127.0.0.1:9/v1"), "http://127.0.0.1:9/v1");
    }

    #[test]
    fn providers_are_checked() {
        assert_eq!(
            RemoteModel::parse("openai:gpt-4o-mini").unwrap().name,
            "gpt-4o-mini"
        );
        assert_eq!(
            RemoteModel::parse("voyageai:x").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert!(RemoteModel::parse("openai:").is_err());
    }

    #[test]
    fn cache_identity_depends_on_endpoint_and_name() {
        let m = RemoteModel::parse("openai:a").unwrap();
        let n = RemoteModel::parse("openai:b").unwrap();
        assert_ne!(
            m.cache_identity("http://x/v1"),
            m.cache_identity("http://y/v1")
        );
        assert_ne!(
            m.cache_identity("http://x/v1"),
            n.cache_identity("http://x/v1")
        );
        assert_eq!(m.cache_identity("http://x/v1").len(), 64);
    }

    #[test]
    fn an_unreachable_endpoint_is_unavailable() {
        let provider = Provider {
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key: None,
            timeout: Duration::from_secs(2),
        };
        let request = RemoteRequest {
            model: RemoteModel::parse("openai:m").unwrap(),
            task: RemoteTask::Embed {
                texts: vec!["x".into()],
            },
        };
        let e = provider.call(&request).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.message().contains("127.0.0.1:9"), "{e}");
    }
}
