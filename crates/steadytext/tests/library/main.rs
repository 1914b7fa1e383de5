//! The library on the real test models (`$STEADYTEXT_TEST_MODELS`), through the typed request
//! path every route uses: built by a `Builder`, run on the in-process executor. One test binary,
//! so the models load once.

mod batching;
mod cache;
mod common;
mod embedding;
mod fuzz;
mod generation;
mod invariance;
mod rerank;
mod structured;
