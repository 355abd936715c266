#!/usr/bin/python3
"""Per-layer mixed precision for the reference generator under a byte budget, and quality
against model bytes (beyond the paper's one width per network).

1. Sensitivity: each deconvolution quantized alone (EM+, per channel, the rest fp32) at
   every width the packed layers run (1, 2, 3, 4, 8 bits), post-training, scored by
   `qgan eval` (FID-FMNIST, N=5000). A layer's cost at a width is its FID increase over
   the fp32 generator; costs are assumed to add up across layers.
2. Allocation: for the weight bytes of uniform 1, 2, 3 and 4 bits and halfway between, the per-layer widths
   with the least summed cost that fit (qgan::search::layer_bits_under_budget, exact here:
   5^4 combinations), quantized with `--bits-for` and scored the same way.
3. A PNG of FID-FMNIST against model file bytes: uniform and mixed post-training points,
   and the uniform fine-tuned points of table2.py where those runs exist.

  /usr/bin/python3 examples/dcgan/mixed.py --runs runs/table2 --plot docs/images/quality_vs_bytes.png
"""
import argparse
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import finetune  # noqa: E402
import pbgen  # noqa: E402

LAYERS = ["deconv1", "deconv2", "deconv3", "deconv4"]
WIDTHS = [1, 2, 3, 4, 8]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="runs/table2")
    p.add_argument("--plot", default="")
    p.add_argument("--build-dir", default=str(HERE.parents[1] / "build"))
    args = p.parse_args()
    finetune.import_qgan(args.build_dir)
    import qgan
    import torch
    import train

    tool = finetune.tool_path(args.build_dir)
    source = HERE / "weights" / "generator.safetensors"
    work = pathlib.Path(args.runs) / "mixed"
    work.mkdir(parents=True, exist_ok=True)
    cache_path = work / "scores.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}

    def score(name, **rules):
        """(FID-FMNIST, file bytes) of the generator quantized under `rules`; cached."""
        if name not in cache:
            path = work / f"{name}.qgan"
            qgan.quantize_safetensors(source, path, method="em+", per_channel=True, arch="dcgan", **rules)
            result = finetune.evaluate(tool, path)
            cache[name] = [result["fid_fmnist"], path.stat().st_size]
            cache_path.write_text(json.dumps(cache, indent=1))
        return cache[name]

    fp32 = finetune.evaluate(tool, source)["fid_fmnist"]
    shapes = pbgen.layer_shapes(qgan, torch, train.make_generator())
    print(f"fp32 generator: FID-FMNIST {fp32:.2f}\n\nsensitivity (FID with one layer quantized, the rest fp32):")
    print("| layer | " + " | ".join(f"{w} bit" for w in WIDTHS) + " |")
    print("| --- |" + " ---: |" * len(WIDTHS))
    cost = []
    for layer in LAYERS:
        keep = [f"{other}.weight" for other in LAYERS if other != layer]
        fids = [score(f"{layer}_w{w}", bits=w, keep=keep)[0] for w in WIDTHS]
        cost.append([fid - fp32 for fid in fids])
        print(f"| {layer} | " + " | ".join(f"{f:.2f}" for f in fids) + " |", flush=True)

    print("\n| budget (weights as uniform) | widths deconv1..4 | weight bytes | file bytes | FID mixed | FID uniform |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    uniform, mixed = [], []
    for bits in (1, 1.5, 2, 2.5, 3, 3.5, 4):
        # Half widths: the bytes halfway between two uniform widths.
        low, high = int(bits), int(bits + 0.5)
        budget = sum((qgan.packed_bytes(s, low) + qgan.packed_bytes(s, high)) // 2 for s in shapes)
        allocation = qgan.layer_bits_under_budget(shapes, WIDTHS, lambda l, i: cost[l][i], budget)
        m = score("mixed_" + "_".join(map(str, allocation.bits)), bits=8,
                  bits_for=[(f"{layer}.weight", b) for layer, b in zip(LAYERS, allocation.bits)])
        mixed.append((m[1], m[0], "/".join(map(str, allocation.bits))))
        u_text = "-"
        if low == high:
            u = score(f"uniform_w{low}", bits=low)
            uniform.append((u[1], u[0], f"W{low}"))
            u_text = f"{u[0]:.2f}"
        print(f"| {bits:g} bits ({budget} B) | {'/'.join(map(str, allocation.bits))} | {allocation.bytes} | {m[1]} | "
              f"{m[0]:.2f} | {u_text} |", flush=True)

    tuned = []
    for bits in (1, 2, 3, 4):
        result = pathlib.Path(args.runs) / f"both_em+_w{bits}" / "result.json"
        if result.exists():
            r = json.loads(result.read_text())
            tuned.append((r["model_bytes"], r["fine_tuned"]["fid_fmnist"], f"W{bits}"))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        figure, axis = plt.subplots(figsize=(6.4, 4.2))
        for points, style, label in ((uniform, "o-", "uniform, post-training"), (mixed, "s-", "mixed per layer, post-training"),
                                     (tuned, "^--", "uniform, fine-tuned 1 epoch (D same bits)")):
            if points:
                axis.plot([x for x, _, _ in points], [y for _, y, _ in points], style, label=label)
                for x, y, text in points:
                    axis.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        axis.axhline(fp32, color="gray", linestyle=":", label=f"fp32 ({source.stat().st_size // 1024} KiB)")
        axis.set_xlabel("model file bytes (.qgan)")
        axis.set_ylabel("FID-FMNIST (N=5000, lower is better)")
        axis.set_yscale("log")
        axis.legend(fontsize=8)
        axis.set_title("Reference DCGAN generator: quality against size (EM+, per channel)", fontsize=9)
        figure.tight_layout()
        pathlib.Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.plot, dpi=110)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
