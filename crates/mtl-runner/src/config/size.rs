//! The size of a sweep, counted from the file's lists before anything is expanded:
//! a 6 KB file can ask for 10^7 trials, and building them first would take gigabytes.

use super::entries::{ExperimentFile, LambdaEntry, OneOrMany, StrategyEntries};

/// The most trials one plan may have, whatever `--max-trials` says: about 1.3 KB of
/// memory each once expanded, so the plan itself stays under about 130 MB.
pub const MAX_PLAN_TRIALS: u64 = 100_000;

/// How many settings each axis of the sweep has, and the trials they make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSize {
    /// (axis, number of values), in the order of the file: strategy (with its
    /// hyperparameter combinations), weighting (likewise), lambda, lr, init (when it is a
    /// list of more than one), seeds, then each other swept setting (by its dotted path).
    pub axes: Vec<(String, u64)>,
    /// The trials of the plan (single-task trials have no weighting and no λ).
    pub trials: u64,
}

impl SweepSize {
    /// `strategy 5 × weighting 4 × lambda 500 × lr 10 × seeds 100`.
    pub fn describe(&self) -> String {
        self.axes.iter().map(|(axis, n)| format!("{axis} {n}")).collect::<Vec<_>>().join(" × ")
    }
}

/// Saturating product of list lengths (a missing list counts 1).
fn product(lengths: impl IntoIterator<Item = usize>) -> u64 {
    lengths.into_iter().fold(1u64, |total, n| total.saturating_mul(n as u64))
}

fn len<T>(given: &Option<OneOrMany<T>>) -> usize {
    match given {
        None | Some(OneOrMany::One(_)) => 1,
        Some(OneOrMany::Many(values)) => values.len(),
    }
}

/// Hyperparameter combinations `[strategy.<name>]` gives `name` (1 for a strategy without any).
pub(super) fn strategy_combinations(entries: &StrategyEntries, name: &str) -> u64 {
    match name {
        "soft" => entries.soft.as_ref().map_or(1, |e| product([len(&e.weight)])),
        "cross-stitch" => entries.cross_stitch.as_ref().map_or(1, |e| product([len(&e.init)])),
        "mmoe" => entries.mmoe.as_ref().map_or(1, |e| product([len(&e.experts)])),
        "dselect-k" => entries.dselect_k.as_ref().map_or(1, |e| product([len(&e.experts), len(&e.k), len(&e.gamma)])),
        "cgc" => entries.cgc.as_ref().map_or(1, |e| product([len(&e.experts), len(&e.task_experts)])),
        "ple" => entries.ple.as_ref().map_or(1, |e| product([len(&e.experts), len(&e.task_experts), len(&e.levels)])),
        "ltb" => entries.ltb.as_ref().map_or(1, |e| product([len(&e.temperature)])),
        _ => 1,
    }
}

/// Hyperparameter combinations `[weighting.<name>]` gives `name`.
pub(super) fn weighting_combinations(file: &ExperimentFile, name: &str) -> u64 {
    file.weighting.methods.get(name).map_or(1, |given| product(given.values().map(|v| v.values().len())))
}

/// The static weight vectors `sweep.lambda` asks for; `n_tasks` for the simplex grid.
pub(super) fn weight_vectors(entry: &LambdaEntry, n_tasks: usize) -> u64 {
    let whole = |value: Option<&toml::Value>| match value {
        Some(toml::Value::Integer(n)) => (*n).max(0) as u64,
        Some(toml::Value::Float(f)) if f.is_finite() && *f >= 0.0 => *f as u64,
        _ => 1,
    };
    match entry {
        LambdaEntry::List(lambdas) => lambdas.len() as u64,
        LambdaEntry::Space(table) if table.contains_key("simplex") => {
            // C(K + n − 1, n − 1); u64::MAX when it does not fit.
            let steps = whole(table.get("simplex")) as u128;
            (1..n_tasks as u128)
                .try_fold(1u128, |c, i| c.checked_mul(steps + i).map(|c| c / i))
                .and_then(|c| u64::try_from(c).ok())
                .unwrap_or(u64::MAX)
        }
        LambdaEntry::Space(table) if table.contains_key("random") => whole(table.get("random")),
        LambdaEntry::Space(table) => product(table.values().map(|v| match v {
            toml::Value::Array(items) => items.len(),
            _ => 1,
        })),
    }
}

