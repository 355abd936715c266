#!/usr/bin/python3
"""QGAN's multi-precision search (section 4.2) on the reference DCGAN.

Given a quality target (FID-FMNIST <= --target, or <= --ratio x the fp32 generator's), find
the lowest discriminator width with G in fp32, then the lowest generator width with that
D. Every candidate is fine-tuned with the stated budget (finetune.py, --epochs) before it
is scored: quantizing D alone after training would leave G's FID as it was, so D's width
only shows through training. The ascending search and its stopping rule are the C++
library's (qgan::search::lowest_passing_bits, through the bridge); runs are shared with
table2.py (same names in the same runs directory), so no configuration trains twice.

  nohup /usr/bin/python3 examples/dcgan/search.py --runs runs/table2 > runs/search.log 2>&1 &
"""
import argparse
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import finetune  # noqa: E402
import pbgen  # noqa: E402
import table2  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="runs/table2")
    p.add_argument("--method", default="em+")
    p.add_argument("--widths", default="1,2,3,4")
    p.add_argument("--target", type=float, default=0.0, help="FID-FMNIST bound (0: use --ratio)")
    p.add_argument("--ratio", type=float, default=1.5, help="bound as a multiple of the fp32 generator's FID")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--build-dir", default=str(HERE.parents[1] / "build"))
    args = p.parse_args()
    finetune.import_qgan(args.build_dir)
    import qgan

    fp32 = finetune.evaluate(finetune.tool_path(args.build_dir), HERE / "weights" / "generator.safetensors", bootstrap=0)
    target = args.target or args.ratio * fp32["fid_fmnist"]
    widths = [int(w) for w in args.widths.split(",")]
    print(f"target: FID-FMNIST <= {target:.2f} (fp32 generator {fp32['fid_fmnist']:.2f}, N=5000); "
          f"method {args.method}, {args.epochs:g} epoch(s) of fine-tuning per candidate", flush=True)

    def score(g_bits, d_bits):
        name = table2.run_name(args.method, g_bits, d_bits)
        options = ["--method", args.method, "--g-bits", str(g_bits), "--d-bits", str(d_bits), "--epochs", str(args.epochs)]
        result = table2.run_once(args.runs, name, options, args.threads)
        fid = result["fine_tuned"]["fid_fmnist"]
        print(f"  G {g_bits or 'fp32'} / D {d_bits or 'fp32'} bits ({name}): FID-FMNIST {fid:.2f}", flush=True)
        return fid

    print("step 1: the discriminator, G in fp32", flush=True)
    d = qgan.lowest_passing_bits(widths, lambda bits: score(0, bits), target)
    if d.bits is None:
        print("no discriminator width meets the target with G in fp32; stopping")
        return
    print(f"step 2: the generator, D at {d.bits} bits", flush=True)
    g = qgan.lowest_passing_bits(widths, lambda bits: score(bits, d.bits), target)
    path = [("D", s.bits, s.score, s.passed) for s in d.path] + [("G", s.bits, s.score, s.passed) for s in g.path]
    print("\npath: " + " -> ".join(f"{net}{bits}: {fid:.1f} {'pass' if ok else 'fail'}" for net, bits, fid, ok in path))
    if g.bits is None:
        print(f"result: D {d.bits} bits; no generator width meets the target with that D")
    else:
        print(f"result (our Table 3 row): D {d.bits} bits, G {g.bits} bits, FID-FMNIST {g.path[-1].score:.2f} "
              f"({g.path[-1].score / fp32['fid_fmnist']:.2f}x fp32)")
        chosen = pathlib.Path(args.runs) / table2.run_name(args.method, g.bits, d.bits) / "generator.qgan"
        print_deployed(finetune.tool_path(args.build_dir), chosen)


def print_deployed(tool, chosen):
    """The chosen generator as C++ runs it: file bytes and `qgan sample` time against fp32."""
    source = HERE / "weights" / "generator.safetensors"
    fp32_seconds = pbgen.sample_seconds(tool, source)
    fp32_act = pbgen.sample_seconds(tool, chosen)
    int8_act = pbgen.sample_seconds(tool, chosen, "int8")
    size, fp32_size = chosen.stat().st_size, source.stat().st_size
    print(f"\nexported: {chosen} ({size} bytes, {size / fp32_size:.1%} of the fp32 file's {fp32_size});")
    print(f"qgan sample -n 2000 --threads 1 (best of 3): fp32 generator {fp32_seconds:.2f} s, this one "
          f"{fp32_act:.2f} s with fp32 activations ({fp32_seconds / fp32_act:.2f}x)"
          + ("" if int8_act is None else f", {int8_act:.2f} s with 8-bit activations ({fp32_seconds / int8_act:.2f}x)"))


if __name__ == "__main__":
    main()
