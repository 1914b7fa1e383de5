//! Running one queued job: the row becomes the same request the synchronous SQL function builds
//! (see `steadytext::jobs`), and runs here or in this host's daemon. Between steps the runner asks
//! whether to go on (the row may have been cancelled or taken over).

use steadytext::client::DaemonClient;
use steadytext::execute::{self, Sink};
use steadytext::jobs::{Job, RowResult};
use steadytext::request::Builder;
use steadytext::{Error, ErrorKind, Executor, Local};

/// Why a job stopped before its end.
pub enum Stop {
    /// The row was cancelled, or another worker took it over.
    NotMine,
    /// A second signal: give the row back.
    Abort,
}

/// How a job ended.
pub enum Ended {
    /// Its result, cache key and model file name.
    Done(RowResult, Option<String>, String),
    /// Stopped on purpose.
    Stopped(Stop),
    /// Failed: the message, and whether a retry may succeed.
    Failed(String, bool),
}

/// Runs jobs here or in the daemon.
pub struct Runner {
    executor: Box<dyn Executor + Send + Sync>,
    builder: Builder,
}

struct Watch<'a> {
    check: &'a mut dyn FnMut() -> Option<Stop>,
    stopped: Option<Stop>,
}

impl Sink for Watch<'_> {
    fn keep_going(&mut self) -> bool {
        if self.stopped.is_none() {
            self.stopped = (self.check)();
        }
        self.stopped.is_none()
    }
}

impl Runner {
    /// A runner on `daemon` (when given) or in this process with `threads` threads.
    pub fn new(daemon: Option<DaemonClient>, threads: i32, builder: Builder) -> Self {
        let executor: Box<dyn Executor + Send + Sync> = match daemon {
            Some(client) => Box::new(client),
            None => Box::new(Local::new(threads)),
        };
        Runner { executor, builder }
    }

    /// Runs a row; `check` is asked between steps whether to go on.
    pub fn run(
        &self,
        request_type: &str,
        prompt: Option<&str>,
        params: Option<&serde_json::Value>,
        check: &mut dyn FnMut() -> Option<Stop>,
    ) -> Ended {
        let failed = |e: Error| Ended::Failed(e.to_string(), !e.is_permanent());
        let job = match Job::parse(request_type, prompt, params) {
            Ok(job) => job,
            Err(e) => return failed(e),
        };
        let request = match job.build(&self.builder) {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let key = match &request {
            steadytext::Request::Generate(r) => r.cache_key(),
            steadytext::Request::Embed(r) => r.texts.first().and_then(|t| r.cache_key(t)),
            steadytext::Request::Rerank(_) => None,
        };
        let model = request.model().file_name();
        let mut watch = Watch {
            check,
            stopped: None,
        };
        let output = execute::run(self.executor.as_ref(), request.clone(), false, &mut watch);
        match (output, watch.stopped) {
            (_, Some(stop)) => Ended::Stopped(stop),
            (Ok(output), None) => match job.row_result(&request, output) {
                Ok(result) => Ended::Done(result, key, model),
                Err(e) => failed(e),
            },
            (Err(e), None) if e.kind() == ErrorKind::Cancelled => Ended::Stopped(Stop::NotMine),
            (Err(e), None) => failed(e),
        }
    }
}
