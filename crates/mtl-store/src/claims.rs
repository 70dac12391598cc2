//! Claims: how several processes share one sweep so that no trial is trained twice.
//! [`Store::claim_run`] takes a trial in one `IMMEDIATE` transaction only if no live
//! process has it; the owner's heartbeat goes with each epoch ([`heartbeat`]), and a
//! `running` row whose process is gone is stale ([`OwnedRun::stale_because`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::process::process_alive;
use crate::rows::start_run;
use crate::{now, sqlite_err, ExperimentId, NewRun, Owner, Result, RunId, RunStatus, Store, StoreError};

/// How [`Store::claim_run`] decides that a trial is free.
#[derive(Clone, Debug)]
pub struct ClaimPolicy {
    /// The claiming process.
    pub owner: Owner,
    /// A `running` run whose owner cannot be checked (another host) is taken for dead
    /// after this long without a heartbeat.
    pub stale_after: Duration,
    /// Failed or interrupted runs that ended at or after this time (RFC 3339, see
    /// [`now_timestamp`](crate::now_timestamp)) were tried by a process of the same wave of sweeps: left as they are.
    pub retry_ended_before: String,
}

/// The answer of [`Store::claim_run`].
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// The trial is this process's to train: a new row, or its old one reset.
    Claimed {
        /// Its run.
        run: RunId,
        /// 1 for the first training, 2 for the second, …
        attempt: u32,
        /// Why an earlier attempt left it `running` though its process is gone (it was
        /// marked interrupted first), if that happened.
        recovered: Option<String>,
    },
    /// Already done.
    Done,
    /// Pruned by the sweep's rule: it ends there, as done.
    Pruned,
    /// A live process trains it.
    Running {
        /// `host:pid`.
        owner: String,
    },
    /// It failed or was interrupted since [`ClaimPolicy::retry_ended_before`].
    Tried {
        /// `Failed` or `Interrupted`.
        status: RunStatus,
    },
    /// A search's proposal was made from an older state: another process took its index first
    /// ([`Store::claim_proposed_run`]); ask the sampler again.
    Stale,
    /// A search's budget of trials is spent.
    Spent,
}

/// A trial of an adaptive search's proposal ([`Store::claim_proposed_run`]).
#[derive(Clone, Copy, Debug)]
pub struct Proposal<'a> {
    /// The proposal's index: proposals are numbered 0, 1, … in the order they were first claimed.
    pub index: u64,
    /// The proposal's point, as stored in [`Proposal::POINT_PARAM`].
    pub point: &'a str,
    /// The search's budget: at most this many runs carry [`Proposal::PARAM`].
    pub budget: u64,
}

impl Proposal<'_> {
    /// The run param that holds a search trial's proposal index.
    pub const PARAM: &'static str = "search_index";
    /// The run param that holds a search trial's point.
    pub const POINT_PARAM: &'static str = "search_point";
}

/// A `running` run whose process is gone, as [`Store::interrupt_stale_runs`] found it.
#[derive(Clone, Debug, PartialEq)]
pub struct StaleRun {
    /// The run.
    pub run: RunId,
    /// Its trial.
    pub trial_key: String,
    /// Why it is taken for dead, e.g. "its process node7:4242 has ended".
    pub reason: String,
}

impl Store {
    /// Claims a trial for `policy.owner`, in one transaction: it is taken if it has no
    /// run yet, or its run failed or was interrupted (before `policy.retry_ended_before`),
    /// or its run is `running` but its process is gone (an owner on this host whose pid
    /// is dead, or no heartbeat for `policy.stale_after`); such a run is marked
    /// interrupted and then reset. A taken trial's row is reset as by [`Store::begin_run`],
    /// with the owner, a heartbeat and one more attempt.
    pub fn claim_run(&mut self, new: &NewRun, policy: &ClaimPolicy) -> Result<Claim> {
        self.claim(new, policy, None)
    }

