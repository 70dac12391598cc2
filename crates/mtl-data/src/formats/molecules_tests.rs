//! The QM9 reader on its fixture and on every defect it refuses.

use super::*;

/// A change to a fixture file's text.
type Edit = dyn Fn(&str) -> String;

/// A folder holding the fixture, `edit` applied to the file it names.
fn folder(edit: Option<(&str, &Edit)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    for (name, text) in [(SDF, FIXTURE_SDF), (CSV, FIXTURE_CSV), (UNCHARACTERIZED, FIXTURE_UNCHARACTERIZED)] {
        let text = match edit {
            Some((file, edit)) if file == name => edit(text),
            _ => text.to_owned(),
        };
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

/// `text` with its 1-based line `number` replaced by `line`.
fn with_line(text: &str, number: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[number - 1] = line;
    lines.join("\n") + "\n"
}

/// `text` cut after its first `n` lines.
fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).map(|l| format!("{l}\n")).collect()
}

#[test]
fn reads_the_fixture_skipping_the_uncharacterized_molecule() {
    let dir = folder(None);
    let read = qm9(dir.path()).expect("reads");
    assert_eq!(read.names, ["gdb_1", "gdb_2", "gdb_4"]);
    assert_eq!(read.skipped, 1);
    let graphs = &read.graphs;
    assert_eq!((graphs.len(), graphs.max_nodes, graphs.node_features), (3, 5, 11));
    assert_eq!(&*graphs.sizes, &[5, 4, 3]);
    let atom = |g: usize, i: usize| {
        let at = (g * 5 + i) * NODE_FEATURES;
        graphs.nodes[at..at + NODE_FEATURES].to_vec()
    };
    assert_eq!(atom(0, 0), [0., 1., 0., 0., 0., 6., 0., 0., 0., 1., 4.]);
    assert_eq!(atom(0, 1), [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0.]);
    assert_eq!(atom(1, 0), [0., 0., 1., 0., 0., 7., 0., 0., 0., 1., 3.]);
    // HCN: C with a triple bond and one H, N with the triple bond.
    assert_eq!(atom(2, 0), [0., 1., 0., 0., 0., 6., 0., 1., 0., 0., 1.]);
    assert_eq!(atom(2, 2), [0., 0., 1., 0., 0., 7., 0., 1., 0., 0., 0.]);
    assert_eq!(atom(2, 3), [0.; 11], "padding");
    let bond = |g: usize, a: usize, b: usize| graphs.bonds[g * 25 + a * 5 + b];
    assert_eq!((bond(2, 0, 2), bond(2, 2, 0), bond(2, 0, 1), bond(2, 1, 2), bond(2, 0, 0)), (3, 3, 1, 0, 0));
    for g in 0..3 {
        for a in 0..5 {
            for b in 0..5 {
                assert_eq!(bond(g, a, b), bond(g, b, a), "graph {g}, atoms {a} {b}");
            }
        }
    }
    assert_eq!(graphs.bonds[..25].iter().filter(|&&c| c == 1).count(), 8, "methane's 4 bonds, both ways");
    assert_eq!(&graphs.positions[..6], &[-0.0127, 1.0858, 0.0080, 0.0022, -0.0060, 0.0020]);
    assert_eq!(&graphs.positions[2 * 15 + 6..2 * 15 + 9], &[-0.0278, 2.2902, 0.0149]);
    assert_eq!(&graphs.positions[2 * 15 + 9..3 * 15], &[0.; 6], "padding");
}

