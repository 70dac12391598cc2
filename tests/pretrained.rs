//! Pretrained ResNet weights end to end (issue 18): a safetensors fixture in torchvision's
//! naming loads into the trunk, frozen parts keep its values after training, the others
//! move, and a file that does not fit is refused naming the tensor.

use std::collections::BTreeMap;
use std::path::Path;

mod support {
    pub mod common;
}
use support::common::{expect_code, text, Workspace};

/// A tensor of a safetensors file: dtype name, shape, little-endian bytes.
type Entry = (&'static str, Vec<usize>, Vec<u8>);

/// Writes a safetensors file (8-byte header length, JSON header, data) by hand.
fn write_safetensors(path: &Path, tensors: &BTreeMap<String, Entry>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, (dtype, shape, bytes)) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header);
    file.extend(data);
    std::fs::write(path, file).expect("write the fixture");
}

/// The f32 tensors of a safetensors file by name.
fn read_safetensors(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).expect("read the checkpoint");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
    let data = &bytes[8 + n..];
    let mut out = BTreeMap::new();
    for (name, entry) in header.as_object().expect("object") {
        if entry["dtype"] != "F32" {
            continue;
        }
        let [start, end] = [0, 1].map(|i| entry["data_offsets"][i].as_u64().expect("offset") as usize);
        let values = data[start..end].chunks(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        out.insert(name.clone(), values);
    }
    out
}

/// Builds a state dict with deterministic values.
#[derive(Default)]
struct StateDict {
    tensors: BTreeMap<String, Entry>,
    /// Elements written so far (the values continue from here).
    next: usize,
}

impl StateDict {
    fn f32s(&mut self, name: String, shape: Vec<usize>) {
        let n: usize = shape.iter().product();
        // Variances must stay positive.
        let value = |i: usize| {
            if name.ends_with("running_var") {
                1.0 + 0.1 * (i % 5) as f32
            } else {
                (0.37 * i as f32).sin() * 0.2
            }
        };
        let bytes = (self.next..self.next + n).flat_map(|i| value(i).to_le_bytes()).collect();
        self.next += n;
        self.tensors.insert(name, ("F32", shape, bytes));
    }

    /// A batch norm as torchvision saves it, with its batch counter.
    fn batch_norm(&mut self, prefix: &str, channels: usize) {
        for field in ["weight", "bias", "running_mean", "running_var"] {
            self.f32s(format!("{prefix}.{field}"), vec![channels]);
        }
        self.tensors.insert(format!("{prefix}.num_batches_tracked"), ("I64", vec![], 7i64.to_le_bytes().to_vec()));
    }
}

/// torchvision's ResNet-18 state dict at `widths` channels per stage (CIFAR stem: a 3×3
/// first convolution over one channel), its ImageNet classifier and batch counters included.
fn torchvision_resnet18(widths: [usize; 4]) -> BTreeMap<String, Entry> {
    let mut dict = StateDict::default();
    dict.f32s("conv1.weight".into(), vec![widths[0], 1, 3, 3]);
    dict.batch_norm("bn1", widths[0]);
    let mut cin = widths[0];
    for (stage, &c) in widths.iter().enumerate() {
        for block in 0..2 {
            let p = format!("layer{}.{block}", stage + 1);
            let block_in = if block == 0 { cin } else { c };
            dict.f32s(format!("{p}.conv1.weight"), vec![c, block_in, 3, 3]);
            dict.batch_norm(&format!("{p}.bn1"), c);
            dict.f32s(format!("{p}.conv2.weight"), vec![c, c, 3, 3]);
            dict.batch_norm(&format!("{p}.bn2"), c);
            if block == 0 && stage > 0 {
                dict.f32s(format!("{p}.downsample.0.weight"), vec![c, cin, 1, 1]);
                dict.batch_norm(&format!("{p}.downsample.1"), c);
            }
        }
        cin = c;
    }
    dict.f32s("fc.weight".into(), vec![1000, cin]);
    dict.f32s("fc.bias".into(), vec![1000]);
    dict.tensors
}

const EXPERIMENT: &str = r#"
name = "pretrained"
epochs = 1
batch_size = 16

