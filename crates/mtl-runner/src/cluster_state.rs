//! Where the trials of a cluster plan stand (`mtl status`, and what `mtl run
//! --executor slurm` submits again): the jobs file that records each submitted
//! job's array indices, the Slurm job states and which of them have ended, and
//! each trial's [`TrialState`] from the main database, its shard and `squeue`'s
//! answer. Running `sbatch` and `squeue` is the caller's; this module only reads
//! and writes text and databases.
//!
//! ```
//! use mtl_runner::cluster_state::{index_ranges, parse_jobs, slurm_phase, SlurmPhase};
//! assert_eq!(index_ranges(&[0, 1, 2, 5]), "0-2,5");
//! assert_eq!(parse_jobs("17 0-2,5\n"), [("17".to_string(), vec![0, 1, 2, 5])]);
//! assert_eq!(slurm_phase("TIMEOUT"), SlurmPhase::Ended);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtl_store::{RunStatus, ShardTrial, Store, StoreError};

use crate::shard::ShardPlan;

/// The jobs file of a plan folder: one line per submitted job, its id and its array
/// indices as ranges (`17 0-3,5`).
pub fn jobs_file(dir: &Path) -> PathBuf {
    dir.join("jobs")
}

/// The jobs file's line for `job` submitted with the array `indices` (ascending).
pub fn jobs_line(job: &str, indices: &[usize]) -> String {
    format!("{job} {}\n", index_ranges(indices))
}

/// `0-3,5,7-8` for `[0, 1, 2, 3, 5, 7, 8]` (ascending).
pub fn index_ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        while i + 1 < indices.len() && indices[i + 1] == indices[i] + 1 {
            i += 1;
        }
        parts.push(if indices[i] == start { start.to_string() } else { format!("{start}-{}", indices[i]) });
        i += 1;
    }
    parts.join(",")
}

/// The jobs submitted for an experiment, in order, each with the array indices it had.
pub fn submitted_jobs(dir: &Path) -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read_to_string(jobs_file(dir)).unwrap_or_default();
    parse_jobs(&text)
}

/// The jobs file's text as (job id, array indices), in order; a line without a numeric
/// job id is skipped.
pub fn parse_jobs(text: &str) -> Vec<(String, Vec<usize>)> {
    text.lines()
        .filter_map(|line| {
            let (job, ranges) = line.split_once(' ').filter(|(job, _)| job.parse::<u64>().is_ok())?;
            // "0-3,5": ranges and single indices; anything unreadable names no index.
            let mut indices = Vec::new();
            for part in ranges.split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                            indices.extend(a..=b);
                        }
                    }
                    None => indices.extend(part.parse::<usize>().ok()),
                }
            }
            Some((job.to_string(), indices))
        })
        .collect()
}

/// Slurm job states that wait to run (again).
pub const QUEUED: [&str; 5] = ["PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"];
/// Slurm job states of a task that runs or may run on (every other state has ended).
pub const ALIVE: [&str; 8] =
    ["RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"];

/// Where a Slurm job state leaves an array task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlurmPhase {
    /// Waits to run (again): one of [`QUEUED`].
    Queued,
    /// Runs or may run on: one of [`ALIVE`].
    Alive,
    /// Any other state: the task has ended, and without a result in its shard it failed.
    Ended,
}

/// The phase of a Slurm job state as `squeue -o %T` prints it.
pub fn slurm_phase(state: &str) -> SlurmPhase {
    if QUEUED.contains(&state) {
        SlurmPhase::Queued
    } else if ALIVE.contains(&state) {
        SlurmPhase::Alive
    } else {
        SlurmPhase::Ended
    }
}

/// Array index → Slurm state of the newest job that has it, from the output of
/// `squeue -h -r -o "%F %K %T" -j <ids>`; `ids` are the submitted jobs, oldest first.
/// Lines of other jobs and unreadable lines are skipped.
pub fn parse_squeue(stdout: &str, ids: &[&str]) -> BTreeMap<usize, String> {
    let order: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, j)| (*j, i)).collect();
    let mut newest: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    for line in stdout.lines() {
        let mut parts = line.split_whitespace();
        let (Some(job), Some(index), Some(state)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (Some(&rank), Ok(index)) = (order.get(job), index.parse::<usize>()) else { continue };
        if newest.get(&index).is_none_or(|(r, _)| rank >= *r) {
            newest.insert(index, (rank, state.to_string()));
        }
    }
    newest.into_iter().map(|(index, (_, state))| (index, state)).collect()
}

