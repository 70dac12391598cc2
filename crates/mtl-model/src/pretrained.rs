//! Pretrained backbone weights and frozen parameters.
//!
//! A state dict in torchvision's ResNet naming (`conv1.weight`, `bn1.running_mean`,
//! `layer2.0.downsample.0.weight`, …; [`WeightNames::Torchvision`]) loads into every copy
//! of the ResNet trunk a network has: the shared one under hard sharing, each task's
//! column, each expert — and into the image stem (each task's, under `single-task`). Each
//! of our ResNet tensors is named from its stage on (`stage2.blocks.0.downsample.conv.weight`),
//! or is the image stem's, and maps to exactly one torchvision name:
//!
//! | mtl-lab (after the trunk's prefix) | torchvision |
//! |---|---|
//! | `stems.image.conv.weight`, `stems.image.bn.*` (or `stems.image.<task>.…`; the encoder–decoder's `encoder.stem.…`) | `conv1.weight`, `bn1.*` |
//! | `stage<L>.blocks.<i>.conv<k>.weight`, `….bn<k>.*` | `layer<L>.<i>.conv<k>.weight`, `….bn<k>.*` |
//! | `stage<L>.blocks.<i>.downsample.conv.weight`, `….downsample.bn.*` | `layer<L>.<i>.downsample.0.weight`, `….downsample.1.*` |
//!
//! where `*` is `weight`, `bias`, `running_mean` or `running_var`. torchvision's `fc.*`
//! (the ImageNet classifier) and `*.num_batches_tracked` are not used. A name, shape or
//! dtype (float32 only) that does not fit is an error naming the tensor, and nothing is
//! written unless everything fits.

use std::collections::{BTreeSet, HashMap};

use candle_core::{bail, DType, Result, Tensor, Var};

use crate::init::Parameters;

/// How a weights file names its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightNames {
    /// torchvision's `resnet18`/`resnet34` state dict.
    Torchvision,
}

impl WeightNames {
    /// Every naming, for messages.
    pub const NAMES: [&'static str; 1] = ["torchvision"];

    /// The name in experiment files.
    pub fn name(self) -> &'static str {
        match self {
            WeightNames::Torchvision => "torchvision",
        }
    }

    /// The naming called `name`.
    pub fn from_name(name: &str) -> Option<WeightNames> {
        (name == "torchvision").then_some(WeightNames::Torchvision)
    }
}

/// What [`Parameters::load_pretrained`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PretrainedLoad {
    /// Tensors of the file that were used.
    pub used: usize,
    /// Our tensors (variables and running statistics) that were set: more than `used`
    /// when the trunk has several copies.
    pub set: usize,
    /// Tensors of the file left out on purpose (the classifier, batch counters).
    pub unused: Vec<String>,
}

/// The part of one of our tensor names from its ResNet stage on (`stage2.blocks.0.conv1.weight`).
fn from_stage(name: &str) -> Option<&str> {
    let mut offset = 0;
    for segment in name.split('.') {
        let is_stage =
            segment.strip_prefix("stage").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_stage {
            return Some(&name[offset..]);
        }
        offset += segment.len() + 1;
    }
    None
}

/// The torchvision name of one of the image stem's tensors (`stems.image.conv.weight`,
/// `stems.image.<task>.bn.bias`, or the encoder–decoder's `….encoder.stem.conv.weight`);
/// `None` for other names.
fn stem_torchvision_name(ours: &str) -> Option<String> {
    let encoder_stem = ours.find("encoder.stem.").map(|at| &ours[at + "encoder.stem.".len()..]);
    let rest = ours.strip_prefix("stems.image.").or(encoder_stem)?;
    let parts: Vec<&str> = rest.split('.').collect();
    Some(match parts[parts.len().saturating_sub(2)..] {
        ["conv", "weight"] => "conv1.weight".to_string(),
        ["bn", field] => format!("bn1.{field}"),
        _ => return None,
    })
}

/// The torchvision name of one of our ResNet tensors: the image stem's, or one named
/// from its stage on.
fn resnet_torchvision_name(ours: &str) -> Option<String> {
    stem_torchvision_name(ours).or_else(|| from_stage(ours).and_then(torchvision_name))
}

/// The torchvision name of one of our ResNet stage tensors (named from its stage on).
fn torchvision_name(ours: &str) -> Option<String> {
    let parts: Vec<&str> = ours.split('.').collect();
    let stage = parts.first()?.strip_prefix("stage")?;
    Some(match parts[1..] {
        ["blocks", block, "downsample", "conv", field] => format!("layer{stage}.{block}.downsample.0.{field}"),
        ["blocks", block, "downsample", "bn", field] => format!("layer{stage}.{block}.downsample.1.{field}"),
        ["blocks", block, layer, field] if layer.starts_with("conv") || layer.starts_with("bn") => {
            format!("layer{stage}.{block}.{layer}.{field}")
        }
        _ => return None,
    })
}

