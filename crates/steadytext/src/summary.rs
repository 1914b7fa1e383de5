//! Summaries of many rows (the SQL `steadytext_summarize` aggregates): facts are extracted from
//! each row into a [`State`], states merge, and the final prompt is built from the state.
//!
//! The summary depends only on the set of rows, never on their order or on how a plan splits
//! them between workers: the state keeps the distinct facts with the smallest hashes (a sample
//! that is the same however the rows arrive), samples the same way, sums and extremes for the
//! statistics, and the smallest value per metadata key. The final prompt lists the facts in
//! hash order after removing near-duplicates. The state is bounded: at most
//! `max_facts` facts of at most [`MAX_FACT_CHARS`] characters, and [`MAX_SAMPLES`] samples.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Facts taken from one row.
pub const FACTS_PER_ROW: usize = 3;
/// Longest fact kept in a state, in characters.
pub const MAX_FACT_CHARS: usize = 500;
/// Samples kept in a state.
pub const MAX_SAMPLES: usize = 10;
/// Characters of a row kept as a sample.
pub const SAMPLE_CHARS: usize = 200;
/// Facts a state keeps unless configured otherwise.
pub const DEFAULT_STATE_FACTS: usize = 100;
/// Facts named in the final prompt.
pub const PROMPT_FACTS: usize = 10;
/// Cosine similarity above which a fact repeats an earlier one.
pub const SIMILARITY_THRESHOLD: f64 = 0.85;
/// Metadata keys a state keeps.
pub const MAX_METADATA_KEYS: usize = 32;
/// Longest metadata value (its JSON text) a state keeps, in bytes.
pub const MAX_METADATA_VALUE_BYTES: usize = 1024;
/// The most facts `extract_facts` may be asked for (the Python extension's bound).
pub const MAX_EXTRACTED_FACTS: i32 = 50;

/// The text's sentences, as the Python extension split them: a sentence ends at `.`, `!` or `?`
/// once it is longer than 10 characters (so "Short. A longer sentence here!" is one fact); the
/// rest of the text is the last one. At most `max_facts`.
pub fn extract_facts(text: &str, max_facts: usize) -> Vec<String> {
    let mut facts = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if facts.len() == max_facts {
            return facts;
        }
        current.push(c);
        if matches!(c, '.' | '!' | '?') && current.trim().chars().count() > 10 {
            facts.push(current.trim().to_string());
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() && facts.len() < max_facts {
        facts.push(rest.to_string());
    }
    facts
}

/// Checks `max_facts` as the Python extension did.
pub fn check_max_facts(max_facts: i32) -> Result<usize> {
    if !(1..=MAX_EXTRACTED_FACTS).contains(&max_facts) {
        return Err(Error::invalid(format!(
            "max_facts must be between 1 and {MAX_EXTRACTED_FACTS}"
        )));
    }
    Ok(max_facts as usize)
}

/// Row counts and lengths (in characters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Rows with text.
    pub row_count: u64,
    /// Their characters.
    pub total_chars: u64,
    /// The shortest row.
    pub min_length: Option<u64>,
    /// The longest row.
    pub max_length: Option<u64>,
    /// How many merges deep this state is (informational: the summary does not depend on it).
    #[serde(default)]
    pub combine_depth: u32,
}

/// An aggregate's state, in the Python extension's JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Distinct facts, smallest hash first.
    #[serde(default)]
    pub facts: Vec<String>,
    /// Distinct row beginnings, smallest hash first.
    #[serde(default)]
    pub samples: Vec<String>,
    /// Counts and lengths.
    #[serde(default)]
    pub stats: Stats,
    /// Per key, the smallest value (by its JSON text) any row gave.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Keeps the `k` distinct entries with the smallest hashes, in hash order.
fn keep_smallest(list: &mut Vec<String>, k: usize) {
    let mut keyed: Vec<([u8; 32], String)> = list.drain(..).map(|s| (digest(&s), s)).collect();
    keyed.sort();
    keyed.dedup();
    keyed.truncate(k);
    list.extend(keyed.into_iter().map(|(_, s)| s));
}

