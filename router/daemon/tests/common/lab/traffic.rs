//! Traffic in the lab: running code inside a namespace, a TCP echo server and its clients,
//! a UDP recorder, and counting which WAN carried what.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use super::{wan_addr, wan_index, wan_net6, CONNECT_TIMEOUT, INET_HOST, INET_HOST6, IO_TIMEOUT};

/// The port of the TCP echo server the tests start on the internet host.
pub const ECHO_PORT: u16 = 5001;

/// `port` on the internet host.
pub fn inet(port: u16) -> SocketAddr {
    SocketAddr::from((INET_HOST, port))
}

/// `port` on the internet host's IPv6 address. The servers below work with it as they do
/// with IPv4 (e.g. `TcpEchoServer::start(&lab.inet(), inet6(ECHO_PORT))`); the peer they
/// report is then the router's IPv6 source, counted by its WAN's /64.
pub fn inet6(port: u16) -> SocketAddr {
    SocketAddr::from((INET_HOST6, port))
}

// --- namespaces --------------------------------------------------------------------------

/// Move the calling thread into the named network namespace (`/run/netns/NAME`).
fn enter_ns(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns({path}): {e}"));
}

/// Run `f` on a fresh thread inside namespace `ns` and return its result (panics propagate).
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| {
        s.spawn(|| {
            enter_ns(ns);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Connect from namespace `ns`; the stream stays in `ns` and can be used from any thread.
pub fn tcp_connect(ns: &str, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    in_ns(ns, || TcpStream::connect_timeout(&to, timeout))
}

// --- TCP echo server ---------------------------------------------------------------------

/// A TCP server that records the peer address of every connection it accepts. Per connection
/// it first sends `PEER <ip>\n`, then answers every line `L` with `<ip> L\n`, so a client
/// learns which WAN carried it and can check it on every exchange.
pub struct TcpEchoServer {
    pub addr: SocketAddr,
    peers: Arc<Mutex<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpEchoServer {
    pub fn start(ns: &str, addr: SocketAddr) -> Self {
        let listener = in_ns(ns, || TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"));
        // Non-blocking accept polled with a stop flag, so Drop can end the acceptor.
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (peers, stop) = (peers.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            peers.lock().unwrap().push(peer.ip());
                            thread::spawn(move || serve_echo(stream, peer.ip()));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => {
                            eprintln!("echo server {addr}: accept: {e}");
                            thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            })
        };
        Self {
            addr,
            peers,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Peer address of every connection accepted so far, in order.
    pub fn peers(&self) -> Vec<IpAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for TcpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn serve_echo(stream: TcpStream, peer: IpAddr) {
    let run = || -> io::Result<()> {
        stream.set_nonblocking(false)?;
        // Long enough for the slowest test (a daemon restart while connections idle).
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut out = stream.try_clone()?;
        out.write_all(format!("PEER {peer}\n").as_bytes())?;
        for line in BufReader::new(stream).lines() {
            out.write_all(format!("{peer} {}\n", line?).as_bytes())?;
        }
        Ok(())
    };
    let _ = run();
}

/// A client of [`TcpEchoServer`].
pub struct EchoClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    /// The source address the server saw (the WAN's address).
    pub peer: IpAddr,
}

impl EchoClient {
    /// The client's own port (the original tuple's source port in conntrack).
    pub fn local_port(&self) -> u16 {
        self.writer
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Wrap a connected stream and read the server's `PEER` greeting.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let peer = line
            .trim_end()
            .strip_prefix("PEER ")
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| bad_data(format!("greeting {line:?} is not `PEER <ip>`")))?;
        Ok(Self {
            writer,
            reader,
            peer,
        })
    }

    /// Connect from namespace `ns` and read the greeting.
    pub fn connect(ns: &str, to: SocketAddr) -> io::Result<Self> {
        Self::new(tcp_connect(ns, to, CONNECT_TIMEOUT)?)
    }

    /// Open `n` connections from `ns` (on one namespace thread); they stay open.
    pub fn connect_many(ns: &str, to: SocketAddr, n: usize) -> io::Result<Vec<Self>> {
        in_ns(ns, || {
            (0..n)
                .map(|i| {
                    TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
                        .and_then(Self::new)
                        .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))
                })
                .collect()
        })
    }

    /// Send one line; returns the peer address the server reports for it.
    pub fn echo(&mut self, msg: &str) -> io::Result<IpAddr> {
        self.writer.write_all(format!("{msg}\n").as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        let (ip, echoed) = line
            .trim_end()
            .split_once(' ')
            .ok_or_else(|| bad_data(format!("answer {line:?} is not `<ip> <msg>`")))?;
        if echoed != msg {
            return Err(bad_data(format!("sent {msg:?}, got back {echoed:?}")));
        }
        ip.parse()
            .map_err(|_| bad_data(format!("answer {line:?} has no peer address")))
    }
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Open `n` short connections from `ns` one after the other and return the source address
/// the server saw for each (each connection is closed once its greeting arrived).
pub fn probe_sources(ns: &str, to: SocketAddr, n: usize) -> io::Result<Vec<IpAddr>> {
    in_ns(ns, || {
        (0..n)
            .map(|i| {
                TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
                    .and_then(EchoClient::new)
                    .map(|c| c.peer)
                    .map_err(|e| io::Error::new(e.kind(), format!("connection {i} of {n}: {e}")))
            })
            .collect()
    })
}

// --- UDP recorder ------------------------------------------------------------------------

/// A UDP server that records `(source, payload)` of every datagram and echoes it back.
pub struct UdpRecorder {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<(SocketAddr, String)>>>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl UdpRecorder {
    pub fn start(ns: &str, addr: SocketAddr) -> Self {
        let socket = in_ns(ns, || UdpSocket::bind(addr))
            .unwrap_or_else(|e| panic!("bind udp {addr} in {ns}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("udp read timeout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (log, stop) = (log.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    match socket.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            let payload = String::from_utf8_lossy(&buf[..n]).into_owned();
                            let _ = socket.send_to(&buf[..n], from);
                            log.lock().unwrap().push((from, payload));
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => eprintln!("udp recorder {addr}: {e}"),
                    }
                }
            })
        };
        Self {
            addr,
            log,
            stop,
            worker: Some(worker),
        }
    }

    /// Every datagram received so far: (source, payload).
    pub fn received(&self) -> Vec<(SocketAddr, String)> {
        self.log.lock().unwrap().clone()
    }

    /// Poll until at least `n` datagrams arrived or `timeout` passed; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<(SocketAddr, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for UdpRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}

// --- statistics --------------------------------------------------------------------------

/// Count sources per WAN (1-based index; 0 = an address that is no WAN of the lab).
pub fn count_by_wan(sources: &[IpAddr], wans: usize) -> BTreeMap<usize, usize> {
    let mut counts: BTreeMap<usize, usize> = (0..=wans).map(|i| (i, 0)).collect();
    for ip in sources {
        *counts.entry(wan_index(*ip, wans).unwrap_or(0)).or_default() += 1;
    }
    counts
}

/// Assert that `n` independent picks split over the WANs as the weights say: each WAN's count
/// lies within 4 standard deviations of the binomial mean (a false alarm about 1 in 16 000
/// per WAN). Returns a printable summary.
pub fn assert_weighted_split(sources: &[IpAddr], weights: &[u32]) -> String {
    let wans = weights.len();
    let n = sources.len();
    let counts = count_by_wan(sources, wans);
    let total: u32 = weights.iter().sum();
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        let p = f64::from(w) / f64::from(total);
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let tol = 4.0 * sd;
        let got = counts[&(i + 1)];
        let line = format!(
            "wan{} ({} / {}): {got} of {n}, expected {mean:.1} ± {tol:.1} (weight {w}/{total}, sd {sd:.2})",
            i + 1,
            wan_addr(i + 1),
            wan_net6(i + 1)
        );
        if (got as f64 - mean).abs() > tol {
            failures.push(line.clone());
        }
        summary.push(line);
    }
    let summary = summary.join("\n");
    assert_eq!(
        counts[&0], 0,
        "{} connections came from an address that is no WAN:\n{summary}\nsources: {sources:?}",
        counts[&0]
    );
    assert!(
        failures.is_empty(),
        "split outside the binomial tolerance: {}\nall counts:\n{summary}",
        failures.join("; ")
    );
    summary
}
