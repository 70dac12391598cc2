//! Task kinds beyond classification end to end (issue 19): a table read as a
//! classification, a regression and a multi-label task, and MultiMNIST's two digits
//! with their sum as a regression target, trained through the real binary; the stored
//! metrics, the best epoch by each task's selecting metric, and the listings.

use std::path::Path;

use rusqlite::Connection;

mod support {
    pub mod common;
}
use support::common::{expect_code, metric_bits, text, Workspace};

/// 300 rows: two numeric columns, a categorical one, a real target, two 0/1 labels
/// (one written as CelebA's −1/1) and a class, each a function of the features.
fn write_table(path: &Path) {
    let mut csv = String::from("x1,x2,job,y,s1,s2,income\n");
    for i in 0..300u32 {
        let x1 = 30.0 + (i * 37 % 41) as f64;
        let x2 = ((i * 13 % 17) as f64 - 8.0) / 4.0;
        let job = ["clerk", "pilot", "nurse"][(i % 3) as usize];
        let y = 0.3 * x1 + 2.0 * x2 + if job == "pilot" { 3.0 } else { 0.0 };
        let (s1, s2) = (u8::from(x2 > 0.0), if job == "nurse" { "1" } else { "-1" });
        let income = if y > 17.0 { ">50K" } else { "<=50K" };
        csv.push_str(&format!("{x1},{x2},{job},{y},{s1},{s2},{income}\n"));
    }
    std::fs::write(path, csv).expect("table");
}

const TABLE_TASKS: &str = r#"
[[tasks]]
name = "income"
label_smoothing = 0.1
data = { format = "table", path = "t.csv", features = ["x1", "x2"], categorical = ["job"], label_column = "income" }

[[tasks]]
name = "y"
kind = "regression"
loss = "huber"
data = { format = "table", path = "t.csv", features = ["x1", "x2"], categorical = ["job"], targets = "y" }

[[tasks]]
name = "tags"
pos_weight = 2.0
data = { format = "table", path = "t.csv", features = ["x1", "x2"], categorical = ["job"], labels = ["s1", "s2"] }

[model]
trunk = "mlp"
"#;

fn rows<T: rusqlite::types::FromSql>(db: &Path, sql: &str) -> Vec<T> {
    let connection = Connection::open(db).expect("open");
    let mut statement = connection.prepare(sql).expect("prepare");
    statement.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect()
}

