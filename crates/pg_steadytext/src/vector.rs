//! pgvector's `vector` as a Rust value, so functions can return `vector` without a text
//! round trip. The layout is pgvector's: varlena header, int16 dim, int16 unused, float4[dim].

use pgrx::pg_sys;
use pgrx::prelude::*;

/// A pgvector `vector`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector(pub Vec<f32>);

const HEADER: usize = pg_sys::VARHDRSZ + 4;

pgrx::impl_sql_translatable!(Vector, "vector");

impl IntoDatum for Vector {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let size = HEADER + 4 * self.0.len();
        let dim = i16::try_from(self.0.len()).expect("vectors have at most 16000 dimensions");
        // SAFETY: a fresh palloc of `size` bytes, filled in pgvector's layout.
        unsafe {
            let ptr = pg_sys::palloc0(size).cast::<u8>();
            pgrx::set_varsize_4b(ptr.cast(), size as i32);
            ptr.add(pg_sys::VARHDRSZ).cast::<i16>().write_unaligned(dim);
            let data = ptr.add(HEADER).cast::<f32>();
            for (i, x) in self.0.iter().enumerate() {
                data.add(i).write_unaligned(*x);
            }
            Some(pg_sys::Datum::from(ptr))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        vector_oid()
    }
}

// SAFETY: returns the datum built by `into_datum`, a palloc'd varlena in the call's context.
unsafe impl pgrx::callconv::BoxRet for Vector {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

impl FromDatum for Vector {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: the caller promises a `vector` datum; detoasting gives a plain varlena.
        unsafe {
            let ptr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast::<u8>();
            let dim = ptr.add(pg_sys::VARHDRSZ).cast::<i16>().read_unaligned() as usize;
            let data = ptr.add(HEADER).cast::<f32>();
            Some(Vector(
                (0..dim).map(|i| data.add(i).read_unaligned()).collect(),
            ))
        }
    }
}

/// The oid of `vector` (pgvector is a required extension, so it exists).
pub fn vector_oid() -> pg_sys::Oid {
    thread_local! {
        static OID: std::cell::Cell<Option<pg_sys::Oid>> = const { std::cell::Cell::new(None) };
    }
    OID.with(|cell| {
        if let Some(oid) = cell.get() {
            return oid;
        }
        // The type of the cache's embedding column: pgvector's `vector`, wherever it lives,
        // whatever the caller's search_path.
        let oid = crate::spi::read_first::<pg_sys::Oid>(
            "SELECT a.atttypid FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid OPERATOR(pg_catalog.=) 'public.steadytext_cache'::pg_catalog.regclass \
             AND a.attname OPERATOR(pg_catalog.=) 'embedding'",
            &[],
        )
        .unwrap_or(pg_sys::InvalidOid);
        if oid != pg_sys::InvalidOid {
            cell.set(Some(oid));
        }
        oid
    })
}
