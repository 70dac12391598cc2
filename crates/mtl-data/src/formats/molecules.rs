//! QM9's raw files, as PyTorch Geometric's `QM9` dataset (`torch_geometric/datasets/qm9.py`)
//! processes them: a folder holding
//!
//! - `gdb9.sdf`: the molecules, V2000 molfiles separated by `$$$$` (name, two header lines,
//!   the counts line, one `x y z symbol …` line per atom in Å, one bond line per bond with
//!   1-based atom indices and type 1 single, 2 double, 3 triple, 4 aromatic, then `M  END`);
//! - `gdb9.sdf.csv`: one row per molecule in the same order, `mol_id` (the molecule's name)
//!   then 19 properties, read by header name;
//! - `uncharacterized.txt` (optional): the 3054 molecules whose geometry check failed, each
//!   line's first field its `N` of `gdb_N`; those molecules are skipped, as PyG skips them.
//!
//! ```no_run
//! let qm9 = mtl_data::formats::molecules::qm9("data/qm9/raw".as_ref())?;
//! assert_eq!(qm9.targets.len(), qm9.graphs.len() * 19);
//! # Ok::<(), mtl_data::DataError>(())
//! ```
//!
//! **Targets** are in PyG's order and units ([`QM9_TARGETS`]): the csv's 19 property columns
//! reordered as PyG's `torch.cat([target[:, 3:], target[:, :3]])` (the rotational constants
//! A, B, C moved last) and multiplied by its `conversion`: the orbital energies, ZPVE and the
//! energies U0, U, H, G from Hartree to eV by `HAR2EV` = 27.211386246 (the CODATA 2018
//! value current PyG uses; older versions had 27.2113825435, 1.4e-7 smaller relatively,
//! about one f32 step), the atomization energies from kcal/mol to eV by `KCALMOL2EV` =
//! 0.04336414, the rest as given. The products are taken in f64 and stored as f32.
//!
//! **Atoms** have [`NODE_FEATURES`] features in PyG's order: the one-hot of H, C, N, O, F;
//! the atomic number; aromatic (1 if the atom is in a bond of type 4); sp, sp2, sp3; the
//! number of hydrogen neighbours. PyG takes the hybridization from RDKit; mtl-lab derives it
//! from bond orders: a C, N or O is sp with a triple bond or two double bonds, else sp2 with
//! a double or an aromatic bond, else sp3; H and F have none of the three.
//!
//! Every file is read line by line through [`crate::files`]; every problem is a
//! [`DataError`] naming the file and the 1-based line.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::files::{self, Expected};
use crate::graphs::GraphSet;
use crate::DataError;

/// The molecules.
pub const SDF: &str = "gdb9.sdf";
/// Their targets.
pub const CSV: &str = "gdb9.sdf.csv";
/// The molecules to skip (optional).
pub const UNCHARACTERIZED: &str = "uncharacterized.txt";

/// Hartree to eV, as PyTorch Geometric's QM9 module had it.
pub const HAR2EV: f64 = 27.211386246;
/// kcal/mol to eV, as PyTorch Geometric's QM9 module has it.
pub const KCALMOL2EV: f64 = 0.04336414;

/// The elements QM9 holds, in the one-hot's order, with their atomic numbers.
pub const ELEMENTS: [(&str, u8); 5] = [("H", 1), ("C", 6), ("N", 7), ("O", 8), ("F", 9)];

/// Features per atom (see the module doc).
pub const NODE_FEATURES: usize = 11;

/// The most atoms one molecule may have: [`GraphSet::sizes`] are u8.
pub const MAX_ATOMS: usize = 255;

/// The most bond codes (molecules × padded atoms²) one read may make: 1 GiB. QM9 needs
/// 130,831 × 29² ≈ 110 M; a file promising far more is refused before it is allocated.
pub const MAX_BOND_CODES: usize = 1 << 30;

/// The bond types of codes 1 to 4, as messages and summaries name them.
pub const BOND_NAMES: [&str; 4] = ["single", "double", "triple", "aromatic"];

/// One of the 19 targets: its csv column (and name), its unit once converted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qm9Target {
    /// The csv column, e.g. `homo`.
    pub name: &'static str,
    /// The unit of the converted value, e.g. `eV`.
    pub unit: &'static str,
    factor: f64,
}

impl Qm9Target {
    /// What the csv's value is multiplied by (1, [`HAR2EV`] or [`KCALMOL2EV`]).
    pub fn factor(&self) -> f64 {
        self.factor
    }
}

