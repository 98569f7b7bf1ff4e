//! A delayed ICMP echo responder: latency emulation without `tc netem` (sch_netem is not
//! available on every kernel the lab runs on).
//!
//! Design (the simplest that keeps the kernel out of the way):
//! - The responder's address (e.g. 203.0.113.20) becomes a real local address on `lo` of the
//!   namespace (the lab's internet host), so it is routed like every other internet host and
//!   needs no extra namespace, veth or route anywhere.
//! - The kernel would answer echo requests to a local address at once, so an nft rule in that
//!   namespace's output path drops echo replies *from that address* unless they carry
//!   [`REPLY_MARK`]. Echo replies of the namespace's other addresses are not touched.
//! - A raw ICMP socket bound to the address receives a copy of every ICMP packet delivered to
//!   it (raw sockets see packets before the kernel's own ICMP handling). For each echo request
//!   the responder waits the delay configured for the request's *source* (so one WAN's probes
//!   can be slowed and another's not) and answers from the same raw socket, which has
//!   `SO_MARK` = [`REPLY_MARK`], with the request's identifier, sequence and payload.
//!
//! Dropping the responder stops it and removes the address and the nft table again.

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::libc;

use super::lab::{in_ns, nft_in, run_ok};

/// Packet mark of the responder's replies; the nft rule lets only these through.
pub const REPLY_MARK: u32 = 0x2a;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;

/// Delay per source address and replies sent per source address.
#[derive(Default)]
struct Shared {
    delays: HashMap<Ipv4Addr, Duration>,
    answered: HashMap<Ipv4Addr, usize>,
}

/// Answers ICMP echo requests to one address after a per-source delay (see the module doc).
pub struct DelayResponder {
    ns: String,
    addr: Ipv4Addr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl DelayResponder {
    /// Make `addr` a local address of namespace `ns` answered only by this responder
    /// (no delay for any source until [`DelayResponder::set_delay`]).
    pub fn start(ns: &str, addr: Ipv4Addr) -> Self {
        // The filter first, so the kernel never answers for the address on its own.
        nft_in(ns, &nft_script(addr));
        run_ok(
            "ip",
            &["-n", ns, "addr", "add", &format!("{addr}/32"), "dev", "lo"],
        );
        let socket = in_ns(ns, || raw_socket(addr))
            .unwrap_or_else(|e| panic!("raw ICMP socket for {addr} in {ns}: {e}"));
        let socket = Arc::new(socket);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (socket, shared, stop) = (socket.clone(), shared.clone(), stop.clone());
            thread::spawn(move || serve(&socket, addr, &shared, &stop))
        };
        Self {
            ns: ns.to_string(),
            addr,
            shared,
            stop,
            worker: Some(worker),
        }
    }

    /// Answer requests from `source` after `delay` (zero: at once).
    pub fn set_delay(&self, source: Ipv4Addr, delay: Duration) {
        self.shared.lock().unwrap().delays.insert(source, delay);
    }

    /// Replies sent so far to `source`.
    pub fn answered(&self, source: Ipv4Addr) -> usize {
        let shared = self.shared.lock().unwrap();
        shared.answered.get(&source).copied().unwrap_or(0)
    }
}

impl Drop for DelayResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
        // Best effort: the lab's namespace may already be gone.
        let _ = Command::new("ip")
            .args(["-n", &self.ns, "addr", "del", &format!("{}/32", self.addr)])
            .args(["dev", "lo"])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns, "nft", "delete", "table", "ip"])
            .arg(nft_table(self.addr))
            .output();
    }
}

fn nft_table(addr: Ipv4Addr) -> String {
    format!("lab_delay_{}", addr.to_string().replace('.', "_"))
}

/// Drop the kernel's own echo replies from `addr`: only the responder's (marked) pass.
fn nft_script(addr: Ipv4Addr) -> String {
    format!(
        "table ip {} {{\n\tchain output {{\n\t\ttype filter hook output priority 0; policy accept;\n\t\t\
         ip saddr {addr} icmp type echo-reply meta mark != {REPLY_MARK:#x} drop\n\t}}\n}}\n",
        nft_table(addr)
    )
}

