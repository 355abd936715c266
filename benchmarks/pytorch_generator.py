#!/usr/bin/python3
"""Times the reference DCGAN generator in PyTorch fp32 (eval mode, no_grad) on CPU, as the
baseline row of the generator benchmark table.

  /usr/bin/python3 benchmarks/pytorch_generator.py --threads 1 [--batch 1,64] [--repeats R]
                                                   [--json FILE]

Needs Debian's python3-torch, libopenblas0-openmp and python3-scipy (train.py imports scipy).
"""
import argparse
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DCGAN = os.path.join(HERE, "..", "examples", "dcgan")

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--threads", type=int, default=1)
p.add_argument("--batch", default="1,64", help="comma-separated batch sizes")
p.add_argument("--repeats", type=int, default=0,
               help="timed forwards per batch size (default: 200 at batch 1, else max(50, 200/B))")
p.add_argument("--json", help="also write the results here")
args = p.parse_args()
batches = [int(b) for b in args.batch.split(",")]

# OpenBLAS and OpenMP read these once, when torch loads them: they must be set before import.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
import numpy as np  # noqa: E402
import torch  # noqa: E402

# torch.__config__ says "generic" BLAS on Debian whatever libblas.so.3 points to; only the
# mapped files tell whether the alternative resolved to OpenBLAS or the slow reference BLAS.
# Checked before train.py imports scipy, so the library seen is the one torch itself loaded.
mapped = sorted({line.split()[-1] for line in open("/proc/self/maps")
                 if "openblas" in line.split()[-1].lower()})
if not mapped:
    sys.exit("error: no OpenBLAS mapped in this process (libblas.so.3 is not OpenBLAS: "
             "apt-get install libopenblas0-openmp)")
# The real library (libopenblasp-r0.3.21.so) names the version; the libblas.so.3 shim does not.
blas = next((m for m in mapped if "openblas" in os.path.basename(m).lower()), mapped[0])

sys.path.insert(0, DCGAN)
from train import make_generator  # noqa: E402  (module level only defines things)

torch.set_num_threads(args.threads)
assert torch.get_num_threads() == args.threads


def load_safetensors(path):
    """By hand: Debian has no safetensors module. Little-endian data, as the format says."""
    types = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(blob[8 + n + begin:8 + n + end], dtype=types[info["dtype"]])
        out[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="))
                                     .reshape(info["shape"]))
    return out


G = make_generator()
G.load_state_dict(load_safetensors(os.path.join(DCGAN, "weights", "generator.safetensors")))
G.eval()
# A wrong load would still time the same, so check the output against train.py's golden file.
golden = load_safetensors(os.path.join(DCGAN, "weights", "golden.safetensors"))
with torch.no_grad():
    golden_err = float((G(golden["g.z"]) - golden["g.out"]).abs().max())
if golden_err > 1e-4:
    sys.exit("error: generator does not reproduce golden g.out (max abs error %g)" % golden_err)

# Each block is timed with its BatchNorm and activation, as a fused engine would run it.
BLOCKS = {"deconv1": G[0:3], "deconv2": G[3:6], "deconv3": G[6:9], "deconv4": G[9:11]}


def time_ms(fn, x, repeats):
    for _ in range(max(3, repeats // 10)):  # warm-up: first calls allocate and spin up threads
        fn(x)
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        samples.append((time.perf_counter() - t) * 1e3)
    return np.array(samples)


engine = "PyTorch %s fp32 (OpenBLAS %s)" % (torch.__version__, os.path.basename(blas))
results = []
with torch.no_grad():
    for batch in batches:
        repeats = args.repeats or (200 if batch == 1 else max(50, 200 // batch))
        z = torch.randn(batch, 100, 1, 1, generator=torch.Generator().manual_seed(1234))
        ms = time_ms(G, z, repeats)
        p10, p50, p90 = np.percentile(ms, [10, 50, 90])
        layers, x = {}, z
        for name, block in BLOCKS.items():
            layers[name] = float(np.median(time_ms(block, x, repeats)))
            x = block(x)
        results.append({"batch": batch, "repeats": repeats, "ms_per_batch": {
            "p10": p10, "median": p50, "p90": p90}, "ms_per_image": {
            "p10": p10 / batch, "median": p50 / batch, "p90": p90 / batch},
            "layer_median_ms_per_batch": layers})

# Load matters: the machine's 2 cores are shared, so each table carries the load it ran under.
print("OpenBLAS mapped: %s" % blas)
print("torch %s, %d threads, golden max abs error %.1e, load average %.2f %.2f %.2f\n"
      % (torch.__version__, args.threads, golden_err, *os.getloadavg()))
print("| engine | threads | batch | ms per batch, median [p10, p90] | ms per image, median |")
print("|---|---:|---:|---:|---:|")
for r in results:
    b, i = r["ms_per_batch"], r["ms_per_image"]
    print("| %s | %d | %d | %.3f [%.3f, %.3f] | %.4f |"
          % (engine, args.threads, r["batch"], b["median"], b["p10"], b["p90"], i["median"]))
print("\nPer-block medians, ms per batch (deconv + BN + ReLU; deconv4 + tanh):\n")
print("| threads | batch | repeats | " + " | ".join(BLOCKS) + " |")
print("|---:|---:|---:|" + "---:|" * len(BLOCKS))
for r in results:
    print("| %d | %d | %d | " % (args.threads, r["batch"], r["repeats"])
          + " | ".join("%.3f" % v for v in r["layer_median_ms_per_batch"].values()) + " |")
# OpenMP threads sharing a core with another busy process stall each other (10x and more
# measured here), so a wide spread means this run's numbers should not go into a table.
if any(r["ms_per_batch"]["p90"] > 1.5 * r["ms_per_batch"]["median"] for r in results):
    print("\nWARNING: p90 > 1.5 x median: the cores were busy; rerun on a quiet machine")

if args.json:
    with open(args.json, "w") as f:
        json.dump({"engine": engine, "torch": torch.__version__, "openblas": blas,
                   "threads": args.threads, "command": " ".join([sys.executable] + sys.argv),
                   "loadavg": os.getloadavg(), "golden_max_abs_error": golden_err,
                   "results": results}, f, indent=1)
        f.write("\n")
