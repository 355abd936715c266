#!/usr/bin/python3
"""The QGAN paper's Table 2 on our data: a resumable runner over finetune.py, and its report.

  nohup /usr/bin/python3 examples/dcgan/table2.py run --runs runs/table2 > runs/table2.log 2>&1 &
  /usr/bin/python3 examples/dcgan/table2.py report --runs runs/table2     # markdown tables

Every run is one finetune.py process writing runs/<name>/result.json last; a run whose
result.json exists is skipped, so the runner resumes after an interruption (a run cut
short starts over). Runs go in PRIORITY order: the rows the paper's claims rest on first.
--only NAME,... and --limit N restrict a session's share.

Training states (the paper's three), from the FID-FMNIST curve (N=1000 every 100 steps):
  failed      the final FID is above 150 or above 2x the post-training FID, or not finite;
  unstable    not failed, but the final FID is more than 25% above the curve's best, or
              some point is more than 50% above the point before it;
  convergent  otherwise.
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import finetune  # noqa: E402
POLICIES = ["em", "em+", "minmax", "log", "tanh", "lloyd"]


def runs_in_priority_order(epochs):
    """(name, finetune.py options, table) in the order they run."""
    budget = ["--epochs", str(epochs)]
    both = lambda method, bits: [run_name(method, bits, bits), ["--method", method, "--g-bits", str(bits),
                                                                "--d-bits", str(bits)] + budget, "both"]
    runs = [["fp32_control", ["--g-bits", "0", "--d-bits", "0"] + budget, "control"]]
    runs += [both(m, b) for b in (2, 1) for m in ("em+", "em", "minmax")]
    runs += [["lsq+_w2", ["--learned", "lsq+", "--g-bits", "2", "--d-bits", "2"] + budget, "beyond"],
             ["lsq+_w1", ["--learned", "lsq+", "--g-bits", "1", "--d-bits", "1"] + budget, "beyond"],
             ["distill_em+_w2", ["--method", "em+", "--g-bits", "2", "--d-bits", "2", "--distill", "1"] + budget, "beyond"],
             ["distill_em+_w1", ["--method", "em+", "--g-bits", "1", "--d-bits", "1", "--distill", "1"] + budget, "beyond"],
             ["datafree_em+_w2", ["--method", "em+", "--g-bits", "2", "--d-bits", "0", "--data-free"] + budget, "beyond"],
             ["w2a8_em+", ["--method", "em+", "--g-bits", "2", "--d-bits", "2", "--act", "int8"] + budget, "beyond"],
             # A quarter of the learning rate for twice the steps: the 1-epoch curves at
             # 2e-4 swing by +-5 FID between checkpoints.
             ["lr5e-5_2ep_em+_w2", ["--method", "em+", "--g-bits", "2", "--d-bits", "2", "--lr", "5e-5", "--epochs",
                                    str(2 * epochs)], "beyond"],
             ["lr5e-5_2ep_em+_w1", ["--method", "em+", "--g-bits", "1", "--d-bits", "1", "--lr", "5e-5", "--epochs",
                                    str(2 * epochs)], "beyond"],
             # What re-fitting less often costs (both_em+_w2 re-fits every update).
             ["refit10_em+_w2", ["--method", "em+", "--g-bits", "2", "--d-bits", "2", "--refit-every", "10"] + budget, "beyond"],
             ["refit100_em+_w2", ["--method", "em+", "--g-bits", "2", "--d-bits", "2", "--refit-every", "100"] + budget, "beyond"]]
    one_side = []
    for method in ("em+", "minmax"):
        for bits in (1, 2):
            one_side.append([run_name(method, 0, bits), ["--method", method, "--g-bits", "0", "--d-bits", str(bits)] + budget, "onlyD"])
            one_side.append([run_name(method, bits, 0), ["--method", method, "--g-bits", str(bits), "--d-bits", "0"] + budget, "onlyG"])
    runs += one_side[:4]  # EM+ first
    runs += [both(m, b) for b in (2, 1) for m in ("log", "tanh", "lloyd") if not (m == "log" and b == 1)]
    runs += [both(m, b) for b in (3, 4) for m in POLICIES]
    runs += one_side[4:]  # the second named subset, after every policy x width
    # LSQ alone (a learned step, the offset kept from EM+'s fit), beside the LSQ+ rows.
    runs += [["lsq_w2", ["--learned", "lsq", "--g-bits", "2", "--d-bits", "2"] + budget, "beyond"],
             ["lsq_w1", ["--learned", "lsq", "--g-bits", "1", "--d-bits", "1"] + budget, "beyond"]]
    return runs


def training_state(result):
    curve = [p["fid_fmnist"] for p in result["curve"] if p["fid_fmnist"] is not None]
    final = result["fine_tuned"]["fid_fmnist"]
    start = result["post_training"]["fid_fmnist"]
    if not math.isfinite(final) or final > 150 or final > 2 * start:
        return "failed"
    jumps = any(b > 1.5 * a for a, b in zip(curve, curve[1:]))
    if curve and (curve[-1] > 1.25 * min(curve) or jumps):
        return "unstable"
    return "convergent"


def run_once(runs_dir, name, options, threads=2):
    """The result of finetune.py with `options` in runs_dir/name, run now unless finished."""
    out = pathlib.Path(runs_dir) / name
    if not (out / "result.json").exists():
        command = [sys.executable, str(HERE / "finetune.py"), "--out", str(out), "--threads", str(threads)] + options
        print(f"{name}: {' '.join(command)}", flush=True)
        t0 = time.perf_counter()
        status = subprocess.run(command).returncode
        print(f"{name}: exit {status} after {time.perf_counter() - t0:.0f} s", flush=True)
        if status != 0:
            raise RuntimeError(f"{name}: finetune.py exited with {status}")
    return json.loads((out / "result.json").read_text())


def run_name(method, g_bits, d_bits):
    """The name the runs of every script share, so a configuration is trained once."""
    if g_bits == d_bits:
        return f"both_{method}_w{g_bits}"
    if g_bits == 0:
        return f"onlyD_{method}_w{d_bits}"
    if d_bits == 0:
        return f"onlyG_{method}_w{g_bits}"
    return f"g{g_bits}_d{d_bits}_{method}"


def run(args):
    runs_dir = pathlib.Path(args.runs)
    runs_dir.mkdir(parents=True, exist_ok=True)
    selected = runs_in_priority_order(args.epochs)
    if args.only:
        names = set(args.only.split(","))
        selected = [r for r in selected if r[0] in names]
    started = 0
    for name, options, _ in selected:
        if (runs_dir / name / "result.json").exists():
            print(f"{name}: done, skipped", flush=True)
            continue
        if args.limit and started >= args.limit:
            break
        started += 1
        try:
            run_once(runs_dir, name, options, args.threads)
        except RuntimeError as error:
            print(error, flush=True)


def fmt(stage):
    return f"{stage['fid_fmnist']:.1f} ± {stage['fid_fmnist_bootstrap_std']:.1f}"


def report(args):
    runs_dir = pathlib.Path(args.runs)
    results = {}
    for name, _, table in runs_in_priority_order(args.epochs):
        path = runs_dir / name / "result.json"
        if path.exists():
            results[name] = (table, json.loads(path.read_text()))
    if not results:
        print("no finished runs")
        return
    baseline = finetune.evaluate(finetune.tool_path(args.build_dir), HERE / "weights" / "generator.safetensors")
    fp32 = baseline["fid_fmnist"]
    print(f"fp32 generator (no fine-tuning): FID-FMNIST {fmt(baseline)}, IS-FMNIST {baseline['is_fmnist']:.2f}\n")
    control = results.get("fp32_control", (None, None))[1]
    control_fid = control["fine_tuned"]["fid_fmnist"] if control else float("nan")
    print("| run | G bits | D bits | method | FID post-training | FID fine-tuned | / fp32 | / control | IS post-training | "
          "IS fine-tuned | state | steps | train s |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    total = 0.0
    for name, (table, r) in results.items():
        c = r["config"]
        method = c.get("learned") or c["method"]
        if not c["g_bits"] and not c["d_bits"] and not c.get("g_layer_bits"):
            method = "none (fp32)"
        if c.get("g_layer_bits"):
            method += f", G layers {c['g_layer_bits']}"
        if c.get("refit_every", 1) != 1:
            method += f", re-fit every {c['refit_every']}"
        if c.get("lr", 2e-4) != 2e-4:
            method += f", lr {c['lr']:g}"
        if c.get("distill"):
            method += f" + distill {c['distill']:g}" + (" (data-free)" if c.get("data_free") else "")
        if c.get("act") == "int8":
            method += ", A8"
        total += r["wall_seconds"]
        print(f"| {name} | {c['g_bits'] or 'fp32'} | {c['d_bits'] or 'fp32'} | {method} | {fmt(r['post_training'])} | "
              f"{fmt(r['fine_tuned'])} | {r['fine_tuned']['fid_fmnist'] / fp32:.2f}x | "
              f"{r['fine_tuned']['fid_fmnist'] / control_fid:.2f}x | {r['post_training']['is_fmnist']:.2f} | "
              f"{r['fine_tuned']['is_fmnist']:.2f} | "
              f"{training_state(r)} | {r['steps']} | {r['train_seconds']:.0f} |")
    print(f"\n{len(results)} runs, {total / 3600:.2f} h of wall time in all (2 threads each).")
    print_policy_grid(results)


def print_policy_grid(results):
    """The paper's Table 2 layout: D and G at the same width, a row per policy."""
    print("\nFID-FMNIST fine-tuned (post-training), D and G both quantized:\n")
    print("| policy | 1 bit | 2 bits | 3 bits | 4 bits |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for method in POLICIES:
        cells = []
        for bits in (1, 2, 3, 4):
            found = results.get(run_name(method, bits, bits))
            if method == "log" and bits == 1:
                cells.append("n/a (sign + magnitude: 2 bits at least)")
            elif found is None:
                cells.append("not run")
            else:
                r = found[1]
                cells.append(f"{r['fine_tuned']['fid_fmnist']:.1f} ({r['post_training']['fid_fmnist']:.1f})")
        print(f"| {method} | " + " | ".join(cells) + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["run", "report", "list"])
    p.add_argument("--runs", default="runs/table2")
    p.add_argument("--epochs", type=float, default=1.0, help="budget per run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated run names")
    p.add_argument("--limit", type=int, default=0, help="start at most N runs")
    p.add_argument("--build-dir", default=str(HERE.parents[1] / "build"))
    args = p.parse_args()
    if args.command == "list":
        for name, options, table in runs_in_priority_order(args.epochs):
            print(f"{name:22s} {table:8s} {' '.join(options)}")
    elif args.command == "run":
        run(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
