//! What a network is made of, before it is built: the tasks and their inputs
//! ([`TaskSpec`], [`InputSpec`]), the sharing strategy and its hyperparameters
//! ([`Strategy`], [`Sharing`], with their names and validation), the trunk
//! ([`TrunkSpec`], [`ImageStem`]) and the whole [`ModelSpec`].

use super::TrunkSpec;
use crate::init::InitScheme;

/// What a task's inputs look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// `channels × height × width` images, read row by row.
    Image {
        /// Channels (1 = grayscale).
        channels: usize,
        /// Rows: the sequence length.
        height: usize,
        /// Columns.
        width: usize,
    },
    /// Padded token id sequences.
    Text {
        /// Number of token ids, padding included.
        vocab_size: usize,
    },
    /// Table rows `[B, size + embedded.columns]`: numeric features (the MLP trunk's input),
    /// then category ids.
    Features {
        /// Numeric values per example, the category ids of `embedded` not counted.
        size: usize,
        /// Categorical columns at the end of each row, as ids into one embedding table
        /// (the feature stem looks them up and appends their embeddings).
        embedded: mtl_data::Embedded,
    },
    /// Molecular graphs padded to `max_nodes` atoms, `[B, max_nodes, node_features + 4 +
    /// max_nodes]` (features, presence, position, bonds: `mtl_data::graphs`).
    Graph {
        /// Features per atom.
        node_features: usize,
        /// Atoms per padded graph.
        max_nodes: usize,
    },
}

impl InputSpec {
    pub(super) fn modality(&self) -> &'static str {
        match self {
            InputSpec::Image { .. } => "image",
            InputSpec::Text { .. } => "text",
            InputSpec::Features { .. } => "features",
            InputSpec::Graph { .. } => "graph",
        }
    }
}

/// One task of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    /// Task name; names its head.
    pub name: String,
    /// Its inputs.
    pub input: InputSpec,
    /// Number of classes the head predicts.
    pub n_classes: usize,
}

/// The sharing strategies, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strategy {
    /// Independent networks, one per task: the baseline.
    SingleTask,
    /// One shared trunk, task-specific heads (Caruana 1993).
    Hard,
    /// A trunk per task, coupled by an L2 penalty on their differences (Duong et al. 2015).
    Soft,
    /// A trunk per task, mixed after each block by learned α (Misra et al. 2016).
    CrossStitch,
    /// Shared experts, a softmax gate per task (Ma et al. 2018).
    Mmoe,
    /// Shared experts, a DSelect-k gate per task: k soft single-expert selectors
    /// (Hazimeh et al. 2021).
    DSelectK,
    /// Shared and task-specific experts, a gate per task (Tang et al. 2020).
    Cgc,
    /// Stacked CGC levels (Tang et al. 2020).
    Ple,
    /// Per-task attention masks over a shared trunk (Liu et al. 2019).
    Mtan,
    /// A copy of each block per task; after each block every task's copy of the next picks its
    /// parent copy by Gumbel-softmax (Learning To Branch, Guo et al. 2020).
    Ltb,
}

impl Strategy {
    /// Every strategy, in documentation order.
    pub const ALL: [Strategy; 10] = [
        Strategy::SingleTask,
        Strategy::Hard,
        Strategy::Soft,
        Strategy::CrossStitch,
        Strategy::Mmoe,
        Strategy::DSelectK,
        Strategy::Cgc,
        Strategy::Ple,
        Strategy::Mtan,
        Strategy::Ltb,
    ];

