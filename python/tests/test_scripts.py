"""The experiment scripts' pure parts: run names shared across scripts, the training-state
rule, and the layer shapes PBGen's rule reads."""
import math

import torch

import qgan
from conftest import load_script


def test_run_names_are_shared_and_distinct():
    table2 = load_script("table2")
    assert table2.run_name("em+", 2, 2) == "both_em+_w2"
    assert table2.run_name("em+", 0, 1) == "onlyD_em+_w1"
    assert table2.run_name("em+", 1, 0) == "onlyG_em+_w1"
    assert table2.run_name("em+", 2, 1) == "g2_d1_em+"
    names = [name for name, _, _ in table2.runs_in_priority_order(1.0)]
    assert len(names) == len(set(names))


def result(start, final, curve):
    return {"post_training": {"fid_fmnist": start}, "fine_tuned": {"fid_fmnist": final},
            "curve": [{"fid_fmnist": None}] + [{"fid_fmnist": f} for f in curve]}


def test_training_states():
    state = load_script("table2").training_state
    assert state(result(60, 22, [27, 20, 19, 26, 22])) == "convergent"
    assert state(result(60, 30, [27, 20, 19, 26, 30])) == "unstable"    # 30 > 1.25 x 19
    assert state(result(60, 21, [20, 35, 21])) == "unstable"            # a jump of 75%
    assert state(result(60, 130, [100, 120, 130])) == "failed"          # over 2x post-training
    assert state(result(200, 160, [170, 160])) == "failed"              # over 150
    assert state(result(60, math.nan, [20])) == "failed"


def test_policy_grid_places_each_run_by_policy_and_width(capsys):
    table2 = load_script("table2")
    results = {"both_em_w2": ("both", result(60.9, 20.6, [20.6])),
               "both_tanh_w1": ("both", result(592.5, 59.3, [59.3])),
               "onlyD_em_w2": ("onlyD", result(15.2, 13.2, [13.2]))}
    table2.print_policy_grid(results)
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")[1:]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line}
    assert rows["em"] == ["not run", "20.6 (60.9)", "not run", "not run"]
    assert rows["tanh"][0] == "59.3 (592.5)"
    assert rows["log"][0].startswith("n/a")
    assert set(rows) == {"policy"} | set(table2.POLICIES)


def test_pbgen_reads_each_deconvolutions_fan_in():
    pbgen, train = load_script("pbgen"), load_script("train")
    shapes = pbgen.layer_shapes(qgan, torch, train.make_generator())
    assert [(s.name, s.fan_in, s.output_channels) for s in shapes] == [
        ("deconv1", 100, 256), ("deconv2", 1024, 128), ("deconv3", 512, 64), ("deconv4", 256, 1)]
    assert qgan.pbgen_binarize(shapes) == [False, True, True, False]
