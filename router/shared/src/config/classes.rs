//! Traffic classes: `[[classes]]` and `[qos] default_classes`. A class matches connections
//! like a policy does and gives their packets to the WANs a DSCP value, so a shaper's tins
//! (CAKE's diffserv4: bulk, best effort, video, voice) treat them apart.

use super::model::{PortRange, Protocol, RawConfig, Subnet, TrafficMatch};
use super::FieldError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One `[[classes]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Subnet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Subnet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<PortRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<PortRange>,
    pub dscp: Dscp,
}

impl ClassConfig {
    pub fn traffic(&self) -> TrafficMatch {
        TrafficMatch {
            src: self.src,
            dst: self.dst,
            protocol: self.protocol,
            src_port: self.src_port,
            dst_port: self.dst_port,
        }
    }
}

/// `[qos]`: settings of traffic classification as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QosConfig {
    /// The built-in classes ([`default_classes`]) after the configured ones.
    pub default_classes: bool,
}

impl Default for QosConfig {
    fn default() -> Self {
        Self {
            default_classes: true,
        }
    }
}

/// A DSCP value (0..=63), written as a number or as the name of a diffserv4 tin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dscp {
    /// Expedited forwarding (46): CAKE's voice tin.
    Voice,
    /// AF41 (34): the video tin.
    Video,
    /// Default (0).
    BestEffort,
    /// CS1 (8): the bulk tin, served last.
    Bulk,
    Value(u8),
}

impl Dscp {
    const NAMES: [(&'static str, Dscp); 4] = [
        ("voice", Dscp::Voice),
        ("video", Dscp::Video),
        ("besteffort", Dscp::BestEffort),
        ("bulk", Dscp::Bulk),
    ];

    pub fn value(self) -> u8 {
        match self {
            Dscp::Voice => 46,
            Dscp::Video => 34,
            Dscp::BestEffort => 0,
            Dscp::Bulk => 8,
            Dscp::Value(v) => v,
        }
    }
}

impl FromStr for Dscp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((_, d)) = Self::NAMES.iter().find(|(n, _)| *n == s) {
            return Ok(*d);
        }
        match s.parse::<u8>() {
            Ok(v) if v <= 63 => Ok(Dscp::Value(v)),
            _ => Err(format!(
                "`{s}` is not a DSCP value (0-63) or one of voice, video, besteffort, bulk"
            )),
        }
    }
}

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::NAMES.iter().find(|(_, d)| d == self) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.value()),
        }
    }
}

impl<'de> Deserialize<'de> for Dscp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Value(i64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Name(s) => s,
            Raw::Value(v) => v.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dscp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dscp::Value(v) => s.serialize_u8(*v),
            named => s.collect_str(named),
        }
    }
}

/// The built-in classes, applied after the configured ones unless `[qos] default_classes =
/// false`: name resolution and real-time media up front, interactive shells next,
/// peer-to-peer bulk last.
pub fn default_classes() -> Vec<ClassConfig> {
    let class = |name: &str, protocol, ports: (u16, u16), dscp| ClassConfig {
        name: name.into(),
        src: None,
        dst: None,
        protocol: Some(protocol),
        src_port: None,
        dst_port: Some(PortRange {
            first: ports.0,
            last: ports.1,
        }),
        dscp,
    };
    vec![
        class("dns", Protocol::Udp, (53, 53), Dscp::Voice),
        class("dns-tcp", Protocol::Tcp, (53, 53), Dscp::Voice),
        class("sip", Protocol::Udp, (5060, 5061), Dscp::Voice),
        // STUN/TURN: WebRTC calls (Meet, Teams) start here.
        class("stun", Protocol::Udp, (3478, 3481), Dscp::Voice),
        // The RTP range of common SIP phones and PBXs (Asterisk's default).
        class("rtp", Protocol::Udp, (10000, 20000), Dscp::Voice),
        class("ssh", Protocol::Tcp, (22, 22), Dscp::Video),
        class("bittorrent", Protocol::Tcp, (6881, 6889), Dscp::Bulk),
        class("bittorrent-udp", Protocol::Udp, (6881, 6889), Dscp::Bulk),
    ]
}

/// Every class problem, by TOML path.
pub(super) fn problems(cfg: &RawConfig) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in cfg.classes.iter().enumerate() {
        let at = |field: &str| format!("classes[{i}].{field}");
        if let Some(reason) = super::validate::rule_name_problem(&c.name) {
            errs.push(FieldError::new(at("name"), reason));
        }
        if let Some(first) = cfg.classes[..i].iter().position(|o| o.name == c.name) {
            errs.push(FieldError::new(
                at("name"),
                format!("`{}` is already classes[{first}]", c.name),
            ));
        }
        errs.extend(
            c.traffic()
                .problems("class")
                .into_iter()
                .map(|(field, reason)| FieldError::new(at(field), reason)),
        );
    }
    errs
}
