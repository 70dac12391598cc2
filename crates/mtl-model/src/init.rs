//! Seeded parameter initialisation.
//!
//! candle's CPU generator cannot be seeded, so the model is built through a
//! [`SimpleBackend`] that draws every new variable from mtl-lab's own
//! generator, in construction order, following the [`Init`] the layer asks
//! for. Linear, convolution and embedding layers ask their [`InitScheme`]
//! (the experiment's `init` setting) which [`Init`] that is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Linear, VarBuilder};
use mtl_data::Rng;

/// How linear, convolution and embedding layers draw their initial values.
///
/// `fan_in` and `fan_out` are PyTorch's (`torch.nn.init._calculate_fan_in_and_fan_out`):
/// for a weight `[out, in, k…]`, `fan_in = in·Πk` and `fan_out = out·Πk` (a convolution's
/// kernel size counts; a linear layer has no `k`). Special parameters keep their own
/// initialisation under every scheme: cross-stitch α (`Sharing::CrossStitch`'s `init`),
/// DSelect-k's gate layers (uniform, as the official code) and LTB's branching logits (0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InitScheme {
    /// PyTorch's default of each layer type, what a user's PyTorch baseline starts from:
    /// `nn.Linear`, `nn.Conv1d` and `nn.Conv2d` draw the weight U(±1/√fan_in)
    /// (`kaiming_uniform_` with a = √5) and the bias U(±1/√fan_in); `nn.Embedding` N(0, 1).
    Framework,
    /// Weights N(0, 2/fan_in) (He et al. 2015: `kaiming_normal_`, ReLU gain), biases 0;
    /// embeddings N(0, 1) as `nn.Embedding`.
    KaimingNormal,
    /// Weights U(±√(6/(fan_in + fan_out))) (Glorot & Bengio 2010: `xavier_uniform_`),
    /// biases 0; embeddings N(0, 1) as `nn.Embedding`.
    XavierUniform,
    /// candle-nn 0.11's layer defaults: weights N(0, 2/fan_in), biases U(±1/√in) with `in`
    /// the input features or channels (the kernel size left out); text embeddings
    /// N(0, 0.1²). What mtl-lab used before the setting existed: older runs are reproduced.
    Candle,
}

impl InitScheme {
    /// Every scheme, in documentation order.
    pub const ALL: [InitScheme; 4] =
        [InitScheme::Framework, InitScheme::KaimingNormal, InitScheme::XavierUniform, InitScheme::Candle];

    /// The name used in experiment files and the store.
    pub fn name(self) -> &'static str {
        match self {
            InitScheme::Framework => "framework",
            InitScheme::KaimingNormal => "kaiming-normal",
            InitScheme::XavierUniform => "xavier-uniform",
            InitScheme::Candle => "candle",
        }
    }

    /// Parses a name given by [`InitScheme::name`].
    pub fn from_name(name: &str) -> Option<InitScheme> {
        InitScheme::ALL.into_iter().find(|scheme| scheme.name() == name)
    }

    /// The initialisation of the weight of a linear or convolution layer.
    pub(crate) fn weight(self, fan: Fan) -> Init {
        let fan_in = fan.fan_in() as f64;
        match self {
            InitScheme::Framework => uniform(1.0 / fan_in.sqrt()),
            InitScheme::KaimingNormal => Init::Randn { mean: 0.0, stdev: (2.0 / fan_in).sqrt() },
            InitScheme::XavierUniform => uniform((6.0 / (fan_in + fan.fan_out() as f64)).sqrt()),
            // Drawn through candle's own `Init` (std = gain/√fan_in from the shape), so that
            // the values are those of earlier versions bit for bit.
            InitScheme::Candle => candle_nn::init::DEFAULT_KAIMING_NORMAL,
        }
    }

    /// The initialisation of the bias of a linear or convolution layer.
    pub(crate) fn bias(self, fan: Fan) -> Init {
        match self {
            InitScheme::Framework => uniform(1.0 / (fan.fan_in() as f64).sqrt()),
            InitScheme::KaimingNormal | InitScheme::XavierUniform => Init::Const(0.0),
            InitScheme::Candle => uniform(1.0 / (fan.inputs as f64).sqrt()),
        }
    }

    /// The initialisation of an embedding table.
    pub(crate) fn embedding(self) -> Init {
        match self {
            InitScheme::Framework | InitScheme::KaimingNormal | InitScheme::XavierUniform => {
                Init::Randn { mean: 0.0, stdev: 1.0 }
            }
            // With unit-variance vectors the random features of a long text swamp the max over
            // time and learning starts slowly; earlier versions drew them small.
            InitScheme::Candle => Init::Randn { mean: 0.0, stdev: 0.1 },
        }
    }
}

