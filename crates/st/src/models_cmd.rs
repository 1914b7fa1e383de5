//! `st models`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use steadytext::paths::models_dir;
use steadytext::registry::{self, ModelChoice, ModelSource, Role, REGISTRY};
use steadytext::store::{self, Fetch};

/// `st models` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The registry, the size shortcuts, and which files are present.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the models directory (STEADYTEXT_MODELS_DIR or ~/.cache/steadytext/models).
    Path,
    /// Download models from Hugging Face into the models directory (resumes partial files).
    Download {
        /// Registry names; default: the default generation and embedding models.
        models: Vec<String>,
        /// Every model in the registry.
        #[arg(long)]
        all: bool,
        /// A generation size (mini, small, large).
        #[arg(long)]
        size: Option<String>,
    },
    /// Show or set the default models (used when no option or STEADYTEXT_* variable names one).
    Default {
        /// Generation model: a registry name or a GGUF path.
        #[arg(long)]
        generation: Option<String>,
        /// Embedding model: a registry name or a GGUF path.
        #[arg(long)]
        embedding: Option<String>,
        /// Reranking model: a registry name or a GGUF path.
        #[arg(long)]
        reranking: Option<String>,
        /// Forget the saved defaults (back to SteadyText's).
        #[arg(long)]
        reset: bool,
        /// Only set roles that have no saved default yet.
        #[arg(long)]
        if_unset: bool,
    },
    /// Print each model file's sha256 (default: the default generation and embedding models).
    Fingerprint {
        /// Registry names or paths.
        models: Vec<String>,
        /// Print JSON, including the engine build fingerprint.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::List { json } => list(json),
        Command::Path => {
            println!("{}", models_dir().display());
            Ok(())
        }
        Command::Download { models, all, size } => download(models, all, size),
        Command::Fingerprint { models, json } => fingerprint(models, json),
        Command::Default {
            generation,
            embedding,
            reranking,
            reset,
            if_unset,
        } => set_defaults([generation, embedding, reranking], reset, if_unset),
    }
}

fn list(json: bool) -> Result<()> {
    let dir = models_dir();
    let rows: Vec<_> = REGISTRY
        .iter()
        .map(|s| {
            let present = dir.join(s.filename).is_file();
            let sizes: Vec<&str> = registry::SIZES
                .iter()
                .filter(|(_, model)| *model == s.name)
                .map(|(size, _)| *size)
                .collect();
            (s, present, sizes)
        })
        .collect();
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(s, present, sizes)| {
                serde_json::json!({
                    "name": s.name, "role": format!("{:?}", s.role).to_lowercase(),
                    "repo": s.repo, "filename": s.filename, "n_ctx": s.n_ctx,
                    "sizes": sizes, "present": present,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    println!("models directory: {}", dir.display());
    for (s, present, sizes) in rows {
        let size = if sizes.is_empty() {
            String::new()
        } else {
            format!(" (size {})", sizes.join(","))
        };
        let mark = if present { "present" } else { "missing" };
        println!(
            "{:<20} {:<10} {:<8} {}/{}{}",
            s.name,
            format!("{:?}", s.role).to_lowercase(),
            mark,
            s.repo,
            s.filename,
            size
        );
    }
    Ok(())
}

fn download(models: Vec<String>, all: bool, size: Option<String>) -> Result<()> {
    let mut targets: Vec<(ModelSource, Role)> = Vec::new();
    if all {
        for s in REGISTRY {
            targets.push((registry::resolve(&choice(s.name), s.role)?, s.role));
        }
    }
    if let Some(size) = size {
        let spec = registry::size_to_model(&size)?;
        targets.push((
            registry::resolve(&choice(spec.name), Role::Generation)?,
            Role::Generation,
        ));
    }
    for name in &models {
        let Some(spec) = registry::spec(name) else {
            bail!("'{name}' is not in the registry (see `st models list`)");
        };
        targets.push((registry::resolve(&choice(name), spec.role)?, spec.role));
    }
    if targets.is_empty() {
        for role in [Role::Generation, Role::Embedding] {
            targets.push((registry::default_source(role)?, role));
        }
    }
    for (source, role) in targets {
        let path = store::locate(&source, role, Fetch::IfAllowed)?;
        println!("{}", path.display());
    }
    Ok(())
}

fn choice(model: &str) -> ModelChoice {
    ModelChoice {
        model: Some(model.to_string()),
        ..Default::default()
    }
}

fn fingerprint(models: Vec<String>, json: bool) -> Result<()> {
    let paths: Vec<PathBuf> = if models.is_empty() {
        [Role::Generation, Role::Embedding]
            .into_iter()
            .map(|role| store::locate(&registry::default_source(role)?, role, Fetch::LocalOnly))
            .collect::<Result<_, _>>()?
    } else {
        models
            .iter()
            .map(|m| {
                let role = registry::spec(m).map_or(Role::Generation, |s| s.role);
                store::locate(
                    &registry::resolve(&choice(m), role)?,
                    role,
                    Fetch::LocalOnly,
                )
            })
            .collect::<Result<_, _>>()?
    };
    let mut files = Vec::new();
    for path in &paths {
        let sha = store::sha256_of(path).with_context(|| format!("hashing {}", path.display()))?;
        files.push((sha, path));
    }
    if json {
        let items: Vec<_> = files
            .iter()
            .map(|(sha, path)| serde_json::json!({ "path": path, "sha256": sha }))
            .collect();
        let report = serde_json::json!({
            "build": steadytext::build_info::fingerprint(),
            "models": items,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (sha, path) in files {
            println!("{sha}  {}", path.display());
        }
    }
    Ok(())
}

fn set_defaults(given: [Option<String>; 3], reset: bool, if_unset: bool) -> Result<()> {
    use steadytext::user_defaults::{self, Defaults};
    let nothing_given = given.iter().all(Option::is_none);
    let mut saved = if reset {
        Defaults::default()
    } else {
        user_defaults::load()
    };
    if nothing_given && !reset {
        return print_defaults_in_effect();
    }
    let [generation, embedding, reranking] = given;
    for (slot, value) in [
        (&mut saved.generation, generation),
        (&mut saved.embedding, embedding),
        (&mut saved.reranking, reranking),
    ] {
        if let Some(value) = value {
            if !(if_unset && slot.is_some()) {
                *slot = Some(value);
            }
        }
    }
    user_defaults::save(&saved)
        .with_context(|| format!("cannot write {}", user_defaults::path().display()))?;
    print_defaults_in_effect()
}

/// The model each role uses when nothing names one, and where that choice comes from.
fn print_defaults_in_effect() -> Result<()> {
    let saved = steadytext::user_defaults::load();
    let mut report = serde_json::Map::new();
    for role in [Role::Generation, Role::Embedding, Role::Reranking] {
        let env = format!("STEADYTEXT_{}_MODEL", role.env_name());
        let from = if std::env::var(&env).is_ok_and(|v| !v.trim().is_empty()) {
            env
        } else if saved.get(role).is_some() {
            steadytext::user_defaults::path().display().to_string()
        } else {
            "registry default".to_string()
        };
        let model = match registry::default_source(role)? {
            ModelSource::Path(p) => p.display().to_string(),
            ModelSource::File(f) => f,
            ModelSource::Hub { repo, filename, .. } => format!("{repo}/{filename}"),
        };
        report.insert(
            role.as_str().into(),
            serde_json::json!({ "model": model, "from": from }),
        );
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
