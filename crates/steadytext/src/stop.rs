//! Stopping a decode part-way. A reranked document or an embedded text is one llama.cpp decode,
//! which takes seconds for a long one on a busy machine; checking for a cancel between
//! documents or texts leaves the daemon working on a request nobody waits for. llama.cpp asks
//! an abort callback between graph nodes; our patch (`patches/llama-cpp-sys-2/thread-stop.patch`)
//! gives every context made without one a callback that reads the calling thread's stop flag,
//! which [`when`] sets for as long as its guard lives.
//!
//! Only for work that owns its context (a reranking's scorer, an embedding's context): a
//! stopped decode leaves the context's memory without its last ubatch, so a context that is
//! kept or shared (a generation's batch) must never be stopped this way.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::Error;

thread_local! {
    /// The flag llama.cpp reads on this thread (kept alive here while it is installed).
    static FLAG: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Installs `flag` as this thread's stop flag until the guard is dropped.
pub fn when(flag: &Arc<AtomicBool>) -> Guard {
    let flag = Arc::clone(flag);
    // SAFETY: the pointer is to an AtomicBool (the same layout as std::atomic<bool>) that the
    // thread-local Arc keeps alive until Guard::drop removes it from llama.cpp first.
    unsafe { llama_cpp_sys_2::llama_steadytext_set_thread_stop(Arc::as_ptr(&flag).cast()) };
    FLAG.with(|f| *f.borrow_mut() = Some(flag));
    Guard {
        _not_send: std::marker::PhantomData,
    }
}

/// Whether this thread's stop flag is set: a decode that failed meanwhile was stopped.
pub fn requested() -> bool {
    FLAG.with(|f| {
        f.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// The error of a failed decode: [`Error::cancelled`] when it was stopped, else `what` failed.
pub fn decode_error(what: &str, error: impl std::fmt::Display) -> Error {
    if requested() {
        Error::cancelled()
    } else {
        Error::inference(format!("{what} failed: {error}"))
    }
}

/// Removes the thread's stop flag when dropped (on the thread that installed it).
pub struct Guard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: null means no flag.
        unsafe { llama_cpp_sys_2::llama_steadytext_set_thread_stop(std::ptr::null()) };
        FLAG.with(|f| *f.borrow_mut() = None);
    }
}