#[test]
fn a_table_trains_classification_regression_and_multi_label_tasks_with_their_metrics() {
    let ws = Workspace::new();
    write_table(&ws.path("t.csv"));
    let file = format!(
        "name = \"kinds\"\nepochs = 4\nbatch_size = 32\n{TABLE_TASKS}[sweep]\nstrategy = [\"single-task\", \"hard\"]\n"
    );
    ws.write("kinds.toml", &file);
    let out = ws.mtl(&["run", "kinds.toml"]);
    expect_code(&out, 0);
    let stderr = text(&out.stderr);
    // Progress shows each task's selecting metric.
    assert!(
        stderr.contains("done, test accuracy income") && stderr.contains("r2 y") && stderr.contains("map tags"),
        "{stderr}"
    );
    let db = ws.path("mtl.db");
    let metrics: Vec<String> =
        rows(&db, "SELECT DISTINCT task || '.' || split || '.' || metric FROM metrics WHERE run_id = 1 ORDER BY 1");
    for expected in [
        "income.train.accuracy",
        "income.val.accuracy",
        "income.test.macro_f1",
        "y.val.mae",
        "y.test.r2",
        "y.test.rmse",
        "tags.val.map",
        "tags.test.micro_f1",
        "tags.test.subset_accuracy",
        "y.train.loss",
    ] {
        assert!(metrics.contains(&expected.to_string()), "{expected} missing from {metrics:?}");
    }
    // Only classification counts training accuracy.
    assert!(!metrics.iter().any(|m| m == "y.train.accuracy" || m == "tags.train.accuracy"), "{metrics:?}");
    // The rule is recorded, and the best epoch is the one whose mean of (accuracy, R², mAP) on
    // validation is highest, computed here from the stored points.
    let selections: Vec<String> = rows(&db, "SELECT text FROM params WHERE key = 'select' ORDER BY run_id");
    assert_eq!(selections, ["income=accuracy,y=r2,tags=map"; 2]);
    for run in [1, 2] {
        let scores: Vec<f64> = rows(
            &db,
            &format!(
                "SELECT AVG(value) FROM metrics WHERE run_id = {run} AND split = 'val' AND \
                 ((task = 'income' AND metric = 'accuracy') OR (task = 'y' AND metric = 'r2') OR \
                  (task = 'tags' AND metric = 'map')) GROUP BY epoch ORDER BY epoch"
            ),
        );
        assert_eq!(scores.len(), 4);
        let best = scores.iter().enumerate().fold(0, |best, (i, s)| if *s > scores[best] { i } else { best }) + 1;
        let stored: Vec<i64> = rows(&db, &format!("SELECT best_epoch FROM runs WHERE id = {run}"));
        assert_eq!(stored, [best as i64], "run {run}: scores {scores:?}");
    }
    // R² in the data's units is the same number SQL computes from MAE's and RMSE's siblings:
    // a regression that learned something has R² above 0 and RMSE ≥ MAE.
    let (mae, rmse, r2): (f64, f64, f64) = Connection::open(&db)
        .expect("open")
        .query_row(
            "SELECT (SELECT value FROM metrics WHERE run_id = 2 AND epoch = 4 AND task = 'y' AND split = 'test' AND metric = 'mae'),
                    (SELECT value FROM metrics WHERE run_id = 2 AND epoch = 4 AND task = 'y' AND split = 'test' AND metric = 'rmse'),
                    (SELECT value FROM metrics WHERE run_id = 2 AND epoch = 4 AND task = 'y' AND split = 'test' AND metric = 'r2')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("metrics");
    assert!(rmse >= mae && r2 > 0.0, "mae {mae}, rmse {rmse}, r2 {r2}");
    // ls shows each task's headline metric; compare puts them first and counts every metric in Δm%.
    let ls = text(&ws.mtl(&["ls"]).stdout);
    assert!(ls.contains("income.test.accuracy") && ls.contains("y.test.r2") && ls.contains("tags.test.map"), "{ls}");
    let out = ws.mtl(&["compare"]);
    expect_code(&out, 0);
    let compare = text(&out.stdout);
    let header = compare.lines().next().expect("header");
    let first = |a: &str, b: &str| header.find(a).expect(a) < header.find(b).expect(b);
    assert!(first("y r2", "y mae") && first("tags map", "tags micro_f1"), "{header}");
    assert!(compare.contains("over accuracy, macro_f1, mae, map, micro_f1, rmse, subset_accuracy"), "{compare}");
}

#[test]
fn task_kind_settings_and_bad_cells_are_refused_before_anything_is_written() {
    let ws = Workspace::new();
    write_table(&ws.path("t.csv"));
    let cases = [
        (
            TABLE_TASKS.replace("loss = \"huber\"", "loss = \"hinge\""),
            "tasks[1].loss: loss \"hinge\" must be one of mse, l1, huber",
        ),
        (
            TABLE_TASKS.replace("kind = \"regression\"\nloss = \"huber\"", "select = \"mae\""),
            "tasks[1].select: select \"mae\" cannot pick the best epoch of a regression task",
        ),
        (
            TABLE_TASKS.replace("kind = \"regression\"", "kind = \"multi-label\""),
            "kind \"multi-label\" does not match the data, which gives \"regression\"",
        ),
        (
            TABLE_TASKS.replace("targets = \"y\"", "targets = \"y\", labels = [\"s1\"]"),
            "give exactly one of label_column",
        ),
        (
            TABLE_TASKS.replace("loss = \"huber\"", "label_smoothing = 0.1"),
            "tasks[1].label_smoothing: label_smoothing is for classification tasks; this task is regression",
        ),
        (
            TABLE_TASKS.replace("label_smoothing = 0.1\n", "class_weights = [1.0, 2.0, 3.0]\n"),
            "class_weights has 3 values, but task income has 2 classes (<=50K, >50K)",
        ),
        (
            TABLE_TASKS.replace("pos_weight = 2.0", "pos_weight = [1.0, 0.0]"),
            "tasks[2].pos_weight: every weight must be a finite number > 0",
        ),
        (
            TABLE_TASKS.replace("features = [\"x1\", \"x2\"], categorical = [\"job\"], targets", "targets"),
            "a table needs feature columns",
        ),
    ];
    for (tasks, expected) in cases {
        ws.write("bad.toml", &format!("name = \"bad\"\nepochs = 1\n{tasks}"));
        let out = ws.mtl(&["run", "bad.toml"]);
        expect_code(&out, 2);
        assert!(text(&out.stderr).contains(expected), "{} lacks {expected}", text(&out.stderr));
        assert!(!ws.path("mtl.db").exists());
    }
    // A target that is not a number: the file, line and column.
    let mut csv = std::fs::read_to_string(ws.path("t.csv")).expect("read");
    csv.push_str("40,1.5,clerk,NaN,1,1,>50K\n");
    std::fs::write(ws.path("nan.csv"), csv).expect("write");
    ws.write("nan.toml", &format!("name = \"nan\"\nepochs = 1\n{}", TABLE_TASKS.replace("\"t.csv\"", "\"nan.csv\"")));
    let out = ws.mtl(&["run", "nan.toml"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nan.csv: line 302: target y: \"NaN\" is not a finite number"), "{stderr}");
    assert!(!ws.path("mtl.db").exists());
}

/// An uncompressed IDX file of unsigned bytes.
fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
    bytes.extend(data);
    std::fs::write(path, bytes).expect("idx");
}