fn prefix(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// Merges metadata so that the result does not depend on the order: per key, the value with
/// the smallest JSON text; at most [`MAX_METADATA_KEYS`] keys (the smallest names), values of
/// at most [`MAX_METADATA_VALUE_BYTES`].
fn merge_metadata(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        if key.len() > MAX_METADATA_VALUE_BYTES
            || value.to_string().len() > MAX_METADATA_VALUE_BYTES
        {
            continue;
        }
        let replace = match into.get(key) {
            Some(kept) => {
                let (kept, offered) = (kept.to_string(), value.to_string());
                offered < kept
            }
            None => true,
        };
        if replace {
            into.insert(key.clone(), value.clone());
        }
    }
    // Sorted by key (the map keeps insertion order), the smallest names kept.
    let mut entries: Vec<(String, Value)> = std::mem::take(into).into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.truncate(MAX_METADATA_KEYS);
    into.extend(entries);
}

impl State {
    /// Parses a state; an error for anything that is not one.
    pub fn from_json(value: Value) -> Result<State> {
        serde_json::from_value(value)
            .map_err(|e| Error::invalid(format!("Unable to parse aggregation state: {e}")))
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a state serialises")
    }

    /// Adds one row (empty rows are skipped), keeping at most `max_facts` facts.
    pub fn add_row(&mut self, text: &str, metadata: &Map<String, Value>, max_facts: usize) {
        if text.is_empty() {
            return;
        }
        let length = text.chars().count() as u64;
        let stats = &mut self.stats;
        stats.row_count += 1;
        stats.total_chars += length;
        stats.min_length = Some(stats.min_length.map_or(length, |m| m.min(length)));
        stats.max_length = Some(stats.max_length.map_or(length, |m| m.max(length)));
        self.facts.extend(
            extract_facts(text, FACTS_PER_ROW)
                .iter()
                .map(|f| prefix(f, MAX_FACT_CHARS)),
        );
        keep_smallest(&mut self.facts, max_facts);
        self.samples.push(prefix(text, SAMPLE_CHARS));
        keep_smallest(&mut self.samples, MAX_SAMPLES);
        merge_metadata(&mut self.metadata, metadata);
    }

    /// Merges another state into this one (the aggregates' combine step).
    pub fn merge(&mut self, other: State, max_facts: usize) {
        let (a, b) = (&mut self.stats, &other.stats);
        a.row_count += b.row_count;
        a.total_chars += b.total_chars;
        a.min_length = match (a.min_length, b.min_length) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.max_length = a.max_length.max(b.max_length);
        a.combine_depth = a.combine_depth.max(b.combine_depth) + 1;
        self.facts.extend(other.facts);
        keep_smallest(&mut self.facts, max_facts);
        self.samples.extend(other.samples);
        keep_smallest(&mut self.samples, MAX_SAMPLES);
        merge_metadata(&mut self.metadata, &other.metadata);
    }

    /// The model the metadata names, if any.
    pub fn model(&self) -> Option<&str> {
        self.metadata.get("model").and_then(Value::as_str)
    }

