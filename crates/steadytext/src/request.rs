//! Requests: how a caller's parameters become one typed, validated value that every route
//! (backend, daemon, queue workers, `st`) runs the same way.
//!
//! A `*Spec` is the wire form: SteadyText's parameter names, every field optional except the
//! input, plus the resolved model (`model_ref`) when the sender resolved it. [`Builder::build`]
//! fills defaults, checks limits and the constraint, resolves the model, and returns a
//! [`Request`]; `Request::spec` gives the wire form back. Building is the only way to make a
//! request, so the checks run once, in one place, in one order.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache_key;
use crate::defaults::{self, Limits};
use crate::embed::EmbedMode;
use crate::error::{Error, ErrorKind, Result};
use crate::generate::GenerateParams;
use crate::model_ref::{ModelRef, Resolver};
use crate::registry::{self, ModelChoice};
use crate::remote::{RemoteModel, RemoteRequest, RemoteTask};
use crate::role::Role;
use crate::store::{self, Fetch, PathPolicy};
use crate::structured::Constraint;

/// `generate` and `generate_iter` parameters, as SteadyText's client sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateSpec {
    /// The prompt.
    pub prompt: String,
    /// Output budget; the default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    /// Sampler seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// 0 is greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// An extra stop string, `[EOS]` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_string: Option<String>,
    /// Model choice: registry name, file name or path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Hugging Face repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_repo: Option<String>,
    /// File in the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_filename: Option<String>,
    /// mini, small, large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// SteadyText's logprobs flag: accepted, answered without logprobs (as SteadyText does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub return_logprobs: bool,
    /// Structured output: a JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Structured output: a regular expression matched in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Structured output: one of these strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Value>,
    /// Structured output: a Lark grammar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<String>,
    /// The model as the sender resolved it (new; only trusted senders may send one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ref: Option<ModelRef>,
    /// Whether caches may answer or keep the result (new; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cache: Option<bool>,
    /// Remote providers need it (SteadyText's flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsafe_mode: Option<bool>,
}

/// `embed` parameters: one text, or a list averaged into one vector (SteadyText's), and
/// `embed_batch`'s `texts`, one vector each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedSpec {
    /// A string or a list of strings (`embed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_input: Option<Value>,
    /// The texts (`embed_batch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<Vec<String>>,
    /// Accepted and ignored: the seed does not change local embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Registry name, file name or path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `query` or `passage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The model as the sender resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ref: Option<ModelRef>,
    /// Whether caches may answer or keep the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cache: Option<bool>,
    /// Remote providers need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsafe_mode: Option<bool>,
}

/// `rerank` parameters, as SteadyText's client sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RerankSpec {
    /// The query.
    pub query: String,
    /// A string or a list of strings.
    pub documents: Value,
    /// The instruction; SteadyText's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// `[[doc, score], ...]` when true (the default), `[doc, ...]` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_scores: Option<bool>,
    /// Accepted and ignored: scores come from logits, not sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Registry name, file name or path of the reranking model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The model as the sender resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ref: Option<ModelRef>,
    /// Whether caches may answer or keep the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cache: Option<bool>,
}

/// A generation, complete and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: String,
    /// Budget and sampling.
    pub params: GenerateParams,
    /// A constraint on the output.
    pub constraint: Option<Constraint>,
    /// The model.
    pub model: ModelRef,
    /// Whether caches may answer or keep the result.
    pub use_cache: bool,
}

/// How several embedded texts are returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// One vector per text.
    Each,
    /// One vector, the normalised mean of the non-empty texts' (SteadyText's list form).
    Average,
}

/// Embeddings, complete and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    /// The texts (empty ones give the zero vector).
    pub texts: Vec<String>,
    /// One vector each, or their mean.
    pub combine: Combine,
    /// Query or passage.
    pub mode: EmbedMode,
    /// The model.
    pub model: ModelRef,
    /// Whether caches may answer or keep the result.
    pub use_cache: bool,
}

/// A reranking, complete and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankRequest {
    /// The query.
    pub query: String,
    /// The documents, in input order.
    pub documents: Vec<String>,
    /// The instruction.
    pub task: String,
    /// The model.
    pub model: ModelRef,
    /// Whether caches may answer or keep the result.
    pub use_cache: bool,
}

/// Any request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Text, plain or constrained.
    Generate(GenerateRequest),
    /// Embeddings.
    Embed(EmbedRequest),
    /// Document scores.
    Rerank(RerankRequest),
}

