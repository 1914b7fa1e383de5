//! The inference thread: runs one request at a time through the library, with the L1 cache in
//! front of it, and reports back to the main loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use serde_json::{json, Value};
use steadytext::cache::{self, FrecencyCache, Kind};
use steadytext::protocol::{
    EmbedBatchRequest, EmbedRequest, GenerateRequest, RerankRequest, Response, STREAM_END,
};
use steadytext::rerank::QueryScorer;
use steadytext::store::Fetch;
use steadytext::{cache_key, EmbedMode, Engine, GenerateParams, Model, ModelChoice, Role};

use super::server::Outgoing;

/// The channel to the main loop, plus the socket that wakes it.
struct Bell {
    out: Sender<Outgoing>,
    bell: zmq::Socket,
}

impl Bell {
    fn send(&self, message: Outgoing) -> Result<(), ()> {
        self.out.send(message).map_err(|_| ())?;
        let _ = self.bell.send(&b""[..], zmq::DONTWAIT);
        Ok(())
    }
}

/// A request handed to the inference thread.
pub struct Job {
    /// The client's ZeroMQ identity.
    pub identity: Vec<u8>,
    /// The request id.
    pub id: String,
    /// What to do.
    pub work: Work,
    /// Set by `cancel` (or an abandoned stream): stop between tokens.
    pub cancel: Arc<AtomicBool>,
}

/// The kinds of model work.
pub enum Work {
    /// `generate`.
    Generate(GenerateRequest),
    /// `generate_iter`.
    Stream(GenerateRequest),
    /// `embed`.
    Embed(EmbedRequest),
    /// `embed_batch`.
    EmbedBatch(EmbedBatchRequest),
    /// `rerank`.
    Rerank(RerankRequest),
}

impl Work {
    /// Reads a method's parameters.
    pub fn parse(method: &str, params: Value) -> Result<Work, String> {
        let bad = |e: serde_json::Error| format!("invalid parameters for {method}: {e}");
        Ok(match method {
            "generate" => Work::Generate(serde_json::from_value(params).map_err(bad)?),
            "generate_iter" => Work::Stream(serde_json::from_value(params).map_err(bad)?),
            "embed" => Work::Embed(serde_json::from_value(params).map_err(bad)?),
            "embed_batch" => Work::EmbedBatch(serde_json::from_value(params).map_err(bad)?),
            "rerank" => Work::Rerank(serde_json::from_value(params).map_err(bad)?),
            other => return Err(format!("Unknown method: {other}")),
        })
    }
}

/// Owns the cache; the models live in the process-wide engine.
pub struct Worker {
    threads: i32,
    cache: Option<FrecencyCache>,
}

impl Worker {
    /// A worker using `threads` llama.cpp threads per request. The cache is
    /// `<cache root>/caches/steadytext-rs.sqlite3` unless `STEADYTEXT_DISABLE_CACHE=1`.
    pub fn new(threads: i32) -> Self {
        let disabled = std::env::var("STEADYTEXT_DISABLE_CACHE").is_ok_and(|v| v == "1");
        let cache = if disabled {
            None
        } else {
            FrecencyCache::open(&cache::default_path())
                .map_err(|e| tracing::error!(error = %e, "cache unavailable; serving without it"))
                .ok()
        };
        Worker { threads, cache }
    }

    /// Loads the default generation and embedding models now, so the first request is fast.
    pub fn preload(&self) {
        for role in [Role::Generation, Role::Embedding] {
            if let Err(e) = Engine::global().model(&ModelChoice::default(), role, Fetch::IfAllowed)
            {
                tracing::warn!(?role, error = %e, "preload failed; the model loads on first use");
            }
        }
    }

    /// Loaded models with their files and sha256.
    pub fn models(&self) -> Value {
        Engine::global()
            .loaded()
            .iter()
            .map(|m| {
                json!({
                    "role": format!("{:?}", m.role()).to_lowercase(),
                    "path": m.path(),
                    "sha256": m.sha256().ok(),
                })
            })
            .collect()
    }

