//! The config file and its history. Every version that was ever applied is kept as
//! `<config dir>/history/v<N>.toml` (with `v<N>.json` saying when and by whom), so any
//! change can be rolled back. Files are written atomically: temp file, fsync, rename, fsync
//! of the directory — a power cut leaves the old or the new file, never half of one.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: u64,
    pub saved_at_ms: u64,
    pub by: String,
}

pub struct ConfigStore {
    path: PathBuf,
    history: PathBuf,
}

impl ConfigStore {
    pub fn new(path: &Path) -> Self {
        let dir = path.parent().unwrap_or(Path::new("."));
        Self {
            path: path.to_path_buf(),
            history: dir.join("history"),
        }
    }

    pub fn read(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.path)
    }

    /// Replace the live file.
    pub fn write(&self, text: &str) -> std::io::Result<()> {
        write_atomic(&self.path, text.as_bytes())
    }

    /// Versions, oldest first.
    pub fn versions(&self) -> Vec<VersionInfo> {
        let mut out: Vec<VersionInfo> = std::fs::read_dir(&self.history)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by_key(|v: &VersionInfo| v.version);
        out
    }

    pub fn current_version(&self) -> Option<u64> {
        self.versions().last().map(|v| v.version)
    }

    pub fn version_text(&self, version: u64) -> std::io::Result<String> {
        std::fs::read_to_string(self.history.join(format!("v{version}.toml")))
    }

    /// Record `text` as the next version.
    pub fn record(&self, text: &str, by: &str, at_ms: u64) -> std::io::Result<VersionInfo> {
        std::fs::create_dir_all(&self.history)?;
        let info = VersionInfo {
            version: self.current_version().unwrap_or(0) + 1,
            saved_at_ms: at_ms,
            by: by.to_string(),
        };
        write_atomic(
            &self.history.join(format!("v{}.toml", info.version)),
            text.as_bytes(),
        )?;
        write_atomic(
            &self.history.join(format!("v{}.json", info.version)),
            &serde_json::to_vec(&info)?,
        )?;
        Ok(info)
    }

    /// Make sure the file as it is now is a version (the first one, usually written by hand
    /// or by setup), so the first change through the API can be rolled back to it.
    pub fn ensure_recorded(&self, at_ms: u64) -> std::io::Result<()> {
        let text = self.read()?;
        let last = self
            .current_version()
            .and_then(|v| self.version_text(v).ok());
        if last.as_deref() != Some(text.as_str()) {
            self.record(&text, "file", at_ms)?;
        }
        Ok(())
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_accumulate_and_read_back() {
        let dir = std::env::temp_dir().join(format!("routeros-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = ConfigStore::new(&dir.join("routeros.toml"));
        store.write("a = 1\n").unwrap();
        store.ensure_recorded(1).unwrap();
        store.ensure_recorded(2).unwrap();
        assert_eq!(
            store.current_version(),
            Some(1),
            "unchanged file is not recorded twice"
        );
        store.write("a = 2\n").unwrap();
        let v2 = store.record("a = 2\n", "admin", 3).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(store.version_text(1).unwrap(), "a = 1\n");
        assert_eq!(
            store
                .versions()
                .iter()
                .map(|v| v.by.as_str())
                .collect::<Vec<_>>(),
            ["file", "admin"]
        );
        assert_eq!(store.read().unwrap(), "a = 2\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
