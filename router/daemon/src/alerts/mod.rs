//! Alerts: events pushed to a webhook and/or by mail, rate limited, off the event loop.
//!
//! ```text
//! notify(&Event) --try_send--> [queue] --> dispatcher task --try_send--> [queue] --> webhook worker
//!   (never blocks; drops          (dedupe / rate limit         \--------> [queue] --> mail worker
//!    with a warning when full)     per (kind, wan))                each: spawn_blocking + retries
//! ```
//!
//! - Dedupe: the same `(kind, wan)` is sent at most once per `min_interval_seconds`. Repeats inside
//!   the window are held; when it closes the newest one is sent with the number of suppressed ones
//!   in between ("N similar suppressed"), so a quick "down" then "up" still ends on "up". See
//!   [`RateLimiter`]. `min_interval_seconds = 0` sends everything.
//! - Each sink has its own worker and queue, so a dead SMTP relay does not delay webhooks. Inside a
//!   sink alerts go out in order, one at a time, each tried `retries` times (at least once) with
//!   backoff 1 s, 2 s, 4 s, ... (capped at 30 s). Every failure is a `warn`; nothing panics.
//! - Config reload: call [`Alerter::reconfigure`] (or simply build a new `Alerter`); it is a no-op
//!   when the alert config did not change, otherwise it replaces the alerter: the old dispatcher
//!   sends what it still holds and its workers finish their queues, and the rate-limit state
//!   starts afresh (so one alert may repeat right after a reload).
//! - `Alerter::new` must run inside a tokio runtime (it spawns the tasks); outside one it logs a
//!   warning and returns a disabled alerter. With nothing configured it spawns nothing and
//!   `notify` is a no-op.

mod limiter;
mod mail;
mod webhook;

#[cfg(test)]
mod tests;

pub use limiter::{RateLimiter, Release};

use routeros_shared::config::AlertsConfig;
use routeros_shared::events::{Event, EventKind};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

/// One alert as the sinks see it.
#[derive(Debug, Clone)]
pub struct Alert {
    pub event: Event,
    /// This router's host name.
    pub host: Arc<str>,
    /// Similar alerts (same kind and WAN) suppressed since the last one sent.
    pub suppressed: u32,
}

/// Knobs that are not in the config file (tests shorten them).
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    /// Wait after the first failed attempt; doubles each time.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Whole-request timeout for one webhook POST.
    pub http_timeout: Duration,
    /// Per-operation timeout of the SMTP client.
    pub smtp_timeout: Duration,
    /// Capacity of the notify queue and of each sink's queue.
    pub queue: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            http_timeout: Duration::from_secs(5),
            smtp_timeout: Duration::from_secs(10),
            queue: 64,
        }
    }
}

/// Hands events to the background alert tasks. Cheap to clone; the tasks stop (after flushing)
/// once every clone is dropped.
#[derive(Clone)]
pub struct Alerter {
    tx: Option<mpsc::Sender<Event>>,
    cfg: AlertsConfig,
    tuning: Tuning,
}

impl fmt::Debug for Alerter {
    // Hand-written: the config holds the SMTP password and a webhook URL that may carry a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerter")
            .field("active", &self.is_active())
            .field(
                "webhook",
                &self.cfg.webhook_url.as_deref().map(webhook::redact),
            )
            .field("smtp", &self.cfg.smtp.as_ref().map(|s| &s.server))
            .finish()
    }
}

impl Alerter {
    /// Start the alert tasks for `cfg` on the current tokio runtime.
    pub fn new(cfg: &AlertsConfig) -> Self {
        Self::with_tuning(cfg, Tuning::default())
    }

    /// An alerter that sends nothing.
    pub fn disabled() -> Self {
        Self {
            tx: None,
            cfg: AlertsConfig {
                webhook_url: None,
                smtp: None,
                ..AlertsConfig::default()
            },
            tuning: Tuning::default(),
        }
    }

