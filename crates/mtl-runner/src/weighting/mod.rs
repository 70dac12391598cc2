//! Loss weighting and gradient aggregation methods, as pure computations.
//!
//! A [`Method`] (a value of the `weighting` sweep axis) starts a [`Weighter`] per training run.
//! At every optimiser step the weighter gets the tasks' loss values and, for the methods that
//! [need them](Method::needs_gradients), each task's gradient of the shared parameters
//! (flattened); it answers with a [`Decision`]: loss weights, or the shared parameters' update.
//! No candle here: inputs are `f64` losses and `f32` gradients, computations are in `f64`, and
//! every random draw comes from [`mtl_data::Rng`] seeded by [`Method::start`].
//!
//! - loss level (`loss_level`): static, equal, uncertainty, dwa, rlw, gls, famo, stch, and gradnorm;
//! - gradient surgery (`surgery`): pcgrad, gradvac, db-mtl;
//! - small solvers over the Gram matrix of the gradients (`solvers`): mgda, cagrad, imtl-g and
//!   imtl, aligned-mtl, fairgrad; nash-mtl has a module of its own (`nash`);
//! - the aggregators of Jacobian descent and torchjd (`dual_cone`): upgrad, dualproj, config;
//! - per-coordinate or per-parameter state (`tracking`): graddrop, moco, excess-mtl;
//! - three independent gradient samples a step (`sampled`): sdmgrad, modo.
//!
//! Each method cites its paper and, where we follow it instead, the official code; departures
//! from either are noted on the method. A claim about another implementation names the version
//! it describes (a commit or a date).
//!
//! ```
//! use mtl_runner::weighting::{Decision, Method, StepInput};
//!
//! let method = Method::default_for("mgda").unwrap();
//! let mut weighter = method.start(2, 7);
//! let grads = vec![vec![1.0f32, 0.0], vec![0.0, 2.0]];
//! let input = StepInput { losses: &[0.7, 1.3], static_weights: &[1.0, 1.0], shared_gradients: Some(&grads) };
//! // MGDA: the min-norm point of the segment between the two gradients, α = (0.8, 0.2).
//! let Decision::SharedGradient { gradient, weights } = weighter.step(&input) else { unreachable!() };
//! assert!((weights[0] - 0.8).abs() < 1e-12 && (gradient[1] - 0.4).abs() < 1e-6);
//! ```

mod dual_cone;
mod linalg;
mod loss_level;
mod nash;
mod sampled;
mod solvers;
mod surgery;
mod tracking;

use mtl_data::Rng;

pub use loss_level::{dwa_weights, uncertainty_objective};
pub use nash::{nash_mtl_weights, nash_weights};
pub use solvers::{aligned_mtl_transform, min_norm_weights};

