//! Admission: what every call that computes, streams or queues passes before any model is
//! resolved, whatever the way in (synchronous, streaming, cached, structured, batch, queued,
//! remote, the extension's own summaries): the request checked as the library builds it (every
//! text's length and their total, the batch size, max_tokens, the constraint, the model names
//! and this role's model policy), then the deny pattern on every text that reaches a model, then
//! the role's rate limit. The `build` functions of each kind call [`admit`]; nothing else calls
//! the deny check or the rate limit.

use steadytext::request::Spec;

use crate::errors::OrRaise;
use crate::{model, rate_limit};

/// Admits `spec` for the calling role, or raises the first refusal: 54000 for a limit, 22023 for
/// the deny pattern, 42501 for a model the role may not name, 53400 for the rate limit.
pub fn admit(spec: &Spec) {
    model::builder().check(spec).or_raise();
    admit_texts(spec.texts());
}

/// Admits a request that has no spec of its own (a blank element of a batch, recorded without
/// a model): its text's length, the deny pattern and the rate limit, as for any other.
pub fn admit_text(what: &str, text: &str) {
    model::builder().check_length(what, text).or_raise();
    admit_texts([text]);
}

/// Refuses a text a function takes without computing on it (a summary row, a fact, a template's
/// variables) when it is longer than any prompt may be: every input has a bound.
pub fn bound_text(what: &str, text: &str) {
    model::builder().check_length(what, text).or_raise();
}

/// [`bound_text`] for a JSON argument, by the length of its text.
pub fn bound_json(what: &str, value: &serde_json::Value) {
    bound_text(what, &value.to_string());
}

fn admit_texts<'a>(texts: impl IntoIterator<Item = &'a str>) {
    texts.into_iter().for_each(model::check_deny);
    rate_limit::admit();
}
