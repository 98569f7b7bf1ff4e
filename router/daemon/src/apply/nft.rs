//! [`FirewallDriver`] through the `nft` binary: the rendered script goes to `nft -f -` as one
//! input, which nft commits as one transaction (all or nothing).

use super::{ApplyError, CounterReader, FirewallDriver};
use routeros_shared::plan::nft::{NFT_FAMILY, NFT_TABLE};
use std::collections::HashMap;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

#[derive(Debug, Default)]
pub struct NftDriver;

/// Why `nft` failed: it could not be run, or it ran and exited with an error.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Its exit status and what it wrote to stderr (trimmed).
    #[error("{stderr}")]
    Failed {
        status: std::process::ExitStatus,
        stderr: String,
    },
}

impl NftError {
    /// `nft list table` of a table that does not exist. nft exits 1 for every error and
    /// has no machine-readable error output, so its message (the kernel's ENOENT text) is
    /// the only signal; this is the one place that reads it.
    fn is_missing_table(&self) -> bool {
        matches!(self, NftError::Failed { stderr, .. } if stderr.contains("No such file or directory"))
    }
}

impl NftDriver {
    async fn run(args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
        let io = |what| move |source| NftError::Io { what, source };
        let mut child = Command::new("nft")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("cannot run nft (is nftables installed?)"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .await
                .map_err(io("writing to nft"))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(io("waiting for nft"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(NftError::Failed {
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

impl FirewallDriver for NftDriver {
    async fn apply(&mut self, script: &str) -> Result<(), ApplyError> {
        Self::run(&["-f", "-"], Some(script)).await?;
        Ok(())
    }

    async fn current(&mut self) -> Result<Option<String>, ApplyError> {
        match Self::run(&["list", "table", NFT_FAMILY, NFT_TABLE], None).await {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.is_missing_table() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl CounterReader for NftDriver {
    async fn counters(&mut self) -> Result<HashMap<String, u64>, ApplyError> {
        let json = Self::run(
            &["-j", "list", "counters", "table", NFT_FAMILY, NFT_TABLE],
            None,
        )
        .await;
        match json {
            Ok(text) => Ok(packets_by_counter(&text)),
            // No table yet (before the first apply): no counters.
            Err(e) if e.is_missing_table() => Ok(HashMap::new()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Packets of each named counter in `nft -j list counters` output (other objects ignored).
fn packets_by_counter(json: &str) -> HashMap<String, u64> {
    let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    doc["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let c = o.get("counter")?;
            Some((c["name"].as_str()?.to_string(), c["packets"].as_u64()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_nfts_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"counter": {"family": "inet", "name": "sent_1", "table": "routeros", "handle": 3, "packets": 12, "bytes": 900}},
            {"counter": {"family": "inet", "name": "replies_1", "table": "routeros", "handle": 4, "packets": 0, "bytes": 0}}]}"#;
        let c = packets_by_counter(json);
        assert_eq!(c["sent_1"], 12);
        assert_eq!(c["replies_1"], 0);
        assert!(packets_by_counter("not json").is_empty());
    }
}
