//! `mtl data inspect` of QM9's raw files (`format = "qm9"`, read by
//! [`crate::formats::molecules`]): the molecules read and those skipped as uncharacterized,
//! atoms per molecule, atoms of each element, bonds of each type, and each target's range
//! and mean in PyTorch Geometric's units.
//!
//! The molecules are read as a run reads them (every problem is the reader's error, naming
//! the file and line), but not padded into a graph set.
//!
//! ```no_run
//! let summary = mtl_data::inspect::molecules::summary("data/qm9/raw".as_ref())?;
//! println!("{} molecules, {} skipped", summary.molecules, summary.skipped);
//! # Ok::<(), mtl_data::DataError>(())
//! ```

use std::path::Path;

use super::{Format, Inspection, SplitSummary};
use crate::formats::molecules::{read_raw, BOND_NAMES, CSV, ELEMENTS, QM9_TARGETS, SDF, UNCHARACTERIZED};
use crate::DataError;

/// One target's values over the molecules read, in its converted unit.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStats {
    /// The target, e.g. `homo`.
    pub name: &'static str,
    /// Its unit, e.g. `eV`.
    pub unit: &'static str,
    /// The smallest value.
    pub min: f64,
    /// The mean.
    pub mean: f64,
    /// The largest value.
    pub max: f64,
}

/// What `mtl data inspect` shows of a QM9 folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Qm9Summary {
    /// Molecules read and kept.
    pub molecules: usize,
    /// Molecules skipped because `uncharacterized.txt` lists them.
    pub skipped: usize,
    /// Whether the folder has `uncharacterized.txt`.
    pub has_uncharacterized: bool,
    /// Atoms per molecule: fewest, mean, most.
    pub atoms: (usize, f64, usize),
    /// Atoms of each element, in [`ELEMENTS`]' order (H, C, N, O, F).
    pub elements: [usize; 5],
    /// Bonds of each type, in [`BOND_NAMES`]' order (single, double, triple, aromatic).
    pub bonds: [usize; 4],
    /// Every target, in [`QM9_TARGETS`]' order.
    pub targets: Vec<TargetStats>,
    /// Files read.
    pub files_read: usize,
}

/// Whether `root` holds `gdb9.sdf` and `gdb9.sdf.csv`.
pub(super) fn is_layout(root: &Path) -> bool {
    root.join(SDF).exists() && root.join(CSV).exists()
}

/// The [`Qm9Summary`] of the folder `root`.
pub fn summary(root: &Path) -> Result<Qm9Summary, DataError> {
    let raw = read_raw(root)?;
    let n = raw.molecules.len();
    let (mut elements, mut bonds) = ([0; 5], [0; 4]);
    let (mut fewest, mut most, mut all_atoms) = (usize::MAX, 0, 0);
    for molecule in &raw.molecules {
        let atoms = molecule.atoms.len();
        (fewest, most, all_atoms) = (fewest.min(atoms), most.max(atoms), all_atoms + atoms);
        molecule.atoms.iter().for_each(|a| elements[usize::from(a.element)] += 1);
        molecule.bonds.iter().for_each(|b| bonds[usize::from(b.code) - 1] += 1);
    }
    let width = QM9_TARGETS.len();
    let targets = QM9_TARGETS
        .iter()
        .enumerate()
        .map(|(t, target)| {
            let values = raw.targets.iter().skip(t).step_by(width).map(|&v| f64::from(v));
            let (min, max, sum) = values
                .fold((f64::INFINITY, f64::NEG_INFINITY, 0.0), |(lo, hi, sum), v| (lo.min(v), hi.max(v), sum + v));
            TargetStats { name: target.name, unit: target.unit, min, mean: sum / n as f64, max }
        })
        .collect();
    Ok(Qm9Summary {
        molecules: n,
        skipped: raw.skipped,
        has_uncharacterized: raw.has_uncharacterized,
        // The reader refuses a folder without molecules: n > 0.
        atoms: (fewest, all_atoms as f64 / n as f64, most),
        elements,
        bonds,
        targets,
        files_read: raw.files_read,
    })
}

