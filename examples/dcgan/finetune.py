#!/usr/bin/python3
"""Quantization-aware fine-tuning of the reference DCGAN (QGAN section 4.2), scored in C++.

Starts from the shipped fp32 G and D (examples/dcgan/weights), fake-quantizes the weights
of G and/or D with a qgan policy (qgan.torch: the C++ quantizers through the bridge,
straight-through gradients), trains on Fashion-MNIST with train.py's recipe (Adam 2e-4,
betas 0.5/0.999, batch 128, BCE), exports the generator to .qgan and scores it with the
C++ tool (`qgan eval`: FID-FMNIST with a bootstrap deviation, IS-FMNIST), before
fine-tuning (post-training quantization, same grid) and after. Writes OUT/result.json,
OUT/generator.qgan, OUT/ptq.qgan and OUT/log.txt.

  /usr/bin/python3 examples/dcgan/finetune.py --out runs/em_w2 --g-bits 2 --d-bits 2 --method em
  /usr/bin/python3 examples/dcgan/finetune.py --out /tmp/smoke --g-bits 2 --d-bits 2 --smoke

--g-bits/--d-bits 0 leave that network in fp32 (both 0: the fp32 control, fine-tuned with
the same budget). --learned lsq|lsq+ trains the grid (started from EM+). --distill W adds
W * (||G_q(z) - G_fp(z)||^2 + per-layer feature matching) from the frozen fp32 generator;
--data-free trains G on that loss alone (no D, no images). --act int8 calibrates 8-bit
activation ranges (z seed 3141592653, disjoint from the evaluation's seed 1) and
fine-tunes and scores with them. The budget is --epochs (default 1) or --steps.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def import_qgan(build_dir):
    try:
        import qgan  # noqa: F401
    except ImportError:
        sys.path[:0] = [str(ROOT / "python"), str(pathlib.Path(build_dir) / "python")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="run directory (result.json, generator.qgan, log.txt)")
    p.add_argument("--g-bits", type=int, default=2, help="generator weight bits (0: fp32)")
    p.add_argument("--d-bits", type=int, default=2, help="discriminator weight bits (0: fp32)")
    p.add_argument("--g-layer-bits", default="", help="per-layer generator bits, e.g. deconv1=1,deconv4=8 (0: fp32)")
    p.add_argument("--method", default="em", help="qgan method: minmax log tanh em em+ lloyd")
    p.add_argument("--per-tensor", action="store_true", help="one grid per tensor (default: per output channel)")
    p.add_argument("--refit-every", type=int, default=1, help="re-fit the grids every N optimizer updates")
    p.add_argument("--learned", choices=["lsq", "lsq+"], default=None)
    p.add_argument("--distill", type=float, default=0.0, help="weight of the fp32-teacher loss")
    p.add_argument("--data-free", action="store_true", help="train G on the teacher loss only")
    p.add_argument("--act", choices=["fp32", "int8"], default="fp32")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=0, help="budget in G+D steps (overrides --epochs)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=2019)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=5000, help="samples per FID-FMNIST")
    p.add_argument("--bootstrap", type=int, default=50)
    p.add_argument("--curve-every", type=int, default=100, help="FID-FMNIST (N=1000) every N steps")
    p.add_argument("--build-dir", default=str(ROOT / "build"))
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--weights-dir", default=str(HERE / "weights"))
    p.add_argument("--smoke", action="store_true", help="2 steps, N=200 scores: checks the pipeline")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.samples, args.bootstrap, args.curve_every = 2, 200, 5, 1
    if args.data_free and args.distill <= 0:
        args.distill = 1.0
    return args


class Teacher:
    """The frozen fp32 generator and its per-layer outputs, for distillation."""

    def __init__(self, G_fp, layers):
        import torch
        self.G = G_fp.eval()
        for p in self.G.parameters():
            p.requires_grad_(False)
        self.layers = layers
        self.torch = torch

    def features(self, G, z):
        outputs = {}
        hooks = [G.get_submodule(name).register_forward_hook(
            lambda mod, inputs, output, name=name: outputs.__setitem__(name, output)) for name in self.layers]
        try:
            image = G(z)
        finally:
            for hook in hooks:
                hook.remove()
        return image, [outputs[name] for name in self.layers]

    def loss(self, G, z):
        image, features = self.features(G, z)
        with self.torch.no_grad():
            target_image, target_features = self.features(self.G, z)
        loss = (image - target_image).pow(2).mean()
        for f, t in zip(features, target_features):
            loss = loss + (f - t).pow(2).mean() / t.pow(2).mean().clamp_min(1e-8)
        return loss


def tool_path(build_dir):
    """The qgan tool of a build, which every script here scores and samples with."""
    return str(pathlib.Path(build_dir) / "examples" / "cli" / "qgan")


def evaluate(tool, model_path, act="fp32", samples=5000, bootstrap=50, weights_dir=HERE / "weights", threads=1):
    """`qgan eval --json` of a model: FID-FMNIST (with its bootstrap std), IS-FMNIST, PSNR."""
    command = [tool, "eval", str(model_path), "--arch", "dcgan", "--samples", str(samples),
               "--bootstrap", str(bootstrap), "--json", "--weights-dir", str(weights_dir),
               "--threads", str(threads)]
    if act == "int8":
        command += ["--act", "int8"]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def main(argv=None):
    args = parse_args(argv)
    import_qgan(args.build_dir)
    import numpy as np
    import torch
    from torch import nn

    import qgan
    import qgan.torch as qt
    sys.path.insert(0, str(HERE))
    import train

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.txt", "w")

    def log(message):
        print(message, flush=True)
        log_file.write(message + "\n")
        log_file.flush()

    tool = tool_path(args.build_dir)
    if not os.access(tool, os.X_OK):
        raise SystemExit(f"finetune: no qgan tool at {tool} (build first, or pass --build-dir)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    G = train.make_generator()
    D = train.make_discriminator()
    G.load_state_dict(train.load_safetensors(str(pathlib.Path(args.weights_dir) / "generator.safetensors"))[0])
    D.load_state_dict(train.load_safetensors(str(pathlib.Path(args.weights_dir) / "discriminator.safetensors"))[0])
    teacher = None
    if args.distill > 0:
        G_fp = train.make_generator()
        G_fp.load_state_dict(G.state_dict())
        teacher = Teacher(G_fp, ["relu1", "relu2", "relu3"])

    layers = ["deconv1", "deconv2", "deconv3", "deconv4"]
    g_layers = {}
    for item in filter(None, args.g_layer_bits.split(",")):
        name, bits = item.split("=")
        g_layers[name] = int(bits)
    # Each generator layer's width (0: fp32): --g-layer-bits over --g-bits. A name G does not
    # have stays in the dict, so quantize_weights refuses it.
    g_widths = {name: args.g_bits for name in layers}
    g_widths.update(g_layers)
    common = dict(method=args.method, per_channel=not args.per_tensor, refit_every=args.refit_every,
                  learned=args.learned)
    if any(g_widths.values()):
        qt.quantize_weights(G, layers={name: {"bits": bits} for name, bits in g_widths.items() if bits},
                            skip=[name for name, bits in g_widths.items() if not bits], **common)
    if args.d_bits > 0:
        qt.quantize_weights(D, bits=args.d_bits, **common)

    ranges = None
    if args.act == "int8":
        calibration = torch.randn(1024, train.NZ, 1, 1, generator=torch.Generator().manual_seed(3141592653))
        ranges = qt.calibrate_activations(G, calibration, layers, signed=["deconv1"])
        qt.quantize_activations(G, ranges)

    config = {k: v for k, v in vars(args).items() if k not in ("build_dir", "data_dir", "weights_dir")}
    metadata = {"qgan.finetune": json.dumps(config, sort_keys=True),
                "qgan.method": args.learned or args.method}

    def export(path):
        G.eval()
        qt.export(G, path, metadata=metadata, activation_ranges=ranges)

    def score(path, samples, bootstrap):
        return evaluate(tool, path, args.act, samples, bootstrap, args.weights_dir, args.threads)

    export(out / "ptq.qgan")
    before = score(out / "ptq.qgan", args.samples, args.bootstrap)
    log(f"post-training: FID-FMNIST {before['fid_fmnist']:.2f} +- {before['fid_fmnist_bootstrap_std']:.2f}, "
        f"IS-FMNIST {before['is_fmnist']:.3f} (N={args.samples})")

    x_train, _ = train.load_split(args.data_dir, "train", limit=512 if args.smoke else None)
    steps_per_epoch = (len(x_train) + train.BATCH - 1) // train.BATCH
    total_steps = args.steps or max(1, int(round(args.epochs * steps_per_epoch)))
    optG = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    noise = torch.Generator().manual_seed(args.seed + 3)
    order = torch.Generator().manual_seed(args.seed + 2)
    curve_samples = args.samples if args.smoke else 1000
    curve = [{"step": 0, "fid_fmnist": None}]
    step = 0
    train_started = time.perf_counter()
    losses = []
    while step < total_steps:
        for idx in train.batches(len(x_train), train.BATCH, order):
            if step >= total_steps:
                break
            G.train()
            D.train()
            real = x_train[idx]
            n = real.size(0)
            z = torch.randn(n, train.NZ, 1, 1, generator=noise)
            loss_d = torch.zeros(())
            if not args.data_free:
                optD.zero_grad(set_to_none=True)
                fake = G(z)
                loss_d = bce(D(real).view(-1), torch.ones(n)) + bce(D(fake.detach()).view(-1), torch.zeros(n))
                loss_d.backward()
                optD.step()
            optG.zero_grad(set_to_none=True)
            loss_g = torch.zeros(())
            if not args.data_free:
                loss_g = bce(D(fake).view(-1), torch.ones(n))
            if teacher is not None:
                loss_g = loss_g + args.distill * teacher.loss(G, z)
            loss_g.backward()
            optG.step()
            step += 1
            losses.append((float(loss_d), float(loss_g)))
            if step % args.curve_every == 0 or step == total_steps:
                export(out / "checkpoint.qgan")
                point = score(out / "checkpoint.qgan", curve_samples, 0)
                curve.append({"step": step, "fid_fmnist": point["fid_fmnist"], "samples": curve_samples,
                              "loss_d": float(np.mean([l[0] for l in losses[-args.curve_every:]])),
                              "loss_g": float(np.mean([l[1] for l in losses[-args.curve_every:]]))})
                log(f"step {step}/{total_steps}: loss_D {curve[-1]['loss_d']:.3f} loss_G {curve[-1]['loss_g']:.3f} "
                    f"FID-FMNIST(N={curve_samples}) {point['fid_fmnist']:.2f} [{time.perf_counter() - started:.0f} s]")
    train_seconds = time.perf_counter() - train_started
    (out / "checkpoint.qgan").unlink(missing_ok=True)
    export(out / "generator.qgan")
    after = score(out / "generator.qgan", args.samples, args.bootstrap)
    log(f"fine-tuned: FID-FMNIST {after['fid_fmnist']:.2f} +- {after['fid_fmnist_bootstrap_std']:.2f}, "
        f"IS-FMNIST {after['is_fmnist']:.3f} (N={args.samples}); {step} steps in {train_seconds:.0f} s")
    result = {
        "config": config, "steps": step, "epochs": step / steps_per_epoch, "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - started, "post_training": before, "fine_tuned": after,
        "curve": curve, "model_bytes": (out / "generator.qgan").stat().st_size,
        "torch": torch.__version__, "threads": args.threads,
    }
    # Written last and atomically: a run directory with result.json is a finished run.
    temporary = out / "result.json.tmp"
    temporary.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(temporary, out / "result.json")
    return result


if __name__ == "__main__":
    main()