    /// Cache counters per kind.
    pub fn cache_stats(&self) -> Value {
        match &self.cache {
            None => json!(null),
            Some(cache) => {
                let kinds: serde_json::Map<String, Value> = Kind::ALL
                    .iter()
                    .map(|&k| (format!("{k:?}").to_lowercase(), json!(cache.stats(k))))
                    .collect();
                json!({ "path": cache.path(), "kinds": kinds })
            }
        }
    }

    /// Serves jobs until the main loop goes away; rings `bell` after each message it sends.
    pub fn serve(&self, jobs: Receiver<Job>, out: Sender<Outgoing>, bell: zmq::Socket) {
        let out = Bell { out, bell };
        self.serve_with(jobs, &out);
    }

    fn serve_with(&self, jobs: Receiver<Job>, out: &Bell) {
        for job in jobs {
            if job.cancel.load(Ordering::Relaxed) {
                let _ = out.send(Outgoing::Reply(
                    job.identity,
                    Response::err(&job.id, "cancelled"),
                ));
                continue;
            }
            let message = match &job.work {
                Work::Generate(req) => {
                    Outgoing::Reply(job.identity.clone(), self.generate(&job, req))
                }
                Work::Stream(req) => {
                    let end = self.stream(&job, req, out);
                    Outgoing::End(job.identity.clone(), end)
                }
                Work::Embed(req) => Outgoing::Reply(job.identity.clone(), self.embed(&job, req)),
                Work::EmbedBatch(req) => {
                    Outgoing::Reply(job.identity.clone(), self.embed_batch(&job, req))
                }
                Work::Rerank(req) => Outgoing::Reply(job.identity.clone(), self.rerank(&job, req)),
            };
            if out.send(message).is_err() {
                return;
            }
        }
    }

    fn generate(&self, job: &Job, req: &GenerateRequest) -> Response {
        let mut text = String::new();
        match self.run_generation(job, req, &mut |piece| text.push_str(piece)) {
            Ok(()) => Response::ok(&job.id, json!(text.trim())),
            Err(e) => Response::err(&job.id, e),
        }
    }

    fn stream(&self, job: &Job, req: &GenerateRequest, out: &Bell) -> Response {
        let sent = self.run_generation(job, req, &mut |piece| {
            let _ = out.send(Outgoing::Piece(
                job.identity.clone(),
                job.id.clone(),
                piece.to_string(),
            ));
        });
        match sent {
            Ok(()) => Response::token(&job.id, STREAM_END),
            Err(e) => Response::err(&job.id, e),
        }
    }

    /// Generates (or replays from the cache) the unstripped text, piece by piece.
    fn run_generation(
        &self,
        job: &Job,
        req: &GenerateRequest,
        emit: &mut dyn FnMut(&str),
    ) -> Result<(), String> {
        let constraint = req.constraint()?;
        let model = generation_model(req)?;
        let params = GenerateParams {
            max_new_tokens: req
                .max_new_tokens
                .unwrap_or(steadytext::params::DEFAULT_MAX_NEW_TOKENS),
            seed: steadytext::validate_seed(
                req.seed.unwrap_or(i64::from(steadytext::DEFAULT_SEED)),
            )
            .map_err(|e| e.to_string())?,
            temperature: req.temperature.unwrap_or(0.0),
            eos_string: req
                .eos_string
                .clone()
                .unwrap_or_else(|| steadytext::params::EOS_SENTINEL.into()),
            threads: Some(self.threads),
        };
        let key = model.sha256().ok().map(|sha| match &constraint {
            Some(c) => cache_key::structured(
                sha,
                &req.prompt,
                params.max_new_tokens,
                params.seed,
                params.temperature,
                &c.key(),
            ),
            None => cache_key::generation(
                sha,
                &req.prompt,
                params.max_new_tokens,
                params.seed,
                params.temperature,
                &params.eos_string,
            ),
        });
        if let Some(hit) = self.lookup(Kind::Generation, key.as_deref()) {
            // Replayed in word-sized pieces, as SteadyText replays a cached stream.
            for piece in word_pieces(&String::from_utf8_lossy(&hit)) {
                emit(piece);
            }
            return Ok(());
        }
        let mut raw = String::new();
        let mut stream = match &constraint {
            Some(c) => steadytext::stream_constrained(model, &req.prompt, &params, c, true),
            None => steadytext::stream(model, &req.prompt, &params),
        }
        .map_err(|e| e.to_string())?;
        for piece in stream.by_ref() {
            if job.cancel.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            let piece = piece.map_err(|e| e.to_string())?;
            emit(&piece);
            raw.push_str(&piece);
        }
        if constraint.is_some() && !stream.completed() {
            return Err(steadytext::Error::Incomplete {
                max_new_tokens: params.max_new_tokens,
            }
            .to_string());
        }
        self.store(Kind::Generation, key.as_deref(), raw.as_bytes());
        Ok(())
    }

