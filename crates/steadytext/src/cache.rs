//! The daemon's frecency cache (L1): values in memory, persisted in one SQLite file, one table
//! per kind of result, each with its own size limit.
//!
//! Every hit bumps the entry's frequency and last access. When a kind outgrows its limit, entries
//! are evicted by ascending `frequency / (1 + age_seconds)` (ties: larger first) until it is at
//! 80 % of the limit. A file that is not a database is moved aside and a new one created.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// What is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Generated text.
    Generation,
    /// Embeddings.
    Embedding,
    /// Rerank scores.
    Reranking,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 3] = [Kind::Generation, Kind::Embedding, Kind::Reranking];

    fn table(self) -> &'static str {
        match self {
            Kind::Generation => "generation",
            Kind::Embedding => "embedding",
            Kind::Reranking => "reranking",
        }
    }

    /// SteadyText's limit in MB, overridable by `STEADYTEXT_<KIND>_CACHE_MAX_SIZE_MB`.
    pub fn max_bytes_from_env(self) -> u64 {
        let (var, default_mb) = match self {
            Kind::Generation => ("STEADYTEXT_GENERATION_CACHE_MAX_SIZE_MB", 50.0),
            Kind::Embedding => ("STEADYTEXT_EMBEDDING_CACHE_MAX_SIZE_MB", 100.0),
            Kind::Reranking => ("STEADYTEXT_RERANKING_CACHE_MAX_SIZE_MB", 25.0),
        };
        let mb = std::env::var(var)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v >= 0.0);
        (mb.unwrap_or(default_mb) * 1024.0 * 1024.0) as u64
    }
}

/// Counters of one kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct KindStats {
    /// Entries stored.
    pub entries: u64,
    /// Bytes of keys and values stored.
    pub bytes: u64,
    /// Size limit.
    pub max_bytes: u64,
    /// Lookups that found a value (since the cache was opened).
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries removed to keep the kind under its limit.
    pub evictions: u64,
}

/// A stored entry with its frecency counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The complete key.
    pub key: String,
    /// The stored bytes.
    pub value: Vec<u8>,
    /// How often it was stored or read.
    pub frequency: i64,
    /// Its last use, microseconds since 1970.
    pub last_access_us: i64,
}

/// The counters of one kind alone (no query: cheap enough to read around every request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lookups that found a value.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries evicted.
    pub evictions: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// The cache.
pub struct FrecencyCache {
    path: PathBuf,
    conn: Mutex<Connection>,
    memory: Mutex<HashMap<(Kind, String), Vec<u8>>>,
    limits: HashMap<Kind, u64>,
    counters: HashMap<Kind, Counters>,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
    )?;
    for kind in Kind::ALL {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, value BLOB NOT NULL, \
             frequency INTEGER NOT NULL DEFAULT 1, last_access INTEGER NOT NULL, size INTEGER NOT NULL); \
             CREATE INDEX IF NOT EXISTS {t}_frecency ON {t} (frequency, last_access);",
            t = kind.table()
        ))?;
    }
    Ok(())
}

/// Opens the SQLite file at `path`, made 0600 first: SQLite gives its -wal and -shm files the
/// database file's mode, so the journal is as private as the cache.
fn open_private(path: &Path) -> rusqlite::Result<Connection> {
    let made = crate::private::create_file(path).and_then(|_| {
        for suffix in ["-wal", "-shm"] {
            crate::private::restrict(Path::new(&format!("{}{suffix}", path.display())))?;
        }
        Ok(())
    });
    if let Err(e) = made {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("cannot create {}: {e}", path.display())),
        ));
    }
    Connection::open(path)
}

fn open_or_recover(path: &Path) -> Result<Connection, String> {
    let attempt = open_private(path).map_err(|e| e.to_string()).and_then(|c| {
        init(&c).map_err(|e| e.to_string())?;
        Ok(c)
    });
    match attempt {
        Ok(conn) => Ok(conn),
        Err(e) if e.contains("not a database") || e.contains("malformed") => {
            let aside = path.with_extension(format!("corrupted.{}", now_us() / 1_000_000));
            tracing::warn!(file = %path.display(), moved_to = %aside.display(), "cache file is corrupt; starting a new one");
            std::fs::rename(path, &aside)
                .map_err(|e| format!("cannot move the corrupt cache aside: {e}"))?;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            let conn = open_private(path).map_err(|e| e.to_string())?;
            init(&conn).map_err(|e| e.to_string())?;
            Ok(conn)
        }
        Err(e) => Err(e),
    }
}

