//! Where a command's request runs: built and run in this process, or sent as given to the
//! daemon (`--daemon`), which builds it the same way.

use anyhow::Result;
use steadytext::execute::{self, Output, Progress, Sink};
use steadytext::request::{Builder, Spec};
use steadytext::{Local, ModelRef};

/// Where it ran, and on which model when that is known here.
pub struct Ran {
    /// The output.
    pub output: Output,
    /// The model file (known when the request ran here).
    pub model: Option<ModelRef>,
    /// The daemon's endpoint, when it ran there.
    pub daemon: Option<String>,
}

/// Runs `spec` here (with `threads`) or in the daemon, passing pieces to `sink` when streaming.
pub fn run(
    spec: Spec,
    daemon: bool,
    threads: Option<i32>,
    builder: &Builder,
    streaming: bool,
    sink: &mut dyn Sink,
) -> Result<Ran> {
    if daemon {
        // The daemon checks it again; checking here first refuses an oversized request before
        // it is sent (the daemon would drop a message above its size limit without a reply).
        builder.check(&spec)?;
        let client = crate::daemon::connect()?;
        let mut execution = client.execute_spec(spec, streaming)?;
        loop {
            match execution.advance()? {
                Progress::Piece(piece) => {
                    sink.piece(&piece);
                }
                Progress::Working => {}
                Progress::Done(output) => {
                    return Ok(Ran {
                        output,
                        model: None,
                        daemon: Some(client.endpoint().to_string()),
                    })
                }
            }
        }
    }
    let request = spec.build(builder)?;
    let model = request.model().clone();
    let threads = threads.unwrap_or_else(steadytext::engine::default_threads);
    let output = execute::run(&Local::new(threads), request, streaming, sink)?;
    Ok(Ran {
        output,
        model: Some(model),
        daemon: None,
    })
}

/// The builder of a command: any path, downloads when the environment allows, these limits.
pub fn builder(limits: &crate::daemon::LimitArgs) -> Builder {
    Builder {
        limits: limits.limits(),
        ..Builder::default()
    }
}
