//! Raising errors with the Python extension's SQLSTATEs and texts (without its PL/Python
//! prefixes).

use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Validation errors: SQLSTATE P0001 (raise_exception), as the Python extension.
pub fn raise(message: &str) -> ! {
    raise_with(PgSqlErrorCode::ERRCODE_RAISE_EXCEPTION, message)
}

/// An error with an explicit SQLSTATE.
pub fn raise_with(code: PgSqlErrorCode, message: &str) -> ! {
    ereport!(PgLogLevel::ERROR, code, message);
    unreachable!("ereport(ERROR) does not return")
}

/// Maps a library error to an SQL error.
pub fn raise_library(context: &str, error: &steadytext::Error) -> ! {
    use steadytext::Error as E;
    let code = match error {
        E::ContextLengthExceeded { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        E::InvalidArgument(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        E::Cancelled => PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
        E::Incomplete { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        E::ModelMissing { .. } | E::ModelPathMissing(_) | E::ModelLoad { .. } => {
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE
        }
        E::Inference(_) | E::Io { .. } => PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
    };
    raise_with(code, &format!("{context}: {error}"))
}

/// The remote-model gate shared by every function that takes a model: a name with ':' is a
/// remote provider and needs unsafe_mode; this build runs local models only.
pub fn check_remote_model(model: Option<&str>, unsafe_mode: bool) {
    let Some(model) = model.filter(|m| m.contains(':')) else {
        return;
    };
    if !unsafe_mode {
        raise("Remote models (containing ':' ) require unsafe_mode=TRUE");
    }
    raise_with(
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        &format!(
            "remote model '{model}' is not supported: pg_steadytext runs local GGUF models only; \
             set the model to a registry name or a GGUF path"
        ),
    )
}
