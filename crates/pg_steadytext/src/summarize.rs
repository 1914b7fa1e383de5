//! Summarization: fact extraction and deduplication, the steps of the `steadytext_summarize`
//! aggregates (sql/summarize.sql defines the aggregates), and `steadytext_summarize_text`. The
//! state and its order-independent merging are the library's (`steadytext::summary`).

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Map, Value};
use steadytext::summary::{self, State};

use crate::admission::{bound_json, bound_text};
use crate::errors::{raise, OrRaise};
use crate::{embed, generate, guc};

fn state_facts() -> usize {
    guc::SUMMARY_MAX_FACTS.get().max(1) as usize
}

/// A state as the aggregate passes it; a caller's own is bounded like a request's texts (the
/// aggregate's states stay far below: at most summary_max_facts facts of 500 characters).
fn parse(state: JsonB) -> State {
    crate::model::builder()
        .check_total([state.0.to_string().as_str()])
        .or_raise();
    State::from_json(state.0).or_raise()
}

fn object(metadata: Option<JsonB>) -> Map<String, Value> {
    match metadata.map(|m| m.0) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// `{"facts": [...]}`: the text's first `max_facts` sentences; no model is involved.
#[pg_extern(immutable, parallel_safe)]
fn steadytext_extract_facts(
    input_text: Option<&str>,
    max_facts: default!(Option<i32>, 10),
) -> JsonB {
    let max = summary::check_max_facts(max_facts.unwrap_or(10)).or_raise();
    input_text.inspect(|t| bound_text("text", t));
    let facts = input_text
        .filter(|t| !t.trim().is_empty())
        .map(|t| summary::extract_facts(t, max))
        .unwrap_or_default();
    JsonB(json!({ "facts": facts }))
}

/// The array without near-duplicate facts, first occurrence kept. Strings and objects with a
/// `"text"` key are compared by the cosine similarity of their embeddings; other elements pass
/// through. Case-insensitive exact matching when no embedding model can be used.
#[pg_extern(immutable, parallel_safe)]
fn steadytext_deduplicate_facts(
    facts_array: Option<JsonB>,
    similarity_threshold: default!(Option<f64>, 0.85),
) -> JsonB {
    let threshold = similarity_threshold.unwrap_or(summary::SIMILARITY_THRESHOLD);
    if !(0.0..=1.0).contains(&threshold) {
        raise("similarity_threshold must be between 0 and 1");
    }
    let facts_array = facts_array.map(|f| f.0);
    if let Some(value) = &facts_array {
        // Every fact a model would embed, and the array as a whole, within a request's bounds.
        if let Value::Array(items) = value {
            crate::model::builder()
                .check_batch("facts", items.len())
                .or_raise();
        }
        crate::model::builder()
            .check_total([value.to_string().as_str()])
            .or_raise();
    }
    let items = match facts_array {
        Some(Value::Array(items)) => items,
        None => return JsonB(json!([])),
        Some(other) => {
            warning!("steadytext_deduplicate_facts: expected a JSON array, got {other}");
            return JsonB(json!([]));
        }
    };
    JsonB(Value::Array(distinct_facts(
        "steadytext_deduplicate_facts",
        items,
        threshold,
    )))
}

fn fact_text(item: &Value) -> Option<&str> {
    match item {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("text").and_then(Value::as_str),
        _ => None,
    }
}

/// `items` without near-duplicates (see [`steadytext_deduplicate_facts`]).
fn distinct_facts(function: &str, items: Vec<Value>, threshold: f64) -> Vec<Value> {
    let texted: Vec<usize> = (0..items.len())
        .filter(|&i| fact_text(&items[i]).is_some())
        .collect();
    if texted.len() <= 1 {
        return items;
    }
    let texts: Vec<String> = texted
        .iter()
        .map(|&i| fact_text(&items[i]).unwrap_or_default().to_string())
        .collect();
    let kept = match embed::vectors(function, texts.clone()) {
        Some(vectors) => summary::distinct_by_similarity(&vectors, threshold),
        None => summary::distinct_ignoring_case(&texts),
    };
    let dropped: std::collections::HashSet<usize> = (0..texted.len())
        .filter(|k| !kept.contains(k))
        .map(|k| texted[k])
        .collect();
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, item)| item)
        .collect()
}