/// Counts the trials `file` plans, from the lengths of its lists alone.
pub(super) fn sweep_size(file: &ExperimentFile) -> SweepSize {
    let sweep = &file.sweep;
    let (single, shared): (Vec<&String>, Vec<&String>) = sweep.strategy.iter().partition(|s| *s == "single-task");
    let sharings = shared.iter().fold(0u64, |n, s| n.saturating_add(strategy_combinations(&file.strategy, s)));
    let statics = sweep.weighting.iter().filter(|w| *w == "static").count() as u64;
    let others = sweep
        .weighting
        .iter()
        .filter(|w| *w != "static")
        .fold(0u64, |n, w| n.saturating_add(weighting_combinations(file, w)));
    let lambdas = weight_vectors(&sweep.lambda, file.tasks.len());
    let lrs = sweep.lr.len() as u64;
    let seeds = file.seeds.len() as u64;
    let inits = file.model.init.as_ref().map_or(1, |entry| entry.len()) as u64;
    let per_sharing = statics.saturating_mul(lambdas).saturating_add(others);
    let settings = super::setting_sweep::flatten(&sweep.settings);
    let trials = (single.len() as u64)
        .saturating_add(sharings.saturating_mul(per_sharing))
        .saturating_mul(lrs)
        .saturating_mul(inits)
        .saturating_mul(seeds)
        .saturating_mul(super::setting_sweep::variant_count(&settings));
    let strategies = (single.len() as u64).saturating_add(sharings);
    let weightings = statics.saturating_add(others);
    let mut axes: Vec<(String, u64)> =
        [("strategy", strategies), ("weighting", weightings), ("lambda", lambdas), ("lr", lrs), ("seeds", seeds)]
            .map(|(axis, n)| (axis.to_string(), n))
            .to_vec();
    if inits != 1 {
        axes.insert(4, ("init".to_string(), inits));
    }
    axes.extend(settings.into_iter().map(|(path, values)| (path, values.len() as u64)));
    SweepSize { axes, trials }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(text: &str) -> SweepSize {
        sweep_size(&toml::from_str(text).expect("valid file"))
    }

    const TASKS: &str = "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = { format = \"synthetic-shapes\" }\n\
                         [[tasks]]\nname = \"b\"\ndata = { format = \"synthetic-reviews\" }\n";

    #[test]
    fn counts_what_the_expansion_builds() {
        // Single-task: one trial per lr and seed; each shared strategy: static × λ + other methods.
        let text = format!(
            "seeds = [0, 1, 2]\n{TASKS}[sweep]\nstrategy = [\"single-task\", \"hard\", \"mmoe\"]\n\
             weighting = [\"static\", \"uncertainty\", \"cagrad\"]\nlambda = [0.5, 1, 2]\nlr = [0.1, 0.01]\n\
             [strategy.mmoe]\nexperts = [2, 3]\n[weighting.cagrad]\nc = [0.2, 0.5]\n"
        );
        let size = size(&text);
        // sharings: hard 1 + mmoe 2 = 3; per sharing: 1 × 3 + (1 + 2) = 6; (1 + 3 × 6) × 2 × 3 = 114.
        assert_eq!(size.trials, 114);
        assert_eq!(size.describe(), "strategy 4 × weighting 4 × lambda 3 × lr 2 × seeds 3");
        let plan = crate::config::parse_str(&text, "x.toml".as_ref()).expect("valid");
        assert_eq!(plan.trials.len() as u64, size.trials);
    }

    #[test]
    fn counts_the_hyperparameter_lists_of_dselect_k_and_ltb() {
        // dselect-k: 2 experts × 2 k × 1 gamma = 4; ltb: 3 temperatures; hard 1: 8 trials.
        let text = format!(
            "{TASKS}[sweep]\nstrategy = [\"hard\", \"dselect-k\", \"ltb\"]\n\
             [strategy.dselect-k]\nexperts = [2, 4]\nk = [1, 2]\ngamma = 0.5\n[strategy.ltb]\ntemperature = [0.5, 1, 2]\n"
        );
        let size = size(&text);
        assert_eq!(size.trials, 8);
        let plan = crate::config::parse_str(&text, "x.toml".as_ref()).expect("valid");
        assert_eq!(plan.trials.len() as u64, size.trials);
    }

    #[test]
    fn lambda_spaces_count_without_building() {
        assert_eq!(weight_vectors(&LambdaEntry::List(vec![1.0, 2.0]), 2), 2);
        let table = |text: &str| LambdaEntry::Space(toml::from_str(text).expect("table"));
        assert_eq!(weight_vectors(&table("simplex = 4"), 3), 15); // C(6, 2)
        assert_eq!(weight_vectors(&table("random = 7"), 3), 7);
        assert_eq!(weight_vectors(&table("a = [1, 2, 3]\nb = [1, 2]"), 2), 6);
        assert_eq!(weight_vectors(&table("simplex = 1000"), 40), u64::MAX);
    }

    #[test]
    fn huge_products_saturate() {
        let seeds: Vec<String> = (0..1000).map(|s| s.to_string()).collect();
        let lambdas: Vec<String> = (0..1000).map(|l| format!("{l}.5")).collect();
        let text = format!(
            "seeds = [{}]\n{TASKS}[sweep]\nlambda = [{}]\nlr = [{}]\n",
            seeds.join(", "),
            lambdas.join(", "),
            lambdas.join(", ")
        );
        assert_eq!(size(&text).trials, 1_000_000_000);
    }
}
