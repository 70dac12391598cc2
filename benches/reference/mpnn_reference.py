"""Reference output of the mpnn trunk of crates/mtl-model/src/network/mpnn.rs (checked in
its mpnn_tests.rs), in float64 PyTorch from the per-edge definitions, as PyTorch
Geometric's QM9 example composes them:

- edges: every ordered pair of distinct atoms of a graph (Complete), each with the bond
  type one-hot (single, double, triple, aromatic; zeros where there is no bond) and the
  distance (Distance(norm=False));
- NNConv with mean aggregation: m_i = root(h_i) + mean_{j≠i} h_j · W(e_ij), W(e) =
  edge2(relu(edge1(e))) viewed as [width_in, width_out]; then relu;
- nn.GRUCell(m_i, h_i), `steps` times with shared weights, after h⁰ = relu(lin0(x));
- Set2Set: q* = 0; `readout_steps` times: q = LSTMCell(q*), a = softmax over the graph's
  atoms of h_i·q, r = Σ a_i h_i, q* = [q, r]; then relu(lin1(q*)).

Every parameter and input is `fixed(shape, salt)`: 0.5·sin(0.7·k + salt) over the
row-major index k; parameters take salt = their index in name order. The Rust test
builds the same values (graphs padded to 4 atoms; the reference never sees the padding).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch
    /tmp/venv/bin/python benches/reference/mpnn_reference.py
"""
import math

import torch

torch.set_default_dtype(torch.float64)
WIDTH, FEATURES, HIDDEN, STEPS, READOUT = 3, 2, 128, 2, 2
SIZES = [4, 2]
# Bond codes between atoms (0 none, 1 single, 2 double, 3 triple, 4 aromatic), per graph.
BONDS = [
    [[0, 1, 0, 4], [1, 0, 2, 0], [0, 2, 0, 3], [4, 0, 3, 0]],
    [[0, 3], [3, 0]],
]


def fixed(shape, salt):
    n = math.prod(shape)
    return (0.5 * torch.sin(0.7 * torch.arange(n, dtype=torch.float64) + salt)).reshape(shape)


# Parameter names in name order (as mtl-lab's Parameters list them) and shapes.
SHAPES = {
    "edge1.bias": [HIDDEN], "edge1.weight": [HIDDEN, 5],
    "edge2.bias": [WIDTH * WIDTH], "edge2.weight": [WIDTH * WIDTH, HIDDEN],
    "gru.bias_hh_l0": [3 * WIDTH], "gru.bias_ih_l0": [3 * WIDTH],
    "gru.weight_hh_l0": [3 * WIDTH, WIDTH], "gru.weight_ih_l0": [3 * WIDTH, WIDTH],
    "lin0.bias": [WIDTH], "lin0.weight": [WIDTH, FEATURES],
    "lin1.bias": [WIDTH], "lin1.weight": [WIDTH, 2 * WIDTH],
    "root.bias": [WIDTH], "root.weight": [WIDTH, WIDTH],
    "set2set.bias_hh_l0": [4 * WIDTH], "set2set.bias_ih_l0": [4 * WIDTH],
    "set2set.weight_hh_l0": [4 * WIDTH, WIDTH], "set2set.weight_ih_l0": [4 * WIDTH, 2 * WIDTH],
}
P = {name: fixed(shape, salt) for salt, (name, shape) in enumerate(sorted(SHAPES.items()))}


def linear(name, x):
    return x @ P[name + ".weight"].T + P[name + ".bias"]


gru = torch.nn.GRUCell(WIDTH, WIDTH)
lstm = torch.nn.LSTMCell(2 * WIDTH, WIDTH)
with torch.no_grad():
    for cell, prefix in [(gru, "gru"), (lstm, "set2set")]:
        for part in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]:
            getattr(cell, part).copy_(P[f"{prefix}.{part}_l0"])

features = fixed([2, 4, FEATURES], 100.0)
positions = 2.0 * fixed([2, 4, 3], 200.0)
readouts, outputs = [], []
with torch.no_grad():
    for g, n in enumerate(SIZES):
        x, pos = features[g, :n], positions[g, :n]
        edges = [(i, j) for i in range(n) for j in range(n) if i != j]
        attr = torch.zeros(len(edges), 5)
        for e, (i, j) in enumerate(edges):
            code = BONDS[g][i][j]
            if code:
                attr[e, code - 1] = 1.0
            attr[e, 4] = torch.linalg.norm(pos[i] - pos[j])
        weights = linear("edge2", torch.relu(linear("edge1", attr))).view(-1, WIDTH, WIDTH)
        h = torch.relu(linear("lin0", x))
        for _ in range(STEPS):
            total = torch.zeros(n, WIDTH)
            count = torch.zeros(n)
            for e, (i, j) in enumerate(edges):
                total[i] += h[j] @ weights[e]
                count[i] += 1
            mean = total / count.clamp(min=1).unsqueeze(1)
            m = torch.relu(mean + linear("root", h))
            h = gru(m, h)
        q_star = torch.zeros(1, 2 * WIDTH)
        state = (torch.zeros(1, WIDTH), torch.zeros(1, WIDTH))
        for _ in range(READOUT):
            state = lstm(q_star, state)
            q = state[0]
            a = torch.softmax(h @ q[0], dim=0)
            r = (a.unsqueeze(1) * h).sum(0, keepdim=True)
            q_star = torch.cat([q, r], 1)
        readouts.append(q_star[0])
        outputs.append(torch.relu(linear("lin1", q_star))[0])

for name, rows in [("SET2SET", readouts), ("MPNN", outputs)]:
    values = torch.stack(rows).flatten().tolist()
    print(f"/// `benches/reference/mpnn_reference.py` (torch {torch.__version__}).")
    print(f"const {name}: [f64; {len(values)}] = [{', '.join(repr(v) for v in values)}];")
