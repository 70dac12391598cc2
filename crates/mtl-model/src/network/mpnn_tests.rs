//! The message-passing trunk: finite-difference gradients (f64), its dense convolution
//! against the per-edge definition, and invariance to padding and to the order of atoms.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use mtl_data::Rng;

use super::*;
use crate::init::{InitScheme, Parameters, SeededBackend};
use crate::testing::{assert_close, check_gradients, weighted_sum};

const FEATURES: usize = 3;

/// One molecule: features `[atoms × F]`, positions `[atoms × 3]`, bond codes `[atoms × atoms]`.
struct Molecule {
    features: Vec<f64>,
    positions: Vec<f64>,
    bonds: Vec<u8>,
}

impl Molecule {
    fn atoms(&self) -> usize {
        self.positions.len() / 3
    }

    fn random(atoms: usize, rng: &mut Rng) -> Molecule {
        let features = (0..atoms * FEATURES).map(|_| rng.normal()).collect();
        let positions = (0..atoms * 3).map(|_| 2.0 * rng.normal()).collect();
        let mut bonds = vec![0; atoms * atoms];
        for i in 0..atoms {
            for j in 0..i {
                let code = (rng.next_u64() % 5) as u8;
                bonds[i * atoms + j] = code;
                bonds[j * atoms + i] = code;
            }
        }
        Molecule { features, positions, bonds }
    }

    /// The same molecule with its atoms in `order`.
    fn permuted(&self, order: &[usize]) -> Molecule {
        let n = self.atoms();
        let rows = |values: &[f64], width: usize| -> Vec<f64> {
            order.iter().flat_map(|&i| values[i * width..(i + 1) * width].to_vec()).collect()
        };
        let bonds = order.iter().flat_map(|&i| order.iter().map(move |&j| (i, j))).map(|(i, j)| self.bonds[i * n + j]);
        Molecule {
            features: rows(&self.features, FEATURES),
            positions: rows(&self.positions, 3),
            bonds: bonds.collect(),
        }
    }
}

/// Molecules padded to `max_nodes` atoms as the `[B, N, F + 4 + N]` batch the trunk reads.
fn batch(molecules: &[Molecule], max_nodes: usize) -> Result<Tensor> {
    batch_of(molecules, max_nodes, FEATURES)
}

/// [`batch`] for molecules of `features` features per atom.
fn batch_of(molecules: &[Molecule], max_nodes: usize, features: usize) -> Result<Tensor> {
    let row = features + 4 + max_nodes;
    let mut values = vec![0.0; molecules.len() * max_nodes * row];
    for (b, molecule) in molecules.iter().enumerate() {
        let n = molecule.atoms();
        for i in 0..n {
            let at = &mut values[(b * max_nodes + i) * row..][..row];
            at[..features].copy_from_slice(&molecule.features[i * features..(i + 1) * features]);
            at[features] = 1.0;
            at[features + 1..features + 4].copy_from_slice(&molecule.positions[i * 3..i * 3 + 3]);
            for j in 0..n {
                at[features + 4 + j] = f64::from(molecule.bonds[i * n + j]);
            }
        }
    }
    Tensor::from_vec(values, (molecules.len(), max_nodes, row), &Device::Cpu)
}

fn molecules(sizes: &[usize], seed: u64) -> Vec<Molecule> {
    let mut rng = Rng::new(seed);
    sizes.iter().map(|&atoms| Molecule::random(atoms, &mut rng)).collect()
}

fn build(width: usize, steps: usize, readout_steps: usize, seed: u64) -> Result<(Mpnn, Parameters)> {
    let backend = Arc::new(SeededBackend::new(seed));
    let vb = backend.builder(DType::F64, &Device::Cpu);
    let net = Mpnn::new(FEATURES, width, steps, readout_steps, InitScheme::Framework, vb)?;
    Ok((net, backend.parameters()))
}

#[test]
fn every_parameter_gradient_matches_finite_differences() -> Result<()> {
    let (net, parameters) = build(3, 2, 2, 1)?;
    // A single atom (no neighbours), a padded graph and a full one.
    let graphs = batch(&molecules(&[1, 3, 4], 2), 4)?;
    let vars: Vec<(&str, &candle_core::Var)> = parameters.named().collect();
    assert_eq!(vars.len(), 18, "lin0, edge1, edge2, root, lin1 (weight and bias), gru and lstm (4 each)");
    check_gradients(&vars, 12, || weighted_sum(&net.forward(&graphs)?, 3))
}

#[test]
fn the_dense_convolution_is_the_per_edge_mean_of_h_j_times_w_of_e_ij() -> Result<()> {
    let (net, _) = build(3, 1, 1, 4)?;
    let graphs = batch(&molecules(&[2, 4], 5), 4)?;
    let (_, present, edges) = net.read(&graphs)?;
    let h = crate::testing::random(&[2, 4, 3], 6)?.broadcast_mul(&present)?;
    let ours = net.message(&h, &edges)?;

    // Per edge: W(e) = reshape(edge2(relu(edge1(e))), [3, 3]), summed over real j ≠ i.
    let mut expected = Vec::new();
    for b in 0..2 {
        for i in 0..4 {
            let mut sum = Tensor::zeros((1, 3), DType::F64, &Device::Cpu)?;
            let mut count = 0.0;
            for j in 0..4 {
                if edges.pairs.get(b)?.get(i)?.get(j)?.to_scalar::<f64>()? == 0.0 {
                    continue;
                }
                let e = edges.features.get(b)?.get(i)?.get(j)?.unsqueeze(0)?;
                let w = net.edge2.forward(&net.edge1.forward(&e)?.relu()?)?.reshape((3, 3))?;
                sum = (sum + h.get(b)?.get(j)?.unsqueeze(0)?.matmul(&w)?)?;
                count += 1.0;
            }
            let mean = (sum / f64::max(count, 1.0))?;
            let root = net.root.forward(&h.get(b)?.get(i)?.unsqueeze(0)?)?;
            expected.push((mean + root)?.relu()?);
        }
    }
    let expected = Tensor::cat(&expected, 0)?.reshape((2, 4, 3))?;
    assert_close("message", &ours, &expected, 1e-12)
}