fn uniform(bound: f64) -> Init {
    Init::Uniform { lo: -bound, up: bound }
}

/// The sizes of a linear or convolution layer that its initialisation depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fan {
    /// Input features or channels.
    pub(crate) inputs: usize,
    /// Output features or channels.
    pub(crate) outputs: usize,
    /// Kernel elements (1 for a linear layer).
    pub(crate) receptive_field: usize,
}

impl Fan {
    pub(crate) fn linear(inputs: usize, outputs: usize) -> Fan {
        Fan { inputs, outputs, receptive_field: 1 }
    }

    fn fan_in(self) -> usize {
        self.inputs * self.receptive_field
    }

    fn fan_out(self) -> usize {
        self.outputs * self.receptive_field
    }
}

/// A linear layer `inputs → outputs` under `vb`: `weight` `[outputs, inputs]` drawn first,
/// then `bias` `[outputs]` (candle-nn's `linear` order).
pub(crate) fn linear(inputs: usize, outputs: usize, init: InitScheme, vb: VarBuilder) -> Result<Linear> {
    let fan = Fan::linear(inputs, outputs);
    let weight = vb.get_with_hints((outputs, inputs), "weight", init.weight(fan))?;
    let bias = vb.get_with_hints(outputs, "bias", init.bias(fan))?;
    Ok(Linear::new(weight, Some(bias)))
}

/// The trainable variables of a model, by stable name (`trunk.conv1.weight`, …), and the
/// running statistics of its batch norms, which checkpoints carry beside them
/// (`<batch norm>.running_mean`, `<batch norm>.running_var`) but no optimiser sees.
#[derive(Clone, Debug, Default)]
pub struct Parameters {
    vars: BTreeMap<String, Var>,
    /// Batch norms by the prefix of their parameters (`stems.image.bn`).
    running: BTreeMap<String, Arc<dyn RunningStatistics>>,
}

/// A layer with running statistics that checkpoints carry (`layers::BatchNorm2d`).
pub trait RunningStatistics: std::fmt::Debug + Send + Sync {
    /// The running mean and variance.
    fn running_stats(&self) -> (Tensor, Tensor);
    /// Replaces them (shapes as [`RunningStatistics::running_stats`] gives them).
    fn set_running_stats(&self, mean: &Tensor, var: &Tensor) -> Result<()>;
}

/// The checkpoint names of a batch norm's running statistics.
fn running_names(prefix: &str) -> [String; 2] {
    [format!("{prefix}.running_mean"), format!("{prefix}.running_var")]
}

impl Parameters {
    /// Variables in name order.
    pub fn named(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.vars.iter().map(|(name, var)| (name.as_str(), var))
    }

    /// Variables in name order (for the optimiser).
    pub fn vars(&self) -> Vec<Var> {
        self.vars.values().cloned().collect()
    }

