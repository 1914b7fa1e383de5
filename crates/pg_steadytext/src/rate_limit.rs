//! Per-role rate limits (`steadytext_rate_limits`: `user_id` is the role name; NULL means no limit
//! for that window), checked on every inference call, synchronous or queued, cache hits included.
//!
//! The counts live in a small file per role in the data directory, mapped into memory and read and
//! written under an exclusive `flock`: that is exact under any concurrency, works in parallel workers and in
//! IMMUTABLE functions (which cannot write tables), needs no preloading, and a refused or rolled
//! back statement still counts what it ran. Windows are aligned to the clock (the minute, the
//! hour, the day in UTC). A role's limits are read from the table at most once a second per
//! backend, so a change applies within a second.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::privilege::{as_owner, identity, identity_name, role_name};

/// How long a backend trusts the limits it read.
const LIMITS_TTL: Duration = Duration::from_secs(1);

/// The windows, their length in seconds and their column.
const WINDOWS: [(&str, i64, &str); 3] = [
    ("minute", 60, "requests_per_minute"),
    ("hour", 3600, "requests_per_hour"),
    ("day", 86_400, "requests_per_day"),
];

/// A role's limits per window (`None`: unlimited).
type Limits = [Option<i64>; 3];

thread_local! {
    static LIMITS: RefCell<HashMap<u32, (Instant, Option<Limits>)>> = RefCell::new(HashMap::new());
}

fn read_limits(role: &str) -> Option<Limits> {
    as_owner(|| {
        Spi::connect(|client| {
            let rows = client
                .select(
                    "SELECT r.requests_per_minute::pg_catalog.int8, r.requests_per_hour::pg_catalog.int8, \
                     r.requests_per_day::pg_catalog.int8 FROM public.steadytext_rate_limits r \
                     WHERE r.user_id OPERATOR(pg_catalog.=) $1",
                    Some(1),
                    &[role.into()],
                )
                .ok()?;
            let row = rows.first();
            if row.is_empty() {
                return None;
            }
            Some([
                row.get::<i64>(1).ok().flatten(),
                row.get::<i64>(2).ok().flatten(),
                row.get::<i64>(3).ok().flatten(),
            ])
        })
    })
}

fn limits_of(role: pgrx::pg_sys::Oid) -> Option<Limits> {
    LIMITS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((at, limits)) = cache.get(&role.to_u32()) {
            if at.elapsed() < LIMITS_TTL {
                return *limits;
            }
        }
        let limits = read_limits(&role_name(role));
        cache.insert(role.to_u32(), (Instant::now(), limits));
        limits
    })
}

/// One role's counts: for each window, its start (seconds since the epoch) and the requests in it.
#[derive(Debug, Clone, Copy, Default)]
struct Counts([(i64, i64); 3]);

impl Counts {
    fn decode(bytes: &[u8]) -> Self {
        let mut counts = Counts::default();
        for (i, slot) in counts.0.iter_mut().enumerate() {
            let at = |j: usize| {
                bytes
                    .get(j * 8..j * 8 + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, i64::from_le_bytes)
            };
            *slot = (at(2 * i), at(2 * i + 1));
        }
        counts
    }

    fn encode(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|(start, n)| start.to_le_bytes().into_iter().chain(n.to_le_bytes()))
            .collect()
    }

    /// The counts as of `now`: windows that have passed start again at zero.
    fn at(mut self, now: i64) -> Self {
        for (slot, (_, length, _)) in self.0.iter_mut().zip(WINDOWS) {
            let start = now - now.rem_euclid(length);
            if slot.0 != start {
                *slot = (start, 0);
            }
        }
        self
    }
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn counts_file(role: pgrx::pg_sys::Oid) -> PathBuf {
    let dir = crate::daemon_process::private_dir().join("rate");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(role.to_u32().to_string())
}

/// The size of a counts file: three windows of (start, count), as little-endian `i64`s.
const COUNTS_BYTES: usize = 48;

/// A role's counts file, open and mapped into memory for the backend's life: a request costs a
/// lock and an unlock, and the counts are read and written in the mapping (no read or write
/// calls). The files are never removed, so a kept mapping always shows the live file.
struct CountsFile {
    file: File,
    map: RefCell<memmap2::MmapMut>,
}

fn counts_of(role: pgrx::pg_sys::Oid) -> std::io::Result<Rc<CountsFile>> {
    thread_local! {
        static FILES: RefCell<HashMap<u32, Rc<CountsFile>>> = RefCell::new(HashMap::new());
    }
    FILES.with(|files| {
        if let Some(counts) = files.borrow().get(&role.to_u32()) {
            return Ok(counts.clone());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(counts_file(role))?;
        // Blocks are allocated now, not on the first write through the mapping (where a full
        // disk would be SIGBUS instead of an error); this never overwrites counts another
        // backend has written, so racing backends may all do it.
        // SAFETY: posix_fallocate on an open descriptor.
        let failed = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, COUNTS_BYTES as i64) };
        if failed != 0 {
            return Err(std::io::Error::from_raw_os_error(failed));
        }
        // SAFETY: the mapping is only read or written while this backend holds the file's
        // exclusive lock (`Locked`), and the file is never truncated, so no other process
        // changes it under us.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(COUNTS_BYTES)
                .map_mut(&file)?
        };
        let counts = Rc::new(CountsFile {
            file,
            map: RefCell::new(map),
        });
        files.borrow_mut().insert(role.to_u32(), counts.clone());
        Ok(counts)
    })
}

