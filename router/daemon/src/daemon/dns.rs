//! The DNS upstreams of the live WANs, as a resolv.conf that the LAN's DNS forwarder reads
//! (dnsmasq `resolv-file=` re-reads it when it changes), so lookups follow failover.

use routeros_shared::config::Config;
use std::net::Ipv4Addr;
use std::path::Path;

/// Servers of the active WANs first (in config order), then the other usable ones.
pub fn upstreams(cfg: &Config, active: &[String]) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for wan in cfg
        .wan_interfaces
        .iter()
        .filter(|w| active.contains(&w.name))
    {
        for d in &wan.dns {
            if !out.contains(d) {
                out.push(*d);
            }
        }
    }
    out
}

pub fn render(servers: &[Ipv4Addr]) -> String {
    let mut text = String::from("# Written by routeros-watchdog: DNS servers of the live WANs.\n");
    for s in servers {
        text += &format!("nameserver {s}\n");
    }
    text
}

/// Write atomically (readers never see half a file); unchanged content is not rewritten.
pub fn write(path: &Path, servers: &[Ipv4Addr]) -> std::io::Result<()> {
    let text = render(servers);
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    super::config_store::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_wans_in_config_order() {
        let cfg = Config::from_toml(include_str!("../../../../config/routeros.toml")).unwrap();
        let all = upstreams(&cfg, &["eth0".into(), "eth1".into()]);
        assert_eq!(all.len(), 4);
        let only_eth1 = upstreams(&cfg, &["eth1".into()]);
        assert_eq!(render(&only_eth1), "# Written by routeros-watchdog: DNS servers of the live WANs.\nnameserver 1.1.1.1\nnameserver 1.0.0.1\n");
    }
}