/// The inspection `mtl data inspect` prints: one row of the molecules read with the atoms
/// of each element; the rest as notes.
pub(super) fn inspection(root: &Path) -> Result<Inspection, DataError> {
    let s = summary(root)?;
    let class_names = ELEMENTS.iter().map(|(symbol, _)| (*symbol).to_owned()).collect();
    let split = SplitSummary {
        name: "all".into(),
        count: s.molecules,
        per_class: s.elements.to_vec(),
        image_shape: None,
        text_lengths: None,
    };
    let mut inspection = Inspection::of(root, Format::Qm9, class_names, vec![split], s.files_read, Vec::new());
    let notes = &mut inspection.notes;
    notes.push("per element: the atoms of the molecules read".into());
    notes.push(if s.has_uncharacterized {
        format!("{} molecule(s) listed in {UNCHARACTERIZED} skipped, as PyTorch Geometric skips them", s.skipped)
    } else {
        format!("no {UNCHARACTERIZED}: every molecule is kept (PyTorch Geometric skips the 3054 it lists)")
    });
    let (fewest, mean, most) = s.atoms;
    notes.push(format!("atoms per molecule: min {fewest}, mean {mean:.2}, max {most} (graphs are padded to {most})"));
    let bonds: Vec<String> = BOND_NAMES.iter().zip(s.bonds).map(|(name, n)| format!("{name} {n}")).collect();
    notes.push(format!("bonds: {}", bonds.join(", ")));
    for t in &s.targets {
        notes.push(format!("target {} ({}): min {:.6}, mean {:.6}, max {:.6}", t.name, t.unit, t.min, t.mean, t.max));
    }
    Ok(inspection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::molecules::{FIXTURE_CSV, FIXTURE_SDF, FIXTURE_UNCHARACTERIZED, HAR2EV};

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("dir");
        for (name, text) in [(SDF, FIXTURE_SDF), (CSV, FIXTURE_CSV), (UNCHARACTERIZED, FIXTURE_UNCHARACTERIZED)] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        dir
    }

    #[test]
    fn the_summary_counts_molecules_atoms_bonds_and_target_ranges() {
        let dir = fixture();
        let s = summary(dir.path()).expect("summary");
        // Methane, ammonia and HCN; water is uncharacterized.
        assert_eq!((s.molecules, s.skipped, s.has_uncharacterized, s.files_read), (3, 1, true, 3));
        assert_eq!(s.atoms, (3, 4.0, 5));
        assert_eq!(s.elements, [8, 2, 2, 0, 0]);
        assert_eq!(s.bonds, [8, 0, 1, 0]);
        assert_eq!(s.targets.len(), 19);
        let homo = &s.targets[2];
        assert_eq!((homo.name, homo.unit), ("homo", "eV"));
        // homo of gdb_1, gdb_2, gdb_4: -0.3877, -0.257, -0.3604 Hartree.
        assert_eq!(homo.min, f64::from((-0.3877 * HAR2EV) as f32));
        assert_eq!(homo.max, f64::from((-0.257 * HAR2EV) as f32));
        let a = &s.targets[16];
        assert_eq!((a.name, a.unit, a.min, a.max), ("A", "GHz", 0.0, f64::from(293.60975f32)));
        assert!((a.mean - (157.7118 + 293.60975) / 3.0).abs() < 1e-4, "{a:?}");
    }

    #[test]
    fn inspect_recognises_the_folder_and_shows_elements_and_notes() {
        let dir = fixture();
        let inspection = super::super::inspect(dir.path(), None).expect("inspects");
        assert_eq!(inspection.format, Format::Qm9);
        assert_eq!(inspection.class_names, ["H", "C", "N", "O", "F"]);
        let rows: Vec<_> = inspection.splits.iter().map(|s| (s.name.as_str(), s.count, s.per_class.clone())).collect();
        assert_eq!(rows, [("all", 3, vec![8, 2, 2, 0, 0])]);
        assert_eq!((inspection.files_read, inspection.problems.len()), (3, 0));
        let notes = inspection.notes.join("\n");
        for expected in [
            "1 molecule(s) listed in uncharacterized.txt skipped",
            "atoms per molecule: min 3, mean 4.00, max 5 (graphs are padded to 5)",
            "bonds: single 8, double 0, triple 1, aromatic 0",
            "target mu (D): min 0.000000, mean 1.506433, max 2.893700",
            "target cv (cal/(mol·K)): min 6.278000",
        ] {
            assert!(notes.contains(expected), "{notes}\nlacks {expected:?}");
        }
        assert_eq!(inspection.notes.iter().filter(|n| n.starts_with("target ")).count(), 19);
        std::fs::remove_file(dir.path().join(UNCHARACTERIZED)).expect("rm");
        let inspection = super::super::inspect(dir.path(), Some(Format::Qm9)).expect("inspects");
        assert_eq!((inspection.splits[0].count, inspection.files_read), (4, 2));
        assert!(inspection.notes.iter().any(|n| n.starts_with("no uncharacterized.txt: every molecule is kept")));
    }
}
