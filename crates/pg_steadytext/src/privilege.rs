//! Who is calling, and running a few fixed queries as the extension's owner.
//!
//! Ordinary roles have no privileges on the extension's tables. When a function they call has to
//! read or write one (the cache by exact key, a queue row, the health row), the write is made here
//! as the owner, with values the extension computed. Every query run this way is a fixed string
//! with schema-qualified tables, functions and operators, so the caller's `search_path` cannot
//! change what it does (a `SET search_path` is not possible here: these functions also run in
//! parallel workers, where settings cannot change).

use std::cell::Cell;

use pgrx::pg_sys;

/// The user the current function runs as (`current_user`).
pub fn current_user() -> pg_sys::Oid {
    // SAFETY: reads a backend global.
    unsafe { pg_sys::GetUserId() }
}

/// A role's name.
pub fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId returns a palloc'd C string for an existing role (noerr=false
    // raises otherwise).
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, false);
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// The name of `current_user`.
pub fn current_user_name() -> String {
    role_name(current_user())
}

/// Who a call is for, in rate limits, row ownership and the audit trail: the session's login
/// role (`session_user`). `SET ROLE` changes `current_user` but not this, so a role cannot leave
/// its rate limit or write rows that another role's members see by switching to a group role;
/// privileges (what a call may do) stay `current_user`'s, as PostgreSQL decides them.
pub fn identity() -> pg_sys::Oid {
    // SAFETY: reads a backend global set at connection time.
    unsafe { pg_sys::GetSessionUserId() }
}

/// The name of [`identity`].
pub fn identity_name() -> String {
    role_name(identity())
}

/// Whether `current_user` is a superuser.
pub fn is_superuser() -> bool {
    // SAFETY: reads the catalog for the current user.
    unsafe { pg_sys::superuser() }
}

/// Whether `current_user` has the privileges of `role` (member with inherit, or superuser).
pub fn has_role(role: &str) -> bool {
    let Some(oid) = role_oid(role) else {
        return false;
    };
    // SAFETY: plain catalog lookups for existing roles.
    unsafe { pg_sys::has_privs_of_role(current_user(), oid) }
}

fn role_oid(role: &str) -> Option<pg_sys::Oid> {
    let name = std::ffi::CString::new(role).ok()?;
    // SAFETY: get_role_oid with missing_ok = true returns InvalidOid for unknown roles.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// The extension's owner (cached for the backend's life: it changes only with ALTER EXTENSION
/// ... OWNER, which needs a reconnect to take effect here).
fn owner() -> pg_sys::Oid {
    thread_local! {
        static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
    }
    if let Some(oid) = OWNER.get() {
        return oid;
    }
    let oid = crate::spi::read_first::<pg_sys::Oid>(
        "SELECT e.extowner FROM pg_catalog.pg_extension e \
         WHERE e.extname OPERATOR(pg_catalog.=) 'pg_steadytext'",
        &[],
    )
    .unwrap_or_else(|| crate::errors::raise("pg_steadytext is not installed in this database"));
    OWNER.set(Some(oid));
    oid
}

/// Runs `f` as the extension's owner, in a restricted security context (no SET ROLE, no
/// session-level changes) with `search_path = pg_catalog, pg_temp` (so a caller's temporary or
/// writable schema can shadow no type, function or operator), and switches back, also when `f`
/// raises. In a parallel worker the path cannot be set: the queries run there are fully
/// qualified (schemas, operators and types).
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    struct Restore {
        user: pg_sys::Oid,
        context: i32,
        guc_level: Option<i32>,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: undoes what as_owner did, in the order a SECURITY DEFINER call does; on an
            // error the transaction's abort resets the settings instead.
            unsafe {
                if let Some(level) = self.guc_level.filter(|_| !std::thread::panicking()) {
                    pg_sys::AtEOXact_GUC(true, level);
                }
                pg_sys::SetUserIdAndSecContext(self.user, self.context);
            }
        }
    }
    let owner = owner();
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads and sets the backend's current user and a nested setting, as SECURITY
    // DEFINER functions with a SET clause do; the guard restores both.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let guc_level = unsafe { !pg_sys::IsInParallelMode() }.then(|| unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        level
    });
    let _restore = Restore {
        user,
        context,
        guc_level,
    };
    let restricted = context
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
        | pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
    unsafe { pg_sys::SetUserIdAndSecContext(owner, restricted) };
    f()
}

/// Raises 42501 unless `current_user` has `role`'s privileges.
pub fn require_role(role: &str, what: &str) {
    if !has_role(role) {
        crate::errors::raise_with(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            &format!(
                "{what} needs the privileges of {role} (GRANT {role} TO {})",
                current_user_name()
            ),
        );
    }
}
