//! Logging throughput of mtl-store, logging as a sweep does: per run `claim_run`, one
//! `log_epoch` transaction per epoch with 2 tasks × 2 splits × 4 metrics (and the
//! claim's heartbeat), `finish_run`.
//!
//! ```text
//! cargo bench -p mtl-store --bench logging -- [--runs 10000] [--epochs 100] [--db PATH]
//! ```
//! Prints metric points per second and the database's size; the database is kept
//! (default `target/store-bench.db`) for `benches/store_scale.sh` to query.

use std::path::PathBuf;
use std::time::Instant;

use mtl_store::{Claim, ClaimPolicy, MetricPoint, NewRun, Owner, ParamValue, Provenance, RunStatus, Store};

fn main() {
    let mut runs = 10_000usize;
    let mut epochs = 100u32;
    let mut db = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")).join("store-bench.db");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--epochs" => epochs = args.next().and_then(|v| v.parse().ok()).expect("--epochs N"),
            "--db" => db = args.next().expect("--db PATH").into(),
            _ => {} // cargo bench passes --bench
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut store = Store::open(&db).expect("open");
    let experiment = store.experiment("scale").expect("experiment");
    let provenance = Provenance {
        experiment_file: Some("experiments/scale.toml".into()),
        experiment_text: Some("name = \"scale\"\n".into()),
        mtl_version: Some(env!("CARGO_PKG_VERSION").into()),
        git_commit: None,
        host: Some("bench".into()),
        device: Some("cpu".into()),
    };
    let policy = ClaimPolicy {
        owner: Owner::this_process("bench"),
        stale_after: std::time::Duration::from_secs(3600),
        retry_ended_before: String::new(),
    };
    let strategies = ["single-task", "hard", "soft", "cross-stitch", "mmoe"];
    let weightings = ["static", "uncertainty", "pcgrad", "mgda"];
    let lambdas = [0.1, 0.3, 1.0, 3.0, 10.0];
    let series: Vec<(&str, &str, &str)> = ["left", "right"]
        .iter()
        .flat_map(|t| ["val", "test"].map(move |s| (*t, s)))
        .flat_map(|(t, s)| ["accuracy", "loss", "macro_f1", "precision"].map(move |m| (t, s, m)))
        .collect();
    let start = Instant::now();
    let mut points = 0usize;
    for i in 0..runs {
        let strategy = strategies[i % strategies.len()];
        let params = vec![
            ("strategy".to_string(), ParamValue::Text(strategy.into())),
            ("weighting".into(), ParamValue::Text(weightings[(i / 5) % weightings.len()].into())),
            ("lambda".into(), ParamValue::Num(lambdas[(i / 20) % lambdas.len()])),
            ("lr".into(), ParamValue::Num(if (i / 100) % 2 == 0 { 0.001 } else { 0.01 })),
            ("seed".into(), ParamValue::Num((i / 200) as f64)),
        ];
        let key = format!("trial-{i:06}");
        let new_run =
            NewRun { experiment, trial_key: &key, settings_json: "{}", params: &params, provenance: &provenance };
        let Claim::Claimed { run, .. } = store.claim_run(&new_run, &policy).expect("claim") else {
            panic!("trial {key} was not claimed")
        };
        for epoch in 1..=epochs {
            // Deterministic values that rise with the epoch and differ between runs.
            let progress = f64::from(epoch) / f64::from(epochs);
            let epoch_points: Vec<MetricPoint> = series
                .iter()
                .enumerate()
                .map(|(j, &(task, split, metric))| {
                    let noise = ((i * 31 + j * 7 + epoch as usize * 13) % 97) as f64 / 970.0;
                    let value =
                        if metric == "loss" { 2.0 - 1.5 * progress + noise } else { 0.5 + 0.4 * progress - noise };
                    MetricPoint::new(task, split, metric, value)
                })
                .collect();
            store.log_epoch(run, epoch, &epoch_points).expect("log");
            points += epoch_points.len();
        }
        store.finish_run(run, RunStatus::Done, None).expect("finish");
    }
    let seconds = start.elapsed().as_secs_f64();
    drop(store);
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "logged {points} metric points ({runs} runs × {epochs} epochs × {} metrics) in {seconds:.1} s: {:.0} points/s; \
         {} is {:.0} MiB",
        series.len(),
        points as f64 / seconds,
        db.display(),
        size as f64 / (1 << 20) as f64
    );
}