/// Tensors of a torchvision file that no layer here takes, on purpose.
fn unused_on_purpose(name: &str) -> bool {
    name.starts_with("fc.") || name.ends_with(".num_batches_tracked")
}

impl Parameters {
    /// Sets every ResNet tensor of this network (each copy of the trunk) from `file`, a
    /// state dict named as `names` says; checks everything before writing anything.
    pub fn load_pretrained(&self, file: &HashMap<String, Tensor>, names: WeightNames) -> Result<PretrainedLoad> {
        let WeightNames::Torchvision = names;
        // (our tensor, its value from the file), checked.
        let mut targets: Vec<(Target, &Tensor)> = Vec::new();
        let mut used = BTreeSet::new();
        for (ours, target) in self.resnet_tensors() {
            let Some(theirs) = resnet_torchvision_name(&ours) else {
                bail!("{ours} has no torchvision name (is this a ResNet?)")
            };
            let Some(value) = file.get(&theirs) else {
                bail!("the weights file has no {theirs} (for {ours}); is it a torchvision ResNet of this depth?")
            };
            if value.dtype() != DType::F32 {
                bail!(
                    "{theirs} is {:?}; the weights must be float32 (convert with .float() before saving)",
                    value.dtype()
                )
            }
            let wanted = target.shape()?;
            if value.dims() != wanted.as_slice() {
                bail!(
                    "{theirs} has shape {:?}, the network's {ours} {:?} (check the depth and width = 1)",
                    value.dims(),
                    wanted
                )
            }
            used.insert(theirs);
            targets.push((target, value));
        }
        if targets.is_empty() {
            bail!("this network has no ResNet trunk to load pretrained weights into");
        }
        let mut unused = Vec::new();
        let mut file_names: Vec<&String> = file.keys().collect();
        file_names.sort();
        for name in file_names {
            if used.contains(name) {
                continue;
            }
            if !unused_on_purpose(name) {
                bail!("the weights file has {name}, which no layer of this ResNet takes");
            }
            unused.push(name.clone());
        }
        let set = targets.len();
        for (target, value) in targets {
            target.set(value)?;
        }
        Ok(PretrainedLoad { used: used.len(), set, unused })
    }

    /// The variables an optimiser should update: all but those of a frozen part. A part is
    /// a segment of the parameter names (`stage1`, …, `stage4`, or any other segment such
    /// as `heads`); `stem` is the input stems (`stems.…`). Every listed part must name
    /// some variable.
    pub fn trainable(&self, frozen: &[String]) -> Result<Vec<(String, Var)>> {
        let in_part = |name: &str, part: &str| {
            let part = if part == "stem" { "stems" } else { part };
            name.split('.').any(|segment| segment == part)
        };
        let is_frozen = |name: &str| frozen.iter().any(|part| in_part(name, part));
        for part in frozen {
            if !self.named().any(|(name, _)| in_part(name, part)) {
                bail!("freeze: no parameter belongs to \"{part}\" (parts are name segments such as stem, stage1 … stage4)");
            }
        }
        Ok(self
            .named()
            .filter(|(name, _)| !is_frozen(name))
            .map(|(name, var)| (name.to_string(), var.clone()))
            .collect())
    }
}

/// One of our tensors a weights file can set.
enum Target {
    Variable(Var),
    /// A batch norm's running statistics: (the norm, whether the mean).
    Running(std::sync::Arc<dyn crate::init::RunningStatistics>, bool),
}

impl Target {
    fn shape(&self) -> Result<Vec<usize>> {
        Ok(match self {
            Target::Variable(var) => var.dims().to_vec(),
            Target::Running(norm, _) => norm.running_stats().0.dims().to_vec(),
        })
    }

    fn set(&self, value: &Tensor) -> Result<()> {
        match self {
            Target::Variable(var) => var.set(&value.to_dtype(var.dtype())?.to_device(var.device())?),
            Target::Running(norm, is_mean) => {
                let (mean, var) = norm.running_stats();
                if *is_mean {
                    norm.set_running_stats(value, &var)
                } else {
                    norm.set_running_stats(&mean, value)
                }
            }
        }
    }
}

