//! The daemon's credentials in files: its CURVE key pair (the daemon proves who it is) and its
//! token (a client proves it may do more than use models by name).
//!
//! A client pins the daemon's public key: ZeroMQ's CURVE handshake (RFC 26, CurveZMQ) then
//! succeeds only with the process that holds the matching secret key, and everything after it
//! (the token included) is encrypted under short-term keys, so a listener learns nothing it can
//! replay and a process that binds the daemon's port while the daemon is down receives neither
//! a request nor a credential. Clients use a fresh key pair for every connection; the daemon
//! does not check them (who may do what is the token's business, inside the encrypted channel).
//!
//! Key files are CZMQ's certificate format (`zcert`), so ZeroMQ's own tools read them:
//!
//! ```text
//! metadata
//! curve
//!     public-key = "<40 characters of Z85>"
//!     secret-key = "<40 characters of Z85>"      (the secret file only)
//! ```
//!
//! A file holding only the key's 40 Z85 characters is read too. Files with secrets are created
//! once, whole and 0600, by linking a finished temporary file into place: processes that race
//! to create one (PostgreSQL backends at their first call) all end up reading the same file,
//! never a half-written one.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};

/// A CURVE key (public or secret): 32 bytes.
pub type Key = [u8; 32];

/// The daemon's key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// What clients pin.
    pub public: Key,
    /// What only the daemon holds.
    pub secret: Key,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &z85_encode(&self.public))
            .finish_non_exhaustive()
    }
}

/// Whether this process's libzmq has CURVE (it needs libsodium; Debian's has it).
pub fn curve_available() -> bool {
    zmq::has("curve") == Some(true)
}

fn no_curve() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "this libzmq was built without CURVE (libsodium), so the daemon cannot prove who it is",
    )
}

impl KeyPair {
    /// A new random key pair.
    pub fn generate() -> Result<KeyPair> {
        if !curve_available() {
            return Err(no_curve());
        }
        let pair = zmq::CurveKeyPair::new()
            .map_err(|e| Error::new(ErrorKind::Unavailable, format!("CURVE key pair: {e}")))?;
        Ok(KeyPair {
            public: pair.public_key,
            secret: pair.secret_key,
        })
    }

    /// The pair of a secret key (the public key is computed from it).
    pub fn from_secret(secret: Key) -> Result<KeyPair> {
        if !curve_available() {
            return Err(no_curve());
        }
        extern "C" {
            // libzmq >= 4.2 (zmq-sys links it but does not export this one).
            fn zmq_curve_public(
                z85_public_key: *mut std::ffi::c_char,
                z85_secret_key: *const std::ffi::c_char,
            ) -> std::ffi::c_int;
        }
        let secret_z85 = std::ffi::CString::new(z85_encode(&secret)).expect("Z85 has no NUL");
        let mut public_z85 = [0u8; 41];
        // SAFETY: both buffers are 41 bytes (40 characters and a NUL), as the function needs.
        let rc = unsafe {
            zmq_curve_public(
                public_z85.as_mut_ptr().cast::<std::ffi::c_char>(),
                secret_z85.as_ptr(),
            )
        };
        if rc != 0 {
            return Err(no_curve());
        }
        let public = std::str::from_utf8(&public_z85[..40])
            .ok()
            .and_then(|s| z85_decode(s).ok())
            .ok_or_else(|| Error::protocol("libzmq computed no public key"))?;
        Ok(KeyPair { public, secret })
    }

    /// The secret certificate (both keys).
    fn secret_file_text(&self) -> String {
        format!(
            "#   ZeroMQ CURVE **Secret** Certificate of an st daemon\n\
             #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n\
             metadata\ncurve\n    public-key = \"{}\"\n    secret-key = \"{}\"\n",
            z85_encode(&self.public),
            z85_encode(&self.secret)
        )
    }
}

/// The public certificate of a key: what a client needs.
pub fn public_file_text(public: &Key) -> String {
    format!(
        "#   ZeroMQ CURVE Public Certificate of an st daemon\n\
         #   Clients pin it: STEADYTEXT_DAEMON_PUBLIC_KEY_FILE or `st --public-key-file`.\n\n\
         metadata\ncurve\n    public-key = \"{}\"\n",
        z85_encode(public)
    )
}