    fn embed(&self, job: &Job, req: &EmbedRequest) -> Response {
        let texts: Vec<String> = match &req.text_input {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => return Response::err(&job.id, "text_input must be a string or a list of strings"),
        };
        let averaged = matches!(req.text_input, Value::Array(_));
        let result = mode(req.mode.as_deref()).and_then(|mode| {
            let model = embedding_model(req.model.as_deref())?;
            if averaged {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                steadytext::embed_average(model, &refs, mode, Some(self.threads))
                    .map_err(|e| e.to_string())
            } else {
                self.embed_one(model, &texts[0], mode)
            }
        });
        match result {
            Ok(v) => Response::ok(&job.id, json!(v)),
            Err(e) => Response::err(&job.id, e),
        }
    }

    fn embed_batch(&self, job: &Job, req: &EmbedBatchRequest) -> Response {
        let result = mode(req.mode.as_deref()).and_then(|mode| {
            let model = embedding_model(req.model.as_deref())?;
            req.texts
                .iter()
                .map(|t| {
                    if job.cancel.load(Ordering::Relaxed) {
                        return Err("cancelled".to_string());
                    }
                    self.embed_one(model, t, mode)
                })
                .collect::<Result<Vec<_>, _>>()
        });
        match result {
            Ok(vs) => Response::ok(&job.id, json!(vs)),
            Err(e) => Response::err(&job.id, e),
        }
    }

    fn embed_one(&self, model: &Model, text: &str, mode: EmbedMode) -> Result<Vec<f32>, String> {
        let key = model
            .sha256()
            .ok()
            .map(|sha| cache_key::embedding(sha, mode.as_str(), text));
        if let Some(hit) = self.lookup(Kind::Embedding, key.as_deref()) {
            return Ok(hit
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect());
        }
        let v =
            steadytext::embed(model, text, mode, Some(self.threads)).map_err(|e| e.to_string())?;
        // Zero vectors (empty input) are not worth caching.
        if v.iter().any(|&x| x != 0.0) {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            self.store(Kind::Embedding, key.as_deref(), &bytes);
        }
        Ok(v)
    }

