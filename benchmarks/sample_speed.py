#!/usr/bin/python3
"""Issue 11's whole-process comparison, both sides in one run: `qgan sample --act int8` of
the EM 2-bit per-channel model (quantized and calibrated here) against `qgan sample` of
the fp32 model, N images each, PNG grid written, alternating RUNS times so that drift
hits both alike. Prints every run's wall time and peak RSS, the medians and their ratio.

    benchmarks/sample_speed.py [--runs 5] [--images 5000] [--threads 2] [--qgan PATH]
"""
import argparse
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FP32_MODEL = ROOT / "examples/dcgan/weights/generator.safetensors"


def wall_seconds(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_rss_mb(command):
    """Peak RSS of the command alone: measured from a fresh Python child, whose
    RUSAGE_CHILDREN maximum then is that command's own."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
             "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run(["/usr/bin/python3", "-c", probe, *command], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024.0  # KB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--qgan", default=str(ROOT / "build/examples/cli/qgan"))
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the temporary directory with the models goes too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    qgan = args.qgan
    if not os.access(qgan, os.X_OK):
        raise SystemExit(f"{qgan}: not built (scripts/build.sh builds the README build)")
    with tempfile.TemporaryDirectory() as work:
        w2 = os.path.join(work, "w2.qgan")
        w2a8 = os.path.join(work, "w2a8.qgan")
        subprocess.run([qgan, "quantize", str(FP32_MODEL), "-o", w2, "--method", "em", "--bits", "2",
                        "--per-channel", "--arch", "dcgan"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([qgan, "calibrate", w2, "--arch", "dcgan", "-o", w2a8], check=True, stdout=subprocess.DEVNULL)
        common = ["--arch", "dcgan", "--threads", str(args.threads), "-n", str(args.images)]
        sides = {
            "int8, W2 model": [qgan, "sample", w2a8, "--act", "int8", *common, "-o", os.path.join(work, "a.png")],
            "fp32 model": [qgan, "sample", str(FP32_MODEL), *common, "-o", os.path.join(work, "b.png")],
        }
        times = {name: [] for name in sides}
        for _ in range(args.runs):
            for name, command in sides.items():
                times[name].append(wall_seconds(command))
        rss = {name: peak_rss_mb(command) for name, command in sides.items()}
    print(f"qgan sample -n {args.images} --threads {args.threads}, {args.runs} alternating runs, PNG written")
    print("| | " + " | ".join(sides) + " |")
    print("| --- |" + " ---: |" * len(sides))
    for i in range(args.runs):
        print(f"| run {i + 1} | " + " | ".join(f"{times[name][i]:.3f} s" for name in sides) + " |")
    medians = {name: statistics.median(times[name]) for name in sides}
    print("| median | " + " | ".join(f"{medians[name]:.3f} s" for name in sides) + " |")
    print("| peak RSS | " + " | ".join(f"{rss[name]:.1f} MB" for name in sides) + " |")
    fp32, int8 = medians["fp32 model"], medians["int8, W2 model"]
    per_run = [f / i for f, i in zip(times["fp32 model"], times["int8, W2 model"])]
    print(f"ratio of medians (fp32 / int8): {fp32 / int8:.2f}x; run by run {min(per_run):.2f}-{max(per_run):.2f}x")


if __name__ == "__main__":
    main()