#[test]
fn targets_are_in_pyg_order_and_units() {
    let read = qm9(folder(None).path()).expect("reads");
    assert_eq!(read.targets.len(), 3 * 19);
    let hcn = &read.targets[2 * 19..3 * 19];
    // gdb_4's csv row, reordered and converted as PyG's qm9.py does.
    assert_eq!(hcn[0], 2.8937, "mu");
    assert_eq!(hcn[2], (-0.3604 * HAR2EV) as f32, "homo");
    assert_eq!(hcn[7], (-93.411888 * HAR2EV) as f32, "u0");
    assert_eq!(hcn[11], 6.278, "cv");
    assert_eq!(hcn[12], (-265.89369174 * KCALMOL2EV) as f32, "u0_atom");
    assert_eq!(hcn[16..], [0.0, 44.593883, 44.593883], "A, B, C last");
    let methane = &read.targets[..19];
    assert_eq!((methane[1], methane[5], methane[18]), (13.21, 35.3641, 157.70699));
    assert_eq!(QM9_TARGETS.map(|t| t.name)[16..], ["A", "B", "C"]);
}

#[test]
fn without_uncharacterized_txt_every_molecule_is_kept() {
    let dir = folder(None);
    std::fs::remove_file(dir.path().join(UNCHARACTERIZED)).expect("rm");
    let read = qm9(dir.path()).expect("reads");
    assert_eq!((read.names.len(), read.skipped), (4, 0));
    // An index that matches no molecule is ignored.
    let listing = FIXTURE_UNCHARACTERIZED.replace("       3     O", "   99999     O");
    let dir = folder(Some((UNCHARACTERIZED, &move |_: &str| listing.clone())));
    assert_eq!(qm9(dir.path()).expect("reads").skipped, 0);
}

/// The error of reading the fixture with `edit` applied to `file`; checks it names
/// the file and contains `expected`.
#[track_caller]
fn check_error(file: &str, edit: &Edit, expected: &str) {
    let dir = folder(Some((file, edit)));
    let message = qm9(dir.path()).unwrap_err().to_string();
    let named = format!("{}: {expected}", dir.path().join(file).display());
    assert!(message.contains(&named), "{message}\nlacks {named}");
}

#[test]
fn missing_files_name_the_folder_and_what_it_holds() {
    for name in [SDF, CSV] {
        let dir = folder(None);
        std::fs::remove_file(dir.path().join(name)).expect("rm");
        let message = qm9(dir.path()).unwrap_err().to_string();
        let expected = format!("{}: no {name}: a QM9 folder holds gdb9.sdf", dir.path().display());
        assert!(message.starts_with(&expected), "{message}");
    }
}

#[test]
fn a_malformed_counts_line_is_refused() {
    check_error(SDF, &|t| with_line(t, 4, "  x  4  0  0  0  0  0  0  0  0999 V2000"), "line 4: malformed counts line");
    check_error(
        SDF,
        &|t| with_line(t, 19, "  4  3  0  0  0  0  0  0  0  0999 V3000"),
        "line 19: malformed counts line",
    );
}

#[test]
fn atom_counts_outside_1_to_255_are_refused() {
    let zero = "  0  0  0  0  0  0  0  0  0  0999 V2000";
    check_error(SDF, &|t| with_line(t, 4, zero), "line 4: 0 atoms: a molecule has 1 to 255 atoms");
    let many = "256  4  0  0  0  0  0  0  0  0999 V2000";
    check_error(
        SDF,
        &|t| with_line(t, 4, many),
        "line 4: 256 atoms: a molecule has 1 to 255 atoms (sizes are stored as u8)",
    );
}

#[test]
fn a_truncated_record_is_refused() {
    check_error(
        SDF,
        &|t| first_lines(t, 45),
        "line 45: record \"gdb_4\" (from line 40) is truncated: the end of the file comes before atom 3 of 3",
    );
    check_error(
        SDF,
        &|t| first_lines(t, 48),
        "line 48: record \"gdb_4\" (from line 40) is truncated: the end of the file comes before its M  END line",
    );
    check_error(
        SDF,
        &|t| with_line(t, 46, "$$$$"),
        "line 46: record \"gdb_4\" (from line 40) is truncated: a $$$$ line comes before atom 3 of 3",
    );
    // Counts that promise more atoms than the record has.
    let more = "  9  2  0  0  0  0  0  0  0  0999 V2000";
    check_error(SDF, &|t| with_line(t, 43, more), "line 47: \"  1  2  1  0\" is not an atom line (x y z symbol)");
}

