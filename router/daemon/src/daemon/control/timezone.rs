//! `set_timezone`: the system time zone, for the first-boot wizard. systemd-timedated owns
//! it (it rewrites /etc/localtime and /etc/timezone and tells the rest of the system), so
//! the daemon asks it over D-Bus (`org.freedesktop.timedate1.SetTimezone`) rather than
//! writing those files itself. Answered by the control server, beside the event loop: a
//! slow or absent bus never delays routing decisions.
//!
//! Where there is no timedated (the namespace lab, a container without systemd) the
//! request is refused as [`RefusalCode::Unsupported`], and nothing changes.

use super::{Done, Refusal, RefusalCode, Reply};
use routeros_shared::control::timezone_name_problem;
use std::path::Path;
use std::time::Duration;

/// Where the time zones the system knows are.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";

/// Longest wait for timedated (it is bus-activated: the first call starts it).
const CALL_TIMEOUT: Duration = Duration::from_secs(8);

/// Set the system time zone to `name`, a zone under [`ZONEINFO`].
pub async fn set(name: &str) -> Result<Reply, Refusal> {
    check(name, Path::new(ZONEINFO))?;
    let result = tokio::time::timeout(CALL_TIMEOUT, async {
        let bus = zbus::Connection::system().await.map_err(unavailable)?;
        call(&bus, name).await
    })
    .await;
    match result {
        Ok(Ok(())) => {
            tracing::info!(timezone = name, "system time zone set");
            Ok(Reply::Done(Done {
                message: format!("time zone set to {name}"),
                apply_ms: None,
            }))
        }
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => Err(Refusal::new(
            RefusalCode::Unsupported,
            format!(
                "time zone not set: systemd-timedated did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// The name is shaped like a zone name and is a zone file under `zoneinfo` (a directory
/// such as `Europe` is not a zone).
pub fn check(name: &str, zoneinfo: &Path) -> Result<(), Refusal> {
    if let Some(problem) = timezone_name_problem(name) {
        return Err(Refusal::field(RefusalCode::BadRequest, "name", problem));
    }
    if !zoneinfo.join(name).is_file() {
        return Err(Refusal::field(
            RefusalCode::BadRequest,
            "name",
            format!("`{name}` is not a time zone this system knows"),
        ));
    }
    Ok(())
}

/// `SetTimezone(name, interactive = false)` on timedated.
async fn call(bus: &zbus::Connection, name: &str) -> Result<(), Refusal> {
    bus.call_method(
        Some("org.freedesktop.timedate1"),
        "/org/freedesktop/timedate1",
        Some("org.freedesktop.timedate1"),
        "SetTimezone",
        &(name, false),
    )
    .await
    .map(|_| ())
    .map_err(|e| match &e {
        // timedated refuses a zone it does not know with InvalidArgs.
        zbus::Error::MethodError(err, _, _) if err.as_str().ends_with(".InvalidArgs") => {
            Refusal::field(RefusalCode::BadRequest, "name", e.to_string())
        }
        _ => unavailable(e),
    })
}

/// No system bus, no timedated on it, or it refused for another reason.
fn unavailable(e: zbus::Error) -> Refusal {
    Refusal::new(
        RefusalCode::Unsupported,
        format!("time zone not set: systemd-timedated is not available here ({e})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zone_files_under_zoneinfo_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("Europe")).unwrap();
        std::fs::write(dir.path().join("Europe/Berlin"), b"TZif").unwrap();
        std::fs::write(dir.path().join("UTC"), b"TZif").unwrap();
        assert!(check("Europe/Berlin", dir.path()).is_ok());
        assert!(check("UTC", dir.path()).is_ok());
        for bad in [
            "Europe",
            "Europe/Nowhere",
            "../etc/passwd",
            "/etc/passwd",
            "",
            "a b",
        ] {
            let refusal = check(bad, dir.path()).unwrap_err();
            assert_eq!(refusal.code, RefusalCode::BadRequest, "{bad}");
            assert_eq!(refusal.fields[0].path, "name", "{bad}");
        }
    }

    #[tokio::test]
    async fn no_bus_is_refused_as_unsupported() {
        let bus = zbus::connection::Builder::address("unix:path=/nonexistent/routeros-test-bus")
            .unwrap()
            .build()
            .await;
        let Err(e) = bus else {
            panic!("a bus at /nonexistent")
        };
        let refusal = unavailable(e);
        assert_eq!(refusal.code, RefusalCode::Unsupported);
        assert!(refusal.message.contains("timedated"), "{}", refusal.message);
    }
}
