//! Raising errors: the library's error kinds as SQLSTATEs, with the library's message as it is
//! (the same text the daemon and the queue workers give), and the Python extension's
//! validation texts with its SQLSTATE (P0001) but without its PL/Python prefixes.

use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use steadytext::{Error, ErrorKind};

/// Validation errors: SQLSTATE P0001 (raise_exception), as the Python extension.
pub fn raise(message: &str) -> ! {
    raise_with(PgSqlErrorCode::ERRCODE_RAISE_EXCEPTION, message)
}

/// An error with an explicit SQLSTATE.
pub fn raise_with(code: PgSqlErrorCode, message: &str) -> ! {
    ereport!(PgLogLevel::ERROR, code, message);
    unreachable!("ereport(ERROR) does not return")
}

/// The SQLSTATE of a library error kind.
pub fn sqlstate(kind: ErrorKind) -> PgSqlErrorCode {
    use PgSqlErrorCode as C;
    match kind {
        ErrorKind::InvalidArgument => C::ERRCODE_RAISE_EXCEPTION,
        ErrorKind::LimitExceeded | ErrorKind::ContextLength | ErrorKind::Incomplete => {
            C::ERRCODE_PROGRAM_LIMIT_EXCEEDED
        }
        ErrorKind::Forbidden => C::ERRCODE_INSUFFICIENT_PRIVILEGE,
        ErrorKind::Unsupported => C::ERRCODE_FEATURE_NOT_SUPPORTED,
        ErrorKind::ModelMissing | ErrorKind::ModelLoad => C::ERRCODE_UNDEFINED_FILE,
        ErrorKind::Cancelled => C::ERRCODE_QUERY_CANCELED,
        ErrorKind::Busy => C::ERRCODE_INSUFFICIENT_RESOURCES,
        ErrorKind::Unavailable => C::ERRCODE_CONNECTION_FAILURE,
        ErrorKind::Protocol => C::ERRCODE_PROTOCOL_VIOLATION,
        ErrorKind::Io => C::ERRCODE_IO_ERROR,
        ErrorKind::Inference => C::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
    }
}

/// Raises a library error with its kind's SQLSTATE and its own message.
pub fn raise_error(error: &Error) -> ! {
    raise_with(sqlstate(error.kind()), error.message())
}

/// The value, or the error raised.
pub trait OrRaise<T> {
    /// Raises the error with its SQLSTATE.
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for steadytext::Result<T> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise_error(&e))
    }
}
