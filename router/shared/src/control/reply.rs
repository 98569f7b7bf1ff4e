//! What the daemon answers, typed. Both ends and the test fakes build and read these, and
//! the web server's OpenAPI document derives its bodies from them (feature `openapi`).
//!
//! On the wire an answer is one JSON object: a carried-out request is its reply's fields
//! plus `"ok": true`; a refusal is `{"ok": false, "code", "error", "errors"}` (see
//! [`to_wire`] and [`from_wire`]).

use crate::capacity::LineSpeed;
use crate::events::Event;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a request was refused: a stable code for programs, a sentence for people, and the
/// fields at fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refusal {
    pub code: RefusalCode,
    /// One line for people (the name stays `error` on the wire, as before the codes).
    #[serde(rename = "error")]
    pub message: String,
    /// The fields at fault, located by their path (TOML paths for config errors).
    #[serde(rename = "errors", default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// The stable refusal codes. The web server maps them to HTTP statuses without reading
/// the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// Unreadable request, or a value out of range.
    BadRequest,
    /// The configuration does not validate (or changes what only root may change).
    InvalidConfig,
    /// No such WAN or config version.
    NotFound,
    /// Refused in the current state (a change is already waiting for confirmation, or the
    /// id is not the pending change's).
    Conflict,
    /// Confirm asked while no change waits for confirmation.
    NoPending,
    /// Every control session is in use, or the daemon is shutting down.
    Busy,
    /// Validated and recorded, but applying it to the kernel failed (state kept as before).
    ApplyFailed,
    /// The daemon could not read or save its files.
    Internal,
    /// This system cannot do it (e.g. no systemd-timedated to set the time zone).
    Unsupported,
    /// A code this build does not know (a newer daemon).
    #[serde(other)]
    Unknown,
}

impl Refusal {
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// A bad value of one field; the message is `path: reason`.
    pub fn field(code: RefusalCode, path: &str, reason: impl Into<String>) -> Self {
        let field = FieldError::new(path, reason);
        Self {
            code,
            message: format!("{}: {}", field.path, field.reason),
            fields: vec![field],
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(RefusalCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(RefusalCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(RefusalCode::Internal, message)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A problem located by its path: a TOML path (`wan_interfaces[0].weight`) for config
/// errors, a request path (`seconds`) otherwise. The config's own type, so the validator's
/// errors pass through unchanged.
pub use crate::config::FieldError;

/// The answer line of `result`: the reply's fields and `"ok": true`, or the refusal with
/// `"ok": false`.
pub fn to_wire<T: Serialize>(result: &Result<T, Refusal>) -> Value {
    let (ok, value) = match result {
        Ok(reply) => (true, serde_json::to_value(reply)),
        Err(refusal) => (false, serde_json::to_value(refusal)),
    };
    let mut value = match value {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(Value::Null) => Value::Object(Default::default()),
        Ok(other) => serde_json::json!({ "value": other }),
        Err(e) => {
            return to_wire::<()>(&Err(Refusal::internal(format!(
                "cannot encode the answer: {e}"
            ))))
        }
    };
    value["ok"] = Value::Bool(ok);
    value
}

/// Read an answer line as `T` or a refusal; Err when it is neither (not a daemon answer,
/// or one of another version).
pub fn from_wire<T: DeserializeOwned>(mut value: Value) -> Result<Result<T, Refusal>, String> {
    let ok = value.get("ok").and_then(Value::as_bool);
    if let Some(map) = value.as_object_mut() {
        map.remove("ok");
    }
    match ok {
        Some(true) => serde_json::from_value(value)
            .map(Ok)
            .map_err(|e| format!("unexpected answer from the daemon: {e}")),
        Some(false) => serde_json::from_value(value)
            .map(Err)
            .map_err(|e| format!("unexpected refusal from the daemon: {e}")),
        None => Err("the daemon's answer has no `ok`".into()),
    }
}

/// A request carried out that has nothing to report but a sentence (`enable`, a
/// router-wide maintenance, `reload`, `confirm_config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Done {
    #[serde(default)]
    pub message: String,
    /// `reload`: how long the apply took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_ms: Option<f64>,
}

/// The answer to `disable` and to a WAN's `maintenance`: what the daemon did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TakenOut {
    pub message: String,
    /// Connections the daemon reset because the WAN left service (0 when it was already out
    /// of service, or when no other WAN could take them over: then they keep running where
    /// they are).
    pub reset_connections: u64,
}

/// A WAN's health as its probes see it (the health monitor's own state).
pub use crate::plan::HealthState;

/// What a WAN does for the router, decided by the daemon (in this order: an operator's
/// decision first, then whether it carries new connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WanRole {
    /// Taken out of service by an operator until enabled.
    Disabled,
    /// Out of service until `maintenance_until`.
    Maintenance,
    /// Carries new connections (when every WAN is down: keeps the last routes).
    Active,
    /// In the config but not carrying new connections (a backup, or not usable now).
    Standby,
}

/// One WAN in the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WanReport {
    pub name: String,
    /// The device its traffic uses: the port, `<port>.<vlan>` or `ppp-<port>`.
    pub device: String,
    /// How its line is brought up (and a PPPoE line's session).
    pub line: LineReport,
    /// Routing table and conntrack mark the daemon gave it.
    pub table: u32,
    pub mark: u32,
    pub weight: u32,
    pub priority: u32,
    /// Configured gateway, else the one learned from the link.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub gateway: Option<std::net::Ipv4Addr>,
    /// Its address with prefix length (`192.0.2.2/24`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub address: Option<ipnet::Ipv4Net>,
    pub present: bool,
    pub carrier: bool,
    /// HealthVerdict from the probes (null before the first round after start).
    pub state: Option<HealthState>,
    /// Unix ms of the last state change.
    pub since_ms: Option<u64>,
    /// Mean probe round-trip, jitter and loss over the last minute.
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: Option<f64>,
    /// Conntrack entries carrying its mark (counted once a second, all WANs from one dump;
    /// null when the count failed).
    pub connections: Option<u64>,
    /// Interface byte counters, read at `bytes_at_ms` of the status.
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    /// Routable, carrier up, healthy and not taken out by an operator: it may carry traffic.
    pub usable: bool,
    pub role: WanRole,
    /// What taking it out of service (disable, maintenance) would do now.
    pub take_out: TakeOutEffect,
    pub disabled: bool,
    /// Unix seconds when its maintenance ends.
    pub maintenance_until: Option<u64>,
    /// Carries new connections now.
    pub active: bool,
    /// Its IPv6 side (null: `ipv6 = "off"`).
    #[serde(default)]
    pub ipv6: Option<Ipv6Report>,
    /// The line's download speed and where it came from (declared, learned from the
    /// counters, or the default); null from a daemon that does not know.
    #[serde(default)]
    pub speed_down: Option<LineSpeed>,
    /// The same for the upload.
    #[serde(default)]
    pub speed_up: Option<LineSpeed>,
    /// Its weight in the choice of new connections now: `weight`, or under `placement =
    /// "spare_capacity"` weight × the unused share of the line.
    #[serde(default)]
    pub share: Option<u32>,
    /// The line's shaping (CAKE); null when its config leaves it off.
    #[serde(default)]
    pub shaping: Option<ShapingReport>,
}

/// A shaped line: its rates and whether the kernel holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShapingReport {
    /// In place as configured.
    pub active: bool,
    /// The rates shaped to (declared speeds less the overhead), kbit/s.
    pub upload_kbit: u64,
    pub download_kbit: u64,
    /// Why it is not in place: no CAKE in this kernel, its device missing, tc refused.
    pub error: Option<String>,
}