    /// The name used in experiment files and the store.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SingleTask => "single-task",
            Strategy::Hard => "hard",
            Strategy::Soft => "soft",
            Strategy::CrossStitch => "cross-stitch",
            Strategy::Mmoe => "mmoe",
            Strategy::DSelectK => "dselect-k",
            Strategy::Cgc => "cgc",
            Strategy::Ple => "ple",
            Strategy::Mtan => "mtan",
            Strategy::Ltb => "ltb",
        }
    }

    /// Parses a name given by [`Strategy::name`].
    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A strategy with its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sharing {
    /// See [`Strategy::SingleTask`].
    SingleTask,
    /// See [`Strategy::Hard`].
    Hard,
    /// See [`Strategy::Soft`].
    Soft {
        /// Weight of the penalty `Σ_{t<u} Σ_params ‖θ_t − θ_u‖²` added to the loss.
        weight: f64,
    },
    /// See [`Strategy::CrossStitch`].
    CrossStitch {
        /// Initial α of a column with itself; the rest of each row is shared equally.
        init: f64,
    },
    /// See [`Strategy::Mmoe`].
    Mmoe {
        /// Number of experts.
        experts: usize,
    },
    /// See [`Strategy::DSelectK`].
    DSelectK {
        /// Number of experts (at least 2; any count, see `network::dselect` for counts that are
        /// not a power of two).
        experts: usize,
        /// k: the number of single-expert selectors each task's gate mixes.
        selectors: usize,
        /// γ: the width of the smooth-step's transition, `s(t)` is 0 below −γ/2 and 1 above γ/2.
        gamma: f64,
    },
    /// See [`Strategy::Cgc`].
    Cgc {
        /// Shared experts.
        experts: usize,
        /// Experts of each task.
        task_experts: usize,
    },
    /// See [`Strategy::Ple`].
    Ple {
        /// Shared experts per level.
        experts: usize,
        /// Experts of each task per level.
        task_experts: usize,
        /// Levels (1 to the trunk's block count, [`TrunkSpec::n_blocks`]): each of the first
        /// levels covers one trunk block, the last the rest.
        levels: usize,
    },
    /// See [`Strategy::Mtan`].
    Mtan,
    /// See [`Strategy::Ltb`].
    Ltb {
        /// τ₀: the Gumbel-softmax temperature of the first epoch; epoch e (from 1) trains at τ₀/√e.
        temperature: f64,
    },
}

impl Sharing {
    /// The strategy with its default hyperparameters.
    pub fn default_for(strategy: Strategy) -> Sharing {
        match strategy {
            Strategy::SingleTask => Sharing::SingleTask,
            Strategy::Hard => Sharing::Hard,
            Strategy::Soft => Sharing::Soft { weight: 0.01 },
            Strategy::CrossStitch => Sharing::CrossStitch { init: 0.9 },
            Strategy::Mmoe => Sharing::Mmoe { experts: 3 },
            // k = 2 selectors and γ = 1 (the official implementation's default γ); 4 experts, a
            // power of two, so that the default is the paper's gate with no padded codes.
            Strategy::DSelectK => Sharing::DSelectK { experts: 4, selectors: 2, gamma: 1.0 },
            Strategy::Cgc => Sharing::Cgc { experts: 2, task_experts: 1 },
            Strategy::Ple => Sharing::Ple { experts: 1, task_experts: 1, levels: 2 },
            Strategy::Mtan => Sharing::Mtan,
            Strategy::Ltb => Sharing::Ltb { temperature: 1.0 },
        }
    }

    /// Which strategy this is.
    pub fn strategy(&self) -> Strategy {
        match self {
            Sharing::SingleTask => Strategy::SingleTask,
            Sharing::Hard => Strategy::Hard,
            Sharing::Soft { .. } => Strategy::Soft,
            Sharing::CrossStitch { .. } => Strategy::CrossStitch,
            Sharing::Mmoe { .. } => Strategy::Mmoe,
            Sharing::DSelectK { .. } => Strategy::DSelectK,
            Sharing::Cgc { .. } => Strategy::Cgc,
            Sharing::Ple { .. } => Strategy::Ple,
            Sharing::Mtan => Strategy::Mtan,
            Sharing::Ltb { .. } => Strategy::Ltb,
        }
    }

