//! What changed between two revisions of an experiment file: its keys, compared as
//! parsed TOML, so comments and layout do not count.

use std::collections::BTreeMap;

/// `key: old → new` for every dotted key whose value differs between `old` and `new`
/// (`(absent)` on the side that lacks it); empty when only comments or layout changed.
/// A text that does not parse compares as a whole.
pub fn changed_keys(old: &str, new: &str) -> Vec<String> {
    let (Ok(old), Ok(new)) = (old.parse::<toml::Table>(), new.parse::<toml::Table>()) else {
        return if old == new { Vec::new() } else { vec!["(the file, which does not parse as TOML)".into()] };
    };
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &toml::Value::Table(old), &mut before);
    flatten("", &toml::Value::Table(new), &mut after);
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let shown = |value: Option<&String>| value.cloned().unwrap_or_else(|| "(absent)".into());
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| format!("{key}: {} → {}", shown(before.get(key)), shown(after.get(key))))
        .collect()
}

/// Leaves of `value` by dotted key (array elements as `key[i]` when they are tables).
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                flatten(&join(key), value, out);
            }
        }
        toml::Value::Array(items) if items.iter().any(toml::Value::is_table) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), item, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_values_count_not_comments_or_layout() {
        let old = "name = \"e\"\nepochs = 2\n[sweep]\nlambda = [0.5, 1]\n";
        let same = "# a comment\nname = \"e\"\n\nepochs   = 2\n[sweep]\nlambda = [ 0.5,1 ]\n";
        assert!(changed_keys(old, same).is_empty(), "{:?}", changed_keys(old, same));
        let new = "name = \"e\"\nepochs = 3\nseeds = [0, 1]\n[sweep]\nlambda = [0.5, 1]\n";
        assert_eq!(changed_keys(old, new), ["epochs: 2 → 3", "seeds: (absent) → [0, 1]"]);
        let tasks = "[[tasks]]\nname = \"a\"\n[[tasks]]\nname = \"b\"\n";
        let renamed = "[[tasks]]\nname = \"a\"\n[[tasks]]\nname = \"c\"\n";
        assert_eq!(changed_keys(tasks, renamed), ["tasks[1].name: \"b\" → \"c\""]);
    }
}