    /// The metadata's `unsafe_mode`.
    pub fn unsafe_mode(&self) -> bool {
        self.metadata
            .get("unsafe_mode")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The generation prompt, given the facts to name (near-duplicates already removed, in the
    /// state's order).
    pub fn prompt(&self, facts: &[String]) -> String {
        let rows = self.stats.row_count.max(1);
        let average = self.stats.total_chars as f64 / rows as f64;
        let named: Vec<&str> = facts
            .iter()
            .take(PROMPT_FACTS)
            .map(String::as_str)
            .collect();
        let mut prompt = format!(
            "Create a concise summary of this data: Facts: {}, Row count: {}, Average length: {:.1}",
            named.join("; "),
            self.stats.row_count,
            average
        );
        let context: Vec<String> = self
            .metadata
            .iter()
            .filter(|(k, _)| *k != "model" && *k != "unsafe_mode")
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect();
        if !context.is_empty() {
            prompt.push_str(". Context: ");
            prompt.push_str(&context.join(", "));
        }
        prompt
    }
}

/// Indices of the items to keep, in order: an item whose cosine similarity with a kept one is
/// above `threshold` is dropped (a zero vector is similar to nothing).
pub fn distinct_by_similarity(vectors: &[Vec<f32>], threshold: f64) -> Vec<usize> {
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cosine = |a: &[f32], b: &[f32]| {
        let (na, nb) = (norm(a), norm(b));
        if na == 0.0 || nb == 0.0 {
            return 0.0;
        }
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum::<f64>()
            / (na * nb)
    };
    let mut kept: Vec<usize> = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        if kept.iter().all(|&j| cosine(&vectors[j], v) <= threshold) {
            kept.push(i);
        }
    }
    kept
}

/// Indices of the items to keep when no embeddings can be had: case-insensitive exact repeats
/// are dropped (the Python extension's fallback).
pub fn distinct_ignoring_case(texts: &[String]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    (0..texts.len())
        .filter(|&i| seen.insert(texts[i].to_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sentences_end_after_ten_characters() {
        assert_eq!(
            extract_facts("Short. This is a longer sentence here!", 10),
            ["Short. This is a longer sentence here!"]
        );
        assert_eq!(
            extract_facts("Sales rose in May. Costs fell in June. And more", 10),
            ["Sales rose in May.", "Costs fell in June.", "And more"]
        );
        assert_eq!(
            extract_facts("One long sentence. Two long sentences.", 1).len(),
            1
        );
        assert!(extract_facts("   ", 5).is_empty());
        assert!(check_max_facts(0).is_err() && check_max_facts(51).is_err());
    }

    fn rows() -> Vec<String> {
        (0..40)
            .map(|i| {
                format!(
                    "Row {i} reports revenue of {} dollars. The region was {}.",
                    i * 7,
                    i % 5
                )
            })
            .collect()
    }

    fn summarise(order: &[String], split: usize) -> State {
        let meta = json!({"topic": "sales"}).as_object().unwrap().clone();
        let (left, right) = order.split_at(split);
        let mut a = State::default();
        left.iter().for_each(|r| a.add_row(r, &meta, 16));
        let mut b = State::default();
        right.iter().for_each(|r| b.add_row(r, &meta, 16));
        a.merge(b, 16);
        a
    }

    #[test]
    fn the_state_depends_on_the_rows_not_their_order_or_split() {
        let rows = rows();
        let mut reversed = rows.clone();
        reversed.reverse();
        let serial = summarise(&rows, rows.len());
        for state in [
            summarise(&reversed, 40),
            summarise(&rows, 13),
            summarise(&reversed, 1),
        ] {
            assert_eq!(state.facts, serial.facts);
            assert_eq!(state.samples, serial.samples);
            assert_eq!(state.prompt(&state.facts), serial.prompt(&serial.facts));
        }
        assert_eq!(serial.facts.len(), 16);
        assert_eq!(serial.stats.row_count, 40);
    }

    #[test]
    fn metadata_merges_the_same_way_in_any_order() {
        let one = json!({"k": "b", "model": "m"}).as_object().unwrap().clone();
        let two = json!({"k": "a"}).as_object().unwrap().clone();
        let (mut x, mut y) = (State::default(), State::default());
        x.add_row("first row text here.", &one, 10);
        x.add_row("second row text here.", &two, 10);
        y.add_row("second row text here.", &two, 10);
        y.add_row("first row text here.", &one, 10);
        assert_eq!(x.metadata, y.metadata);
        assert_eq!(x.model(), Some("m"));
        assert!(x.prompt(&x.facts).ends_with(". Context: k: a"));
    }

    #[test]
    fn near_duplicates_are_dropped_in_order() {
        let v = vec![
            vec![1.0, 0.0],
            vec![0.99, 0.05],
            vec![0.0, 1.0],
            vec![0.0, 0.0],
        ];
        assert_eq!(distinct_by_similarity(&v, 0.85), [0, 2, 3]);
        let t = vec!["A b".to_string(), "a B".to_string(), "c".to_string()];
        assert_eq!(distinct_ignoring_case(&t), [0, 2]);
    }
}
