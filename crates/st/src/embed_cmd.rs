//! `st embed`.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use steadytext::execute::Quiet;
use steadytext::request::{EmbedSpec, Spec};

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
    /// Registry name, .gguf file name in the models directory, or path of an embedding model.
    #[arg(long)]
    model: Option<String>,
    /// llama.cpp threads.
    #[arg(long)]
    threads: Option<i32>,
    /// Ask the running daemon instead of loading the model here.
    #[arg(long)]
    daemon: bool,
    #[command(flatten)]
    limits: crate::daemon::LimitArgs,
}

pub fn run(args: Args) -> Result<()> {
    let text = if args.texts.is_empty() {
        crate::text_or_stdin(None)?
    } else {
        args.texts.join(" ")
    };
    let spec = EmbedSpec {
        texts: Some(vec![text.clone()]),
        model: args.model.clone(),
        mode: Some(args.mode.clone()),
        ..EmbedSpec::default()
    };
    let started = Instant::now();
    let ran = crate::route::run(
        Spec::Embed(spec),
        args.daemon,
        args.threads,
        &crate::route::builder(&args.limits),
        false,
        &mut Quiet,
    )?;
    let vector = ran.output.into_embeddings()?.pop().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Hex => writeln!(out, "{}", hex::encode(le_bytes(&vector)))?,
        Format::Numpy => out.write_all(&npy(&vector))?,
        Format::Json => {
            let words = text.split_whitespace().count();
            let model = ran.model.as_ref();
            let report = serde_json::json!({
                "text": text,
                "embedding": vector,
                "model": model.map(|m| m.file_name()),
                "model_sha256": model.map(|m| &m.sha256),
                "daemon": ran.daemon,
                "mode": args.mode.to_ascii_lowercase(),
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
