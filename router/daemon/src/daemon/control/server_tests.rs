//! The session's framing, driven through an in-memory pipe with a stand-in daemon that
//! echoes each request back: one answer per line, long lines refused without being read
//! to the end, whatever the bytes.

use super::*;
use crate::daemon::control::{Done, Request};
use crate::daemon::counters::{ByteCounters, Counters};
use crate::daemon::supervisor::StatusPublisher;
use proptest::prelude::*;
use serde_json::json;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// What the stand-in daemon answers to `req` (the status comes from the empty snapshot).
fn echo(req: &Request) -> serde_json::Value {
    match req {
        Request::Status => to_wire(&Ok(Reply::Status(Box::default()))),
        req => to_wire(&Ok(Reply::Done(Done {
            message: serde_json::to_string(req).unwrap(),
            apply_ms: None,
        }))),
    }
}

fn stand_in(requests: mpsc::Sender<Envelope>) -> Daemon {
    let status = StatusPublisher::default().board(
        watch::channel(Arc::new(Counters::default())).1,
        ByteCounters::default(),
    );
    Daemon { requests, status }
}

/// Feed `input` (in `chunk`-byte writes, then EOF) to a session; its answers, one per line.
/// The peer of most sessions here: root.
const ROOT: bool = true;

fn run_session(input: Vec<u8>, chunk: usize) -> Vec<serde_json::Value> {
    run_session_as(input, chunk, ROOT)
}

#[test]
fn only_root_may_report_an_ha_role() {
    let line =
        b"{\"cmd\":\"ha_notify\",\"name\":\"routeros\",\"role\":\"master\",\"priority\":150}\n";
    let answers = run_session_as(line.to_vec(), 1 << 10, false);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["ok"], false, "{}", answers[0]);
    assert!(
        answers[0].to_string().contains("only root"),
        "{}",
        answers[0]
    );
}

fn run_session_as(input: Vec<u8>, chunk: usize, root: bool) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (client, server) = tokio::io::duplex(64 << 10);
        let (to_daemon, mut requests) = mpsc::channel::<Envelope>(4);
        let daemon = tokio::spawn(async move {
            while let Some((req, reply)) = requests.recv().await {
                let echoed = match echo(&req)["message"].as_str() {
                    Some(m) => Done {
                        message: m.to_string(),
                        apply_ms: None,
                    },
                    None => unreachable!("status is answered by the session"),
                };
                let _ = reply.send(Answer::Line(Ok(Reply::Done(echoed))));
            }
        });
        let (server_read, server_write) = tokio::io::split(server);
        let serving = tokio::spawn(session(
            server_read,
            server_write,
            stand_in(to_daemon),
            root,
        ));
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let writer = async move {
            for part in input.chunks(chunk.max(1)) {
                // The session may close early (a long line); later writes then fail.
                if client_write.write_all(part).await.is_err() {
                    break;
                }
            }
            let _ = client_write.shutdown().await;
        };
        let mut output = Vec::new();
        let reader = client_read.read_to_end(&mut output);
        let (_, read) = tokio::join!(writer, reader);
        read.unwrap();
        serving.await.unwrap();
        daemon.await.unwrap();
        output
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("every answer is one JSON line"))
            .collect()
    })
}

/// The answers a session owes for `input`: one per newline-terminated line, plus one for
/// a non-empty last line without a newline.
fn expected(input: &[u8]) -> Vec<serde_json::Value> {
    let mut lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|line| match parse_request(line) {
            Ok(req) => echo(&req),
            Err(refused) => refusal(refused),
        })
        .collect()
}

proptest! {
    /// Arbitrary bytes, cut into arbitrary writes: never a panic, exactly one answer per
    /// line, each the daemon's (a request) or an error (anything else).
    #[test]
    fn any_byte_stream_gets_one_answer_per_line(
        input in prop::collection::vec(
            prop_oneof![
                // Raw bytes, newlines included.
                prop::collection::vec(any::<u8>(), 0..64),
                // Lines that look like requests, so that some of them are.
                "\\{\"cmd\":\"(status|reload|disable|enable|events|get_config)\"(,\"wan\":\"[a-z0-9]{0,5}\")?\\}\n"
                    .prop_map(String::into_bytes),
            ],
            0..12,
        ).prop_map(|parts| parts.concat()),
        chunk in 1usize..300,
    ) {
        let answers = run_session(input.clone(), chunk);
        prop_assert_eq!(answers, expected(&input));
    }
}