/// A weighting method with its hyperparameters (a value of the `weighting` sweep axis).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// The seed formula: the caller's λ weights.
    Static,
    /// Every weight 1.
    Equal,
    /// Kendall, Gal & Cipolla 2018: learned homoscedastic uncertainty.
    Uncertainty,
    /// Dynamic weight average, Liu, Johns & Davison 2019.
    Dwa {
        /// Softmax temperature T (default 2, the paper's).
        temperature: f64,
    },
    /// Random loss weighting, Lin et al. 2022: softmax of standard normal draws, each step.
    Rlw,
    /// Geometric loss strategy, Chennupati et al. 2019: minimise `(Π L_i)^(1/n)`.
    Gls,
    /// FAMO, Liu et al. 2023.
    Famo {
        /// Weight decay γ of the logits (default 0.01: `famo.py`'s and `--gamma`'s in the official
        /// code at Cranial-XIX/FAMO 0a6ad06, whose run scripts use 0.001 for QM9, CelebA and
        /// NYUv2 and 0.01 for Cityscapes).
        gamma: f64,
        /// Adam learning rate of the logits (default 0.025, the official `w_lr` at 0a6ad06).
        lr: f64,
    },
    /// DB-MTL, dual-balancing, Lin et al. 2023.
    DbMtl {
        /// EMA decay β of the log-loss gradients (default 0.9, LibMTL's `--DB_beta` at 4336804).
        beta: f64,
        /// Decay exponent σ of `β_t = β / t^σ` (default 0, LibMTL's `--DB_beta_sigma` at 4336804).
        beta_sigma: f64,
    },
    /// GradNorm, Chen et al. 2018.
    GradNorm {
        /// Restoring-force strength α (default 1.5, LibMTL's `--alpha` at 4336804; the paper tunes
        /// it per dataset).
        alpha: f64,
        /// Adam learning rate of the weights (default 0.025, the `--method-params-lr` that
        /// Nash-MTL's code, at cce18403, and FAMO's, at 0a6ad06, give weighting parameters).
        lr: f64,
    },
    /// PCGrad, Yu et al. 2020.
    PcGrad,
    /// MGDA, Sener & Koltun 2018: the min-norm point of the gradients' convex hull.
    Mgda,
    /// CAGrad, Liu et al. 2021.
    Cagrad {
        /// Radius c of the ball around the mean gradient (default 0.5: the official `cagrad`
        /// function's at Cranial-XIX/CAGrad dc3d481 and LibMTL's `--calpha` at 4336804; `--c` in
        /// Nash-MTL's code at cce18403 and FAMO's at 0a6ad06 defaults to 0.4).
        c: f64,
    },
    /// IMTL, Liu et al. 2021, whole: IMTL-L's learned loss scales and IMTL-G's weights.
    Imtl {
        /// Adam learning rate of the log loss scales (default 0.025, as for uncertainty's
        /// log-variances). Runs stored under `imtl` without this setting are IMTL-G's.
        scale_lr: f64,
    },
    /// IMTL-G, Liu et al. 2021: the gradient part of IMTL alone (stored as `imtl` before
    /// `imtl` became the whole method).
    ImtlG,
    /// GradVac, Wang et al. 2021.
    GradVac {
        /// EMA decay β of the similarity targets (default 0.01, the paper's; LibMTL's
        /// `--GradVac_beta` is 0.5 at 4336804).
        beta: f64,
    },
    /// Aligned-MTL, Senushkin et al. 2023.
    AlignedMtl,
    /// Nash-MTL, Navon et al. 2022, as its official code computes it (see `nash`).
    NashMtl {
        /// The shared gradient `Σ_i α_i g_i` is clipped to this L2 norm (default 1, the official
        /// `max_norm`'s at cce18403 and LibMTL's at 4336804; 0 disables), as
        /// `torch.nn.utils.clip_grad_norm_` does.
        max_norm: f64,
    },
    /// MGDA-UB, Sener & Koltun 2018 (Sec. 3.3): the min-norm weights of the task gradients with
    /// respect to the shared representation (an upper bound of the shared-parameter problem),
    /// applied to the losses. Needs tasks that share one representation (hard sharing, same inputs).
    MgdaUb,
    /// UPGrad, Quinton & Rey 2024: each gradient projected onto the dual cone of all, averaged.
    Upgrad,
    /// DualProj (torchjd; the projection of Lopez-Paz & Ranzato 2017): the mean gradient
    /// projected onto the dual cone of the gradients.
    DualProj,
    /// ConFIG, Liu et al. 2024: the direction with equal cosines to every gradient.
    Config,
    /// STCH, smooth Tchebycheff scalarisation, Lin et al. 2024.
    Stch {
        /// Smoothing μ (default 1, LibMTL's `--STCH_mu`; its `config.py` at the date of
        /// `STCH.py` ea8b8b7).
        mu: f64,
        /// The epoch (from 0) whose mean losses are the nadir point; until then the loss is
        /// `Σ log L_i` (default 4, LibMTL's `--STCH_warmup_epoch`). A whole number.
        warmup_epoch: f64,
    },
    /// FairGrad, Ban & Ji 2024: α-fair weights, `(GᵀG w)_i = w_i^(−1/α)`.
    FairGrad {
        /// Fairness α > 0 (default 1, LibMTL's `--FairGrad_alpha`; α = 1 is Nash-MTL's
        /// condition, larger α is fairer).
        alpha: f64,
    },
    /// GradDrop, Chen et al. 2020: a random sign choice per coordinate by the gradients' purity.
    GradDrop {
        /// The share of a dropped coordinate that still passes, in [0, 1] (default 0, LibMTL's `--leak`).
        leak: f64,
    },
    /// MoCo, Fernando et al. 2023: tracked gradient estimates and weights on the simplex.
    MoCo {
        /// Rate β of the tracked estimates (default 0.5, LibMTL's `--MoCo_beta`).
        beta: f64,
        /// Decay σ_β of `β/t^σ_β` (default 0.5).
        beta_sigma: f64,
        /// Rate γ of the weights (default 0.1, LibMTL's `--MoCo_gamma`).
        gamma: f64,
        /// Decay σ_γ of `γ/t^σ_γ` (default 0.5).
        gamma_sigma: f64,
        /// ℓ2 regularisation ρ of the weights' step (default 0).
        rho: f64,
    },
    /// ExcessMTL, He et al. 2024: loss weights from each task's estimated excess risk.
    ExcessMtl {
        /// Step size η of the multiplicative update (default 0.01, LibMTL's `--robust_step_size`).
        step_size: f64,
    },
    /// SDMGrad, Xiao et al. 2023: direction-oriented weights from two independent samples.
    SdmGrad {
        /// Regularisation λ towards the mean gradient (default 0.3, LibMTL's `--SDMGrad_lamda`).
        lambda: f64,
        /// SGD iterations on the weights per step (default 20, LibMTL's `--SDMGrad_niter`). A whole number.
        niter: f64,
    },
    /// MoDo, Chen et al. 2023: weights by one projected step a batch, from two independent samples.
    MoDo {
        /// Rate γ of the weights (default 0.001, LibMTL's `--MoDo_gamma`).
        gamma: f64,
        /// ℓ2 regularisation ρ of the weights' step (default 0.1, LibMTL's `--MoDo_rho`).
        rho: f64,
    },
}