/// The aggregates' transition step: adds one row's facts, sample and lengths (NULL and empty
/// rows are skipped).
#[pg_extern(stable, parallel_safe)]
fn steadytext_summarize_accumulate(
    state: Option<JsonB>,
    value: Option<&str>,
    metadata: default!(Option<JsonB>, "'{}'"),
) -> Option<JsonB> {
    let mut state = state.map(parse).unwrap_or_default();
    value.inspect(|t| bound_text("text", t));
    if let Some(m) = &metadata {
        bound_json("metadata", &m.0);
    }
    if let Some(text) = value.filter(|t| !t.is_empty()) {
        state.add_row(text, &object(metadata), state_facts());
    }
    Some(JsonB(state.to_json()))
}

/// The aggregates' combine step: merges two states (a NULL one gives the other).
#[pg_extern(stable, parallel_safe)]
fn steadytext_summarize_combine(state1: Option<JsonB>, state2: Option<JsonB>) -> Option<JsonB> {
    match (state1, state2) {
        (None, other) | (other, None) => other,
        (Some(a), Some(b)) => {
            let mut merged = parse(a);
            merged.merge(parse(b), state_facts());
            Some(JsonB(merged.to_json()))
        }
    }
}

/// The aggregates' final step: a summary generated from the state's facts.
#[pg_extern(immutable, parallel_safe)]
fn steadytext_summarize_finalize(state: Option<JsonB>) -> String {
    let Some(state) = state else {
        return "No data to summarize".into();
    };
    crate::model::builder()
        .check_total([state.0.to_string().as_str()])
        .or_raise();
    let Ok(state) = State::from_json(state.0) else {
        return "Unable to parse aggregation state".into();
    };
    if state.stats.row_count == 0 {
        return "No data to summarize".into();
    }
    let facts: Vec<String> = distinct_facts(
        "steadytext_summarize",
        state
            .facts
            .iter()
            .map(|f| Value::from(f.as_str()))
            .collect(),
        summary::SIMILARITY_THRESHOLD,
    )
    .into_iter()
    .filter_map(|v| v.as_str().map(str::to_string))
    .collect();
    generate::generate_for(
        "steadytext_summarize",
        &state.prompt(&facts),
        state.model(),
        state.unsafe_mode(),
    )
    .unwrap_or_else(|| "Unable to generate summary".into())
}

/// A one- or two-sentence summary of a text (its first 500 characters), generated with `model`
/// or the default generation model; when no model can be used, the text's first 100 characters
/// (what the Python extension returned without a model).
#[pg_extern(immutable, parallel_safe)]
fn steadytext_summarize_text(
    input_text: Option<&str>,
    metadata: default!(Option<JsonB>, "'{}'"),
    model: default!(Option<&str>, "NULL"),
    unsafe_mode: default!(Option<bool>, false),
) -> String {
    if let Some(m) = &metadata {
        bound_json("metadata", &m.0);
    }
    input_text.inspect(|t| bound_text("text", t));
    let unsafe_mode = unsafe_mode.unwrap_or(false);
    steadytext::request::check_remote(model, unsafe_mode).or_raise();
    let Some(text) = input_text.filter(|t| !t.trim().is_empty()) else {
        return "No text to summarize".into();
    };
    let excerpt: String = text.chars().take(500).collect();
    let prompt = format!("Summarize the following text in 1-2 sentences: {excerpt}");
    generate::generate_for("steadytext_summarize_text", &prompt, model, unsafe_mode).unwrap_or_else(
        || {
            let start: String = text.chars().take(100).collect();
            let more = if text.chars().nth(100).is_some() {
                "..."
            } else {
                ""
            };
            format!("Summary: {start}{more}")
        },
    )
}
