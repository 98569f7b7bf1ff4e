//! routeros-web's connection limits, against the real binary on loopback TCP: floods of idle
//! connections, slowloris headers, stalled bodies, oversized declared bodies. The server
//! runs with the 1,024 file descriptors a systemd unit gets by default, as when 1,100 idle
//! connections from one LAN host made the UI and API unreachable (issue #10, item 3). Other
//! clients are told apart by their loopback address (127.0.0.0/8 is all local). No daemon
//! is needed: `GET /api/v1/setup` answers without one.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What a systemd unit without LimitNOFILE gets.
const UNIT_DEFAULT_NOFILE: libc::rlim_t = 1024;
/// A normal client's request must be answered within this.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

struct Server {
    child: Child,
    api: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    /// routeros-web with `flags`, the API port on a free loopback port.
    fn start(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let api = free_port();
        let ui = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_routeros-web"));
        cmd.args([
            "--listen-ui",
            &ui.to_string(),
            "--listen-api",
            &api.to_string(),
        ])
        .arg("--socket")
        .arg(dir.path().join("no-daemon.sock"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(flags)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: UNIT_DEFAULT_NOFILE,
                    rlim_max: UNIT_DEFAULT_NOFILE,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start routeros-web");
        let server = Self {
            child,
            api,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(api).is_err() {
            assert!(Instant::now() < deadline, "routeros-web did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A TCP connection from loopback address `from` (127.0.0.x) to `to`.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    // A server that stopped accepting leaves the backlog full: connect() would wait minutes.
    tokio::time::timeout(ANSWER_WITHIN, socket.connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Everything the server sends until it closes the connection, or an error after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<String, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => {
                return Err(format!(
                    "still open after {limit:?}; got {:?}",
                    String::from_utf8_lossy(&got)
                ))
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET /api/v1/setup` from `from`: the status line, answered within [`ANSWER_WITHIN`].
async fn get_setup(from: &str, server: &Server) -> Result<String, String> {
    let started = Instant::now();
    let attempt = async {
        let mut s = connect_from(from, server.api)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(b"GET /api/v1/setup HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        read_until_closed(&mut s, ANSWER_WITHIN).await
    };
    let answer = tokio::time::timeout(ANSWER_WITHIN, attempt)
        .await
        .map_err(|_| format!("no answer within {ANSWER_WITHIN:?}"))??;
    let status = answer.lines().next().unwrap_or("").to_string();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("answer {status:?} after {:?}", started.elapsed()));
    }
    Ok(status)
}

/// A connection that got one answer and stays open (keep-alive): the server has surely
/// accepted and counted it, however loaded the machine (a bare connect may still sit in the
/// backlog).
async fn served_keep_alive(from: &str, server: &Server) -> TcpStream {
    let mut s = connect_from(from, server.api).await.unwrap();
    s.write_all(b"GET /api/v1/setup HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(ANSWER_WITHIN, s.read(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    s
}

/// 1,100 idle connections from one LAN host; another host's request is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_flood_from_one_host_leaves_others_served() {
    let server = Server::start(&["--max-connections", "512"]);
    let mut idle = Vec::new();
    for i in 0..1100 {
        match connect_from("127.0.0.2", server.api).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} from the flooding host: {e}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    get_setup("127.0.0.3", &server)
        .await
        .expect("another LAN host is served during the flood");
    // The flooding host itself keeps its share, not more: most of its connections were
    // closed by the server at once.
    let mut closed = 0;
    for s in idle.iter_mut() {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(5), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert!(closed >= 1100 - 64, "only {closed} of 1100 were refused");
}

/// The global cap holds across hosts: 2 hosts × 4 served keep-alive connections fill the 8
/// slots, so hosts under their own cap are refused, and served again once the slots free up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_cap_refuses_then_recovers() {
    let server = Server::start(&["--max-connections", "8", "--max-connections-per-ip", "4"]);
    let mut held = Vec::new();
    for host in ["127.0.0.10", "127.0.0.11"] {
        for _ in 0..4 {
            held.push(served_keep_alive(host, &server).await);
        }
    }
    for host in ["127.0.0.12", "127.0.0.13"] {
        let refused = get_setup(host, &server).await;
        assert!(
            refused.is_err(),
            "a 9th connection was admitted: {refused:?}"
        );
    }
    drop(held);
    // The server frees a slot when it sees the close: allow a loaded machine some time.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match get_setup("127.0.0.13", &server).await {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "not served once the slots are free: {e}"
            ),
        }
    }
}

/// Slowloris: headers that never end are cut at the header timeout, and so is a connection
/// left idle after its answer (keep-alive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_and_idle_keep_alive_are_cut() {
    let server = Server::start(&["--header-timeout", "1"]);
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = connect_from("127.0.0.2", server.api).await.unwrap();
        s.write_all(b"GET /api/v1/setup HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    // Keep dribbling header lines: each byte must not restart the clock.
    let dribble = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for s in slow.iter_mut() {
                let _ = s.write_all(b"X-Slow: 1\r\n").await;
            }
        }
    };
    dribble.await;
    for (i, s) in slow.iter_mut().enumerate() {
        let left = Duration::from_secs(4).saturating_sub(started.elapsed());
        let r = read_until_closed(s, left).await;
        assert!(r.is_ok(), "slow connection {i}: {r:?}");
    }
    get_setup("127.0.0.3", &server).await.unwrap();

    // Keep-alive: one answered request, then silence.
    let mut s = connect_from("127.0.0.4", server.api).await.unwrap();
    s.write_all(b"GET /api/v1/setup HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let idle_since = Instant::now();
    let answer = read_until_closed(&mut s, Duration::from_secs(4)).await;
    let answer = answer.expect("an idle keep-alive connection is closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        idle_since.elapsed() >= Duration::from_millis(900),
        "closed too early"
    );
}

/// A body that declares more than the route takes is refused before it is sent, and one
/// that stalls fails at the body timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_stalled_bodies_end_early() {
    let server = Server::start(&["--body-timeout", "1"]);
    for (path, length) in [
        ("/api/v1/login", 2_000_000u64),
        ("/api/v1/system/upgrade/bundle", 5 << 30),
    ] {
        let mut s = connect_from("127.0.0.2", server.api).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(ANSWER_WITHIN, s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{path}: no early answer to Content-Length {length}"))
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_millis(900), "{path}");
    }

    let mut s = connect_from("127.0.0.2", server.api).await.unwrap();
    s.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\":",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(3))
        .await
        .expect("a stalled body ends at the body timeout");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}