/// Any spec: what a method's parameters say.
#[derive(Debug, Clone, PartialEq)]
// Built once per request and moved a few times: boxing the generation variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Spec {
    /// `generate`, `generate_iter`.
    Generate(GenerateSpec),
    /// `embed` (`text_input`), `embed_batch` (`texts`).
    Embed(EmbedSpec),
    /// `rerank`.
    Rerank(RerankSpec),
}

impl Spec {
    /// Reads a method's parameters.
    pub fn parse(method: &str, params: Value) -> Result<Spec> {
        let bad =
            |e: serde_json::Error| Error::invalid(format!("invalid parameters for {method}: {e}"));
        Ok(match method {
            "generate" | "generate_iter" => {
                Spec::Generate(serde_json::from_value(params).map_err(bad)?)
            }
            "embed" | "embed_batch" => Spec::Embed(serde_json::from_value(params).map_err(bad)?),
            "rerank" => Spec::Rerank(serde_json::from_value(params).map_err(bad)?),
            other => return Err(Error::invalid(format!("Unknown method: {other}"))),
        })
    }

    /// The daemon method that runs it.
    pub fn method(&self, streaming: bool) -> &'static str {
        match self {
            Spec::Generate(_) if streaming => "generate_iter",
            Spec::Generate(_) => "generate",
            Spec::Embed(spec) if spec.texts.is_some() => "embed_batch",
            Spec::Embed(_) => "embed",
            Spec::Rerank(_) => "rerank",
        }
    }

    /// Every text of the request a model would read: the prompt, the embedded texts, the query
    /// and the documents (for checks that apply to all of them, like a deny pattern).
    pub fn texts(&self) -> Vec<&str> {
        fn strings(v: &Value) -> Vec<&str> {
            match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            }
        }
        match self {
            Spec::Generate(s) => vec![s.prompt.as_str()],
            Spec::Embed(s) => {
                let mut texts: Vec<&str> = s.text_input.as_ref().map(strings).unwrap_or_default();
                texts.extend(s.texts.iter().flatten().map(String::as_str));
                texts
            }
            Spec::Rerank(s) => {
                let mut texts = vec![s.query.as_str()];
                texts.extend(s.task.as_deref());
                texts.extend(strings(&s.documents));
                texts
            }
        }
    }

    /// The parameters as JSON.
    pub fn params(&self) -> Value {
        let value = match self {
            Spec::Generate(s) => serde_json::to_value(s),
            Spec::Embed(s) => serde_json::to_value(s),
            Spec::Rerank(s) => serde_json::to_value(s),
        };
        value.unwrap_or(Value::Null)
    }

    /// Builds the request as `builder`'s route builds requests.
    pub fn build(self, builder: &Builder) -> Result<Request> {
        Ok(match self {
            Spec::Generate(s) => Request::Generate(builder.generate(s)?),
            Spec::Embed(s) => Request::Embed(builder.embed(s)?),
            Spec::Rerank(s) => Request::Rerank(builder.rerank(s)?),
        })
    }
}

/// The models a route uses when a request names none: a registry name or path per role, set by
/// the operator (trusted, whatever the caller may name), else the process defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultModels {
    /// Generation.
    pub generation: Option<String>,
    /// Embeddings.
    pub embedding: Option<String>,
    /// Reranking.
    pub reranking: Option<String>,
}

impl DefaultModels {
    fn get(&self, role: Role) -> Option<&str> {
        match role {
            Role::Generation => self.generation.as_deref(),
            Role::Embedding => self.embedding.as_deref(),
            Role::Reranking => self.reranking.as_deref(),
        }
    }
}

/// How one route builds requests: what its callers may name, its limits and defaults.
#[derive(Debug, Clone)]
pub struct Builder {
    /// Which model names the caller may use.
    pub policy: PathPolicy,
    /// Whether a missing registry model may be downloaded.
    pub fetch: Fetch,
    /// Bounds on the input.
    pub limits: Limits,
    /// The models used when a request names none.
    pub defaults: DefaultModels,
    /// Whether a `model_ref` from the sender is used as it is (the sender resolved it).
    pub trust_model_ref: bool,
}

