//! The library route of the determinism matrix (tests/determinism/run.sh): runs requests
//! through the library API directly and prints a digest of each output, in the forms the other
//! routes can compute too.
//!
//! Reads one request per line on stdin: `{"method": "generate" | "embed" | "embed_batch",
//! "params": {...}, "stream": bool}` (the daemon protocol's methods and parameters). Prints one
//! line per output: the sha256 of the text's UTF-8 bytes, or of each embedding in pgvector's
//! binary form (`vector_send`: dimension and a zero as big-endian u16, then big-endian f32s), or
//! `error <kind>: <message>`.
//!
//! ```text
//! cargo run --example digest -- --threads 2 < requests.jsonl
//! ```

use std::io::{BufRead, Write};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use steadytext::execute::{self, Sink};
use steadytext::request::{Builder, Spec};
use steadytext::{Local, Output};

#[derive(Deserialize)]
struct Line {
    method: String,
    params: Value,
    #[serde(default)]
    stream: bool,
}

/// Collects streamed pieces, so a streamed text is compared as its pieces joined.
#[derive(Default)]
struct Pieces(String);

impl Sink for Pieces {
    fn piece(&mut self, text: &str) -> bool {
        self.0.push_str(text);
        true
    }
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn vector_send(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * v.len());
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for x in v {
        out.extend_from_slice(&x.to_be_bytes());
    }
    out
}

fn digests(line: Line, local: &Local, builder: &Builder) -> Vec<String> {
    let run = || -> steadytext::Result<(Output, String)> {
        let request = Spec::parse(&line.method, line.params)?.build(builder)?;
        let mut pieces = Pieces::default();
        let output = execute::run(local, request, line.stream, &mut pieces)?;
        Ok((output, pieces.0))
    };
    match run() {
        Ok((Output::Text { text, .. }, pieces)) => {
            vec![hex(if line.stream { &pieces } else { &text }.as_bytes())]
        }
        Ok((Output::Embeddings(vectors), _)) => {
            vectors.iter().map(|v| hex(&vector_send(v))).collect()
        }
        Ok((Output::Ranked(ranked), _)) => ranked
            .iter()
            .map(|s| format!("{}:{}", s.index, s.score))
            .collect(),
        Err(e) => vec![format!("error {:?}: {}", e.kind(), e.message())],
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let local = Local::new(threads);
    let builder = Builder::default();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        if line.trim().is_empty() {
            continue;
        }
        let request: Line = serde_json::from_str(&line).expect("a request per line");
        for digest in digests(request, &local, &builder) {
            writeln!(out, "{digest}").expect("stdout");
        }
    }
}