impl Method {
    /// Every method's name, as the experiment file spells it.
    pub const NAMES: [&'static str; 28] = [
        "static",
        "equal",
        "uncertainty",
        "dwa",
        "rlw",
        "gls",
        "famo",
        "db-mtl",
        "gradnorm",
        "pcgrad",
        "mgda",
        "cagrad",
        "imtl",
        "imtl-g",
        "gradvac",
        "aligned-mtl",
        "nash-mtl",
        "mgda-ub",
        "upgrad",
        "dualproj",
        "config",
        "stch",
        "fairgrad",
        "graddrop",
        "moco",
        "excess-mtl",
        "sdmgrad",
        "modo",
    ];

    /// The method's name (one of [`Method::NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Static => "static",
            Method::Equal => "equal",
            Method::Uncertainty => "uncertainty",
            Method::Dwa { .. } => "dwa",
            Method::Rlw => "rlw",
            Method::Gls => "gls",
            Method::Famo { .. } => "famo",
            Method::DbMtl { .. } => "db-mtl",
            Method::GradNorm { .. } => "gradnorm",
            Method::PcGrad => "pcgrad",
            Method::Mgda => "mgda",
            Method::Cagrad { .. } => "cagrad",
            Method::Imtl { .. } => "imtl",
            Method::ImtlG => "imtl-g",
            Method::GradVac { .. } => "gradvac",
            Method::AlignedMtl => "aligned-mtl",
            Method::NashMtl { .. } => "nash-mtl",
            Method::MgdaUb => "mgda-ub",
            Method::Upgrad => "upgrad",
            Method::DualProj => "dualproj",
            Method::Config => "config",
            Method::Stch { .. } => "stch",
            Method::FairGrad { .. } => "fairgrad",
            Method::GradDrop { .. } => "graddrop",
            Method::MoCo { .. } => "moco",
            Method::ExcessMtl { .. } => "excess-mtl",
            Method::SdmGrad { .. } => "sdmgrad",
            Method::MoDo { .. } => "modo",
        }
    }

    /// The method called `name`, with its default hyperparameters (see each variant).
    pub fn default_for(name: &str) -> Option<Method> {
        Some(match name {
            "static" => Method::Static,
            "equal" => Method::Equal,
            "uncertainty" => Method::Uncertainty,
            "dwa" => Method::Dwa { temperature: 2.0 },
            "rlw" => Method::Rlw,
            "gls" => Method::Gls,
            "famo" => Method::Famo { gamma: 0.01, lr: 0.025 },
            "db-mtl" => Method::DbMtl { beta: 0.9, beta_sigma: 0.0 },
            "gradnorm" => Method::GradNorm { alpha: 1.5, lr: 0.025 },
            "pcgrad" => Method::PcGrad,
            "mgda" => Method::Mgda,
            "cagrad" => Method::Cagrad { c: 0.5 },
            "imtl" => Method::Imtl { scale_lr: loss_level::UNCERTAINTY_LR },
            "imtl-g" => Method::ImtlG,
            "gradvac" => Method::GradVac { beta: 0.01 },
            "aligned-mtl" => Method::AlignedMtl,
            "nash-mtl" => Method::NashMtl { max_norm: 1.0 },
            "mgda-ub" => Method::MgdaUb,
            "upgrad" => Method::Upgrad,
            "dualproj" => Method::DualProj,
            "config" => Method::Config,
            "stch" => Method::Stch { mu: 1.0, warmup_epoch: 4.0 },
            "fairgrad" => Method::FairGrad { alpha: 1.0 },
            "graddrop" => Method::GradDrop { leak: 0.0 },
            "moco" => Method::MoCo { beta: 0.5, beta_sigma: 0.5, gamma: 0.1, gamma_sigma: 0.5, rho: 0.0 },
            "excess-mtl" => Method::ExcessMtl { step_size: 0.01 },
            "sdmgrad" => Method::SdmGrad { lambda: 0.3, niter: 20.0 },
            "modo" => Method::MoDo { gamma: 0.001, rho: 0.1 },
            _ => return None,
        })
    }

    /// The hyperparameters under their store names (`<method>_<name>`), empty for methods
    /// without any.
    pub fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Method::Dwa { temperature } => vec![("dwa_temperature", temperature)],
            Method::Famo { gamma, lr } => vec![("famo_gamma", gamma), ("famo_lr", lr)],
            Method::DbMtl { beta, beta_sigma } => vec![("db_mtl_beta", beta), ("db_mtl_beta_sigma", beta_sigma)],
            Method::GradNorm { alpha, lr } => vec![("gradnorm_alpha", alpha), ("gradnorm_lr", lr)],
            Method::Cagrad { c } => vec![("cagrad_c", c)],
            Method::GradVac { beta } => vec![("gradvac_beta", beta)],
            Method::NashMtl { max_norm } => vec![("nash_mtl_max_norm", max_norm)],
            Method::Stch { mu, warmup_epoch } => vec![("stch_mu", mu), ("stch_warmup_epoch", warmup_epoch)],
            Method::FairGrad { alpha } => vec![("fairgrad_alpha", alpha)],
            Method::Imtl { scale_lr } => vec![("imtl_scale_lr", scale_lr)],
            Method::GradDrop { leak } => vec![("graddrop_leak", leak)],
            Method::MoCo { beta, beta_sigma, gamma, gamma_sigma, rho } => vec![
                ("moco_beta", beta),
                ("moco_beta_sigma", beta_sigma),
                ("moco_gamma", gamma),
                ("moco_gamma_sigma", gamma_sigma),
                ("moco_rho", rho),
            ],
            Method::ExcessMtl { step_size } => vec![("excess_mtl_step_size", step_size)],
            Method::SdmGrad { lambda, niter } => vec![("sdmgrad_lambda", lambda), ("sdmgrad_niter", niter)],
            Method::MoDo { gamma, rho } => vec![("modo_gamma", gamma), ("modo_rho", rho)],
            _ => Vec::new(),
        }
    }

    /// This method with the hyperparameters named in `values` (store names, as
    /// [`Method::hyperparameters`] gives them) replaced, or why a name or value is not allowed.
    pub fn with(&self, values: &[(&str, f64)]) -> Result<Method, String> {
        let mut method = *self;
        for &(store_name, value) in values {
            let key = store_name.strip_prefix(&format!("{}_", self.name().replace('-', "_"))).unwrap_or(store_name);
            let (slot, allowed, range): (&mut f64, bool, &str) = match (&mut method, key) {
                (Method::Dwa { temperature }, "temperature") => (temperature, value > 0.0, "> 0"),
                (Method::Famo { gamma, .. }, "gamma") => (gamma, value >= 0.0, "≥ 0"),
                (Method::Famo { lr, .. }, "lr") => (lr, value > 0.0, "> 0"),
                (Method::DbMtl { beta, .. }, "beta") => (beta, (0.0..1.0).contains(&value), "in [0, 1)"),
                (Method::DbMtl { beta_sigma, .. }, "beta_sigma") => (beta_sigma, value >= 0.0, "≥ 0"),
                (Method::GradNorm { alpha, .. }, "alpha") => (alpha, value >= 0.0, "≥ 0"),
                (Method::GradNorm { lr, .. }, "lr") => (lr, value > 0.0, "> 0"),
                // Liu et al. 2021 (Thm. 3.2): c ∈ [0, 1) for convergence to a stationary point.
                (Method::Cagrad { c }, "c") => (c, (0.0..1.0).contains(&value), "in [0, 1)"),
                (Method::GradVac { beta }, "beta") => (beta, (0.0..=1.0).contains(&value), "in [0, 1]"),
                (Method::NashMtl { max_norm }, "max_norm") => (max_norm, value >= 0.0, "≥ 0 (0: no clipping)"),
                (Method::Stch { mu, .. }, "mu") => (mu, value > 0.0, "> 0"),
                (Method::Stch { warmup_epoch, .. }, "warmup_epoch") => {
                    (warmup_epoch, value >= 0.0 && value.fract() == 0.0 && value <= 1e6, "whole, in [0, 1000000]")
                }
                (Method::FairGrad { alpha }, "alpha") => (alpha, value > 0.0, "> 0"),
                (Method::Imtl { scale_lr }, "scale_lr") => (scale_lr, value > 0.0, "> 0"),
                (Method::GradDrop { leak }, "leak") => (leak, (0.0..=1.0).contains(&value), "in [0, 1]"),
                (Method::MoCo { beta, .. }, "beta") => (beta, value > 0.0 && value <= 1.0, "in (0, 1]"),
                (Method::MoCo { beta_sigma, .. }, "beta_sigma") => (beta_sigma, value >= 0.0, "≥ 0"),
                (Method::MoCo { gamma, .. }, "gamma") => (gamma, value > 0.0, "> 0"),
                (Method::MoCo { gamma_sigma, .. }, "gamma_sigma") => (gamma_sigma, value >= 0.0, "≥ 0"),
                (Method::MoCo { rho, .. }, "rho") => (rho, value >= 0.0, "≥ 0"),
                (Method::ExcessMtl { step_size }, "step_size") => (step_size, value > 0.0, "> 0"),
                (Method::SdmGrad { lambda, .. }, "lambda") => (lambda, value >= 0.0, "≥ 0"),
                (Method::SdmGrad { niter, .. }, "niter") => {
                    (niter, value >= 1.0 && value.fract() == 0.0 && value <= 10000.0, "whole, in [1, 10000]")
                }
                (Method::MoDo { gamma, .. }, "gamma") => (gamma, value > 0.0, "> 0"),
                (Method::MoDo { rho, .. }, "rho") => (rho, value >= 0.0, "≥ 0"),
                _ => return Err(format!("{} has no hyperparameter \"{key}\"", self.name())),
            };
            if !(value.is_finite() && allowed) {
                return Err(format!("{key} must be a finite number {range}, got {value}"));
            }
            *slot = value;
        }
        Ok(method)
    }

    /// Whether [`StepInput::shared_gradients`] must be given: gradnorm and every
    /// gradient-level method.
    pub fn needs_gradients(&self) -> bool {
        matches!(
            self,
            Method::DbMtl { .. }
                | Method::GradNorm { .. }
                | Method::PcGrad
                | Method::Mgda
                | Method::Cagrad { .. }
                | Method::Imtl { .. }
                | Method::ImtlG
                | Method::GradVac { .. }
                | Method::AlignedMtl
                | Method::NashMtl { .. }
                | Method::MgdaUb
                | Method::Upgrad
                | Method::DualProj
                | Method::Config
                | Method::FairGrad { .. }
                | Method::GradDrop { .. }
                | Method::MoCo { .. }
                | Method::ExcessMtl { .. }
                | Method::SdmGrad { .. }
                | Method::MoDo { .. }
        )
    }

    /// Whether the gradients it needs are with respect to the shared representation (one
    /// tensor every task's head reads) rather than the shared parameters.
    pub fn on_representation(&self) -> bool {
        matches!(self, Method::MgdaUb)
    }

    /// Whether `[weighting] rep_grad` may apply it to the representation's gradient: every
    /// gradient method but those that keep per-coordinate state across steps (db-mtl, moco,
    /// excess-mtl), since the representation has as many coordinates as the batch has examples
    /// and an epoch's last batch can be smaller.
    pub fn supports_representation(&self) -> bool {
        self.needs_gradients()
            && !matches!(
                self,
                Method::DbMtl { .. }
                    | Method::MoCo { .. }
                    | Method::ExcessMtl { .. }
                    | Method::SdmGrad { .. }
                    | Method::MoDo { .. }
            )
    }

    /// Batches drawn per optimiser step: 3 for sdmgrad and modo (independent gradient samples),
    /// 1 for every other method. An epoch draws as many batches either way, so these take a
    /// third as many steps.
    pub fn samples_per_step(&self) -> usize {
        if matches!(self, Method::SdmGrad { .. } | Method::MoDo { .. }) {
            3
        } else {
            1
        }
    }

    /// One line: backward passes per step and extra memory (n = number of tasks). The n × n
    /// matrices the solvers use are negligible next to the gradients.
    pub fn cost(&self) -> &'static str {
        match self {
            Method::Static | Method::Equal | Method::Rlw | Method::Gls => {
                "1 backward pass of the weighted loss, no extra memory"
            }
            Method::Uncertainty => "1 backward pass of the weighted loss, n learned log-variances",
            Method::Dwa { .. } => "1 backward pass of the weighted loss, the last two epochs' mean losses",
            Method::Famo { .. } => "1 backward pass of the weighted loss, n logits and the previous step's losses",
            Method::DbMtl { .. } => {
                "n backward passes, n × shared-parameter gradients plus their moving averages (n × shared parameters in f64)"
            }
            Method::GradVac { .. } => "n backward passes, n × shared-parameter gradients and n² similarity targets",
            Method::GradNorm { .. }
            | Method::PcGrad
            | Method::Mgda
            | Method::Cagrad { .. }
            | Method::Imtl { .. }
            | Method::ImtlG
            | Method::AlignedMtl
            | Method::NashMtl { .. }
            | Method::Upgrad
            | Method::DualProj
            | Method::Config
            | Method::FairGrad { .. } => "n backward passes, n × shared-parameter gradients",
            Method::Stch { .. } => "1 backward pass of the weighted loss, the nadir losses",
            Method::GradDrop { .. } => {
                "n backward passes, n × shared-parameter gradients, one random draw per shared parameter"
            }
            Method::MoCo { .. } => {
                "n backward passes, n × shared-parameter gradients plus n tracked estimates (n × shared parameters in f64)"
            }
            Method::ExcessMtl { .. } => {
                "n backward passes, n × shared-parameter gradients plus their accumulated squares (n × shared parameters in f64)"
            }
            Method::SdmGrad { .. } | Method::MoDo { .. } => {
                "3 batches a step: 3n backward passes, 3n × shared-parameter gradients"
            }
            Method::MgdaUb => {
                "n backward passes through the heads only, n × representation gradients (batch × width), then 1 backward pass of the weighted loss"
            }
        }
    }

    /// A fresh state for one training run on `n_tasks` tasks. Random draws (rlw's weights,
    /// pcgrad's and gradvac's task orders) come from `Rng::derive(seed, "weighting.<name>")`.
    pub fn start(&self, n_tasks: usize, seed: u64) -> Box<dyn Weighter> {
        let rng = || Rng::derive(seed, &format!("weighting.{}", self.name()));
        let inner: Box<dyn Weighter> = match *self {
            Method::Static => Box::new(loss_level::Fixed { weights: None }),
            Method::Equal => Box::new(loss_level::Fixed { weights: Some(vec![1.0; n_tasks]) }),
            Method::Uncertainty => Box::new(loss_level::Uncertainty {
                log_variances: vec![0.0; n_tasks],
                adam: linalg::Adam::new(n_tasks, loss_level::UNCERTAINTY_LR, 0.0),
            }),
            Method::Dwa { temperature } => Box::new(loss_level::Dwa { temperature, n_tasks, history: Vec::new() }),
            Method::Rlw => Box::new(loss_level::Rlw { rng: rng() }),
            Method::Gls => Box::new(loss_level::Gls),
            Method::Famo { gamma, lr } => Box::new(loss_level::Famo {
                logits: vec![0.0; n_tasks],
                adam: linalg::Adam::new(n_tasks, lr, gamma),
                previous_losses: None,
            }),
            Method::DbMtl { beta, beta_sigma } => {
                Box::new(surgery::DbMtl { beta, beta_sigma, step: 0, averages: Vec::new() })
            }
            Method::GradNorm { alpha, lr } => Box::new(loss_level::GradNorm {
                alpha,
                weights: vec![1.0; n_tasks],
                adam: linalg::Adam::new(n_tasks, lr, 0.0),
                initial_losses: None,
            }),
            Method::PcGrad => Box::new(surgery::PcGrad { rng: rng() }),
            Method::Mgda => Box::new(solvers::GramSolver { weights_of: solvers::min_norm_from_gram }),
            Method::Cagrad { c } => Box::new(solvers::Cagrad { c }),
            Method::Imtl { scale_lr } => {
                Box::new(solvers::Imtl { scales: vec![0.0; n_tasks], adam: linalg::Adam::new(n_tasks, scale_lr, 0.0) })
            }
            Method::ImtlG => Box::new(solvers::GramSolver { weights_of: solvers::imtl_weights }),
            Method::GradVac { beta } => {
                Box::new(surgery::GradVac { beta, targets: vec![vec![0.0; n_tasks]; n_tasks], rng: rng() })
            }
            Method::AlignedMtl => Box::new(solvers::GramSolver { weights_of: solvers::aligned_mtl_weights }),
            Method::NashMtl { max_norm } => Box::new(nash::NashMtl { max_norm, previous: vec![1.0; n_tasks] }),
            Method::MgdaUb => Box::new(solvers::MinNormLossWeights),
            Method::Upgrad => Box::new(solvers::GramSolver { weights_of: dual_cone::upgrad_weights }),
            Method::DualProj => Box::new(solvers::GramSolver { weights_of: dual_cone::dualproj_weights }),
            Method::Config => Box::new(dual_cone::Config),
            Method::Stch { mu, warmup_epoch } => Box::new(loss_level::Stch {
                mu,
                warmup_epoch: warmup_epoch as usize,
                epoch: 0,
                warmup_sum: Vec::new(),
                warmup_steps: 0,
            }),
            Method::FairGrad { alpha } => Box::new(solvers::FairGrad { alpha }),
            Method::GradDrop { leak } => Box::new(tracking::GradDrop { leak, rng: rng() }),
            Method::MoCo { beta, beta_sigma, gamma, gamma_sigma, rho } => Box::new(tracking::MoCo {
                beta,
                beta_sigma,
                gamma,
                gamma_sigma,
                rho,
                step: 0,
                estimates: Vec::new(),
                lambda: Vec::new(),
            }),
            Method::ExcessMtl { step_size } => Box::new(tracking::ExcessMtl {
                step_size,
                squared_sums: Vec::new(),
                reference: None,
                weights: Vec::new(),
            }),
            Method::SdmGrad { lambda, niter } => {
                Box::new(sampled::SdmGrad { lambda, iterations: niter as usize, weights: Vec::new() })
            }
            Method::MoDo { gamma, rho } => Box::new(sampled::MoDo { gamma, rho, weights: Vec::new() }),
        };
        Box::new(Checked { name: self.name(), n_tasks, needs_gradients: self.needs_gradients(), inner })
    }
}