#[test]
fn edge_features_are_the_bond_one_hot_then_the_distance() -> Result<()> {
    let (net, _) = build(2, 1, 1, 0)?;
    let molecule = Molecule {
        features: vec![0.0; 2 * FEATURES],
        positions: vec![0.0, 0.0, 0.0, 3.0, 4.0, 0.0],
        bonds: vec![0, 3, 3, 0],
    };
    let (_, _, edges) = net.read(&batch(&[molecule], 3)?)?;
    let pair = edges.features.get(0)?.get(0)?.get(1)?;
    assert_eq!(pair.to_vec1::<f64>()?, vec![0.0, 0.0, 1.0, 0.0, 5.0]);
    let pairs = edges.pairs.get(0)?.flatten_all()?.to_vec1::<f64>()?;
    assert_eq!(pairs, vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], "distinct real atoms only");
    Ok(())
}

#[test]
fn output_does_not_depend_on_padding_or_on_the_order_of_atoms() -> Result<()> {
    let (net, _) = build(4, 3, 3, 7)?;
    let mols = molecules(&[5, 3], 8);
    let tight = net.forward(&batch(&mols, 5)?)?;
    let padded = net.forward(&batch(&mols, 8)?)?;
    assert_close("padding", &padded, &tight, 1e-12)?;
    let shuffled: Vec<Molecule> = vec![mols[0].permuted(&[3, 0, 4, 2, 1]), mols[1].permuted(&[2, 1, 0])];
    let permuted = net.forward(&batch(&shuffled, 5)?)?;
    assert_close("permutation", &permuted, &tight, 1e-10)?;
    assert_eq!(tight.dims(), &[2, 4]);
    assert!(tight.abs()?.sum_all()?.to_scalar::<f64>()? > 0.0, "a non-trivial output");
    let _ = tight.max(D::Minus1)?;
    Ok(())
}

/// `benches/reference/mpnn_reference.py` (torch 2.15.0+cu132): Set2Set's `q*` and the trunk's output.
const SET2SET: [f64; 12] = [
    -0.17726503980445932,
    0.32578373996992394,
    0.35837301654122233,
    0.5406627549893706,
    -0.9927209363968978,
    -0.7418202032077379,
    -0.16849705108116597,
    0.3496719165898818,
    0.3668295765319287,
    0.48138281475809785,
    -0.9979252505239341,
    -0.8914003960004424,
];
const MPNN: [f64; 6] = [0.0, 0.0, 0.3379930252019163, 0.0, 0.0, 0.4011042321808108];

/// `fixed(shape, salt)` of the reference script: 0.5·sin(0.7·k + salt) over the row-major index.
fn fixed(shape: &[usize], salt: f64) -> Vec<f64> {
    (0..shape.iter().product()).map(|k| 0.5 * (0.7 * k as f64 + salt).sin()).collect()
}

#[test]
fn the_trunk_matches_the_pytorch_reference_built_edge_by_edge() -> Result<()> {
    let backend = Arc::new(SeededBackend::new(0));
    let net = Mpnn::new(2, 3, 2, 2, InitScheme::Framework, backend.builder(DType::F64, &Device::Cpu))?;
    for (salt, (_, var)) in backend.parameters().named().enumerate() {
        var.set(&Tensor::from_vec(fixed(var.dims(), salt as f64), var.dims(), &Device::Cpu)?)?;
    }
    let bonds: [&[u8]; 2] = [&[0, 1, 0, 4, 1, 0, 2, 0, 0, 2, 0, 3, 4, 0, 3, 0], &[0, 3, 3, 0]];
    let (features, positions) = (fixed(&[2, 4, 2], 100.0), fixed(&[2, 4, 3], 200.0));
    let molecules: Vec<Molecule> = [4usize, 2]
        .iter()
        .enumerate()
        .map(|(g, &atoms)| Molecule {
            features: features[g * 8..g * 8 + atoms * 2].to_vec(),
            positions: positions[g * 12..g * 12 + atoms * 3].iter().map(|p| 2.0 * p).collect(),
            bonds: bonds[g].to_vec(),
        })
        .collect();
    let graphs = batch_of(&molecules, 4, 2)?;
    let check = |what: &str, ours: &Tensor, reference: &[f64]| -> Result<()> {
        let expected = Tensor::from_vec(reference.to_vec(), ours.dims(), &Device::Cpu)?;
        assert_close(what, ours, &expected, 1e-10)
    };
    check("set2set", &net.read_out(&graphs)?, &SET2SET)?;
    check("output", &net.forward(&graphs)?, &MPNN)
}
