//! SteadyText's daemon wire protocol: ZeroMQ, one JSON object per message.
//!
//! `{"method", "params", "id"}` → `{"id", "result", "error"}`. Methods: `ping`, `shutdown`,
//! `generate`, `generate_iter`, `embed`, `rerank` (SteadyText's), and `cancel`, `stats`,
//! `embed_batch` (new; old clients never see them). A stream answers with `{"result": {"token":
//! piece}}` frames, each acknowledged by the client with the raw bytes `ACK`, and ends with the
//! token `##STREAM_END##` (not acknowledged).
//!
//! Additions old clients never see: a request may carry `auth` (the daemon's token) and, in its
//! parameters, `model_ref` and `use_cache` (see [`crate::request`]). A request that says
//! `extended` gets replies with `error_kind` (the error keeps its kind across the wire) and
//! `detail` (token counts, document indices); other clients get `{id, result, error}` only,
//! since SteadyText's Python client refuses any other field.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::execute::{Detail, Output};
use crate::rerank::Scored;

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
pub struct Message {
    /// Method name.
    pub method: String,
    /// Method parameters (an object).
    #[serde(default)]
    pub params: Value,
    /// Caller's id; echoed in the response, and the handle for `cancel`.
    #[serde(default)]
    pub id: String,
    /// The daemon's token, for the methods only authorised clients may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The client reads the replies' additions (`error_kind`, `detail`). SteadyText's clients
    /// reject a reply with a field they do not know, so only clients that say so get them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extended: bool,
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
    /// The error's kind (new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// More about the result (new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl Response {
    /// The reply as a client that does (`extended`) or does not read the additions wants it.
    pub fn for_client(mut self, extended: bool) -> Self {
        if !extended {
            self.error_kind = None;
            self.detail = None;
        }
        self
    }

    /// A successful response.
    pub fn ok(id: &str, result: Value) -> Self {
        Response {
            id: id.to_string(),
            result,
            error: None,
            error_kind: None,
            detail: None,
        }
    }

    /// A failed response.
    pub fn err(id: &str, error: &Error) -> Self {
        Response {
            id: id.to_string(),
            result: Value::Null,
            error: Some(error.to_string()),
            error_kind: Some(error.kind()),
            detail: None,
        }
    }

    /// One stream frame.
    pub fn token(id: &str, token: &str) -> Self {
        Self::ok(id, json!({ "token": token }))
    }

    /// The result as a library value: the error with its kind (an error without a kind, from an
    /// older daemon, counts as an inference error).
    pub fn into_result(self) -> Result<(Value, Option<Value>)> {
        match self.error {
            Some(message) => Err(Error::new(
                self.error_kind.unwrap_or(ErrorKind::Inference),
                message,
            )),
            None => Ok((self.result, self.detail)),
        }
    }
}

/// The shape a method's result has on the wire.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// `generate`: the text.
    Text,
    /// `embed`: one vector.
    Vector,
    /// `embed_batch`: a list of vectors.
    Vectors,
    /// `rerank`: `[[doc, score], ...]`, or `[doc, ...]` without scores.
    Ranked {
        /// The request's documents.
        documents: &'a [String],
        /// Whether scores are wanted.
        return_scores: bool,
    },
}

/// How a method answers, for SteadyText's clients, plus the detail this library's clients read.
pub fn encode(output: &Output, shape: Shape<'_>) -> (Value, Detail) {
    match (output, shape) {
        (Output::Text { text, summary }, _) => (
            Value::from(text.as_str()),
            Detail {
                summary: Some(*summary),
                ..Detail::default()
            },
        ),
        (Output::Embeddings(vectors), Shape::Vector) => (
            vectors.first().map_or(Value::Null, |v| json!(v)),
            Detail::default(),
        ),
        (Output::Embeddings(vectors), _) => (json!(vectors), Detail::default()),
        (Output::Ranked(scored), shape) => {
            let (documents, return_scores) = match shape {
                Shape::Ranked {
                    documents,
                    return_scores,
                } => (documents, return_scores),
                _ => (&[][..], true),
            };
            let items: Vec<Value> = scored
                .iter()
                .map(|s| {
                    let doc = documents.get(s.index).map_or("", String::as_str);
                    if return_scores {
                        json!([doc, s.score])
                    } else {
                        json!(doc)
                    }
                })
                .collect();
            (
                Value::Array(items),
                Detail {
                    ranked: Some(scored.clone()),
                    ..Detail::default()
                },
            )
        }
    }
}