#[test]
fn multimnist_digits_their_sum_and_which_are_present_train_as_three_kinds_in_one_shared_lenet() {
    let ws = Workspace::new();
    let dir = ws.path("digits");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let n = 120;
    // Digit d drawn as a bright band at rows 2d..2d+2: the class shows in the image.
    let labels: Vec<u8> = (0..n).map(|i| (i * 7 % 10) as u8).collect();
    let pixels: Vec<u8> = labels
        .iter()
        .flat_map(|&d| (0..784).map(move |p| if p / 28 / 2 == d as usize + 2 { 255 } else { 0 }))
        .collect();
    write_idx(&dir.join("t10k-images-idx3-ubyte"), &[n as u32, 28, 28], &pixels);
    write_idx(&dir.join("t10k-labels-idx1-ubyte"), &[n as u32], &labels);
    let task = |name: &str, digit: &str| {
        format!("[[tasks]]\nname = \"{name}\"\ndata = {{ format = \"multimnist\", path = \"digits\", digit = \"{digit}\", val_size = 20, test_size = 20 }}\n")
    };
    let file = format!(
        "name = \"mm\"\nepochs = 2\nbatch_size = 16\n{}{}{}{}[model]\ntrunk = \"lenet\"\n[sweep]\nstrategy = [\"hard\"]\nlambda = [0.1, 1.0]\n",
        task("left", "left"),
        task("right", "right"),
        task("sum", "sum"),
        task("present", "present"),
    );
    ws.write("mm.toml", &file);
    expect_code(&ws.mtl(&["run", "mm.toml", "--no-report"]), 0);
    let db = ws.path("mtl.db");
    let kinds: Vec<String> =
        rows(&db, "SELECT DISTINCT task || '.' || metric FROM metrics WHERE split = 'test' ORDER BY 1");
    assert_eq!(
        kinds,
        [
            "left.accuracy",
            "left.loss",
            "left.macro_f1",
            "left.top5_accuracy",
            "present.loss",
            "present.macro_f1",
            "present.map",
            "present.micro_f1",
            "present.subset_accuracy",
            "right.accuracy",
            "right.loss",
            "right.macro_f1",
            "right.top5_accuracy",
            "sum.loss",
            "sum.mae",
            "sum.r2",
            "sum.rmse"
        ]
    );
    // The sum's targets are 0–18 in the data's units: a model that predicts the training mean
    // is off by several units, and no MAE can exceed 18.
    let maes: Vec<f64> =
        rows(&db, "SELECT value FROM metrics WHERE task = 'sum' AND split = 'test' AND metric = 'mae'");
    assert!(maes.iter().all(|&m| m > 0.0 && m < 18.0), "{maes:?}");
    // The same file and seed give the same numbers.
    let again = Workspace::new();
    std::fs::create_dir_all(again.path("digits")).expect("mkdir");
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        std::fs::copy(dir.join(name), again.path("digits").join(name)).expect("copy");
    }
    again.write("mm.toml", &file);
    expect_code(&again.mtl(&["run", "mm.toml", "--no-report"]), 0);
    assert_eq!(metric_bits(&db), metric_bits(&again.path("mtl.db")));
}

/// CelebA's layout with 24 images (16 train, 4 val, 4 test) and the attributes `names`:
/// attribute j of image i is present when (i + j) is even or i is a multiple of 3, and the
/// first shows as a bright top half. The attribute table writes −1/1 with CelebA's
/// double spaces.
fn write_celeba(root: &Path, names: &[&str]) {
    std::fs::create_dir_all(root.join("img_align_celeba")).expect("mkdir");
    let mut attributes = format!("24\n{}\n", names.join(" "));
    let mut partition = String::new();
    for i in 0..24usize {
        let present: Vec<bool> = (0..names.len()).map(|j| (i + j) % 2 == 0 || i % 3 == 0).collect();
        let image = image::RgbImage::from_fn(178, 218, |_, y| {
            let bright = if present[0] && y < 109 { 220 } else { 40 };
            image::Rgb([bright, bright, (i * 10) as u8])
        });
        let file = format!("{:06}.jpg", i + 1);
        image.save(root.join("img_align_celeba").join(&file)).expect("jpeg");
        let signs: Vec<&str> = present.iter().map(|&on| if on { " 1" } else { "-1" }).collect();
        attributes.push_str(&format!("{file} {}\n", signs.join(" ")));
        partition.push_str(&format!(
            "{file} {}\n",
            if i < 16 {
                0
            } else if i < 20 {
                1
            } else {
                2
            }
        ));
    }
    std::fs::write(root.join("list_attr_celeba.txt"), attributes).expect("attributes");
    std::fs::write(root.join("list_eval_partition.txt"), partition).expect("partition");
}

