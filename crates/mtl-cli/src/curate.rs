//! Curating runs: `mtl tag`, `mtl note`, `mtl rm` (archive, or `--purge` to delete) and
//! `mtl restore`. Runs are named as `mtl show` names them, or chosen with `--where`; every
//! command says how many runs it changed.

use std::path::PathBuf;
use std::process::ExitCode;

use mtl_store::filter::Filter;
use mtl_store::{RunId, RunRecord, Store};

use crate::BadInput;

/// Archiving more runs than this at once asks first (deleting always asks).
const ARCHIVE_WITHOUT_ASKING: usize = 10;

/// The runs a curation command acts on: named ones, or those matching a filter.
#[derive(clap::Args)]
pub struct Runs {
    /// Runs: ids (as `mtl ls` lists them) or trial keys (a unique prefix of 6 or more characters).
    #[arg(value_name = "RUN")]
    runs: Vec<String>,
    /// The runs matching this filter (keys as in `mtl ls --where`, archived runs included).
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// The results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
}

#[derive(clap::Args)]
pub struct TagArgs {
    /// Runs, then KEY=VALUE (e.g. `mtl tag 3 7 keep=yes`); filter with --where "tag.keep = 'yes'".
    #[arg(value_name = "RUN… KEY=VALUE", required = true)]
    words: Vec<String>,
    /// Tag the runs matching this filter (then only KEY=VALUE is given).
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// The results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
}

#[derive(clap::Args)]
pub struct NoteArgs {
    /// The run: its id or a unique trial-key prefix.
    run: String,
    /// The note (replaces any earlier one; "" removes it).
    text: String,
    /// The results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
}

#[derive(clap::Args)]
pub struct RmArgs {
    #[command(flatten)]
    runs: Runs,
    /// Delete the runs and all their rows for good instead of archiving them.
    #[arg(long)]
    purge: bool,
    /// Do not ask (needed where stdin is not a terminal, to purge or to archive many runs).
    #[arg(long)]
    yes: bool,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    runs: Runs,
}

pub fn tag(args: TagArgs) -> anyhow::Result<ExitCode> {
    let Some((assignment, named)) = args.words.split_last() else { unreachable!("clap requires one word") };
    let Some((key, value)) = assignment.split_once('=').filter(|(k, _)| valid_tag_key(k)) else {
        return Err(BadInput(format!(
            "{assignment:?}: the last word must be KEY=VALUE, KEY made of letters, digits, '_' and '-'"
        ))
        .into());
    };
    let runs = Runs { runs: named.to_vec(), filter: args.filter, db: args.db };
    let (mut store, chosen) = runs.resolve()?;
    let ids: Vec<RunId> = chosen.iter().map(|r| r.id).collect();
    let changed = store.tag_runs(&ids, key, value)?;
    outln!("tagged {changed} run(s) {key}={value}")?;
    Ok(ExitCode::SUCCESS)
}

pub fn note(args: NoteArgs) -> anyhow::Result<ExitCode> {
    let runs = Runs { runs: vec![args.run], filter: None, db: args.db };
    let (mut store, chosen) = runs.resolve()?;
    let changed = store.set_note(chosen[0].id, &args.text)?;
    let what = if args.text.is_empty() { "removed the note of" } else { "noted" };
    outln!("{what} {changed} run(s) (run {})", chosen[0].id.0)?;
    Ok(ExitCode::SUCCESS)
}

pub fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    let (mut store, chosen) = args.runs.resolve()?;
    let ids: Vec<RunId> = chosen.iter().map(|r| r.id).collect();
    if args.purge {
        confirm(&format!("Delete {} run(s) and all their rows for good?", ids.len()), args.yes)?;
        let deleted = store.purge_runs(&ids)?;
        outln!("deleted {deleted} run(s)")?;
    } else {
        if ids.len() > ARCHIVE_WITHOUT_ASKING {
            confirm(&format!("Archive {} runs?", ids.len()), args.yes)?;
        }
        let archived = store.archive_runs(&ids)?;
        let already = ids.len() - archived;
        let note = if already > 0 { format!(" ({already} already archived)") } else { String::new() };
        outln!("archived {archived} run(s){note}; `mtl restore` brings them back, `mtl rm --purge` deletes them")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let (mut store, chosen) = args.runs.resolve()?;
    let ids: Vec<RunId> = chosen.iter().map(|r| r.id).collect();
    let restored = store.restore_runs(&ids)?;
    let not_archived = ids.len() - restored;
    let note = if not_archived > 0 { format!(" ({not_archived} were not archived)") } else { String::new() };
    outln!("restored {restored} run(s){note}")?;
    Ok(ExitCode::SUCCESS)
}

impl Runs {
    /// Opens the database and finds the runs, archived ones included: every named run must
    /// exist (else bad input naming it, before anything is written).
    fn resolve(&self) -> anyhow::Result<(Store, Vec<RunRecord>)> {
        if self.runs.is_empty() == self.filter.is_none() {
            return Err(BadInput("name the runs or give --where, one of the two".into()).into());
        }
        let store = Store::open_existing(&self.db)?;
        let all = store.runs_including_archived(None)?;
        let chosen = match &self.filter {
            Some(text) => select(&all, text)?,
            None => {
                let mut chosen: Vec<RunRecord> = Vec::new();
                for wanted in &self.runs {
                    let run = crate::show::find_in(&all, wanted, &self.db)?;
                    if !chosen.iter().any(|r| r.id == run.id) {
                        chosen.push(run);
                    }
                }
                chosen
            }
        };
        Ok((store, chosen))
    }
}

fn select(all: &[RunRecord], text: &str) -> anyhow::Result<Vec<RunRecord>> {
    let filter = Filter::parse(text).map_err(|e| BadInput(format!("--where: {e}")))?;
    let known = mtl_store::listing::known_keys(all);
    crate::ls::check_keys(text, filter.keys().iter().map(|(k, at)| (k.as_str(), *at)), &known, "--where")?;
    Ok(all.iter().filter(|run| filter.matches(run)).cloned().collect())
}

fn valid_tag_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Asks `question` at a terminal; elsewhere only `--yes` goes ahead (bad input otherwise).
fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(BadInput(format!("{question} stdin is not a terminal: pass --yes to go ahead")).into());
    }
    crate::terminal::write_stderr(format_args!("{question} [y/N] "));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        return Err(BadInput("nothing changed".into()).into());
    }
    Ok(())
}
