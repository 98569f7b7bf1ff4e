//! Lines the daemon brings up itself, through a real systemd-networkd in the router
//! namespace (ci/lib/lab-networkd.sh): a DHCP line served by dnsmasq in the ISP and a
//! static line. Both carry balanced traffic; the DHCP line moving to a new address and the
//! static line's address changed through the control API are followed by routes, rules,
//! masquerade and probes without restarting anything. Root only.
//!
//!     sudo cargo test -p routeros-daemon --test lab_access -- --include-ignored

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::failover::all_up_and_active;
use common::lab::*;
use routeros_shared::control::Request;
use serde_json::Value;

const ECHO_PORT: u16 = 7300;
/// From a line's (re)configuration to the daemon using it: DHCP, then `recovery_count`
/// probe rounds of 1 s.
const LINE_UP: Duration = Duration::from_secs(20);

/// The address (without prefix) the status reports for `name`.
fn address(status: &Value, name: &str) -> Option<String> {
    let a = wan(status, name)["address"].as_str()?;
    Some(a.split('/').next()?.to_string())
}

/// Long enough for the probe rounds a line failed while it had no address yet to take it
/// down (retry_count 3 rounds of 1 s): a WAN starts out up and only then learns it is not.
const SETTLED: Duration = Duration::from_secs(4);

/// Wait until `name` has `addr` and every WAN has been up and active for [`SETTLED`]; how
/// long until that began.
fn wait_line(lab: &Lab, name: &str, addr: Ipv4Addr, why: &str) -> Duration {
    let names = ["wan1", "wan2"];
    let mut good_since: Option<std::time::Instant> = None;
    lab.wait_status(why, LINE_UP + SETTLED, |s| {
        let good = address(s, name).as_deref() == Some(addr.to_string().as_str())
            && all_up_and_active(s, &names);
        good_since = if good {
            good_since.or(Some(std::time::Instant::now()))
        } else {
            None
        };
        good_since.filter(|t| t.elapsed() >= SETTLED).map(|_| ())
    })
    .1
    .saturating_sub(SETTLED)
}

/// Which of the expected source addresses the internet host saw, and how often.
fn sources_seen(lab: &Lab, server: SocketAddr, n: usize) -> Vec<(IpAddr, usize)> {
    let sources = probe_sources(&lab.lan(), server, n).expect("new connections");
    let mut seen: Vec<(IpAddr, usize)> = Vec::new();
    for s in sources {
        match seen.iter_mut().find(|(ip, _)| *ip == s) {
            Some((_, c)) => *c += 1,
            None => seen.push((s, 1)),
        }
    }
    seen.sort();
    seen
}

#[test]
#[ignore = "needs root"]
fn dhcp_and_static_lines_are_brought_up_and_followed() {
    let lab = Lab::up(
        "ac",
        LabOpts {
            weights: vec![1, 1],
            wan_modes: vec!["dhcp", "static"],
            ..LabOpts::default()
        },
    );
    let took = wait_line(
        &lab,
        "wan1",
        wan_addr(1),
        "DHCP line wan1 up with 192.0.2.2",
    );
    println!(
        "DHCP line up and in service {:.1} s after the daemon was ready",
        took.as_secs_f64()
    );
    let status = lab.status();
    let (w1, w2) = (wan(&status, "wan1"), wan(&status, "wan2"));
    assert_eq!(w1["line"]["mode"], "dhcp");
    assert_eq!(w1["gateway"], "192.0.2.1", "gateway learned from the lease");
    assert_eq!(w2["line"]["mode"], "static");
    assert_eq!(w2["address"], "198.51.100.2/29");
    let networkctl =
        String::from_utf8_lossy(&lab.script_args(&["networkctl", "status", "wan1"]).stdout)
            .into_owned();
    assert!(
        networkctl.contains("/run/systemd/network/05-routeros-wan1.network"),
        "networkd uses the daemon's file for wan1:\n{networkctl}"
    );

    let server = TcpEchoServer::start(&lab.inet(), SocketAddr::from((INET_HOST, ECHO_PORT)));
    let sources = probe_sources(&lab.lan(), server.addr, 60).expect("60 connections");
    println!("both lines: {}", assert_weighted_split(&sources, &[1, 1]));

    // The ISP hands out another address; networkd asks again (a lease renewal that moves
    // the address: networkd misses a broadcast NAK while renewing, so reconfigure).
    let new1 = Ipv4Addr::new(192, 0, 2, 3);
    lab.script_args_ok(&["isp-dhcp", "1", "192.0.2.3"]);
    lab.script_args_ok(&["networkctl", "reconfigure", "wan1"]);
    let took = wait_line(&lab, "wan1", new1, "wan1 moved to 192.0.2.3");
    println!(
        "DHCP address change followed in {:.1} s",
        took.as_secs_f64()
    );
    assert!(
        lab.rules().contains("from 192.0.2.3 lookup 100"),
        "{}",
        lab.rules()
    );
    let seen = sources_seen(&lab, server.addr, 40);
    let want = [IpAddr::V4(new1), IpAddr::V4(wan_addr(2))];
    assert!(
        seen.iter().all(|(ip, _)| want.contains(ip)) && seen.len() == 2,
        "after the move the internet sees the new address and wan2's: {seen:?}"
    );

    // The static line's address changed through the control API (commit-confirm).
    let new2 = Ipv4Addr::new(198, 51, 100, 3);
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    let text = replace_once(
        &text,
        "address = \"198.51.100.2/29\"",
        "address = \"198.51.100.3/29\"",
    );
    let reply = lab
        .control(&Request::ApplyConfig {
            toml: text,
            confirm_seconds: 120,
            by: "test".into(),
        })
        .expect("apply");
    assert_eq!(reply["ok"], true, "{reply}");
    let id = reply["pending"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        lab.control(&Request::ConfirmConfig { id }).unwrap()["ok"],
        true
    );
    let took = wait_line(&lab, "wan2", new2, "wan2 moved to 198.51.100.3");
    println!(
        "static address change applied in {:.1} s",
        took.as_secs_f64()
    );
    let seen = sources_seen(&lab, server.addr, 40);
    assert!(
        seen.iter().any(|(ip, _)| *ip == IpAddr::V4(new2))
            && !seen.iter().any(|(ip, _)| *ip == IpAddr::V4(wan_addr(2))),
        "the static line's new address is used: {seen:?}"
    );
}
