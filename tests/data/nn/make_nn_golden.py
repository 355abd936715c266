#!/usr/bin/python3
"""Writes nn_golden.safetensors: inputs, weights and outputs of small PyTorch layers that
tests/test_nn.cpp compares qgan::nn against. Run from any directory with PyTorch installed
(Debian's python3-torch is enough); the layer options below are repeated in the test.

Written with json+struct so that the only dependency is torch itself.
"""
import json
import os
import struct

import torch

torch.manual_seed(20240611)
tensors = {}


def put(name, t):
    tensors[name] = t.detach().to(torch.float32).contiguous()


with torch.no_grad():
    # conv_a: Conv2d(4, 6, 3, stride=2, padding=1, groups=2) with bias, input (2, 4, 7, 6)
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=True)
    x = torch.randn(2, 4, 7, 6)
    put("conv_a.x", x); put("conv_a.weight", conv.weight); put("conv_a.bias", conv.bias)
    put("conv_a.y", conv(x))

    # conv_b: Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(2, 1), dilation=2), no bias,
    # input (1, 3, 8, 9)
    conv = torch.nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(2, 1), dilation=2, bias=False)
    x = torch.randn(1, 3, 8, 9)
    put("conv_b.x", x); put("conv_b.weight", conv.weight); put("conv_b.y", conv(x))

    # convt_a: ConvTranspose2d(8, 4, 4, stride=2, padding=1), no bias (DCGAN), input (2, 8, 4, 4)
    convt = torch.nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False)
    x = torch.randn(2, 8, 4, 4)
    put("convt_a.x", x); put("convt_a.weight", convt.weight); put("convt_a.y", convt(x))

    # convt_b: ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
    # dilation=2) with bias, input (1, 4, 5, 3)
    convt = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                     dilation=2, bias=True)
    x = torch.randn(1, 4, 5, 3)
    put("convt_b.x", x); put("convt_b.weight", convt.weight); put("convt_b.bias", convt.bias)
    put("convt_b.y", convt(x))

    # linear: Linear(10, 7) with bias, input (3, 10)
    linear = torch.nn.Linear(10, 7)
    x = torch.randn(3, 10)
    put("linear.x", x); put("linear.weight", linear.weight); put("linear.bias", linear.bias)
    put("linear.y", linear(x))

    # bn: BatchNorm2d(6), eval mode, random running statistics and affine, input (2, 6, 5, 5)
    bn = torch.nn.BatchNorm2d(6)
    bn.running_mean.copy_(torch.randn(6))
    bn.running_var.copy_(torch.rand(6) + 0.5)
    bn.weight.copy_(torch.randn(6))
    bn.bias.copy_(torch.randn(6))
    bn.eval()
    x = torch.randn(2, 6, 5, 5)
    put("bn.x", x); put("bn.running_mean", bn.running_mean); put("bn.running_var", bn.running_var)
    put("bn.weight", bn.weight); put("bn.bias", bn.bias); put("bn.y", bn(x))

header = {}
data = bytearray()
for name, t in tensors.items():
    raw = struct.pack("<%df" % t.numel(), *t.flatten().tolist())
    header[name] = {"dtype": "F32", "shape": list(t.shape),
                    "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header["__metadata__"] = {"generator": "tests/data/nn/make_nn_golden.py",
                          "torch": torch.__version__}
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_golden.safetensors")
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    f.write(data)
print(f"wrote {path}: {len(tensors)} tensors, {len(data)} data bytes")
