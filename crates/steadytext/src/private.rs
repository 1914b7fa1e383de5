//! Files and directories only their owner may read or enter, whatever the umask.
//!
//! What `st` and the daemon write about their work (the cache and its journal, the fingerprint
//! memo, logs, pid files, keys, saved defaults) is created here: directories 0700, files 0600,
//! by the mode given to mkdir(2) and open(2) (a umask can only remove bits from those). A file
//! of ours that an older version left readable by others is made private when it is opened
//! again.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the directories created here.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files created here.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, each 0700 (existing ones are left as they are).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates the parent directory of `path` (see [`create_dir_all`]).
pub fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => create_dir_all(dir),
        None => Ok(()),
    }
}

/// Creates `path` 0600 if it is missing (its parents 0700); an existing file of this user's
/// that others may read or write loses those bits. Returns the file, open for appending.
pub fn create_file(path: &Path) -> io::Result<File> {
    create_parent(path)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    restrict_file(&file)?;
    Ok(file)
}

/// Creates `path` 0600, empty (replacing a file there).
pub fn create_truncated(path: &Path) -> io::Result<File> {
    create_parent(path)?;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    restrict_file(&file)?;
    Ok(file)
}

/// Takes the group and other bits off an open file of this user's.
fn restrict_file(file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() == me && meta.mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o700))?;
    }
    Ok(())
}

/// Takes the group and other bits off `path` when it is a file of this user's (missing: nothing
/// to do).
pub fn restrict(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => restrict_file(&file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `contents` whole (a 0600 file beside it, then a rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    create_parent(path)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let _ = fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under the most open umask, what this module creates is still private, and a file left
    /// readable by others is made private when opened again.
    #[test]
    fn private_whatever_the_umask() {
        let dir = std::env::temp_dir().join(format!("st-private-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        // SAFETY: umask(2) cannot fail; restored below (tests of this crate create no files
        // whose modes they check meanwhile, but be brief).
        let old = unsafe { libc::umask(0) };
        let made = (|| -> io::Result<()> {
            create_file(&dir.join("a/b/log"))?;
            write_atomic(&dir.join("c/memo.json"), b"{}")?;
            create_truncated(&dir.join("a/pid"))?;
            fs::write(dir.join("a/old"), b"x")?; // 0666 under umask 0
            create_file(&dir.join("a/old"))?;
            Ok(())
        })();
        unsafe { libc::umask(old) };
        made.unwrap();
        let mode = |p: &str| fs::metadata(dir.join(p)).unwrap().mode() & 0o777;
        for d in ["a", "a/b", "c"] {
            assert_eq!(mode(d), 0o700, "{d}");
        }
        for f in ["a/b/log", "c/memo.json", "a/pid", "a/old"] {
            assert_eq!(mode(f), 0o600, "{f}");
        }
        assert_eq!(fs::read(dir.join("c/memo.json")).unwrap(), b"{}");
        let _ = fs::remove_dir_all(&dir);
    }
}