impl Default for Builder {
    /// The command line's: any path, downloads when the environment allows, default limits.
    fn default() -> Self {
        Builder {
            policy: PathPolicy::Any,
            fetch: Fetch::IfAllowed,
            limits: Limits::default(),
            defaults: DefaultModels::default(),
            trust_model_ref: true,
        }
    }
}

/// Names of the limits, as settings: the same in SQL, the daemon and the CLI's messages.
pub const MAX_PROMPT_LENGTH: &str = "steadytext.max_prompt_length";
/// See [`MAX_PROMPT_LENGTH`].
pub const MAX_TOKENS_LIMIT: &str = "steadytext.max_tokens_limit";
/// See [`MAX_PROMPT_LENGTH`].
pub const MAX_BATCH_SIZE: &str = "steadytext.max_batch_size";
/// See [`MAX_PROMPT_LENGTH`].
pub const MAX_REQUEST_LENGTH: &str = "steadytext.max_request_length";

impl Builder {
    /// Checks a text's length against the limit, without counting a huge text's characters.
    pub fn check_length(&self, what: &str, text: &str) -> Result<()> {
        let limit = self.limits.max_prompt_length;
        // A character takes at most 4 bytes: a text this long cannot fit, whatever it holds.
        if text.len() / 4 > limit {
            return Err(Error::limit(
                &format!("the {what} has at least {} characters", text.len() / 4),
                limit,
                MAX_PROMPT_LENGTH,
            ));
        }
        let chars = text.chars().count();
        if chars > limit {
            return Err(Error::limit(
                &format!("the {what} has {chars} characters"),
                limit,
                MAX_PROMPT_LENGTH,
            ));
        }
        Ok(())
    }

