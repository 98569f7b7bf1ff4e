//! Operator overrides kept on disk (`<state-dir>/overrides.json`) so a disabled WAN or a
//! maintenance window survives a daemon restart. Written atomically: temp file, fsync, rename.

use super::config_store::write_atomic;
use crate::plan::Overrides;
use std::path::{Path, PathBuf};

pub struct OverrideStore {
    path: PathBuf,
}

impl OverrideStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("overrides.json"),
        }
    }

    /// What was saved, or none; an unreadable file is reported and ignored rather than
    /// keeping the daemon from routing.
    pub fn load(&self) -> Overrides {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("ignoring {}: {e}", self.path.display());
                Overrides::default()
            }),
            Err(_) => Overrides::default(),
        }
    }

    pub fn save(&self, ov: &Overrides) -> std::io::Result<()> {
        write_atomic(&self.path, &serde_json::to_vec_pretty(ov)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let dir = std::env::temp_dir().join(format!("routeros-ov-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = OverrideStore::new(&dir);
        assert_eq!(store.load(), Overrides::default());
        let mut ov = Overrides::default();
        ov.disabled.insert("wan2".into());
        ov.maintenance.insert("wan1".into(), 42);
        store.save(&ov).unwrap();
        assert_eq!(store.load(), ov);
        std::fs::write(dir.join("overrides.json"), "{not json").unwrap();
        assert_eq!(store.load(), Overrides::default());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
