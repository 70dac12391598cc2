//! Seeded parameter initialisation.
//!
//! candle's CPU generator cannot be seeded, so the model is built through a
//! [`SimpleBackend`] that draws every new variable from mtl-lab's own
//! generator, in construction order, following the layer's own [`Init`]
//! (the same distributions as candle's defaults).

use std::collections::BTreeMap;
use std::sync::Mutex;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use mtl_data::Rng;

/// The trainable variables of a model, by stable name (`trunk.conv1.weight`, …).
#[derive(Clone, Debug, Default)]
pub struct Parameters {
    vars: BTreeMap<String, Var>,
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

    /// Total number of scalar parameters.
    pub fn n_parameters(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The current values by name, e.g. to write a checkpoint.
    pub fn tensors(&self) -> std::collections::HashMap<String, Tensor> {
        self.vars.iter().map(|(name, var)| (name.clone(), var.as_tensor().clone())).collect()
    }

    /// Overwrites every variable from `tensors` (a checkpoint of the same
    /// architecture): each name must be there with the same shape, and no other.
    pub fn load(&self, tensors: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in &self.vars {
            let Some(value) = tensors.get(name) else { candle_core::bail!("the checkpoint has no {name}") };
            if value.shape() != var.shape() {
                candle_core::bail!("{name}: the checkpoint has shape {:?}, the model {:?}", value.shape(), var.shape());
            }
            var.set(&value.to_dtype(var.dtype())?)?;
        }
        if let Some(extra) = tensors.keys().find(|name| !self.vars.contains_key(*name)) {
            candle_core::bail!("the checkpoint has {extra}, which this model does not");
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
        Parameters { vars: self.vars.lock().expect("parameter lock").clone() }
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
    use std::sync::Arc;

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