#[test]
fn an_element_other_than_h_c_n_o_f_is_named() {
    let chlorine = "   -0.0127    1.0858    0.0080 Cl  0  0  0  0  0  0  0  0  0  0  0  0";
    check_error(SDF, &|t| with_line(t, 5, chlorine), "line 5: element \"Cl\": QM9 holds only H, C, N, O and F");
}

#[test]
fn a_coordinate_that_is_not_a_finite_number_is_refused() {
    let nan = "       nan    1.0858    0.0080 C   0  0  0  0  0  0  0  0  0  0  0  0";
    check_error(SDF, &|t| with_line(t, 5, nan), "line 5: coordinate \"nan\" is not finite");
    let huge = "    1.0858     1e300    0.0080 C   0  0  0  0  0  0  0  0  0  0  0  0";
    check_error(SDF, &|t| with_line(t, 5, huge), "line 5: coordinate \"1e300\" is not finite");
    let word = "    1.0858       one    0.0080 C   0  0  0  0  0  0  0  0  0  0  0  0";
    check_error(SDF, &|t| with_line(t, 5, word), "line 5: coordinate \"one\" is not a number");
}

#[test]
fn bad_bonds_are_refused() {
    let cases = [
        ("  1  6  1  0", "line 10: bond to atom 6, but the molecule has atoms 1 to 5"),
        ("  0  2  1  0", "line 10: bond to atom 0, but the molecule has atoms 1 to 5"),
        ("  3  3  1  0", "line 10: bond from atom 3 to itself"),
        ("  1  2  5  0", "line 10: bond type 5: the types are 1 (single), 2 (double), 3 (triple) and 4 (aromatic)"),
        ("  1  2", "line 10: malformed bond line \"  1  2\""),
        ("  1  3  1  0", "line 11: a second bond between atoms 1 and 3"),
    ];
    for (line, expected) in cases {
        check_error(SDF, &|t| with_line(t, 10, line), expected);
    }
}

#[test]
fn bad_csv_rows_name_the_line_and_column() {
    let row = |i: usize| FIXTURE_CSV.lines().nth(i).expect("row").to_owned();
    let cases: [(Box<Edit>, &str); 8] = [
        (
            Box::new(move |t: &str| with_line(t, 3, &row(2).replacen(",0.0829", "", 1))),
            "line 3: 19 fields, but the header has 20",
        ),
        (
            Box::new(move |t: &str| with_line(t, 3, &row(2).replace("-0.257", "high"))),
            "line 3: column homo: \"high\" is not a number",
        ),
        (
            Box::new(move |t: &str| with_line(t, 2, &row(1).replace("13.21", "inf"))),
            "line 2: column alpha: \"inf\" is not a finite f32",
        ),
        (
            Box::new(move |t: &str| with_line(t, 2, &row(1).replace("13.21", "NaN"))),
            "line 2: column alpha: \"NaN\" is not a finite f32",
        ),
        (
            Box::new(move |t: &str| with_line(t, 4, &row(3).replace("gdb_3", "gdb_30"))),
            "line 4: mol_id \"gdb_30\", but molecule 3 of gdb9.sdf is \"gdb_3\"",
        ),
        (
            Box::new(move |t: &str| first_lines(t, 4)),
            "line 4: the file ends after 3 rows, but gdb9.sdf has 4 molecules",
        ),
        (
            Box::new(move |t: &str| format!("{t}{}\n", row(4).replace("gdb_4", "gdb_5"))),
            "line 6: more rows than the 4 molecules of gdb9.sdf",
        ),
        (
            Box::new(move |t: &str| with_line(t, 1, &row(0).replace(",u0_atom,", ",u0_atomization,"))),
            "line 1: no column \"u0_atom\" in the header",
        ),
    ];
    for (edit, expected) in cases {
        check_error(CSV, &*edit, expected);
    }
}
