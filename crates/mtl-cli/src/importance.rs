//! `mtl importance`: which settings matter — per setting, the share of the variance of
//! Δm% (and of each task's Δm% metrics) across the seed groups of `mtl compare` that it
//! explains on its own (see `mtl_report::importance`).

use std::process::ExitCode;

use mtl_report::compare::compare_against;
use mtl_report::importance::{importance_spec, Ranking};

use crate::ls::Selection;
use crate::output::{self, Cell, Format};

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mtl importance\n  mtl importance --experiment weighting --where \"lr < 0.01\"\n  \
mtl importance --format csv\n\n\
Each setting's share is its main effect (η²): the variance of the per-value means of the groups over the \
variance of the groups, each group being the mean over its seeds (the groups of `mtl compare`: runs that \
differ only in the seed). On a full grid this is the exact main-effect share of a functional ANOVA; where \
settings vary together (a searched sample, λ only for static weights) a share also holds what it shares \
with them. A number with more than 8 values is cut into quartiles."
)]
pub struct ImportanceArgs {
    #[command(flatten)]
    selection: Selection,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn importance_command(args: ImportanceArgs) -> anyhow::Result<ExitCode> {
    let (store, runs, known) = args.selection.select()?;
    let all_runs = match args.selection.filter {
        Some(_) => Some(args.selection.all_runs(&store)?),
        None => None,
    };
    let comparison = compare_against(&runs, all_runs.as_deref().unwrap_or(&runs), &importance_spec(&known));
    let experiments: std::collections::BTreeSet<&str> =
        comparison.rows.iter().filter(|r| !r.baseline).map(|r| r.experiment.as_str()).collect();
    if experiments.len() > 1 {
        let names: Vec<&str> = experiments.into_iter().collect();
        return Err(crate::BadInput(format!(
            "runs of {} experiments ({}): name one with --experiment",
            names.len(),
            names.join(", ")
        ))
        .into());
    }
    let ranking = Ranking::of(&comparison);
    let header: Vec<String> =
        ["setting".to_string(), "values".to_string()].into_iter().chain(ranking.objectives.clone()).collect();
    let rows: Vec<Vec<Cell>> = ranking
        .settings
        .iter()
        .map(|s| {
            [Cell::Text(s.setting.clone()), Cell::Int(s.levels as i64)]
                .into_iter()
                .chain(s.shares.iter().map(|share| share.map_or(Cell::Missing, Cell::Metric)))
                .collect()
        })
        .collect();
    match args.format {
        Format::Table => {
            if !ranking.has_something() {
                outln!(
                    "fewer than two multi-task groups, or no setting that differs between them with an objective \
                     that varies: nothing to rank"
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let groups = ranking.n_groups;
            outln!("share of the variance across {groups} seed groups that each setting explains (its main effect, 0 to 1):")?;
            out!("{}", output::cells_table(&header, &rows))?;
        }
        Format::Csv => out!("{}", output::cells_csv(&header, &rows))?,
        Format::Json => outln!("{}", serde_json::to_string_pretty(&output::cells_json(&header, &rows))?)?,
    }
    Ok(ExitCode::SUCCESS)
}
