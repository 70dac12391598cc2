"""Reference numbers for the sequence encoders of crates/mtl-model/src/sequence/
(checked in its reference_tests.rs): layer norm, masked multi-head self-attention, a
pre-norm encoder layer, two whole Transformer encoders, and bidirectional LSTM and GRU
encoders over padded sequences, in float64 numpy from the documented equations:

- nn.LayerNorm: (x - mean) / sqrt(var + eps) * weight + bias, biased variance, eps 1e-5;
- attention (Vaswani et al. 2017): softmax(q kᵀ / √d_head) v per head, padded keys left out
  of the softmax (as key_padding_mask does);
- pre-norm layer (PyTorch's norm_first=True): x + MHA(LN(x)); x + FFN(LN(x)),
  FFN = linear → GELU (exact, erf) or ReLU → linear;
- nn.LSTM / nn.GRU (gates i, f, g, o and r, z, n as in PyTorch's documentation), each
  sequence run over its own length only, as a packed sequence would be: the forward
  direction over tokens 0..len-1, the reverse one from len-1 down to 0.

Every parameter and input is `fixed(shape, salt)`: 0.5·sin(0.7·k + salt) over the
row-major index k; parameters take salt = their index in name order. The Rust tests
build the same values.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
    /tmp/venv/bin/python benches/reference/sequence_reference.py
"""
import numpy as np
from scipy.special import erf

EPS = 1e-5


def fixed(shape, salt):
    n = int(np.prod(shape))
    return 0.5 * np.sin(0.7 * np.arange(n) + salt).reshape(shape)


def parameters(shapes):
    return {name: fixed(shapes[name], salt) for salt, name in enumerate(sorted(shapes))}


def show(label, values):
    print(f"{label}: [{', '.join(repr(float(v)) for v in np.ravel(values))}]")


def layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * weight + bias


def linear(p, name, x):
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def attention(p, prefix, x, lengths, n_heads):
    batch, length, d_model = x.shape
    size = d_model // n_heads
    heads = lambda name: linear(p, f"{prefix}{name}", x).reshape(batch, length, n_heads, size)
    q, k, v = heads("query"), heads("key"), heads("value")
    mixed = np.zeros_like(x)
    for b in range(batch):
        real = lengths[b]
        for h in range(n_heads):
            scores = q[b, :, h] @ k[b, :real, h].T / np.sqrt(size)
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            mixed[b, :, h * size:(h + 1) * size] = weights @ v[b, :real, h]
    return linear(p, f"{prefix}output", mixed)


def encoder_layer(p, prefix, x, lengths, n_heads, activation):
    x = x + attention(p, f"{prefix}attention.", layer_norm(x, p[f"{prefix}attention_norm.weight"],
                                                          p[f"{prefix}attention_norm.bias"]), lengths, n_heads)
    normed = layer_norm(x, p[f"{prefix}feed_forward_norm.weight"], p[f"{prefix}feed_forward_norm.bias"])
    hidden = linear(p, f"{prefix}feed_forward_in", normed)
    hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2))) if activation == "gelu" else np.maximum(hidden, 0)
    return x + linear(p, f"{prefix}feed_forward_out", hidden)


def layer_shapes(prefix, d_model, d_ff):
    shapes = {f"{prefix}{n}.{w}": s for n in ["attention_norm", "feed_forward_norm"]
              for w, s in [("weight", (d_model,)), ("bias", (d_model,))]}
    for n in ["query", "key", "value", "output"]:
        shapes[f"{prefix}attention.{n}.weight"] = (d_model, d_model)
        shapes[f"{prefix}attention.{n}.bias"] = (d_model,)
    shapes.update({f"{prefix}feed_forward_in.weight": (d_ff, d_model), f"{prefix}feed_forward_in.bias": (d_ff,),
                   f"{prefix}feed_forward_out.weight": (d_model, d_ff), f"{prefix}feed_forward_out.bias": (d_model,)})
    return shapes


