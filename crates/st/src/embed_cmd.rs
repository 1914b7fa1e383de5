//! `st embed`.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use steadytext::store::Fetch;
use steadytext::{EmbedMode, Engine, ModelChoice, Role};

/// Output encodings.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Hex of the 1024 little-endian float32 values (SteadyText's default).
    Hex,
    /// A JSON object with the vector and metadata.
    Json,
    /// A NumPy `.npy` file (float32, shape (1024,)) on stdout.
    Numpy,
}

/// Options of `st embed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Text to embed; several arguments are joined with a space (as SteadyText). Reads stdin when
    /// absent.
    texts: Vec<String>,
    /// `query` or `passage`: decides the `Query: `/`Passage: ` prefix.
    #[arg(long, default_value = "query")]
    mode: String,
    /// Output encoding.
    #[arg(long, value_enum, default_value_t = Format::Hex)]
    format: Format,
    /// Registry name or path to a GGUF embedding model.
    #[arg(long)]
    model: Option<String>,
    /// llama.cpp threads.
    #[arg(long)]
    threads: Option<i32>,
    /// Ask the running daemon (STEADYTEXT_DAEMON_HOST/PORT) instead of loading the model here.
    #[arg(long)]
    daemon: bool,
}

pub fn run(args: Args) -> Result<()> {
    let text = if args.texts.is_empty() {
        crate::text_or_stdin(None)?
    } else {
        args.texts.join(" ")
    };
    let mode: EmbedMode = args.mode.parse()?;
    let choice = ModelChoice {
        model: args.model.clone(),
        ..Default::default()
    };
    let started = Instant::now();
    let (vector, model_file, model_sha256) = if args.daemon {
        let client = crate::daemon::connect()?;
        let params =
            serde_json::json!({ "text_input": text, "mode": mode.as_str(), "model": args.model });
        let result = client.call("embed", params, &mut || true)?;
        let vector: Vec<f32> = serde_json::from_value(result)?;
        (vector, None, None)
    } else {
        let model = Engine::global()
            .model(&choice, Role::Embedding, Fetch::IfAllowed)
            .context("no embedding model")?;
        let vector = steadytext::embed(model, &text, mode, args.threads)?;
        let file = model
            .path()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        (vector, file, Some(model.sha256()?.to_string()))
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Hex => writeln!(out, "{}", hex::encode(le_bytes(&vector)))?,
        Format::Numpy => out.write_all(&npy(&vector))?,
        Format::Json => {
            let words = text.split_whitespace().count();
            let report = serde_json::json!({
                "text": text,
                "embedding": vector,
                "model": model_file,
                "model_sha256": model_sha256,
                "mode": mode.as_str(),
                "usage": { "prompt_tokens": words, "total_tokens": words },
                "dimension": vector.len(),
                "time_taken": started.elapsed().as_secs_f64(),
            });
            writeln!(out, "{report}")?;
        }
    }
    Ok(())
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A version 1.0 `.npy` file: magic, header padded to a multiple of 64 bytes, then the data.
fn npy(v: &[f32]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        v.len()
    );
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut file = b"\x93NUMPY\x01\x00".to_vec();
    file.extend_from_slice(&(header.len() as u16).to_le_bytes());
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&le_bytes(v));
    file
}

#[cfg(test)]
mod tests {
    #[test]
    fn npy_header_is_aligned() {
        let file = super::npy(&[1.0, 2.0]);
        let header_len = u16::from_le_bytes([file[8], file[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(file.len(), 10 + header_len + 8);
    }
}
