//! `st generate`.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use steadytext::execute::{Output, Sink};
use steadytext::request::{GenerateSpec, Spec};

/// Options of `st generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The prompt; read from stdin when absent or `-`.
    prompt: Option<String>,
    /// Print the whole text at the end instead of streaming it.
    #[arg(long)]
    wait: bool,
    /// Print a JSON object with the text and metadata (implies --wait).
    #[arg(long)]
    json: bool,
    /// Most tokens to generate (clamped to what the model's window leaves after the prompt).
    #[arg(long, default_value_t = steadytext::defaults::MAX_NEW_TOKENS)]
    max_new_tokens: usize,
    /// Sampler seed (>= 0); no effect at temperature 0.
    #[arg(long, default_value_t = steadytext::defaults::SEED as i64, allow_negative_numbers = true)]
    seed: i64,
    /// 0 is greedy; above 0 (up to 2) samples with top_k 40, top_p 0.95, min_p 0.05.
    #[arg(long, default_value_t = steadytext::defaults::TEMPERATURE, allow_negative_numbers = true)]
    temperature: f32,
    /// An extra stop string ("[EOS]" means none).
    #[arg(long, default_value = steadytext::defaults::EOS_SENTINEL)]
    eos_string: String,
    /// Registry name (see `st models list`), .gguf file name in the models directory, or path.
    #[arg(long)]
    model: Option<String>,
    /// Model size: mini, small or large.
    #[arg(long)]
    size: Option<String>,
    /// llama.cpp threads (default: STEADYTEXT_THREADS or all cores); output does not depend on it.
    #[arg(long)]
    threads: Option<i32>,
    /// Ask the running daemon (STEADYTEXT_DAEMON_ENDPOINT, or _HOST/_PORT) instead of loading
    /// the model here.
    #[arg(long)]
    daemon: bool,
    /// Output JSON that validates against this JSON schema (inline, or @file).
    #[arg(long, group = "structure")]
    schema: Option<String>,
    /// Output text that this regular expression matches in full.
    #[arg(long, group = "structure")]
    regex: Option<String>,
    /// Output exactly one of these comma-separated choices.
    #[arg(long, group = "structure", value_delimiter = ',')]
    choices: Option<Vec<String>>,
    /// Output text in the language of this Lark grammar (inline, or @file).
    #[arg(long, group = "structure")]
    grammar: Option<String>,
    #[command(flatten)]
    limits: crate::daemon::LimitArgs,
}

/// An argument's text, or the contents of the file it names with a leading `@`.
fn inline_or_file(value: &str, what: &str) -> Result<String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the {what} file {path}")),
        None => Ok(value.to_string()),
    }
}

impl Args {
    fn spec(&self, prompt: String) -> Result<GenerateSpec> {
        let schema = match &self.schema {
            Some(s) => Some(
                serde_json::from_str::<Value>(&inline_or_file(s, "schema")?)
                    .context("--schema is not valid JSON")?,
            ),
            None => None,
        };
        Ok(GenerateSpec {
            prompt,
            max_new_tokens: Some(self.max_new_tokens),
            seed: Some(self.seed),
            temperature: Some(self.temperature),
            eos_string: Some(self.eos_string.clone()),
            model: self.model.clone(),
            size: self.size.clone(),
            schema,
            regex: self.regex.clone(),
            choices: self.choices.clone().map(Value::from),
            grammar: match &self.grammar {
                Some(g) => Some(inline_or_file(g, "grammar")?),
                None => None,
            },
            ..GenerateSpec::default()
        })
    }

    fn structured(&self) -> bool {
        self.schema.is_some()
            || self.regex.is_some()
            || self.choices.is_some()
            || self.grammar.is_some()
    }
}

/// Writes pieces to stdout as they come.
struct Printer {
    streaming: bool,
}

impl Sink for Printer {
    fn piece(&mut self, text: &str) -> bool {
        if self.streaming {
            let mut out = std::io::stdout().lock();
            return out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_ok();
        }
        true
    }
}

pub fn run(args: Args) -> Result<()> {
    let prompt = crate::text_or_stdin(args.prompt.clone())?;
    if prompt.trim().is_empty() {
        bail!("the prompt is empty");
    }
    let spec = args.spec(prompt.clone())?;
    // A partial value is not a value: structured output is printed whole.
    let streaming = !args.wait && !args.json && !args.structured();
    let started = Instant::now();
    let ran = crate::route::run(
        Spec::Generate(spec),
        args.daemon,
        args.threads,
        &crate::route::builder(&args.limits),
        streaming,
        &mut Printer { streaming },
    )?;
    let Output::Text { text, summary } = ran.output else {
        bail!("the daemon did not answer with text");
    };
    let mut out = std::io::stdout().lock();
    if streaming {
        writeln!(out)?;
    } else if !args.json {
        writeln!(out, "{text}")?;
    } else {
        let model = ran.model.as_ref();
        let report = json!({
            "text": text,
            "model": model.map(|m| m.file_name()),
            "model_path": model.map(|m| &m.path),
            "model_sha256": model.map(|m| &m.sha256),
            "daemon": ran.daemon,
            "fingerprint": steadytext::build_info::fingerprint(),
            "usage": {
                "prompt_tokens": summary.prompt_tokens,
                "completion_tokens": summary.generated_tokens,
                "total_tokens": summary.prompt_tokens + summary.generated_tokens,
            },
            "max_new_tokens_used": summary.clamped,
            "prompt": prompt,
            "seed": args.seed,
            "temperature": args.temperature,
            "max_new_tokens": args.max_new_tokens,
            "time_taken": started.elapsed().as_secs_f64(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(used) = summary.clamped {
        eprintln!(
            "st: note: max_new_tokens {} does not fit the model's window after the prompt; \
             generated at most {used}",
            args.max_new_tokens
        );
    }
    Ok(())
}
