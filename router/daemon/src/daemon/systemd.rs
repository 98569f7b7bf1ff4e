//! sd_notify for `Type=notify` units: READY once the first plan is applied and the socket
//! is open, a WATCHDOG keep-alive with a one-line STATUS, STOPPING on exit. Outside systemd
//! (no NOTIFY_SOCKET) every call is a no-op.

use sd_notify::NotifyState;

/// Tell systemd we are up; true if it also wants watchdog keep-alives. The keep-alive is
/// sent every second, so any `WatchdogSec=` of 2 s or more is satisfied.
pub fn ready() -> bool {
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec)
}

/// Keep-alive, with the WANs new connections use as the unit's status line.
pub fn alive(active_wans: &[String]) {
    let active = active_wans.join(", ");
    let status = format!(
        "active WANs: {}",
        if active.is_empty() { "none" } else { &active }
    );
    let _ = sd_notify::notify(
        false,
        &[NotifyState::Watchdog, NotifyState::Status(&status)],
    );
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}
