//! An executor with the frecency cache (L1) in front: answers what it has, runs the rest on the
//! executor behind it, and keeps the results. Requests with `use_cache` off pass straight
//! through, neither read nor written.

use serde::{Deserialize, Serialize};

use crate::cache::{FrecencyCache, Kind};
use crate::error::Result;
use crate::execute::{finish_text, Execution, Executor, Output, Progress};
use crate::generate::Summary;
use crate::request::{Combine, EmbedRequest, GenerateRequest, Request, RerankRequest};
use crate::rerank::{self, Scored};

/// `inner` behind `cache`.
pub struct Cached<'c, E> {
    /// Where misses run.
    pub inner: E,
    /// The cache; `None` turns caching off.
    pub cache: Option<&'c FrecencyCache>,
}

/// A generation as it is kept: the unstripped text, how it ended, and whether it was constrained
/// (absent in entries written before it was recorded).
#[derive(Serialize, Deserialize)]
struct Kept {
    raw: String,
    summary: Summary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    constrained: Option<bool>,
}

/// The text a kept generation answers with, for a store that keeps finished texts (the
/// `steadytext_cache` table). `None` when that cannot be known: an entry from before the
/// constrained flag whose text has surrounding whitespace (stripped or not depends on it).
pub fn kept_text(bytes: &[u8]) -> Option<String> {
    let kept: Kept = serde_json::from_slice(bytes).ok()?;
    match kept.constrained {
        Some(constrained) => Some(finish_text(&kept.raw, constrained)),
        None if kept.raw.trim() == kept.raw => Some(kept.raw),
        None => None,
    }
}

/// A kept generation for a finished text from such a store. Replayed, it gives the same text
/// whether the request was constrained or not (a finished unconstrained text is already
/// stripped); its token counts are unknown and read as zero.
pub fn kept_from_text(text: &str) -> Vec<u8> {
    let kept = Kept {
        raw: text.to_string(),
        summary: Summary::default(),
        constrained: None,
    };
    serde_json::to_vec(&kept).unwrap_or_default()
}

impl<E: Executor> Executor for Cached<'_, E> {
    fn execute(&self, request: Request, streaming: bool) -> Result<Box<dyn Execution + '_>> {
        let Some(cache) = self.cache else {
            return self.inner.execute(request, streaming);
        };
        match request {
            Request::Generate(r) => self.generate(cache, r, streaming),
            Request::Embed(r) => self.embed(cache, r),
            Request::Rerank(r) => self.rerank(cache, r),
        }
    }
}

impl<E: Executor> Cached<'_, E> {
    fn generate<'s>(
        &'s self,
        cache: &'s FrecencyCache,
        request: GenerateRequest,
        streaming: bool,
    ) -> Result<Box<dyn Execution + 's>> {
        let constrained = request.constraint.is_some();
        let Some(key) = request.cache_key() else {
            return self.inner.execute(Request::Generate(request), streaming);
        };
        if let Some(kept) = cache
            .get(Kind::Generation, &key)
            .and_then(|bytes| serde_json::from_slice::<Kept>(&bytes).ok())
        {
            return Ok(Box::new(Replay::new(kept, constrained)));
        }
        let inner = self.inner.execute(Request::Generate(request), streaming)?;
        Ok(Box::new(Recording {
            inner,
            cache,
            key,
            raw: String::new(),
            constrained,
        }))
    }

    fn embed<'s>(
        &'s self,
        cache: &'s FrecencyCache,
        request: EmbedRequest,
    ) -> Result<Box<dyn Execution + 's>> {
        let keys: Vec<Option<String>> =
            request.texts.iter().map(|t| request.cache_key(t)).collect();
        let found: Vec<Option<Vec<f32>>> = keys
            .iter()
            .map(|k| {
                k.as_ref()
                    .and_then(|k| cache.get(Kind::Embedding, k))
                    .map(|bytes| {
                        bytes
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect()
                    })
            })
            .collect();
        let missing: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_none()).collect();
        let sub = EmbedRequest {
            texts: missing.iter().map(|&i| request.texts[i].clone()).collect(),
            combine: Combine::Each,
            ..request.clone()
        };
        let inner = if missing.is_empty() {
            None
        } else {
            Some(self.inner.execute(Request::Embed(sub), false)?)
        };
        Ok(Box::new(EmbedMerge {
            inner,
            cache,
            keys,
            found,
            missing,
            combine: request.combine,
        }))
    }

    fn rerank<'s>(
        &'s self,
        cache: &'s FrecencyCache,
        request: RerankRequest,
    ) -> Result<Box<dyn Execution + 's>> {
        let keys: Vec<Option<String>> = request
            .documents
            .iter()
            .map(|d| request.cache_key(d))
            .collect();
        let found: Vec<Option<f64>> = keys
            .iter()
            .map(|k| {
                k.as_ref()
                    .and_then(|k| cache.get(Kind::Reranking, k))
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
                    .map(f64::from_le_bytes)
            })
            .collect();
        let missing: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_none()).collect();
        let sub = RerankRequest {
            documents: missing
                .iter()
                .map(|&i| request.documents[i].clone())
                .collect(),
            ..request.clone()
        };
        let inner = if missing.is_empty() {
            None
        } else {
            Some(self.inner.execute(Request::Rerank(sub), false)?)
        };
        Ok(Box::new(RerankMerge {
            inner,
            cache,
            keys,
            found,
            missing,
        }))
    }
}