    /// Scores every document (each cached on its own) and answers as SteadyText's daemon did:
    /// `[[doc, score], ...]` best first, or `[doc, ...]`. No model is an error: the caller
    /// decides whether to fall back to word overlap, and says so.
    fn rerank(&self, job: &Job, req: &RerankRequest) -> Response {
        let documents: Vec<String> = match &req.documents {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => return Response::err(&job.id, "documents must be a string or a list of strings"),
        };
        let task = req
            .task
            .as_deref()
            .unwrap_or(steadytext::rerank::DEFAULT_TASK);
        let result = reranking_model(req.model.as_deref()).and_then(|model| {
            let mut scored = Vec::with_capacity(documents.len());
            // Made on the first cache miss: it decodes the query's part of the prompt once.
            let mut scorer = None;
            for (index, doc) in documents.iter().enumerate() {
                if job.cancel.load(Ordering::Relaxed) {
                    return Err("cancelled".to_string());
                }
                let score = self.rerank_one(model, &mut scorer, &req.query, doc, task)?;
                scored.push(steadytext::rerank::Scored { index, score });
            }
            scored.sort_by(|a, b| b.score.total_cmp(&a.score));
            Ok(scored)
        });
        match result {
            Ok(scored) if req.return_scores.unwrap_or(true) => Response::ok(
                &job.id,
                json!(scored
                    .iter()
                    .map(|s| json!([documents[s.index], s.score]))
                    .collect::<Vec<_>>()),
            ),
            Ok(scored) => Response::ok(
                &job.id,
                json!(scored
                    .iter()
                    .map(|s| &documents[s.index])
                    .collect::<Vec<_>>()),
            ),
            Err(e) => Response::err(&job.id, e),
        }
    }

    fn rerank_one<'m>(
        &self,
        model: &'m Model,
        scorer: &mut Option<QueryScorer<'m>>,
        query: &str,
        doc: &str,
        task: &str,
    ) -> Result<f64, String> {
        let key = model
            .sha256()
            .ok()
            .map(|sha| cache_key::rerank(sha, query, doc, task));
        if let Some(hit) = self.lookup(Kind::Reranking, key.as_deref()) {
            if let Ok(bytes) = <[u8; 8]>::try_from(hit.as_slice()) {
                return Ok(f64::from_le_bytes(bytes));
            }
        }
        let scorer = match scorer {
            Some(scorer) => scorer,
            None => scorer.insert(
                QueryScorer::new(model, query, task, Some(self.threads))
                    .map_err(|e| e.to_string())?,
            ),
        };
        let score = scorer.score(doc).map_err(|e| e.to_string())?;
        self.store(Kind::Reranking, key.as_deref(), &score.to_le_bytes());
        Ok(score)
    }

    fn lookup(&self, kind: Kind, key: Option<&str>) -> Option<Vec<u8>> {
        self.cache.as_ref()?.get(kind, key?)
    }

    fn store(&self, kind: Kind, key: Option<&str>, value: &[u8]) {
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            cache.set(kind, key, value);
        }
    }
}

fn mode(mode: Option<&str>) -> Result<EmbedMode, String> {
    match mode {
        Some(m) => m.parse().map_err(|e: steadytext::Error| e.to_string()),
        None => Ok(EmbedMode::from_env()),
    }
}

fn generation_model(req: &GenerateRequest) -> Result<&'static Model, String> {
    let choice = ModelChoice {
        model: req.model.clone(),
        repo: req.model_repo.clone(),
        filename: req.model_filename.clone(),
        size: req.size.clone(),
    };
    Engine::global()
        .model(&choice, Role::Generation, Fetch::IfAllowed)
        .map_err(|e| e.to_string())
}

fn reranking_model(model: Option<&str>) -> Result<&'static Model, String> {
    let choice = ModelChoice {
        model: model.map(str::to_string),
        ..Default::default()
    };
    Engine::global()
        .model(&choice, Role::Reranking, Fetch::IfAllowed)
        .map_err(|e| e.to_string())
}

fn embedding_model(model: Option<&str>) -> Result<&'static Model, String> {
    let choice = ModelChoice {
        model: model.map(str::to_string),
        ..Default::default()
    };
    Engine::global()
        .model(&choice, Role::Embedding, Fetch::IfAllowed)
        .map_err(|e| e.to_string())
}

/// Splits text into pieces that each end with a word (leading whitespace attached), keeping every
/// byte: their concatenation is the text.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && !prev_space {
            pieces.push(&text[start..i]);
            start = i;
        }
        prev_space = space;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    #[test]
    fn word_pieces_keep_every_byte() {
        let text = "  Hello,  wörld!\n\tBye ";
        let pieces = super::word_pieces(text);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces, vec!["  Hello,", "  wörld!", "\n\tBye", " "]);
    }
}