impl FrecencyCache {
    /// Opens (or creates) the cache file with the environment's size limits.
    pub fn open(path: &Path) -> Result<Self, String> {
        let limits = Kind::ALL
            .iter()
            .map(|&k| (k, k.max_bytes_from_env()))
            .collect();
        Self::open_with_limits(path, limits)
    }

    /// Opens with explicit limits in bytes.
    pub fn open_with_limits(path: &Path, limits: HashMap<Kind, u64>) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            crate::private::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn = open_or_recover(path)?;
        Ok(FrecencyCache {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            memory: Mutex::new(HashMap::new()),
            limits,
            counters: Kind::ALL
                .iter()
                .map(|&k| (k, Counters::default()))
                .collect(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value for `key`, counting the lookup and bumping the entry's frecency.
    pub fn get(&self, kind: Kind, key: &str) -> Option<Vec<u8>> {
        let conn = self.conn.lock().unwrap();
        let bumped = conn
            .execute(
                &format!(
                    "UPDATE {} SET frequency = frequency + 1, last_access = ?2 WHERE key = ?1",
                    kind.table()
                ),
                params![key, now_us()],
            )
            .unwrap_or(0);
        let in_memory = (bumped > 0)
            .then(|| {
                self.memory
                    .lock()
                    .unwrap()
                    .get(&(kind, key.to_string()))
                    .cloned()
            })
            .flatten();
        let value = if bumped == 0 {
            None
        } else if in_memory.is_some() {
            in_memory
        } else {
            // Not read since the file was opened: load it and keep it in memory.
            let v: Option<Vec<u8>> = conn
                .query_row(
                    &format!("SELECT value FROM {} WHERE key = ?1", kind.table()),
                    [key],
                    |r| r.get(0),
                )
                .optional()
                .unwrap_or(None);
            if let Some(v) = &v {
                self.memory
                    .lock()
                    .unwrap()
                    .insert((kind, key.to_string()), v.clone());
            }
            v
        };
        let counter = &self.counters[&kind];
        match value {
            Some(_) => counter.hits.fetch_add(1, Ordering::Relaxed),
            None => counter.misses.fetch_add(1, Ordering::Relaxed),
        };
        value
    }

    /// Stores `value`, then evicts if the kind is over its limit.
    pub fn set(&self, kind: Kind, key: &str, value: &[u8]) {
        let conn = self.conn.lock().unwrap();
        let size = (key.len() + value.len()) as i64;
        let stored = conn.execute(
            &format!(
                "INSERT INTO {} (key, value, frequency, last_access, size) VALUES (?1, ?2, 1, ?3, ?4) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, frequency = frequency + 1, \
                 last_access = excluded.last_access, size = excluded.size",
                kind.table()
            ),
            params![key, value, now_us(), size],
        );
        if let Err(e) = stored {
            tracing::warn!(error = %e, "cache write failed");
            return;
        }
        self.memory
            .lock()
            .unwrap()
            .insert((kind, key.to_string()), value.to_vec());
        self.evict_if_needed(&conn, kind);
    }

    fn evict_if_needed(&self, conn: &Connection, kind: Kind) {
        let limit = self.limits[&kind];
        let total: i64 = conn
            .query_row(
                &format!("SELECT COALESCE(SUM(size), 0) FROM {}", kind.table()),
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if (total as u64) <= limit {
            return;
        }
        let target = limit * 8 / 10;
        let mut to_free = total as u64 - target;
        let victims: Vec<(String, i64)> = {
            let mut stmt = match conn.prepare(&format!(
                "SELECT key, size FROM {} ORDER BY \
                 CAST(frequency AS REAL) / (1.0 + (?1 - last_access) / 1000000.0) ASC, size DESC",
                kind.table()
            )) {
                Ok(s) => s,
                Err(_) => return,
            };
            let rows = stmt.query_map([now_us()], |r| Ok((r.get(0)?, r.get(1)?)));
            let mut chosen = Vec::new();
            for (key, size) in rows.into_iter().flatten().flatten() {
                if to_free == 0 {
                    break;
                }
                to_free = to_free.saturating_sub(size as u64);
                chosen.push((key, size));
            }
            chosen
        };
        let mut memory = self.memory.lock().unwrap();
        self.counters[&kind]
            .evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        for (key, _) in victims {
            let _ = conn.execute(
                &format!("DELETE FROM {} WHERE key = ?1", kind.table()),
                [&key],
            );
            memory.remove(&(kind, key));
        }
    }

    /// Counters of `kind`.
    pub fn stats(&self, kind: Kind) -> KindStats {
        let conn = self.conn.lock().unwrap();
        let (entries, bytes): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM {}",
                    kind.table()
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or((0, 0));
        let counter = &self.counters[&kind];
        KindStats {
            entries: entries as u64,
            bytes: bytes as u64,
            max_bytes: self.limits[&kind],
            hits: counter.hits.load(Ordering::Relaxed),
            misses: counter.misses.load(Ordering::Relaxed),
            evictions: counter.evictions.load(Ordering::Relaxed),
        }
    }

    /// The counters of `kind`, without counting entries.
    pub fn counts(&self, kind: Kind) -> Counts {
        let counter = &self.counters[&kind];
        Counts {
            hits: counter.hits.load(Ordering::Relaxed),
            misses: counter.misses.load(Ordering::Relaxed),
            evictions: counter.evictions.load(Ordering::Relaxed),
        }
    }

    /// Every entry of `kind`, for copying to another store (`st cache sync`).
    pub fn entries(&self, kind: Kind) -> Vec<Entry> {
        let conn = self.conn.lock().unwrap();
        let Ok(mut stmt) = conn.prepare(&format!(
            "SELECT key, value, frequency, last_access FROM {} ORDER BY key",
            kind.table()
        )) else {
            return Vec::new();
        };
        stmt.query_map([], |r| {
            Ok(Entry {
                key: r.get(0)?,
                value: r.get(1)?,
                frequency: r.get(2)?,
                last_access_us: r.get(3)?,
            })
        })
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
    }

    /// Adds an entry from another store. A key already here keeps its value; the counts merge as
    /// the larger frequency and the later access, so merging the same entry again changes
    /// nothing. Returns whether the key was new.
    pub fn merge(&self, kind: Kind, entry: &Entry) -> bool {
        let conn = self.conn.lock().unwrap();
        let existed = conn
            .query_row(
                &format!("SELECT 1 FROM {} WHERE key = ?1", kind.table()),
                [&entry.key],
                |_| Ok(()),
            )
            .is_ok();
        let merged = conn.execute(
            &format!(
                "INSERT INTO {} (key, value, frequency, last_access, size) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT(key) DO UPDATE SET frequency = max(frequency, excluded.frequency), \
                 last_access = max(last_access, excluded.last_access)",
                kind.table()
            ),
            params![
                entry.key,
                entry.value,
                entry.frequency.max(1),
                entry.last_access_us,
                (entry.key.len() + entry.value.len()) as i64
            ],
        );
        if let Err(e) = merged {
            tracing::warn!(error = %e, "cache merge failed");
            return false;
        }
        self.evict_if_needed(&conn, kind);
        !existed
    }

    /// Removes every entry of `kind`; returns how many.
    pub fn clear(&self, kind: Kind) -> u64 {
        let conn = self.conn.lock().unwrap();
        self.memory.lock().unwrap().retain(|(k, _), _| *k != kind);
        conn.execute(&format!("DELETE FROM {}", kind.table()), [])
            .unwrap_or(0) as u64
    }
}

/// The cache file: `<cache root>/caches/steadytext-rs.sqlite3` (a new name: SteadyText's files
/// hold Python pickles).
pub fn default_path() -> PathBuf {
    crate::paths::cache_root()
        .join("caches")
        .join("steadytext-rs.sqlite3")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("st-cache-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("cache.sqlite3")
    }

    fn limits(bytes: u64) -> HashMap<Kind, u64> {
        Kind::ALL.iter().map(|&k| (k, bytes)).collect()
    }

    #[test]
    fn merge_keeps_the_value_and_the_larger_counts() {
        let cache = FrecencyCache::open_with_limits(&temp("merge"), limits(1 << 20)).unwrap();
        cache.set(Kind::Generation, "k", b"mine");
        let theirs = Entry {
            key: "k".into(),
            value: b"theirs".to_vec(),
            frequency: 9,
            last_access_us: i64::MAX / 2,
        };
        assert!(!cache.merge(Kind::Generation, &theirs), "the key was here");
        assert!(cache.merge(
            Kind::Generation,
            &Entry {
                key: "new".into(),
                ..theirs.clone()
            }
        ));
        let entries = cache.entries(Kind::Generation);
        let k = entries.iter().find(|e| e.key == "k").unwrap();
        assert_eq!(k.value, b"mine", "a value is never overwritten");
        assert_eq!((k.frequency, k.last_access_us), (9, i64::MAX / 2));
        assert!(!cache.merge(
            Kind::Generation,
            &Entry {
                frequency: 2,
                last_access_us: 1,
                ..theirs
            }
        ));
        let again = cache.entries(Kind::Generation);
        assert_eq!(
            again, entries,
            "a smaller count or an older use changes nothing"
        );
    }

    #[test]
    fn hits_misses_and_persistence() {
        let path = temp("persist");
        let cache = FrecencyCache::open_with_limits(&path, limits(1 << 20)).unwrap();
        assert_eq!(cache.get(Kind::Generation, "k"), None);
        cache.set(Kind::Generation, "k", b"value");
        assert_eq!(
            cache.get(Kind::Generation, "k").as_deref(),
            Some(&b"value"[..])
        );
        assert_eq!(cache.get(Kind::Embedding, "k"), None, "kinds are separate");
        let stats = cache.stats(Kind::Generation);
        assert_eq!((stats.entries, stats.hits, stats.misses), (1, 1, 1));
        drop(cache);
        let reopened = FrecencyCache::open_with_limits(&path, limits(1 << 20)).unwrap();
        assert_eq!(
            reopened.get(Kind::Generation, "k").as_deref(),
            Some(&b"value"[..])
        );
    }

    #[test]
    fn eviction_keeps_the_hot_entry_and_shrinks_to_80_percent() {
        let path = temp("evict");
        let cache = FrecencyCache::open_with_limits(&path, limits(1000)).unwrap();
        cache.set(Kind::Generation, "hot", &[0; 90]);
        for _ in 0..20 {
            cache.get(Kind::Generation, "hot");
        }
        for i in 0..20 {
            cache.set(Kind::Generation, &format!("cold{i:02}"), &[1; 93]);
        }
        let stats = cache.stats(Kind::Generation);
        assert!(stats.bytes <= 1000, "{stats:?}");
        assert!(
            cache.get(Kind::Generation, "hot").is_some(),
            "the frequently used entry survives"
        );
        assert!(
            cache.get(Kind::Generation, "cold00").is_none(),
            "an old cold entry went first"
        );
    }

    #[test]
    fn a_corrupt_file_is_moved_aside() {
        let path = temp("corrupt");
        std::fs::write(
            &path,
            b"this is not a sqlite database, not at all, not even close....",
        )
        .unwrap();
        let cache = FrecencyCache::open_with_limits(&path, limits(1 << 20)).unwrap();
        cache.set(Kind::Embedding, "k", b"v");
        assert_eq!(cache.get(Kind::Embedding, "k").as_deref(), Some(&b"v"[..]));
        let aside = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".corrupted."));
        assert!(aside, "the corrupt file was kept aside");
    }

    #[test]
    fn clear_empties_one_kind() {
        let path = temp("clear");
        let cache = FrecencyCache::open_with_limits(&path, limits(1 << 20)).unwrap();
        cache.set(Kind::Generation, "a", b"1");
        cache.set(Kind::Embedding, "a", b"1");
        assert_eq!(cache.clear(Kind::Generation), 1);
        assert_eq!(cache.stats(Kind::Generation).entries, 0);
        assert_eq!(cache.stats(Kind::Embedding).entries, 1);
    }
}
