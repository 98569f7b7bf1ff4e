//! The PPPoE password is write-only. No answer shows it: the config's JSON form says
//! `password_set` instead, and an inline `password` (a hand-written file the daemon has not
//! moved into its secret file yet) is taken out of the TOML text. A change that sends a
//! `[pppoe]` section with neither `password` nor `password_file` keeps the WAN's current one
//! (from the running config, by WAN name); a new `password` goes to the daemon, which stores
//! it in a root-only file and saves the config with `password_file` pointing there.
//!
//! The TOML text is edited with toml_edit, which keeps the user's comments and layout.

use routeros_shared::config::pppoe_text::for_each_pppoe;
use routeros_shared::config::{Config, PppoeConfig, WanConfig};
use serde_json::Value;
use toml_edit::DocumentMut;

/// The read-only marker in a `pppoe` object of the JSON form.
pub const PASSWORD_SET: &str = "password_set";

/// The JSON form as answers show it: every `wan_interfaces[i].pppoe` without `password`,
/// with `password_set` (a password or a password file is configured).
pub fn redact_json(config: &mut Value) {
    for pppoe in pppoe_objects(config) {
        let had = pppoe.remove("password").is_some_and(|p| !p.is_null());
        let file = pppoe.get("password_file").is_some_and(|f| !f.is_null());
        pppoe.insert(PASSWORD_SET.into(), Value::Bool(had || file));
    }
}

/// The TOML text as answers show it: any `password` key of a WAN's `pppoe` table removed
/// (unchanged text when there is none). A text toml_edit cannot read loses every line that
/// sets a `password`, so nothing slips through a syntax error.
pub fn redact_toml(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return text
            .lines()
            .filter(|l| !l.trim_start().starts_with("password"))
            .map(|l| format!("{l}\n"))
            .collect();
    };
    let mut removed = false;
    for_each_pppoe(&mut doc, |_, pppoe| {
        removed |= pppoe.remove("password").is_some();
    });
    if removed {
        doc.to_string()
    } else {
        text.to_string()
    }
}

/// What a `pppoe` section without a password keeps from the running WAN of that name.
fn current_secret(running: &Config, wan: &str) -> Option<Secret> {
    let p = running
        .wan_interfaces
        .iter()
        .find(|w| w.name == wan)?
        .pppoe
        .as_ref()?;
    if let Some(file) = &p.password_file {
        return Some(Secret::File(file.to_string_lossy().into_owned()));
    }
    p.password.clone().map(Secret::Inline)
}

enum Secret {
    File(String),
    Inline(String),
}

/// Whether a change needs the running config to fill in kept passwords (so the caller asks
/// the daemon only then): a `pppoe` object with neither `password` nor `password_file`.
pub fn json_needs_running(config: &Value) -> bool {
    let mut copy = config.clone();
    pppoe_objects(&mut copy)
        .into_iter()
        .any(|p| lacks_secret(p))
}

/// A changed JSON form ready to validate: `password_set` dropped (read-only), and a WAN's
/// current password kept where its `pppoe` has neither `password` nor `password_file`.
pub fn keep_json(config: &mut Value, running: Option<&Config>) {
    let names: Vec<Option<String>> = wan_items(config)
        .iter()
        .map(|w| w.get("name").and_then(Value::as_str).map(String::from))
        .collect();
    for (wan, name) in wan_items(config).into_iter().zip(names) {
        let Some(pppoe) = wan.get_mut("pppoe").and_then(Value::as_object_mut) else {
            continue;
        };
        pppoe.remove(PASSWORD_SET);
        if !lacks_secret(pppoe) {
            continue;
        }
        let kept = match (running, name.as_deref()) {
            (Some(r), Some(n)) => current_secret(r, n),
            _ => None,
        };
        match kept {
            Some(Secret::File(f)) => pppoe.insert("password_file".into(), Value::String(f)),
            Some(Secret::Inline(p)) => pppoe.insert("password".into(), Value::String(p)),
            None => None,
        };
    }
}

/// Whether a TOML text has a WAN `pppoe` table with neither `password` nor `password_file`.
pub fn toml_needs_running(text: &str) -> bool {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return false;
    };
    let mut needs = false;
    for_each_pppoe(&mut doc, |_, pppoe| {
        needs |= !pppoe.contains_key("password") && !pppoe.contains_key("password_file");
    });
    needs
}

/// A changed TOML text with each WAN's current password kept where its `pppoe` table has
/// neither `password` nor `password_file` (the rest of the text as written). A text
/// toml_edit cannot read is returned as it is: validation names its error.
pub fn keep_toml(text: &str, running: &Config) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return text.to_string();
    };
    let mut changed = false;
    for_each_pppoe(&mut doc, |name, pppoe| {
        if pppoe.contains_key("password") || pppoe.contains_key("password_file") {
            return;
        }
        let (key, value) = match name.and_then(|n| current_secret(running, n)) {
            Some(Secret::File(f)) => ("password_file", f),
            Some(Secret::Inline(p)) => ("password", p),
            None => return,
        };
        pppoe.insert(key, toml_edit::value(value));
        changed = true;
    });
    if changed {
        doc.to_string()
    } else {
        text.to_string()
    }
}