    /// [`Store::claim_run`] for a trial of an adaptive search, in the same transaction as
    /// the search's checks: a trial with no row yet is taken only if fewer than
    /// `proposal.budget` runs of the experiment carry [`Proposal::PARAM`] ([`Claim::Spent`]
    /// otherwise), and only if its index is new with exactly `proposal.index` indices taken
    /// (the highest is `index − 1`), or its index is taken by a run of the same point
    /// ([`Claim::Stale`] otherwise: another process proposed from another state first). So
    /// several processes share one numbering, one point per index and one budget. `new.params`
    /// must hold the index as [`Proposal::PARAM`] and the point as [`Proposal::POINT_PARAM`].
    pub fn claim_proposed_run(&mut self, new: &NewRun, policy: &ClaimPolicy, proposal: Proposal) -> Result<Claim> {
        self.claim(new, policy, Some(proposal))
    }

    fn claim(&mut self, new: &NewRun, policy: &ClaimPolicy, proposal: Option<Proposal>) -> Result<Claim> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let existing = tx
            .query_row(
                &format!("SELECT {OWNED_RUN_COLUMNS} FROM runs WHERE experiment_id = ?1 AND trial_key = ?2"),
                params![new.experiment.0, new.trial_key],
                OwnedRun::from_row,
            )
            .optional()
            .map_err(err)?;
        if let (Some(proposal), None) = (proposal, &existing) {
            let (next, trials, known): (i64, i64, bool) = tx
                .query_row(
                    "SELECT CAST(COALESCE(MAX(p.num) + 1, 0) AS INTEGER), COUNT(*), COALESCE(MAX(p.num = ?3), 0) FROM params p
                     JOIN runs r ON r.id = p.run_id WHERE r.experiment_id = ?1 AND p.key = ?2",
                    params![new.experiment.0, Proposal::PARAM, proposal.index as f64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(err)?;
            if trials as u64 >= proposal.budget {
                return Ok(Claim::Spent);
            }
            let same_point: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM params i JOIN params p ON p.run_id = i.run_id AND p.key = ?3
                     JOIN runs r ON r.id = i.run_id
                     WHERE r.experiment_id = ?1 AND i.key = ?2 AND i.num = ?4 AND p.text = ?5)",
                    params![
                        new.experiment.0,
                        Proposal::PARAM,
                        Proposal::POINT_PARAM,
                        proposal.index as f64,
                        proposal.point
                    ],
                    |r| r.get(0),
                )
                .map_err(err)?;
            if (known && !same_point) || (!known && next as u64 != proposal.index) {
                return Ok(Claim::Stale);
            }
        }
        let mut recovered = None;
        if let Some(row) = &existing {
            match row.status {
                RunStatus::Done => return Ok(Claim::Done),
                RunStatus::Pruned => return Ok(Claim::Pruned),
                RunStatus::Running => match row.stale_because(policy) {
                    None => return Ok(Claim::Running { owner: row.owner_text() }),
                    Some(reason) => {
                        row.mark_interrupted(&tx, &reason).map_err(err)?;
                        recovered = Some(reason);
                    }
                },
                RunStatus::Failed | RunStatus::Interrupted => {
                    let ended_since = row.ended_at.as_deref().is_some_and(|t| *t >= *policy.retry_ended_before);
                    if ended_since {
                        return Ok(Claim::Tried { status: row.status });
                    }
                }
            }
        }
        let (run, attempt) = start_run(&tx, existing.map(|row| row.id), new, Some(&policy.owner)).map_err(err)?;
        tx.commit().map_err(err)?;
        self.claimed.insert(run, policy.owner.token.clone());
        Ok(Claim::Claimed { run, attempt, recovered })
    }

    /// Marks every `running` run of `experiment` whose process is gone (see
    /// [`Store::claim_run`]) as interrupted, in one transaction, ended at its last heartbeat.
    pub fn interrupt_stale_runs(&mut self, experiment: ExperimentId, policy: &ClaimPolicy) -> Result<Vec<StaleRun>> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let running: Vec<(OwnedRun, String)> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {OWNED_RUN_COLUMNS}, trial_key FROM runs WHERE experiment_id = ?1 AND status = 'running'"
                ))
                .map_err(err)?;
            let rows = stmt.query_map([experiment.0], |r| Ok((OwnedRun::from_row(r)?, r.get(9)?))).map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        let mut stale = Vec::new();
        for (row, trial_key) in running {
            if let Some(reason) = row.stale_because(policy) {
                row.mark_interrupted(&tx, &reason).map_err(err)?;
                stale.push(StaleRun { run: row.id, trial_key, reason });
            }
        }
        tx.commit().map_err(err)?;
        Ok(stale)
    }
}

