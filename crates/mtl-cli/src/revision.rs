//! An experiment file that changed under the same experiment name: `mtl run` names the
//! changed keys and stops, unless told to go on as the next revision.

use std::path::Path;

use crate::BadInput;

/// Refuses (exit 2) to run `plan` into `db` when its experiment was last run from a file
/// with other settings, naming the keys that changed, unless `new_revision`. A change of
/// comments or layout only is noted and allowed. Reads the database only.
pub fn check(db: &Path, plan: &mtl_runner::plan::Plan, file: &Path, new_revision: bool) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(db).is_err() {
        return Ok(());
    }
    // A file that is not a database yet, or one from before revisions were recorded:
    // nothing to compare with (the sweep opens and migrates it, or says what is wrong).
    let Ok(store) = mtl_store::Store::open_read_only(db) else { return Ok(()) };
    let Ok(Some(latest)) = store.latest_revision(&plan.experiment) else { return Ok(()) };
    let sha256 = mtl_store::sha256_hex(plan.source.as_bytes());
    if latest.sha256 == sha256 {
        return Ok(());
    }
    // Back to an earlier text: its own number; else the next one.
    let next = match store.revision_of(&plan.experiment, &sha256)? {
        Some(earlier) => earlier,
        None => store.revision_count(&plan.experiment)? + 1,
    };
    let changes = match &latest.text {
        Some(old_text) => mtl_runner::config::changed_keys(old_text, &plan.source),
        None => vec!["(revision's text is not in the database: the changed keys cannot be listed)".into()],
    };
    if changes.is_empty() {
        note!(
            "{}: only comments or layout changed since revision {} of {:?}; running as revision {next}",
            file.display(),
            latest.revision,
            plan.experiment
        );
        return Ok(());
    }
    let listed: String = changes.iter().map(|c| format!("\n  {c}")).collect();
    if new_revision {
        note!(
            "{}: revision {next} of {:?}; changed since revision {}:{listed}",
            file.display(),
            plan.experiment,
            latest.revision
        );
        return Ok(());
    }
    Err(BadInput(format!(
        "{}: experiment {:?} in {} was last run from a different file (revision {}); changed:{listed}\n\
         Nothing was run. To run this file as revision {next} of the same experiment, add --new-revision: \
         runs whose settings differ are never pooled (mtl compare splits them by the settings that differ, \
         the report shows them apart), and trials whose settings did not change are not run again. \
         To keep the experiments apart entirely, give this one another `name`.",
        file.display(),
        plan.experiment,
        db.display(),
        latest.revision
    ))
    .into())
}
