//! The `[wan_interfaces.pppoe]` tables of a config *text*, for the edits that must keep the
//! rest of the file as written (comments, order): moving a password out (daemon), hiding or
//! keeping it (web).

use toml_edit::{DocumentMut, Item, TableLike};

/// Call `f(wan name, pppoe table)` for each `[wan_interfaces.pppoe]`, whether the WANs are
/// an array of tables or inline, and the section a table or inline (`pppoe = { ... }`).
pub fn for_each_pppoe(doc: &mut DocumentMut, mut f: impl FnMut(Option<&str>, &mut dyn TableLike)) {
    let Some(wans) = doc.get_mut("wan_interfaces") else {
        return;
    };
    let tables: Vec<&mut dyn TableLike> = match wans {
        Item::ArrayOfTables(list) => list.iter_mut().map(|t| t as &mut dyn TableLike).collect(),
        Item::Value(toml_edit::Value::Array(list)) => list
            .iter_mut()
            .filter_map(|v| v.as_inline_table_mut())
            .map(|t| t as &mut dyn TableLike)
            .collect(),
        _ => Vec::new(),
    };
    for wan in tables {
        let name = wan.get("name").and_then(Item::as_str).map(String::from);
        if let Some(pppoe) = wan.get_mut("pppoe").and_then(Item::as_table_like_mut) {
            f(name.as_deref(), pppoe);
        }
    }
}
