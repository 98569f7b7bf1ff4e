//! [`FirewallDriver`] through the `nft` binary: the rendered script goes to `nft -f -` as one
//! input, which nft commits as one transaction (all or nothing).

use super::{ApplyError, FirewallDriver};
use routeros_shared::plan::nft::{NFT_FAMILY, NFT_TABLE};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

#[derive(Debug, Default)]
pub struct NftDriver;

impl NftDriver {
    async fn run(args: &[&str], stdin: Option<&str>) -> Result<String, ApplyError> {
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
            .map_err(|e| {
                ApplyError::Nft(format!("cannot run nft (is nftables installed?): {e}"))
            })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .await
                .map_err(|e| ApplyError::Nft(format!("writing to nft: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| ApplyError::Nft(e.to_string()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(ApplyError::Nft(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }
}

impl FirewallDriver for NftDriver {
    async fn apply(&mut self, script: &str) -> Result<(), ApplyError> {
        Self::run(&["-f", "-"], Some(script)).await.map(drop)
    }

    async fn current(&mut self) -> Result<Option<String>, ApplyError> {
        match Self::run(&["list", "table", NFT_FAMILY, NFT_TABLE], None).await {
            Ok(text) => Ok(Some(text)),
            Err(ApplyError::Nft(msg)) if msg.contains("No such file or directory") => Ok(None),
            Err(e) => Err(e),
        }
    }
}
