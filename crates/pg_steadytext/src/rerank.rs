//! `steadytext_rerank` and `steadytext_rerank_batch` (the `_docs_only` and `_top_k` forms are
//! SQL over `steadytext_rerank`, in sql/structured.sql).

use pgrx::prelude::*;
use serde_json::Value;
use steadytext::defaults::RERANK_TASK as DEFAULT_TASK;
use steadytext::request::{RerankSpec, Spec};
use steadytext::rerank;
use steadytext::Request;

use crate::errors::{raise, raise_error};
use crate::{admission, model, route};

type Ranked = Vec<(String, Option<f64>)>;

/// The documents best first, with their scores: the reranking model's P(yes), or, when no
/// model can be used, SteadyText's word-overlap score with a WARNING saying so.
fn ranked(function: &str, query: &str, documents: &[String], task: &str) -> Vec<(String, f64)> {
    let spec = RerankSpec {
        query: query.to_string(),
        documents: Value::from(documents.to_vec()),
        task: Some(task.to_string()),
        ..RerankSpec::default()
    };
    admission::admit(&Spec::Rerank(spec.clone()));
    let scored = model::builder()
        .rerank(spec)
        .and_then(|request| route::run(Request::Rerank(request))?.into_ranked());
    match scored {
        Ok(scored) => scored
            .into_iter()
            .map(|s| (documents[s.index].clone(), s.score))
            .collect(),
        Err(e) if !route::is_model_problem(&e) => raise_error(&e),
        Err(e) => {
            warning!(
                "{function}: reranking model unavailable ({e}); the scores are SteadyText's \
                 word-overlap fallback, not model scores. Set steadytext.reranking_model to a \
                 GGUF file or a registry name."
            );
            let refs: Vec<&str> = documents.iter().map(String::as_str).collect();
            rerank::fallback(query, &refs)
                .into_iter()
                .map(|s| (documents[s.index].clone(), s.score))
                .collect()
        }
    }
}

fn check_query(query: Option<&str>) -> &str {
    let Some(query) = query else {
        raise("Query cannot be null")
    };
    if query.trim().is_empty() {
        raise("Query cannot be empty");
    }
    query
}

fn check_documents(documents: Option<Vec<Option<String>>>) -> Vec<String> {
    let Some(documents) = documents else {
        raise("Documents cannot be null")
    };
    if documents.is_empty() {
        raise("Documents array cannot be empty");
    }
    documents
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .unwrap_or_else(|| raise("Documents cannot contain null elements"))
}

/// The documents ordered by relevance to the query, best first; the score column is NULL
/// when `return_scores` is false.
#[pg_extern(immutable, parallel_safe)]
fn steadytext_rerank(
    query: Option<&str>,
    documents: Option<Vec<Option<String>>>,
    task: default!(
        Option<&str>,
        "'Given a web search query, retrieve relevant passages that answer the query'"
    ),
    return_scores: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
) -> TableIterator<'static, (name!(document, String), name!(score, Option<f64>))> {
    // Scores come from logits, not sampling: the seed changes nothing (kept for compatibility).
    let _ = seed;
    let query = check_query(query);
    let documents = check_documents(documents);
    let task = task.unwrap_or(DEFAULT_TASK);
    let keep = return_scores.unwrap_or(true);
    let rows: Ranked = ranked("steadytext_rerank", query, &documents, task)
        .into_iter()
        .map(|(doc, score)| (doc, keep.then_some(score)))
        .collect();
    TableIterator::new(rows)
}

/// Every query against the same documents; `query_index` is 0-based.
#[pg_extern(immutable, parallel_safe)]
fn steadytext_rerank_batch(
    queries: Option<Vec<Option<String>>>,
    documents: Option<Vec<Option<String>>>,
    task: default!(
        Option<&str>,
        "'Given a web search query, retrieve relevant passages that answer the query'"
    ),
    return_scores: default!(Option<bool>, true),
    seed: default!(Option<i32>, 42),
) -> TableIterator<
    'static,
    (
        name!(query_index, i32),
        name!(document, String),
        name!(score, Option<f64>),
    ),
> {
    let _ = seed;
    let queries = match queries {
        Some(q) if !q.is_empty() => q,
        _ => raise("Queries cannot be empty"),
    };
    // Each query is a rerank of its own (admitted as one), and the queries are a batch.
    model::builder()
        .check_batch("queries", queries.len())
        .unwrap_or_else(|e| raise_error(&e));
    let documents = match documents {
        Some(d) if d.is_empty() => return TableIterator::new(Vec::new()),
        other => check_documents(other),
    };
    let task = task.unwrap_or(DEFAULT_TASK);
    let keep = return_scores.unwrap_or(true);
    let mut rows = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        let query = check_query(query.as_deref());
        for (doc, score) in ranked("steadytext_rerank_batch", query, &documents, task) {
            rows.push((i as i32, doc, keep.then_some(score)));
        }
    }
    TableIterator::new(rows)
}
