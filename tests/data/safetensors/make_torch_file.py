"""Writes torch_sample.safetensors and torch_sample.expected.json for qgan's reader tests.

The tensors come from PyTorch itself: a seeded Conv2d + BatchNorm2d state dict (the
BatchNorm run three times in training mode, so its I64 num_batches_tracked is 3) and
F16, BF16 and F64 tensors holding the awkward values (subnormals, infinities, NaN, -0,
ties). Debian's python3-torch has no safetensors module, so the file is laid out here with
json + struct, the way the reference writer lays it out: tensors sorted by descending
element size and then by name, header padded with spaces to a multiple of 8.

The expected file records what torch says each value is as float32 (bit patterns, so NaN,
-0 and infinities compare exactly) and the raw integers of the I64 tensor.

Run with Debian's interpreter: /usr/bin/python3 tests/data/safetensors/make_torch_file.py
"""
import collections
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {
    torch.float32: ("F32", 4),
    torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2),
    torch.float64: ("F64", 8),
    torch.int64: ("I64", 8),
}


def model_tensors():
    torch.manual_seed(2019)
    model = torch.nn.Sequential(collections.OrderedDict([
        ("conv", torch.nn.Conv2d(3, 4, 3)),
        ("bn", torch.nn.BatchNorm2d(4)),
    ]))
    model.train()
    generator = torch.Generator().manual_seed(2019)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 5, 5, generator=generator))
    tensors = dict(model.state_dict())

    inf, nan = float("inf"), float("nan")
    tensors["odd.f16"] = torch.tensor(
        [-3.0, 0.1, 65504.0, 2.0**-24, 1e-5, inf, -inf, nan, -0.0, 1.0 / 3.0],
        dtype=torch.float16)
    tensors["odd.bf16"] = torch.tensor(
        [-3.0, 0.1, 3e38, 1e-40, inf, nan, -0.0, 1.0 / 3.0], dtype=torch.bfloat16).reshape(2, 4)
    # 1 + 2^-24 and 1 + 3*2^-24 are ties when rounded to float: both go to the even neighbour.
    tensors["odd.f64"] = torch.tensor(
        [0.1, 1.0 / 3.0, 1e300, -1e-50, 2.0**-149, 1.0 + 2.0**-24, 1.0 + 3 * 2.0**-24, -2.5],
        dtype=torch.float64).reshape(4, 2)
    return tensors


def raw_bytes(tensor):
    tensor = tensor.contiguous()
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.view(torch.int16)  # numpy has no bfloat16
    return tensor.numpy().tobytes()


def main():
    tensors = model_tensors()
    order = sorted(tensors, key=lambda name: (-DTYPES[tensors[name].dtype][1], name))
    metadata = {"format": "pt", "producer": "make_torch_file.py, torch " + torch.__version__}
    header = {"__metadata__": metadata}
    data = bytearray()
    expected = {"metadata": metadata, "tensors": {}}
    for name in order:
        tensor = tensors[name]
        payload = raw_bytes(tensor)
        header[name] = {"dtype": DTYPES[tensor.dtype][0], "shape": list(tensor.shape),
                        "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
        record = {"dtype": DTYPES[tensor.dtype][0], "shape": list(tensor.shape)}
        if tensor.dtype == torch.int64:
            record["int64"] = tensor.reshape(-1).tolist()
        else:
            as_float = tensor.to(torch.float32).reshape(-1)
            record["float32_bits"] = [v & 0xFFFFFFFF for v in as_float.view(torch.int32).tolist()]
        expected["tensors"][name] = record

    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(os.path.join(HERE, "torch_sample.safetensors"), "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + bytes(data))
    with open(os.path.join(HERE, "torch_sample.expected.json"), "w") as out:
        json.dump(expected, out, indent=1)
        out.write("\n")


if __name__ == "__main__":
    main()
