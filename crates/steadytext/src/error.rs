//! The library's error type. Every error has a kind, which decides its SQLSTATE, whether a
//! queue worker retries it, and how it crosses the daemon's wire, and a message that is the same
//! on every route: an error built from a kind and a message (`Error::from_wire`) prints exactly
//! the message it was sent with.

use serde::{Deserialize, Serialize};

/// How a request failed; the part of an error a program branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A parameter is out of range or malformed (bad grammar, empty prompt, unknown size).
    InvalidArgument,
    /// An input is larger than a configured limit (prompt length, max_tokens, batch size).
    LimitExceeded,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// Structured output could not be completed within max_tokens.
    Incomplete,
    /// The caller may not do this (a model path outside the allowed places, shutdown).
    Forbidden,
    /// A feature this build does not offer (remote providers).
    Unsupported,
    /// The model file is not there (and was not downloaded).
    ModelMissing,
    /// llama.cpp refused to load the model file.
    ModelLoad,
    /// The caller asked to stop.
    Cancelled,
    /// Too much work is queued; try again later.
    Busy,
    /// No daemon answers.
    Unavailable,
    /// llama.cpp failed while evaluating.
    Inference,
    /// File system trouble.
    Io,
    /// A message that does not follow the protocol.
    Protocol,
}

impl ErrorKind {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::ModelMissing => "model_missing",
            ErrorKind::ModelLoad => "model_load",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Busy => "busy",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Inference => "inference",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// Whether the same request would fail the same way again, so a queue worker does not
    /// retry it: bad or oversized input, as opposed to a missing model, a busy or absent
    /// daemon, or I/O trouble.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidArgument
                | ErrorKind::LimitExceeded
                | ErrorKind::ContextLength
                | ErrorKind::Incomplete
                | ErrorKind::Forbidden
                | ErrorKind::Unsupported
        )
    }
}

/// A failed request: a kind and a message that says what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`, e.g. as received from the daemon.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message alone.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// See [`ErrorKind::is_permanent`].
    pub fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }

    /// A parameter is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// An input exceeds the limit `setting` sets; `what` says by how much ("the prompt has
    /// 20000 characters").
    pub fn limit(what: &str, limit: usize, setting: &str) -> Self {
        Self::new(
            ErrorKind::LimitExceeded,
            format!("{what}, more than the limit of {limit} ({setting})"),
        )
    }

    /// The prompt alone does not fit the window.
    pub fn context_length(input_tokens: usize, n_ctx: u32) -> Self {
        Self::new(
            ErrorKind::ContextLength,
            format!(
                "prompt has {input_tokens} tokens but the model's context window holds \
                 {n_ctx} (prompt and output together); shorten the prompt"
            ),
        )
    }

    /// The caller is not allowed to do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    /// The caller asked to stop.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "generation cancelled")
    }

    /// llama.cpp failed.
    pub fn inference(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Inference, message)
    }

    /// A protocol violation (a malformed message or reply).
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    pub(crate) fn io(context: impl std::fmt::Display, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{context}: {source}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [
            ErrorKind::InvalidArgument,
            ErrorKind::LimitExceeded,
            ErrorKind::ContextLength,
            ErrorKind::Incomplete,
            ErrorKind::Forbidden,
            ErrorKind::Unsupported,
            ErrorKind::ModelMissing,
            ErrorKind::ModelLoad,
            ErrorKind::Cancelled,
            ErrorKind::Busy,
            ErrorKind::Unavailable,
            ErrorKind::Inference,
            ErrorKind::Io,
            ErrorKind::Protocol,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn a_rebuilt_error_prints_the_same_text() {
        let e = Error::context_length(5000, 2048);
        let again = Error::new(e.kind(), e.message());
        assert_eq!(again.to_string(), e.to_string());
        assert!(again.is_permanent());
        assert!(!Error::new(ErrorKind::Busy, "x").is_permanent());
    }
}
