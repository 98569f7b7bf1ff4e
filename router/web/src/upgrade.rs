//! Image upgrades asked for from the web UI. routeros-web has no privileges, so it only drops
//! a request (and an uploaded bundle) into `<data-dir>/upgrade/`; on the appliance image a
//! root path unit (routeros-upgrade-request.path) picks it up, runs `routeros-upgrade` and
//! reports back in the upgrade directory: `web-status.json`, `web-upgrade.log`, `history`.
//! Everything here is reading those files and deciding what they mean; the handlers are in
//! `api::system`.

use super::store;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use utoipa::ToSchema;

/// What routeros-web writes (in its data directory) for the root helper.
pub const REQUEST_FILE: &str = "request.json";
/// An uploaded bundle, complete (it is written under a temporary name first).
pub const BUNDLE_FILE: &str = "bundle.tar";
/// What the root helper writes (in the upgrade directory).
pub const STATUS_FILE: &str = "web-status.json";
pub const LOG_FILE: &str = "web-upgrade.log";
/// `routeros-upgrade`'s own record of installs, one line each.
pub const HISTORY_FILE: &str = "history";

/// Longest URL accepted (the helper refuses longer ones too).
pub const MAX_URL: usize = 2048;
/// Largest bundle accepted by upload (a bundle is ~260 MB today).
pub const MAX_BUNDLE: u64 = 4 << 30;
/// Lines of the job's output and of the history shown.
const LOG_LINES: usize = 40;
const HISTORY_LINES: usize = 10;

/// Where the files are. `upgrade_dir` is `None` on a box installed from the .deb.
#[derive(Debug, Clone)]
pub struct UpgradePaths {
    pub request_dir: PathBuf,
    pub upgrade_dir: Option<PathBuf>,
    pub os_release: PathBuf,
    pub boot_id: PathBuf,
}

impl UpgradePaths {
    pub fn new(data_dir: &Path, upgrade_dir: Option<PathBuf>, os_release: PathBuf) -> Self {
        Self {
            request_dir: data_dir.join("upgrade"),
            upgrade_dir,
            os_release,
            boot_id: PathBuf::from("/proc/sys/kernel/random/boot_id"),
        }
    }

    pub fn request(&self) -> PathBuf {
        self.request_dir.join(REQUEST_FILE)
    }

    pub fn bundle(&self) -> PathBuf {
        self.request_dir.join(BUNDLE_FILE)
    }
}

/// A request for the root helper. Exactly one of `url` and `bundle` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRequest {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// File name of the uploaded bundle, next to the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    pub requested_by: String,
    pub at_ms: u64,
}

impl UpgradeRequest {
    pub fn source(&self) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => "uploaded bundle".into(),
        }
    }
}

/// The root helper's report (overlay/usr/lib/routeros-image/upgrade-request).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HelperStatus {
    pub id: String,
    /// `running`, `failed` or `rebooting`.
    pub state: String,
    pub message: String,
    pub source: Option<String>,
    pub requested_by: Option<String>,
    pub updated_ms: Option<u64>,
    /// The boot the helper ran in: a `rebooting` from an earlier boot means the reboot happened.
    pub boot_id: String,
    pub from_version: Option<String>,
    pub target_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeState {
    Idle,
    /// Written for the helper, not picked up yet.
    Queued,
    Running,
    Failed,
    /// Installed; the router is restarting into the new version.
    Rebooting,
    /// After the reboot the new version runs.
    Installed,
    /// The new version did not pass its boot check; the old one came back by itself.
    RolledBack,
}