#[test]
fn a_line_of_exactly_max_line_is_read_and_the_session_goes_on() {
    let mut line = vec![b' '; MAX_LINE - 1];
    line.push(b'\n');
    line.extend_from_slice(b"{\"cmd\":\"status\"}\n");
    let answers = run_session(line, 64 << 10);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request"),
        "{}",
        answers[0]
    );
    assert_eq!(answers[1], echo(&Request::Status));
}

#[test]
fn a_longer_line_is_refused_and_the_connection_closed_before_it_ends() {
    // 64 MiB with no newline: the session must stop after MAX_LINE + 1 bytes, answer, and
    // close (the writer then fails); it must not wait for the rest or buffer it.
    let input = vec![b'a'; 64 << 20];
    let answers = run_session(input, 1 << 20);
    assert_eq!(answers.len(), 1, "{answers:?}");
    let message = answers[0]["error"].as_str().unwrap();
    assert!(message.contains("longer than 4194304 bytes"), "{message}");
}

#[test]
fn the_largest_config_the_web_accepts_fits_in_one_line() {
    // 1 MiB (the web's body limit) of the worst case for JSON escaping: every character
    // doubles (`"`, backslash, newline).
    let toml = "\"\\\n".repeat((1 << 20) / 3);
    let line = serde_json::to_string(&Request::ApplyConfig {
        toml,
        confirm_seconds: 3600,
        by: "a".repeat(256),
    })
    .unwrap();
    assert!(line.len() < MAX_LINE, "{} bytes plus a newline", line.len());
    assert!(line.len() > 2_000_000, "every byte doubled");
}

#[test]
fn a_burst_is_logged_at_its_start_then_rarely_and_summed_up_once_quiet() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut burst = Burst::default();
    assert_eq!(burst.settle(at(0)), None, "no burst yet");
    assert_eq!(burst.hit(at(0)), Some(1));
    // 10,000 failures in 10 s with a success now and then: no more lines, not ended.
    for ms in 1..=10_000 {
        assert_eq!(burst.hit(at(ms)), None, "not once per failure");
        if ms % 100 == 0 {
            assert_eq!(burst.settle(at(ms)), None, "a success amid failures");
        }
    }
    // 50 s without failures: the next one starts a new burst, logged again.
    assert_eq!(burst.hit(at(60_000)), Some(1));
    // One failure a second for a minute: one reminder, with the count.
    let lines: Vec<u64> = (61..=120).filter_map(|s| burst.hit(at(s * 1000))).collect();
    assert_eq!(lines, [61]);
    assert_eq!(burst.settle(at(124_999)), None, "quiet for less than 5 s");
    assert_eq!(
        burst.settle(at(125_000)),
        Some((61, Duration::from_secs(60)))
    );
    assert_eq!(burst.settle(at(200_000)), None, "summed up once");
}

/// A subscriber gets its backlog, then each event as it is sent, past the idle limit; one
/// that falls too far behind is dropped, and the daemon's sends never wait for it.
#[test]
fn a_subscriber_gets_live_events_and_is_dropped_when_it_lags() {
    use routeros_shared::events::{Event, EventKind};
    use tokio::io::AsyncBufReadExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::pause();
        let (live, _) = tokio::sync::broadcast::channel::<Event>(4);
        let (to_daemon, mut requests) = mpsc::channel::<Envelope>(4);
        let sender = live.clone();
        tokio::spawn(async move {
            while let Some((_, reply)) = requests.recv().await {
                let backlog = vec![Event::new(EventKind::Operator, None, "old")];
                let _ = reply.send(Answer::Subscribed {
                    backlog,
                    events: sender.subscribe(),
                });
            }
        });
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server);
        let serving = tokio::spawn(session(
            server_read,
            server_write,
            stand_in(to_daemon),
            ROOT,
        ));
        let (client_read, mut client_write) = tokio::io::split(client);
        let mut lines = tokio::io::BufReader::new(client_read).lines();
        client_write
            .write_all(b"{\"cmd\":\"subscribe\"}\n")
            .await
            .unwrap();
        let first: serde_json::Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(first["ok"], true);
        assert_eq!(first["backlog"][0]["message"], "old");
        // Well past the idle limit, the subscription still stands.
        tokio::time::sleep(IDLE_TIMEOUT * 3).await;
        live.send(Event::new(EventKind::Failover, Some("wan1"), "new"))
            .unwrap();
        let event: serde_json::Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(
            (&event["kind"], &event["message"]),
            (&json!("failover"), &json!("new"))
        );
        // Five events at once overflow the channel (4) before the session reads any: dropped.
        for i in 0..5 {
            live.send(Event::new(EventKind::Operator, None, format!("burst {i}")))
                .unwrap();
        }
        serving.await.unwrap();
        assert_eq!(lines.next_line().await.unwrap(), None, "connection closed");
    });
}
