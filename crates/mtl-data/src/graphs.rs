//! Molecular graphs: atoms with features and 3-D positions, typed bonds between them,
//! each graph padded to the set's largest.
//!
//! A batch of graphs reaches the network as one `[B, N, W]` tensor ([`GraphSet::batch_row`]),
//! `N` the set's largest atom count, each atom's row `W = F + 4 + N` wide:
//!
//! | columns | holds |
//! |---|---|
//! | `0..F` | the atom's features (0 for padding) |
//! | `F` | 1 for an atom, 0 for padding |
//! | `F+1..F+4` | its position x, y, z (Å) |
//! | `F+4..F+4+N` | the bond to each atom: 0 none, 1 single, 2 double, 3 triple, 4 aromatic |

use std::sync::Arc;

/// Bond types a graph can hold (codes 1..=4 in [`GraphSet::bonds`]).
pub const BOND_TYPES: usize = 4;

/// Graphs of one split, padded to `max_nodes` atoms.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphSet {
    /// Atoms in the largest graph (each graph's rows are padded to it).
    pub max_nodes: usize,
    /// Features per atom.
    pub node_features: usize,
    /// `n × max_nodes × node_features`, zero past each graph's atoms.
    pub nodes: Arc<[f32]>,
    /// `n × max_nodes × 3` positions, zero past each graph's atoms.
    pub positions: Arc<[f32]>,
    /// `n × max_nodes × max_nodes` bond codes (symmetric, 0 on the diagonal).
    pub bonds: Arc<[u8]>,
    /// Atoms of each graph.
    pub sizes: Arc<[u8]>,
}

impl GraphSet {
    /// Number of graphs.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// True when there are no graphs.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Width of one atom's row in a batch: features, presence, position, bonds.
    pub fn row_width(&self) -> usize {
        self.node_features + 4 + self.max_nodes
    }

    /// Values one graph occupies in a batch: `max_nodes` rows.
    pub fn example_size(&self) -> usize {
        self.max_nodes * self.row_width()
    }

    /// Appends graph `i` as `max_nodes` rows of [`GraphSet::row_width`] (see the module doc).
    pub fn batch_row(&self, i: usize, out: &mut Vec<f32>) {
        let (n, f) = (self.max_nodes, self.node_features);
        for atom in 0..n {
            let at = i * n + atom;
            out.extend_from_slice(&self.nodes[at * f..(at + 1) * f]);
            out.push(if atom < self.sizes[i] as usize { 1.0 } else { 0.0 });
            out.extend_from_slice(&self.positions[at * 3..(at + 1) * 3]);
            out.extend(self.bonds[at * n..(at + 1) * n].iter().map(|&b| f32::from(b)));
        }
    }

    /// The graphs at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> GraphSet {
        fn rows<T: Copy>(all: &[T], width: usize, indices: &[usize]) -> Arc<[T]> {
            indices.iter().flat_map(|&i| &all[i * width..(i + 1) * width]).copied().collect()
        }
        let n = self.max_nodes;
        GraphSet {
            max_nodes: n,
            node_features: self.node_features,
            nodes: rows(&self.nodes, n * self.node_features, indices),
            positions: rows(&self.positions, n * 3, indices),
            bonds: rows(&self.bonds, n * n, indices),
            sizes: rows(&self.sizes, 1, indices),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two graphs padded to 3 atoms, 2 features: a bonded pair and a triangle.
    fn two() -> GraphSet {
        GraphSet {
            max_nodes: 3,
            node_features: 2,
            nodes: vec![1., 2., 3., 4., 0., 0., 5., 6., 7., 8., 9., 10.].into(),
            positions: (0..18).map(|v| v as f32).collect::<Vec<_>>().into(),
            bonds: vec![0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 2, 1, 2, 0, 4, 1, 4, 0].into(),
            sizes: vec![2, 3].into(),
        }
    }

    #[test]
    fn a_batch_row_is_features_presence_position_and_bonds_per_atom() {
        let set = two();
        assert_eq!(set.row_width(), 2 + 4 + 3);
        let mut out = Vec::new();
        set.batch_row(0, &mut out);
        #[rustfmt::skip]
        let expected = vec![
            1., 2., 1., 0., 1., 2., 0., 1., 0.,
            3., 4., 1., 3., 4., 5., 1., 0., 0.,
            0., 0., 0., 6., 7., 8., 0., 0., 0.,
        ];
        assert_eq!(out, expected);
        assert_eq!(out.len(), set.example_size());
    }

    #[test]
    fn select_keeps_each_graph_whole_in_the_given_order() {
        let set = two();
        let picked = set.select(&[1, 0]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        picked.batch_row(0, &mut a);
        set.batch_row(1, &mut b);
        assert_eq!(a, b);
        assert_eq!(&*picked.sizes, &[3, 2]);
    }
}
