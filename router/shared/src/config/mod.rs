//! Configuration: the TOML schema (`model`, read into a [`RawConfig`]), parsing with every
//! error reported by its TOML path (`parse`), semantic checks (`validate`), and the WANs'
//! stable numbers (`wan_ids`).
//!
//! Text (TOML or its JSON form) -> [`RawConfig`] -> [`Config::from_raw`] (the validator, the
//! only way to a [`Config`]) -> [`WanIds::allocate`] -> [`Resolved`] (every WAN with its
//! routing table and mark), which the planner takes.

mod access;
mod classes;
mod ha;
mod ipv6;
mod model;
mod parse;
pub mod pppoe_text;
mod shaping;
mod validate;
mod wan_ids;

pub use classes::{default_classes, Dscp};
pub use ha::{key_file_problems, key_problem, pair_shared_view, read_key};
pub use model::*;
pub use shaping::{
    any_shaped, ifb_device, kernel_problems as shaping_kernel_problems, DEFAULT_OVERHEAD_PERCENT,
};
pub use validate::{interface_name_problem, log_path_problem, parse_size, MAX_SPEED_MBIT};
pub use wan_ids::{Allocation, Released, Resolved, ResolvedWan, WanId, WanIds, WanIdsError};

use std::fmt;
use std::path::Path;

/// Most WANs one box handles (the mark space 0xff00 holds 255, tables are plenty).
pub const MAX_WANS: usize = 32;

/// Most `[health_check] targets`: every target is pinged from every WAN every round.
pub const MAX_TARGETS: usize = 16;

/// One problem, located by its TOML path (e.g. `wan_interfaces[1].weight`; empty for the
/// document as a whole). Serialized as `{path, reason}`, as the control protocol and the
/// web API carry it (the control protocol's refusals use this type for every field error).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub path: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Every problem found in one config, in file order where possible (serialized as the
/// list of [`FieldError`]s).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ConfigErrors(pub Vec<FieldError>);

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

/// A validated configuration. Read it like the [`RawConfig`] it was made from (it derefs to
/// it, read-only); make one only with [`Config::from_raw`] or the parsers that call it, so
/// holding a `Config` means every check passed. To change one, edit [`Config::to_raw`] and
/// validate again. Serializes as the document it was read from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Config(RawConfig);

impl std::ops::Deref for Config {
    type Target = RawConfig;
    fn deref(&self) -> &RawConfig {
        &self.0
    }
}

impl Config {
    /// The validator: a [`Config`] when every check passes, else every problem by path.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigErrors> {
        Self::checked(parse::Parsed {
            raw: Some(raw),
            errors: Vec::new(),
        })
    }

    /// Parse and validate TOML text. Unknown keys, type errors and semantic problems all come
    /// back together (a type error stops parsing, so what follows it is not checked).
    pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
        Self::checked(parse::toml(text))
    }

    /// Parse and validate the JSON form (the web API's `config`): the same errors, by the
    /// same TOML paths, as [`Config::from_toml`].
    pub fn from_json(value: serde_json::Value) -> Result<Config, ConfigErrors> {
        Self::checked(parse::json(value))
    }

    /// Read, parse and validate a config file, and check what it names on this machine
    /// (the `[ha]` key file, see [`key_file_problems`]).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![FieldError::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )])
        })?;
        let cfg = Self::from_toml(&text)?;
        let errors = key_file_problems(&cfg);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Parse errors first, then (when the document parsed) every semantic problem.
    fn checked(parsed: parse::Parsed) -> Result<Config, ConfigErrors> {
        let mut errors = parsed.errors;
        let Some(raw) = parsed.raw else {
            return Err(ConfigErrors(errors));
        };
        errors.extend(validate::validate(&raw));
        if errors.is_empty() {
            Ok(Config(raw))
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// A copy to edit (and validate again with [`Config::from_raw`]).
    pub fn to_raw(&self) -> RawConfig {
        self.0.clone()
    }

    /// Probe targets: `targets` when given, else `target_host`.
    pub fn health_targets(&self) -> Vec<std::net::Ipv4Addr> {
        if self.health_check.targets.is_empty() {
            vec![self.health_check.target_host]
        } else {
            self.health_check.targets.clone()
        }
    }

    /// A line's probe targets per family: its own `health_targets` of that family, else
    /// the `[health_check]` ones.
    pub fn wan_targets(&self, w: &WanConfig) -> (Vec<std::net::IpAddr>, Vec<std::net::IpAddr>) {
        let (own4, own6): (Vec<std::net::IpAddr>, Vec<std::net::IpAddr>) =
            w.health_targets.iter().partition(|a| a.is_ipv4());
        let v4 = if own4.is_empty() {
            self.health_targets().into_iter().map(Into::into).collect()
        } else {
            own4
        };
        let v6 = if own6.is_empty() {
            self.health_check
                .targets6
                .iter()
                .map(|&a| a.into())
                .collect()
        } else {
            own6
        };
        (v4, v6)
    }
}

/// The refusals of a config text as `path: reason` lines, none when it is accepted: what
/// every config module's tests compare.
#[cfg(test)]
pub(crate) fn refusals(text: &str) -> Vec<String> {
    match Config::from_toml(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod shaping_tests;
#[cfg(test)]
mod tests;