const fn target(name: &'static str, unit: &'static str, factor: f64) -> Qm9Target {
    Qm9Target { name, unit, factor }
}

/// The targets in PyTorch Geometric's order and units.
pub const QM9_TARGETS: [Qm9Target; 19] = [
    target("mu", "D", 1.0),
    target("alpha", "a0³", 1.0),
    target("homo", "eV", HAR2EV),
    target("lumo", "eV", HAR2EV),
    target("gap", "eV", HAR2EV),
    target("r2", "a0²", 1.0),
    target("zpve", "eV", HAR2EV),
    target("u0", "eV", HAR2EV),
    target("u298", "eV", HAR2EV),
    target("h298", "eV", HAR2EV),
    target("g298", "eV", HAR2EV),
    target("cv", "cal/(mol·K)", 1.0),
    target("u0_atom", "eV", KCALMOL2EV),
    target("u298_atom", "eV", KCALMOL2EV),
    target("h298_atom", "eV", KCALMOL2EV),
    target("g298_atom", "eV", KCALMOL2EV),
    target("A", "GHz", 1.0),
    target("B", "GHz", 1.0),
    target("C", "GHz", 1.0),
];

/// The molecules kept, as graphs, with their names and targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Molecules {
    /// The molecules, padded to the largest.
    pub graphs: GraphSet,
    /// Each molecule's name (`gdb_1`, …).
    pub names: Vec<String>,
    /// `n × 19` targets, row by row, in [`QM9_TARGETS`]' order.
    pub targets: Vec<f32>,
    /// Molecules skipped because `uncharacterized.txt` lists them.
    pub skipped: usize,
}

/// One atom of a record: its index in [`ELEMENTS`] and its position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Atom {
    pub(crate) element: u8,
    pub(crate) position: [f32; 3],
}

/// One bond of a record: 0-based atom indices and its code 1 to 4.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bond {
    pub(crate) atoms: (u8, u8),
    pub(crate) code: u8,
}

/// One record of the SDF, unpadded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub(crate) name: String,
    pub(crate) atoms: Vec<Atom>,
    pub(crate) bonds: Vec<Bond>,
}

/// The layout read, before padding: the molecules kept and their targets.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawQm9 {
    pub(crate) molecules: Vec<Record>,
    /// `molecules × 19`, converted.
    pub(crate) targets: Vec<f32>,
    pub(crate) skipped: usize,
    pub(crate) files_read: usize,
    pub(crate) has_uncharacterized: bool,
}

/// Reads the QM9 folder `dir` (see the module doc); writes nothing.
pub fn qm9(dir: &Path) -> Result<Molecules, DataError> {
    let raw = read_raw(dir)?;
    let graphs = pad(&dir.join(SDF), &raw.molecules)?;
    let names = raw.molecules.into_iter().map(|m| m.name).collect();
    Ok(Molecules { graphs, names, targets: raw.targets, skipped: raw.skipped })
}

/// Reads and checks the three files; keeps the molecules `uncharacterized.txt` does not list.
pub(crate) fn read_raw(dir: &Path) -> Result<RawQm9, DataError> {
    files::check_kind(dir, Expected::Folder)?;
    for name in [SDF, CSV] {
        if !dir.join(name).exists() {
            let message = format!(
                "no {name}: a QM9 folder holds {SDF} (the molecules), {CSV} (their targets) and optionally \
                 {UNCHARACTERIZED}, as PyTorch Geometric's QM9 raw/ folder does"
            );
            return Err(DataError::invalid(dir, message));
        }
    }
    let uncharacterized_path = dir.join(UNCHARACTERIZED);
    let has_uncharacterized = uncharacterized_path.exists();
    let listed = if has_uncharacterized { uncharacterized(&uncharacterized_path)? } else { HashSet::new() };
    let records = read_sdf(&dir.join(SDF))?;
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    let all_targets = read_csv(&dir.join(CSV), &names)?;
    let is_listed =
        |name: &str| name.strip_prefix("gdb_").and_then(|n| n.parse::<u64>().ok()).is_some_and(|i| listed.contains(&i));
    let (mut molecules, mut targets, mut skipped) = (Vec::new(), Vec::new(), 0);
    let width = QM9_TARGETS.len();
    for (i, record) in records.into_iter().enumerate() {
        if is_listed(&record.name) {
            skipped += 1;
        } else {
            targets.extend_from_slice(&all_targets[i * width..(i + 1) * width]);
            molecules.push(record);
        }
    }
    if molecules.is_empty() {
        let message = if skipped == 0 {
            "no molecules".to_owned()
        } else {
            format!("all {skipped} molecules are listed in {UNCHARACTERIZED}")
        };
        return Err(DataError::invalid(dir.join(SDF), message));
    }
    let files_read = 2 + usize::from(has_uncharacterized);
    Ok(RawQm9 { molecules, targets, skipped, files_read, has_uncharacterized })
}

