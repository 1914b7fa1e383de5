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