    /// Checks the characters of all of a request's texts together (each already checked on its
    /// own, so the bytes bound the count as in [`Builder::check_length`]).
    pub fn check_total<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let limit = self.limits.max_request_length;
        let texts: Vec<&str> = texts.into_iter().collect();
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        if bytes <= limit {
            return Ok(());
        }
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        if chars > limit {
            return Err(Error::limit(
                &format!("the request has {chars} characters in all"),
                limit,
                MAX_REQUEST_LENGTH,
            ));
        }
        Ok(())
    }

    /// Checks the names a caller gives for a model (each a text like any other).
    fn check_choice(&self, choice: &ModelChoice) -> Result<()> {
        for (what, value) in [
            ("model", &choice.model),
            ("model_repo", &choice.repo),
            ("model_filename", &choice.filename),
            ("size", &choice.size),
        ] {
            if let Some(value) = value {
                self.check_length(what, value)?;
            }
        }
        Ok(())
    }

    /// Checks a batch's size.
    pub fn check_batch(&self, what: &str, n: usize) -> Result<()> {
        if n > self.limits.max_batch_size {
            return Err(Error::limit(
                &format!("the batch has {n} {what}"),
                self.limits.max_batch_size,
                MAX_BATCH_SIZE,
            ));
        }
        Ok(())
    }

    /// The model for `role`: the sender's `model_ref` when trusted, else the caller's choice
    /// under this route's policy, else this route's default (trusted).
    pub fn model(
        &self,
        model_ref: Option<&ModelRef>,
        choice: &ModelChoice,
        role: Role,
    ) -> Result<ModelRef> {
        if let Some(sent) = model_ref {
            return self.accept_model_ref(sent, role);
        }
        if let Some(remote) = choice.model.as_deref().filter(|m| is_remote(m)) {
            return Err(remote_not_local(remote));
        }
        if !choice.is_empty() {
            let resolver = Resolver {
                policy: self.policy,
                fetch: self.fetch,
            };
            return resolver.resolve(choice, role);
        }
        let trusted = Resolver {
            policy: PathPolicy::Any,
            fetch: self.fetch,
        };
        match self.defaults.get(role) {
            Some(name) => trusted.resolve_source(&registry::named_source(name, role)?, role),
            None => trusted.resolve_source(&registry::default_source(role)?, role),
        }
    }

    fn accept_model_ref(&self, sent: &ModelRef, role: Role) -> Result<ModelRef> {
        if !self.trust_model_ref {
            return Err(Error::forbidden(
                "this client may not name model files: send a model name (model_ref is for \
                 authorised clients)",
            ));
        }
        if sent.role != role {
            return Err(Error::invalid(format!(
                "model_ref is a {} model, this request needs a {} model",
                sent.role.as_str(),
                role.as_str()
            )));
        }
        if !sent.path.is_file() {
            return Err(Error::new(
                ErrorKind::ModelMissing,
                format!("model file {} does not exist here", sent.path.display()),
            ));
        }
        // The sender's sha256 keys caches: it must be this file's.
        let sha256 = store::sha256_of(&sent.path)?;
        if sha256 != sent.sha256 {
            return Err(Error::invalid(format!(
                "model file {} has sha256 {sha256} here, not {} as the sender has it",
                sent.path.display(),
                sent.sha256
            )));
        }
        Ok(sent.clone())
    }

    /// Checks `choice` against the policy without touching files (what a queue worker on
    /// another host will resolve), or the sender's `model_ref` against trust.
    fn check_model_name(
        &self,
        model_ref: Option<&ModelRef>,
        choice: &ModelChoice,
        role: Role,
    ) -> Result<()> {
        if model_ref.is_some() && !self.trust_model_ref {
            return Err(Error::forbidden(
                "this client may not name model files: send a model name (model_ref is for \
                 authorised clients)",
            ));
        }
        if choice.model.as_deref().is_some_and(is_remote) {
            return Ok(()); // checked by check_remote; resolved by `model` or `remote`
        }
        if model_ref.is_none() && !choice.is_empty() {
            store::check_policy(&registry::resolve(choice, role)?, self.policy)?;
        }
        Ok(())
    }

    /// Checks a generation without resolving its model.
    fn check_generate(&self, spec: &GenerateSpec) -> Result<(GenerateParams, Option<Constraint>)> {
        check_prompt(&spec.prompt)?;
        let seed = match spec.seed {
            None => defaults::SEED,
            Some(s) if s < 0 => return Err(Error::invalid("seed must be non-negative")),
            Some(s) => u32::try_from(s).map_err(|_| {
                Error::invalid(format!("seed must be at most {}, got {s}", u32::MAX))
            })?,
        };
        let constraint = constraint(spec)?;
        check_remote(spec.model.as_deref(), spec.unsafe_mode.unwrap_or(false))?;
        // The Python extension's gates, in its order (SteadyText refuses this flag without a
        // model too): the flag lets a remote model in and means nothing without one.
        if spec.unsafe_mode == Some(true) && spec.model.is_none() {
            return Err(Error::invalid(
                "unsafe_mode=TRUE requires a model parameter",
            ));
        }
        let max_new_tokens = spec.max_new_tokens.unwrap_or(defaults::MAX_NEW_TOKENS);
        if max_new_tokens < 1 {
            // The text of the Python extension's old limit check, word for word.
            return Err(Error::invalid("max_tokens must be at least 1"));
        }
        if max_new_tokens > self.limits.max_tokens {
            return Err(Error::limit(
                &format!("max_tokens is {max_new_tokens}"),
                self.limits.max_tokens,
                MAX_TOKENS_LIMIT,
            ));
        }
        let temperature = spec.temperature.unwrap_or(defaults::TEMPERATURE);
        if !temperature.is_finite() || !defaults::TEMPERATURE_RANGE.contains(&temperature) {
            return Err(Error::invalid(format!(
                "temperature must be between {} and {}, got {temperature}",
                defaults::TEMPERATURE_RANGE.start(),
                defaults::TEMPERATURE_RANGE.end()
            )));
        }
        self.check_length("prompt", &spec.prompt)?;
        if let Some(eos) = &spec.eos_string {
            self.check_length("eos_string", eos)?;
        }
        let choice = generate_choice(spec);
        self.check_choice(&choice)?;
        if let Some(c) = &constraint {
            c.check()?;
        }
        let constraint_text = constraint.as_ref().map(Constraint::key);
        self.check_total(
            [
                Some(spec.prompt.as_str()),
                spec.eos_string.as_deref(),
                constraint_text.as_deref(),
            ]
            .into_iter()
            .flatten(),
        )?;
        self.check_model_name(spec.model_ref.as_ref(), &choice, Role::Generation)?;
        let params = GenerateParams {
            max_new_tokens,
            seed,
            temperature,
            eos_string: spec
                .eos_string
                .clone()
                .unwrap_or_else(|| defaults::EOS_SENTINEL.to_string()),
        };
        Ok((params, constraint))
    }

    /// Builds a generation.
    pub fn generate(&self, spec: GenerateSpec) -> Result<GenerateRequest> {
        let (params, constraint) = self.check_generate(&spec)?;
        let model = self.model(
            spec.model_ref.as_ref(),
            &generate_choice(&spec),
            Role::Generation,
        )?;
        Ok(GenerateRequest {
            prompt: spec.prompt,
            params,
            constraint,
            model,
            use_cache: spec.use_cache.unwrap_or(true),
        })
    }

    /// Checks embeddings without resolving the model; the texts and how they combine.
    fn check_embed(&self, spec: &EmbedSpec) -> Result<(Vec<String>, Combine, EmbedMode)> {
        let (texts, combine) = match (&spec.texts, &spec.text_input) {
            (Some(texts), None) => (texts.clone(), Combine::Each),
            (None, Some(Value::String(s))) => (vec![s.clone()], Combine::Each),
            (None, Some(Value::Array(items))) => {
                let texts = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        Error::invalid("text_input must be a string or a list of strings")
                    })?;
                (texts, Combine::Average)
            }
            _ => {
                return Err(Error::invalid(
                    "give text_input (a string or a list of strings) or texts",
                ))
            }
        };
        check_remote(spec.model.as_deref(), spec.unsafe_mode.unwrap_or(false))?;
        self.check_batch("texts", texts.len())?;
        for text in &texts {
            self.check_length("text", text)?;
        }
        self.check_total(texts.iter().map(String::as_str))?;
        self.check_choice(&ModelChoice::named(spec.model.as_deref()))?;
        let mode = match spec.mode.as_deref() {
            Some(m) => m.parse()?,
            None => EmbedMode::from_env(),
        };
        self.check_model_name(
            spec.model_ref.as_ref(),
            &ModelChoice::named(spec.model.as_deref()),
            Role::Embedding,
        )?;
        Ok((texts, combine, mode))
    }

    /// Builds embeddings (`embed`'s text or list, or `embed_batch`'s texts).
    pub fn embed(&self, spec: EmbedSpec) -> Result<EmbedRequest> {
        let (texts, combine, mode) = self.check_embed(&spec)?;
        let model = self.model(
            spec.model_ref.as_ref(),
            &ModelChoice::named(spec.model.as_deref()),
            Role::Embedding,
        )?;
        Ok(EmbedRequest {
            texts,
            combine,
            mode,
            model,
            use_cache: spec.use_cache.unwrap_or(true),
        })
    }

    /// Checks a reranking without resolving the model; the documents and the task.
    fn check_rerank(&self, spec: &RerankSpec) -> Result<(Vec<String>, String)> {
        let documents: Vec<String> = match &spec.documents {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::invalid("documents must be a string or a list of strings"))?,
            _ => {
                return Err(Error::invalid(
                    "documents must be a string or a list of strings",
                ))
            }
        };
        if spec.query.trim().is_empty() {
            return Err(Error::invalid("Query cannot be empty"));
        }
        self.check_length("query", &spec.query)?;
        self.check_batch("documents", documents.len())?;
        for document in &documents {
            self.check_length("document", document)?;
        }
        let task = spec
            .task
            .clone()
            .unwrap_or_else(|| defaults::RERANK_TASK.to_string());
        self.check_length("task", &task)?;
        self.check_total(
            [spec.query.as_str(), task.as_str()]
                .into_iter()
                .chain(documents.iter().map(String::as_str)),
        )?;
        self.check_choice(&ModelChoice::named(spec.model.as_deref()))?;
        self.check_model_name(
            spec.model_ref.as_ref(),
            &ModelChoice::named(spec.model.as_deref()),
            Role::Reranking,
        )?;
        Ok((documents, task))
    }

    /// Builds a reranking.
    pub fn rerank(&self, spec: RerankSpec) -> Result<RerankRequest> {
        let (documents, task) = self.check_rerank(&spec)?;
        let model = self.model(
            spec.model_ref.as_ref(),
            &ModelChoice::named(spec.model.as_deref()),
            Role::Reranking,
        )?;
        Ok(RerankRequest {
            query: spec.query,
            documents,
            task,
            model,
            use_cache: spec.use_cache.unwrap_or(true),
        })
    }

    /// The remote request `spec` asks for, checked like a local one, or `None` when its model
    /// is local. Generation and embeddings only; of the constraints, a JSON schema (sent as
    /// `response_format`).
    pub fn remote(&self, spec: &Spec) -> Result<Option<RemoteRequest>> {
        let model = match spec {
            Spec::Generate(s) => s.model.as_deref(),
            Spec::Embed(s) => s.model.as_deref(),
            Spec::Rerank(_) => None,
        };
        let Some(model) = model.filter(|m| is_remote(m)) else {
            return Ok(None);
        };
        let task = match spec {
            Spec::Generate(s) => {
                let (params, constraint) = self.check_generate(s)?;
                if constraint
                    .as_ref()
                    .is_some_and(|c| !matches!(c, Constraint::Json(_)))
                {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "a remote model takes a JSON schema as its only constraint (regex, \
                         choices and grammars need a local model)",
                    ));
                }
                RemoteTask::Generate {
                    prompt: s.prompt.clone(),
                    params,
                    constraint,
                }
            }
            Spec::Embed(s) => {
                let (texts, combine, _) = self.check_embed(s)?;
                if combine == Combine::Average {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "a remote model embeds texts one vector each (no averaged list)",
                    ));
                }
                RemoteTask::Embed { texts }
            }
            Spec::Rerank(_) => unreachable!("rerank names no remote model"),
        };
        Ok(Some(RemoteRequest {
            model: RemoteModel::parse(model)?,
            task,
        }))
    }

    /// Checks `spec` as building it would, except that the model file is not located (it may
    /// live on another host: a queued request is checked when it is queued, and resolved where
    /// it runs).
    pub fn check(&self, spec: &Spec) -> Result<()> {
        match spec {
            Spec::Generate(s) => self.check_generate(s).map(drop),
            Spec::Embed(s) => self.check_embed(s).map(drop),
            Spec::Rerank(s) => self.check_rerank(s).map(drop),
        }
    }
}

