//! `[prune]`: the sweep's rule for stopping poor trials early, validated into
//! [`crate::prune::PruneSpec`]. Each message names the key it is about.

use serde::Deserialize;

use super::{Checker, ConfigError, Key, Seg};
use crate::prune::{PruneMetric, PruneRule, PruneSpec};

/// `[prune]`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct PruneEntry {
    rule: String,
    metric: Option<String>,
    grace: Option<u32>,
    reduction: Option<u32>,
    min_trials: Option<usize>,
}

impl Checker<'_> {
    /// The validated rule; `tasks` are the experiment's task names.
    pub(super) fn prune(
        &self,
        entry: Option<&PruneEntry>,
        epochs: u32,
        tasks: &[String],
    ) -> Result<Option<PruneSpec>, ConfigError> {
        let Some(entry) = entry else { return Ok(None) };
        let at = |key: &'static str| [Key("prune"), Key(key)];
        let Some(rule) = PruneRule::parse(&entry.rule) else {
            let names = PruneRule::NAMES.map(|n| format!("\"{n}\"")).join(", ");
            return self.fail(&at("rule"), format!("unknown rule \"{}\"; expected one of {names}", entry.rule));
        };
        let metric = self.compared_metric(&at("metric"), entry.metric.as_deref().unwrap_or("score"), tasks)?;
        let grace = entry.grace.unwrap_or(1);
        if grace == 0 || grace >= epochs {
            return self.fail(
                &at("grace"),
                format!("grace = {grace} must be at least 1 and below epochs = {epochs}, or no trial can be pruned"),
            );
        }
        let reduction = match (rule, entry.reduction) {
            (PruneRule::Median, Some(_)) => {
                return self.fail(&at("reduction"), "reduction applies to rule = \"asha\" and \"hyperband\"")
            }
            (_, Some(r)) if !(2..=100).contains(&r) => {
                return self.fail(&at("reduction"), format!("{r} is out of range; expected 2 to 100"))
            }
            (_, r) => r.unwrap_or(3),
        };
        let min_trials = entry.min_trials.unwrap_or_else(|| rule.default_min_trials(reduction));
        if !(1..=100_000).contains(&min_trials) {
            return self.fail(&at("min_trials"), format!("{min_trials} is out of range; expected 1 to 100000"));
        }
        Ok(Some(PruneSpec { rule, metric, grace, reduction, min_trials }))
    }

    /// `"score"`, `"delta_m"` or `TASK.METRIC` (a task of `tasks`): what a rule or a
    /// search compares, read from the key at `at`.
    pub(super) fn compared_metric(&self, at: &[Seg], text: &str, tasks: &[String]) -> Result<PruneMetric, ConfigError> {
        match text {
            "score" => Ok(PruneMetric::Score),
            "delta_m" => Ok(PruneMetric::DeltaM),
            dotted => match dotted.split_once('.') {
                Some((task, metric)) if tasks.iter().any(|t| t == task) && !metric.is_empty() => {
                    Ok(PruneMetric::Task { task: task.into(), metric: metric.into() })
                }
                _ => self.fail(
                    at,
                    format!(
                        "unknown metric \"{dotted}\"; expected \"score\", \"delta_m\" or TASK.METRIC with a task of \
                         this experiment ({})",
                        tasks.join(", ")
                    ),
                ),
            },
        }
    }
}