[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 64, n_val = 16, n_test = 16 }

[model]
trunk = "resnet18"
width = 0.0625
stem = "cifar"
init = { weights = "resnet18.safetensors", map = "torchvision" }
freeze = ["stem", "stage1"]

[sweep]
strategy = ["hard"]
lr = [0.05]
"#;

#[test]
fn torchvision_weights_load_and_frozen_parts_keep_them_after_training() {
    let ws = Workspace::new();
    let fixture = torchvision_resnet18([4, 8, 16, 32]);
    write_safetensors(&ws.path("resnet18.safetensors"), &fixture);
    ws.write("pretrained.toml", EXPERIMENT);
    let out = ws.mtl(&["run", "pretrained.toml", "--save-checkpoints", "--no-report"]);
    expect_code(&out, 0);
    let checkpoint = std::fs::read_dir(ws.path("checkpoints/pretrained"))
        .expect("checkpoints")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let trained = read_safetensors(&checkpoint);
    let value = |name: &str| -> Vec<f32> {
        let (_, _, bytes) = &fixture[name];
        bytes.chunks(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()
    };
    // Frozen: the stem and stage 1 keep the file's values exactly.
    for (ours, theirs) in [
        ("stems.image.conv.weight", "conv1.weight"),
        ("stems.image.bn.weight", "bn1.weight"),
        ("trunk.stage1.blocks.1.conv2.weight", "layer1.1.conv2.weight"),
    ] {
        assert_eq!(trained[ours], value(theirs), "{ours} is frozen");
    }
    // Trained: later stages start from the file and move.
    for (ours, theirs) in [
        ("trunk.stage3.blocks.0.conv1.weight", "layer3.0.conv1.weight"),
        ("trunk.stage4.blocks.1.bn2.bias", "layer4.1.bn2.bias"),
    ] {
        let (before, after) = (value(theirs), &trained[ours]);
        assert_eq!(before.len(), after.len(), "{ours}: the file's shape");
        assert_ne!(&before, after, "{ours} trains");
        let moved = before.iter().zip(after).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(moved < 1.0, "{ours} started from the file's values (moved at most {moved})");
    }
    // The running statistics came from the file too (and then moved in training).
    assert_eq!(trained["trunk.stage2.blocks.0.downsample.bn.running_var"].len(), 8);
}

#[test]
fn weights_that_do_not_fit_are_refused_naming_the_tensor() {
    let ws = Workspace::new();
    ws.write("pretrained.toml", EXPERIMENT);
    let mut fixture = torchvision_resnet18([4, 8, 16, 32]);
    fixture.remove("layer3.1.bn2.running_var");
    write_safetensors(&ws.path("resnet18.safetensors"), &fixture);
    let out = ws.mtl(&["run", "pretrained.toml"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("resnet18.safetensors") && stderr.contains("no layer3.1.bn2.running_var"), "{stderr}");
    assert!(!ws.path("mtl.db").exists(), "nothing is written");

    let mut fixture = torchvision_resnet18([4, 8, 16, 32]);
    fixture.get_mut("layer2.0.conv1.weight").expect("there").1 = vec![8, 4, 3, 1];
    let (dtype, shape, bytes) = fixture["layer2.0.conv1.weight"].clone();
    fixture.insert("layer2.0.conv1.weight".into(), (dtype, shape, bytes[..8 * 4 * 3 * 4].to_vec()));
    write_safetensors(&ws.path("resnet18.safetensors"), &fixture);
    let stderr = text(&ws.mtl(&["run", "pretrained.toml"]).stderr);
    assert!(stderr.contains("layer2.0.conv1.weight has shape [8, 4, 3, 1]"), "{stderr}");

    let mut fixture = torchvision_resnet18([4, 8, 16, 32]);
    fixture.insert("layer5.0.conv1.weight".into(), ("F32", vec![1], vec![0; 4]));
    write_safetensors(&ws.path("resnet18.safetensors"), &fixture);
    let stderr = text(&ws.mtl(&["run", "pretrained.toml"]).stderr);
    assert!(stderr.contains("layer5.0.conv1.weight, which no layer of this ResNet takes"), "{stderr}");
}
