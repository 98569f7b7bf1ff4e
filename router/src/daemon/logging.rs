//! Logging: stderr (journald under systemd) and, when `[logging] file` is set, that file too,
//! rotated to `<file>.1` once it passes `max_size` (the seed's 10 MB).

use crate::config::{parse_size, LoggingConfig};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// `RUST_LOG` wins over `[logging] level` so a developer can turn on debug output ad hoc.
pub fn init(cfg: &LoggingConfig) {
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
        match RotatingFile::open(path.clone(), max) {
            Ok(f) => Some(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(false)
                    .with_writer(f)
                    .with_filter(filter()),
            ),
            Err(e) => {
                eprintln!(
                    "logging only to stderr: cannot open {}: {e}",
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

/// An append-only log file that moves itself to `<name>.1` when it grows past `max` bytes.
#[derive(Clone)]
struct RotatingFile {
    inner: Arc<Mutex<(File, u64)>>,
    path: PathBuf,
    max: u64,
}

impl RotatingFile {
    fn open(path: PathBuf, max: u64) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            inner: Arc::new(Mutex::new((file, size))),
            path,
            max,
        })
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.1 + buf.len() as u64 > self.max {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, &old)?;
            guard.0 = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            guard.1 = 0;
        }
        let n = guard.0.write(buf)?;
        guard.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
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

    #[test]
    fn file_rotates_past_max_size() {
        let dir = std::env::temp_dir().join(format!("routeros-log-{}", std::process::id()));
        let path = dir.join("r.log");
        let mut f = RotatingFile::open(path.clone(), 100).unwrap();
        f.write_all(&[b'a'; 80]).unwrap();
        f.write_all(&[b'b'; 30]).unwrap();
        assert_eq!(std::fs::read(dir.join("r.log.1")).unwrap(), [b'a'; 80]);
        assert_eq!(std::fs::read(&path).unwrap(), [b'b'; 30]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