/// A typed WAN's `pppoe` without a password keeps `old`'s (the wizard's path).
pub fn keep_typed(new: &mut WanConfig, running: &Config) {
    let Some(p) = new.pppoe.as_mut() else { return };
    if p.password.is_some() || p.password_file.is_some() {
        return;
    }
    let old: Option<&PppoeConfig> = running
        .wan_interfaces
        .iter()
        .find(|w| w.name == new.name)
        .and_then(|w| w.pppoe.as_ref());
    if let Some(old) = old {
        p.password.clone_from(&old.password);
        p.password_file.clone_from(&old.password_file);
    }
}

fn lacks_secret(pppoe: &serde_json::Map<String, Value>) -> bool {
    let absent = |k: &str| pppoe.get(k).is_none_or(Value::is_null);
    absent("password") && absent("password_file")
}

fn wan_items(config: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    match config
        .get_mut("wan_interfaces")
        .and_then(Value::as_array_mut)
    {
        Some(list) => list.iter_mut().filter_map(Value::as_object_mut).collect(),
        None => Vec::new(),
    }
}

fn pppoe_objects(config: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    wan_items(config)
        .into_iter()
        .filter_map(|w| w.get_mut("pppoe").and_then(Value::as_object_mut))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUNNING: &str = r#"
[[wan_interfaces]]
name = "wan1"
mode = "pppoe"
[wan_interfaces.pppoe]
username = "alice"
password_file = "/opt/routeros/config/secrets/wan1.pppoe"

[[wan_interfaces]]
name = "wan2"
mode = "pppoe"
pppoe = { username = "bob", password = "inline-secret" }

[lan]
interface = "lan0"
address = "192.168.1.1/24"
"#;

    fn running() -> Config {
        Config::from_toml(RUNNING).unwrap()
    }

    #[test]
    fn answers_never_carry_the_password() {
        let text = redact_toml(RUNNING);
        assert!(!text.contains("inline-secret"), "{text}");
        assert!(text.contains("password_file = \"/opt/routeros/config/secrets/wan1.pppoe\""));
        assert!(text.contains("username = \"bob\""), "{text}");
        // Nothing to take out: the text stays byte for byte.
        let plain = "# mine\n[lan]\ninterface = \"lan0\"\n";
        assert_eq!(redact_toml(plain), plain);
        // Unreadable TOML: the password lines go anyway.
        let broken = "[[wan_interfaces]\npassword = \"inline-secret\"\n";
        assert!(!redact_toml(broken).contains("inline-secret"));

        let mut v = serde_json::to_value(running()).unwrap();
        redact_json(&mut v);
        assert!(!v.to_string().contains("inline-secret"), "{v}");
        assert_eq!(v["wan_interfaces"][1]["pppoe"][PASSWORD_SET], true);
        assert_eq!(v["wan_interfaces"][0]["pppoe"][PASSWORD_SET], true);
        assert_eq!(
            v["wan_interfaces"][0]["pppoe"]["password_file"],
            "/opt/routeros/config/secrets/wan1.pppoe"
        );
    }

    #[test]
    fn a_section_without_password_keeps_the_current_one() {
        // The JSON form as GET shows it, sent back with another username on wan1.
        let mut v = serde_json::to_value(running()).unwrap();
        redact_json(&mut v);
        v["wan_interfaces"][0]["pppoe"]
            .as_object_mut()
            .unwrap()
            .remove("password_file");
        v["wan_interfaces"][0]["pppoe"]["username"] = json!("alice2");
        assert!(json_needs_running(&v));
        keep_json(&mut v, Some(&running()));
        let cfg = Config::from_json(v).unwrap();
        let p1 = cfg.wan_interfaces[0].pppoe.as_ref().unwrap();
        assert_eq!(p1.username, "alice2");
        assert_eq!(
            p1.password_file.as_deref(),
            Some(std::path::Path::new(
                "/opt/routeros/config/secrets/wan1.pppoe"
            ))
        );
        let p2 = cfg.wan_interfaces[1].pppoe.as_ref().unwrap();
        assert_eq!(p2.password.as_deref(), Some("inline-secret"));

        // A new password is passed on as it is.
        let mut v = json!({"wan_interfaces": [{"name": "wan1", "mode": "pppoe",
            "pppoe": {"username": "alice", "password": "new-one", "password_set": true}}]});
        assert!(!json_needs_running(&v));
        keep_json(&mut v, Some(&running()));
        assert_eq!(
            v["wan_interfaces"][0]["pppoe"],
            json!({"username": "alice", "password": "new-one"})
        );

        // TOML: the same, keeping the text around it.
        let text = "# my lines\n[[wan_interfaces]]\nname = \"wan1\"\nmode = \"pppoe\"\n\
                    [wan_interfaces.pppoe]\nusername = \"alice\"\n\n[lan]\n\
                    interface = \"lan0\"\naddress = \"192.168.1.1/24\"\n";
        assert!(toml_needs_running(text));
        let kept = keep_toml(text, &running());
        assert!(kept.starts_with("# my lines\n"), "{kept}");
        let cfg = Config::from_toml(&kept).unwrap();
        assert!(cfg.wan_interfaces[0]
            .pppoe
            .as_ref()
            .unwrap()
            .password_file
            .is_some());
        // A WAN the running config has no password for stays without: validation says so.
        let other = text.replace("\"wan1\"", "\"wan9\"");
        assert_eq!(keep_toml(&other, &running()), other);
    }
}