/// Sets the heartbeat of `run`, checking that it still has the owner `token` (none for
/// runs started by [`Store::begin_run`]).
pub(crate) fn heartbeat(tx: &Connection, path: &Path, run: RunId, token: Option<&String>) -> Result<()> {
    let err = |e| sqlite_err(path, e);
    let updated = tx
        .execute("UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1 AND owner_token IS ?3", params![run.0, now(), token])
        .map_err(err)?;
    if updated == 0 {
        let owner: Option<String> = tx
            .query_row("SELECT owner_host || ':' || owner_pid FROM runs WHERE id = ?1", [run.0], |r| r.get(0))
            .optional()
            .map_err(err)?
            .flatten();
        return Err(StoreError::ClaimLost {
            path: path.to_owned(),
            run: run.0,
            owner: owner.unwrap_or_else(|| "none".into()),
        });
    }
    Ok(())
}

/// The columns [`OwnedRun::from_row`] reads, in its order.
const OWNED_RUN_COLUMNS: &str =
    "id, status, owner_host, owner_pid, owner_token, heartbeat_at, started_at, ended_at, attempts";

/// A run's row as far as claiming it is concerned.
struct OwnedRun {
    id: RunId,
    status: RunStatus,
    owner_host: Option<String>,
    owner_pid: Option<u32>,
    owner_token: Option<String>,
    heartbeat_at: Option<String>,
    started_at: Option<String>,
    ended_at: Option<String>,
}

impl OwnedRun {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<OwnedRun> {
        Ok(OwnedRun {
            id: RunId(r.get(0)?),
            status: RunStatus::parse(&r.get::<_, String>(1)?),
            owner_host: r.get(2)?,
            owner_pid: r.get(3)?,
            owner_token: r.get(4)?,
            heartbeat_at: r.get(5)?,
            started_at: r.get(6)?,
            ended_at: r.get(7)?,
        })
    }

    fn owner_text(&self) -> String {
        match (&self.owner_host, self.owner_pid) {
            (Some(host), Some(pid)) => format!("{host}:{pid}"),
            _ => "an unknown process".into(),
        }
    }

    /// Why this `running` run is taken for dead under `policy`, if it is.
    fn stale_because(&self, policy: &ClaimPolicy) -> Option<String> {
        let (Some(host), Some(pid)) = (&self.owner_host, self.owner_pid) else {
            return Some("it records no owner (started by an older mtl-lab)".into());
        };
        let me = &policy.owner;
        if *host == me.host {
            if self.owner_token.as_deref() == Some(me.token.as_str()) {
                return None;
            }
            // The same pid with another token: an earlier process that had this process's pid.
            if pid == me.pid || !process_alive(pid) {
                return Some(format!("its process {host}:{pid} has ended"));
            }
        }
        let last = self.heartbeat_at.as_deref().or(self.started_at.as_deref());
        let last_time = last.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let silent = last_time.map(|t| chrono::Utc::now().signed_duration_since(t));
        match (last, silent) {
            (Some(last), Some(silent)) if silent.to_std().is_ok_and(|s| s > policy.stale_after) => Some(format!(
                "no heartbeat from its process {host}:{pid} since {last} (more than {} s)",
                policy.stale_after.as_secs()
            )),
            (Some(_), Some(_)) => None,
            _ => Some(format!("no heartbeat recorded by its process {host}:{pid}")),
        }
    }

    /// Marks the run interrupted, ended at its last sign of life.
    fn mark_interrupted(&self, tx: &Connection, reason: &str) -> rusqlite::Result<()> {
        let ended = self.heartbeat_at.clone().or(self.started_at.clone()).unwrap_or_else(now);
        tx.execute(
            "UPDATE runs SET status = 'interrupted', ended_at = ?2, error = ?3 WHERE id = ?1",
            params![self.id.0, ended, format!("interrupted: {reason}")],
        )?;
        Ok(())
    }
}