/// What a result means, the other way round. Anything that does not have the expected shape is
/// a protocol error, never an empty value.
pub fn decode_text(result: Value, detail: Option<Value>) -> Result<Output> {
    let Value::String(text) = result else {
        return Err(Error::protocol(format!(
            "the daemon answered a generation with {result}, not text"
        )));
    };
    let summary = detail
        .and_then(|d| serde_json::from_value::<Detail>(d).ok())
        .and_then(|d| d.summary)
        .unwrap_or_default();
    Ok(Output::Text { text, summary })
}

/// Vectors from an `embed_batch` result (a list of lists of numbers).
pub fn decode_embeddings(result: Value) -> Result<Output> {
    serde_json::from_value::<Vec<Vec<f32>>>(result)
        .map(Output::Embeddings)
        .map_err(|e| Error::protocol(format!("the daemon answered embeddings with {e}")))
}

/// Scores from a `rerank` result: the detail's indices when there (this daemon), else the
/// documents matched back to their positions (SteadyText's daemon).
pub fn decode_ranked(result: Value, detail: Option<Value>, documents: &[String]) -> Result<Output> {
    if let Some(ranked) = detail
        .and_then(|d| serde_json::from_value::<Detail>(d).ok())
        .and_then(|d| d.ranked)
    {
        return Ok(Output::Ranked(ranked));
    }
    let pairs: Vec<(String, f64)> = serde_json::from_value(result)
        .map_err(|e| Error::protocol(format!("the daemon answered a reranking with {e}")))?;
    let mut used = vec![false; documents.len()];
    let mut scored = Vec::with_capacity(pairs.len());
    for (doc, score) in pairs {
        let index = (0..documents.len())
            .find(|&i| !used[i] && documents[i] == doc)
            .ok_or_else(|| {
                Error::protocol(format!("the daemon ranked an unknown document {doc:?}"))
            })?;
        used[index] = true;
        scored.push(Scored { index, score });
    }
    Ok(Output::Ranked(scored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_clients_get_only_the_fields_steadytext_knows() {
        let mut response = Response::err("7", &Error::invalid("no"));
        response.detail = Some(json!({ "summary": null }));
        let plain = serde_json::to_value(response.clone().for_client(false)).unwrap();
        let mut keys: Vec<&String> = plain.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["error", "id", "result"]);
        let extended = serde_json::to_value(response.for_client(true)).unwrap();
        assert!(extended.get("error_kind").is_some() && extended.get("detail").is_some());
    }

    #[test]
    fn errors_keep_their_kind_and_text_across_the_wire() {
        let e = Error::context_length(5000, 2048);
        let wire = serde_json::to_string(&Response::err("1", &e)).unwrap();
        let back: Response = serde_json::from_str(&wire).unwrap();
        let again = back.into_result().unwrap_err();
        assert_eq!(again, e);
        let old: Response =
            serde_json::from_str(r#"{"id":"1","result":null,"error":"boom"}"#).unwrap();
        assert_eq!(old.into_result().unwrap_err().kind(), ErrorKind::Inference);
    }

    #[test]
    fn malformed_results_are_errors() {
        assert!(decode_text(json!(null), None).is_err());
        assert!(decode_embeddings(json!("x")).is_err());
        let docs = vec!["a".to_string(), "a".to_string(), "b".to_string()];
        let Output::Ranked(r) =
            decode_ranked(json!([["b", 0.9], ["a", 0.5], ["a", 0.5]]), None, &docs).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.iter().map(|s| s.index).collect::<Vec<_>>(), vec![2, 0, 1]);
        assert!(decode_ranked(json!([["z", 0.1]]), None, &docs).is_err());
    }
}
