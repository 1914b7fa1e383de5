//! The test models and the calls the tests make. The models are built by
//! `scripts/fetch-test-models.sh` (run by `make test`) into `$STEADYTEXT_TEST_MODELS`, default
//! `/var/cache/steadytext/test-models`.

use std::path::PathBuf;

use steadytext::execute::{self, Output, Sink};
use steadytext::generate::Summary;
use steadytext::model_ref::Resolver;
use steadytext::request::{Builder, EmbedSpec, GenerateSpec, RerankSpec, Spec};
use steadytext::rerank::Scored;
use steadytext::{Constraint, Local, ModelChoice, ModelRef, Request, Role};

pub fn models_dir() -> PathBuf {
    std::env::var_os("STEADYTEXT_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/steadytext/test-models"))
}

fn fixture(name: &str) -> PathBuf {
    let path = models_dir().join(name);
    assert!(
        path.is_file(),
        "test model {} is missing: run `make models` (scripts/fetch-test-models.sh)",
        path.display()
    );
    path
}

pub fn generation_model_path() -> PathBuf {
    fixture("smollm2-135m-instruct-q4_1.gguf")
}

pub fn embedding_model_path() -> PathBuf {
    fixture("all-minilm-l6-v2-f32.gguf")
}

/// Qwen2.5-Coder-1.5B-Instruct: the smallest model in reach of the test machines that judges
/// relevance (SmolLM2-135M answers "yes" to everything), so reranking quality is tested on it.
pub fn reranking_model_path() -> PathBuf {
    fixture("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
}

fn model(path: PathBuf, role: Role) -> ModelRef {
    let choice = ModelChoice::named(Some(&path.display().to_string()));
    Resolver::trusted()
        .resolve(&choice, role)
        .expect("the test model resolves")
}

pub fn generator() -> ModelRef {
    model(generation_model_path(), Role::Generation)
}

pub fn reranker() -> ModelRef {
    model(reranking_model_path(), Role::Reranking)
}

/// The command line's builder (any path), with the test models as defaults.
pub fn builder() -> Builder {
    Builder {
        defaults: steadytext::request::DefaultModels {
            generation: Some(generation_model_path().display().to_string()),
            embedding: Some(embedding_model_path().display().to_string()),
            reranking: Some(generation_model_path().display().to_string()),
        },
        ..Builder::default()
    }
}

/// A generation spec on the generation test model.
pub fn spec(prompt: &str, max_new_tokens: usize) -> GenerateSpec {
    GenerateSpec {
        prompt: prompt.into(),
        max_new_tokens: Some(max_new_tokens),
        use_cache: Some(false),
        ..GenerateSpec::default()
    }
}

/// The spec with a constraint.
pub fn constrained(prompt: &str, max_new_tokens: usize, constraint: &Constraint) -> GenerateSpec {
    let mut s = spec(prompt, max_new_tokens);
    match constraint {
        Constraint::Json(v) => s.schema = Some(v.clone()),
        Constraint::Regex(r) => s.regex = Some(r.clone()),
        Constraint::Choice(c) => s.choices = Some(serde_json::json!(c)),
        Constraint::Grammar(g) => s.grammar = Some(g.clone()),
    }
    s
}

/// Collects streamed pieces.
#[derive(Default)]
pub struct Pieces(pub Vec<String>);

impl Sink for Pieces {
    fn piece(&mut self, text: &str) -> bool {
        self.0.push(text.to_string());
        true
    }
}

/// Builds and runs a spec here with `threads` threads: the text, its summary, the pieces.
pub fn run_spec(spec: Spec, threads: i32) -> steadytext::Result<(Output, Vec<String>)> {
    let request = spec.build(&builder())?;
    run(request, threads)
}

/// Runs a request here with `threads` threads, streaming.
pub fn run(request: Request, threads: i32) -> steadytext::Result<(Output, Vec<String>)> {
    let mut pieces = Pieces::default();
    let output = execute::run(&Local::new(threads), request, true, &mut pieces)?;
    Ok((output, pieces.0))
}

/// The text and summary of a generation.
pub fn generate(spec: GenerateSpec) -> steadytext::Result<(String, Summary)> {
    generate_threads(spec, 2)
}

/// The text and summary of a generation with `threads` threads.
pub fn generate_threads(spec: GenerateSpec, threads: i32) -> steadytext::Result<(String, Summary)> {
    match run_spec(Spec::Generate(spec), threads)?.0 {
        Output::Text { text, summary } => Ok((text, summary)),
        other => panic!("not text: {other:?}"),
    }
}

/// Just the text.
pub fn text(prompt: &str, max_new_tokens: usize) -> String {
    generate(spec(prompt, max_new_tokens)).unwrap().0
}

/// Embeddings of `texts` (one each) in `mode`.
pub fn embed_with(texts: &[&str], mode: &str, threads: i32) -> Vec<Vec<f32>> {
    let spec = EmbedSpec {
        texts: Some(texts.iter().map(|t| t.to_string()).collect()),
        mode: Some(mode.into()),
        use_cache: Some(false),
        model: Some(embedding_model_path().display().to_string()),
        ..EmbedSpec::default()
    };
    run_spec(Spec::Embed(spec), threads)
        .unwrap()
        .0
        .into_embeddings()
        .unwrap()
}

/// One text's embedding in query mode.
pub fn embed(text: &str) -> Vec<f32> {
    embed_with(&[text], "query", 2).remove(0)
}

/// Scores of `documents` for `query` under `task` on `model`.
pub fn rerank(model: &ModelRef, query: &str, documents: &[&str], task: &str) -> Vec<Scored> {
    let spec = RerankSpec {
        query: query.into(),
        documents: serde_json::json!(documents),
        task: Some(task.into()),
        model: Some(model.path.display().to_string()),
        use_cache: Some(false),
        ..RerankSpec::default()
    };
    run_spec(Spec::Rerank(spec), 2)
        .unwrap()
        .0
        .into_ranked()
        .unwrap()
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
