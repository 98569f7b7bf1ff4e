//! Property tests of the config parser and validator: whatever the text, no panic; a
//! well-formed TOML document is either accepted or refused with errors that each name a TOML
//! path; an accepted config plans without panicking and survives the TOML round trip the web
//! UI makes. Cases: PROPTEST_CASES (default 256); e.g. `PROPTEST_CASES=20000 cargo test --lib
//! config::prop_tests` for a longer run.

use super::*;
use crate::plan::{self, Overrides};
use proptest::prelude::*;
use toml::{Table, Value};

/// A config that uses every section, so mutations reach every check.
const RICH: &str = r#"
[[wan_interfaces]]
name = "wan1"
weight = 2
gateway = "192.0.2.1"
dns = ["192.0.2.53"]
priority = 1

[[wan_interfaces]]
name = "wan2"
gateway = "198.51.100.1"
table = 300
mark = 0x300

[lan]
interface = "lan0"
address = "192.168.1.1/24"

[lan.dhcp]
start = "192.168.1.100"
end = "192.168.1.200"
lease_seconds = 3600
static_leases = [{ mac = "aa:bb:cc:dd:ee:ff", address = "192.168.1.10", name = "nas" }]

[health_check]
targets = ["203.0.113.10", "203.0.113.11"]
reliability = 1
timeout_seconds = 1.5
check_interval = 2

[routing]
load_balancing = "failover"

[[policies]]
name = "bank"
dst = "203.0.113.0/24"
protocol = "tcp"
dst_port = "443"
via = ["wan2"]
sticky_timeout = 600

[[port_forwards]]
name = "web"
protocol = "tcp"
wan_port = "8080"
to = "192.168.1.10"
to_port = 80
wans = ["wan1"]

[logging]
level = "DEBUG"
max_size = "1MB"

[alerts]
webhook_url = "https://hooks.example.net/x"
retries = 2

[alerts.smtp]
server = "mail.example.net"
from = "router@example.net"
to = ["ops@example.net"]
"#;

fn bases() -> [&'static str; 2] {
    [RICH, include_str!("../../../../config/routeros.toml")]
}

/// `a.b[0].c`: keys (bare, or quoted as TOML quotes them), each with array indexes.
fn is_toml_path(p: &str) -> bool {
    let mut rest = p;
    loop {
        let Some(after_key) = toml_key(rest) else {
            return false;
        };
        rest = after_key;
        while let Some(after_open) = rest.strip_prefix('[') {
            let Some((n, after)) = after_open.split_once(']') else {
                return false;
            };
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            rest = after;
        }
        match rest.strip_prefix('.') {
            Some(next) => rest = next,
            None => return rest.is_empty(),
        }
    }
}

/// The text after one key at the start of `s`, if it starts with a single TOML key.
fn toml_key(s: &str) -> Option<&str> {
    let end = match s.chars().next()? {
        '"' => {
            let mut escaped = false;
            1 + s[1..].char_indices().find_map(|(i, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end.then_some(i + 1)
            })?
        }
        '\'' => 1 + s[1..].find('\'')? + 1,
        _ => s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(s.len()),
    };
    let keys = toml_edit::Key::parse(&s[..end]).ok()?;
    (keys.len() == 1).then(|| &s[end..])
}

