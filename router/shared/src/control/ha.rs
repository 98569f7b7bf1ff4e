//! The HA pair on the control socket: keepalived's notify (`routeros-kill-switch
//! --ha-notify`) as a typed request, and the pair's part of the status.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// This box's VRRP state as keepalived reports it (its notify's third word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HaRole {
    /// Holds the virtual addresses: forwards the LAN's traffic.
    Master,
    /// Ready to take over; holds no virtual address.
    Backup,
    /// A tracked link is down: cannot be master.
    Fault,
    /// keepalived stopped.
    Stop,
}

impl HaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            HaRole::Master => "master",
            HaRole::Backup => "backup",
            HaRole::Fault => "fault",
            HaRole::Stop => "stop",
        }
    }
}

/// keepalived's notify words, `GROUP|INSTANCE NAME STATE PRIORITY` (it appends them to
/// the notify command), as the request's fields: `(name, role, priority)`.
pub fn parse_notify(words: &[String]) -> Result<(String, HaRole, u8), String> {
    let [scope, name, state, priority] = words else {
        return Err(format!(
            "--ha-notify takes keepalived's 4 words GROUP|INSTANCE NAME STATE PRIORITY, got {}",
            words.len()
        ));
    };
    if scope != "GROUP" && scope != "INSTANCE" {
        return Err(format!("--ha-notify: `{scope}` is not GROUP or INSTANCE"));
    }
    let role = match state.as_str() {
        "MASTER" => HaRole::Master,
        "BACKUP" => HaRole::Backup,
        "FAULT" => HaRole::Fault,
        "STOP" => HaRole::Stop,
        other => {
            return Err(format!(
                "--ha-notify: `{other}` is not MASTER, BACKUP, FAULT or STOP"
            ))
        }
    };
    let priority = priority
        .parse::<u8>()
        .map_err(|_| format!("--ha-notify: `{priority}` is not a priority in 0..=255"))?;
    Ok((name.clone(), role, priority))
}

/// One engine of the pair (keepalived, conntrackd) for the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HaEngineReport {
    pub engine: String,
    /// `running`, `exited` (restarting after a wait) or `stopped`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub restarts: u32,
}

/// Whether the other box holds the same config (its beacon over the sync link).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PeerConfig {
    /// No beacon from the peer lately (it is down, or the sync link is).
    #[default]
    NotHeard,
    Same,
    /// The two boxes were not edited alike: edit the other box too.
    Differs,
}

impl PeerConfig {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerConfig::NotHeard => "not heard",
            PeerConfig::Same => "same",
            PeerConfig::Differs => "differs",
        }
    }
}

/// The pair's part of the status (present while `[ha] enabled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HaReport {
    /// None until keepalived first reports (it starts every box as backup).
    pub role: Option<HaRole>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub peer: Option<Ipv4Addr>,
    /// Unix ms of the last role change.
    pub since_ms: Option<u64>,
    pub previous: Option<HaRole>,
    pub engines: Vec<HaEngineReport>,
    /// The peer's config against ours, from its last beacon.
    #[serde(default)]
    pub peer_config: PeerConfig,
    /// Unix ms of the peer's last beacon.
    #[serde(default)]
    pub peer_heard_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn keepalived_words_parse() {
        assert_eq!(
            parse_notify(&words("GROUP routeros MASTER 150")).unwrap(),
            ("routeros".into(), HaRole::Master, 150)
        );
        assert_eq!(
            parse_notify(&words("INSTANCE lan BACKUP 100")).unwrap().1,
            HaRole::Backup
        );
        assert_eq!(
            parse_notify(&words("GROUP routeros FAULT 0")).unwrap().1,
            HaRole::Fault
        );
    }

    #[test]
    fn other_words_are_refused_by_what_is_wrong() {
        for (text, says) in [
            ("GROUP routeros MASTER", "4 words"),
            ("SCRIPT x MASTER 1", "GROUP or INSTANCE"),
            ("GROUP x BOSS 1", "`BOSS`"),
            ("GROUP x MASTER 300", "`300`"),
        ] {
            let e = parse_notify(&words(text)).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