fn generate_choice(spec: &GenerateSpec) -> ModelChoice {
    ModelChoice {
        model: spec.model.clone(),
        repo: spec.model_repo.clone(),
        filename: spec.model_filename.clone(),
        size: spec.size.clone(),
    }
}

/// The one constraint a spec asks for, if any.
fn constraint(spec: &GenerateSpec) -> Result<Option<Constraint>> {
    let mut found = Vec::new();
    if let Some(schema) = &spec.schema {
        found.push(Constraint::Json(schema.clone()));
    }
    if let Some(regex) = &spec.regex {
        found.push(Constraint::Regex(regex.clone()));
    }
    if let Some(choices) = &spec.choices {
        let list: Vec<String> = serde_json::from_value(choices.clone())
            .map_err(|_| Error::invalid("choices must be a list of strings"))?;
        found.push(Constraint::Choice(list));
    }
    if let Some(grammar) = &spec.grammar {
        found.push(Constraint::Grammar(grammar.clone()));
    }
    if found.len() > 1 {
        return Err(Error::invalid(
            "only one of schema, regex, choices and grammar may be given",
        ));
    }
    Ok(found.pop())
}

/// A prompt's first check, the Python extension's: not blank. Callers that check other
/// arguments before building the request (the SQL functions check a constraint's presence) call
/// it first, so the order is the Python extension's.
pub fn check_prompt(prompt: &str) -> Result<()> {
    if prompt.trim().is_empty() {
        return Err(Error::invalid("Prompt cannot be empty"));
    }
    Ok(())
}

