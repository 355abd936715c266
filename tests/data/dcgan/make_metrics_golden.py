#!/usr/bin/python3
"""Writes metrics_golden.safetensors: two correlated feature sets (300 x 24, float32), a
set of logits, and the FID and IS that Python computes on them, the FID with
scipy.linalg.sqrtm exactly as examples/dcgan/train.py does; and the real case: the
shipped classifier's 128-d features of 500 images from the shipped generator (PyTorch,
eval mode, torch z seed 77) with their FID against the shipped test-set statistics
(fid_reference.safetensors). tests/test_dcgan.cpp checks the C++ metrics against these
numbers. Run with /usr/bin/python3 (Debian's torch, numpy and scipy)."""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "dcgan"))
from train import frechet_distance  # noqa: E402  (same function train.py reports with)
import torch  # noqa: E402
from train import (NZ, classifier_features_logits, inception_score_analogue,  # noqa: E402
                   load_safetensors, make_classifier, make_generator)

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
weights = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "dcgan", "weights")
G, C = make_generator(), make_classifier()
G.load_state_dict(load_safetensors(os.path.join(weights, "generator.safetensors"))[0])
C.load_state_dict(load_safetensors(os.path.join(weights, "classifier.safetensors"))[0])
G.eval(), C.eval()
with torch.no_grad():
    z = torch.randn(500, NZ, 1, 1, generator=torch.Generator().manual_seed(77))
    generated = classifier_features_logits(C, G(z))[0].numpy().astype(np.float32)
reference = load_safetensors(os.path.join(weights, "fid_reference.safetensors"))[0]
fid_generated = frechet_distance(*fit(generated), reference["mu"].numpy(), reference["sigma"].numpy())

tensors = {"features_a": a, "features_b": b, "logits": logits, "features_generated": generated}
header, offset, blobs = {}, 0, []
for name, value in tensors.items():
    blob = value.tobytes()
    header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(blob)]}
    offset += len(blob)
    blobs.append(blob)
header["__metadata__"] = {"fid_scipy": repr(fid), "is_logits": repr(inception),
                          "fid_generated_vs_test_scipy": repr(fid_generated),
                          "producer": "tests/data/dcgan/make_metrics_golden.py"}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(os.path.dirname(__file__), "metrics_golden.safetensors"), "wb") as out:
    out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
print("FID (scipy sqrtm) %.12g, IS %.12g; generated vs test FID %.12g" % (fid, inception, fid_generated))