/// What the training loop gives a method at each step.
pub struct StepInput<'a> {
    /// This step's loss value of each task (unweighted, finite).
    pub losses: &'a [f64],
    /// `static` only: the caller's λ weights (task 1 = 1). Others ignore it.
    pub static_weights: &'a [f64],
    /// Per task, the gradient of its unweighted loss with respect to the shared parameters,
    /// flattened; `Some` exactly when [`Method::needs_gradients`].
    pub shared_gradients: Option<&'a [Vec<f32>]>,
}

/// How to turn the tasks' losses into one update.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Every parameter's gradient is `Σ_i w_i ∇L_i` (loss-level methods, gradnorm, and
    /// nash-mtl with `max_norm = 0`).
    LossWeights(Vec<f64>),
    /// As `LossWeights`, then the shared parameters' gradient is multiplied by `shared_scale`
    /// (nash-mtl's clipping; task-specific parameters keep `w_i ∇L_i`).
    ClippedLossWeights {
        /// The loss weights.
        weights: Vec<f64>,
        /// In (0, 1]: what the shared parameters' gradient is multiplied by.
        shared_scale: f64,
    },
    /// The shared parameters' gradient is `gradient` (same flattening as the input); each
    /// task-specific parameter keeps its own task's unweighted gradient.
    SharedGradient {
        /// The shared parameters' update direction.
        gradient: Vec<f32>,
        /// The effective task weights, for the diagnostics: `gradient = Σ_i weights_i g_i` exactly
        /// for every method but db-mtl (whose weights scale moving averages), graddrop (the share
        /// of each gradient kept) and moco (the weights of its tracked estimates); see each.
        weights: Vec<f64>,
    },
}