/// A text file read one line at a time, each at most [`files::MAX_LINE_BYTES`].
struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    /// The 1-based number of the last line read (0 before the first).
    number: u64,
    buf: Vec<u8>,
}

impl Lines {
    fn open(path: &Path) -> Result<Lines, DataError> {
        let (file, _) = files::open(path)?;
        Ok(Lines { path: path.into(), reader: BufReader::with_capacity(1 << 16, file), number: 0, buf: Vec::new() })
    }

    /// The next line without its line ending, with its number; `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, String)>, DataError> {
        self.buf.clear();
        let read = (&mut self.reader)
            .take(files::MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| DataError::io(&self.path, e))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        files::check_line(&self.path, self.number, self.buf.len(), "line")?;
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.number, String::from_utf8_lossy(&self.buf).into_owned())))
    }

    /// An error at line `line` of this file.
    fn error(&self, line: u64, message: impl std::fmt::Display) -> DataError {
        DataError::invalid(&self.path, format!("line {line}: {message}"))
    }
}

/// `line` quoted for a message, cut to 60 characters.
fn quoted(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((end, _)) => format!("{:?}…", &line[..end]),
        None => format!("{line:?}"),
    }
}

/// The indices `uncharacterized.txt` lists: the first field of every line where it is a
/// positive integer (the header and footer lines are not).
fn uncharacterized(path: &Path) -> Result<HashSet<u64>, DataError> {
    let mut lines = Lines::open(path)?;
    let mut listed = HashSet::new();
    while let Some((_, line)) = lines.next()? {
        if let Some(index) = line.split_whitespace().next().and_then(|f| f.parse::<u64>().ok()).filter(|&i| i > 0) {
            listed.insert(index);
        }
    }
    Ok(listed)
}

/// Every record of the SDF at `path`.
fn read_sdf(path: &Path) -> Result<Vec<Record>, DataError> {
    let mut lines = Lines::open(path)?;
    let mut records = Vec::new();
    loop {
        // Blank lines between records (and at the end) are not records.
        let (start, name) = loop {
            match lines.next()? {
                None => return Ok(records),
                Some((_, line)) if line.trim().is_empty() => {}
                Some(found) => break found,
            }
        };
        records.push(read_record(&mut lines, start, name.trim())?);
    }
}

/// The record named `name` (its first line, `start`), up to and with its `$$$$`.
fn read_record(lines: &mut Lines, start: u64, name: &str) -> Result<Record, DataError> {
    // The next line of the record, which must be `what`; the end of the file or a `$$$$`
    // there is a truncated record.
    let need = |lines: &mut Lines, what: &str| -> Result<(u64, String), DataError> {
        match lines.next()? {
            Some((number, line)) if !line.starts_with("$$$$") => Ok((number, line)),
            ended => {
                let at = if ended.is_some() { "a $$$$ line".to_owned() } else { "the end of the file".into() };
                let message = format!("record {name:?} (from line {start}) is truncated: {at} comes before {what}");
                Err(lines.error(lines.number, message))
            }
        }
    };
    need(lines, "its second header line")?;
    need(lines, "its third header line")?;
    let (counts_line, counts) = need(lines, "its counts line")?;
    let field = |from: usize| counts.get(from..from + 3).and_then(|f| f.trim().parse::<usize>().ok());
    let (n_atoms, n_bonds) = match (field(0), field(3)) {
        (Some(atoms), Some(bonds)) if counts.trim_end().ends_with("V2000") => (atoms, bonds),
        _ => {
            let message = format!(
                "malformed counts line {}: expected the atom count in columns 1–3, the bond count in 4–6, \
                 ending with V2000",
                quoted(&counts)
            );
            return Err(lines.error(counts_line, message));
        }
    };
    if n_atoms == 0 || n_atoms > MAX_ATOMS {
        let message = format!("{n_atoms} atoms: a molecule has 1 to {MAX_ATOMS} atoms (sizes are stored as u8)");
        return Err(lines.error(counts_line, message));
    }
    let mut atoms = Vec::with_capacity(n_atoms);
    for i in 0..n_atoms {
        let (number, line) = need(lines, &format!("atom {} of {n_atoms}", i + 1))?;
        atoms.push(atom(&line).map_err(|message| lines.error(number, message))?);
    }
    let mut bonds: Vec<Bond> = Vec::with_capacity(n_bonds);
    for i in 0..n_bonds {
        let (number, line) = need(lines, &format!("bond {} of {n_bonds}", i + 1))?;
        let bond = bond(&line, n_atoms).map_err(|message| lines.error(number, message))?;
        let (a, b) = bond.atoms;
        if bonds.iter().any(|other| other.atoms == (a, b) || other.atoms == (b, a)) {
            let message = format!("a second bond between atoms {} and {}", a + 1, b + 1);
            return Err(lines.error(number, message));
        }
        bonds.push(bond);
    }
    // The property block (`M  CHG`, …) ends with `M  END`.
    while need(lines, "its M  END line")?.1.trim_end() != "M  END" {}
    // Data items follow up to `$$$$`, which the last record may lack.
    while let Some((_, line)) = lines.next()? {
        if line.starts_with("$$$$") {
            break;
        }
    }
    Ok(Record { name: name.to_owned(), atoms, bonds })
}

