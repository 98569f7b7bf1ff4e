//! Commit-confirm through the control socket on a real lab: a change is live at once, kept
//! when confirmed, rolled back by itself when not, and refused whole when invalid; a bad
//! file on reload is refused the same way and the kernel state stays as it was.

mod common;

use common::lab::*;
use routeros_shared::control::Request;
use std::process::Command;
use std::time::{Duration, Instant};

fn apply(lab: &Lab, toml: String, confirm_seconds: u32) -> serde_json::Value {
    lab.control(&Request::ApplyConfig {
        toml,
        confirm_seconds,
        by: "test".into(),
    })
    .expect("daemon answers")
}

fn nft_mod(lab: &Lab) -> String {
    let table = lab.nft_table();
    let at = table
        .find("numgen random mod ")
        .expect("weighted pick in the table");
    table[at..]
        .split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "needs root"]
fn commit_confirm_keeps_confirmed_and_rolls_back_unconfirmed_changes() {
    let lab = Lab::up("c1", LabOpts::default());
    let original = std::fs::read_to_string(lab.config_path()).unwrap();
    assert_eq!(nft_mod(&lab), "3", "lab starts with weights 2:1");

    // Invalid: refused whole, file untouched, nothing pending.
    let bad = original.replacen("weight = 2", "weight = 0", 1);
    let answer = apply(&lab, bad, 60);
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(
        answer["errors"][0]["path"], "wan_interfaces[0].weight",
        "{answer}"
    );
    assert_eq!(
        std::fs::read_to_string(lab.config_path()).unwrap(),
        original
    );
    assert!(lab.control(&Request::GetConfig).unwrap()["pending"].is_null());

    // Confirmed: weights 3:1 stay.
    let v31 = original.replacen("weight = 2", "weight = 3", 1);
    let answer = apply(&lab, v31.clone(), 60);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(nft_mod(&lab), "4", "change is live at once");
    let id = answer["pending"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        apply(&lab, original.clone(), 60)["ok"],
        false,
        "one pending change at a time"
    );
    assert_eq!(
        lab.control(&Request::ConfirmConfig { id }).unwrap()["ok"],
        true
    );
    assert_eq!(std::fs::read_to_string(lab.config_path()).unwrap(), v31);

    // Unconfirmed: back to 3:1 after the window, by itself.
    let v51 = original.replacen("weight = 2", "weight = 5", 1);
    let answer = apply(&lab, v51, 10);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(nft_mod(&lab), "6");
    let start = Instant::now();
    while nft_mod(&lab) != "4" {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no rollback after 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let waited = start.elapsed().as_secs_f64();
    assert!(waited > 8.0, "rolled back too early ({waited:.1} s)");
    assert_eq!(
        std::fs::read_to_string(lab.config_path()).unwrap(),
        v31,
        "file restored too"
    );

    // Every version is kept; rolling back to the first one works (and is commit-confirm too).
    let history = lab.control(&Request::ConfigHistory).unwrap();
    let versions = history["versions"].as_array().unwrap();
    assert!(versions.len() >= 4, "{history}");
    let answer = lab
        .control(&Request::RollbackConfig {
            version: 1,
            by: "test".into(),
        })
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(nft_mod(&lab), "3");
    let events = lab
        .control(&Request::Events {
            since_ms: None,
            wan: None,
            kind: None,
        })
        .unwrap();
    assert!(
        events.to_string().contains("not confirmed: rolled back"),
        "rollback is logged as an event: {events}"
    );
}

/// A web admin (control socket) cannot point the root daemon's log at another file or change
/// its rotation; the daemon logs only inside its `--log-dir` and follows no symlink there.
#[test]
#[ignore = "needs root"]
fn log_file_is_root_only_and_never_followed_through_a_symlink() {
    let lab = Lab::up("c2", LabOpts::default());
    let original = std::fs::read_to_string(lab.config_path()).unwrap();
    let log = lab.dir.join("routeros.log");
    assert!(
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0),
        "the daemon logs to {} (inside --log-dir)",
        log.display()
    );

    // What the attack used: a file root would create and append to, and a rotation size.
    let pwned = lab.dir.with_file_name(format!("{}-pwned.log", lab.prefix));
    let _ = std::fs::remove_file(&pwned);
    let file_line = format!("file = \"{}\"", log.display());
    assert!(original.contains(&file_line), "{original}");
    for (change, path) in [
        (
            original.replace(&file_line, &format!("file = \"{}\"", pwned.display())),
            "logging.file",
        ),
        (
            original.replace(&file_line, &format!("{file_line}\nmax_size = \"64KB\"")),
            "logging.max_size",
        ),
    ] {
        let answer = apply(&lab, change, 60);
        assert_eq!(answer["ok"], false, "{answer}");
        assert_eq!(answer["errors"][0]["path"], path, "{answer}");
        assert!(
            answer["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("only root may change it"),
            "{answer}"
        );
        assert_eq!(
            std::fs::read_to_string(lab.config_path()).unwrap(),
            original,
            "config file untouched"
        );
        assert!(lab.control(&Request::GetConfig).unwrap()["pending"].is_null());
    }
    // The same file spelt as the web UI writes it (and another level) is fine.
    let answer = apply(
        &lab,
        original.replace("level = \"DEBUG\"", "level = \"INFO\""),
        60,
    );
    assert_eq!(answer["ok"], true, "{answer}");
    let id = answer["pending"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        lab.control(&Request::ConfirmConfig { id }).unwrap()["ok"],
        true
    );

    // A restart with a symlink at the log path: not followed, the daemon logs to stderr.
    lab.daemon_stop();
    assert!(!pwned.exists(), "no file was created outside the log dir");
    let victim = lab.dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let from = lab.daemon_log_len();
    lab.daemon_start();
    let line = lab.wait_log_line(from, "logging only to stderr", Duration::from_secs(5));
    assert!(line.contains("symlink"), "{line}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&log).unwrap().is_symlink());
}

#[test]
#[ignore = "needs root"]
fn bad_config_is_refused_and_rules_stay() {
    let lab = Lab::up("t5", LabOpts::default());
    let config = lab.config_path();
    let good = std::fs::read_to_string(&config).expect("lab config");
    let before = lab.kernel_state();

    // weight = 0 on the first WAN and an unknown key on the second.
    let bad = replace_once(&good, "weight = 2\n", "weight = 0\n");
    let bad = replace_once(&bad, "weight = 1\n", "weight = 1\ncolour = \"blue\"\n");
    std::fs::write(&config, &bad).expect("write bad config");

    let answer = lab.control(&Request::Reload).expect("reload answer");
    println!("reload of the bad config: {answer}");
    assert_eq!(answer["ok"], false, "bad config must be refused: {answer}");
    let paths: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("answer has an `errors` array: {answer}"))
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    for want in ["wan_interfaces[0].weight", "wan_interfaces[1].colour"] {
        assert!(
            paths.contains(&want),
            "errors must name {want}; got {paths:?} in {answer}"
        );
    }

    let check = Command::new(env!("CARGO_BIN_EXE_routeros-watchdog"))
        .arg("--check")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run routeros-watchdog --check");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        !check.status.success(),
        "--check must fail: {}\n{printed}",
        check.status
    );
    for want in ["wan_interfaces[0].weight", "wan_interfaces[1].colour"] {
        assert!(
            printed.contains(want),
            "--check must print {want}:\n{printed}"
        );
    }

    // SIGHUP takes the same path; wait for its verdict in the log so the daemon has had
    // its chance to touch the kernel before we compare.
    let log_pos = lab.daemon_log_len();
    let pid: i32 = std::fs::read_to_string(lab.dir.join("daemon.pid"))
        .expect("daemon pid file")
        .trim()
        .parse()
        .expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP the daemon");
    let line = lab.wait_log_line(log_pos, "SIGHUP", Duration::from_secs(5));
    assert!(
        line.contains("\"ok\":false"),
        "SIGHUP reload must be refused too: {line}"
    );

    let status = lab
        .control(&Request::Status)
        .expect("daemon still answers status");
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(
        status["wans"][0]["weight"], 2,
        "old config still in force: {status}"
    );
    let after = lab.kernel_state();
    assert_state_eq(&before, &after, "after the refused reload");

    // A valid config with weights 3:1 is taken.
    let changed = replace_once(&good, "weight = 2\n", "weight = 3\n");
    std::fs::write(&config, &changed).expect("write new config");
    let answer = lab.control(&Request::Reload).expect("reload answer");
    assert_eq!(answer["ok"], true, "valid config must be applied: {answer}");
    let nft = lab.nft_table();
    assert!(
        nft.contains("numgen random mod 4 map { 0-2 : 0x00000100, 3 : 0x00000200 }"),
        "weights 3:1 in the nft table:\n{nft}"
    );
    let routes = lab.routes();
    assert!(
        routes.contains("nexthop via 192.0.2.1 dev wan1 weight 3")
            && routes.contains("nexthop via 198.51.100.1 dev wan2 weight 1"),
        "main multipath default with weights 3:1:\n{routes}"
    );
    assert_eq!(lab.rules(), before.rules, "rules do not depend on weights");
}
