//! Requests run in this process, on the global engine.

use crate::embed::{self, EmbedSetup, Embedding};
use crate::engine::{Engine, Model};
use crate::error::{Error, ErrorKind, Result};
use crate::execute::{finish_text, Execution, Executor, Output, Progress};
use crate::generate::{self, Decode, Prepared, Summary, TokenStream};
use crate::request::{Combine, EmbedRequest, GenerateRequest, Request, RerankRequest};
use crate::rerank::{self, QueryScorer, Scored};
use crate::text::Trimmer;

/// Runs requests here, with `threads` llama.cpp threads each (the output does not depend on it).
#[derive(Debug, Clone, Copy)]
pub struct Local {
    /// llama.cpp threads per request.
    pub threads: i32,
}

impl Local {
    /// An executor with `threads` threads per request.
    pub fn new(threads: i32) -> Self {
        Local {
            threads: threads.max(1),
        }
    }
}

impl Executor for Local {
    fn execute(&self, request: Request, _streaming: bool) -> Result<Box<dyn Execution + '_>> {
        let model = Engine::global().model(request.model())?;
        Ok(match request {
            Request::Generate(r) => Box::new(Generation::start(model, &r, self.threads)?),
            Request::Embed(r) => Box::new(EmbedTexts::new(model, r, self.threads)),
            Request::Rerank(r) => Box::new(Reranking::new(model, r, self.threads)),
        })
    }
}

/// Where a generation's pieces come from: a context of its own ([`TokenStream`]) or a shared
/// batch.
pub(crate) trait Pieces {
    /// The next piece of the unstripped output (possibly empty); `None` at the end.
    fn next_piece(&mut self) -> Option<Result<String>>;
    /// Token counts and how it ended (complete once the pieces are exhausted).
    fn summary(&self) -> Summary;
}

impl Pieces for TokenStream<'static> {
    fn next_piece(&mut self) -> Option<Result<String>> {
        self.next()
    }

    fn summary(&self) -> Summary {
        TokenStream::summary(self)
    }
}

/// A generation decoding token by token.
pub struct Generation {
    stream: Box<dyn Pieces>,
    raw: String,
    constrained: bool,
    trimmer: Trimmer,
}

impl Generation {
    pub(crate) fn new(stream: Box<dyn Pieces>, constrained: bool) -> Self {
        Generation {
            stream,
            raw: String::new(),
            constrained,
            trimmer: Trimmer::default(),
        }
    }

    fn start(model: &'static Model, request: &GenerateRequest, threads: i32) -> Result<Self> {
        let stream = generate::stream(model, decode_of(request, threads))?;
        Ok(Generation::new(
            Box::new(stream),
            request.constraint.is_some(),
        ))
    }

    /// A prepared generation in a context of its own.
    pub(crate) fn alone(
        model: &'static Model,
        prepared: Prepared<'static>,
        constrained: bool,
        threads: i32,
    ) -> Result<Self> {
        let stream = generate::start(model, prepared, threads)?;
        Ok(Generation::new(Box::new(stream), constrained))
    }
}

/// How `request` decodes with `threads` threads.
pub(crate) fn decode_of(request: &GenerateRequest, threads: i32) -> Decode<'_> {
    Decode {
        prompt: &request.prompt,
        params: &request.params,
        constraint: request.constraint.as_ref(),
        n_ctx: request.model.n_ctx,
        threads,
    }
}

impl Execution for Generation {
    fn advance(&mut self) -> Result<Progress> {
        match self.stream.next_piece() {
            Some(piece) => {
                let piece = piece?;
                self.raw.push_str(&piece);
                // Streamed pieces add up to exactly the text a non-streamed call returns.
                let shown = if self.constrained {
                    piece
                } else {
                    self.trimmer.push(&piece)
                };
                Ok(if shown.is_empty() {
                    Progress::Working
                } else {
                    Progress::Piece(shown)
                })
            }
            None => {
                let summary = self.stream.summary();
                if self.constrained && !summary.completed {
                    return Err(Error::new(
                        ErrorKind::Incomplete,
                        format!(
                            "the constrained output was not complete after max_tokens={} \
                             tokens; raise max_tokens",
                            summary.generated_tokens
                        ),
                    ));
                }
                Ok(Progress::Done(Output::Text {
                    text: finish_text(&self.raw, self.constrained),
                    summary,
                }))
            }
        }
    }
}

/// Embeddings, one text per step.
struct EmbedTexts {
    model: &'static Model,
    request: EmbedRequest,
    setup: EmbedSetup,
    done: Vec<Embedding>,
}

impl EmbedTexts {
    fn new(model: &'static Model, request: EmbedRequest, threads: i32) -> Self {
        EmbedTexts {
            model,
            setup: EmbedSetup {
                mode: request.mode,
                n_ctx: request.model.n_ctx,
                threads,
            },
            done: Vec::with_capacity(request.texts.len()),
            request,
        }
    }
}

impl Execution for EmbedTexts {
    fn advance(&mut self) -> Result<Progress> {
        if let Some(text) = self.request.texts.get(self.done.len()) {
            self.done.push(embed::embed(self.model, text, self.setup)?);
            return Ok(Progress::Working);
        }
        let vectors = std::mem::take(&mut self.done);
        Ok(Progress::Done(Output::Embeddings(
            match self.request.combine {
                Combine::Each => vectors,
                Combine::Average => vec![embed::average(&vectors)],
            },
        )))
    }
}

/// A reranking, one document per step; the query's part of the prompt is decoded once.
struct Reranking {
    request: RerankRequest,
    scorer: Option<QueryScorer<'static>>,
    model: &'static Model,
    threads: i32,
    scored: Vec<Scored>,
}

impl Reranking {
    fn new(model: &'static Model, request: RerankRequest, threads: i32) -> Self {
        Reranking {
            scored: Vec::with_capacity(request.documents.len()),
            request,
            scorer: None,
            model,
            threads,
        }
    }
}

impl Execution for Reranking {
    fn advance(&mut self) -> Result<Progress> {
        let index = self.scored.len();
        let Some(document) = self.request.documents.get(index) else {
            let mut scored = std::mem::take(&mut self.scored);
            rerank::sort(&mut scored);
            return Ok(Progress::Done(Output::Ranked(scored)));
        };
        let scorer = match &mut self.scorer {
            Some(scorer) => scorer,
            None => self.scorer.insert(QueryScorer::new(
                self.model,
                &self.request.query,
                &self.request.task,
                self.request.model.n_ctx,
                self.threads,
            )?),
        };
        let score = scorer.score(document)?;
        self.scored.push(Scored { index, score });
        Ok(Progress::Working)
    }
}