    pub(crate) fn with_tuning(cfg: &AlertsConfig, tuning: Tuning) -> Self {
        let mut me = Self {
            tx: None,
            cfg: cfg.clone(),
            tuning: tuning.clone(),
        };
        if cfg.webhook_url.is_none() && cfg.smtp.is_none() {
            return me;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("alerts: not inside a tokio runtime; alerts are disabled");
            return me;
        };
        let attempts = cfg.retries.max(1);
        let mut sinks = Vec::new();
        if let Some(url) = &cfg.webhook_url {
            let (tx, rx) = mpsc::channel(tuning.queue);
            rt.spawn(webhook_worker(
                rx,
                Arc::from(url.as_str()),
                attempts,
                tuning.clone(),
            ));
            sinks.push(Sink {
                name: "webhook",
                tx,
            });
        }
        if let Some(smtp) = &cfg.smtp {
            match mail::Mailer::new(smtp, &tuning) {
                Ok(mailer) => {
                    let (tx, rx) = mpsc::channel(tuning.queue);
                    let target = format!("{}:{}", smtp.server, smtp.port);
                    rt.spawn(mail_worker(rx, mailer, target, attempts, tuning.clone()));
                    sinks.push(Sink { name: "mail", tx });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alerts.smtp unusable; mail alerts are disabled")
                }
            }
        }
        if sinks.is_empty() {
            return me;
        }
        let (tx, rx) = mpsc::channel(tuning.queue);
        let interval_ms = u64::from(cfg.min_interval_seconds) * 1000;
        rt.spawn(dispatch(rx, interval_ms, sinks, Arc::from(hostname())));
        me.tx = Some(tx);
        me
    }

    /// Whether anything will be sent at all.
    pub fn is_active(&self) -> bool {
        self.tx.is_some()
    }

    /// Queue `event` for alerting. Never blocks and never fails: when the queue is full (the
    /// sinks are far behind) the event is dropped with a warning.
    pub fn notify(&self, event: &Event) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(event.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(e)) => tracing::warn!(
                kind = kind_name(e.kind),
                wan = e.wan.as_deref().unwrap_or("-"),
                "alert queue full; alert dropped"
            ),
            Err(TrySendError::Closed(_)) => {
                tracing::warn!("alert task is gone; alert dropped")
            }
        }
    }

    /// Apply a reloaded config: no-op when the alert settings are unchanged, otherwise the
    /// alerter is rebuilt (rate-limit state starts afresh).
    pub fn reconfigure(&mut self, cfg: &AlertsConfig) {
        if *cfg != self.cfg {
            *self = Self::with_tuning(cfg, self.tuning.clone());
        }
    }
}

struct Sink {
    name: &'static str,
    tx: mpsc::Sender<Arc<Alert>>,
}

type Key = (EventKind, Option<String>);

async fn dispatch(
    mut rx: mpsc::Receiver<Event>,
    interval_ms: u64,
    sinks: Vec<Sink>,
    host: Arc<str>,
) {
    let start = Instant::now();
    let now = move || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut limiter: RateLimiter<Key, Event> = RateLimiter::new(interval_ms);
    let fan_out = |r: Release<Key, Event>| {
        let alert = Arc::new(Alert {
            event: r.item,
            host: Arc::clone(&host),
            suppressed: r.suppressed,
        });
        for sink in &sinks {
            if let Err(e) = sink.tx.try_send(Arc::clone(&alert)) {
                let why = match e {
                    TrySendError::Full(_) => "queue full",
                    TrySendError::Closed(_) => "worker gone",
                };
                tracing::warn!(
                    sink = sink.name,
                    kind = kind_name(alert.event.kind),
                    wan = alert.event.wan.as_deref().unwrap_or("-"),
                    "alert dropped: {why}"
                );
            }
        }
    };
    loop {
        let next = match limiter.next_due_ms() {
            Some(due) => {
                tokio::select! {
                    ev = rx.recv() => ev,
                    () = tokio::time::sleep_until(start + Duration::from_millis(due)) => {
                        limiter.take_due(now().max(due)).into_iter().for_each(&fan_out);
                        continue;
                    }
                }
            }
            None => rx.recv().await,
        };
        match next {
            Some(event) => {
                let key = (event.kind, event.wan.clone());
                if let Some(r) = limiter.offer(key, event, now()) {
                    fan_out(r);
                }
            }
            None => {
                // Every Alerter clone is gone (shutdown or reconfiguration): send what is held.
                limiter.drain().into_iter().for_each(&fan_out);
                return;
            }
        }
    }
}

