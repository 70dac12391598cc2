//! What a trial records of its settings: the canonical JSON its key hashes (only what the
//! file sets beyond the defaults, so that earlier keys hold), the params the store keeps
//! for `--where`, and the names settings are shown by.

use mtl_data::augment::{Augmentation, Normalization};
use mtl_data::SamplingPolicy;
use mtl_model::sequence::{Pooling, Positions, RecurrentPooling};
use mtl_model::{ImageStem, ResNetDepth, ResNetStem, TrunkSpec};
use mtl_store::ParamValue;
use serde_json::{json, Value};

use super::{ModelConfig, TaskSource, TrainingSettings};
use crate::optim::OptimizerSpec;
use crate::weighting::Method;

pub(super) fn model_settings(model: &ModelConfig) -> Value {
    match model {
        TrunkSpec::Sequence { width, hidden, image_stem } => json!({
            "trunk": "sequence", "width": width, "hidden": hidden, "image_stem": image_stem_name(*image_stem),
        }),
        TrunkSpec::LeNet => json!({ "trunk": "lenet" }),
        TrunkSpec::TextCnn { width, filters } => json!({ "trunk": "textcnn", "width": width, "filters": filters }),
        TrunkSpec::ResNet { width, stem, .. } => json!({
            "trunk": model.name(), "width": width, "stem": resnet_stem_name(*stem),
        }),
        TrunkSpec::Transformer { d_model, heads, layers, ff, positions, pooling, max_len } => json!({
            "trunk": "transformer", "d_model": d_model, "heads": heads, "layers": layers, "ff": ff,
            "positions": positions_name(*positions), "pooling": transformer_pooling_name(*pooling), "max_len": max_len,
        }),
        TrunkSpec::Recurrent { width, hidden, bidirectional, pooling, .. } => json!({
            "trunk": model.name(), "width": width, "hidden": hidden, "bidirectional": bidirectional,
            "pooling": recurrent_pooling_name(*pooling),
        }),
        TrunkSpec::Mlp { width, depth } => json!({ "trunk": "mlp", "width": width, "depth": depth }),
        TrunkSpec::Mpnn { width, steps, readout_steps } => json!({
            "trunk": "mpnn", "width": width, "steps": steps, "readout_steps": readout_steps,
        }),
        TrunkSpec::EncoderDecoder { depth, width, stem } => json!({
            "trunk": "encoder-decoder", "depth": encoder_depth(*depth), "width": width,
            "stem": resnet_stem_name(Some(*stem)),
        }),
    }
}

/// The encoder-decoder's `depth`: its encoder's ResNet depth.
pub(super) fn encoder_depth(depth: ResNetDepth) -> u32 {
    match depth {
        ResNetDepth::R18 => 18,
        ResNetDepth::R34 => 34,
    }
}

/// The file's names of the new trunks' settings (`[model] stem`, `positions`, `pooling`).
pub(super) fn resnet_stem_name(stem: Option<ResNetStem>) -> &'static str {
    match stem {
        None => "auto",
        Some(ResNetStem::Cifar) => "cifar",
        Some(ResNetStem::ImageNet) => "imagenet",
    }
}

pub(super) fn positions_name(positions: Positions) -> &'static str {
    match positions {
        Positions::Sinusoidal => "sinusoidal",
        Positions::Learned => "learned",
    }
}

pub(super) fn transformer_pooling_name(pooling: Pooling) -> &'static str {
    match pooling {
        Pooling::MaskedMean => "mean",
        Pooling::Cls => "cls",
    }
}

pub(super) fn recurrent_pooling_name(pooling: RecurrentPooling) -> &'static str {
    match pooling {
        RecurrentPooling::FinalStates => "final",
        RecurrentPooling::MaskedMean => "mean",
    }
}

/// The trial parameters of the trunks added with issue 18 (the others' are written in
/// [`Trial::params`] as they always were).
pub(super) fn backbone_params(model: &ModelConfig) -> Vec<(String, ParamValue)> {
    let text = |key: &str, value: &str| (key.to_string(), ParamValue::Text(value.into()));
    let num = |key: &str, value: f64| (key.to_string(), ParamValue::Num(value));
    let mut params = vec![text("trunk", model.name())];
    match *model {
        TrunkSpec::ResNet { width, stem, .. } => {
            params.extend([num("width", width), text("stem", resnet_stem_name(stem))]);
        }
        TrunkSpec::Transformer { d_model, heads, layers, ff, positions, pooling, max_len } => params.extend([
            num("d_model", d_model as f64),
            num("heads", heads as f64),
            num("layers", layers as f64),
            num("ff", ff as f64),
            text("positions", positions_name(positions)),
            text("pooling", transformer_pooling_name(pooling)),
            num("max_len", max_len as f64),
        ]),
        TrunkSpec::Recurrent { width, hidden, bidirectional, pooling, .. } => params.extend([
            num("width", width as f64),
            num("hidden", hidden as f64),
            text("bidirectional", if bidirectional { "true" } else { "false" }),
            text("pooling", recurrent_pooling_name(pooling)),
        ]),
        TrunkSpec::Mlp { width, depth } => params.extend([num("width", width as f64), num("depth", depth as f64)]),
        TrunkSpec::Mpnn { width, steps, readout_steps } => params.extend([
            num("width", width as f64),
            num("steps", steps as f64),
            num("readout_steps", readout_steps as f64),
        ]),
        TrunkSpec::EncoderDecoder { depth, width, stem } => params.extend([
            num("depth", f64::from(encoder_depth(depth))),
            num("width", width),
            text("stem", resnet_stem_name(Some(stem))),
        ]),
        TrunkSpec::Sequence { .. } | TrunkSpec::LeNet | TrunkSpec::TextCnn { .. } => {}
    }
    params
}