impl Parameters {
    /// Our ResNet tensors by full name: variables and running statistics.
    fn resnet_tensors(&self) -> Vec<(String, Target)> {
        let mut out: Vec<(String, Target)> = self
            .named()
            .filter(|(name, _)| from_stage(name).is_some() || stem_torchvision_name(name).is_some())
            .map(|(name, var)| (name.to_string(), Target::Variable(var.clone())))
            .collect();
        for (prefix, norm) in self.batch_norms() {
            // Only the images' statistics (stream 0, named as the norm); not `<norm>.text`.
            if resnet_torchvision_name(&format!("{prefix}.running_mean")).is_some() {
                out.push((format!("{prefix}.running_mean"), Target::Running(norm.clone(), true)));
                out.push((format!("{prefix}.running_var"), Target::Running(norm.clone(), false)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resnet_name_maps_to_torchvision() {
        let cases = [
            ("stems.image.conv.weight", "conv1.weight"),
            ("stems.image.bn.running_var", "bn1.running_var"),
            ("stems.image.photos.bn.bias", "bn1.bias"),
            ("trunk.stage1.blocks.1.conv2.weight", "layer1.1.conv2.weight"),
            ("trunk.reviews.stage1.blocks.1.conv2.weight", "layer1.1.conv2.weight"),
            ("stage3.blocks.0.bn1.bias", "layer3.0.bn1.bias"),
            ("stage4.blocks.0.downsample.conv.weight", "layer4.0.downsample.0.weight"),
            ("stage2.blocks.0.downsample.bn.running_mean", "layer2.0.downsample.1.running_mean"),
            ("trunk.encoder.stem.conv.weight", "conv1.weight"),
            ("trunk.depth.encoder.stem.bn.running_mean", "bn1.running_mean"),
            ("trunk.encoder.stage2.blocks.0.downsample.conv.weight", "layer2.0.downsample.0.weight"),
        ];
        for (ours, theirs) in cases {
            assert_eq!(resnet_torchvision_name(ours).as_deref(), Some(theirs), "{ours}");
        }
        assert_eq!(resnet_torchvision_name("stems.text.embedding.weight"), None);
        assert_eq!(resnet_torchvision_name("stems.image.rows.weight"), None);
        assert_eq!(torchvision_name("stage2.stem.conv.weight"), None);
        assert_eq!(from_stage("trunk.shapes.stage2.blocks.0.conv1.weight"), Some("stage2.blocks.0.conv1.weight"));
        assert_eq!(from_stage("trunk.stages.conv"), None);
        assert_eq!(resnet_torchvision_name("trunk.decoder.up1.conv.weight"), None);
    }

    #[test]
    fn the_encoder_decoder_takes_torchvision_weights_into_its_encoder_only() -> Result<()> {
        use crate::{
            InitScheme, InputSpec, ModelSpec, MultiTaskNet, ResNetDepth, ResNetStem, Sharing, TaskSpec, TrunkSpec,
        };
        let input = InputSpec::Image { channels: 3, height: 32, width: 32 };
        let spec = ModelSpec {
            tasks: vec![TaskSpec { name: "segmentation".into(), input, n_classes: 3 }],
            sharing: Sharing::Hard,
            trunk: TrunkSpec::EncoderDecoder { depth: ResNetDepth::R18, width: 1.0 / 16.0, stem: ResNetStem::ImageNet },
            dropout: 0.0,
            init: InitScheme::Framework,
        };
        let device = candle_core::Device::Cpu;
        let (_, source) = MultiTaskNet::new(&spec, 1, DType::F32, &device)?;
        let (_, target) = MultiTaskNet::new(&spec, 2, DType::F32, &device)?;
        // A torchvision-named file holding the source's encoder.
        let theirs: HashMap<String, Tensor> = source
            .tensors()
            .into_iter()
            .filter_map(|(name, tensor)| resnet_torchvision_name(&name).map(|tv| (tv, tensor)))
            .collect();
        assert!(theirs.contains_key("conv1.weight") && theirs.contains_key("layer4.1.bn2.running_var"));
        let load = target.load_pretrained(&theirs, WeightNames::Torchvision)?;
        assert_eq!(load.used, theirs.len());
        let (ours, loaded) = (source.tensors(), target.tensors());
        for (name, value) in &ours {
            let same = value.flatten_all()?.to_vec1::<f32>()? == loaded[name].flatten_all()?.to_vec1::<f32>()?;
            let from_file = name.contains(".encoder.");
            // The decoder and heads keep their own draw (batch norms start at 1 and 0 either way).
            let fixed = name.ends_with("running_mean") || name.ends_with("running_var") || name.contains("bn.");
            assert!(same == from_file || (fixed && same), "{name}: same {same}");
        }
        Ok(())
    }
}
