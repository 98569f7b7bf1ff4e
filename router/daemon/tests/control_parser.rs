//! Property tests of the control socket's request parser (`parse_request`), the first thing
//! the root daemon does with bytes from a client: whatever arrives, it never panics and
//! gives either a request or an `{"ok": false, "error": ...}` answer; every request the
//! clients can send comes back unchanged. Cases: 256 by default, `PROPTEST_CASES=N` for a
//! longer run (ci/test-reliability.sh).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use routeros_shared::control::{parse_request, to_wire, Refusal, RefusalCode, Request};
use routeros_shared::events::EventKind;
use serde_json::{json, Value};

/// Every `cmd` the daemon knows, and a few it does not.
const CMDS: &[&str] = &[
    "status",
    "reload",
    "disable",
    "enable",
    "maintenance",
    "events",
    "history",
    "get_config",
    "apply_config",
    "confirm_config",
    "config_history",
    "rollback_config",
    "subscribe",
    "Status",
    "",
    "shutdown",
];

fn error_answer(refusal: &Refusal) -> Result<(), TestCaseError> {
    prop_assert_eq!(refusal.code, RefusalCode::BadRequest, "{:?}", refusal);
    prop_assert!(
        refusal.message.starts_with("bad request: "),
        "{:?}",
        refusal
    );
    prop_assert!(refusal.fields.is_empty(), "{:?}", refusal);
    let answer = to_wire::<()>(&Err(refusal.clone()));
    prop_assert_eq!(&answer["ok"], &json!(false), "{}", answer);
    prop_assert_eq!(answer.as_object().map(|o| o.len()), Some(3), "{}", answer);
    Ok(())
}

/// Either a request that survives a second trip through the parser, or an error answer.
fn check(line: &[u8]) -> Result<(), TestCaseError> {
    match parse_request(line) {
        Ok(req) => {
            let again = serde_json::to_vec(&req).unwrap();
            prop_assert_eq!(parse_request(&again).ok(), Some(req));
        }
        Err(answer) => error_answer(&answer)?,
    }
    Ok(())
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        Just(EventKind::StateChange),
        Just(EventKind::HighLatency),
        Just(EventKind::Failover),
        Just(EventKind::ConfigChange),
        Just(EventKind::Operator),
        Just(EventKind::Session),
        Just(EventKind::Ha),
    ]
}

/// Every variant with arbitrary fields (any Unicode in strings, full integer ranges).
fn request() -> impl Strategy<Value = Request> {
    let text = any::<String>;
    prop_oneof![
        Just(Request::Status),
        Just(Request::Reload),
        text().prop_map(|wan| Request::Disable { wan }),
        text().prop_map(|wan| Request::Enable { wan }),
        (any::<u32>(), proptest::option::of(text()))
            .prop_map(|(seconds, wan)| Request::Maintenance { seconds, wan }),
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(text()),
            proptest::option::of(event_kind())
        )
            .prop_map(|(since_ms, wan, kind)| Request::Events {
                since_ms,
                wan,
                kind
            }),
        (text(), any::<u32>()).prop_map(|(wan, seconds)| Request::History { wan, seconds }),
        Just(Request::GetConfig),
        (text(), any::<u32>(), text()).prop_map(|(toml, confirm_seconds, by)| {
            Request::ApplyConfig {
                toml,
                confirm_seconds,
                by,
            }
        }),
        text().prop_map(|id| Request::ConfirmConfig { id }),
        Just(Request::ConfigHistory),
        (any::<u64>(), text()).prop_map(|(version, by)| Request::RollbackConfig { version, by }),
        proptest::option::of(any::<u64>()).prop_map(|since_ms| Request::Subscribe { since_ms }),
        text().prop_map(|name| Request::SetTimezone { name }),
        (text(), any::<u8>()).prop_map(|(name, priority)| Request::HaNotify {
            name,
            role: routeros_shared::control::HaRole::Backup,
            priority
        }),
    ]
}

/// Index of a variant. No wildcard arm: a new variant does not compile until it is added
/// here, and `the_generator_covers_every_variant` then fails until [`request`] makes it.
fn variant(req: &Request) -> usize {
    match req {
        Request::Status => 0,
        Request::Reload => 1,
        Request::Disable { .. } => 2,
        Request::Enable { .. } => 3,
        Request::Maintenance { .. } => 4,
        Request::Events { .. } => 5,
        Request::History { .. } => 6,
        Request::GetConfig => 7,
        Request::ApplyConfig { .. } => 8,
        Request::ConfirmConfig { .. } => 9,
        Request::ConfigHistory => 10,
        Request::RollbackConfig { .. } => 11,
        Request::Subscribe { .. } => 12,
        Request::SetTimezone { .. } => 13,
        Request::HaNotify { .. } => 14,
    }
}
const VARIANTS: usize = 15;

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects shaped like requests: a known (or unknown) `cmd` and fields with the real
/// names holding any JSON.
fn request_like() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("wan"),
        Just("seconds"),
        Just("since_ms"),
        Just("kind"),
        Just("toml"),
        Just("confirm_seconds"),
        Just("by"),
        Just("id"),
        Just("version"),
        Just("cmd"),
    ];
    (
        prop::sample::select(CMDS),
        prop::collection::vec((field, json_value()), 0..5),
    )
        .prop_map(|(cmd, fields)| {
            let mut obj = serde_json::Map::new();
            obj.insert("cmd".into(), json!(cmd));
            for (k, v) in fields {
                obj.insert(k.into(), v);
            }
            Value::Object(obj)
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&line)?;
    }

    #[test]
    fn arbitrary_text_lines_never_panic(line in ".*") {
        check(line.as_bytes())?;
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        check(value.to_string().as_bytes())?;
    }

    #[test]
    fn request_shaped_objects_parse_or_are_refused(value in request_like()) {
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        check(&line)?;
    }

    /// A request as a client sends it (one JSON line) comes back equal.
    #[test]
    fn every_request_round_trips(req in request()) {
        let mut line = serde_json::to_vec(&req).unwrap();
        line.push(b'\n');
        prop_assert_eq!(parse_request(&line).ok(), Some(req));
    }

    /// A valid request with its bytes damaged (cut, flipped, inserted) still never panics.
    #[test]
    fn mangled_requests_never_panic(
        req in request(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut line = serde_json::to_vec(&req).unwrap();
        for (at, byte) in flips {
            let i = at.index(line.len());
            line[i] = byte;
        }
        line.truncate(cut.index(line.len() + 1));
        check(&line)?;
    }
}

#[test]
fn the_generator_covers_every_variant() {
    let mut runner = TestRunner::deterministic();
    let strategy = request();
    let mut seen = [false; VARIANTS];
    for _ in 0..2000 {
        let req = strategy.new_tree(&mut runner).unwrap().current();
        seen[variant(&req)] = true;
    }
    assert!(
        seen.iter().all(|&s| s),
        "variants never generated: {seen:?}"
    );
}

#[test]
fn unknown_commands_and_invalid_utf8_are_refused() {
    let refused = parse_request(br#"{"cmd":"shutdown"}"#).unwrap_err();
    assert!(
        refused.message.contains("unknown variant `shutdown`"),
        "{refused}"
    );
    let refused = parse_request(b"\xff\xfe").unwrap_err();
    assert_eq!(refused.code, RefusalCode::BadRequest);
}
