//! One daemon per state directory. A second `routeros-watchdog` with the same command line
//! would otherwise replace the first one's control socket and fight it over the kernel
//! state. The lock is an exclusive `flock` on a file in the state directory: the kernel
//! drops it when the holder exits in any way (kill -9 included), so a restart never finds
//! a stale lock, and the file is left in place (removing it would race with a new holder).

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Name of the lock file inside the state directory; it holds the holder's pid.
pub const LOCK_FILE: &str = "routeros-watchdog.lock";

/// Held for the life of the daemon; dropping it releases the lock.
pub struct InstanceLock {
    _file: Flock<File>,
}

/// Take the lock, or say who holds it.
pub fn acquire(state_dir: &Path) -> Result<InstanceLock, String> {
    let path = state_dir.join(LOCK_FILE);
    // No truncate on open: until we hold the lock the pid in it is the holder's.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut file) => {
            let pid = std::process::id();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{pid}"))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(InstanceLock { _file: file })
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "a process".to_string(),
            };
            Err(format!(
                "another routeros-watchdog ({holder}) is running with the state directory {} (it holds {}); stop it first (systemctl stop routeros-watchdog)",
                state_dir.display(),
                path.display()
            ))
        }
        Err((_, e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).expect("free lock");
        // flock locks belong to an open file description, so a second open in the same
        // process conflicts just as another process would.
        let err = acquire(dir.path()).err().expect("lock is held");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "names the holder: {err}"
        );
        assert!(err.contains(LOCK_FILE), "names the lock file: {err}");
        drop(first);
        let again = acquire(dir.path()).expect("released on drop");
        drop(again);
    }

    #[test]
    fn a_symlinked_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(LOCK_FILE)).unwrap();
        let err = acquire(dir.path()).err().expect("refused");
        assert!(err.contains("cannot open the lock file"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
