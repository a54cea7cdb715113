"""bench/accuracy_study.py in small (the study itself runs for hours in bench/): every step runs,
a finished run is not run again, and the filter arm is slimmed to the FLOPs it claims."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "accuracy_study.py")
TINY = ["--samples", "32", "--val-samples", "16", "--width", "0.125", "--dense-epochs", "1",
        "--reweight-epochs", "1", "--retrain-epochs", "1", "--seeds", "0", "--rates", "4", "--threads", "1"]


def study(tmp_path, command: str, *args: str) -> subprocess.CompletedProcess:
    paths = ["--results", str(tmp_path / "results"), "--work", str(tmp_path / "work"),
             "--figures", str(tmp_path / "figures")]
    return subprocess.run([sys.executable, SCRIPT, command, *paths, *args], capture_output=True, text=True,
                          cwd=ROOT)


def load_study_module():
    spec = importlib.util.spec_from_file_location("accuracy_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_study_runs_resumes_times_and_reports(tmp_path):
    arms = ["--arms", "kgs4x4,filter,unstructured,kgs4x4-group-lasso"]
    result = study(tmp_path, "run", *TINY, *arms)
    assert result.returncode == 0, result.stderr[-2000:]
    results = tmp_path / "results"
    names = sorted(p.name for p in results.iterdir() if p.suffix == ".json")
    assert names == ["dense_s0.json", "filter_4x_s0.json", "kgs4x4-group-lasso_4x_s0.json",
                     "kgs4x4_4x_s0.json", "study.json", "unstructured_4x_s0.json"]
    # what a later session resumes and times from is in the results: the dense model, each run's zeros
    kept = sorted(p.name for p in results.iterdir() if p.suffix != ".json")
    assert kept == ["dense_s0.pt", *(n[:-5] + ".masks.npz" for n in names if n not in
                                     ("dense_s0.json", "study.json"))]
    work = [p.name for p in (tmp_path / "work").iterdir() if p.name.endswith(".pt.work")]
    assert work == ["dense_s0.pt.work"]  # a finished run's epochs are removed
    reports = {name: json.loads((results / name).read_text()) for name in names if name != "study.json"}
    assert reports["unstructured_4x_s0.json"]["regularizer"] == "none"
    assert reports["kgs4x4-group-lasso_4x_s0.json"]["regularizer"] == "group_lasso"
    assert reports["kgs4x4_4x_s0.json"]["penalty_per"] == "weight"  # one lambda for every scheme
    module = load_study_module()
    assert abs(module.slim_reduction(reports["filter_4x_s0.json"]) - 4.0) < 0.4  # slimmed, as targeted
    # every arm starts from the seed's dense weights
    dense = reports["dense_s0.json"]["accuracy"]["dense"]
    assert {r["accuracy"]["dense"] for n, r in reports.items() if n != "dense_s0.json"} == {dense}

    # the masks on the dense weights have the run's zeros, and its group shape
    from rt3d_mlir.contracts.checkpoint import read_checkpoint

    dense_model = read_checkpoint(results / "dense_s0.pt").build_module()
    for name, group_shape in (("kgs4x4_4x_s0", (4, 4)), ("unstructured_4x_s0", None)):
        run = read_checkpoint(tmp_path / "work" / (name + ".pt"))
        masked, shape = module.masked_model(dense_model, str(results / (name + ".masks.npz")))
        assert shape == group_shape == run.group_shape
        for key, tensor in run.state_dict.items():
            if key.endswith(".weight"):
                assert torch.equal(masked.state_dict()[key] == 0, tensor == 0), key

    stamps = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    again = study(tmp_path, "run", *TINY, *arms)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in results.iterdir()} == stamps  # nothing ran again
    (results / "unstructured_4x_s0.masks.npz").unlink()  # a run from before the masks were kept
    again = study(tmp_path, "run", *TINY, *arms)
    assert again.returncode == 0, again.stderr[-2000:]
    changed = {p.name for p in results.iterdir() if stamps.get(p.name) != p.stat().st_mtime_ns}
    assert changed == {"unstructured_4x_s0.json", "unstructured_4x_s0.masks.npz"}  # it alone ran again
    other = study(tmp_path, "run", *TINY[:-4], "--threads", "1", "--rates", "4", "--lr", "1e-3", *arms)
    assert other.returncode != 0 and "records another recipe" in other.stderr

    timed = study(tmp_path, "latency", "--rounds", "1")
    assert timed.returncode == 0, timed.stderr[-2000:]
    latency = json.loads((results / "latency.json").read_text())["seconds"]
    assert set(latency) == {"dense_s0", "filter_4x_s0", "kgs4x4-group-lasso_4x_s0", "kgs4x4_4x_s0",
                            "unstructured_4x_s0"}
    report = study(tmp_path, "report")
    assert report.returncode == 0, report.stderr[-2000:]
    rows = [line for line in report.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 1 + 4  # header, dense, four arms
    assert (tmp_path / "figures" / "accuracy_study_flops.png").stat().st_size > 0
    assert (tmp_path / "figures" / "accuracy_study_latency.png").stat().st_size > 0


def test_processes_of_the_study_claim_runs_one_at_a_time(tmp_path):
    module = load_study_module()
    with module.claimed(str(tmp_path), "kgs4x4_4x_s0", wait=False) as first:
        with module.claimed(str(tmp_path), "kgs4x4_4x_s0", wait=False) as second:
            assert first and not second  # held: another process skips it
        with module.claimed(str(tmp_path), "kgs4x4_8x_s0", wait=False) as other:
            assert other
    with module.claimed(str(tmp_path), "kgs4x4_4x_s0", wait=False) as again:
        assert again  # released when the run ends


def test_the_slimmed_filter_model_computes_what_the_pruned_one_does_where_channels_are_dead():
    from rt3d_mlir.models import build_model
    from rt3d_mlir.pruning.hard_prune import hard_prune
    from rt3d_mlir.pruning.schemes import SparsityScheme

    module = load_study_module()
    torch.manual_seed(0)
    model = build_model("c3d", width=0.125, num_classes=4, input_size=[16, 32, 32], batch_norm=True).eval()
    keep = module.filter_keep(model, (1, 3, 16, 32, 32), 4.0)
    pruned, _ = module.c3d_layers(model, (1, 3, 16, 32, 32))
    hard_prune(model, SparsityScheme("filter"), {name: 1.0 / keep for name in pruned})
    for name in pruned:  # a pruned channel is dead after its BatchNorm: the slimmed model is exact
        norm = model.get_submodule(name.replace("conv", "bn"))
        dead = model.get_submodule(name).weight.detach().flatten(1).abs().sum(1) == 0
        with torch.no_grad():
            norm.bias[dead] = -1.0
            norm.running_mean[dead] = 0.0
        model.get_submodule(name).bias.data[dead] = 0.0
    slim = module.slim_c3d(model)
    convs = [m for m in slim.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs[1].out_channels < model.features.conv2a.out_channels
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        assert torch.allclose(slim(x), model(x), rtol=1e-4, atol=1e-5)


def test_runs_wait_for_a_dense_model_another_process_trains_only_when_nothing_else_is_left():
    module = load_study_module()
    tasks = [(rate, seed, arm) for rate in (4.0, 8.0) for seed in (0, 1) for arm in ("a", "b")]
    waited = []

    def dense(seed, wait):
        if wait:
            waited.append(seed)
        return None if seed == 1 and not wait else f"dense{seed}"

    order = list(module.in_turn(tasks, dense))
    assert order == [(4.0, 0, "a", "dense0"), (4.0, 0, "b", "dense0"), (8.0, 0, "a", "dense0"),
                     (8.0, 0, "b", "dense0"), (4.0, 1, "a", "dense1"), (4.0, 1, "b", "dense1"),
                     (8.0, 1, "a", "dense1"), (8.0, 1, "b", "dense1")]
    assert waited == [1, 1, 1, 1]