#[test]
fn celeba_attributes_train_as_one_multi_label_task_or_one_task_each() {
    let ws = Workspace::new();
    write_celeba(&ws.path("celeba"), &["5_o_Clock_Shadow", "Smiling", "Young"]);
    let data = "format = \"celeba\", path = \"celeba\", height = 16, width = 16";
    let file = format!(
        "name = \"faces\"\nepochs = 2\nbatch_size = 8\n\
         [[tasks]]\nname = \"all\"\ndata = {{ {data} }}\n\
         [[tasks]]\nname = \"smiling\"\ndata = {{ {data}, attribute = \"Smiling\" }}\n\
         [[tasks]]\nname = \"two\"\nselect = \"macro_f1\"\ndata = {{ {data}, attributes = [\"Young\", \"Smiling\"], n_train = 12 }}\n\
         [model]\ntrunk = \"lenet\"\n[sweep]\nstrategy = [\"single-task\"]\n"
    );
    ws.write("faces.toml", &file);
    let out = ws.mtl(&["run", "faces.toml", "--no-report"]);
    expect_code(&out, 0);
    // The partition's splits, n_train cutting one task's training split.
    assert!(
        text(&out.stderr).contains("examples (train/val/test): all 16/4/4 · smiling 16/4/4 · two 12/4/4"),
        "{}",
        text(&out.stderr)
    );
    let db = ws.path("mtl.db");
    let kinds: Vec<String> =
        rows(&db, "SELECT DISTINCT task || '.' || metric FROM metrics WHERE split = 'test' ORDER BY 1");
    for expected in ["all.map", "all.subset_accuracy", "smiling.accuracy", "two.macro_f1", "two.map"] {
        assert!(kinds.contains(&expected.to_string()), "{expected} missing from {kinds:?}");
    }
    // inspect recognises the layout and counts each split's positives without decoding.
    let out = ws.mtl(&["data", "inspect", "celeba"]);
    expect_code(&out, 0);
    let inspected = text(&out.stdout);
    assert!(inspected.starts_with("celeba: celeba (2 files read)"), "{inspected}");
    assert!(inspected.contains("\ntrain        16                11       11     11\n"), "{inspected}");
    assert!(inspected.contains("problems: none"), "{inspected}");
    let selection: Vec<String> = rows(&db, "SELECT text FROM params WHERE key = 'select' LIMIT 1");
    assert_eq!(selection, ["all=map,smiling=accuracy,two=macro_f1"]);
    // inspect-free checks of the layout's errors: an attribute the table lacks.
    ws.write("bad.toml", &file.replace("attribute = \"Smiling\"", "attribute = \"Smile\""));
    let out = ws.mtl(&["run", "bad.toml", "--db", "other.db"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("list_attr_celeba.txt: no attribute \"Smile\"; the table has 5_o_Clock_Shadow, Smiling, Young"),
        "{stderr}"
    );
    assert!(!ws.path("other.db").exists());
}

/// The ready-made experiments of task kinds, run as they are but for their data's path,
/// sizes and schedule, on fixtures in their data's exact layout.
#[test]
fn the_ready_made_kind_experiments_train_on_fixtures_of_their_layouts() {
    let ws = Workspace::new();
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let read = |name: &str| std::fs::read_to_string(experiments.join(name)).expect("experiment file");
    let short = |file: String| {
        file.replace("epochs = 20", "epochs = 1")
            .replace("epochs = 5", "epochs = 1")
            .replace("seeds = [0, 1]", "seeds = [0]")
    };

    write_celeba(&ws.path("celeba"), &["Smiling", "Young", "Male", "Eyeglasses"]);
    let celeba = short(read("celeba.toml"))
        .replace("../data/celeba", "celeba")
        .replace("n_train = 20000, n_val = 2000, n_test = 4000", "n_train = 8, n_val = 2, n_test = 2");
    ws.write("celeba.toml", &celeba);
    expect_code(&ws.mtl(&["run", "celeba.toml", "--no-report"]), 0);

    let dir = ws.path("mnist");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let labels: Vec<u8> = (0..60).map(|i| (i * 7 % 10) as u8).collect();
    let pixels: Vec<u8> = labels
        .iter()
        .flat_map(|&d| (0..784).map(move |p| if p / 28 / 2 == d as usize + 2 { 255 } else { 0 }))
        .collect();
    write_idx(&dir.join("t10k-images-idx3-ubyte"), &[60, 28, 28], &pixels);
    write_idx(&dir.join("t10k-labels-idx1-ubyte"), &[60], &labels);
    ws.write("kinds.toml", &short(read("multimnist-kinds.toml")).replace("../data/mnist", "mnist"));
    expect_code(&ws.mtl(&["run", "kinds.toml", "--no-report"]), 0);
    let db = ws.path("mtl.db");
    let done: Vec<i64> = rows(&db, "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.status = 'done' GROUP BY e.name ORDER BY e.name");
    // celeba: single-task and hard; multimnist-kinds: single-task and hard at three λ.
    assert_eq!(done, [2, 4]);
}

/// A `.npy` file (format 1.0, little-endian, C order) of `shape` holding `values` as `<f4`.
fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).expect("npy");
}

