//! The daemon's Prometheus metrics (`GET /metrics` on the `--http` listener).
//!
//! Requests are counted where they end (the inference thread, or the HTTP layer when refused
//! before reaching it), by route (`zmq`, `http`), method and outcome (`ok` or the error kind).
//! Prefill and decode are counted only for work the engine did, so their rates are the model's
//! speed, not the cache's: `rate(steadytext_decode_tokens_total[5m]) /
//! rate(steadytext_decode_seconds_total[5m])` is tokens per second.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use steadytext::cache::{Counts, Kind};
use steadytext::execute::Output;
use steadytext::generate::Summary;
use steadytext::Error;

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    prompt_tokens: IntCounter,
    generated_tokens: IntCounter,
    prefill_tokens: IntCounter,
    prefill_seconds: Histogram,
    decode_tokens: IntCounter,
    decode_seconds: Histogram,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    cache_evictions: IntCounterVec,
    /// Requests waiting for the inference thread.
    pub queued: IntGauge,
    /// Requests the inference thread is running (0 or 1).
    pub running: IntGauge,
    models_loaded: IntGauge,
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("a valid metric name")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric name")
}

fn seconds(name: &str, help: &str) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()))
        .expect("a valid metric name")
}

/// From a cached embedding (a millisecond) to a long generation on a large model.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    /// The metrics, with the build's fingerprint recorded.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::new(),
            requests: counter_vec(
                "steadytext_requests_total",
                "Requests by route (zmq, http), method and outcome (ok or the error kind).",
                &["route", "method", "outcome"],
            ),
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "steadytext_request_duration_seconds",
                    "Time from a request's start on the inference thread to its end.",
                )
                .buckets(BUCKETS.to_vec()),
                &["route", "method"],
            )
            .expect("a valid metric name"),
            prompt_tokens: counter(
                "steadytext_prompt_tokens_total",
                "Prompt tokens of answered generations (cache hits included).",
            ),
            generated_tokens: counter(
                "steadytext_generated_tokens_total",
                "Generated tokens of answered generations (cache hits included).",
            ),
            prefill_tokens: counter(
                "steadytext_prefill_tokens_total",
                "Prompt tokens the engine evaluated (cache misses).",
            ),
            prefill_seconds: seconds(
                "steadytext_prefill_seconds",
                "Time to evaluate a prompt (cache misses).",
            ),
            decode_tokens: counter(
                "steadytext_decode_tokens_total",
                "Tokens the engine generated (cache misses).",
            ),
            decode_seconds: seconds(
                "steadytext_decode_seconds",
                "Time to generate a request's tokens (cache misses).",
            ),
            cache_hits: counter_vec(
                "steadytext_cache_hits_total",
                "Frecency cache lookups that found a value, by kind.",
                &["kind"],
            ),
            cache_misses: counter_vec(
                "steadytext_cache_misses_total",
                "Frecency cache lookups that did not, by kind.",
                &["kind"],
            ),
            cache_evictions: counter_vec(
                "steadytext_cache_evictions_total",
                "Frecency cache entries evicted to stay under the kind's limit.",
                &["kind"],
            ),
            queued: IntGauge::new(
                "steadytext_requests_queued",
                "Requests waiting for the inference thread.",
            )
            .expect("a valid metric name"),
            running: IntGauge::new(
                "steadytext_requests_running",
                "Requests the inference thread is running.",
            )
            .expect("a valid metric name"),
            models_loaded: IntGauge::new("steadytext_models_loaded", "Model files loaded.")
                .expect("a valid metric name"),
        };
        let build = IntGaugeVec::new(
            Opts::new(
                "steadytext_build_info",
                "1, labelled with the build's fingerprint (what decides the output bytes).",
            ),
            &["version", "profile", "fingerprint"],
        )
        .expect("a valid metric name");
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                steadytext::build_info::profile(),
                &steadytext::build_info::fingerprint(),
            ])
            .set(1);
        metrics.register(Box::new(build));
        metrics.register_all();
        metrics
    }

    fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        self.registry
            .register(collector)
            .expect("each metric is registered once");
    }

    fn register_all(&self) {
        self.register(Box::new(self.requests.clone()));
        self.register(Box::new(self.latency.clone()));
        for c in [
            &self.prompt_tokens,
            &self.generated_tokens,
            &self.prefill_tokens,
            &self.decode_tokens,
        ] {
            self.register(Box::new(c.clone()));
        }
        self.register(Box::new(self.prefill_seconds.clone()));
        self.register(Box::new(self.decode_seconds.clone()));
        for c in [&self.cache_hits, &self.cache_misses, &self.cache_evictions] {
            self.register(Box::new(c.clone()));
        }
        for g in [&self.queued, &self.running, &self.models_loaded] {
            self.register(Box::new(g.clone()));
        }
    }

    /// Counts a finished request.
    pub fn observe(
        &self,
        route: &str,
        method: &str,
        result: &Result<Output, Error>,
        took: Duration,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        self.count(route, method, outcome);
        self.latency
            .with_label_values(&[route, method])
            .observe(took.as_secs_f64());
    }

    /// Counts a request that ended with `outcome` (`ok` or an error kind).
    pub fn count(&self, route: &str, method: &str, outcome: &str) {
        self.requests
            .with_label_values(&[route, method, outcome])
            .inc();
    }

    /// Counts a generation's tokens; `timing` (prefill, decode) when the engine computed it.
    pub fn tokens(&self, summary: &Summary, timing: Option<(Duration, Duration)>) {
        self.prompt_tokens.inc_by(summary.prompt_tokens as u64);
        self.generated_tokens
            .inc_by(summary.generated_tokens as u64);
        if let Some((prefill, decode)) = timing {
            self.prefill_tokens.inc_by(summary.prompt_tokens as u64);
            self.prefill_seconds.observe(prefill.as_secs_f64());
            self.decode_tokens.inc_by(summary.generated_tokens as u64);
            self.decode_seconds.observe(decode.as_secs_f64());
        }
    }

    /// The text exposition, after bringing the cache counters and model count up to date.
    pub fn render(&self, cache: &[(Kind, Counts)], models_loaded: usize) -> String {
        for (kind, counts) in cache {
            let label = [kind_label(*kind)];
            // The cache keeps its own monotonic counters: add what is new since the last scrape.
            for (metric, now) in [
                (&self.cache_hits, counts.hits),
                (&self.cache_misses, counts.misses),
                (&self.cache_evictions, counts.evictions),
            ] {
                let c = metric.with_label_values(&label);
                c.inc_by(now.saturating_sub(c.get()));
            }
        }
        self.models_loaded.set(models_loaded as i64);
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("writing to a Vec does not fail");
        String::from_utf8(text).expect("the exposition format is UTF-8")
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Generation => "generation",
        Kind::Embedding => "embedding",
        Kind::Reranking => "reranking",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_tokens_and_cache() {
        let m = Metrics::new();
        let summary = Summary {
            prompt_tokens: 5,
            generated_tokens: 7,
            clamped: None,
            completed: true,
        };
        let ok = Ok(Output::Text {
            text: "x".into(),
            summary,
        });
        m.observe("http", "generate", &ok, Duration::from_millis(20));
        m.observe("zmq", "embed", &Err(Error::cancelled()), Duration::ZERO);
        m.tokens(
            &summary,
            Some((Duration::from_millis(3), Duration::from_millis(9))),
        );
        m.tokens(&summary, None);
        let counts = Counts {
            hits: 3,
            misses: 1,
            evictions: 0,
        };
        let text = m.render(&[(Kind::Generation, counts)], 2);
        for line in [
            r#"steadytext_requests_total{method="generate",outcome="ok",route="http"} 1"#,
            r#"steadytext_requests_total{method="embed",outcome="cancelled",route="zmq"} 1"#,
            "steadytext_generated_tokens_total 14",
            "steadytext_decode_tokens_total 7",
            r#"steadytext_cache_hits_total{kind="generation"} 3"#,
            "steadytext_models_loaded 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // A second scrape adds only what is new.
        let text = m.render(&[(Kind::Generation, Counts { hits: 4, ..counts })], 2);
        assert!(text.contains(r#"steadytext_cache_hits_total{kind="generation"} 4"#));
        assert!(text.contains("steadytext_build_info{fingerprint="));
    }
}