impl Decision {
    /// The task weights the diagnostics record: the loss weights, or the effective weights of
    /// a shared gradient.
    pub fn weights(&self) -> &[f64] {
        match self {
            Decision::LossWeights(weights)
            | Decision::ClippedLossWeights { weights, .. }
            | Decision::SharedGradient { weights, .. } => weights,
        }
    }
}

/// One training run's state of a method.
pub trait Weighter: Send {
    /// Called once per optimiser step.
    fn step(&mut self, input: &StepInput) -> Decision;
    /// Called instead of [`Weighter::step`] for methods with [`Method::samples_per_step`] > 1:
    /// `input` holds the first batch's losses and gradients, `more` the other batches' per-task
    /// gradients.
    fn step_sampled(&mut self, input: &StepInput, _more: &[&[Vec<f32>]]) -> Decision {
        self.step(input)
    }
    /// Called after each epoch with each task's mean training loss of that epoch (DWA uses these).
    fn end_epoch(&mut self, _mean_losses: &[f64]) {}
}

/// Checks the input's shape once for every method, so a caller's mistake names the method
/// instead of surfacing as an index error in a solver.
struct Checked {
    name: &'static str,
    n_tasks: usize,
    needs_gradients: bool,
    inner: Box<dyn Weighter>,
}