/// A WAN's IPv6 side, routed and failed over apart from its IPv4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ipv6Report {
    /// Its global address with prefix length (SLAAC, DHCPv6 or static).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub address: Option<ipnet::Ipv6Net>,
    /// Configured `gateway6`, else the router advertisement's (usually link-local).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub gateway: Option<std::net::Ipv6Addr>,
    /// Has an address and a gateway, carrier up, healthy, not taken out: may carry IPv6.
    pub usable: bool,
    /// Carries new IPv6 connections now.
    pub active: bool,
    /// The IPv6 probes' verdict (null: not probed, no `targets6`, or before the first round).
    pub state: Option<HealthState>,
    /// Unix ms of the last IPv6 state change.
    pub since_ms: Option<u64>,
    /// Mean IPv6 probe round-trip and loss over the last minute.
    pub latency_ms: Option<f64>,
    pub loss_percent: Option<f64>,
}

/// How a WAN's line is brought up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineReport {
    /// `dhcp`, `static` or `pppoe`; null when the system's network config brings it up.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub mode: Option<crate::config::WanMode>,
    pub vlan: Option<u16>,
    /// A PPPoE line's session (null for the other modes).
    pub session: Option<SessionReport>,
}

/// A PPPoE session as the daemon's pppd supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionReport {
    pub state: SessionState,
    /// Why the last session ended or failed (e.g. "authentication failed").
    pub last_error: Option<String>,
    /// Unix ms of the last state change.
    pub since_ms: Option<u64>,
    /// pppd restarts since the daemon started.
    pub restarts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// pppd is discovering the access concentrator or negotiating.
    Connecting,
    /// The session is up: the ppp device has its address.
    Up,
    /// The last session ended or failed; pppd is restarted after a backoff.
    Down,
    /// The ISP refused the username or password; retried after a longer backoff.
    AuthFailed,
    /// pppd is not running (the line is being restarted after a config change).
    Stopped,
}

