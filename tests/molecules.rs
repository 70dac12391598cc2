//! QM9 end to end (issue 19): the ready-made `experiments/qm9.toml` trained through the real
//! binary on a fixture in QM9's raw layout, its metrics in the database and in `compare`,
//! `mtl data inspect` of the layout, and the same bits from two runs of one trial.

use std::fmt::Write;
use std::path::Path;

mod support {
    pub mod common;
}
use support::common::{count, expect_code, metric_bits, text, Workspace};

/// `n` molecules in QM9's raw layout under `root`: alkanes of 1–4 carbons and their
/// alcohols, hydrogens on the carbons' axes; every target a function of the carbon and
/// oxygen counts (so there is something to learn); `uncharacterized.txt` lists gdb_3.
fn write_qm9(root: &Path, n: usize) {
    std::fs::create_dir_all(root).expect("mkdir");
    let (mut sdf, mut csv) = (
        String::new(),
        String::from(
            "mol_id,A,B,C,mu,alpha,homo,lumo,gap,r2,zpve,u0,u298,h298,g298,cv,u0_atom,u298_atom,h298_atom,g298_atom\n",
        ),
    );
    for k in 0..n {
        let (carbons, oxygen) = (1 + k % 4, (k / 4) % 2);
        let mut atoms: Vec<(&str, f64, f64, f64)> = (0..carbons).map(|i| ("C", 1.54 * i as f64, 0.0, 0.0)).collect();
        let mut bonds: Vec<(usize, usize)> = (1..carbons).map(|i| (i, i + 1)).collect();
        if oxygen == 1 {
            atoms.push(("O", 1.54 * (carbons - 1) as f64 + 1.43, 0.0, 0.0));
            bonds.push((carbons, atoms.len()));
        }
        let hydroxyl = atoms.len();
        for i in 0..carbons {
            let free = 4 - bonds.iter().filter(|(a, b)| *a == i + 1 || *b == i + 1).count();
            for (h, (y, z)) in [(1.09, 0.0), (-1.09, 0.0), (0.0, 1.09), (0.0, -1.09)].into_iter().take(free).enumerate()
            {
                atoms.push(("H", 1.54 * i as f64 + 0.1 * h as f64, y, z));
                bonds.push((i + 1, atoms.len()));
            }
        }
        if oxygen == 1 {
            atoms.push(("H", 1.54 * (carbons - 1) as f64 + 1.43, 0.96, 0.0));
            bonds.push((hydroxyl, atoms.len()));
        }
        writeln!(sdf, "gdb_{}\n     RDKit          3D\n", k + 1).unwrap();
        writeln!(sdf, "{:>3}{:>3}  0  0  0  0  0  0  0  0999 V2000", atoms.len(), bonds.len()).unwrap();
        for (symbol, x, y, z) in &atoms {
            writeln!(sdf, "{x:>10.4}{y:>10.4}{z:>10.4} {symbol:<3} 0  0  0  0  0  0  0  0  0  0  0  0").unwrap();
        }
        for (a, b) in &bonds {
            writeln!(sdf, "{a:>3}{b:>3}  1  0").unwrap();
        }
        sdf.push_str("M  END\n$$$$\n");
        let (c, o) = (carbons as f64, oxygen as f64);
        let jitter = ((k * 37) % 11) as f64 / 100.0;
        let values = [
            1.0 + c,
            0.5 * c,
            0.2 * c,
            0.1 * c + o + jitter,
            5.0 * c + 3.0 * o,
            -0.25 - 0.01 * c,
            0.05 - 0.005 * o,
            0.3,
            20.0 * c + 10.0 * o,
            0.02 * c,
            -40.0 * c,
            -40.0 * c,
            -40.0 * c,
            -40.0 * c,
            6.0 * c + 2.0 * o + jitter,
            -300.0 * c - 100.0 * o,
            -301.0 * c,
            -302.0 * c,
            -280.0 * c,
        ];
        let values: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
        writeln!(csv, "gdb_{},{}", k + 1, values.join(",")).unwrap();
    }
    std::fs::write(root.join("gdb9.sdf"), sdf).expect("sdf");
    std::fs::write(root.join("gdb9.sdf.csv"), csv).expect("csv");
    let uncharacterized = "Indices of molecules that failed the geometry check\n".repeat(9) + "     3   x\n\n";
    std::fs::write(root.join("uncharacterized.txt"), uncharacterized).expect("uncharacterized");
}