/// A model name with a ':' is a remote provider (`openai:gpt-4o-mini`): SteadyText's gate.
pub fn check_remote(model: Option<&str>, unsafe_mode: bool) -> Result<()> {
    if model.is_some_and(is_remote) && !unsafe_mode {
        return Err(Error::invalid(
            "Remote models (containing ':' ) require unsafe_mode=TRUE",
        ));
    }
    Ok(())
}

/// The error for a remote model that reached local model resolution.
fn remote_not_local(model: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "remote model '{model}' is not run locally: it is sent to an OpenAI-compatible \
             endpoint only where one is configured (in PostgreSQL, steadytext.remote_base_url, \
             set by a superuser); otherwise name a registry model or a GGUF path"
        ),
    )
}

pub fn is_remote(model: &str) -> bool {
    model.contains(':') && !model.starts_with('/') && !model.starts_with('~')
}

impl GenerateRequest {
    /// The wire form, with the resolved model.
    pub fn spec(&self) -> GenerateSpec {
        let mut spec = GenerateSpec {
            prompt: self.prompt.clone(),
            max_new_tokens: Some(self.params.max_new_tokens),
            seed: Some(i64::from(self.params.seed)),
            temperature: Some(self.params.temperature),
            eos_string: Some(self.params.eos_string.clone()),
            model_ref: Some(self.model.clone()),
            use_cache: Some(self.use_cache),
            ..GenerateSpec::default()
        };
        match &self.constraint {
            Some(Constraint::Json(schema)) => spec.schema = Some(schema.clone()),
            Some(Constraint::Regex(pattern)) => spec.regex = Some(pattern.clone()),
            Some(Constraint::Choice(choices)) => spec.choices = Some(Value::from(choices.clone())),
            Some(Constraint::Grammar(grammar)) => spec.grammar = Some(grammar.clone()),
            None => {}
        }
        spec
    }