/// Where one trial of a plan stands.
#[derive(Clone, Debug, PartialEq)]
pub enum TrialState {
    /// Done in the main database.
    Done,
    /// Done in its shard, not merged yet.
    DoneNotMerged,
    /// Failed: in its shard (with the reason), or its array task failed, was cancelled or lost.
    Failed(String),
    /// Its array task runs (or its shard says so).
    Running,
    /// Its array task waits in the queue.
    Pending,
    /// Never submitted.
    NotSubmitted,
}

impl TrialState {
    /// Done, merged or not.
    pub fn is_done(&self) -> bool {
        matches!(self, TrialState::Done | TrialState::DoneNotMerged)
    }

    /// Failed, cancelled or lost.
    pub fn is_failed(&self) -> bool {
        matches!(self, TrialState::Failed(_))
    }

    /// Running or waiting in the queue.
    pub fn is_queued(&self) -> bool {
        matches!(self, TrialState::Running | TrialState::Pending)
    }

    /// The state's name in `mtl status`.
    pub fn name(&self) -> &'static str {
        match self {
            TrialState::Done => "done",
            TrialState::DoneNotMerged => "done, not merged",
            TrialState::Failed(_) => "failed",
            TrialState::Running => "running",
            TrialState::Pending => "pending",
            TrialState::NotSubmitted => "not submitted",
        }
    }
}

/// The status and error of `trial` in its shard; `None` when there is no shard, an error
/// when the shard is not a regular file or does not hold exactly that trial.
pub fn shard_status(shard: &Path, trial: ShardTrial) -> Result<Option<(RunStatus, Option<String>)>, StoreError> {
    // Not `exists()`: that follows links, and a dangling one is there, to be refused.
    if std::fs::symlink_metadata(shard).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(None);
    }
    let run = Store::read_shard(shard, trial)?;
    Ok(Some((run.status, run.error)))
}

/// Each trial's state, from the main database, its shard in the plan folder `dir`, the
/// `jobs` submitted ([`submitted_jobs`]) and, where Slurm is, `queue` (array index →
/// Slurm state, [`parse_squeue`]; `None` where there is no Slurm to ask).
pub fn trial_states(
    plan: &ShardPlan,
    dir: &Path,
    main: &Store,
    jobs: &[(String, Vec<usize>)],
    queue: Option<&BTreeMap<usize, String>>,
) -> Result<Vec<TrialState>, StoreError> {
    let experiment_runs: BTreeMap<String, RunStatus> =
        main.runs_including_archived(Some(&plan.experiment))?.into_iter().map(|r| (r.trial_key, r.status)).collect();
    let mut states = Vec::new();
    for (index, key) in plan.trial_keys.iter().enumerate() {
        // A pruned trial is finished as a done one is.
        if matches!(experiment_runs.get(key), Some(RunStatus::Done | RunStatus::Pruned)) {
            states.push(TrialState::Done);
            continue;
        }
        // A shard exists only once its trial has finished (done, failed or interrupted).
        let trial = ShardTrial { experiment: &plan.experiment, trial_key: key };
        let shard = match shard_status(&ShardPlan::shard_in(dir, key), trial) {
            Ok(status) => status,
            Err(error) => Some((RunStatus::Failed, Some(format!("shard not merged: {}", error_chain(&error))))),
        };
        let submitted = jobs.iter().any(|(_, indices)| indices.contains(&index));
        let state = match (&shard, queue.and_then(|q| q.get(&index)).map(String::as_str)) {
            // A pruned trial is finished as a done one is.
            (Some((RunStatus::Done | RunStatus::Pruned, _)), _) => TrialState::DoneNotMerged,
            (_, Some(slurm)) if slurm_phase(slurm) == SlurmPhase::Queued => TrialState::Pending,
            (_, Some(slurm)) if slurm_phase(slurm) == SlurmPhase::Alive => TrialState::Running,
            (Some((status, error)), _) => TrialState::Failed(error.clone().unwrap_or_else(|| status.as_str().into())),
            (None, Some(slurm)) => TrialState::Failed(format!("array task {} without a result", slurm.to_lowercase())),
            // Slurm answered and no longer knows the task: it ended (or was cancelled) without a result.
            (None, None) if submitted && queue.is_some() => {
                TrialState::Failed("lost: its array task ended without a result".into())
            }
            // No Slurm to ask (another scheduler): submitted and not finished.
            (None, None) if submitted => TrialState::Pending,
            (None, None) => TrialState::NotSubmitted,
        };
        states.push(state);
    }
    Ok(states)
}