/// LibMTL's NYUv2 layout, `n_train` + `n_val` examples of 8×12: three vertical bands, each
/// of one of 3 classes coloured by its class; the top row unlabelled (−1, depth 0, normals 0);
/// depth 1 + class; normals (0, 0, 1), or (0.6, 0, 0.8) on class 1.
fn write_nyuv2(root: &Path, n_train: usize, n_val: usize) {
    let (h, w) = (8, 12);
    for (split, n) in [("train", n_train), ("val", n_val)] {
        for part in ["image", "label", "depth", "normal"] {
            std::fs::create_dir_all(root.join(split).join(part)).expect("mkdir");
        }
        for i in 0..n {
            let class_at = |x: usize| ((x / 4) + i) % 3;
            let (mut image, mut label, mut depth, mut normal) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for y in 0..h {
                for x in 0..w {
                    let class = class_at(x);
                    let noise = ((x * 7 + y * 3 + i * 5) % 10) as f32 / 50.0;
                    image.extend((0..3).map(|c| if c == class { 0.8 + noise } else { noise }));
                    let labelled = y > 0;
                    label.push(if labelled { class as f32 } else { -1.0 });
                    depth.push(if labelled { 1.0 + class as f32 } else { 0.0 });
                    normal.extend(match (labelled, class) {
                        (false, _) => [0.0, 0.0, 0.0],
                        (true, 1) => [0.6, 0.0, 0.8],
                        _ => [0.0, 0.0, 1.0],
                    });
                }
            }
            let file = |part: &str| root.join(split).join(part).join(format!("{i}.npy"));
            write_npy(&file("image"), &[h, w, 3], &image);
            write_npy(&file("label"), &[h, w], &label);
            write_npy(&file("depth"), &[h, w, 1], &depth);
            write_npy(&file("normal"), &[h, w, 3], &normal);
        }
    }
}