/// An atom line: `x y z symbol …`.
fn atom(line: &str) -> Result<Atom, String> {
    let fields: Vec<&str> = line.split_whitespace().take(4).collect();
    // A bond line here has four numbers: the counts promise more atoms than the record has.
    let [x, y, z, symbol] = fields[..] else {
        return Err(format!("{} is not an atom line (x y z symbol)", quoted(line)));
    };
    if !symbol.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("{} is not an atom line (x y z symbol)", quoted(line)));
    }
    let mut position = [0f32; 3];
    for (value, field) in position.iter_mut().zip([x, y, z]) {
        *value = field.parse().map_err(|_| format!("coordinate {} is not a number", quoted(field)))?;
        if !value.is_finite() {
            return Err(format!("coordinate {} is not finite", quoted(field)));
        }
    }
    let Some(element) = ELEMENTS.iter().position(|&(e, _)| e == symbol) else {
        return Err(format!("element {}: QM9 holds only H, C, N, O and F", quoted(symbol)));
    };
    Ok(Atom { element: element as u8, position })
}

/// A bond line: first atom in columns 1–3, second in 4–6, type in 7–9.
fn bond(line: &str, n_atoms: usize) -> Result<Bond, String> {
    let field = |from: usize| line.get(from..from + 3).and_then(|f| f.trim().parse::<usize>().ok());
    let (Some(a), Some(b), Some(code)) = (field(0), field(3), field(6)) else {
        return Err(format!(
            "malformed bond line {}: expected the first atom in columns 1–3, the second in 4–6, the type in 7–9",
            quoted(line)
        ));
    };
    if let Some(out) = [a, b].into_iter().find(|&i| i == 0 || i > n_atoms) {
        return Err(format!("bond to atom {out}, but the molecule has atoms 1 to {n_atoms}"));
    }
    if a == b {
        return Err(format!("bond from atom {a} to itself"));
    }
    if !(1..=4).contains(&code) {
        return Err(format!("bond type {code}: the types are 1 (single), 2 (double), 3 (triple) and 4 (aromatic)"));
    }
    // Below MAX_ATOMS + 1 and 5: they fit u8.
    Ok(Bond { atoms: (a as u8 - 1, b as u8 - 1), code: code as u8 })
}