/// `error: its source: …`, as anyhow's `{:#}` prints an error chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_indices_are_written_as_ranges() {
        assert_eq!(index_ranges(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(index_ranges(&[4]), "4");
        assert_eq!(index_ranges(&[]), "");
    }

    #[test]
    fn the_jobs_file_gives_each_job_its_indices() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("jobs"), "17 0-3,5\n18 4\nnot a job line\n").expect("write");
        let jobs = submitted_jobs(dir.path());
        assert_eq!(jobs, [("17".to_string(), vec![0, 1, 2, 3, 5]), ("18".to_string(), vec![4])]);
    }

    /// Writes each (job, indices) as `mtl run --executor slurm` does and reads the file back.
    fn check_round_trip(jobs: &[(&str, &[usize])]) {
        let text: String = jobs.iter().map(|(job, indices)| jobs_line(job, indices)).collect();
        let expected: Vec<(String, Vec<usize>)> =
            jobs.iter().map(|(job, indices)| (job.to_string(), indices.to_vec())).collect();
        assert_eq!(parse_jobs(&text), expected, "jobs file {text:?}");
    }

    #[test]
    fn the_jobs_file_reads_back_what_was_written() {
        check_round_trip(&[]);
        check_round_trip(&[("17", &[0, 1, 2, 3, 5, 7, 8])]);
        check_round_trip(&[("17", &[4]), ("18", &[0, 2, 4, 6]), ("19", &[10, 11, 12, 100])]);
        // A job that retried nothing still has its line (sbatch is never called with no index).
        check_round_trip(&[("5", &[])]);
    }

    #[test]
    fn the_jobs_file_lines_are_hand_written_cases() {
        assert_eq!(jobs_line("123", &[0, 1, 2, 5]), "123 0-2,5\n");
        assert_eq!(
            parse_jobs("123 0-2,5\n124 x,7,3-a\n"),
            [("123".to_string(), vec![0, 1, 2, 5]), ("124".to_string(), vec![7])]
        );
        assert_eq!(parse_jobs("abc 1\n12\n"), []);
    }

    #[test]
    fn slurm_states_are_queued_alive_or_ended() {
        let cases = [
            ("PENDING", SlurmPhase::Queued),
            ("REQUEUED", SlurmPhase::Queued),
            ("REQUEUE_HOLD", SlurmPhase::Queued),
            ("REQUEUE_FED", SlurmPhase::Queued),
            ("RESV_DEL_HOLD", SlurmPhase::Queued),
            ("RUNNING", SlurmPhase::Alive),
            ("COMPLETING", SlurmPhase::Alive),
            ("CONFIGURING", SlurmPhase::Alive),
            ("SUSPENDED", SlurmPhase::Alive),
            ("STOPPED", SlurmPhase::Alive),
            ("RESIZING", SlurmPhase::Alive),
            ("SIGNALING", SlurmPhase::Alive),
            ("STAGE_OUT", SlurmPhase::Alive),
            ("COMPLETED", SlurmPhase::Ended),
            ("FAILED", SlurmPhase::Ended),
            ("CANCELLED", SlurmPhase::Ended),
            ("TIMEOUT", SlurmPhase::Ended),
            ("NODE_FAIL", SlurmPhase::Ended),
            ("OUT_OF_MEMORY", SlurmPhase::Ended),
            ("PREEMPTED", SlurmPhase::Ended),
            ("BOOT_FAIL", SlurmPhase::Ended),
            ("DEADLINE", SlurmPhase::Ended),
            // squeue prints upper case; anything else is not a state it knows.
            ("pending", SlurmPhase::Ended),
        ];
        for (state, phase) in cases {
            assert_eq!(slurm_phase(state), phase, "{state}");
        }
    }

    #[test]
    fn squeue_gives_each_index_the_state_of_its_newest_job() {
        let stdout = "17 0 COMPLETED\n17 1 FAILED\n18 1 PENDING\n99 2 RUNNING\n17 x RUNNING\nbad\n18 3 RUNNING\n";
        let states = parse_squeue(stdout, &["17", "18"]);
        let expected: BTreeMap<usize, String> =
            [(0, "COMPLETED"), (1, "PENDING"), (3, "RUNNING")].map(|(i, s)| (i, s.to_string())).into();
        assert_eq!(states, expected);
        // The older job's line after the newer one's does not win.
        let states = parse_squeue("18 1 PENDING\n17 1 FAILED\n", &["17", "18"]);
        assert_eq!(states.get(&1).map(String::as_str), Some("PENDING"));
    }
}
