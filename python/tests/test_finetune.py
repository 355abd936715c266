"""Fine-tuning smoke runs (examples/dcgan/finetune.py --smoke: 2 steps on 512 images, scores
at N=200): the whole loop runs, exports a file the C++ tool scores, and reports both."""
import json

import pytest

from conftest import ROOT, load_script


@pytest.mark.parametrize("options", [
    ["--g-bits", "2", "--d-bits", "2", "--method", "em"],
    ["--g-bits", "1", "--d-bits", "0", "--learned", "lsq+", "--distill", "1"],
    ["--g-bits", "2", "--d-bits", "0", "--data-free", "--act", "int8"],
    ["--g-bits", "0", "--d-bits", "0"],
], ids=["em-w2-both", "lsq-w1-distill", "data-free-w2a8", "fp32-control"])
def test_smoke(tmp_path, tool, options):
    finetune = load_script("finetune")
    build_dir = str(__import__("pathlib").Path(tool).parents[2])
    out = tmp_path / "run"
    result = finetune.main(["--out", str(out), "--smoke", "--threads", "1", "--build-dir", build_dir, *options])
    assert result["steps"] == 2
    saved = json.loads((out / "result.json").read_text())
    for stage in ("post_training", "fine_tuned"):
        assert saved[stage]["samples"] == 200 and saved[stage]["fid_fmnist"] > 0
    assert (out / "generator.qgan").stat().st_size == saved["model_bytes"]
    assert len(saved["curve"]) == 3
