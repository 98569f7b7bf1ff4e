//! Mail delivery, both sinks together, failure logging and TLS wiring.

use super::*;

fn mail_cfg(smtp: SmtpConfig) -> AlertsConfig {
    AlertsConfig {
        webhook_url: None,
        retries: 3,
        min_interval_seconds: 60,
        smtp: Some(smtp),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_sent_with_subject_and_recipients() {
    let srv = FakeSmtp::start(0);
    let smtp = srv.config(&["ops@example.org", "NOC <noc@example.org>"]);
    let alerter = Alerter::with_tuning(&mail_cfg(smtp), fast());
    alerter.notify(&down("wan1"));
    assert!(wait_until(3.0, || srv.mails().len() == 1).await);
    let mail = &srv.mails()[0];
    assert_eq!(mail.from, "<router@example.org>");
    assert_eq!(mail.rcpt, ["<ops@example.org>", "<noc@example.org>"]);
    assert!(!mail.helo.is_empty());
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[router] wan1 down: wan1 lost 3 of 3 probes")
    );
    let to = mail.header("To").unwrap();
    assert!(
        to.contains("ops@example.org") && to.contains("noc@example.org"),
        "{to}"
    );
    assert!(
        mail.data.contains("wan1 lost 3 of 3 probes"),
        "{}",
        mail.data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_refused_connection_is_retried() {
    let srv = FakeSmtp::start(1);
    let alerter = Alerter::with_tuning(&mail_cfg(srv.config(&["ops@example.org"])), fast());
    alerter.notify(&Event::new(
        EventKind::Failover,
        None,
        "all traffic on wan2",
    ));
    assert!(wait_until(3.0, || srv.mails().len() == 1).await);
    assert_eq!(srv.conns.load(Ordering::SeqCst), 2);
    assert_eq!(
        srv.mails()[0].header("Subject").as_deref(),
        Some("[router] failover: all traffic on wan2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_mail_together_and_a_dead_mail_relay_does_not_stop_webhooks() {
    let http = FakeHttp::start(0);
    // A port with nothing listening: mail attempts fail fast with "connection refused".
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let cfg = AlertsConfig {
        webhook_url: Some(http.url()),
        retries: 2,
        min_interval_seconds: 0,
        smtp: Some(SmtpConfig {
            server: "127.0.0.1".into(),
            port: dead_port,
            from: "router@example.org".into(),
            to: vec!["ops@example.org".into()],
            username: None,
            password: None,
            starttls: false,
        }),
    };
    let alerter = Alerter::with_tuning(&cfg, fast());
    for wan in ["wan1", "wan2", "wan3"] {
        alerter.notify(&down(wan));
    }
    assert!(wait_until(3.0, || http.reqs().len() == 3).await);
}

// ---------- logging ----------

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// current_thread: the alert tasks run on the test thread, where the subscriber is installed.
#[tokio::test(flavor = "current_thread")]
async fn failures_are_logged_as_warnings_without_the_url_secret() {
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // Trap: with exactly one registered dispatcher, tracing-core computes a callsite's cached
    // interest from the default of whichever thread hits it first. A parallel test without a
    // subscriber then caches "never" for our warn! callsites and this test sees nothing. A second
    // live dispatcher makes tracing combine all registered ones ("sometimes": ask per event).
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let srv = FakeHttp::start(usize::MAX);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    alerter.notify(&down("wan1"));
    assert!(wait_until(3.0, || srv.reqs().len() >= 3).await);
    let text = || String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        wait_until(1.0, || text().contains("giving up")).await,
        "{}",
        text()
    );
    let text = text();
    assert_eq!(text.matches("WARN").count(), 3, "{text}");
    assert_eq!(text.matches("will retry").count(), 2, "{text}");
    assert!(text.contains("HTTP status 500"), "{text}");
    assert!(text.contains(&format!("http://{}/…", srv.addr)), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

// ---------- TLS plumbing (no TLS server here: only that it is wired and fails cleanly) ----------

#[test]
fn https_webhook_against_a_plain_server_is_an_error_not_a_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        if let Ok((mut c, _)) = listener.accept() {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let agent = webhook::agent(&fast());
    let err = webhook::post(&agent, &format!("https://{addr}/hook"), "{}").unwrap_err();
    // rustls (ring provider) got as far as reading the server's non-TLS answer.
    assert!(err.contains("corrupt message"), "{err}");
    server.join().unwrap();
}

#[test]
fn smtp_tls_modes_build() {
    let base = SmtpConfig {
        server: "mail.example.org".into(),
        port: 587,
        from: "router@example.org".into(),
        to: vec!["ops@example.org".into()],
        username: Some("router".into()),
        password: Some("pw".into()),
        starttls: true,
    };
    assert!(mail::Mailer::new(&base, &fast()).is_ok());
    let smtps = SmtpConfig {
        port: 465,
        starttls: false,
        ..base.clone()
    };
    assert!(mail::Mailer::new(&smtps, &fast()).is_ok());
}