/// The csv's targets of each of the SDF's molecules `names`, in order: `names × 19`,
/// converted to PyG's units.
fn read_csv(path: &Path, names: &[&str]) -> Result<Vec<f32>, DataError> {
    let mut lines = Lines::open(path)?;
    let Some((_, header)) = lines.next()? else {
        return Err(DataError::invalid(path, "empty file: expected the header mol_id,A,B,C,mu,…"));
    };
    let columns: Vec<&str> = header.trim_start_matches('\u{feff}').split(',').map(str::trim).collect();
    let position = |name: &str| {
        columns.iter().position(|&c| c == name).ok_or_else(|| {
            let message = format!(
                "no column {name:?} in the header; expected mol_id and the 19 targets A, B, C, mu, alpha, homo, \
                 lumo, gap, r2, zpve, u0, u298, h298, g298, cv, u0_atom, u298_atom, h298_atom, g298_atom"
            );
            lines.error(1, message)
        })
    };
    let id_column = position("mol_id")?;
    let target_columns: Vec<usize> = QM9_TARGETS.iter().map(|t| position(t.name)).collect::<Result<_, _>>()?;
    let mut targets = Vec::with_capacity(names.len() * QM9_TARGETS.len());
    let mut rows = 0;
    while let Some((number, line)) = lines.next()? {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            let message = format!("{} fields, but the header has {}", fields.len(), columns.len());
            return Err(lines.error(number, message));
        }
        let Some(&name) = names.get(rows) else {
            let message = format!("more rows than the {} molecules of {SDF}", names.len());
            return Err(lines.error(number, message));
        };
        if fields[id_column] != name {
            let message =
                format!("mol_id {}, but molecule {} of {SDF} is {name:?}", quoted(fields[id_column]), rows + 1);
            return Err(lines.error(number, message));
        }
        for (t, &column) in QM9_TARGETS.iter().zip(&target_columns) {
            let cell = fields[column];
            let value: f64 = cell
                .parse()
                .map_err(|_| lines.error(number, format!("column {}: {} is not a number", t.name, quoted(cell))))?;
            let converted = (value * t.factor) as f32;
            if !value.is_finite() || !converted.is_finite() {
                return Err(lines.error(number, format!("column {}: {} is not a finite f32", t.name, quoted(cell))));
            }
            targets.push(converted);
        }
        rows += 1;
    }
    if rows != names.len() {
        let message = format!("the file ends after {rows} rows, but {SDF} has {} molecules", names.len());
        return Err(lines.error(lines.number, message));
    }
    Ok(targets)
}

/// The records as one [`GraphSet`] padded to the largest; `sdf` names the file in errors.
fn pad(sdf: &Path, records: &[Record]) -> Result<GraphSet, DataError> {
    let max_nodes = records.iter().map(|r| r.atoms.len()).max().unwrap_or(0);
    let n = records.len();
    if n.saturating_mul(max_nodes * max_nodes) > MAX_BOND_CODES {
        let message = format!(
            "{n} molecules padded to {max_nodes} atoms need {} bond codes, more than {MAX_BOND_CODES}",
            n as u128 * (max_nodes * max_nodes) as u128
        );
        return Err(DataError::invalid(sdf, message));
    }
    let mut nodes = vec![0f32; n * max_nodes * NODE_FEATURES];
    let mut positions = vec![0f32; n * max_nodes * 3];
    let mut bonds = vec![0u8; n * max_nodes * max_nodes];
    for (g, record) in records.iter().enumerate() {
        let matrix = &mut bonds[g * max_nodes * max_nodes..(g + 1) * max_nodes * max_nodes];
        for bond in &record.bonds {
            let (a, b) = (usize::from(bond.atoms.0), usize::from(bond.atoms.1));
            matrix[a * max_nodes + b] = bond.code;
            matrix[b * max_nodes + a] = bond.code;
        }
        for (i, atom) in record.atoms.iter().enumerate() {
            let at = g * max_nodes + i;
            positions[at * 3..(at + 1) * 3].copy_from_slice(&atom.position);
            let row = &matrix[i * max_nodes..i * max_nodes + record.atoms.len()];
            let features = atom_features(atom.element, row, &record.atoms);
            nodes[at * NODE_FEATURES..(at + 1) * NODE_FEATURES].copy_from_slice(&features);
        }
    }
    Ok(GraphSet {
        max_nodes,
        node_features: NODE_FEATURES,
        nodes: Arc::from(nodes),
        positions: Arc::from(positions),
        bonds: Arc::from(bonds),
        sizes: records.iter().map(|r| r.atoms.len() as u8).collect(),
    })
}

/// One atom's features (see the module doc) from its element and its row of bond codes.
fn atom_features(element: u8, bond_row: &[u8], atoms: &[Atom]) -> [f32; NODE_FEATURES] {
    let count = |code: u8| bond_row.iter().filter(|&&c| c == code).count();
    let (double, triple, aromatic) = (count(2), count(3), count(4));
    let hydrogens = bond_row.iter().zip(atoms).filter(|(&c, a)| c != 0 && a.element == 0).count();
    let mut features = [0f32; NODE_FEATURES];
    features[usize::from(element)] = 1.0;
    features[5] = f32::from(ELEMENTS[usize::from(element)].1);
    features[6] = f32::from(u8::from(aromatic > 0));
    // C, N, O (indices 1 to 3 of ELEMENTS); H and F have no hybridization flag.
    if (1..=3).contains(&element) {
        let flag = if triple > 0 || double >= 2 {
            7
        } else if double > 0 || aromatic > 0 {
            8
        } else {
            9
        };
        features[flag] = 1.0;
    }
    features[10] = hydrogens as f32;
    features
}