    /// The same variables, with `batch_norms` (by the prefix of their parameters) whose
    /// running statistics checkpoints carry.
    pub(crate) fn with_running_stats<N: RunningStatistics + 'static>(
        mut self,
        batch_norms: impl IntoIterator<Item = (String, N)>,
    ) -> Parameters {
        self.running
            .extend(batch_norms.into_iter().map(|(name, norm)| (name, Arc::new(norm) as Arc<dyn RunningStatistics>)));
        self
    }

    /// The batch norms whose running statistics checkpoints carry, by the prefix of their
    /// parameters (`stems.image.bn`), in name order.
    pub fn batch_norms(&self) -> impl Iterator<Item = (&str, &Arc<dyn RunningStatistics>)> {
        self.running.iter().map(|(prefix, norm)| (prefix.as_str(), norm))
    }

    /// Total number of scalar parameters (trainable: running statistics not counted).
    pub fn n_parameters(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The current values by name, e.g. to write a checkpoint: the variables and the
    /// batch norms' running statistics.
    pub fn tensors(&self) -> std::collections::HashMap<String, Tensor> {
        let mut tensors: std::collections::HashMap<String, Tensor> =
            self.vars.iter().map(|(name, var)| (name.clone(), var.as_tensor().clone())).collect();
        for (prefix, norm) in &self.running {
            let (mean, var) = norm.running_stats();
            let [mean_name, var_name] = running_names(prefix);
            tensors.insert(mean_name, mean);
            tensors.insert(var_name, var);
        }
        tensors
    }

    /// Overwrites every variable and running statistic from `tensors` (a checkpoint of
    /// the same architecture): each name must be there with the same shape, and no other.
    pub fn load(&self, tensors: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str, shape: &Shape| -> Result<&Tensor> {
            let Some(value) = tensors.get(name) else { candle_core::bail!("the checkpoint has no {name}") };
            if value.shape() != shape {
                candle_core::bail!("{name}: the checkpoint has shape {:?}, the model {:?}", value.shape(), shape);
            }
            Ok(value)
        };
        // Every shape is checked before anything is written.
        for (name, var) in &self.vars {
            get(name, var.shape())?;
        }
        let mut stats = Vec::new();
        for (prefix, norm) in &self.running {
            let shape = norm.running_stats().0.shape().clone();
            let [mean_name, var_name] = running_names(prefix);
            stats.push((norm, get(&mean_name, &shape)?, get(&var_name, &shape)?));
        }
        let known = |name: &String| {
            self.vars.contains_key(name) || self.running.keys().any(|prefix| running_names(prefix).contains(name))
        };
        if let Some(extra) = tensors.keys().find(|name| !known(name)) {
            candle_core::bail!("the checkpoint has {extra}, which this model does not");
        }
        for (name, var) in &self.vars {
            var.set(&tensors[name].to_dtype(var.dtype())?.to_device(var.device())?)?;
        }
        for (norm, mean, var) in stats {
            norm.set_running_stats(mean, var)?;
        }
        Ok(())
    }
}

/// A variable store that initialises new variables from a seeded generator.
pub(crate) struct SeededBackend {
    rng: Mutex<Rng>,
    vars: Mutex<BTreeMap<String, Var>>,
}

impl SeededBackend {
    pub(crate) fn new(seed: u64) -> SeededBackend {
        SeededBackend { rng: Mutex::new(Rng::derive(seed, "init")), vars: Mutex::new(BTreeMap::new()) }
    }

    pub(crate) fn builder(self: &std::sync::Arc<Self>, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(Shared(self.clone())), dtype, device.clone())
    }

    pub(crate) fn parameters(&self) -> Parameters {
        Parameters { vars: self.vars.lock().expect("parameter lock").clone(), running: BTreeMap::new() }
    }

    fn draw(&self, shape: &Shape, init: Init) -> Vec<f64> {
        let n = shape.elem_count();
        let mut rng = self.rng.lock().expect("rng lock");
        match init {
            Init::Const(c) => vec![c; n],
            Init::Uniform { lo, up } => (0..n).map(|_| rng.range(lo, up)).collect(),
            Init::Randn { mean, stdev } => (0..n).map(|_| mean + stdev * rng.normal()).collect(),
            Init::Kaiming { dist, fan, non_linearity } => {
                // Same formula as candle's `Init::var`: std = gain / sqrt(fan).
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        (0..n).map(|_| rng.range(-bound, bound)).collect()
                    }
                    NormalOrUniform::Normal => (0..n).map(|_| std * rng.normal()).collect(),
                }
            }
        }
    }
}

struct Shared(std::sync::Arc<SeededBackend>);