/// A role's counts file under an exclusive lock, released when this is dropped.
struct Locked(Rc<CountsFile>);

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: unlocks the descriptor `locked` locked; it stays open.
        unsafe { libc::flock(self.0.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl Locked {
    fn read(&self) -> Counts {
        Counts::decode(&self.0.map.borrow()[..])
    }

    fn write(&self, counts: &Counts) {
        self.0.map.borrow_mut()[..].copy_from_slice(&counts.encode());
    }
}

fn locked(role: pgrx::pg_sys::Oid) -> std::io::Result<Locked> {
    let counts = counts_of(role)?;
    // SAFETY: flock on an open descriptor.
    if unsafe { libc::flock(counts.file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Locked(counts))
}

/// A refusal: which window, its limit, and when it starts again.
struct Refusal {
    window: &'static str,
    limit: i64,
    resets_at: i64,
}

/// Counts one request for the calling role, or refuses it (SQLSTATE 53400) when a window is full.
pub fn admit() {
    let oid = identity();
    let Some(limits) = limits_of(oid) else {
        return;
    };
    let refusal = count(oid, &limits).unwrap_or_else(|e| {
        crate::errors::raise_with(
            PgSqlErrorCode::ERRCODE_IO_ERROR,
            &format!("cannot count the request against the rate limit: {e}"),
        )
    });
    if let Some(r) = refusal {
        let role = role_name(oid);
        let wait = (r.resets_at - now_seconds()).max(0);
        crate::audit::file_event(
            "rate_limit_refused",
            &role,
            serde_json::json!({ "window": r.window, "limit": r.limit, "resets_at": r.resets_at }),
        );
        crate::errors::raise_with(
            PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            &format!(
                "rate limit exceeded for role {role}: {} requests per {} (steadytext_rate_limits); \
                 the {} starts again in {wait} s, at {} UTC",
                r.limit,
                r.window,
                r.window,
                format_time(r.resets_at)
            ),
        );
    }
}

/// Adds one request unless a window is full.
fn count(role: pgrx::pg_sys::Oid, limits: &Limits) -> std::io::Result<Option<Refusal>> {
    let file = locked(role)?;
    let now = now_seconds();
    let mut counts = file.read().at(now);
    for ((start, n), ((window, length, _), limit)) in
        counts.0.iter().zip(WINDOWS.iter().zip(limits))
    {
        if let Some(limit) = *limit {
            if *n >= limit {
                return Ok(Some(Refusal {
                    window,
                    limit,
                    resets_at: start + length,
                }));
            }
        }
    }
    for slot in counts.0.iter_mut() {
        slot.1 += 1;
    }
    file.write(&counts);
    Ok(None)
}

fn format_time(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A role's limits and counts, without counting a request.
// pgrx reads the column names from this signature, so the row type cannot move to an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_safe)]
fn steadytext_check_rate_limit(
    role_name: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(user_id, String),
        name!(allowed, bool),
        name!(minute_count, i64),
        name!(requests_per_minute, Option<i64>),
        name!(hour_count, i64),
        name!(requests_per_hour, Option<i64>),
        name!(day_count, i64),
        name!(requests_per_day, Option<i64>),
        name!(resets_at, pgrx::datum::TimestampWithTimeZone),
    ),
> {
    let me = identity_name();
    let role = role_name.map(str::to_string).unwrap_or_else(|| me.clone());
    if role != me {
        crate::privilege::require_role("steadytext_admin", "Reading another role's rate limit");
    }
    let oid = crate::spi::read_one::<pgrx::pg_sys::Oid>(
        "SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1",
        &role,
    )
    .unwrap_or_else(|| crate::errors::raise(&format!("role \"{role}\" does not exist")));
    let limits = read_limits(&role).unwrap_or_default();
    let now = now_seconds();
    let counts = locked(oid).map(|f| f.read()).unwrap_or_default().at(now);
    let full: Vec<i64> = counts
        .0
        .iter()
        .zip(WINDOWS.iter().zip(&limits))
        .filter(|((_, n), (_, limit))| limit.is_some_and(|l| *n >= l))
        .map(|((start, _), ((_, length, _), _))| start + length)
        .collect();
    let resets = full.iter().copied().max().unwrap_or(counts.0[0].0 + 60);
    let resets_at = pgrx::datum::TimestampWithTimeZone::try_from(
        (resets - 946_684_800) * 1_000_000, // PostgreSQL counts microseconds from 2000-01-01
    )
    .unwrap_or_else(|_| crate::errors::raise("cannot express the reset time"));
    TableIterator::once((
        role,
        full.is_empty(),
        counts.0[0].1,
        limits[0],
        counts.0[1].1,
        limits[1],
        counts.0[2].1,
        limits[2],
        resets_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_again_when_they_pass() {
        let c = Counts([(60, 5), (0, 9), (0, 9)]).at(119);
        assert_eq!(c.0[0], (60, 5));
        let c = c.at(120);
        assert_eq!(c.0[0], (120, 0));
        assert_eq!(c.0[1], (0, 9));
        let again = Counts::decode(&c.encode());
        assert_eq!(again.0, c.0);
    }

    #[test]
    fn times_are_civil_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_795_910_400), "2026-11-29 00:00:00");
    }
}
