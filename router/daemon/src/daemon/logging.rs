//! Logging: stderr (journald under systemd) and, when `[logging] file` is set, that file too,
//! rotated to `<file>.1` once it passes `max_size` (the seed's 10 MB).
//!
//! The daemon runs as root, so the file is opened the careful way: only inside the log
//! directory (`--log-dir`, /var/log by default), walking down from it without following
//! symlinks (O_NOFOLLOW on every step), only a regular file of ours with one link, and
//! rotation renames the file only while the name still holds the very file we opened.

use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode};
use routeros_shared::config::{log_path_problem, parse_size, LoggingConfig};
use std::ffi::OsString;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where the daemon's log file may be unless `--log-dir` says otherwise.
pub const DEFAULT_LOG_DIR: &str = "/var/log";

/// `RUST_LOG` wins over `[logging] level` so a developer can turn on debug output ad hoc.
pub fn init(cfg: &LoggingConfig, log_dir: &Path) {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(cfg.level.to_ascii_lowercase()))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let file = cfg.file.as_ref().and_then(|path| {
        let max = parse_size(&cfg.max_size).unwrap_or(10 << 20);
        match RotatingFile::open(log_dir, path, max) {
            Ok(f) => Some(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(false)
                    .with_writer(f)
                    .with_filter(filter()),
            ),
            Err(e) => {
                eprintln!(
                    "logging only to stderr: logging.file `{}`: {e}",
                    path.display()
                );
                None
            }
        }
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

/// The directories below `log_dir` and the file name of `path`, or why `path` may not be
/// the log file: it must be absolute, free of `.`/`..` and inside `log_dir`.
pub fn log_file_location(log_dir: &Path, path: &Path) -> Result<(Vec<OsString>, OsString), String> {
    if let Some(p) = log_path_problem(path) {
        return Err(p);
    }
    let outside = || {
        format!(
            "`{}` is not inside the log directory {}",
            path.display(),
            log_dir.display()
        )
    };
    let mut rest: Vec<OsString> = match path.strip_prefix(log_dir) {
        Ok(rest) => rest
            .components()
            .map(|c| match c {
                Component::Normal(n) => Ok(n.to_os_string()),
                _ => Err(outside()),
            })
            .collect::<Result<_, _>>()?,
        Err(_) => return Err(outside()),
    };
    let name = rest.pop().ok_or_else(outside)?;
    Ok((rest, name))
}

fn io_err(e: impl Into<std::io::Error>) -> std::io::Error {
    e.into()
}

fn other(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Open (creating as needed, mode 0750) each directory of `dirs` below `base`, never
/// following a symlink.
fn open_dirs(base: &Path, dirs: &[OsString]) -> std::io::Result<OwnedFd> {
    // The base is root's own choice (a CLI flag), so it may be reached through links.
    let mut dir: OwnedFd = File::open(base)
        .map_err(|e| other(format!("log directory {}: {e}", base.display())))?
        .into();
    for d in dirs {
        let sub = Path::new(d);
        match mkdirat(&dir, sub, Mode::from_bits_truncate(0o750)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(io_err(e)),
        }
        dir = openat(&dir, sub, DIR_FLAGS, Mode::empty()).map_err(|e| {
            other(format!(
                "{}: {e} (a symlink is not followed)",
                sub.display()
            ))
        })?;
    }
    Ok(dir)
}

/// Open `name` in `dir` for appending: no symlink, a regular file with one link, owned by us.
fn open_in(dir: &OwnedFd, name: &Path) -> std::io::Result<(File, FileStat)> {
    let fd = openat(
        dir,
        name,
        OFlag::O_WRONLY
            | OFlag::O_APPEND
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NONBLOCK,
        Mode::from_bits_truncate(0o640),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP => other("it is a symlink, which is not followed".into()),
        e => io_err(e),
    })?;
    let st = fstat(&fd).map_err(io_err)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(other("not a regular file".into()));
    }
    if st.st_nlink != 1 {
        return Err(other(format!(
            "it has {} hard links; a log file has one",
            st.st_nlink
        )));
    }
    if st.st_uid != nix::unistd::geteuid().as_raw() {
        return Err(other(format!("owned by uid {}, not by us", st.st_uid)));
    }
    Ok((File::from(fd), st))
}

struct Open {
    file: File,
    /// (device, inode) of `file`: the name is only renamed while it still points here.
    id: (u64, u64),
    size: u64,
}

impl Open {
    fn new(dir: &OwnedFd, name: &Path) -> std::io::Result<Self> {
        let (file, st) = open_in(dir, name)?;
        Ok(Self {
            file,
            id: (st.st_dev, st.st_ino),
            size: u64::try_from(st.st_size).unwrap_or(0),
        })
    }
}

/// An append-only log file that moves itself to `<name>.1` when it grows past `max` bytes.
#[derive(Clone)]
struct RotatingFile {
    inner: Arc<Mutex<Open>>,
    dir: Arc<OwnedFd>,
    name: PathBuf,
    max: u64,
}

impl RotatingFile {
    fn open(log_dir: &Path, path: &Path, max: u64) -> std::io::Result<Self> {
        let (dirs, name) = log_file_location(log_dir, path).map_err(other)?;
        let dir = open_dirs(log_dir, &dirs)?;
        let name = PathBuf::from(name);
        let open = Open::new(&dir, &name)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(open)),
            dir: Arc::new(dir),
            name,
            max,
        })
    }

    /// `incoming` more bytes would take the file past `max`: rename our file to `<name>.1`
    /// and start a new one. When the name no longer holds our file (removed, or replaced by
    /// something else) nothing is renamed: the name is opened again by the same rules.
    fn rotate(&self, open: &mut Open, incoming: u64) -> std::io::Result<()> {
        // logrotate's copytruncate empties the file under us: trust the file, not the count.
        if let Ok(st) = fstat(&open.file) {
            open.size = u64::try_from(st.st_size).unwrap_or(open.size);
        }
        if open.size + incoming <= self.max {
            return Ok(());
        }
        let ours = fstatat(&*self.dir, &self.name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| (st.st_dev, st.st_ino) == open.id);
        if ours {
            let mut old = self.name.clone().into_os_string();
            old.push(".1");
            renameat(&*self.dir, &self.name, &*self.dir, Path::new(&old)).map_err(io_err)?;
        }
        *open = Open::new(&self.dir, &self.name)?;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let incoming = buf.len() as u64;
        if guard.size + incoming > self.max {
            self.rotate(&mut guard, incoming)?;
        }
        let n = guard.file.write(buf)?;
        guard.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .flush()
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RotatingFile;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("routeros-log-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn log_file_must_lie_inside_the_log_dir() {
        let dir = Path::new("/var/log");
        let at = |p: &str| log_file_location(dir, Path::new(p));
        assert_eq!(
            at("/var/log/routeros.log"),
            Ok((vec![], "routeros.log".into()))
        );
        assert_eq!(
            at("/var/log/routeros/r.log"),
            Ok((vec!["routeros".into()], "r.log".into()))
        );
        for (path, why) in [
            ("/etc/passwd", "is not inside the log directory /var/log"),
            (
                "/var/logx/r.log",
                "is not inside the log directory /var/log",
            ),
            ("/var/log", "is not inside the log directory /var/log"),
            ("/var/log/../../etc/shadow", "may not contain `.` or `..`"),
            ("/var/log/./r.log", "may not contain `.` or `..`"),
            ("var/log/r.log", "is not an absolute path"),
        ] {
            let err = at(path).unwrap_err();
            assert!(err.ends_with(why), "{path}: {err}");
        }
    }

    #[test]
    fn file_rotates_past_max_size() {
        let dir = tmp("rotate");
        let path = dir.join("r.log");
        let mut f = RotatingFile::open(&dir, &path, 100).unwrap();
        f.write_all(&[b'a'; 80]).unwrap();
        f.write_all(&[b'b'; 30]).unwrap();
        assert_eq!(std::fs::read(dir.join("r.log.1")).unwrap(), [b'a'; 80]);
        assert_eq!(std::fs::read(&path).unwrap(), [b'b'; 30]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn symlinks_and_hard_links_are_not_followed() {
        let dir = tmp("links");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let logs = dir.join("logs");
        std::fs::create_dir(&logs).unwrap();

        symlink(&victim, logs.join("r.log")).unwrap();
        let err = RotatingFile::open(&logs, &logs.join("r.log"), 100)
            .err()
            .unwrap();
        assert!(err.to_string().contains("symlink"), "{err}");

        symlink(&dir, logs.join("sub")).unwrap();
        let err = RotatingFile::open(&logs, &logs.join("sub/victim"), 100)
            .err()
            .unwrap();
        assert!(err.to_string().contains("symlink"), "{err}");

        std::fs::hard_link(&victim, logs.join("h.log")).unwrap();
        let err = RotatingFile::open(&logs, &logs.join("h.log"), 100)
            .err()
            .unwrap();
        assert!(err.to_string().contains("hard links"), "{err}");

        let err = RotatingFile::open(&logs, &dir.join("victim"), 100)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("not inside the log directory"),
            "{err}"
        );

        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!logs.join("r.log.1").exists() && !logs.join("h.log.1").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rotation_renames_only_the_file_it_opened() {
        let dir = tmp("swap");
        let path = dir.join("r.log");
        let mut f = RotatingFile::open(&dir, &path, 100).unwrap();
        f.write_all(&[b'a'; 80]).unwrap();

        // Someone puts another file at the name: it is not ours to move.
        std::fs::write(dir.join("other"), "other").unwrap();
        std::fs::rename(dir.join("other"), &path).unwrap();
        f.write_all(&[b'b'; 30]).unwrap();
        assert!(
            !dir.join("r.log.1").exists(),
            "a file we did not open was renamed"
        );
        assert_eq!(std::fs::read(&path).unwrap()[..5], *b"other");

        // A symlink at the name: neither renamed nor followed, the write fails.
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let mut g = RotatingFile::open(&dir, &dir.join("g.log"), 100).unwrap();
        g.write_all(&[b'c'; 80]).unwrap();
        std::fs::remove_file(dir.join("g.log")).unwrap();
        symlink(&victim, dir.join("g.log")).unwrap();
        assert!(g.write_all(&[b'd'; 30]).is_err());
        assert!(!dir.join("g.log.1").exists());
        assert!(std::fs::symlink_metadata(dir.join("g.log"))
            .unwrap()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn copytruncate_resets_the_count_without_rotating() {
        let dir = tmp("truncate");
        let path = dir.join("r.log");
        let mut f = RotatingFile::open(&dir, &path, 100).unwrap();
        f.write_all(&[b'a'; 80]).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        f.write_all(&[b'b'; 30]).unwrap();
        assert!(!dir.join("r.log.1").exists());
        assert_eq!(std::fs::read(&path).unwrap(), [b'b'; 30]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
