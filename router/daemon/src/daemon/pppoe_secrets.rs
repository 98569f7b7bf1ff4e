//! PPPoE passwords stay out of the config text that the web UI reads back and the history
//! keeps: a password given inline in a change over the control socket is written to its own
//! file (mode 0600, in `<config dir>/secrets/`, readable by root only) and the saved config
//! names that file (`password_file`) instead. Each change gets a new file, so rolling back
//! to an older version brings back the password that version had.
//!
//! `password_file` is where the root daemon reads a secret from and hands it to an ISP, so
//! over the control socket it may only name a file in that directory (or stay as it was).

use routeros_shared::config::pppoe_text::for_each_pppoe;
use routeros_shared::config::{Config, FieldError, PppoeConfig};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use toml_edit::DocumentMut;

/// Where the daemon keeps the secrets of `config_path`.
pub fn secrets_dir(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("secrets")
}

/// The `password_file`s of `new` that a change over the control socket may not set: any
/// outside `dir` that the running config does not already use for the same WAN.
pub fn foreign_password_files(running: &Config, new: &Config, dir: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, w) in new.wan_interfaces.iter().enumerate() {
        let Some(file) = w.pppoe.as_ref().and_then(|p| p.password_file.as_ref()) else {
            continue;
        };
        let kept = running.wan_interfaces.iter().any(|o| {
            o.name == w.name
                && o.pppoe.as_ref().and_then(|p| p.password_file.as_ref()) == Some(file)
        });
        let ours = file.parent() == Some(dir) && !file.components().any(|c| c.as_os_str() == "..");
        if !kept && !ours {
            errors.push(FieldError::new(
                format!("wan_interfaces[{i}].pppoe.password_file"),
                format!(
                    "only a file in {} may be named here (give `password` and the router stores it there); root may set others in the config file",
                    dir.display()
                ),
            ));
        }
    }
    errors
}

/// `text` with every inline `pppoe.password` moved to a new file in `dir` (named after the
/// WAN and `stamp`, the next free number from it), or `None` when it has none.
pub fn move_inline_passwords(text: &str, dir: &Path, stamp: u64) -> Result<Option<String>, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let (mut moved, mut failed) = (false, None);
    for_each_pppoe(&mut doc, |name, pppoe| {
        let Some(password) = pppoe
            .get("password")
            .and_then(|p| p.as_str())
            .map(str::to_owned)
        else {
            return;
        };
        if failed.is_some() {
            return;
        }
        let name = name.unwrap_or("wan");
        match write_secret(dir, name, stamp, &password) {
            Ok(file) => {
                pppoe.remove("password");
                pppoe.insert(
                    "password_file",
                    toml_edit::value(file.display().to_string()),
                );
                moved = true;
            }
            Err(e) => {
                failed = Some(format!(
                    "cannot store the PPPoE password of {name} in {}: {e}",
                    dir.display()
                ))
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(moved.then(|| doc.to_string())),
    }
}

/// A new file `<dir>/<name>-<n>.pppoe` (n from `stamp` up), mode 0600, holding `secret`.
fn write_secret(dir: &Path, name: &str, stamp: u64, secret: &str) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for n in stamp.. {
        let file = dir.join(format!("{name}-{n}.pppoe"));
        let mut f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        f.write_all(secret.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        return Ok(file);
    }
    Err(std::io::Error::other("no free file name"))
}

/// The password of a PPPoE account: inline, or the first line of its file.
pub fn read_password(p: &PppoeConfig) -> Result<String, String> {
    if let Some(pw) = &p.password {
        return Ok(pw.clone());
    }
    let Some(file) = &p.password_file else {
        return Err("no password or password_file".into());
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read password_file {}: {e}", file.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const TEXT: &str = r#"# my lines
[[wan_interfaces]]
name = "wan1"
mode = "pppoe"
[wan_interfaces.pppoe]
username = "u"
password = "s3cret" # the ISP's

[[wan_interfaces]]
name = "wan2"
mode = "pppoe"
pppoe = { username = "v", password = "other" }

[lan]
interface = "lan"
address = "192.168.1.1/24"
"#;

    #[test]
    fn inline_passwords_move_to_private_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secrets");
        let text = move_inline_passwords(TEXT, &dir, 42).unwrap().unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("other"),
            "{text}"
        );
        assert!(text.starts_with("# my lines\n"), "comments kept: {text}");
        let cfg = Config::from_toml(&text).unwrap();
        for (w, want) in cfg.wan_interfaces.iter().zip(["s3cret", "other"]) {
            let p = w.pppoe.as_ref().unwrap();
            let file = p.password_file.as_ref().unwrap();
            assert_eq!(file, &dir.join(format!("{}-42.pppoe", w.name)));
            assert_eq!(read_password(p).unwrap(), want);
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(move_inline_passwords(&text, &dir, 43).unwrap(), None);
        // The same stamp again (a clock that did not move): the next free name.
        let again = move_inline_passwords(TEXT, &dir, 42).unwrap().unwrap();
        assert!(again.contains("wan1-43.pppoe"), "{again}");
    }

    #[test]
    fn only_our_secret_files_may_be_named_over_the_socket() {
        let dir = Path::new("/opt/routeros/config/secrets");
        let with = |file: &str| {
            Config::from_toml(&format!(
                "[[wan_interfaces]]\nname = \"wan1\"\nmode = \"pppoe\"\n[wan_interfaces.pppoe]\nusername = \"u\"\npassword_file = \"{file}\"\n[lan]\ninterface = \"lan\"\naddress = \"192.168.1.1/24\"\n"
            ))
            .unwrap()
        };
        let running = with("/root/isp.secret");
        assert!(foreign_password_files(&running, &with("/root/isp.secret"), dir).is_empty());
        assert!(foreign_password_files(
            &running,
            &with("/opt/routeros/config/secrets/wan1-1.pppoe"),
            dir
        )
        .is_empty());
        for bad in [
            "/etc/shadow",
            "/opt/routeros/config/secrets/../routeros.toml",
        ] {
            let errs = foreign_password_files(&running, &with(bad), dir);
            assert_eq!(errs.len(), 1, "{bad}");
            assert_eq!(errs[0].path, "wan_interfaces[0].pppoe.password_file");
        }
    }
}