/// `experiments/qm9.toml` pointed at `qm9/`, sized for the fixture: one epoch, one seed.
fn ready_made(ws: &Workspace) -> String {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let file = std::fs::read_to_string(experiments.join("qm9.toml")).expect("experiment file");
    let file = file
        .replace("../data/qm9", "qm9")
        .replace("val_size = 10000, test_size = 10000, n_train = 10000, n_val = 2000", "val_size = 6, test_size = 6")
        .replace("epochs = 10", "epochs = 1")
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("batch_size = 120", "batch_size = 12")
        .replace("width = 64", "width = 16");
    assert_eq!(file.matches("val_size = 6").count(), 11, "every task resized");
    ws.write("qm9.toml", &file);
    file
}

#[test]
fn the_ready_made_qm9_experiment_trains_on_a_fixture_of_its_layout() {
    let ws = Workspace::new();
    write_qm9(&ws.path("qm9"), 41);
    ready_made(&ws);
    let out = ws.mtl(&["run", "qm9.toml", "--no-report"]);
    expect_code(&out, 0);
    // 41 molecules, gdb_3 left out: 6 test, 6 validation, 28 to train.
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("mu 28/6/6"), "{said}");
    let db = ws.path("mtl.db");
    // single-task, and hard under static, uncertainty and nash-mtl.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 4);
    for metric in ["mae", "rmse", "r2"] {
        let sql = format!("SELECT COUNT(DISTINCT task) FROM metrics WHERE split = 'test' AND metric = '{metric}'");
        assert_eq!(count(&db, &sql), 11, "{metric} of every task");
    }
    let compare = ws.mtl(&["compare", "--experiment", "qm9"]);
    expect_code(&compare, 0);
    let table = text(&compare.stdout);
    for expected in ["nash-mtl", "uncertainty", "(baseline)", "u0 mae", "cv r2"] {
        assert!(table.contains(expected), "{expected} missing from\n{table}");
    }
}

#[test]
fn one_trial_run_twice_gives_the_same_bits() {
    let ws = Workspace::new();
    write_qm9(&ws.path("qm9"), 30);
    let file = ready_made(&ws)
        .replace("strategy = [\"single-task\", \"hard\"]", "strategy = [\"hard\"]")
        .replace("weighting = [\"static\", \"uncertainty\", \"nash-mtl\"]", "weighting = [\"nash-mtl\"]")
        .replace("epochs = 1", "epochs = 2");
    ws.write("qm9.toml", &file);
    expect_code(&ws.mtl(&["run", "qm9.toml", "--no-report", "--db", "a.db"]), 0);
    expect_code(&ws.mtl(&["run", "qm9.toml", "--no-report", "--db", "b.db"]), 0);
    let (a, b) = (metric_bits(&ws.path("a.db")), metric_bits(&ws.path("b.db")));
    assert!(a.len() > 100, "{} metric points", a.len());
    assert_eq!(a, b);
}

#[test]
fn data_inspect_summarises_molecules_atoms_and_targets() {
    let ws = Workspace::new();
    write_qm9(&ws.path("qm9"), 12);
    let out = ws.mtl(&["data", "inspect", "qm9"]);
    expect_code(&out, 0);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("qm9: qm9 (3 files read)"), "{stdout}");
    // 11 molecules kept; carbons 1+2+4+1+2+3+4+1+2+3+4 = 27 (gdb_3, 3 carbons, left out), hydrogens 2·27 + 2·11 = 76.
    assert!(stdout.lines().any(|l| l.split_whitespace().take(4).eq(["all", "11", "76", "27"])), "{stdout}");
    for expected in [
        "1 molecule(s) listed in uncharacterized.txt skipped",
        "atoms per molecule: min 5, mean",
        "target mu (D): min",
        "target homo (eV)",
    ] {
        assert!(stderr.contains(expected), "{expected} missing from\n{stderr}");
    }
}
