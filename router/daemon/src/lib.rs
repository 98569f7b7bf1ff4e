//! The router daemon (runs as root): `apply` talks to the kernel (netlink, nftables,
//! conntrack); `health` probes each WAN; `alerts` sends mail and webhooks; `daemon` ties
//! them together behind the control socket; `ha` renders the HA pair's keepalived and
//! conntrackd configs; `lines` brings up the WAN lines the daemon
//! owns (systemd-networkd files, PPPoE sessions through pppd). Deciding is done by `routeros_shared::plan`.

pub mod alerts;
pub mod apply;
pub mod daemon;
pub mod ha;
pub mod health;
pub mod lines;
