//! Configuration: the TOML schema (`model`), loading with every error reported by its TOML
//! path (`load`), and semantic checks (`validate`).

mod model;
mod validate;
mod wan_ids;

pub use model::*;
pub use validate::{interface_name_problem, log_path_problem, parse_size, validate};
pub use wan_ids::{Released, WanId, WanIds};

use std::fmt;
use std::path::Path;

/// Most WANs one box handles (the mark space 0xff00 holds 255, tables are plenty).
pub const MAX_WANS: usize = 32;

/// Most `[health_check] targets`: every target is pinged from every WAN every round.
pub const MAX_TARGETS: usize = 16;

/// One problem, located by its TOML path (e.g. `wan_interfaces[1].weight`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Every problem found in one config, in file order where possible.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in configuration",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Parse and validate TOML text. Unknown keys, type errors and semantic problems all come
    /// back together (a type error stops parsing, so what follows it is not checked).
    pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        let parsed = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError::new("", toml_message(&e, text)))
            .and_then(|de| {
                let mut on_unknown = |path: serde_ignored::Path| unknown.push(toml_path(&path));
                let de = serde_ignored::Deserializer::new(de, &mut on_unknown);
                serde_path_to_error::deserialize::<_, Config>(de)
                    .map_err(|e| located(e.path().to_string(), toml_message(e.inner(), text)))
            });
        errors.extend(
            unknown
                .into_iter()
                .map(|p| ConfigError::new(p, "unknown key")),
        );
        match parsed {
            Ok(cfg) => {
                errors.extend(validate(&cfg));
                if errors.is_empty() {
                    Ok(cfg)
                } else {
                    Err(ConfigErrors(errors))
                }
            }
            Err(e) => {
                errors.push(e);
                Err(ConfigErrors(errors))
            }
        }
    }

    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )])
        })?;
        Self::from_toml(&text)
    }

    /// WANs with their routing table and mark, from `ids` (see [`WanIds::allocate`]: by name,
    /// stable across reorders and removals; a first allocation gives table 100, 200, ... and
    /// mark 0x100, 0x200, ... in list order).
    pub fn resolved_wans<'a>(
        &'a self,
        ids: &'a WanIds,
    ) -> impl Iterator<Item = (&'a WanConfig, u32, u32)> + 'a {
        wan_ids::resolve(self, ids).map(|(w, id)| (w, id.table, id.mark))
    }

    /// Probe targets: `targets` when given, else `target_host`.
    pub fn health_targets(&self) -> Vec<std::net::Ipv4Addr> {
        if self.health_check.targets.is_empty() {
            vec![self.health_check.target_host]
        } else {
            self.health_check.targets.clone()
        }
    }
}

/// `a.b[0].c`, the way users write TOML paths (serde_ignored prints `a.b.0.c`).
fn toml_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", toml_path(parent)),
        Path::Map { parent, key } => match toml_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => toml_path(parent),
    }
}

/// serde names a missing key in its message and points at the table holding it; put the
/// key in the path, so every error of a well-formed document names the field itself.
fn located(path: String, message: String) -> ConfigError {
    // serde_path_to_error prints the root as ".".
    let path = if path == "." { String::new() } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split_once('`'));
    match missing {
        Some((key, rest)) => ConfigError::new(
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            },
            format!("required but missing{rest}"),
        ),
        None => ConfigError::new(path, message),
    }
}

/// toml's message with a line number instead of its multi-line snippet.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{} (line {line})", e.message().trim_end())
        }
        None => e.message().trim_end().to_string(),
    }
}

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;