/// What the request and the helper's report mean now, with one sentence for the user.
pub fn derive_state(
    request: Option<&UpgradeRequest>,
    status: Option<&HelperStatus>,
    running: Option<&str>,
    boot_id: &str,
) -> (UpgradeState, String) {
    if request.is_some() {
        return (
            UpgradeState::Queued,
            "waiting for the upgrade service to start".into(),
        );
    }
    let Some(status) = status else {
        return (UpgradeState::Idle, String::new());
    };
    let same_boot = !status.boot_id.is_empty() && status.boot_id == boot_id;
    let target = status
        .target_version
        .as_deref()
        .unwrap_or("the new version");
    match status.state.as_str() {
        "running" if same_boot => (UpgradeState::Running, status.message.clone()),
        "running" => (
            UpgradeState::Failed,
            "the upgrade was interrupted by a restart; the running version is unchanged".into(),
        ),
        "failed" => (UpgradeState::Failed, status.message.clone()),
        "rebooting" if same_boot => (
            UpgradeState::Rebooting,
            format!("restarting into {target}; the router is back in a few minutes"),
        ),
        "rebooting" if running.is_some() && running == status.target_version.as_deref() => {
            (UpgradeState::Installed, format!("{target} is running"))
        }
        "rebooting" => (
            UpgradeState::RolledBack,
            format!(
                "{target} did not pass its boot check; the router came back on {} by itself",
                running.unwrap_or("the previous version")
            ),
        ),
        other => (
            UpgradeState::Failed,
            format!("unknown upgrade state {other:?} in {STATUS_FILE}"),
        ),
    }
}

/// Why a URL is refused, if it is.
pub fn url_problem(url: &str) -> Option<&'static str> {
    if url.is_empty() {
        return Some("required");
    }
    if url.len() > MAX_URL {
        return Some("at most 2048 characters");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters");
    }
    // curl would expand {a,b} into several downloads (the helper also turns globbing off).
    if url.contains(['{', '}']) {
        return Some("must not contain { or } (percent-encode them as %7B and %7D)");
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None => Some("must start with http:// or https://"),
        Some(r) if r.is_empty() || r.starts_with('/') => Some("has no host"),
        Some(_) => None,
    }
}