def sinusoids(length, d_model):
    table = np.zeros((length, d_model))
    for pos in range(length):
        for i in range(d_model):
            angle = pos / 10000 ** ((i - i % 2) / d_model)
            table[pos, i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
    return table


def transformer(ids, vocab, d_model, n_heads, d_ff, n_layers, max_len, positions, pooling, activation):
    shapes = {"embedding.weight": (vocab, d_model), "final_norm.weight": (d_model,), "final_norm.bias": (d_model,)}
    cls = pooling == "cls"
    if cls:
        shapes["cls"] = (d_model,)
    if positions == "learned":
        shapes["positions.weight"] = (max_len + cls, d_model)
    for i in range(n_layers):
        shapes.update(layer_shapes(f"layers.{i}.", d_model, d_ff))
    p = parameters(shapes)
    lengths = [int((row != 0).sum()) + cls for row in ids]
    x = p["embedding.weight"][ids]
    if cls:
        x = np.concatenate([np.broadcast_to(p["cls"], (len(ids), 1, d_model)), x], 1)
    x = x + (p["positions.weight"][:x.shape[1]] if positions == "learned" else sinusoids(x.shape[1], d_model))
    for i in range(n_layers):
        x = encoder_layer(p, f"layers.{i}.", x, lengths, n_heads, activation)
    x = layer_norm(x, p["final_norm.weight"], p["final_norm.bias"])
    if cls:
        return x[:, 0]
    return np.stack([x[b, :lengths[b]].mean(0) for b in range(len(ids))])


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def cell_step(kind, p, suffix, x, h, c):
    gates_x = p[f"weight_ih_{suffix}"] @ x + p[f"bias_ih_{suffix}"]
    gates_h = p[f"weight_hh_{suffix}"] @ h + p[f"bias_hh_{suffix}"]
    if kind == "lstm":
        i, f, g, o = np.split(gates_x + gates_h, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c
    (xr, xz, xn), (hr, hz, hn) = np.split(gates_x, 3), np.split(gates_h, 3)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h, c


def recurrent(kind, xs, lengths, hidden):
    gates = 4 if kind == "lstm" else 3
    in_size = xs.shape[2]
    shapes = {}
    for suffix in ["l0", "l0_reverse"]:
        shapes.update({f"weight_ih_{suffix}": (gates * hidden, in_size), f"weight_hh_{suffix}": (gates * hidden, hidden),
                       f"bias_ih_{suffix}": (gates * hidden,), f"bias_hh_{suffix}": (gates * hidden,)})
    p = parameters(shapes)
    finals, means = [], []
    for b, length in enumerate(lengths):
        outputs = {}
        for suffix, order in [("l0", range(length)), ("l0_reverse", reversed(range(length)))]:
            h, c = np.zeros(hidden), np.zeros(hidden)
            for t in order:
                h, c = cell_step(kind, p, suffix, xs[b, t], h, c)
                outputs.setdefault(t, []).append(h)
            finals.append(h)
        means.append(np.mean([np.concatenate(outputs[t]) for t in range(length)], 0))
    return np.stack(finals).reshape(len(lengths), 2 * hidden), np.stack(means)


x = fixed((2, 5), 100) * 3
ln = parameters({"weight": (5,), "bias": (5,)})
show("layer_norm", layer_norm(x, ln["weight"], ln["bias"]))

x, lengths = fixed((2, 3, 4), 100), [3, 2]
attention_shapes = {name: shape for name, shape in layer_shapes("", 4, 6).items() if name.startswith("attention.")}
show("attention", attention(parameters(attention_shapes), "attention.", x, lengths, 2))
show("encoder_layer_gelu", encoder_layer(parameters(layer_shapes("", 4, 6)), "", x, lengths, 2, "gelu"))

ids = np.array([[3, 5, 2, 0], [6, 1, 0, 0]])
show("transformer_sinusoidal_mean_gelu", transformer(ids, 7, 4, 2, 6, 2, 4, "sinusoidal", "mean", "gelu"))
show("transformer_learned_cls_relu", transformer(ids, 7, 4, 2, 6, 2, 4, "learned", "cls", "relu"))

xs, lengths = fixed((2, 4, 3), 100), [3, 2]
for kind in ["lstm", "gru"]:
    finals, means = recurrent(kind, xs, lengths, 2)
    show(f"{kind}_final_states", finals)
    show(f"{kind}_masked_mean", means)