impl SimpleBackend for Shared {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, device: &Device) -> Result<Tensor> {
        if let Some(var) = self.0.vars.lock().expect("parameter lock").get(name) {
            if var.shape() != &shape {
                candle_core::bail!("parameter {name}: shape {:?} requested, {:?} exists", shape, var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.0.draw(&shape, init);
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?)?;
        let tensor = var.as_tensor().clone();
        self.0.vars.lock().expect("parameter lock").insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _device: &Device) -> Result<Tensor> {
        candle_core::bail!("parameter {name} must be created with a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.vars.lock().expect("parameter lock").contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Conv1d, Conv2d};
    use std::sync::Arc;

    /// What the values of one variable must look like.
    #[derive(Clone, Copy, Debug)]
    enum Expected {
        /// U(−bound, bound).
        Uniform(f64),
        /// N(0, std²).
        Normal(f64),
        Zero,
    }

    /// The variables `build` creates under `scheme` (seed 0), by name.
    fn drawn(
        scheme: InitScheme,
        build: &dyn Fn(InitScheme, VarBuilder) -> Result<()>,
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let backend = Arc::new(SeededBackend::new(0));
        build(scheme, backend.builder(DType::F64, &Device::Cpu))?;
        let parameters = backend.parameters();
        parameters.named().map(|(name, var)| Ok((name.to_string(), var.flatten_all()?.to_vec1::<f64>()?))).collect()
    }

    /// `values` follow `expected`: within the bound (and reaching it), or of the std; the
    /// mean and std are checked where there are enough values to estimate them within 2%.
    #[track_caller]
    fn check(what: &str, values: &[f64], expected: Expected) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let largest = values.iter().fold(0f64, |m, x| m.max(x.abs()));
        let many = values.len() >= 10_000;
        match expected {
            Expected::Zero => assert!(values.iter().all(|&x| x == 0.0), "{what}: not all 0"),
            Expected::Uniform(bound) => {
                assert!(largest <= bound, "{what}: {largest} outside ±{bound}");
                assert!(largest >= if many { 0.999 } else { 0.5 } * bound, "{what}: {largest} never near ±{bound}");
                if many {
                    // U(±b) has std b/√3.
                    let want = bound / 3f64.sqrt();
                    assert!((std / want - 1.0).abs() < 0.02, "{what}: std {std}, want {want}");
                }
            }
            Expected::Normal(want) => {
                assert!(many, "{what}: too few values to check a normal");
                assert!((std / want - 1.0).abs() < 0.02, "{what}: std {std}, want {want}");
                // A normal's tails pass 3 std; a uniform of the same std stops at √3 std.
                assert!(largest > 3.0 * want, "{what}: largest {largest}, no tail beyond 3·{want}");
            }
        }
        if many {
            assert!(mean.abs() < 5.0 * std / n.sqrt(), "{what}: mean {mean}");
        }
    }

    #[test]
    fn large_layers_draw_what_each_scheme_says() -> Result<()> {
        // Hand computations; fan_in = in·k(·k), fan_out = out·k(·k) as PyTorch counts them.
        // conv2d 64→32, k 5: fan_in 1600, fan_out 800. conv1d 128→100, k 5: fan_in 640, fan_out 500.
        // linear 1000→500: fan_in 1000, fan_out 500.
        use Expected::{Normal, Uniform, Zero};
        use InitScheme::*;
        type Build = &'static dyn Fn(InitScheme, VarBuilder) -> Result<()>;
        let conv2d: Build = &|init, vb| Conv2d::new(64, 32, 5, 0, init, vb).map(drop);
        let conv1d: Build = &|init, vb| Conv1d::new(128, 100, 5, 0, init, vb).map(drop);
        let fc: Build = &|init, vb| linear(1000, 500, init, vb).map(drop);
        // (layer, scheme, weight, bias)
        let cases: [(&str, Build, InitScheme, Expected, Expected); 12] = [
            ("conv2d", conv2d, Framework, Uniform(1.0 / 40.0), Uniform(1.0 / 40.0)),
            ("conv2d", conv2d, KaimingNormal, Normal((2.0f64 / 1600.0).sqrt()), Zero),
            ("conv2d", conv2d, XavierUniform, Uniform((6.0f64 / 2400.0).sqrt()), Zero),
            // candle-nn: the bias bound counts the input channels only, 1/√64.
            ("conv2d", conv2d, Candle, Normal((2.0f64 / 1600.0).sqrt()), Uniform(1.0 / 8.0)),
            ("conv1d", conv1d, Framework, Uniform(1.0 / 640f64.sqrt()), Uniform(1.0 / 640f64.sqrt())),
            ("conv1d", conv1d, KaimingNormal, Normal((2.0f64 / 640.0).sqrt()), Zero),
            ("conv1d", conv1d, XavierUniform, Uniform((6.0f64 / 1140.0).sqrt()), Zero),
            ("conv1d", conv1d, Candle, Normal((2.0f64 / 640.0).sqrt()), Uniform(1.0 / 128f64.sqrt())),
            ("linear", fc, Framework, Uniform(1.0 / 1000f64.sqrt()), Uniform(1.0 / 1000f64.sqrt())),
            ("linear", fc, KaimingNormal, Normal((2.0f64 / 1000.0).sqrt()), Zero),
            ("linear", fc, XavierUniform, Uniform((6.0f64 / 1500.0).sqrt()), Zero),
            ("linear", fc, Candle, Normal((2.0f64 / 1000.0).sqrt()), Uniform(1.0 / 1000f64.sqrt())),
        ];
        for (layer, build, scheme, weight, bias) in cases {
            let vars = drawn(scheme, build)?;
            let names: Vec<&str> = vars.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, ["bias", "weight"], "{layer}");
            check(&format!("{layer} {} bias", scheme.name()), &vars[0].1, bias);
            check(&format!("{layer} {} weight", scheme.name()), &vars[1].1, weight);
        }
        Ok(())
    }

    #[test]
    fn tiny_layers_get_pytorchs_bounds() {
        // Bounds and stds printed by benches/reference/init_reference.py from PyTorch's own
        // nn.init (fan_in/fan_out of nn.Linear(3, 2), nn.Conv2d(3, 7, 5), nn.Conv1d(4, 6, 3);
        // the bound of reset_parameters' kaiming_uniform_(a=√5) and of its bias; the std of
        // kaiming_normal_(nonlinearity="relu"); the bound of xavier_uniform_).
        let cases = [
            // (fan, framework weight and bias bound, kaiming-normal std, xavier-uniform bound)
            (Fan::linear(3, 2), 0.5773502691896257, 0.8164965809277261, 1.0954451150103321),
            (
                Fan { inputs: 3, outputs: 7, receptive_field: 25 },
                0.11547005383792515,
                0.1632993161855452,
                0.15491933384829668,
            ),
            (
                Fan { inputs: 4, outputs: 6, receptive_field: 3 },
                0.28867513459481287,
                0.4082482904638631,
                0.4472135954999579,
            ),
        ];
        // Within rounding: PyTorch computes the bound as gain·√(3/fan_in), we as 1/√fan_in.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b;
        for (fan, framework, kaiming, xavier) in cases {
            let Init::Uniform { lo, up } = InitScheme::Framework.weight(fan) else { panic!("{fan:?}: uniform") };
            assert!(close(up, framework) && close(-lo, framework), "{fan:?}: framework weight ±{up}");
            let Init::Uniform { lo, up } = InitScheme::Framework.bias(fan) else { panic!("{fan:?}: uniform") };
            assert!(close(up, framework) && close(-lo, framework), "{fan:?}: framework bias ±{up}");
            let Init::Randn { mean, stdev } = InitScheme::KaimingNormal.weight(fan) else { panic!("{fan:?}: normal") };
            assert!(mean == 0.0 && close(stdev, kaiming), "{fan:?}: kaiming std {stdev}");
            let Init::Uniform { lo, up } = InitScheme::XavierUniform.weight(fan) else { panic!("{fan:?}: uniform") };
            assert!(close(up, xavier) && close(-lo, xavier), "{fan:?}: xavier ±{up}");
            for scheme in [InitScheme::KaimingNormal, InitScheme::XavierUniform] {
                assert!(matches!(scheme.bias(fan), Init::Const(c) if c == 0.0), "{fan:?}: {} bias", scheme.name());
            }
        }
        // nn.Embedding: N(0, 1).
        for scheme in [InitScheme::Framework, InitScheme::KaimingNormal, InitScheme::XavierUniform] {
            assert!(matches!(scheme.embedding(), Init::Randn { mean, stdev } if mean == 0.0 && stdev == 1.0));
        }
    }

    #[test]
    fn scheme_names_round_trip() {
        for scheme in InitScheme::ALL {
            assert_eq!(InitScheme::from_name(scheme.name()), Some(scheme));
        }
        assert_eq!(InitScheme::from_name("kaiming"), None);
    }

    #[test]
    fn same_seed_same_values_and_the_declared_distribution() -> Result<()> {
        let build = |seed| -> Result<Vec<f64>> {
            let backend = Arc::new(SeededBackend::new(seed));
            let vb = backend.builder(DType::F64, &Device::Cpu);
            // Kaiming normal with fan_in 400 and ReLU gain: std = sqrt(2/400).
            let w = vb.get_with_hints((500, 400), "w", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
            w.flatten_all()?.to_vec1::<f64>()
        };
        let a = build(1)?;
        assert_eq!(a, build(1)?);
        assert_ne!(a, build(2)?);
        let n = a.len() as f64;
        let mean = a.iter().sum::<f64>() / n;
        let std = (a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.002, "{mean}");
        assert!((std - (2.0f64 / 400.0).sqrt()).abs() < 0.001, "{std}");
        Ok(())
    }
}
