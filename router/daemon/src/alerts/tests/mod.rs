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

mod mail_delivery;
mod webhook_delivery;