async fn webhook_worker(
    mut rx: mpsc::Receiver<Arc<Alert>>,
    url: Arc<str>,
    attempts: u32,
    tuning: Tuning,
) {
    let agent = webhook::agent(&tuning);
    let target = webhook::redact(&url);
    while let Some(alert) = rx.recv().await {
        let body = webhook::payload(&alert).to_string();
        let (agent, url) = (agent.clone(), Arc::clone(&url));
        let job = move || webhook::post(&agent, &url, &body);
        deliver("webhook", &target, &alert, attempts, &tuning, job).await;
    }
}

async fn mail_worker(
    mut rx: mpsc::Receiver<Arc<Alert>>,
    mailer: mail::Mailer,
    target: String,
    attempts: u32,
    tuning: Tuning,
) {
    let mailer = Arc::new(mailer);
    while let Some(alert) = rx.recv().await {
        let msg = match mailer.message(&alert) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "alert mail could not be built; alert dropped");
                continue;
            }
        };
        let m = Arc::clone(&mailer);
        let job = move || m.send(&msg);
        deliver("mail", &target, &alert, attempts, &tuning, job).await;
    }
}

/// Run the blocking `job` up to `attempts` times with backoff. True when one attempt succeeded.
async fn deliver<F>(
    sink: &'static str,
    target: &str,
    alert: &Alert,
    attempts: u32,
    tuning: &Tuning,
    job: F,
) -> bool
where
    F: Fn() -> Result<(), String> + Send + Sync + 'static,
{
    let job = Arc::new(job);
    let kind = kind_name(alert.event.kind);
    let wan = alert.event.wan.as_deref().unwrap_or("-");
    for attempt in 1..=attempts {
        let j = Arc::clone(&job);
        let error = match tokio::task::spawn_blocking(move || j()).await {
            Ok(Ok(())) => {
                tracing::debug!(sink, target, kind, wan, attempt, "alert delivered");
                return true;
            }
            Ok(Err(e)) => e,
            Err(e) => format!("delivery task failed: {e}"),
        };
        if attempt < attempts {
            let wait = backoff(tuning, attempt);
            tracing::warn!(
                sink, target, kind, wan, attempt, attempts, %error,
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "alert delivery failed; will retry"
            );
            tokio::time::sleep(wait).await;
        } else {
            tracing::warn!(
                sink, target, kind, wan, attempts, %error,
                "alert delivery failed; giving up"
            );
        }
    }
    false
}

/// Wait after failed attempt `attempt` (from 1): base, 2·base, 4·base, ... capped at the max.
fn backoff(tuning: &Tuning, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    tuning
        .backoff_base
        .saturating_mul(factor)
        .min(tuning.backoff_max)
}

/// The event's name as in its JSON ("state_change", ...).
pub fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::StateChange => "state_change",
        EventKind::HighLatency => "high_latency",
        EventKind::Failover => "failover",
        EventKind::ConfigChange => "config_change",
        EventKind::Operator => "operator",
        EventKind::Session => "session",
        EventKind::Ha => "ha",
    }
}

/// One line for people: "wan1 down: <message>", "failover: <message>", ...
///
/// For state changes the new state is taken from `details.state` or `details.to` (the health
/// monitor's `Transition`) when the event carries it.
pub fn summary(alert: &Alert) -> String {
    let e = &alert.event;
    let state = ["state", "to"]
        .iter()
        .find_map(|k| e.details.get(*k).and_then(|s| s.as_str()));
    let what = match (e.kind, state) {
        (EventKind::StateChange, Some(s)) => one_line(s, 20),
        (EventKind::StateChange, None) => "state change".into(),
        (EventKind::HighLatency, _) => "high latency".into(),
        (EventKind::Failover, _) => "failover".into(),
        (EventKind::ConfigChange, _) => "config change".into(),
        (EventKind::Operator, _) => "operator action".into(),
        (EventKind::Session, _) => "PPPoE session".into(),
        (EventKind::Ha, _) => "HA pair".into(),
    };
    let message = one_line(&e.message, 160);
    match &e.wan {
        Some(wan) => format!("{} {what}: {message}", one_line(wan, 32)),
        None => format!("{what}: {message}"),
    }
}

/// Control characters (newlines!) become spaces, and long text is cut with an ellipsis:
/// the result goes into a mail header.
fn one_line(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars + 1)
        .collect();
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
