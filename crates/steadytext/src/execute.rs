//! Running a request: one entry point for every route.
//!
//! An [`Executor`] starts an [`Execution`] (in this process, in the daemon, through a cache);
//! the caller advances it one step at a time (a token, a text, a document, or a wait of a few
//! milliseconds) and may stop between steps. [`run`] drives an execution to its end for callers
//! that do not need to interleave other work; dropping an execution stops it (the daemon is told
//! to cancel).

use serde::{Deserialize, Serialize};

use crate::embed::Embedding;
use crate::error::{Error, Result};
use crate::generate::Summary;
use crate::request::Request;
use crate::rerank::Scored;

/// What a request produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Generated text: stripped of surrounding whitespace, except constrained output, which is
    /// exactly what the constraint admitted.
    Text {
        /// The text.
        text: String,
        /// Token counts and how it ended.
        summary: Summary,
    },
    /// One vector per text (or their mean, as one vector).
    Embeddings(Vec<Embedding>),
    /// Every document's score, best first.
    Ranked(Vec<Scored>),
}

impl Output {
    /// The text, for callers that asked for a generation.
    pub fn into_text(self) -> Result<String> {
        match self {
            Output::Text { text, .. } => Ok(text),
            other => Err(Error::protocol(format!(
                "expected text, got {}",
                other.kind()
            ))),
        }
    }

    /// The vectors, for callers that asked for embeddings.
    pub fn into_embeddings(self) -> Result<Vec<Embedding>> {
        match self {
            Output::Embeddings(v) => Ok(v),
            other => Err(Error::protocol(format!(
                "expected embeddings, got {}",
                other.kind()
            ))),
        }
    }

    /// The scores, for callers that asked for a reranking.
    pub fn into_ranked(self) -> Result<Vec<Scored>> {
        match self {
            Output::Ranked(r) => Ok(r),
            other => Err(Error::protocol(format!(
                "expected scores, got {}",
                other.kind()
            ))),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Output::Text { .. } => "text",
            Output::Embeddings(_) => "embeddings",
            Output::Ranked(_) => "scores",
        }
    }
}

/// How far an execution got in one step.
#[derive(Debug)]
pub enum Progress {
    /// Generated text, to pass on now when streaming.
    Piece(String),
    /// Work done (or waited for) without output yet.
    Working,
    /// The end.
    Done(Output),
}

/// A request being run.
pub trait Execution {
    /// One step.
    fn advance(&mut self) -> Result<Progress>;
}

/// Where requests run.
pub trait Executor {
    /// Starts `request`. `streaming` asks for pieces as they are made (otherwise an executor may
    /// deliver the text in one piece at the end).
    fn execute(&self, request: Request, streaming: bool) -> Result<Box<dyn Execution + '_>>;
}

/// What [`run`] tells the caller, and asks it.
pub trait Sink {
    /// A piece of streamed text; return false to stop.
    fn piece(&mut self, _text: &str) -> bool {
        true
    }

    /// Called between steps; return false to stop.
    fn keep_going(&mut self) -> bool {
        true
    }
}

/// A sink that never stops and ignores pieces.
pub struct Quiet;

impl Sink for Quiet {}

/// Runs `request` to its end. A sink that says stop ends it with [`Error::cancelled`].
pub fn run(
    executor: &dyn Executor,
    request: Request,
    streaming: bool,
    sink: &mut dyn Sink,
) -> Result<Output> {
    let mut execution = executor.execute(request, streaming)?;
    loop {
        if !sink.keep_going() {
            return Err(Error::cancelled());
        }
        match execution.advance()? {
            Progress::Piece(piece) => {
                if !sink.piece(&piece) {
                    return Err(Error::cancelled());
                }
            }
            Progress::Working => {}
            Progress::Done(output) => return Ok(output),
        }
    }
}

/// Finishing touches shared by every route: unconstrained text is stripped.
pub fn finish_text(raw: &str, constrained: bool) -> String {
    if constrained {
        raw.to_string()
    } else {
        raw.trim().to_string()
    }
}

/// A generation's result, serialised for the wire's `detail` field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Detail {
    /// Token counts and how it ended (generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Every document's index and score, best first (reranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranked: Option<Vec<Scored>>,
    /// The whole text, at the end of a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}
