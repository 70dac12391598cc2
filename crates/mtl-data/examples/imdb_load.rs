//! Times reading, tokenising, building a vocabulary and encoding all 50,000 aclImdb reviews.
//!
//! `cargo run --release -p mtl-data --example imdb_load -- PATH [max_size] [max_len]`
//! (defaults: max_size 20000, min_freq 2, max_len 256; the vocabulary is built on train only).

use mtl_data::formats::text::{aclimdb, tokenize_all, Vocabulary};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const MIN_FREQ: usize = 2;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: imdb_load PATH [max_size] [max_len]";
    let path = PathBuf::from(args.next().ok_or(usage)?);
    let mut number = |name: &str, default: usize| {
        args.next().map_or(Ok(default), |arg| arg.parse().map_err(|_| format!("{name} must be a count, got {arg:?}")))
    };
    let max_size = number("max_size", 20_000)?;
    let max_len = number("max_len", 256)?;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{threads} cores available");
    let total = Instant::now();
    let mut phase = Instant::now();
    let mut lap = |name: &str| {
        println!("{name:<12} {:>8.3} s", phase.elapsed().as_secs_f64());
        phase = Instant::now();
    };

    let data = aclimdb(&path).map_err(|e| e.to_string())?;
    let test = data.test.ok_or("aclImdb gave no test split")?;
    lap("read");
    let train_tokens = tokenize_all(&data.train.texts);
    let test_tokens = tokenize_all(&test.texts);
    lap("tokenise");
    let vocabulary = Vocabulary::build(train_tokens.iter().map(Vec::as_slice), max_size, MIN_FREQ);
    lap("vocabulary");
    let train_ids: Vec<Vec<u32>> = train_tokens.iter().map(|t| vocabulary.encode(t, max_len)).collect();
    let test_ids: Vec<Vec<u32>> = test_tokens.iter().map(|t| vocabulary.encode(t, max_len)).collect();
    lap("encode");
    println!("{:<12} {:>8.3} s", "total", total.elapsed().as_secs_f64());

    let report = &data.report;
    println!(
        "reviews: {} train, {} test; files read {}, decoded as Windows-1252 {}, replacements {}",
        train_ids.len(),
        test_ids.len(),
        report.files_read,
        report.decoded_as_windows_1252,
        report.replacements
    );
    for (split, labels) in [("train", &data.train.labels), ("test", &test.labels)] {
        let counts: Vec<String> = data
            .class_names
            .iter()
            .enumerate()
            .map(|(class, name)| format!("{name} {}", labels.iter().filter(|&&l| l as usize == class).count()))
            .collect();
        println!("{split} classes: {}", counts.join(", "));
    }
    let n_tokens = |docs: &[Vec<String>]| docs.iter().map(Vec::len).sum::<usize>();
    let truncated = |docs: &[Vec<String>]| docs.iter().filter(|d| d.len() > max_len).count();
    println!(
        "tokens: {} train, {} test; reviews longer than {max_len}: {} train, {} test",
        n_tokens(&train_tokens),
        n_tokens(&test_tokens),
        truncated(&train_tokens),
        truncated(&test_tokens)
    );
    let (oov, kept) = test_ids.iter().flatten().fold((0usize, 0usize), |(oov, kept), &id| {
        (oov + usize::from(id == Vocabulary::OOV), kept + usize::from(id != Vocabulary::PAD))
    });
    println!(
        "vocabulary: {} ids (max_size {max_size}, min_freq {MIN_FREQ}); test OOV rate {:.2}% of encoded tokens",
        vocabulary.len(),
        100.0 * oov as f64 / kept.max(1) as f64
    );
    Ok(())
}
