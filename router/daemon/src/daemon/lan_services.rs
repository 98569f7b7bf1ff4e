//! Keeps the LAN's dnsmasq in step with the config: writes `<state>/dnsmasq.conf` when it
//! changes and asks systemd (over D-Bus) to restart the DHCP/DNS unit. Without systemd (the
//! namespace lab) the restart is skipped quietly; the file is still written.

use routeros_shared::config::Config;
use routeros_shared::plan::{dhcp, PairRole};
use std::path::Path;

/// Write the file if its content changed; true if it did.
pub fn write_dnsmasq(cfg: &Config, state_dir: &Path, role: PairRole) -> std::io::Result<bool> {
    let path = state_dir.join("dnsmasq.conf");
    let text = dhcp::render_dnsmasq(cfg, &state_dir.join("resolv.conf"), role);
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    super::config_store::write_atomic(&path, text.as_bytes())?;
    Ok(true)
}

/// `systemctl try-restart UNIT`, in the background: never delays routing decisions.
pub fn restart_unit(unit: String) {
    tokio::spawn(async move {
        let result = async {
            let bus = zbus::Connection::system().await?;
            bus.call_method(
                Some("org.freedesktop.systemd1"),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "TryRestartUnit",
                &(unit.as_str(), "replace"),
            )
            .await?;
            Ok::<(), zbus::Error>(())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(unit, "restarted for the new DHCP/DNS settings"),
            Err(e) => tracing::debug!(unit, "not restarted (no systemd here?): {e}"),
        }
    });
}
