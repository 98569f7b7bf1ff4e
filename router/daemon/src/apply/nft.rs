//! [`FirewallDriver`] through the `nft` binary: the rendered script goes to `nft -f -` as one
//! input, which nft commits as one transaction (all or nothing).

use super::{ApplyError, FirewallDriver};
use routeros_shared::plan::nft::{NFT_FAMILY, NFT_TABLE};
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
