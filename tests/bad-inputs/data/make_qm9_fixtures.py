"""Writes the QM9 fixtures of the bad-inputs corpus (cases 100-105): the `format = "qm9"`
layout (gdb9.sdf, gdb9.sdf.csv, uncharacterized.txt) of 8 small molecules (methane,
ethane, propane, butane and their alcohols, hydrogens on the carbons' axes), one defect per
folder. Rerun from anywhere: python make_qm9_fixtures.py (the standard library only;
seed 100). Each folder is removed and written again."""

import random
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = ("mol_id,A,B,C,mu,alpha,homo,lumo,gap,r2,zpve,u0,u298,h298,g298,cv,"
          "u0_atom,u298_atom,h298_atom,g298_atom")


def molecule(carbons, alcohol):
    """Atoms (symbol, x, y, z) and bonds (1-based i, j, type) of an alkane or its alcohol."""
    atoms = [("C", 1.54 * i, 0.0, 0.0) for i in range(carbons)]
    bonds = [(i, i + 1, 1) for i in range(1, carbons)]
    if alcohol:
        atoms.append(("O", 1.54 * (carbons - 1) + 1.43, 0.0, 0.0))
        bonds.append((carbons, len(atoms), 1))
    oxygen = len(atoms)
    for i in range(carbons):
        free = 4 - sum(1 for a, b, _ in bonds if i + 1 in (a, b))
        for h, (y, z) in enumerate([(1.09, 0.0), (-1.09, 0.0), (0.0, 1.09), (0.0, -1.09)][:free]):
            atoms.append(("H", 1.54 * i + 0.1 * h, y, z))
            bonds.append((i + 1, len(atoms), 1))
    if alcohol:
        atoms.append(("H", 1.54 * (carbons - 1) + 1.43, 0.96, 0.0))
        bonds.append((oxygen, len(atoms), 1))
    return atoms, bonds


def record(name, atoms, bonds):
    lines = [name, "     RDKit          3D", "", f"{len(atoms):>3}{len(bonds):>3}  0  0  0  0  0  0  0  0999 V2000"]
    lines += [f"{x:>10.4f}{y:>10.4f}{z:>10.4f} {s:<3} 0  0  0  0  0  0  0  0  0  0  0  0" for s, x, y, z in atoms]
    lines += [f"{a:>3}{b:>3}{t:>3}  0" for a, b, t in bonds]
    return lines + ["M  END", "$$$$"]


def write(folder, element=None, bond=None, value=None, mol_id=None, csv=True):
    """The 8 molecules under data/<folder>, with at most one defect: the second molecule's
    first atom an `element`, its first bond reaching atom `bond`, its mu `value`, or its
    mol_id `mol_id`; no gdb9.sdf.csv when `csv` is False."""
    root = HERE / folder
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(100)
    sdf, rows = [], [HEADER]
    for k in range(8):
        atoms, bonds = molecule(1 + k % 4, k >= 4)
        if k == 1 and element:
            atoms[0] = (element,) + atoms[0][1:]
        if k == 1 and bond:
            bonds[0] = (bonds[0][0], bond, 1)
        sdf += record(f"gdb_{k + 1}", atoms, bonds)
        values = [rng.uniform(0.1, 10.0) for _ in range(19)]
        mu = value if (k == 1 and value) else f"{values[3]:.6f}"
        name = mol_id if (k == 1 and mol_id) else f"gdb_{k + 1}"
        rows.append(",".join([name] + [f"{v:.6f}" for v in values[:3]] + [mu] + [f"{v:.6f}" for v in values[4:]]))
    (root / "gdb9.sdf").write_text("\n".join(sdf) + "\n")
    if csv:
        (root / "gdb9.sdf.csv").write_text("\n".join(rows) + "\n")
    (root / "uncharacterized.txt").write_text("Indices of the molecules that failed the check\n" * 9 + "   8   x\n\n")


write("qm9-element", element="Cl")
write("qm9-bond-range", bond=12)
write("qm9-nan-target", value="nan")
write("qm9-mol-id", mol_id="gdb_9")
write("qm9-no-csv", csv=False)
write("qm9-valid")
