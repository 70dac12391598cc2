//! Curating runs end to end (issue 17): tags and notes usable in --where and shown by
//! `mtl show`; `mtl rm` archives (hidden by default, its trial still done), `mtl restore`
//! brings runs back, `mtl rm --purge` deletes only with consent.

mod support {
    pub mod common;
}
use support::common::{count, expect_code, text, Workspace, SMALL};

fn json(output: &std::process::Output) -> serde_json::Value {
    expect_code(output, 0);
    serde_json::from_slice(&output.stdout).expect("json")
}

fn ids(ws: &Workspace, args: &[&str]) -> Vec<i64> {
    let listed = json(&ws.mtl(&[args, &["--format", "json"]].concat()));
    listed.as_array().expect("runs").iter().map(|r| r["id"].as_i64().expect("id")).collect()
}

/// The number of runs in the compare group of hard λ = 0.5.
fn hard_half_n(ws: &Workspace) -> usize {
    let groups = json(&ws.mtl(&["compare", "--format", "json"]));
    let group = groups
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"]["strategy"] == "hard" && g["group"]["lambda"].as_f64() == Some(0.5));
    group.expect("hard λ=0.5 group")["runs"].as_array().expect("runs").len()
}

#[test]
fn runs_are_tagged_noted_archived_restored_and_purged() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    let db = ws.path("mtl.db");
    let all = ids(&ws, &["ls"]);
    assert_eq!(all.len(), 6);

    // Tags: said how many, filtered on.
    let tagged = ws.mtl(&["tag", "1", "2", "keep=yes"]);
    expect_code(&tagged, 0);
    assert!(text(&tagged.stdout).contains("tagged 2 run(s) keep=yes"), "{}", text(&tagged.stdout));
    assert_eq!(ids(&ws, &["ls", "--where", "tag.keep = 'yes'"]), [1, 2]);

    // A note, by trial-key prefix, shown by show.
    let key: String = count_text(&db, "SELECT trial_key FROM runs WHERE id = 3");
    expect_code(&ws.mtl(&["note", &key[..8], "lr too high?"]), 0);
    let shown = text(&ws.mtl(&["show", "3"]).stdout);
    assert!(shown.contains("note        lr too high?"), "{shown}");
    assert_eq!(ids(&ws, &["ls", "--where", "note = 'lr too high?'"]), [3]);

    // rm archives: ls hides it, --archived lists it, compare's n drops.
    assert_eq!(hard_half_n(&ws), 2);
    let removed = ws.mtl(&["rm", "3"]);
    expect_code(&removed, 0);
    assert!(text(&removed.stdout).contains("archived 1 run(s)"), "{}", text(&removed.stdout));
    assert_eq!(ids(&ws, &["ls"]), [1, 2, 4, 5, 6]);
    assert_eq!(ids(&ws, &["ls", "--archived"]), all);
    assert_eq!(ids(&ws, &["ls", "--archived", "--where", "archived = 'yes'"]), [3]);
    assert_eq!(hard_half_n(&ws), 1);
    assert!(text(&ws.mtl(&["show", "3"]).stdout).contains("archived    yes"));

    // Rerunning the experiment does not train the archived trial again.
    let attempts = count(&db, "SELECT SUM(attempts) FROM runs");
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    assert_eq!(count(&db, "SELECT SUM(attempts) FROM runs"), attempts);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs"), 6);

    // restore brings it back.
    let restored = ws.mtl(&["restore", "--where", "archived = 'yes'"]);
    expect_code(&restored, 0);
    assert!(text(&restored.stdout).contains("restored 1 run(s)"));
    assert_eq!(ids(&ws, &["ls"]), all);

    // --purge without a terminal and without --yes: refused, nothing changed.
    let refused = ws.command(&["rm", "--purge", "1", "2"]).stdin(std::process::Stdio::null()).output().expect("mtl");
    expect_code(&refused, 2);
    assert!(text(&refused.stderr).contains("--yes"), "{}", text(&refused.stderr));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs"), 6);
    let purged = ws.mtl(&["rm", "--purge", "--yes", "--where", "tag.keep = 'yes'"]);
    expect_code(&purged, 0);
    assert!(text(&purged.stdout).contains("deleted 2 run(s)"), "{}", text(&purged.stdout));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs"), 4);
    for table in ["params", "metrics", "tags"] {
        assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM {table} WHERE run_id IN (1, 2)")), 0, "{table}");
    }

    // An unknown run: exit 2, named, nothing changed.
    let unknown = ws.mtl(&["tag", "99", "4", "keep=no"]);
    expect_code(&unknown, 2);
    assert!(text(&unknown.stderr).contains("no run \"99\""), "{}", text(&unknown.stderr));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tags"), 0);
}

fn count_text(db: &std::path::Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(db).expect("sqlite");
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}
