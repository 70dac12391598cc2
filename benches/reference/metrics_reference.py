"""Reference numbers for the task-kind metrics of crates/mtl-runner/src/metrics/
(regression, multi-label, surface normals), computed with scikit-learn and numpy in
float64; the tests hold the printed values.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scikit-learn
    /tmp/venv/bin/python benches/reference/metrics_reference.py
"""
import numpy as np
from sklearn import metrics

# regression: 4 examples × 2 targets, each metric averaged uniformly over the targets.
y_true = np.array([[3.0, -0.5], [2.0, 1.0], [7.0, 2.0], [4.5, 8.0]])
y_pred = np.array([[2.5, 0.0], [2.0, 2.0], [8.0, 1.5], [4.0, 7.0]])
print("regression: mae =", repr(metrics.mean_absolute_error(y_true, y_pred)))
print("regression: rmse =", repr(metrics.root_mean_squared_error(y_true, y_pred)))
print("regression: r2 =", repr(metrics.r2_score(y_true, y_pred)))

# multi-label: 6 examples × 3 labels, logits (predicted where ≥ 0), ties in label 2.
logits = np.array(
    [[0.9, -1.2, 0.3], [-0.4, 0.8, 0.3], [1.5, 0.1, -0.7], [-2.0, -0.3, 0.3], [0.2, 2.2, -0.7], [-0.1, -1.0, 1.1]]
)
labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1]])
predicted = (logits >= 0).astype(int)
with_positives = [k for k in range(labels.shape[1]) if labels[:, k].any()]
present = [k for k in range(labels.shape[1]) if labels[:, k].any() or predicted[:, k].any()]
ap = [metrics.average_precision_score(labels[:, k], logits[:, k]) for k in with_positives]
print("multi-label: per-label AP =", [repr(a) for a in ap])
print("multi-label: mAP =", repr(float(np.mean(ap))))
print("multi-label: micro-F1 =", repr(metrics.f1_score(labels, predicted, average="micro")))
print("multi-label: macro-F1 =", repr(metrics.f1_score(labels, predicted, average="macro", labels=present)))
print("multi-label: subset accuracy =", repr(metrics.accuracy_score(labels, predicted)))

# normals: LibMTL's NormalMetric (normalise the prediction, angle = acos(clamp(dot)) in
# degrees, pixels whose target is all zeros left out).
pred = np.array([[0.1, 0.2, 0.97], [0.5, -0.1, 0.86], [-0.3, 0.3, 0.9], [0.0, 1.0, 0.2], [0.05, 0.0, 1.0]])
gt = np.array([[0.0, 0.0, 1.0], [0.6, 0.0, 0.8], [0.0, 0.6, 0.8], [0.0, 0.8, 0.6], [0.0, 0.0, 1.0]])
pred = pred.astype(np.float32).astype(np.float64)
gt = gt.astype(np.float32).astype(np.float64)
valid = np.abs(gt).sum(axis=1) != 0
unit = pred / np.linalg.norm(pred, axis=1, keepdims=True)
angles = np.degrees(np.arccos(np.clip((unit * gt).sum(axis=1) / np.linalg.norm(gt, axis=1), -1, 1)))[valid]
print("normals: angles =", [repr(a) for a in angles])
print("normals: mean =", repr(angles.mean()), "median =", repr(np.median(angles)))
print("normals: within 11.25/22.5/30 =", [float(np.mean(angles < t)) for t in (11.25, 22.5, 30)])
