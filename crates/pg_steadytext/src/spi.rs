//! Small SPI helpers shared by the modules that read the extension's tables.

use pgrx::prelude::*;

/// The first column of the first row `query` returns for `$1 = key`, read-only (IMMUTABLE
/// functions call this).
pub fn read_one<T: FromDatum + IntoDatum>(query: &str, key: &str) -> Option<T> {
    Spi::connect(|client| {
        client
            .select(query, Some(1), &[key.into()])
            .ok()?
            .first()
            .get_one::<T>()
            .ok()
            .flatten()
    })
}