/// What taking a WAN out of service would do, by the daemon's own rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TakeOutEffect {
    /// Its connections would be reset (it is in service and another WAN can take them;
    /// with nowhere to move to, the daemon keeps them).
    pub resets_connections: bool,
    /// The other WANs in service: they would carry its new connections.
    pub takeover: Vec<String>,
}

/// The daemon's status: every WAN and the last apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusReport {
    #[serde(flatten)]
    pub router: RouterStatus,
    pub wans: Vec<WanReport>,
}

/// The router-wide part of the status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouterStatus {
    /// The config file.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub config: std::path::PathBuf,
    /// `ecmp` or `failover`.
    pub mode: String,
    /// The WANs carrying new connections.
    pub active_wans: Vec<String>,
    /// The WANs carrying new IPv6 connections.
    #[serde(default)]
    pub active_wans6: Vec<String>,
    /// Unix seconds when a router-wide maintenance ends (failover paused until then).
    pub failover_paused_until: Option<u64>,
    /// Unix seconds of the last successful apply.
    pub applied_at: Option<u64>,
    pub last_apply_ms: Option<f64>,
    pub last_error: Option<String>,
    /// How often another program's change to our routes, rules or nft table was undone.
    pub kernel_restores: u64,
    /// The HA pair (while `[ha] enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<super::HaReport>,
    /// Unix ms when the WANs' byte counters were read (throughput is computed between two
    /// readings).
    pub bytes_at_ms: Option<u64>,
}

impl StatusReport {
    pub fn wan(&self, name: &str) -> Option<&WanReport> {
        self.wans.iter().find(|w| w.name == name)
    }
}

/// `events`: oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsReply {
    pub events: Vec<Event>,
}

/// One probe round of a WAN for graphs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthPoint {
    pub t_ms: u64,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: f64,
}

/// `history`: one WAN's probe rounds, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryReply {
    pub wan: String,
    pub points: Vec<HealthPoint>,
}

/// A config change that is live and rolls back at `rollback_at_ms` unless confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingInfo {
    /// What `confirm_config` must name.
    pub id: String,
    /// Unix ms of the rollback.
    pub rollback_at_ms: u64,
    /// Who made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `get_config`: the file, its version and any change waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigReply {
    pub toml: String,
    pub version: Option<u64>,
    pub pending: Option<PendingInfo>,
    /// Seconds a change stays unconfirmed before it rolls back (the web asks for this).
    #[serde(default = "default_confirm_seconds")]
    pub confirm_seconds: u32,
}

fn default_confirm_seconds() -> u32 {
    super::CONFIRM_SECONDS
}

/// `apply_config` and `rollback_config`: live now, rolled back unless confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Applied {
    pub pending: PendingInfo,
    /// The version saved (null if the history could not be written).
    pub version: Option<u64>,
    pub apply_ms: Option<f64>,
}

/// One saved config version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    pub version: u64,
    pub saved_at_ms: u64,
    pub by: String,
}

/// `config_history`: oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionsReply {
    pub versions: Vec<VersionInfo>,
}

/// The first line answering `subscribe`: the log's events after `since_ms` (all of them
/// without it). Every later line is one new [`Event`], as the daemon logs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub backlog: Vec<Event>,
}

/// Every reply the daemon sends, for code that answers any request (the daemon, fakes).
/// Serialized without a tag: a client reads the one type its request gets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Status(Box<StatusReport>),
    Done(Done),
    TakenOut(TakenOut),
    Events(EventsReply),
    History(HistoryReply),
    Config(ConfigReply),
    Applied(Applied),
    Versions(VersionsReply),
    Subscribed(Subscribed),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_form_keeps_ok_and_error() {
        let done: Result<Reply, Refusal> = Ok(Reply::Done(Done {
            message: "wan1 enabled".into(),
            apply_ms: None,
        }));
        assert_eq!(
            to_wire(&done),
            json!({"ok": true, "message": "wan1 enabled"})
        );
        let refused: Result<Reply, Refusal> = Err(Refusal::field(
            RefusalCode::BadRequest,
            "seconds",
            "0 is not in 1..=604800",
        ));
        let wire = to_wire(&refused);
        assert_eq!(
            wire,
            json!({"ok": false, "code": "bad_request", "error": "seconds: 0 is not in 1..=604800",
                   "errors": [{"path": "seconds", "reason": "0 is not in 1..=604800"}]})
        );
        let back = from_wire::<Done>(wire).unwrap().unwrap_err();
        assert_eq!(Err::<Reply, _>(back), refused);
        let taken =
            from_wire::<TakenOut>(json!({"ok": true, "message": "m", "reset_connections": 3}));
        assert_eq!(taken.unwrap().unwrap().reset_connections, 3);
        assert!(from_wire::<Done>(json!({"message": "no ok"})).is_err());
        let newer = from_wire::<Done>(json!({"ok": false, "code": "shiny", "error": "x"}));
        assert_eq!(newer.unwrap().unwrap_err().code, RefusalCode::Unknown);
    }
}
