#!/usr/bin/python3
"""One image comparing generators on the same latents: each model's samples from the C++
tool (`qgan sample`, seed fixed) side by side, titled, via matplotlib.

  /usr/bin/python3 examples/dcgan/compare_images.py -o docs/images/qat_comparison.png \
      "fp32=examples/dcgan/weights/generator.safetensors" \
      "W2 post-training=runs/table2/both_em+_w2/ptq.qgan" "W2 fine-tuned=runs/table2/both_em+_w2/generator.qgan"
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import finetune  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="TITLE=PATH (.safetensors or .qgan)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-n", type=int, default=32)
    p.add_argument("--columns", type=int, default=4)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--build-dir", default=str(HERE.parents[1] / "build"))
    args = p.parse_args()
    tool = finetune.tool_path(args.build_dir)
    pairs = [m.split("=", 1) for m in args.models]
    figure, axes = plt.subplots(1, len(pairs), figsize=(2.2 * len(pairs), 2.2 * args.n / args.columns / args.columns + 0.6))
    with tempfile.TemporaryDirectory() as scratch:
        for axis, (title, path) in zip(axes if len(pairs) > 1 else [axes], pairs):
            png = pathlib.Path(scratch) / "grid.png"
            subprocess.run([tool, "sample", path, "--arch", "dcgan", "-n", str(args.n), "--seed", str(args.seed),
                            "--columns", str(args.columns), "-o", str(png)], check=True, capture_output=True)
            axis.imshow(matplotlib.image.imread(png), cmap="gray", vmin=0, vmax=1)
            axis.set_title(title, fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