    /// The cache key, or `None` when the request opted out of caching.
    pub fn cache_key(&self) -> Option<String> {
        self.use_cache.then(|| match &self.constraint {
            Some(c) => cache_key::structured(
                &self.model.sha256,
                &self.prompt,
                self.params.max_new_tokens,
                self.params.seed,
                self.params.temperature,
                &c.key(),
            ),
            None => cache_key::generation(
                &self.model.sha256,
                &self.prompt,
                self.params.max_new_tokens,
                self.params.seed,
                self.params.temperature,
                &self.params.eos_string,
            ),
        })
    }
}

impl EmbedRequest {
    /// The wire form (`embed_batch`'s), with the resolved model. An averaged request keeps
    /// SteadyText's `text_input` list.
    pub fn spec(&self) -> EmbedSpec {
        let (text_input, texts) = match self.combine {
            Combine::Each => (None, Some(self.texts.clone())),
            Combine::Average => (Some(Value::from(self.texts.clone())), None),
        };
        EmbedSpec {
            text_input,
            texts,
            mode: Some(self.mode.as_str().to_string()),
            model_ref: Some(self.model.clone()),
            use_cache: Some(self.use_cache),
            ..EmbedSpec::default()
        }
    }

    /// The cache key of one text, or `None` when the request opted out of caching.
    pub fn cache_key(&self, text: &str) -> Option<String> {
        self.use_cache
            .then(|| cache_key::embedding(&self.model.sha256, self.mode.as_str(), text))
    }
}

impl RerankRequest {
    /// The wire form, with the resolved model.
    pub fn spec(&self) -> RerankSpec {
        RerankSpec {
            query: self.query.clone(),
            documents: Value::from(self.documents.clone()),
            task: Some(self.task.clone()),
            return_scores: Some(true),
            model_ref: Some(self.model.clone()),
            use_cache: Some(self.use_cache),
            ..RerankSpec::default()
        }
    }

    /// The cache key of one document's score, or `None` when the request opted out of caching.
    pub fn cache_key(&self, document: &str) -> Option<String> {
        self.use_cache
            .then(|| cache_key::rerank(&self.model.sha256, &self.query, document, &self.task))
    }
}

impl Request {
    /// The wire form, with the resolved model.
    pub fn spec(&self) -> Spec {
        match self {
            Request::Generate(r) => Spec::Generate(r.spec()),
            Request::Embed(r) => Spec::Embed(r.spec()),
            Request::Rerank(r) => Spec::Rerank(r.spec()),
        }
    }