/// Values that hit the edges: huge and negative numbers, tiny and non-finite floats,
/// sizes, names, addresses and plain junk.
fn edge_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        (-3i64..70_000).prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        prop::sample::select(vec![
            1e-300,
            0.0,
            -0.0,
            0.1,
            60.0,
            3600.5,
            f64::NAN,
            f64::INFINITY
        ])
        .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        (
            any::<u64>(),
            prop::sample::select(vec!["GB", "MB", "KB", "B", ""])
        )
            .prop_map(|(n, unit)| Value::String(format!("{n}{unit}"))),
        ".{0,20}".prop_map(Value::String),
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "eth0",
            "lan0",
            "wan1",
            "wan2",
            "a/b",
            "0",
            "10MB",
            "17179869184GB",
            "99999999999999999999KB",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.168.1.1",
            "192.168.1.0/24",
            "203.0.113.7",
            "10.0.0.1/8",
            "1-65535",
            "65535-1",
            "aa:bb:cc:dd:ee:ff",
            "http://x",
            "ftp://x",
            "/var/log/../x",
            "/var/log/r.log",
            "tcp",
            "icmp",
            "ecmp",
            "failover",
            "drop",
            "TRACE",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(2, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value at the n-th path (mod the number of paths).
    Set(usize, Value),
    Remove(usize),
    /// Add a key that does not belong (into the n-th table).
    AddKey(usize, String, Value),
    /// Repeat an array element many times (duplicates, counts past the limits).
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), edge_value()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), "[a-z_]{1,8}", edge_value()).prop_map(|(i, k, v)| Mutation::AddKey(i, k, v)),
        1 => (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Repeat(i, n)),
    ]
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every path to a value in the document (tables, arrays and leaves).
fn paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Table(t) => {
            for (k, child) in t {
                here.push(Seg::Key(k.clone()));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Seg::Index(i));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// The parent of the value at `path`, and the last step to it.
fn parent_mut<'a>(root: &'a mut Value, path: &'a [Seg]) -> Option<(&'a mut Value, &'a Seg)> {
    let (last, init) = path.split_last()?;
    let mut v = root;
    for seg in init {
        v = match (seg, v) {
            (Seg::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some((v, last))
}

fn apply(doc: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let pick = |i: usize| all[i % all.len()].clone();
    match m {
        Mutation::Set(i, value) => {
            let path = pick(*i);
            match parent_mut(doc, &path) {
                Some((Value::Table(t), Seg::Key(k))) => {
                    t.insert(k.clone(), value.clone());
                }
                Some((Value::Array(a), Seg::Index(j))) => a[*j] = value.clone(),
                _ => {}
            }
        }
        Mutation::Remove(i) => {
            let path = pick(*i);
            match parent_mut(doc, &path) {
                Some((Value::Table(t), Seg::Key(k))) => {
                    t.remove(k);
                }
                Some((Value::Array(a), Seg::Index(j))) => {
                    a.remove(*j);
                }
                _ => {}
            }
        }
        Mutation::AddKey(i, key, value) => {
            let path = pick(*i);
            let target = match parent_mut(doc, &path) {
                Some((Value::Table(t), Seg::Key(k))) => t.get_mut(k),
                Some((Value::Array(a), Seg::Index(j))) => a.get_mut(*j),
                _ => None,
            };
            if let Some(Value::Table(t)) = target {
                t.insert(key.clone(), value.clone());
            }
        }
        Mutation::Repeat(i, n) => {
            let path = pick(*i);
            if let Some((Value::Array(a), Seg::Index(j))) = parent_mut(doc, &path) {
                let item = a[*j].clone();
                a.extend(std::iter::repeat_n(item, *n));
            }
        }
    }
}

/// The properties of one text: see the module comment.
fn check_text(text: &str) -> Result<(), TestCaseError> {
    let well_formed = text.parse::<Table>().is_ok();
    match Config::from_toml(text) {
        Ok(cfg) => {
            let allocation = WanIds::allocate(&cfg, &WanIds::default()).map_err(|e| {
                TestCaseError::fail(format!("accepted config, no WAN numbers: {e}"))
            })?;
            let _ = plan::plan(
                &allocation.resolved,
                &plan::all_up(&cfg),
                &Overrides::default(),
            );
            let again = toml::to_string(&cfg).map_err(|e| {
                TestCaseError::fail(format!("accepted config does not serialize: {e}"))
            })?;
            let back = Config::from_toml(&again).map_err(|e| {
                TestCaseError::fail(format!(
                    "accepted config refused after a round trip: {e}\n{again}"
                ))
            })?;
            prop_assert_eq!(back, cfg);
        }
        Err(errors) => {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert!(!e.reason.is_empty(), "{:?}", e);
                if well_formed {
                    prop_assert!(
                        is_toml_path(&e.path),
                        "error without a TOML path: {:?}\n{}",
                        e,
                        text
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn toml_paths_look_right() {
    assert!(is_toml_path("wan_interfaces[1].weight"));
    assert!(is_toml_path("lan.dhcp.static_leases[0].mac"));
    assert!(is_toml_path("logging"));
    assert!(!is_toml_path(""));
    assert!(!is_toml_path("a..b"));
    assert!(!is_toml_path("a[x]"));
    assert!(is_toml_path("''"));
    assert!(is_toml_path(r#"wan_interfaces[0]."a.b""#));
    assert!(is_toml_path(r#""a\"b".c"#));
    assert!(!is_toml_path(r#""a"b"#));
}

#[test]
fn bases_are_valid() {
    for base in bases() {
        Config::from_toml(base).unwrap();
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_text(&text)?;
    }

    #[test]
    fn toml_like_text_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                "\\[\\[?[a-z_.]{1,20}\\]\\]?",
                "[a-z_]{1,16} = [-0-9.e+x\"a-z\\[\\], ]{0,24}",
            ],
            0..20,
        )
    ) {
        check_text(&lines.join("\n"))?;
    }

    #[test]
    fn sizes_are_exact_or_refused(n in any::<u64>(), unit in 0usize..5) {
        let (suffix, mult) = [("GB", 1u128 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1), ("", 1)][unit];
        let exact = u128::from(n) * mult;
        match parse_size(&format!("{n}{suffix}")) {
            Ok(bytes) => prop_assert_eq!(u128::from(bytes), exact),
            Err(e) => prop_assert!(n == 0 || exact > u128::from(u64::MAX), "{}", e),
        }
    }

    #[test]
    fn mutated_valid_configs_are_accepted_or_refused_by_path(
        base in 0usize..2,
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let mut doc = Value::Table(bases()[base].parse::<Table>().unwrap());
        for m in &mutations {
            apply(&mut doc, m);
        }
        let Value::Table(table) = doc else { unreachable!() };
        let text = toml::to_string(&table).unwrap();
        check_text(&text)?;
    }
}