impl Checked {
    fn check(&self, input: &StepInput) {
        let n = self.n_tasks;
        assert_eq!(input.losses.len(), n, "{}: expected {n} losses", self.name);
        if self.needs_gradients {
            let grads = input.shared_gradients.unwrap_or_else(|| panic!("{} needs the shared gradients", self.name));
            assert_eq!(grads.len(), n, "{}: expected {n} gradients", self.name);
            assert!(grads.iter().all(|g| g.len() == grads[0].len()), "{}: gradients of different lengths", self.name);
        }
    }
}

impl Weighter for Checked {
    fn step(&mut self, input: &StepInput) -> Decision {
        self.check(input);
        self.inner.step(input)
    }

    fn step_sampled(&mut self, input: &StepInput, more: &[&[Vec<f32>]]) -> Decision {
        let n = self.n_tasks;
        let first = input.shared_gradients.map_or(0, |g| g.first().map_or(0, Vec::len));
        for sample in more {
            assert_eq!(sample.len(), n, "{}: expected {n} gradients per sample", self.name);
            assert!(sample.iter().all(|g| g.len() == first), "{}: samples of different lengths", self.name);
        }
        self.check(input);
        self.inner.step_sampled(input, more)
    }

    fn end_epoch(&mut self, mean_losses: &[f64]) {
        self.inner.end_epoch(mean_losses);
    }
}

/// The gradients of a method that needs them (checked by `Checked`).
fn shared_gradients<'a>(input: &StepInput<'a>) -> &'a [Vec<f32>] {
    input.shared_gradients.expect("Checked verifies that gradient methods get gradients")
}

#[cfg(test)]
pub(crate) mod tests;