#[test]
fn nyuv2_segmentation_depth_and_normals_train_through_the_encoder_decoder_with_their_metrics() {
    let ws = Workspace::new();
    write_nyuv2(&ws.path("nyuv2"), 12, 4);
    let data = |task: &str| format!("{{ format = \"nyuv2\", path = \"nyuv2\", task = \"{task}\" }}");
    let file = format!(
        "name = \"scenes\"\nepochs = 2\nbatch_size = 4\n\
         [[tasks]]\nname = \"seg\"\ndata = {{ format = \"nyuv2\", path = \"nyuv2\", task = \"segmentation\", classes = 3 }}\n\
         [[tasks]]\nname = \"depth\"\ndata = {}\n[[tasks]]\nname = \"normals\"\ndata = {}\n\
         [model]\ntrunk = \"encoder-decoder\"\nwidth = 0.125\nstem = \"cifar\"\n\
         [sweep]\nstrategy = [\"single-task\", \"hard\"]\nlr = [0.01]\n",
        data("depth"),
        data("normals")
    );
    ws.write("scenes.toml", &file);
    let out = ws.mtl(&["run", "scenes.toml", "--no-report"]);
    expect_code(&out, 0);
    // train/ gives train and validation (10%), val/ the test split.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("examples (train/val/test): seg 11/1/4 · depth 11/1/4 · normals 11/1/4"), "{stderr}");
    let db = ws.path("mtl.db");
    let stored: Vec<String> =
        rows(&db, "SELECT DISTINCT task || '.' || metric FROM metrics WHERE split = 'test' ORDER BY 1");
    let expected = [
        "depth.abs_err",
        "depth.delta1",
        "depth.delta2",
        "depth.delta3",
        "depth.loss",
        "depth.rel_err",
        "normals.loss",
        "normals.mean_angle",
        "normals.median_angle",
        "normals.within_11_25",
        "normals.within_22_5",
        "normals.within_30",
        "seg.loss",
        "seg.miou",
        "seg.pixel_accuracy",
    ];
    assert_eq!(stored, expected);
    // Depth's L1 loss on valid pixels is its absolute error: the same number, epoch by epoch.
    let same: Vec<i64> = rows(
        &db,
        "SELECT COUNT(*) FROM metrics a JOIN metrics b ON a.run_id = b.run_id AND a.epoch = b.epoch AND a.split = b.split \
         WHERE a.task = 'depth' AND b.task = 'depth' AND a.metric = 'loss' AND b.metric = 'abs_err' AND a.split <> 'train' \
         AND abs(a.value - b.value) < 1e-6",
    );
    assert_eq!(same, [8], "2 runs × 2 epochs × val and test");
    let selection: Vec<String> = rows(&db, "SELECT text FROM params WHERE key = 'select' LIMIT 1");
    assert_eq!(selection, ["seg=miou,depth=delta1,normals=within_11_25"]);
    // Δm% over the nine NYUv2 metrics, as LibMTL counts them (no δ thresholds).
    let out = ws.mtl(&["compare", "--db", "mtl.db"]);
    expect_code(&out, 0);
    let compared = text(&out.stdout);
    assert!(
        compared.contains(
            "over abs_err, mean_angle, median_angle, miou, pixel_accuracy, rel_err, within_11_25, within_22_5, within_30;"
        ),
        "{compared}"
    );
    // The same file and seed give the same bits.
    let again = ws.mtl(&["run", "scenes.toml", "--no-report", "--db", "again.db"]);
    expect_code(&again, 0);
    assert_eq!(metric_bits(&db), metric_bits(&ws.path("again.db")));
    // The three tasks read one input, whatever their own settings (the segmentation's 3
    // classes, the others' default 13): they share batches and one representation, which
    // mgda-ub needs.
    let shared =
        file.replace("strategy = [\"single-task\", \"hard\"]", "strategy = [\"hard\"]\nweighting = [\"mgda-ub\"]");
    ws.write("shared.toml", &shared.replace("epochs = 2", "epochs = 1"));
    let out = ws.mtl(&["run", "shared.toml", "--no-report", "--db", "shared.db"]);
    expect_code(&out, 0);
}