const Z85: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// A key as 40 characters of Z85 (ZeroMQ's text form of keys).
pub fn z85_encode(key: &Key) -> String {
    let mut out = String::with_capacity(40);
    for chunk in key.chunks(4) {
        let mut value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut digits = [0u8; 5];
        for d in digits.iter_mut().rev() {
            *d = Z85[(value % 85) as usize];
            value /= 85;
        }
        out.extend(digits.iter().map(|&b| b as char));
    }
    out
}

/// A key from its 40 Z85 characters; anything else (ZeroMQ's decoder accepts characters
/// outside the alphabet and other lengths) is an error.
pub fn z85_decode(text: &str) -> std::result::Result<Key, String> {
    let bytes = text.as_bytes();
    if bytes.len() != 40 {
        return Err(format!(
            "a CURVE key is 40 characters of Z85, not {}",
            bytes.len()
        ));
    }
    let mut key = [0u8; 32];
    for (i, chunk) in bytes.chunks(5).enumerate() {
        let mut value: u64 = 0;
        for &c in chunk {
            let digit = Z85
                .iter()
                .position(|&z| z == c)
                .ok_or_else(|| format!("{:?} is not a Z85 character", c as char))?;
            value = value * 85 + digit as u64;
        }
        let value = u32::try_from(value).map_err(|_| "a Z85 group out of range".to_string())?;
        key[i * 4..i * 4 + 4].copy_from_slice(&value.to_be_bytes());
    }
    Ok(key)
}

/// The value of `name = "..."` in a certificate, or the whole text when it is a bare key.
fn field(text: &str, name: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(name) {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_string());
        }
    }
    // Z85 has '#', but never first in a key (a group of five stays below 2^32).
    let bare: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    match bare[..] {
        // Z85 has '=' but no space; a certificate's lines have spaces.
        [only] if only.len() == 40 && !only.contains(' ') => Some(only.to_string()),
        _ => None,
    }
}

fn invalid_file(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{}: {why}", path.display()))
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

/// The daemon's key pair from its secret key file. A `public-key` in the file must be the
/// secret key's.
pub fn read_secret_key_file(path: &Path) -> Result<KeyPair> {
    let text = read(path)?;
    let secret = field(&text, "secret-key")
        .ok_or_else(|| invalid_file(path, "no secret-key in it"))
        .and_then(|z| z85_decode(&z).map_err(|e| invalid_file(path, e)))?;
    let pair = KeyPair::from_secret(secret)?;
    if let Some(public) = text
        .contains("public-key")
        .then(|| field(&text, "public-key"))
    {
        let public = public
            .ok_or_else(|| invalid_file(path, "an unreadable public-key"))
            .and_then(|z| z85_decode(&z).map_err(|e| invalid_file(path, e)))?;
        if public != pair.public {
            return Err(invalid_file(path, "its public-key is not its secret key's"));
        }
    }
    Ok(pair)
}

/// The daemon's public key from a public key file (a secret key file is read too: its owner
/// may pin the key it holds).
pub fn read_public_key_file(path: &Path) -> Result<Key> {
    let text = read(path)?;
    if text.contains("secret-key") {
        return read_secret_key_file(path).map(|pair| pair.public);
    }
    field(&text, "public-key")
        .ok_or_else(|| invalid_file(path, "no public-key in it"))
        .and_then(|z| z85_decode(&z).map_err(|e| invalid_file(path, e)))
}

/// Makes `path` hold `contents` with `mode` unless it exists: whichever of several racing
/// processes links its finished file first wins, and every process then reads that one.
/// Returns whether this call created it.
pub fn create_once(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp: PathBuf = dir.join(format!(
        ".{name}.{}.{nanos}.{unique}.tmp",
        std::process::id()
    ));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(contents)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // link(2) never replaces an existing file: the first complete file stays.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// The key pair in `secret_path`, made there (0600) on first use.
pub fn ensure_secret_key_file(secret_path: &Path) -> Result<KeyPair> {
    if !secret_path.exists() {
        let pair = KeyPair::generate()?;
        create_once(secret_path, pair.secret_file_text().as_bytes(), 0o600).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot create {}: {e}", secret_path.display()),
            )
        })?;
    }
    read_secret_key_file(secret_path)
}

/// Writes the public certificate of `public` at `path` (mode 0644 whatever the umask: clients
/// of other users read it; replaced whole when it differs).
pub fn write_public_key_file(path: &Path, public: &Key) -> Result<()> {
    let text = public_file_text(public);
    if fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let fail = |e: io::Error| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(fs::Permissions::from_mode(0o644))?;
            f.write_all(text.as_bytes())
        })
        .map_err(fail)?;
    fs::rename(&tmp, path).map_err(fail)
}

