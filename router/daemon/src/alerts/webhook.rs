//! Webhook sink: a JSON POST per alert with ureq (blocking, so always inside `spawn_blocking`).

use super::{Alert, Tuning};

/// The POST body: `{"event": <Event>, "host": ..., "suppressed": n, "text": ...}`.
///
/// `text` is the same one-line summary as the mail subject; it makes the payload usable as-is by
/// Slack/Mattermost-style incoming webhooks, which display `text` and ignore the rest.
pub fn payload(alert: &Alert) -> serde_json::Value {
    serde_json::json!({
        "event": alert.event,
        "host": &*alert.host,
        "suppressed": alert.suppressed,
        "text": super::summary(alert),
    })
}

/// One agent per sink: ureq's agent keeps a connection pool and is cheap to clone.
pub fn agent(tuning: &Tuning) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(tuning.http_timeout))
        // Non-2xx is checked below, so it can be logged with its status.
        .http_status_as_error(false)
        // A redirected POST may silently turn into a GET without the body: treat 3xx as failure.
        .max_redirects(0)
        .user_agent(concat!("routeros/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// One attempt. Blocking: call it from `spawn_blocking`.
pub fn post(agent: &ureq::Agent, url: &str, body: &str) -> Result<(), String> {
    let resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP status {status}"))
    }
}

/// The URL without path, query or credentials: webhook URLs often carry a secret token in the
/// path (Slack, Discord, ...), so logs only ever show this.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        format!("{host}/…")
    } else {
        format!("{scheme}://{host}/…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_path_query_and_credentials() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("http://user:pw@127.0.0.1:8080/hook?token=s3cret"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(redact("example.org/x"), "example.org/…");
    }
}