    /// The hyperparameters by the names the store uses (`soft_weight`, `stitch_init`, `experts`, …).
    pub fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Sharing::SingleTask | Sharing::Hard | Sharing::Mtan => vec![],
            Sharing::Soft { weight } => vec![("soft_weight", weight)],
            Sharing::CrossStitch { init } => vec![("stitch_init", init)],
            Sharing::Mmoe { experts } => vec![("experts", experts as f64)],
            Sharing::DSelectK { experts, selectors, gamma } => {
                vec![("experts", experts as f64), ("dselect_k", selectors as f64), ("dselect_gamma", gamma)]
            }
            Sharing::Cgc { experts, task_experts } => {
                vec![("experts", experts as f64), ("task_experts", task_experts as f64)]
            }
            Sharing::Ple { experts, task_experts, levels } => {
                vec![("experts", experts as f64), ("task_experts", task_experts as f64), ("levels", levels as f64)]
            }
            Sharing::Ltb { temperature } => vec![("ltb_temperature", temperature)],
        }
    }

    /// The strategy name with its hyperparameters, e.g. `soft(soft_weight=0.01)`.
    pub fn label(&self) -> String {
        let hyperparameters = self.hyperparameters();
        if hyperparameters.is_empty() {
            return self.strategy().name().to_string();
        }
        let shown: Vec<String> = hyperparameters.iter().map(|(name, value)| format!("{name}={value}")).collect();
        format!("{}({})", self.strategy().name(), shown.join(", "))
    }

    /// Whether the hyperparameters are usable on any trunk ([`Sharing::validate_for`] checks them
    /// against one); the message says which is not.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match *self {
            Sharing::Soft { weight } if !(weight.is_finite() && weight >= 0.0) => {
                Err(format!("the soft-sharing weight must be a finite number ≥ 0, got {weight}"))
            }
            Sharing::CrossStitch { init } if !(0.0..=1.0).contains(&init) => {
                Err(format!("the cross-stitch init must be between 0 and 1, got {init}"))
            }
            Sharing::Mmoe { experts: 0 } => Err("mmoe needs at least 1 expert".into()),
            Sharing::DSelectK { experts: 0 | 1, .. } => Err("dselect-k needs at least 2 experts".into()),
            Sharing::DSelectK { selectors: 0, .. } => Err("dselect-k needs k ≥ 1 selectors".into()),
            Sharing::DSelectK { gamma, .. } if !(gamma.is_finite() && gamma > 0.0) => {
                Err(format!("the dselect-k gamma must be a finite number > 0, got {gamma}"))
            }
            Sharing::Ltb { temperature } if !(temperature.is_finite() && temperature > 0.0) => {
                Err(format!("the ltb temperature must be a finite number > 0, got {temperature}"))
            }
            Sharing::Cgc { experts: 0, task_experts: 0 } | Sharing::Ple { experts: 0, task_experts: 0, .. } => {
                Err("experts and task_experts cannot both be 0".into())
            }
            Sharing::Ple { levels: 0, .. } => Err("ple needs at least 1 level".into()),
            _ => Ok(()),
        }
    }

    /// [`Sharing::validate`], and whether the strategy fits `trunk`: PLE has at most one
    /// level per trunk block.
    pub fn validate_for(&self, trunk: &TrunkSpec) -> std::result::Result<(), String> {
        self.validate()?;
        let n_blocks = trunk.n_blocks();
        match *self {
            Sharing::Ple { levels, .. } if levels > n_blocks => {
                let allowed: Vec<String> = (1..=n_blocks).map(|n| n.to_string()).collect();
                let allowed = match allowed.split_last() {
                    Some((last, [])) => last.clone(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => "none".into(),
                };
                let blocks = if n_blocks == 1 { "block" } else { "blocks" };
                Err(format!("ple levels must be {allowed} (the trunk has {n_blocks} {blocks}), got {levels}"))
            }
            _ => Ok(()),
        }
    }
}

/// The whole architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The tasks, in experiment order.
    pub tasks: Vec<TaskSpec>,
    /// The sharing strategy and its hyperparameters.
    pub sharing: Sharing,
    /// The trunk.
    pub trunk: TrunkSpec,
    /// Probability of zeroing each feature entering the trunk's last layer (the heads, after
    /// ResNet's pooling and the recurrent trunk's), in training; the Transformer also drops
    /// its embedded input and inside each layer.
    pub dropout: f64,
    /// How linear, convolution and embedding layers draw their initial values.
    pub init: InitScheme,
}
