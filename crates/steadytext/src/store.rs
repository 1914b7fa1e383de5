//! The model store: where model files live, how a missing one is downloaded, and each file's
//! sha256 fingerprint.
//!
//! Files sit flat in the models directory (`~/.cache/steadytext/models/<filename>`), as
//! SteadyText keeps them, so a machine that already has SteadyText's downloads reuses them.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::paths::{cache_root, models_dir};
use crate::registry::ModelSource;
use crate::role::Role;

/// Whether downloads are allowed (`STEADYTEXT_ALLOW_MODEL_DOWNLOADS`, default true as in
/// SteadyText's code).
pub fn downloads_allowed() -> bool {
    match std::env::var("STEADYTEXT_ALLOW_MODEL_DOWNLOADS") {
        Ok(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "false" | "0" | "no" | "off"
        ),
        Err(_) => true,
    }
}

/// How to fetch a missing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Only use what is on disk.
    LocalOnly,
    /// Download a registry model when the environment allows.
    IfAllowed,
}

/// Who may name which files. Checked on the names alone, before any file is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPolicy {
    /// Any path (superusers, the operator's own settings, the command line).
    Any,
    /// Registry models and file names inside the models directory only: no `/`, no `..`.
    ModelsDirOnly,
}

/// Checks `source` against `policy` without touching the file system.
pub fn check_policy(source: &ModelSource, policy: PathPolicy) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::forbidden(format!(
            "{what}: naming model files by path is not allowed here (superusers in SQL and \
             trusted daemon clients only); name a registry model (st models list) or a .gguf \
             file in the models directory"
        )))
    };
    let plain = |name: &str| !name.contains('/') && !name.contains('\\') && !name.contains("..");
    match (source, policy) {
        (ModelSource::Hub { filename, .. }, _)
            if filename.contains("..") || filename.starts_with('/') =>
        {
            refuse(&format!("model file name '{filename}'"))
        }
        (_, PathPolicy::Any) => Ok(()),
        (ModelSource::Path(path), PathPolicy::ModelsDirOnly) => {
            refuse(&format!("model path '{}'", path.display()))
        }
        (ModelSource::File(name), PathPolicy::ModelsDirOnly) if !plain(name) => {
            refuse(&format!("model file name '{name}'"))
        }
        (ModelSource::Hub { filename, .. }, PathPolicy::ModelsDirOnly) if !plain(filename) => {
            refuse(&format!("model file name '{filename}'"))
        }
        _ => Ok(()),
    }
}

/// The local path of `source`, downloading it first when it is a registry model that is missing
/// and `fetch` permits. Call [`check_policy`] first.
pub fn locate(source: &ModelSource, role: Role, fetch: Fetch) -> Result<PathBuf> {
    let dir = models_dir();
    match source {
        ModelSource::Path(path) if path.is_file() => Ok(path.clone()),
        ModelSource::Path(path) => Err(Error::new(
            ErrorKind::ModelMissing,
            format!("model file {} does not exist", path.display()),
        )),
        ModelSource::File(name) => {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(path);
            }
            Err(Error::new(
                ErrorKind::ModelMissing,
                format!(
                    "model file {name} is not in the models directory {}",
                    dir.display()
                ),
            ))
        }
        ModelSource::Hub { repo, filename, .. } => {
            let local = dir.join(filename);
            if local.is_file() {
                return Ok(local);
            }
            let missing = |reason: &str| missing_model(role, repo, filename, &dir, reason);
            match fetch {
                Fetch::LocalOnly => Err(missing("downloads are off here")),
                Fetch::IfAllowed if !source.in_registry() => {
                    Err(missing("only registry models are downloaded"))
                }
                Fetch::IfAllowed if !downloads_allowed() => Err(missing(
                    "STEADYTEXT_ALLOW_MODEL_DOWNLOADS=false forbids downloading it",
                )),
                Fetch::IfAllowed => download(repo, filename, &dir)
                    .map_err(|e| missing(&format!("the download failed ({e})"))),
            }
        }
    }
}

fn missing_model(role: Role, repo: &str, filename: &str, dir: &Path, reason: &str) -> Error {
    Error::new(
        ErrorKind::ModelMissing,
        format!(
            "model file {filename} (Hugging Face repo {repo}) is not in {} and {reason}; download \
             it with `st models download` on a machine with network access and copy it there, or \
             choose another {} model",
            dir.display(),
            role.as_str()
        ),
    )
}