/// A task's settings in the trial key; `loss`, `select` and the loss options only where the file sets them,
/// so that earlier keys hold.
pub(super) fn task_settings(task: &TaskSource) -> serde_json::Value {
    let mut settings = json!({ "name": task.name, "kind": task.data.kind(), "data": task.data.settings() });
    if task.objective.loss != crate::objective::RegressionLoss::default() {
        settings["loss"] = json!(task.objective.loss.name());
    }
    if let Some(select) = &task.objective.select {
        settings["select"] = json!(select);
    }
    if task.objective.label_smoothing != 0.0 {
        settings["label_smoothing"] = json!(task.objective.label_smoothing);
    }
    if let Some(weights) = &task.objective.class_weights {
        settings["class_weights"] = json!(weights);
    }
    if let Some(weights) = &task.objective.pos_weight {
        settings["pos_weight"] = json!(weights);
    }
    settings
}

/// The optimiser's settings but the learning rate and weight decay (trial settings of their own).
pub(super) fn optimizer_hyperparameters(spec: &OptimizerSpec) -> impl Iterator<Item = (&'static str, f64)> {
    spec.hyperparameters().into_iter().filter(|(name, _)| !name.ends_with("_lr") && !name.ends_with("_weight_decay"))
}

/// The optimiser in a trial's resolved settings: as before there was a choice for the
/// default one (so that old trial keys stay the same), with every setting otherwise.
pub(super) fn optimizer_settings(settings: &TrainingSettings) -> Value {
    let spec = &settings.optimizer;
    let mut value = json!({ "name": spec.name(), "weight_decay": spec.weight_decay });
    if !settings.optimizer_is_default() {
        value["settings"] = hyperparameter_object(optimizer_hyperparameters(spec).collect()).into();
        value["clip_norm"] = json!(settings.clip_norm);
    }
    value
}

/// The augmentation in a trial's resolved settings (added only when it is not off).
pub(super) fn augment_settings(augment: &Augmentation) -> Value {
    let normalize = match &augment.normalize {
        Normalization::None => json!("none"),
        Normalization::TrainStatistics => json!("train"),
        Normalization::Given { mean, std } => json!({ "mean": as_written(mean), "std": as_written(std) }),
    };
    json!({ "crop_padding": augment.crop_padding, "flip": augment.flip, "normalize": normalize })
}

/// f32 values as the shortest decimals that read back as them (`0.1`, not `0.10000000149011612`).
pub(super) fn as_written(values: &[f32]) -> Vec<f64> {
    values.iter().map(|v| v.to_string().parse().unwrap_or(f64::from(*v))).collect()
}

/// `augment_crop_padding`, `augment_flip` (1) and `augment_normalize` (`train` or
/// `mean=[…] std=[…]`), each only when it is not off.
pub(super) fn augment_params(augment: &Augmentation) -> Vec<(String, ParamValue)> {
    let mut params = Vec::new();
    if augment.crop_padding > 0 {
        params.push(("augment_crop_padding".to_string(), ParamValue::Num(augment.crop_padding as f64)));
    }
    if augment.flip {
        params.push(("augment_flip".to_string(), ParamValue::Num(1.0)));
    }
    let normalize = match &augment.normalize {
        Normalization::None => None,
        Normalization::TrainStatistics => Some("train".to_string()),
        Normalization::Given { mean, std } => Some(format!("mean={:?} std={:?}", as_written(mean), as_written(std))),
    };
    if let Some(normalize) = normalize {
        params.push(("augment_normalize".to_string(), ParamValue::Text(normalize)));
    }
    params
}

/// `{name: value, …}`, or nothing when there are no hyperparameters.
pub(super) fn hyperparameter_object(hyperparameters: Vec<(&'static str, f64)>) -> Option<Value> {
    (!hyperparameters.is_empty()).then(|| {
        Value::Object(hyperparameters.into_iter().map(|(name, value)| (name.to_string(), json!(value))).collect())
    })
}

/// The method's name with its hyperparameters, e.g. `cagrad(c=0.4)`.
pub fn weighting_label(method: Method) -> String {
    let prefix = format!("{}_", method.name().replace('-', "_"));
    let shown: Vec<String> = method
        .hyperparameters()
        .into_iter()
        .map(|(name, value)| format!("{}={value}", name.strip_prefix(&prefix).unwrap_or(name)))
        .collect();
    if shown.is_empty() {
        method.name().to_string()
    } else {
        format!("{}({})", method.name(), shown.join(", "))
    }
}

/// `all`, `proportional` or `temperature=T`.
pub fn sampling_name(policy: &SamplingPolicy) -> String {
    match policy {
        SamplingPolicy::EveryTask => "all".into(),
        SamplingPolicy::Proportional => "proportional".into(),
        SamplingPolicy::Temperature(t) => format!("temperature={t}"),
    }
}

/// `conv` or `rows`.
pub fn image_stem_name(stem: ImageStem) -> &'static str {
    match stem {
        ImageStem::Conv => "conv",
        ImageStem::Rows => "rows",
    }
}
