//! `st generate`.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use steadytext::store::Fetch;
use steadytext::{Engine, GenerateParams, ModelChoice, Role};

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
    /// Most tokens to generate.
    #[arg(long, default_value_t = steadytext::params::DEFAULT_MAX_NEW_TOKENS)]
    max_new_tokens: usize,
    /// Sampler seed (>= 0); no effect at temperature 0.
    #[arg(long, default_value_t = 42, allow_negative_numbers = true)]
    seed: i64,
    /// 0 is greedy; above 0 samples with top_k 40, top_p 0.95, min_p 0.05.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    temperature: f32,
    /// An extra stop string ("[EOS]" means none).
    #[arg(long, default_value = steadytext::params::EOS_SENTINEL)]
    eos_string: String,
    /// Registry name (see `st models list`) or path to a GGUF file.
    #[arg(long)]
    model: Option<String>,
    /// Model size: mini, small or large.
    #[arg(long)]
    size: Option<String>,
    /// llama.cpp threads (default: STEADYTEXT_THREADS or all cores); output does not depend on it.
    #[arg(long)]
    threads: Option<i32>,
    /// Ask the running daemon (STEADYTEXT_DAEMON_HOST/PORT) instead of loading the model here.
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
}

impl Args {
    /// The model --model / --size name (else the default), loaded here.
    fn generation_model(&self) -> Result<&'static steadytext::Model> {
        let choice = ModelChoice {
            model: self.model.clone(),
            size: self.size.clone(),
            ..Default::default()
        };
        Engine::global()
            .model(&choice, Role::Generation, Fetch::IfAllowed)
            .context("no generation model")
    }

    /// The constraint given by --schema, --regex or --choices (clap allows only one).
    fn constraint(&self) -> Result<Option<steadytext::Constraint>> {
        use steadytext::Constraint;
        if let Some(schema) = &self.schema {
            let text = match schema.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the schema file {path}"))?,
                None => schema.clone(),
            };
            let value = serde_json::from_str(&text).context("--schema is not valid JSON")?;
            return Ok(Some(Constraint::Json(value)));
        }
        if let Some(regex) = &self.regex {
            return Ok(Some(Constraint::Regex(regex.clone())));
        }
        Ok(self.choices.clone().map(Constraint::Choice))
    }
}

pub fn run(args: Args) -> Result<()> {
    let prompt = crate::text_or_stdin(args.prompt.clone())?;
    if prompt.trim().is_empty() {
        bail!("the prompt is empty");
    }
    let params = GenerateParams {
        max_new_tokens: args.max_new_tokens,
        seed: steadytext::validate_seed(args.seed)?,
        temperature: args.temperature,
        eos_string: args.eos_string.clone(),
        threads: args.threads,
    };
    if let Some(constraint) = args.constraint()? {
        return structured(&args, &prompt, &params, &constraint);
    }
    if args.daemon {
        return through_daemon(&args, &prompt);
    }
    let model = args.generation_model()?;
    let started = Instant::now();
    let mut stream = steadytext::stream(model, &prompt, &params)?;
    let streaming = !args.wait && !args.json;
    let mut text = String::new();
    let mut out = std::io::stdout().lock();
    for piece in stream.by_ref() {
        let piece = piece?;
        if streaming {
            out.write_all(piece.as_bytes())?;
            out.flush()?;
        }
        text.push_str(&piece);
    }
    if streaming {
        writeln!(out)?;
        return Ok(());
    }
    let text = text.trim();
    if !args.json {
        writeln!(out, "{text}")?;
        return Ok(());
    }
    let report = serde_json::json!({
        "text": text,
        "model": model.path().file_name().map(|f| f.to_string_lossy()),
        "model_path": model.path(),
        "model_sha256": model.sha256()?,
        "fingerprint": steadytext::build_info::fingerprint(),
        "usage": {
            "prompt_tokens": stream.prompt_tokens(),
            "completion_tokens": stream.generated_tokens(),
            "total_tokens": stream.prompt_tokens() + stream.generated_tokens(),
        },
        "prompt": prompt,
        "generated": text,
        "seed": params.seed,
        "temperature": params.temperature,
        "max_new_tokens": params.max_new_tokens,
        "time_taken": started.elapsed().as_secs_f64(),
        "stream": false,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

/// `--schema`, `--regex`, `--choices`: the whole constrained text (never streamed, since a
/// partial value is not a value), here or in the daemon.
fn structured(
    args: &Args,
    prompt: &str,
    params: &GenerateParams,
    constraint: &steadytext::Constraint,
) -> Result<()> {
    constraint.to_gbnf()?;
    let text = if args.daemon {
        let model = args.model.as_deref().map(std::path::Path::new);
        let mut request = steadytext::protocol::generate_params(prompt, params, model);
        request["size"] = serde_json::json!(args.size);
        steadytext::protocol::set_constraint(&mut request, constraint);
        let client = crate::daemon::connect()?;
        let text = client.call("generate", request, &mut || true)?;
        text.as_str().unwrap_or_default().to_string()
    } else {
        steadytext::generate_constrained(args.generation_model()?, prompt, params, constraint)?
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let report =
            serde_json::json!({ "text": text, "prompt": prompt, "constraint": constraint.key() });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

/// `st generate --daemon`: the same request, served by the daemon.
fn through_daemon(args: &Args, prompt: &str) -> Result<()> {
    let client = crate::daemon::connect()?;
    let params = serde_json::json!({
        "prompt": prompt,
        "max_new_tokens": args.max_new_tokens,
        "seed": args.seed,
        "temperature": args.temperature,
        "eos_string": args.eos_string,
        "model": args.model,
        "size": args.size,
    });
    let mut out = std::io::stdout().lock();
    if args.wait || args.json {
        let text = client.call("generate", params, &mut || true)?;
        let text = text.as_str().unwrap_or_default();
        if args.json {
            let report =
                serde_json::json!({ "text": text, "prompt": prompt, "daemon": client.endpoint() });
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            writeln!(out, "{text}")?;
        }
        return Ok(());
    }
    let mut stream = client.generate_iter(params)?;
    while let Some(piece) = stream.next_piece(&mut || true)? {
        out.write_all(piece.as_bytes())?;
        out.flush()?;
    }
    writeln!(out)?;
    Ok(())
}
