//! The daemon's pid file: written by the daemon itself once it holds its endpoint, read by
//! `st daemon stop|start|status`. It is the only way `stop` finds a process to signal: never a
//! pid that an answer over the wire names (whoever binds a free port can answer anything).
//! Which pid it names, and when that is believed, is `steadytext::daemon_pid`'s (clients of
//! the daemon read it too).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use steadytext::daemon_pid::stat;
pub use steadytext::daemon_pid::{alive, read};

/// Records this process in `path` (whole: written beside it, then renamed; 0600 in a directory
/// made 0700).
pub fn write(path: &Path) -> Result<()> {
    let pid = std::process::id();
    let (start, _) = stat(pid).context("cannot read /proc/self/stat")?;
    steadytext::private::write_atomic(path, format!("{pid} {start}\n").as_bytes())
        .with_context(|| format!("cannot write the pid file {}", path.display()))
}

/// Removes `path` if it still names this process.
pub fn remove_if_mine(path: &Path) {
    if read(path) == Some(std::process::id()) {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("st-pid-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A live process of this user that is not `st daemon run` is never named, whatever the
    /// file says; nor a reused pid (another start time); nor a file others may write.
    #[test]
    fn only_a_daemon_that_wrote_it_is_believed() {
        let dir = dir("read");
        let path = dir.join("daemon.pid");
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = sleeper.id();
        let (start, _) = stat(pid).unwrap();
        fs::write(&path, format!("{pid} {start}\n")).unwrap();
        assert_eq!(read(&path), None, "sleep is not st daemon run");
        // This test process, recorded by write(): alive and ours, but not `daemon run` either.
        write(&path).unwrap();
        assert_eq!(read(&path), None);
        let text = fs::read_to_string(&path).unwrap();
        let (p, s) = text.trim().split_once(' ').unwrap();
        assert_eq!(p, std::process::id().to_string());
        assert_eq!(
            s.parse::<u64>().unwrap(),
            stat(std::process::id()).unwrap().0
        );
        // A process that does run `daemon run` (by its arguments), under a wrong start time,
        // under the right one, in a file others may write, in a file without the start time.
        let mut daemonish = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :", "daemon", "run"])
            .spawn()
            .unwrap();
        let dpid = daemonish.id();
        let (dstart, _) = stat(dpid).unwrap();
        fs::write(&path, format!("{dpid} {}\n", dstart + 1)).unwrap();
        assert_eq!(read(&path), None, "another start time: a reused pid");
        fs::write(&path, format!("{dpid} {dstart}\n")).unwrap();
        assert_eq!(read(&path), Some(dpid));
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(read(&path), None, "a file others may write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, format!("{dpid}\n")).unwrap();
        assert_eq!(read(&path), None, "no start time");
        for child in [&mut sleeper, &mut daemonish] {
            let _ = child.kill();
            let _ = child.wait();
        }
        fs::write(&path, format!("{dpid} {dstart}\n")).unwrap();
        assert_eq!(read(&path), None, "a process that exited");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn remove_if_mine_leaves_another_s_file() {
        let dir = dir("remove");
        let path = dir.join("daemon.pid");
        fs::write(&path, "1 1\n").unwrap();
        remove_if_mine(&path);
        assert!(path.exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