/// Downloads `repo/filename` into `dir` with a progress bar; an interrupted download resumes.
///
/// A directory made here is private (0700), like everything else `st` makes. The model file
/// is public data (anyone can fetch the same bytes, and its sha256 names it), so it is made as
/// readable as the directory it lands in: private in a private directory, readable by all in a
/// models directory an administrator shared (never writable by others).
pub fn download(repo: &str, filename: &str, dir: &Path) -> Result<PathBuf, String> {
    crate::private::create_dir_all(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // from_env honours HF_ENDPOINT (mirrors) and HF_TOKEN.
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_cache_dir(dir.join(".hub"))
        // A progress bar only where someone can see it (not in a server log).
        .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_retries(3)
        .build()
        .map_err(|e| e.to_string())?;
    let fetched = api
        .model(repo.to_string())
        .get(filename)
        .map_err(|e| e.to_string())?;
    let target = dir.join(filename);
    // The hub cache keeps the blob; the flat name is what SteadyText and we look for.
    let blob = fs::canonicalize(&fetched).unwrap_or(fetched);
    fs::hard_link(&blob, &target)
        .or_else(|_| fs::copy(&blob, &target).map(|_| ()))
        .map_err(|e| format!("cannot place {}: {e}", target.display()))?;
    let dir_mode = fs::metadata(dir).map_or(0, |m| m.permissions().mode());
    let mode = 0o600 | (dir_mode & 0o044);
    fs::set_permissions(&target, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", target.display()))?;
    Ok(target)
}

/// Identity of a file's contents as far as a memo can tell without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileStamp {
    path: PathBuf,
    len: u64,
    modified_ns: u128,
}

impl FileStamp {
    fn of(path: &Path) -> Result<Self> {
        let meta =
            fs::metadata(path).map_err(|e| Error::io(format!("stat {}", path.display()), e))?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            path: fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            len: meta.len(),
            modified_ns,
        })
    }

    fn memo_key(&self) -> String {
        format!("{}|{}|{}", self.path.display(), self.len, self.modified_ns)
    }
}

static FINGERPRINTS: Mutex<Option<HashMap<FileStamp, String>>> = Mutex::new(None);

fn memo_file() -> PathBuf {
    cache_root().join("fingerprints.json")
}

fn read_memo() -> HashMap<String, String> {
    fs::read(memo_file())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_memo(key: String, sha: &str) {
    // Best effort: a read-only home only costs a re-hash in the next process.
    let mut memo = read_memo();
    memo.insert(key, sha.to_string());
    if let Ok(bytes) = serde_json::to_vec_pretty(&memo) {
        let _ = crate::private::write_atomic(&memo_file(), &bytes);
    }
}

/// The file's sha256 in lower-case hex. Computed once per file version: remembered in the
/// process and in `<cache root>/fingerprints.json`, keyed by path, size and mtime.
pub fn sha256_of(path: &Path) -> Result<String> {
    let stamp = FileStamp::of(path)?;
    if let Some(sha) = FINGERPRINTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .get(&stamp)
    {
        return Ok(sha.clone());
    }
    let key = stamp.memo_key();
    let sha = match read_memo().get(&key) {
        Some(sha) => sha.clone(),
        None => {
            let sha = hash_file(path)?;
            write_memo(key, &sha);
            sha
        }
    };
    FINGERPRINTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(stamp, sha.clone());
    Ok(sha)
}

fn hash_file(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_paths_for_the_restricted_before_touching_files() {
        let restricted = PathPolicy::ModelsDirOnly;
        for source in [
            ModelSource::Path("/etc/passwd".into()),
            ModelSource::File("../../etc/passwd".into()),
            ModelSource::File("a/b.gguf".into()),
            ModelSource::Hub {
                repo: "x/y".into(),
                filename: "../z.gguf".into(),
                n_ctx: None,
            },
        ] {
            let e = check_policy(&source, restricted).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{source:?}");
        }
        assert!(check_policy(&ModelSource::File("m.gguf".into()), restricted).is_ok());
        assert!(check_policy(&ModelSource::Path("/etc/passwd".into()), PathPolicy::Any).is_ok());
        let up = ModelSource::Hub {
            repo: "x/y".into(),
            filename: "../z.gguf".into(),
            n_ctx: None,
        };
        assert!(check_policy(&up, PathPolicy::Any).is_err());
    }

    #[test]
    fn sha256_matches_known_value() {
        let dir = std::env::temp_dir().join(format!("st-sha-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(
            hash_file(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