    /// The model it runs on.
    pub fn model(&self) -> &ModelRef {
        match self {
            Request::Generate(r) => &r.model,
            Request::Embed(r) => &r.model,
            Request::Rerank(r) => &r.model,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> Builder {
        Builder {
            limits: Limits {
                max_prompt_length: 10,
                max_tokens: 1000,
                max_batch_size: 3,
                max_request_length: 25,
            },
            ..Builder::default()
        }
    }

    fn prompt(p: &str) -> GenerateSpec {
        GenerateSpec {
            prompt: p.into(),
            ..GenerateSpec::default()
        }
    }

    #[test]
    fn checks_come_in_the_sql_functions_order_with_their_texts() {
        let b = builder();
        let e = |spec: GenerateSpec| b.generate(spec).unwrap_err().to_string();
        assert_eq!(e(prompt("  ")), "Prompt cannot be empty");
        assert_eq!(
            e(GenerateSpec {
                seed: Some(-1),
                ..prompt("hi")
            }),
            "seed must be non-negative"
        );
        assert_eq!(
            e(GenerateSpec {
                model: Some("openai:gpt-4o-mini".into()),
                ..prompt("hi")
            }),
            "Remote models (containing ':' ) require unsafe_mode=TRUE"
        );
        assert_eq!(
            e(GenerateSpec {
                unsafe_mode: Some(true),
                ..prompt("hi")
            }),
            "unsafe_mode=TRUE requires a model parameter"
        );
        assert_eq!(
            e(GenerateSpec {
                unsafe_mode: Some(true),
                seed: Some(-1),
                ..prompt("hi")
            }),
            "seed must be non-negative"
        );
        assert_eq!(
            e(GenerateSpec {
                max_new_tokens: Some(0),
                ..prompt("hi")
            }),
            "max_tokens must be at least 1"
        );
    }

    #[test]
    fn limits_name_their_setting_before_any_tokenizing() {
        let b = builder();
        let long = b.generate(prompt("x".repeat(11).as_str())).unwrap_err();
        assert_eq!(long.kind(), ErrorKind::LimitExceeded);
        assert!(long.to_string().contains(MAX_PROMPT_LENGTH), "{long}");
        let huge = b.generate(prompt(&"x".repeat(20 << 20))).unwrap_err();
        assert!(huge.to_string().contains(MAX_PROMPT_LENGTH), "{huge}");
        let many = b
            .generate(GenerateSpec {
                max_new_tokens: Some(1001),
                ..prompt("hi")
            })
            .unwrap_err();
        assert!(many.to_string().contains(MAX_TOKENS_LIMIT), "{many}");
        let batch = b
            .embed(EmbedSpec {
                texts: Some(vec!["a".into(); 4]),
                ..EmbedSpec::default()
            })
            .unwrap_err();
        assert!(batch.to_string().contains(MAX_BATCH_SIZE), "{batch}");
    }

    #[test]
    fn every_text_of_a_request_is_bounded_and_so_is_their_sum() {
        let b = builder();
        let ten = "x".repeat(10);
        let eos = b
            .generate(GenerateSpec {
                eos_string: Some("y".repeat(11)),
                ..prompt("hi")
            })
            .unwrap_err();
        assert!(eos.to_string().contains("the eos_string has 11"), "{eos}");
        let name = b
            .generate(GenerateSpec {
                model_filename: Some("m".repeat(11)),
                ..prompt("hi")
            })
            .unwrap_err();
        assert!(name.to_string().contains("model_filename"), "{name}");
        // Three documents of 10 with a query and task each within their own limit: 30 + more
        // than the 25 of the whole request.
        let rerank = b
            .rerank(RerankSpec {
                query: "q".into(),
                documents: serde_json::json!([ten, ten, ten]),
                task: Some("t".into()),
                ..RerankSpec::default()
            })
            .unwrap_err();
        assert_eq!(rerank.kind(), ErrorKind::LimitExceeded);
        assert!(rerank.to_string().contains(MAX_REQUEST_LENGTH), "{rerank}");
        let batch = b
            .embed(EmbedSpec {
                texts: Some(vec![ten.clone(), ten.clone(), ten.clone()]),
                ..EmbedSpec::default()
            })
            .unwrap_err();
        assert!(
            batch.to_string().contains("30 characters in all"),
            "{batch}"
        );
        let within = b.check(&Spec::Embed(EmbedSpec {
            texts: Some(vec![ten.clone(), ten]),
            ..EmbedSpec::default()
        }));
        assert!(within.is_ok(), "{within:?}");
    }

    #[test]
    fn one_constraint_at_most_and_it_is_checked() {
        let b = builder();
        let two = b
            .generate(GenerateSpec {
                regex: Some("a".into()),
                grammar: Some("start: \"a\"".into()),
                ..prompt("hi")
            })
            .unwrap_err();
        assert!(two.to_string().contains("only one of"), "{two}");
        let bad = b
            .generate(GenerateSpec {
                regex: Some("(a)\\1".into()),
                ..prompt("hi")
            })
            .unwrap_err();
        assert!(
            bad.to_string().starts_with("Invalid regex pattern"),
            "{bad}"
        );
    }

    #[test]
    fn untrusted_senders_cannot_name_files() {
        let b = Builder {
            trust_model_ref: false,
            ..builder()
        };
        let sent = ModelRef {
            path: "/etc/passwd".into(),
            sha256: "x".into(),
            role: Role::Generation,
            n_ctx: 10,
        };
        let e = b
            .generate(GenerateSpec {
                model_ref: Some(sent),
                ..prompt("hi")
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
    }
}
