//! Text -> [`RawConfig`], every problem located by its TOML path. The TOML file and the web
//! API's JSON form go through the same function, so both name a field the same way
//! (`wan_interfaces[1].weight`) with the same reason.

use super::model::RawConfig;
use super::FieldError;

/// A parsed document and the problems met on the way: every unknown key, then the first
/// type error (serde stops there, so `raw` is None).
pub(super) struct Parsed {
    pub raw: Option<RawConfig>,
    pub errors: Vec<FieldError>,
}

/// TOML text; `text` also turns toml's byte spans into line numbers.
pub(super) fn toml(text: &str) -> Parsed {
    match toml::Deserializer::parse(text) {
        Ok(de) => deserialize(de, |e| toml_message(e, text)),
        Err(e) => Parsed {
            raw: None,
            errors: vec![FieldError::new("", toml_message(&e, text))],
        },
    }
}

/// The JSON form (the same document as a JSON value).
pub(super) fn json(value: serde_json::Value) -> Parsed {
    deserialize(value, ToString::to_string)
}

fn deserialize<'de, D: serde::Deserializer<'de>>(
    de: D,
    message: impl Fn(&D::Error) -> String,
) -> Parsed {
    let mut unknown = Vec::new();
    let parsed = {
        let mut on_unknown = |path: serde_ignored::Path| unknown.push(toml_path(&path));
        let de = serde_ignored::Deserializer::new(de, &mut on_unknown);
        serde_path_to_error::deserialize::<_, RawConfig>(de)
    };
    let mut errors: Vec<FieldError> = unknown
        .into_iter()
        .map(|p| FieldError::new(p, "unknown key"))
        .collect();
    let raw = match parsed {
        Ok(raw) => Some(raw),
        Err(e) => {
            errors.push(located(e.path().to_string(), message(e.inner())));
            None
        }
    };
    Parsed { raw, errors }
}

/// `a.b[0].c`, the way users write TOML paths (serde_ignored prints `a.b.0.c`).
fn toml_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", toml_path(parent)),
        Path::Map { parent, key } => {
            // A key that is not bare (`''`, `"a.b"`) is quoted as TOML writes it, so the path
            // still names one field.
            let key = toml_edit::Key::new(key.as_str());
            let key = key.display_repr();
            match toml_path(parent) {
                p if p.is_empty() => key.into_owned(),
                p => format!("{p}.{key}"),
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => toml_path(parent),
    }
}

/// serde names a missing key in its message and points at the table holding it; put the
/// key in the path, so every error of a well-formed document names the field itself.
fn located(path: String, message: String) -> FieldError {
    // serde_path_to_error prints the root as ".".
    let path = if path == "." { String::new() } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split_once('`'));
    match missing {
        Some((key, rest)) => FieldError::new(
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            },
            format!("required but missing{rest}"),
        ),
        None => FieldError::new(path, message),
    }
}

/// toml's message with a line number instead of its multi-line snippet.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{} (line {line})", e.message().trim_end())
        }
        None => e.message().trim_end().to_string(),
    }
}