/// A QM9 folder in the real format, for tests here and elsewhere: `gdb_1` methane, `gdb_2`
/// ammonia, `gdb_3` water (listed as uncharacterized) and `gdb_4` hydrogen cyanide.
#[doc(hidden)]
pub const FIXTURE_SDF: &str = "\
gdb_1
     RDKit          3D

  5  4  0  0  0  0  0  0  0  0999 V2000
   -0.0127    1.0858    0.0080 C   0  0  0  0  0  0  0  0  0  0  0  0
    0.0022   -0.0060    0.0020 H   0  0  0  0  0  0  0  0  0  0  0  0
    1.0117    1.4638    0.0003 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.5408    1.4475   -0.8766 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.5238    1.4379    0.9064 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
  1  4  1  0
  1  5  1  0
M  END
$$$$
gdb_2
     RDKit          3D

  4  3  0  0  0  0  0  0  0  0999 V2000
   -0.0404    1.0241    0.0626 N   0  0  0  0  0  0  0  0  0  0  0  0
    0.0173   -0.0125   -0.0274 H   0  0  0  0  0  0  0  0  0  0  0  0
    0.9158    1.3587   -0.0288 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.5203    1.3435   -0.7755 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
  1  4  1  0
M  END
$$$$
gdb_3
     RDKit          3D

  3  2  0  0  0  0  0  0  0  0999 V2000
   -0.0343    0.9775    0.0076 O   0  0  0  0  0  0  0  0  0  0  0  0
    0.0648    0.0206    0.0015 H   0  0  0  0  0  0  0  0  0  0  0  0
    0.8717    1.3008    0.0007 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
M  END
$$$$
gdb_4
     RDKit          3D

  3  2  0  0  0  0  0  0  0  0999 V2000
   -0.0133    1.1324    0.0083 C   0  0  0  0  0  0  0  0  0  0  0  0
    0.0023   -0.0191    0.0019 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.0278    2.2902    0.0149 N   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  3  0
M  END
$$$$
";

/// The targets of [`FIXTURE_SDF`]'s molecules (QM9's own values for these molecules).
#[doc(hidden)]
pub const FIXTURE_CSV: &str = "\
mol_id,A,B,C,mu,alpha,homo,lumo,gap,r2,zpve,u0,u298,h298,g298,cv,u0_atom,u298_atom,h298_atom,g298_atom
gdb_1,157.7118,157.70997,157.70699,0.0,13.21,-0.3877,0.1171,0.5048,35.3641,0.044749,-40.47893,-40.476062,-40.475117,-40.498597,6.469,-395.999594594,-398.643290011,-401.014646522,-372.471772148
gdb_2,293.60975,293.54111,191.39397,1.6256,9.46,-0.257,0.0829,0.3399,26.1563,0.034358,-56.525887,-56.523026,-56.522082,-56.544961,6.316,-276.861363363,-278.620271347,-280.399259105,-259.338802101
gdb_3,799.58812,437.90386,282.94545,1.8511,6.31,-0.2928,0.0687,0.3615,19.0002,0.021375,-76.404702,-76.401867,-76.400922,-76.422349,6.002,-213.087623624,-213.974294233,-215.159658273,-201.407171366
gdb_4,0.0,44.593883,44.593883,2.8937,12.99,-0.3604,0.0191,0.3796,59.5248,0.016601,-93.411888,-93.40937,-93.408425,-93.431246,6.278,-265.89369174,-265.465950097,-266.058871637,-254.576087208
";

/// `uncharacterized.txt` for [`FIXTURE_SDF`]: header, one index (3), footer.
#[doc(hidden)]
pub const FIXTURE_UNCHARACTERIZED: &str = "\
 Molecules whose B3LYP geometry failed the consistency check
 against their GDB-17 SMILES

   Index     SMILES-GDB17     SMILES-B3LYP
 ------------------------------------------
       3     O                O
 ------------------------------------------
 Total: 1 molecule
";

#[cfg(test)]
#[path = "molecules_tests.rs"]
mod tests;
