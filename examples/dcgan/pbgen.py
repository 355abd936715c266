#!/usr/bin/python3
"""PBGen's partial binarization on the reference DCGAN, against measured sensitivity.

1. The shape rule (qgan::search::pbgen_binarize, through the bridge): binarize a
   deconvolution when each output sums at least 512 inputs (in_channels x the kernel taps
   that reach one output) and it has at least 64 output channels; the others stay fp32.
   On this generator (fan-in 100, 1024, 512, 256; outputs 256, 128, 64, 1) it picks
   deconv2 and deconv3.
2. Measured sensitivity: each layer binarized alone (EM+, per channel, the rest fp32),
   post-training, scored by `qgan eval` (N=5000). The two least sensitive layers form the
   measured choice.
3. Fine-tuned (finetune.py, --epochs) with D binarized too, as PBGen does for a balanced
   game: the rule's choice, the measured choice when it differs, the rule's choice with the
   other layers at 8 bits (so the 8-bit activation path can run it), and all layers
   binarized (table2.py's both_em+_w1, shared). Each row: FID-FMNIST, IS-FMNIST, model
   bytes and the packed generator's speed (`qgan sample -n 2000 --threads 1`, best of 3,
   with fp32 activations and, where every layer is packed, 8-bit ones after `qgan calibrate`).

  nohup /usr/bin/python3 examples/dcgan/pbgen.py --runs runs/table2 > runs/pbgen.log 2>&1 &
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import finetune  # noqa: E402
import table2  # noqa: E402

LAYERS = ["deconv1", "deconv2", "deconv3", "deconv4"]


def layer_shapes(qgan, torch, G):
    """Each deconvolution's size, fan-in (inputs summed per output, at its real input size)
    and output channels."""
    shapes, x = [], torch.zeros(1, 100, 1, 1)
    for name, module in G.named_children():
        if isinstance(module, torch.nn.ConvTranspose2d):
            probe = torch.nn.ConvTranspose2d(1, 1, module.kernel_size, module.stride, module.padding,
                                             module.output_padding, 1, False, module.dilation)
            torch.nn.init.ones_(probe.weight)
            taps = int(probe(torch.ones(1, 1, *x.shape[2:])).max())
            fan_in = module.in_channels // module.groups * taps
            shapes.append(qgan.LayerShape(name, module.weight.numel(), module.out_channels, fan_in, module.out_channels))
        x = module(x)
    return shapes


def sample_seconds(tool, path, act="fp32"):
    """Best of 3 `qgan sample -n 2000 --threads 1`; with act int8, of a calibrated copy
    (None when the model cannot run 8-bit activations: a layer left in fp32)."""
    best = float("inf")
    with tempfile.TemporaryDirectory() as scratch:
        if act == "int8":
            calibrated = f"{scratch}/a8.qgan"
            if subprocess.run([tool, "calibrate", str(path), "--arch", "dcgan", "-o", calibrated],
                              capture_output=True).returncode != 0:
                return None
            path = calibrated
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([tool, "sample", str(path), "--arch", "dcgan", "-n", "2000", "--threads", "1", "--act", act,
                            "-o", f"{scratch}/s.png"], check=True, capture_output=True)
            best = min(best, time.perf_counter() - t0)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="runs/table2")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-train", action="store_true", help="rule and sensitivity only")
    p.add_argument("--build-dir", default=str(HERE.parents[1] / "build"))
    args = p.parse_args()
    finetune.import_qgan(args.build_dir)
    import qgan
    import torch
    import train

    tool = finetune.tool_path(args.build_dir)
    source = HERE / "weights" / "generator.safetensors"
    G = train.make_generator()
    shapes = layer_shapes(qgan, torch, G)
    rule = [s.name for s, b in zip(shapes, qgan.pbgen_binarize(shapes)) if b]
    print("layers: " + ", ".join(f"{s.name} fan-in {s.fan_in}, {s.output_channels} outputs" for s in shapes))
    print(f"PBGen rule (fan-in >= 512, >= 64 outputs) binarizes: {', '.join(rule)}", flush=True)

    runs = pathlib.Path(args.runs)
    (runs / "pbgen").mkdir(parents=True, exist_ok=True)
    sensitivity = {}
    for name in LAYERS:
        path = runs / "pbgen" / f"ptq_{name}_w1.qgan"
        keep = [f"{other}.weight" for other in LAYERS if other != name]
        qgan.quantize_safetensors(source, path, method="em+", bits=1, per_channel=True, arch="dcgan", keep=keep)
        sensitivity[name] = finetune.evaluate(tool, path)["fid_fmnist"]
        print(f"  {name} binarized alone, post-training: FID-FMNIST {sensitivity[name]:.2f}", flush=True)
    measured = sorted(LAYERS, key=lambda n: sensitivity[n])[:len(rule)]
    print(f"measured choice (the {len(rule)} least sensitive): {', '.join(sorted(measured))}", flush=True)
    (runs / "pbgen" / "sensitivity.json").write_text(json.dumps(
        {"rule": rule, "measured": sorted(measured), "fid_one_layer_binarized_ptq": sensitivity}, indent=1))
    if args.no_train:
        return

    # PBGen keeps the other layers in fp32; qgan's 8-bit activation path needs every layer
    # packed, so the rule's choice also runs with the other layers at 8 bits.
    configs = [("pbgen_rule", rule, 0)]
    if sorted(measured) != sorted(rule):
        configs.append(("pbgen_measured", sorted(measured), 0))
    configs.append(("pbgen_rule_w8", rule, 8))
    rows = []
    for name, layers, others in configs:
        widths = {layer: (1 if layer in layers else others) for layer in LAYERS}
        options = ["--method", "em+", "--g-bits", "0", "--d-bits", "1", "--epochs", str(args.epochs),
                   "--g-layer-bits", ",".join(f"{layer}={bits}" for layer, bits in widths.items() if bits)]
        label = ", ".join(layers) + (f" (others {others} bits)" if others else "")
        rows.append((name, label, table2.run_once(runs, name, options, args.threads), runs / name))
    everything = table2.run_name("em+", 1, 1)
    rows.append(("all layers", "all four",
                 table2.run_once(runs, everything, ["--method", "em+", "--g-bits", "1", "--d-bits", "1", "--epochs",
                                                     str(args.epochs)], args.threads), runs / everything))
    fp32_seconds = sample_seconds(tool, source)
    print(f"\nfp32 generator: {source.stat().st_size} bytes, qgan sample -n 2000 --threads 1: {fp32_seconds:.2f} s\n")
    print("| configuration | binarized (G) | D | FID post-training | FID fine-tuned | IS | model bytes | "
          "sample 2000, fp32 act. | sample 2000, 8-bit act. |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, layers, result, directory in rows:
        model = directory / "generator.qgan"
        speeds = []
        for act in ("fp32", "int8"):
            seconds = sample_seconds(tool, model, act)
            speeds.append("n/a (fp32 layers)" if seconds is None else f"{seconds:.2f} s ({fp32_seconds / seconds:.2f}x)")
        print(f"| {name} | {layers} | 1 bit | {result['post_training']['fid_fmnist']:.2f} | "
              f"{result['fine_tuned']['fid_fmnist']:.2f} ± {result['fine_tuned']['fid_fmnist_bootstrap_std']:.2f} | "
              f"{result['fine_tuned']['is_fmnist']:.2f} | {model.stat().st_size} | {speeds[0]} | {speeds[1]} |", flush=True)


if __name__ == "__main__":
    main()
