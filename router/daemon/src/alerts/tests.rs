//! End-to-end tests of the alerter against real local servers on 127.0.0.1 (a tiny HTTP server
//! and a tiny SMTP server, each on a std thread). No traffic leaves the machine.

use super::*;
use routeros_shared::config::SmtpConfig;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

// ---------- fake HTTP server ----------

#[derive(Debug, Clone)]
struct HttpReq {
    method: String,
    path: String,
    content_type: String,
    body: String,
    status: u16,
}

/// Answers 500 to the first `fail_first` requests, then 200; records every request.
struct FakeHttp {
    addr: SocketAddr,
    reqs: Arc<Mutex<Vec<HttpReq>>>,
    stop: Arc<AtomicBool>,
}

impl FakeHttp {
    fn start(fail_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&reqs), Arc::clone(&stop));
        std::thread::spawn(move || {
            let served = AtomicUsize::new(0);
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let status = if served.fetch_add(1, Ordering::SeqCst) < fail_first {
                    500
                } else {
                    200
                };
                if let Some(req) = serve_http(conn, status) {
                    r.lock().unwrap().push(req);
                }
            }
        });
        Self { addr, reqs, stop }
    }

    fn url(&self) -> String {
        format!("http://{}/hook/s3cret-token", self.addr)
    }

    fn reqs(&self) -> Vec<HttpReq> {
        self.reqs.lock().unwrap().clone()
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.reqs()
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn serve_http(conn: TcpStream, status: u16) -> Option<HttpReq> {
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let (mut len, mut content_type) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        let (name, value) = h.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = value.trim().parse().ok()?,
            "content-type" => content_type = value.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let reason = if status == 200 {
        "OK"
    } else {
        "Internal Server Error"
    };
    let mut w = conn;
    let _ = write!(
        w,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    Some(HttpReq {
        method,
        path,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    })
}

// ---------- fake SMTP server ----------

#[derive(Debug, Clone, Default)]
struct Mail {
    helo: String,
    from: String,
    rcpt: Vec<String>,
    data: String,
}

impl Mail {
    /// A header's value, with folded continuation lines joined.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut unfolded: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = unfolded.last_mut() {
                    last.push_str(line);
                }
            } else {
                unfolded.push(line.to_string());
            }
        }
        let prefix = format!("{}:", name.to_ascii_lowercase());
        unfolded
            .iter()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

/// Minimal SMTP: greeting, EHLO, MAIL, RCPT, DATA, ".", QUIT. The first `refuse_first`
/// connections are greeted with 421 and closed.
struct FakeSmtp {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    conns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeSmtp {
    fn start(refuse_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, c, s) = (Arc::clone(&mails), Arc::clone(&conns), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                if c.fetch_add(1, Ordering::SeqCst) < refuse_first {
                    let _ = conn.write_all(b"421 fake.test busy, try later\r\n");
                    continue;
                }
                if let Some(mail) = serve_smtp(conn) {
                    m.lock().unwrap().push(mail);
                }
            }
        });
        Self {
            addr,
            mails,
            conns,
            stop,
        }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    fn config(&self, to: &[&str]) -> SmtpConfig {
        SmtpConfig {
            server: self.addr.ip().to_string(),
            port: self.addr.port(),
            from: "Router <router@example.org>".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            username: None,
            password: None,
            starttls: false,
        }
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_smtp(conn: TcpStream) -> Option<Mail> {
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut w = conn;
    let mut mail = Mail::default();
    let mut complete = false;
    w.write_all(b"220 fake.test ESMTP\r\n").ok()?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            mail.helo = cmd[4..].trim().to_string();
            b"250 fake.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = cmd["MAIL FROM:".len()..].trim().to_string();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt.push(cmd["RCPT TO:".len()..].trim().to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").ok()?;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).ok()? == 0 {
                    return None;
                }
                if l == ".\r\n" {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l); // dot-unstuffing
                mail.data.push_str(l);
            }
            complete = true;
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n");
            break;
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        w.write_all(reply).ok()?;
    }
    complete.then_some(mail)
}