#[test]
fn dense_tasks_refuse_trunks_and_augmentation_that_do_not_fit_them() {
    let ws = Workspace::new();
    write_nyuv2(&ws.path("nyuv2"), 6, 2);
    let base = "name = \"bad\"\nepochs = 1\nbatch_size = 2\n\
                [[tasks]]\nname = \"depth\"\ndata = { format = \"nyuv2\", path = \"nyuv2\", task = \"depth\" }\n";
    for (extra, message) in [
        (
            "[model]\ntrunk = \"lenet\"\n",
            "dense tasks (segmentation, depth, normals) need [model] trunk = \"encoder-decoder\"",
        ),
        (
            "[model]\ntrunk = \"encoder-decoder\"\nstem = \"cifar\"\n[augment]\nflip = true\n",
            "move the pixels of task depth's images but not its per-pixel targets",
        ),
        ("[model]\ntrunk = \"encoder-decoder\"\ndepth = 50\n", "the encoder is a ResNet-18 or -34; write 18 or 34"),
    ] {
        ws.write("bad.toml", &format!("{base}{extra}"));
        let out = ws.mtl(&["run", "bad.toml"]);
        expect_code(&out, 2);
        assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
        assert!(!ws.path("mtl.db").exists());
    }
    let wrong = base.replace("task = \"depth\"", "task = \"height\"");
    ws.write("bad.toml", &format!("{wrong}[model]\ntrunk = \"encoder-decoder\"\n"));
    let out = ws.mtl(&["run", "bad.toml"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("tasks[0].data.task") && stderr.contains("unknown task \"height\""), "{stderr}");
}

#[test]
fn the_ready_made_nyuv2_and_cityscapes_experiments_train_on_fixtures_of_their_layout() {
    let ws = Workspace::new();
    write_nyuv2(&ws.path("nyuv2"), 10, 3);
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let file = std::fs::read_to_string(experiments.join("nyuv2.toml")).expect("experiment file");
    let file = file
        .replace("../data/nyuv2", "nyuv2")
        .replace("classes = 13", "classes = 3")
        .replace("size = [96, 128]", "size = [16, 24]")
        .replace("epochs = 20", "epochs = 1")
        .replace("seeds = [0, 1]", "seeds = [0]");
    ws.write("nyuv2.toml", &file);
    expect_code(&ws.mtl(&["run", "nyuv2.toml", "--no-report"]), 0);
    // Cityscapes: the same layout without normal/ (never read), 7 classes by default.
    std::fs::remove_dir_all(ws.path("nyuv2/train/normal")).expect("rm");
    let file = std::fs::read_to_string(experiments.join("cityscapes.toml")).expect("experiment file");
    let file = file
        .replace("../data/cityscapes", "nyuv2")
        .replace("size = [64, 128]", "size = [8, 16]")
        .replace("epochs = 20", "epochs = 1")
        .replace("seeds = [0, 1]", "seeds = [0]");
    ws.write("cityscapes.toml", &file);
    expect_code(&ws.mtl(&["run", "cityscapes.toml", "--no-report"]), 0);
    let done: Vec<i64> = rows(
        &ws.path("mtl.db"),
        "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.status = 'done' \
         GROUP BY e.name ORDER BY e.name",
    );
    // cityscapes: four strategies; nyuv2: single-task, then hard and mtan under static and dwa.
    assert_eq!(done, [4, 5]);
}

/// The image/mask layout under `root/<split>/`: `n` photos of 10×14 (three vertical bands
/// coloured by their class), palette masks of the class (top row unlabelled, 255), and
/// 16-bit depth PNGs in millimetres (1000·(1 + class); 0 on the top row).
fn write_image_masks(root: &Path, split: &str, n: usize) {
    let (h, w) = (10u32, 14u32);
    for folder in ["images", "masks", "depth"] {
        std::fs::create_dir_all(root.join(split).join(folder)).expect("mkdir");
    }
    for i in 0..n {
        let class = |x: u32| ((x * 3 / w) as usize + i) % 3;
        let photo = image::RgbImage::from_fn(w, h, |x, _| {
            let mut rgb = [30u8, 30, 30];
            rgb[class(x)] = 220;
            image::Rgb(rgb)
        });
        photo.save(root.join(split).join("images").join(format!("p{i}.png"))).expect("png");
        let mask: Vec<u8> =
            (0..h).flat_map(|y| (0..w).map(move |x| if y == 0 { 255 } else { class(x) as u8 })).collect();
        let file = std::fs::File::create(root.join(split).join("masks").join(format!("p{i}.png"))).expect("mask");
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        let mut palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
        palette[..9].copy_from_slice(&[255, 0, 0, 0, 255, 0, 0, 0, 255]);
        encoder.set_palette(palette);
        encoder.write_header().expect("header").write_image_data(&mask).expect("mask data");
        let depth = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(w, h, |x, y| {
            image::Luma([if y == 0 { 0 } else { 1000 * (1 + class(x) as u16) }])
        });
        depth.save(root.join(split).join("depth").join(format!("p{i}.png"))).expect("depth png");
    }
}

#[test]
fn the_image_mask_layout_trains_segmentation_and_depth_and_refuses_masks_that_do_not_fit() {
    let ws = Workspace::new();
    write_image_masks(&ws.path("streets"), "train", 12);
    write_image_masks(&ws.path("streets"), "test", 4);
    let file = "name = \"streets\"\nepochs = 2\nbatch_size = 4\n\
        [[tasks]]\nname = \"seg\"\ndata = { format = \"image-masks\", path = \"streets\", task = \"segmentation\", classes = 3, size = [8, 12] }\n\
        [[tasks]]\nname = \"depth\"\ndata = { format = \"image-masks\", path = \"streets\", task = \"depth\", depth_scale = 1000, size = [8, 12] }\n\
        [model]\ntrunk = \"encoder-decoder\"\nwidth = 0.125\nstem = \"cifar\"\n\
        [sweep]\nstrategy = [\"hard\"]\nlr = [0.01]\n";
    ws.write("streets.toml", file);
    let out = ws.mtl(&["run", "streets.toml", "--no-report"]);
    expect_code(&out, 0);
    // train/ carved into train and validation; test/ as it is.
    assert!(
        text(&out.stderr).contains("examples (train/val/test): seg 11/1/4 · depth 11/1/4"),
        "{}",
        text(&out.stderr)
    );
    let db = ws.path("mtl.db");
    let stored: Vec<String> = rows(
        &db,
        "SELECT DISTINCT task || '.' || metric FROM metrics WHERE split = 'test' AND metric <> 'loss' ORDER BY 1",
    );
    let expected = [
        "depth.abs_err",
        "depth.delta1",
        "depth.delta2",
        "depth.delta3",
        "depth.rel_err",
        "seg.miou",
        "seg.pixel_accuracy",
    ];
    assert_eq!(stored, expected);
    // Depth in metres (the PNG's millimetres over depth_scale): the error of a network that
    // has seen 2 epochs is within the targets' range, not a thousand times it.
    let errors: Vec<f64> =
        rows(&db, "SELECT value FROM metrics WHERE task = 'depth' AND metric = 'abs_err' AND split = 'test'");
    assert!(errors.iter().all(|e| *e < 4.0), "{errors:?}");

    // A mask of another size than its image, and a value outside the classes: exit 2,
    // naming the file, nothing written.
    let mask = ws.path("streets/train/masks/p3.png");
    image::GrayImage::new(5, 5).save(&mask).expect("small mask");
    let out = ws.mtl(&["run", "streets.toml", "--db", "bad.db"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("masks/p3.png: 5×5, but its image p3.png is 10×14"), "{}", text(&out.stderr));
    image::GrayImage::from_pixel(14, 10, image::Luma([7])).save(&mask).expect("mask");
    let out = ws.mtl(&["run", "streets.toml", "--db", "bad.db"]);
    expect_code(&out, 2);
    assert!(
        text(&out.stderr).contains("masks/p3.png: mask value 7 is neither a class 0..2 nor ignore = 255"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_file(&mask).expect("rm");
    let out = ws.mtl(&["run", "streets.toml", "--db", "bad.db"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("masks/p3.png"), "{}", text(&out.stderr));
    assert!(!ws.path("bad.db").exists());

    // The ready-made experiment of this layout, on a fresh fixture of it.
    write_image_masks(&ws.path("digits"), "train", 12);
    write_image_masks(&ws.path("digits"), "test", 4);
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let file = std::fs::read_to_string(experiments.join("mnist-masks.toml")).expect("experiment file");
    let file = file
        .replace("../data/mnist-masks", "digits")
        .replace("val_size = 250, n_train = 1000, n_test = 500", "val_size = 2")
        .replace("epochs = 5", "epochs = 1")
        .replace("seeds = [0, 1]", "seeds = [0]");
    ws.write("digits.toml", &file);
    expect_code(&ws.mtl(&["run", "digits.toml", "--no-report", "--db", "digits.db"]), 0);
    let done: Vec<i64> = rows(&ws.path("digits.db"), "SELECT COUNT(*) FROM runs WHERE status = 'done'");
    assert_eq!(done, [2], "single-task and hard");
}

/// Census-income's layout: 42 comma-separated columns without a header, cells after a
/// space; the numeric, categorical and label columns where `experiments/census-income.toml`
/// reads them.
fn write_census(path: &Path, rows: usize, offset: usize) {
    let numeric = [0, 5, 16, 17, 18, 24, 30, 39];
    let mut text = String::new();
    for r in 0..rows {
        let i = r + offset;
        let rich = i % 3 == 0;
        let single = i % 4 == 1;
        let cells: Vec<String> = (0..42)
            .map(|c| match c {
                7 => (if single { "Never married" } else { "Married-civilian spouse present" }).to_string(),
                41 => (if rich { "50000+." } else { "- 50000." }).to_string(),
                0 => (20 + (i * 7) % 50 + if single { 0 } else { 15 }).to_string(),
                5 => (if rich { 1500 } else { 0 }).to_string(),
                c if numeric.contains(&c) => ((i * c) % 13).to_string(),
                4 => (if rich { "Masters degree(MA MS MEng MEd MSW MBA)" } else { "High school graduate" }).to_string(),
                c => format!("v{}", (i + c) % 3),
            })
            .collect();
        text.push_str(&cells.join(", "));
        text.push('\n');
    }
    std::fs::write(path, text).expect("census");
}

#[test]
fn the_ready_made_census_income_experiment_trains_on_a_fixture_of_its_layout() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("census")).expect("mkdir");
    write_census(&ws.path("census/census-income.data"), 120, 0);
    write_census(&ws.path("census/census-income.test"), 40, 1000);
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let file = std::fs::read_to_string(experiments.join("census-income.toml")).expect("experiment file");
    let file = file
        .replace("../data/census-income", "census")
        .replace("epochs = 10", "epochs = 1")
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("batch_size = 1024", "batch_size = 32");
    ws.write("census.toml", &file);
    let out = ws.mtl(&["run", "census.toml", "--no-report"]);
    expect_code(&out, 0);
    let db = ws.path("mtl.db");
    let done: Vec<i64> = rows(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'");
    assert_eq!(done, [3], "single-task, hard, mmoe");
    // One table read once for both tasks: the same rows, validation carved from train.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("examples (train/val/test): income 108/12/40 · never-married 108/12/40"), "{stderr}");
    let accuracy: Vec<f64> =
        rows(&db, "SELECT value FROM metrics WHERE metric = 'accuracy' AND split = 'test' AND task = 'never-married'");
    assert_eq!(accuracy.len(), 3);
}
