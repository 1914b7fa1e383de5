//! Small SPI helpers shared by the modules that read the extension's tables.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// The first column of the first row `query` returns for `$1 = key`, read-only (IMMUTABLE
/// functions call this).
pub fn read_one<T: FromDatum + IntoDatum>(query: &str, key: &str) -> Option<T> {
    read_first(query, &[key.into()])
}

/// The first column of the first row `query` returns. Read-only: pgrx's `Spi::get_one` marks
/// the transaction as writing, which takes a transaction id, and a parallel query (where the
/// PARALLEL SAFE inference functions run) refuses that.
pub fn read_first<T: FromDatum + IntoDatum>(query: &str, args: &[DatumWithOid<'_>]) -> Option<T> {
    Spi::connect(|client| {
        client
            .select(query, Some(1), args)
            .ok()?
            .first()
            .get_one::<T>()
            .ok()
            .flatten()
    })
}

/// Whether this server can write: a hot standby, in recovery, cannot.
pub fn writable() -> bool {
    // SAFETY: reads shared memory state any backend may read.
    unsafe { !pgrx::pg_sys::RecoveryInProgress() }
}

/// Raises 25006 on a hot standby, saying to call `what` on the primary. pgrx takes a transaction
/// id for a write through SPI, which a server in recovery refuses with an internal error.
pub fn require_writable(what: &str) {
    if !writable() {
        crate::errors::raise_with(
            pgrx::PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            &format!("cannot {what} on a hot standby (the server is in recovery): call it on the primary"),
        );
    }
}