// ---------- helpers ----------

fn fast() -> Tuning {
    Tuning {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        http_timeout: Duration::from_secs(2),
        smtp_timeout: Duration::from_secs(2),
        queue: 64,
    }
}

fn webhook_cfg(url: String, interval: u32) -> AlertsConfig {
    AlertsConfig {
        webhook_url: Some(url),
        retries: 3,
        min_interval_seconds: interval,
        smtp: None,
    }
}

fn down(wan: &str) -> Event {
    Event::new(
        EventKind::StateChange,
        Some(wan),
        format!("{wan} lost 3 of 3 probes"),
    )
    .with(serde_json::json!({"state": "down", "loss_percent": 100}))
}

/// Poll `cond` every 10 ms for up to `secs`.
async fn wait_until(secs: f64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

// ---------- webhook ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_event_json() {
    let srv = FakeHttp::start(0);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    assert!(alerter.is_active());
    let ev = down("wan1");
    alerter.notify(&ev);
    assert!(wait_until(3.0, || srv.reqs().len() == 1).await);
    let req = &srv.reqs()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook/s3cret-token");
    assert_eq!(req.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["event"], serde_json::to_value(&ev).unwrap());
    assert_eq!(body["event"]["kind"], "state_change");
    assert_eq!(body["event"]["wan"], "wan1");
    assert_eq!(body["suppressed"], 0);
    assert!(!body["host"].as_str().unwrap().is_empty());
    assert_eq!(body["text"], "wan1 down: wan1 lost 3 of 3 probes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_500_then_200_is_retried_and_delivered_once() {
    let srv = FakeHttp::start(1);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    alerter.notify(&down("wan1"));
    assert!(wait_until(3.0, || srv.reqs().len() >= 2).await);
    tokio::time::sleep(Duration::from_millis(200)).await; // no extra attempt after success
    let statuses: Vec<u16> = srv.reqs().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200]);
    assert_eq!(
        srv.reqs()[0].body,
        srv.reqs()[1].body,
        "same payload retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gives_up_after_retries() {
    let srv = FakeHttp::start(usize::MAX);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    alerter.notify(&down("wan1"));
    assert!(wait_until(3.0, || srv.reqs().len() >= 3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(srv.reqs().len(), 3, "retries = 3 attempts in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_kind_and_wan_within_interval_is_sent_once_other_wan_is_not_suppressed() {
    let srv = FakeHttp::start(0);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    alerter.notify(&down("wan1"));
    alerter.notify(&down("wan1"));
    alerter.notify(&down("wan2"));
    assert!(wait_until(3.0, || srv.reqs().len() >= 2).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies = srv.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let mut wans: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"]["wan"].as_str().unwrap())
        .collect();
    wans.sort();
    assert_eq!(wans, ["wan1", "wan2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_repeat_is_sent_when_window_closes_with_suppressed_count() {
    let srv = FakeHttp::start(0);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 1), fast());
    alerter.notify(&down("wan1"));
    alerter.notify(&Event::new(EventKind::StateChange, Some("wan1"), "flap"));
    let up = Event::new(EventKind::StateChange, Some("wan1"), "wan1 answers again")
        .with(serde_json::json!({"state": "up"}));
    alerter.notify(&up);
    assert!(wait_until(1.0, || srv.reqs().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        srv.reqs().len(),
        1,
        "the repeats are held inside the window"
    );
    assert!(wait_until(2.0, || srv.reqs().len() == 2).await);
    let last = srv.bodies().pop().unwrap();
    assert_eq!(last["event"]["message"], "wan1 answers again");
    assert_eq!(last["suppressed"], 1, "the flap in between");
    assert_eq!(last["text"], "wan1 up: wan1 answers again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_same_config_keeps_state_new_url_switches() {
    let (a, b) = (FakeHttp::start(0), FakeHttp::start(0));
    let mut alerter = Alerter::with_tuning(&webhook_cfg(a.url(), 60), fast());
    alerter.notify(&down("wan1"));
    alerter.reconfigure(&webhook_cfg(a.url(), 60));
    alerter.notify(&down("wan1")); // still deduplicated: same alerter
    assert!(wait_until(3.0, || a.reqs().len() == 1).await);
    alerter.reconfigure(&webhook_cfg(b.url(), 60));
    alerter.notify(&down("wan3"));
    assert!(wait_until(3.0, || b.reqs().len() == 1).await);
    // The replaced alerter flushed the repeat it was holding to the old URL before stopping.
    assert!(wait_until(3.0, || a.reqs().len() == 2).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.reqs().len(), 2);
    assert_eq!(a.bodies()[1]["event"]["wan"], "wan1");
    assert_eq!(b.reqs().len(), 1);
    assert_eq!(b.bodies()[0]["event"]["wan"], "wan3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_never_blocks_even_when_the_sink_hangs() {
    // Accepts connections (kernel backlog) but never answers: every POST waits for its timeout.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", hang.local_addr().unwrap());
    let tuning = Tuning {
        http_timeout: Duration::from_millis(300),
        queue: 4,
        ..fast()
    };
    let alerter = Alerter::with_tuning(&webhook_cfg(url, 0), tuning);
    let started = std::time::Instant::now();
    for i in 0..1_000 {
        alerter.notify(&down(&format!("wan{i}")));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "notify took {took:?}");
    drop(alerter);
    drop(hang);
}

#[test]
fn outside_a_runtime_or_unconfigured_it_is_a_noop() {
    let cfg = webhook_cfg("http://127.0.0.1:9/".into(), 60);
    let a = Alerter::new(&cfg);
    assert!(!a.is_active());
    a.notify(&down("wan1"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let none = Alerter::new(&AlertsConfig::default());
        assert!(!none.is_active());
        none.notify(&down("wan1"));
        assert!(!Alerter::disabled().is_active());
    });
}

#[test]
fn debug_output_hides_secrets() {
    let mut cfg = webhook_cfg("https://hooks.example.org/services/T0/B0/s3cret".into(), 60);
    cfg.smtp = Some(SmtpConfig {
        server: "mail.example.org".into(),
        port: 587,
        from: "r@example.org".into(),
        to: vec!["ops@example.org".into()],
        username: Some("r".into()),
        password: Some("hunter2".into()),
        starttls: true,
    });
    let a = Alerter {
        tx: None,
        cfg,
        tuning: fast(),
    };
    let shown = format!("{a:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(shown.contains("hooks.example.org"), "{shown}");
}

#[test]
fn backoff_doubles_and_caps() {
    let t = Tuning {
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(30),
        ..Tuning::default()
    };
    let got: Vec<u64> = (1..=7).map(|a| backoff(&t, a).as_secs()).collect();
    assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(backoff(&t, 1_000), Duration::from_secs(30));
}

#[test]
fn summary_is_one_short_line() {
    let alert = |event| Alert {
        event,
        host: Arc::from("gw"),
        suppressed: 0,
    };
    let e = Event::new(EventKind::Failover, None, "now via wan2\nwan1 out");
    assert_eq!(summary(&alert(e)), "failover: now via wan2 wan1 out");
    let e = Event::new(EventKind::HighLatency, Some("wan2"), "x".repeat(500));
    let s = summary(&alert(e));
    assert!(
        s.starts_with("wan2 high latency: xxx") && s.ends_with('…'),
        "{s}"
    );
    assert!(s.chars().count() < 200);
    let e = Event::new(EventKind::StateChange, Some("wan1"), "changed");
    assert_eq!(summary(&alert(e)), "wan1 state change: changed");
    // The health monitor's Transition as details: {"from": "up", "to": "down", ...}.
    let e = Event::new(
        EventKind::StateChange,
        Some("wan1"),
        "wan1: up -> down (carrier lost)",
    )
    .with(serde_json::json!({"from": "up", "to": "down", "cause": "carrier lost"}));
    assert_eq!(
        summary(&alert(e)),
        "wan1 down: wan1: up -> down (carrier lost)"
    );
}

// ---------- mail ----------

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
