#!/usr/bin/python3
"""Writes metrics_golden.safetensors: two correlated feature sets (300 x 24, float32), a
set of logits, and the FID and IS that Python computes on them, the FID with
scipy.linalg.sqrtm exactly as examples/dcgan/train.py does. tests/test_dcgan.cpp checks the
C++ metrics against these numbers. Run with /usr/bin/python3 (Debian's numpy and scipy)."""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "dcgan"))
from train import frechet_distance  # noqa: E402  (same function train.py reports with)
import torch  # noqa: E402
from train import inception_score_analogue  # noqa: E402

rng = np.random.default_rng(2019)
mix = rng.normal(size=(24, 24))
a = (rng.normal(size=(300, 24)) @ mix).astype(np.float32)
b = (rng.normal(size=(300, 24)) @ (mix + 0.3 * rng.normal(size=(24, 24))) + 0.5).astype(np.float32)
logits = (3 * rng.normal(size=(200, 10))).astype(np.float32)


def fit(x):
    x = x.astype(np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


fid = frechet_distance(*fit(a), *fit(b))
inception = inception_score_analogue(torch.from_numpy(logits))
tensors = {"features_a": a, "features_b": b, "logits": logits}
header, offset, blobs = {}, 0, []
for name, value in tensors.items():
    blob = value.tobytes()
    header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
header["__metadata__"] = {"fid_scipy": repr(fid), "is_logits": repr(inception),
                          "producer": "tests/data/dcgan/make_metrics_golden.py"}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(os.path.dirname(__file__), "metrics_golden.safetensors"), "wb") as out:
    out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
print("FID (scipy sqrtm) %.12g, IS %.12g" % (fid, inception))
