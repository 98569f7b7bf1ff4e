//! Daemon state kept on disk as JSON under the state directory, so it survives a restart:
//! the operator overrides (`overrides.json`: a disabled WAN, a maintenance window) and the
//! WAN numbers (`wan-ids.json`). Written atomically: temp file, fsync, rename, fsync.

use super::config_store::write_atomic;
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

pub struct StateFile<T> {
    path: PathBuf,
    kind: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned + Default> StateFile<T> {
    pub fn new(state_dir: &Path, name: &str) -> Self {
        Self {
            path: state_dir.join(name),
            kind: PhantomData,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was saved, or the default; an unreadable file is reported and ignored rather
    /// than keeping the daemon from routing.
    pub fn load(&self) -> T {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("ignoring {}: {e}", self.path.display());
                T::default()
            }),
            Err(_) => T::default(),
        }
    }

    pub fn save(&self, value: &T) -> std::io::Result<()> {
        write_atomic(&self.path, &serde_json::to_vec_pretty(value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeros_shared::plan::Overrides;

    #[test]
    fn round_trip_and_garbage() {
        let dir = std::env::temp_dir().join(format!("routeros-ov-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = StateFile::<Overrides>::new(&dir, "overrides.json");
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