/// A raw ICMP socket bound to `addr` (its replies leave from `addr`), marked with
/// [`REPLY_MARK`], with a short receive timeout so the worker can notice `stop`.
fn raw_socket(addr: Ipv4Addr) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked before it is used.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mark: libc::c_uint = REPLY_MARK;
    set_option(&socket, libc::SO_MARK, &mark)?;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    set_option(&socket, libc::SO_RCVTIMEO, &timeout)?;
    let sa = sockaddr(addr);
    // SAFETY: `sa` is a valid sockaddr_in that outlives the call; the length matches it.
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            std::ptr::from_ref(&sa).cast(),
            socklen::<libc::sockaddr_in>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

fn set_option<T>(socket: &OwnedFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T and the length passed is exactly its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            std::ptr::from_ref(value).cast(),
            socklen::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The size of `T` as the kernel takes it (a sockaddr or socket option: a few bytes).
fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).expect("a sockaddr or option fits socklen_t")
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::sa_family_t::try_from(libc::AF_INET).expect("AF_INET is 2"),
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Receive loop: every echo request to `addr` gets its reply from a short-lived thread that
/// sleeps the source's delay first (probes come a few per second: no need for a scheduler).
fn serve(
    socket: &Arc<OwnedFd>,
    addr: Ipv4Addr,
    shared: &Arc<Mutex<Shared>>,
    stop: &Arc<AtomicBool>,
) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `buf` is valid for writes of its whole length for the duration of the call.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else {
            let e = io::Error::last_os_error();
            if !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) {
                eprintln!("delay responder {addr}: recv: {e}");
                thread::sleep(Duration::from_millis(10));
            }
            continue;
        };
        let packet = &buf[..n];
        let Some((source, reply)) = echo_reply_for(packet, addr) else {
            continue;
        };
        let delay = {
            let s = shared.lock().unwrap();
            s.delays.get(&source).copied().unwrap_or_default()
        };
        let (socket, shared, stop) = (socket.clone(), shared.clone(), stop.clone());
        thread::spawn(move || {
            thread::sleep(delay);
            match send_to(&socket, &reply, source) {
                Ok(()) => *shared.lock().unwrap().answered.entry(source).or_default() += 1,
                // After a stop the lab is being torn down: its routes may be gone already.
                Err(_) if stop.load(Ordering::Relaxed) => {}
                Err(e) => eprintln!("delay responder {addr}: reply to {source}: {e}"),
            }
        });
    }
}

/// For an IPv4 packet carrying an ICMP echo request to `addr`: its source and the ICMP echo
/// reply to send back (same identifier, sequence and payload).
fn echo_reply_for(packet: &[u8], addr: Ipv4Addr) -> Option<(Ipv4Addr, Vec<u8>)> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    if packet.len() < ihl + 8 || ihl < 20 {
        return None;
    }
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let icmp = &packet[ihl..];
    if dst != addr || icmp[0] != ICMP_ECHO_REQUEST {
        return None;
    }
    let mut reply = icmp.to_vec();
    reply[0] = ICMP_ECHO_REPLY;
    reply[1] = 0;
    reply[2] = 0;
    reply[3] = 0;
    let sum = checksum(&reply);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Some((src, reply))
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).expect("folded to 16 bits")
}

fn send_to(socket: &OwnedFd, icmp: &[u8], to: Ipv4Addr) -> io::Result<()> {
    let sa = sockaddr(to);
    // SAFETY: `icmp` and `sa` are valid for reads for the duration of the call; the lengths
    // passed are theirs.
    let n = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            icmp.as_ptr().cast(),
            icmp.len(),
            0,
            std::ptr::from_ref(&sa).cast(),
            socklen::<libc::sockaddr_in>(),
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
