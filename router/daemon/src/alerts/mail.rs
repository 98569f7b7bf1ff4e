//! Mail sink: one message per alert through an SMTP relay with lettre's blocking transport
//! (inside `spawn_blocking`, like the webhook).
//!
//! TLS: port 465 means implicit TLS (SMTPS); otherwise `starttls = true` requires STARTTLS (the
//! send fails rather than falling back to plain text); otherwise the connection is plain (fine
//! for a relay on localhost or the LAN). Certificates are checked against the webpki roots.

use super::{Alert, Tuning};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use routeros_shared::config::SmtpConfig;

/// The implicit-TLS submission port.
const SMTPS_PORT: u16 = 465;

/// A ready transport and the parsed addresses; built once per alerter.
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    /// Fails on addresses that do not parse or a server name TLS cannot use.
    pub fn new(cfg: &SmtpConfig, tuning: &Tuning) -> Result<Self, String> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("from `{}`: {e}", cfg.from))?;
        let to = cfg
            .to
            .iter()
            .map(|t| t.parse::<Mailbox>().map_err(|e| format!("to `{t}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err("no recipient".into());
        }
        let tls = if cfg.port == SMTPS_PORT || cfg.starttls {
            let params = TlsParameters::new(cfg.server.clone())
                .map_err(|e| format!("TLS for `{}`: {e}", cfg.server))?;
            if cfg.port == SMTPS_PORT {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        } else {
            Tls::None
        };
        let plain = matches!(tls, Tls::None);
        let mut builder = SmtpTransport::builder_dangerous(cfg.server.as_str())
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(tuning.smtp_timeout));
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            if plain {
                tracing::warn!(
                    server = %cfg.server,
                    "alerts.smtp: credentials will be sent without TLS; set starttls = true or port 465"
                );
            }
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            to,
        })
    }

    /// The message for one alert.
    pub fn message(&self, alert: &Alert) -> Result<Message, String> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject(alert))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.body(body(alert)).map_err(|e| e.to_string())
    }

    /// One attempt. Blocking: call it from `spawn_blocking`.
    pub fn send(&self, msg: &Message) -> Result<(), String> {
        self.transport
            .send(msg)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// "[router] wan1 down: <message>", plus "(N similar suppressed)" when some were.
pub fn subject(alert: &Alert) -> String {
    let mut s = format!("[router] {}", super::summary(alert));
    if alert.suppressed > 0 {
        s.push_str(&format!(" ({} similar suppressed)", alert.suppressed));
    }
    s
}

pub fn body(alert: &Alert) -> String {
    let e = &alert.event;
    let mut out = format!("{}\n\n", e.message);
    out.push_str(&format!("host:  {}\n", alert.host));
    out.push_str(&format!("time:  {}\n", utc_time(e.at_ms)));
    out.push_str(&format!("kind:  {}\n", super::kind_name(e.kind)));
    if let Some(wan) = &e.wan {
        out.push_str(&format!("wan:   {wan}\n"));
    }
    if alert.suppressed > 0 {
        out.push_str(&format!(
            "\n{} similar alert(s) (same kind and WAN) were suppressed since the last one.\n",
            alert.suppressed
        ));
    }
    if !e.details.is_null() {
        let details = serde_json::to_string_pretty(&e.details).unwrap_or_default();
        out.push_str(&format!("\ndetails:\n{details}\n"));
    }
    out
}

/// "2026-11-05 14:03:07 UTC" from Unix milliseconds (civil-from-days, proleptic Gregorian).
pub fn utc_time(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = i64::try_from(days).expect("u64::MAX ms is under 2^38 days") + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeros_shared::events::{Event, EventKind};
    use std::sync::Arc;

    fn alert(suppressed: u32) -> Alert {
        let mut event = Event::new(EventKind::StateChange, Some("wan1"), "3 of 3 probes lost")
            .with(serde_json::json!({"state": "down", "loss_percent": 100}));
        event.at_ms = 1_700_000_000_123;
        Alert {
            event,
            host: Arc::from("gw1"),
            suppressed,
        }
    }

    #[test]
    fn subject_and_body() {
        assert_eq!(subject(&alert(0)), "[router] wan1 down: 3 of 3 probes lost");
        assert_eq!(
            subject(&alert(4)),
            "[router] wan1 down: 3 of 3 probes lost (4 similar suppressed)"
        );
        let b = body(&alert(4));
        assert!(b.starts_with("3 of 3 probes lost\n"), "{b}");
        assert!(b.contains("host:  gw1\n"), "{b}");
        assert!(b.contains("time:  2023-11-14 22:13:20 UTC\n"), "{b}");
        assert!(b.contains("wan:   wan1\n"), "{b}");
        assert!(b.contains("4 similar alert(s)"), "{b}");
        assert!(b.contains("\"loss_percent\": 100"), "{b}");
    }

    #[test]
    fn utc_time_known_points() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(4_102_444_799_999), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn bad_addresses_are_refused() {
        let cfg = SmtpConfig {
            server: "127.0.0.1".into(),
            port: 25,
            from: "not an address".into(),
            to: vec!["ops@example.org".into()],
            username: None,
            password: None,
            starttls: false,
        };
        assert!(Mailer::new(&cfg, &Tuning::default()).is_err());
        let ok = SmtpConfig {
            from: "Router <router@example.org>".into(),
            ..cfg
        };
        let m = Mailer::new(&ok, &Tuning::default()).unwrap();
        let msg = m.message(&alert(0)).unwrap();
        let text = String::from_utf8(msg.formatted()).unwrap();
        assert!(
            text.contains("Subject: [router] wan1 down: 3 of 3 probes lost"),
            "{text}"
        );
        assert!(text.contains("To: ops@example.org"), "{text}");
    }
}
