//! What text tasks share, checked over every task at once: one vocabulary, built over
//! all their training splits (so one `vocab_size` and one `min_freq`), and under a
//! sharing strategy one text stem, which cannot mix the built-in reviews' fixed words
//! with a vocabulary built from files.

use mtl_model::Strategy;

use super::error::locate;
use super::{Checker, ConfigError, Index, Key};
use crate::data::DataSource;
use crate::plan::TaskSource;

impl Checker<'_> {
    /// Refuses text tasks that could not share one vocabulary or one text stem under `strategies`.
    pub(super) fn shared_text(&self, tasks: &[TaskSource], strategies: &[Strategy]) -> Result<(), ConfigError> {
        let files: Vec<(usize, &TaskSource, usize, usize)> = tasks
            .iter()
            .enumerate()
            .filter_map(|(i, task)| match &task.data {
                DataSource::Texts { options, .. } => Some((i, task, options.vocab_size, options.min_freq)),
                _ => None,
            })
            .collect();
        if let Some(&(first_idx, first, first_size, first_freq)) = files.first() {
            for &(idx, task, size, freq) in &files[1..] {
                for (key, theirs, this) in [("vocab_size", first_size, size), ("min_freq", first_freq, freq)] {
                    if theirs == this {
                        continue;
                    }
                    // Point at the value the file gives: the other one may be the default.
                    let at = |i| [Key("tasks"), Index(i), Key("data"), Key(key)];
                    let path = if locate(self.source, &at(idx)).is_some() { at(idx) } else { at(first_idx) };
                    return self.fail(
                        &path,
                        format!(
                            "text tasks share one vocabulary, built over all their training splits, so they take \
                             one {key}: task {} has {theirs} and task {} has {this}; set the same {key} on both",
                            first.name, task.name
                        ),
                    );
                }
            }
        }
        let sharing = strategies.iter().find(|s| **s != Strategy::SingleTask);
        let reviews = tasks.iter().position(|t| matches!(t.data, DataSource::SyntheticReviews { .. }));
        if let (Some(strategy), Some(reviews), Some((_, file_task, ..))) = (sharing, reviews, files.first()) {
            return self.fail(
                &[Key("tasks"), Index(reviews), Key("data"), Key("format")],
                format!(
                    "tasks {} and {} would share one text stem under strategy {}, but the built-in reviews' \
                     token ids are words of their own, not those of the vocabulary built from the files of {}: \
                     give {} text files too, or leave sharing out: sweep.strategy = [\"single-task\"]",
                    tasks[reviews].name,
                    file_task.name,
                    strategy.name(),
                    file_task.name,
                    tasks[reviews].name
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;
    use std::path::Path;

    /// A file with a text task per `data` entry (inline TOML tables) under `strategies`.
    fn file(data: &[&str], strategies: &str) -> String {
        let mut text = String::from("name = \"t\"\n");
        for (i, data) in data.iter().enumerate() {
            text.push_str(&format!("\n[[tasks]]\nname = \"t{i}\"\ndata = {data}\n"));
        }
        text.push_str(&format!("\n[sweep]\nstrategy = {strategies}\n"));
        text
    }

    /// The file parses, or fails with exactly `expected` (`file:line: key: message`).
    fn check(data: &[&str], strategies: &str, expected: Result<(), &str>) {
        let text = file(data, strategies);
        let got = parse_str(&text, Path::new("x.toml")).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(String::from), "{text}");
    }

    const CSV: &str = "{ format = \"csv\", path = \"a.csv\", text_column = 0, label_column = 1";

    #[test]
    fn text_tasks_take_one_vocab_size_and_min_freq() {
        let csv = |extra: &str| format!("{CSV}{extra} }}");
        let (plain, small, rare) = (csv(""), csv(", vocab_size = 500"), csv(", min_freq = 1"));
        check(&[&plain, &plain], "[\"hard\"]", Ok(()));
        check(&[&small, &small], "[\"single-task\"]", Ok(()));
        // Caps differ even without sharing a stem: single-task baselines use the shared vocabulary too.
        check(
            &[&plain, &small],
            "[\"single-task\"]",
            Err("x.toml:9: tasks[1].data.vocab_size: text tasks share one vocabulary, built over all their \
                 training splits, so they take one vocab_size: task t0 has 20000 and task t1 has 500; set the \
                 same vocab_size on both"),
        );
        // The value the file gives is the one pointed at, whichever task it is on.
        check(
            &[&rare, &plain],
            "[\"hard\"]",
            Err("x.toml:5: tasks[0].data.min_freq: text tasks share one vocabulary, built over all their \
                 training splits, so they take one min_freq: task t0 has 1 and task t1 has 2; set the same \
                 min_freq on both"),
        );
        // max_len is each task's own.
        check(&[&plain, &csv(", max_len = 16")], "[\"hard\"]", Ok(()));
    }

    #[test]
    fn trials_record_the_tasks_that_share_the_vocabulary() {
        use mtl_store::ParamValue;
        let csv = format!("{CSV} }}");
        let plan = |data: &[&str]| parse_str(&file(data, "[\"hard\"]"), Path::new("x.toml")).expect("plan");
        let (one, two) = (plan(&[&csv]), plan(&[&csv, &csv]));
        let shared = |p: &crate::plan::Plan| {
            let params = p.trials[0].params();
            params.into_iter().find(|(key, _)| key == "vocabulary_tasks").map(|(_, value)| value)
        };
        assert_eq!(shared(&one), Some(ParamValue::Text("t0".into())));
        assert_eq!(shared(&two), Some(ParamValue::Text("t0,t1".into())));
        // Sharing changes how two tasks tokenise, so it is in their trials' keys; one task's keys stay as they were.
        assert!(two.trials[0].settings_json.contains(r#""vocabulary":{"shared_by":["t0","t1"]}"#));
        assert!(!one.trials[0].settings_json.contains("vocabulary"));
    }

    #[test]
    fn built_in_reviews_share_no_stem_with_file_text() {
        let reviews = "{ format = \"synthetic-reviews\" }";
        let csv = format!("{CSV} }}");
        check(&[reviews, &csv], "[\"single-task\"]", Ok(()));
        check(&[reviews, reviews], "[\"hard\"]", Ok(()));
        check(
            &[&csv, reviews],
            "[\"single-task\", \"mmoe\"]",
            Err("x.toml:9: tasks[1].data.format: tasks t1 and t0 would share one text stem under strategy \
                 mmoe, but the built-in reviews' token ids are words of their own, not those of the vocabulary \
                 built from the files of t0: give t1 text files too, or leave sharing out: sweep.strategy = \
                 [\"single-task\"]"),
        );
    }
}
