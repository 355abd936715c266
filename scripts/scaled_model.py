#!/usr/bin/python3
"""Writes a copy of a safetensors model whose F32 weights (rank >= 2) are multiplied by
2**EXPONENT, exactly where the result is normal and rounded where it is subnormal: the
extreme-weight inputs of benchmarks/extreme_weights.sh and scripts/ci-same-bytes.sh.

    scripts/scaled_model.py IN.safetensors OUT.safetensors EXPONENT
"""
import json
import math
import struct
import sys


def main() -> None:
    source, target, exponent = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(source, "rb") as f:
        blob = f.read()
    (header_size,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8 : 8 + header_size])
    data = bytearray(blob[8 + header_size :])
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32" or len(entry["shape"]) < 2:
            continue
        begin, end = entry["data_offsets"]
        count = (end - begin) // 4
        values = struct.unpack_from(f"<{count}f", data, begin)
        struct.pack_into(f"<{count}f", data, begin, *(math.ldexp(v, exponent) for v in values))
    with open(target, "wb") as f:
        f.write(blob[: 8 + header_size])
        f.write(data)


if __name__ == "__main__":
    main()
