//! The library as the routes call it: typed requests run on the in-process executor. Every
//! benchmark of "the library" goes through here, so it measures what the daemon, the backend and
//! the workers run.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use steadytext::execute::{self, Output, Sink};
use steadytext::generate::Summary;
use steadytext::model_ref::Resolver;
use steadytext::request::{Combine, EmbedRequest, GenerateRequest, RerankRequest};
use steadytext::rerank::Scored;
use steadytext::{
    Constraint, EmbedMode, GenerateParams, Local, ModelChoice, ModelRef, Request, Role,
};

/// The model file at `path`, resolved for `role`.
pub fn model_ref(path: &Path, role: Role) -> Result<ModelRef> {
    let choice = ModelChoice::named(Some(&path.display().to_string()));
    Ok(Resolver::trusted().resolve(&choice, role)?)
}

/// A generation request (cache off, greedy).
pub fn generate_request(
    model: &ModelRef,
    prompt: &str,
    max_new_tokens: usize,
    constraint: Option<Constraint>,
) -> Request {
    Request::Generate(GenerateRequest {
        prompt: prompt.to_string(),
        params: GenerateParams {
            max_new_tokens,
            ..GenerateParams::default()
        },
        constraint,
        model: model.clone(),
        use_cache: false,
    })
}

/// Seconds to the first piece, total seconds, and the summary.
pub struct Timed {
    pub first: f64,
    pub total: f64,
    pub summary: Summary,
    pub text: String,
}

struct FirstPiece {
    start: Instant,
    first: Option<f64>,
}

impl Sink for FirstPiece {
    fn piece(&mut self, _text: &str) -> bool {
        self.first
            .get_or_insert_with(|| self.start.elapsed().as_secs_f64());
        true
    }
}

/// Runs a generation here with `threads` threads, timing it.
pub fn timed(request: Request, threads: i32) -> Result<Timed> {
    let mut sink = FirstPiece {
        start: Instant::now(),
        first: None,
    };
    let output = execute::run(&Local::new(threads), request, true, &mut sink)?;
    let total = sink.start.elapsed().as_secs_f64();
    let Output::Text { text, summary } = output else {
        anyhow::bail!("not text");
    };
    Ok(Timed {
        first: sink.first.unwrap_or(total),
        total,
        summary,
        text,
    })
}

/// The generated text.
pub fn generate(
    model: &ModelRef,
    prompt: &str,
    max_new_tokens: usize,
    threads: i32,
) -> Result<String> {
    Ok(timed(
        generate_request(model, prompt, max_new_tokens, None),
        threads,
    )?
    .text)
}

/// One vector per text.
pub fn embed_batch(model: &ModelRef, texts: &[&str], threads: i32) -> Result<Vec<Vec<f32>>> {
    let request = Request::Embed(EmbedRequest {
        texts: texts.iter().map(|t| t.to_string()).collect(),
        combine: Combine::Each,
        mode: EmbedMode::Query,
        model: model.clone(),
        use_cache: false,
    });
    Ok(
        execute::run(&Local::new(threads), request, false, &mut execute::Quiet)?
            .into_embeddings()?,
    )
}

/// One text's vector.
pub fn embed(model: &ModelRef, text: &str, threads: i32) -> Result<Vec<f32>> {
    Ok(embed_batch(model, &[text], threads)?.remove(0))
}

/// Every document's score, best first.
pub fn rerank(
    model: &ModelRef,
    query: &str,
    documents: &[&str],
    threads: i32,
) -> Result<Vec<Scored>> {
    let request = Request::Rerank(RerankRequest {
        query: query.to_string(),
        documents: documents.iter().map(|d| d.to_string()).collect(),
        task: steadytext::defaults::RERANK_TASK.to_string(),
        model: model.clone(),
        use_cache: false,
    });
    Ok(execute::run(&Local::new(threads), request, false, &mut execute::Quiet)?.into_ranked()?)
}