/// A cached generation, replayed in word-sized pieces (as SteadyText replays a cached stream).
struct Replay {
    pieces: std::vec::IntoIter<String>,
    kept: Kept,
    constrained: bool,
}

impl Replay {
    fn new(kept: Kept, constrained: bool) -> Self {
        let pieces: Vec<String> = word_pieces(&kept.raw)
            .into_iter()
            .map(str::to_string)
            .collect();
        Replay {
            pieces: pieces.into_iter(),
            kept,
            constrained,
        }
    }
}

impl Execution for Replay {
    fn advance(&mut self) -> Result<Progress> {
        Ok(match self.pieces.next() {
            Some(piece) => Progress::Piece(piece),
            None => Progress::Done(Output::Text {
                text: finish_text(&self.kept.raw, self.constrained),
                summary: self.kept.summary,
            }),
        })
    }
}

/// A generation that is kept in the cache when it ends.
struct Recording<'s> {
    inner: Box<dyn Execution + 's>,
    cache: &'s FrecencyCache,
    key: String,
    raw: String,
    constrained: bool,
}

impl Execution for Recording<'_> {
    fn advance(&mut self) -> Result<Progress> {
        let progress = self.inner.advance()?;
        match &progress {
            Progress::Piece(piece) => self.raw.push_str(piece),
            Progress::Done(Output::Text { summary, .. }) => {
                let kept = Kept {
                    raw: std::mem::take(&mut self.raw),
                    summary: *summary,
                    constrained: Some(self.constrained),
                };
                if let Ok(bytes) = serde_json::to_vec(&kept) {
                    self.cache.set(Kind::Generation, &self.key, &bytes);
                }
            }
            _ => {}
        }
        Ok(progress)
    }
}

/// Embeddings: the cached ones, and the rest computed and kept.
struct EmbedMerge<'s> {
    inner: Option<Box<dyn Execution + 's>>,
    cache: &'s FrecencyCache,
    keys: Vec<Option<String>>,
    found: Vec<Option<Vec<f32>>>,
    missing: Vec<usize>,
    combine: Combine,
}

impl Execution for EmbedMerge<'_> {
    fn advance(&mut self) -> Result<Progress> {
        if let Some(inner) = self.inner.as_mut() {
            let Progress::Done(output) = inner.advance()? else {
                return Ok(Progress::Working);
            };
            self.inner = None;
            for (&i, v) in self.missing.iter().zip(output.into_embeddings()?) {
                // Zero vectors (empty input) are not worth keeping.
                if let (Some(key), true) = (&self.keys[i], v.iter().any(|&x| x != 0.0)) {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    self.cache.set(Kind::Embedding, key, &bytes);
                }
                self.found[i] = Some(v);
            }
        }
        let vectors: Vec<Vec<f32>> = std::mem::take(&mut self.found)
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok(Progress::Done(Output::Embeddings(match self.combine {
            Combine::Each => vectors,
            Combine::Average => vec![crate::embed::average(&vectors)],
        })))
    }
}

/// Scores: the cached ones, and the rest computed and kept (each document on its own key).
struct RerankMerge<'s> {
    inner: Option<Box<dyn Execution + 's>>,
    cache: &'s FrecencyCache,
    keys: Vec<Option<String>>,
    found: Vec<Option<f64>>,
    missing: Vec<usize>,
}

impl Execution for RerankMerge<'_> {
    fn advance(&mut self) -> Result<Progress> {
        if let Some(inner) = self.inner.as_mut() {
            let Progress::Done(output) = inner.advance()? else {
                return Ok(Progress::Working);
            };
            self.inner = None;
            for scored in output.into_ranked()? {
                let i = self.missing[scored.index];
                if let Some(key) = &self.keys[i] {
                    self.cache
                        .set(Kind::Reranking, key, &scored.score.to_le_bytes());
                }
                self.found[i] = Some(scored.score);
            }
        }
        let mut scored: Vec<Scored> = self
            .found
            .iter()
            .enumerate()
            .map(|(index, s)| Scored {
                index,
                score: s.unwrap_or(0.0),
            })
            .collect();
        rerank::sort(&mut scored);
        Ok(Progress::Done(Output::Ranked(scored)))
    }
}

/// Splits text into pieces that each end with a word (leading whitespace attached), keeping every
/// byte: their concatenation is the text.
pub fn word_pieces(text: &str) -> Vec<&str> {
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
    use super::*;

    #[test]
    fn a_kept_text_is_the_finished_text_when_it_can_be_known() {
        let kept = |raw: &str, constrained: Option<bool>| {
            serde_json::to_vec(&Kept {
                raw: raw.into(),
                summary: Summary::default(),
                constrained,
            })
            .unwrap()
        };
        assert_eq!(kept_text(&kept(" a ", Some(false))).as_deref(), Some("a"));
        assert_eq!(kept_text(&kept(" a ", Some(true))).as_deref(), Some(" a "));
        assert_eq!(kept_text(&kept("a", None)).as_deref(), Some("a"));
        assert_eq!(
            kept_text(&kept(" a", None)),
            None,
            "stripped or not is unknown"
        );
        assert_eq!(
            kept_text(&kept_from_text("{\"x\": 1}")).as_deref(),
            Some("{\"x\": 1}")
        );
    }

    #[test]
    fn word_pieces_keep_every_byte() {
        let text = "  Hello,  wörld!\n\tBye ";
        let pieces = super::word_pieces(text);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces, vec!["  Hello,", "  wörld!", "\n\tBye", " "]);
    }
}