/// `IMAGE_VERSION` of an os-release file (unquoted, or in single or double quotes).
pub fn image_version(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.trim().strip_prefix("IMAGE_VERSION=")?;
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// The last `n` non-empty lines of a text.
pub fn tail(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Everything the upgrade page shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpgradeView {
    /// False on a box installed from the Debian package (upgrade it with apt).
    pub available: bool,
    pub unavailable_reason: Option<String>,
    /// `IMAGE_VERSION` of the running image.
    pub running_version: Option<String>,
    pub state: UpgradeState,
    pub message: String,
    pub target_version: Option<String>,
    /// The URL, or "uploaded bundle".
    pub source: Option<String>,
    pub requested_by: Option<String>,
    pub updated_ms: Option<u64>,
    /// The last lines of the job's output.
    pub log: Vec<String>,
    /// Installs so far, oldest first (the last 10).
    pub history: Vec<String>,
}

impl UpgradeView {
    /// Whether a new request would have to wait for one in flight.
    pub fn busy(&self) -> bool {
        matches!(
            self.state,
            UpgradeState::Queued | UpgradeState::Running | UpgradeState::Rebooting
        )
    }
}

fn read_text(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Read the files and put the view together.
pub fn read_view(paths: &UpgradePaths) -> io::Result<UpgradeView> {
    let running = read_text(&paths.os_release)?
        .as_deref()
        .and_then(image_version);
    let unavailable_reason = match (&paths.upgrade_dir, &running) {
        (Some(_), Some(_)) => None,
        (None, _) => Some(
            "image upgrades are for the appliance image; this router was installed from the \
             Debian package: upgrade it with apt"
                .to_string(),
        ),
        (Some(_), None) => Some(format!(
            "{} has no IMAGE_VERSION: not the appliance image",
            paths.os_release.display()
        )),
    };
    let request: Option<UpgradeRequest> = store::read_json(&paths.request())?;
    let (status, log, history) = match &paths.upgrade_dir {
        Some(dir) => (
            store::read_json::<HelperStatus>(&dir.join(STATUS_FILE))?,
            read_text(&dir.join(LOG_FILE))?.unwrap_or_default(),
            read_text(&dir.join(HISTORY_FILE))?.unwrap_or_default(),
        ),
        None => (None, String::new(), String::new()),
    };
    let boot_id = read_text(&paths.boot_id)?.unwrap_or_default();
    let (state, message) = derive_state(
        request.as_ref(),
        status.as_ref(),
        running.as_deref(),
        boot_id.trim(),
    );
    let (source, requested_by, updated_ms, target_version) = match (&request, &status) {
        (Some(r), _) => (
            Some(r.source()),
            Some(r.requested_by.clone()),
            Some(r.at_ms),
            None,
        ),
        (None, Some(s)) => (
            s.source.clone(),
            s.requested_by.clone(),
            s.updated_ms,
            s.target_version.clone(),
        ),
        (None, None) => (None, None, None, None),
    };
    Ok(UpgradeView {
        available: unavailable_reason.is_none(),
        unavailable_reason,
        running_version: running,
        state,
        message,
        target_version,
        source,
        requested_by,
        updated_ms,
        // A queued request has no output yet; the old job's would mislead.
        log: if request.is_some() {
            Vec::new()
        } else {
            tail(&log, LOG_LINES)
        },
        history: tail(&history, HISTORY_LINES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, boot: &str, target: Option<&str>) -> HelperStatus {
        HelperStatus {
            id: "r1".into(),
            state: state.into(),
            message: "m".into(),
            boot_id: boot.into(),
            target_version: target.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn states_from_request_report_and_boot() {
        let req = UpgradeRequest {
            id: "r2".into(),
            url: Some("http://x/b.tar".into()),
            bundle: None,
            requested_by: "admin".into(),
            at_ms: 1,
        };
        let s = |st: &HelperStatus, running: &str| {
            derive_state(None, Some(st), Some(running), "boot-now").0
        };
        assert_eq!(
            derive_state(None, None, Some("1"), "b").0,
            UpgradeState::Idle
        );
        // A new request wins over the report of the previous job.
        let failed = status("failed", "boot-now", None);
        assert_eq!(
            derive_state(Some(&req), Some(&failed), Some("1"), "boot-now").0,
            UpgradeState::Queued
        );
        assert_eq!(s(&failed, "1"), UpgradeState::Failed);
        assert_eq!(
            s(&status("running", "boot-now", None), "1"),
            UpgradeState::Running
        );
        // Running in an earlier boot: that job was cut off.
        assert_eq!(
            s(&status("running", "boot-old", None), "1"),
            UpgradeState::Failed
        );
        let rebooting = |boot| status("rebooting", boot, Some("2"));
        assert_eq!(s(&rebooting("boot-now"), "1"), UpgradeState::Rebooting);
        assert_eq!(s(&rebooting("boot-old"), "2"), UpgradeState::Installed);
        let (state, message) = derive_state(None, Some(&rebooting("boot-old")), Some("1"), "x");
        assert_eq!(state, UpgradeState::RolledBack);
        assert!(message.contains("2 did not pass") && message.contains("back on 1"));
    }

    #[test]
    fn urls() {
        assert_eq!(url_problem("https://h/r.tar"), None);
        assert_eq!(url_problem("http://192.168.1.10:8001/x"), None);
        assert_eq!(url_problem(""), Some("required"));
        assert!(url_problem("ftp://h/x").unwrap().contains("http://"));
        assert!(url_problem("file:///etc/shadow")
            .unwrap()
            .contains("http://"));
        assert!(url_problem("http://h/{a,b}.tar")
            .unwrap()
            .contains("{ or }"));
        assert_eq!(url_problem("http://h/%7Ba%7D.tar"), None);
        assert_eq!(url_problem("http://[2001:db8::1]:8001/x.tar"), None);
        assert!(url_problem("http:///x").is_some());
        assert!(url_problem("http://h/a b").is_some());
        assert!(url_problem("http://h/\n").is_some());
        assert!(url_problem(&format!("http://h/{}", "a".repeat(MAX_URL))).is_some());
    }

    #[test]
    fn os_release_and_tail() {
        let text = "NAME=\"Ubuntu\"\nIMAGE_VERSION=\"0.1.0.5\"\n";
        assert_eq!(image_version(text).as_deref(), Some("0.1.0.5"));
        assert_eq!(image_version("IMAGE_VERSION=0.2\n").as_deref(), Some("0.2"));
        assert_eq!(image_version("NAME=x\n"), None);
        assert_eq!(tail("a\n\nb\nc\n", 2), vec!["b", "c"]);
        assert_eq!(tail("", 3), Vec::<String>::new());
    }
}