/// The token in `path`, made there (0600, 64 hexadecimal digits from /dev/urandom) on first
/// use.
pub fn ensure_token_file(path: &Path) -> Result<String> {
    let fail = |e: io::Error| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot create {}: {e}", path.display()),
        )
    };
    if !path.exists() {
        let mut bytes = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(fail)?;
        create_once(path, hex::encode(bytes).as_bytes(), 0o600).map_err(fail)?;
    }
    let token = read(path)?.trim().to_string();
    if token.is_empty() {
        return Err(invalid_file(path, "the token file is empty"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z85_is_zeromq_s() {
        // The test vector of ZeroMQ's RFC 32 (Z85), padded to a key's length.
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&[0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]);
        assert!(z85_encode(&key).starts_with("HelloWorld"));
        let mut rng = fastrand::Rng::with_seed(32);
        for _ in 0..1000 {
            let key: Key = std::array::from_fn(|_| rng.u8(..));
            let text = z85_encode(&key);
            assert_eq!(z85_decode(&text), Ok(key));
            let theirs = zmq::z85_encode(&key).unwrap();
            assert_eq!(text, theirs, "the same text as libzmq's encoder");
        }
        assert!(z85_decode("HelloWorld").is_err(), "too short");
        assert!(
            z85_decode(&"\"".repeat(40)).is_err(),
            "outside the alphabet"
        );
        assert!(z85_decode(&"#".repeat(40)).is_err(), "a group above 2^32");
    }

    #[test]
    fn the_public_key_is_the_secret_key_s() {
        let pair = KeyPair::generate().unwrap();
        assert_eq!(KeyPair::from_secret(pair.secret).unwrap(), pair);
        let dir = std::env::temp_dir().join(format!("st-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("daemon.key");
        fs::write(&secret, pair.secret_file_text()).unwrap();
        assert_eq!(read_secret_key_file(&secret).unwrap(), pair);
        assert_eq!(read_public_key_file(&secret).unwrap(), pair.public);
        let public = dir.join("daemon.pub");
        write_public_key_file(&public, &pair.public).unwrap();
        assert_eq!(read_public_key_file(&public).unwrap(), pair.public);
        assert!(read_secret_key_file(&public).is_err(), "no secret in it");
        // A bare key, as libzmq's curve_keygen prints it (Z85 has '=' and '#'), and a
        // certificate, for keys of every shape.
        let mut rng = fastrand::Rng::with_seed(26);
        let mut keys: Vec<Key> = (0..200)
            .map(|_| std::array::from_fn(|_| rng.u8(..)))
            .collect();
        keys.push(z85_decode(&format!("=#{}", "0".repeat(38))).unwrap());
        for key in &keys {
            fs::write(&public, format!("{}\n", z85_encode(key))).unwrap();
            assert_eq!(&read_public_key_file(&public).unwrap(), key);
            fs::write(&public, public_file_text(key)).unwrap();
            assert_eq!(&read_public_key_file(&public).unwrap(), key);
        }
        eprintln!("{} keys read back from both forms", keys.len());
        // A secret file whose public key is another's.
        let other = KeyPair::generate().unwrap();
        let forged = pair
            .secret_file_text()
            .replace(&z85_encode(&pair.public), &z85_encode(&other.public));
        fs::write(&secret, forged).unwrap();
        assert!(read_secret_key_file(&secret).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    /// Processes racing at their first call: every one reads the same complete key and token,
    /// and the files are 0600.
    #[test]
    fn racing_creators_share_one_complete_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("st-keys-race-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let rounds = 20;
        for round in 0..rounds {
            let key_path = dir.join(format!("daemon-{round}.key"));
            let token_path = dir.join(format!("daemon-{round}.token"));
            let seen: Vec<(KeyPair, String)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            (
                                ensure_secret_key_file(&key_path).unwrap(),
                                ensure_token_file(&token_path).unwrap(),
                            )
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(seen.windows(2).all(|w| w[0] == w[1]), "round {round}");
            for path in [&key_path, &token_path] {
                let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
        eprintln!("{rounds} rounds of 8 racing creators");
        let _ = fs::remove_dir_all(&dir);
    }
}
