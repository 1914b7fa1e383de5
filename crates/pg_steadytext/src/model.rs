//! How a SQL call's arguments become a request: the calling role's model policy, the settings'
//! models, limits and models directory. The request itself is built and checked by the library
//! (`steadytext::request::Builder`), the same way on every route.

use std::path::PathBuf;

use pgrx::PgSqlErrorCode;
use steadytext::defaults::Limits;
use steadytext::request::{Builder, DefaultModels};
use steadytext::store::{Fetch, PathPolicy};

use crate::errors::raise_with;
use crate::{guc, privilege};

/// The limits the settings give.
pub fn limits() -> Limits {
    Limits {
        max_prompt_length: guc::MAX_PROMPT_LENGTH.get().max(1) as usize,
        max_tokens: guc::MAX_TOKENS_LIMIT.get().max(1) as usize,
        max_batch_size: guc::MAX_BATCH_SIZE.get().max(1) as usize,
        max_request_length: guc::MAX_REQUEST_LENGTH.get().max(1) as usize,
    }
}

/// How this call's requests are built: superusers may name any file, other roles registry
/// models and files in the models directory; the settings' models are used when a call names
/// none (a superuser set them).
pub fn builder() -> Builder {
    steadytext::paths::set_models_dir(guc::string(&guc::MODELS_DIR).map(PathBuf::from));
    Builder {
        policy: if privilege::is_superuser() {
            PathPolicy::Any
        } else {
            PathPolicy::ModelsDirOnly
        },
        fetch: if guc::ALLOW_MODEL_DOWNLOADS.get() {
            Fetch::IfAllowed
        } else {
            Fetch::LocalOnly
        },
        limits: limits(),
        defaults: DefaultModels {
            generation: guc::string(&guc::GENERATION_MODEL),
            embedding: guc::string(&guc::EMBEDDING_MODEL),
            reranking: guc::string(&guc::RERANKING_MODEL),
        },
        trust_model_ref: false,
    }
}

/// Refuses a prompt that `steadytext.prompt_deny_pattern` matches (SQLSTATE 22023).
pub fn check_deny(text: &str) {
    let Some(pattern) = guc::string(&guc::PROMPT_DENY_PATTERN) else {
        return;
    };
    thread_local! {
        /// The compiled pattern, kept while the setting stays the same (compiling it costs more
        /// than a cache hit).
        static COMPILED: std::cell::RefCell<Option<(String, regex::Regex)>> =
            const { std::cell::RefCell::new(None) };
    }
    let matches = COMPILED.with(|compiled| {
        let mut compiled = compiled.borrow_mut();
        if compiled.as_ref().is_none_or(|(p, _)| *p != pattern) {
            let regex = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .unwrap_or_else(|e| {
                    raise_with(
                        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                        &format!(
                            "steadytext.prompt_deny_pattern is not a valid regular expression: {e}"
                        ),
                    )
                });
            *compiled = Some((pattern.clone(), regex));
        }
        compiled
            .as_ref()
            .is_some_and(|(_, regex)| regex.is_match(text))
    });
    if matches {
        raise_with(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "the prompt matches steadytext.prompt_deny_pattern and is refused",
        );
    }
}

/// The embedding mode setting (validated by the library when the request is built).
pub fn embed_mode() -> String {
    guc::string(&guc::EMBEDDING_MODE).unwrap_or_else(|| "query".into())
}
