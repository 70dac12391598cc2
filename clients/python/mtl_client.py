"""Report a training program's metrics to mtl-lab (standard library only; Python 3.8+).

mtl-lab names a file in the environment variable MTL_METRICS; this module appends one
JSON object per line to it (docs/metrics-protocol.md has the protocol in full, for other
languages). Outside mtl-lab (MTL_METRICS unset) every call does nothing, so the program
runs on its own unchanged.

    from mtl_client import log, end_epoch, artifact

    for epoch in range(1, epochs + 1):
        ...
        log(epoch=epoch, task="left", split="val", accuracy=0.91, loss=0.30)
        log(epoch=epoch, task="right", split="val", accuracy=0.88)
        end_epoch(epoch)          # the epoch's values are stored together
    artifact("model.pt")          # kept with the run: path and sha256
"""
import json
import math
import os

__all__ = ["log", "end_epoch", "artifact", "trial"]


def _append(record):
    path = os.environ.get("MTL_METRICS")
    if not path:
        return
    line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
    # One write of a whole line, opened for appending: lines never interleave.
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)


def log(epoch, task, split, **metrics):
    """Values of `task` on `split` ("train", "val" or "test") after `epoch` (from 1)."""
    if not metrics:
        raise ValueError("log() needs at least one metric, e.g. accuracy=0.91")
    values = {}
    for name, value in metrics.items():
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{task} {split} {name}: {value} is not a finite number")
        values[name] = value
    _append({"epoch": int(epoch), "task": task, "split": split, "metrics": values})


def end_epoch(epoch):
    """Says that `epoch` is complete: mtl-lab stores its values in one transaction."""
    _append({"end_epoch": int(epoch)})


def artifact(path, name=None):
    """A file the run keeps (relative to the working folder mtl-lab starts the program in)."""
    record = {"artifact": str(path)}
    if name is not None:
        record["name"] = str(name)
    _append(record)


def trial():
    """The trial's resolved settings (the JSON file named by MTL_TRIAL), or {} outside mtl-lab."""
    path = os.environ.get("MTL_TRIAL")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)
