"""The pruning job end to end: phases, checkpoints, resume, rt3d-prune, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import REL_TOL, relative_error

import rt3d_mlir
from rt3d_mlir.frontend import load_model_file
from rt3d_mlir.pruning.job import STATE_FILE, Interrupted, PruneJob, PruneJobConfig, load_state_file
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.sparsity import group_shape_fits, kernel_group_masks

BIN = os.path.dirname(sys.executable)
DATA_OPTIONS = {"samples": 32, "val_samples": 32}
TINY = dict(
    arch="c3d", data="synthetic", model_kwargs={"width": 0.125}, data_options=DATA_OPTIONS,
    scheme=SparsityScheme("kgs", (4, 4)), flops_reduction=2.6, dense_epochs=1, reweight_epochs=2,
    retrain_epochs=2, reweight_every=1, batch_size=8, workers=0, threads=1, seed=3,
)
CLI_ARGS = [
    "--arch", "c3d", "--width", "0.125", "--data", "synthetic",
    "--data-option", "samples=32", "--data-option", "val_samples=32",
    "--scheme", "kgs", "--group-shape", "4x4", "--flops-reduction", "2.6", "--dense-epochs", "1",
    "--reweight-epochs", "2", "--retrain-epochs", "2", "--reweight-every", "1", "--batch-size", "8",
    "--workers", "0", "--threads", "1", "--seed", "3",
]


def quiet(_message: str) -> None:
    pass


def run_job(tmp_path, name: str, stop_after: int | None = None, **overrides) -> dict | None:
    config = PruneJobConfig(output=str(tmp_path / f"{name}.pt"), **{**TINY, **overrides})
    try:
        return PruneJob(config, log=quiet).run(stop_after_epochs=stop_after)
    except Interrupted:
        return None


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def compile_checkpoint(path, so):
    """Compile a checkpoint as it is; the artifact (checked against the checkpoint's model in
    PyTorch) and the input it was checked on."""
    rt3d_mlir.compile(str(path), output=so)
    model = load_model_file(path).module.eval()
    x = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        expected = model(x).numpy()
    compiled = rt3d_mlir.load(so)
    assert relative_error(compiled(x.numpy()), expected) <= REL_TOL
    return compiled, x


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run, shared by the tests below."""
    directory = tmp_path_factory.mktemp("reference")
    report = run_job(directory, "ref")
    return directory / "ref.pt", report


def test_job_output_is_a_compilable_kgs_checkpoint(reference, tmp_path):
    path, report = reference
    assert abs(report["flops"]["reduction"] - 2.6) / 2.6 < 0.02
    assert set(report["accuracy"]) == {"dense", "after_reweighting", "after_hard_prune", "final"}
    assert [h["phase"] for h in report["history"]] == ["dense", "reweight", "reweight", "retrain", "retrain"]
    raw = torch.load(path, weights_only=True)
    assert raw["sparsity"]["scheme"] == "kgs" and raw["sparsity"]["group_shape"] == [4, 4]
    assert not any(key.endswith("kgs_mask") for key in raw["state_dict"])
    convs = [k for k in raw["state_dict"] if k.startswith("features.conv") and k.endswith(".weight")]
    pruned = [k for k in convs if k != "features.conv1a.weight"]
    assert float((raw["state_dict"]["features.conv1a.weight"] == 0).float().mean()) == 0.0
    for key in pruned:
        weight = raw["state_dict"][key].numpy()
        assert group_shape_fits(weight, (4, 4), tolerance=0.0), key
        assert 0.2 < kernel_group_masks(weight, (4, 4)).mean() < 0.6, key
    compile_checkpoint(path, tmp_path / "pruned.so")  # the compiler takes the checkpoint as it is
    with open(str(path)[:-3] + ".json") as f:
        assert json.load(f)["flops"] == report["flops"]


@pytest.mark.parametrize("stop_after", [1, 2, 4])
def test_resume_gives_the_uninterrupted_result(reference, tmp_path, stop_after):
    assert run_job(tmp_path, "resumed", stop_after=stop_after) is None
    assert os.path.exists(tmp_path / "resumed.pt.work" / STATE_FILE)
    assert not os.path.exists(tmp_path / "resumed.pt")
    run_job(tmp_path, "resumed")
    assert_same_weights(reference[0], tmp_path / "resumed.pt")


def test_resume_refuses_different_settings(tmp_path):
    run_job(tmp_path, "a", stop_after=1)
    with pytest.raises(ValueError, match="different settings"):
        run_job(tmp_path, "a", penalty=1e-3)


def test_vanilla_and_spatial_units(tmp_path):
    report = run_job(tmp_path, "vanilla", scheme=SparsityScheme("vanilla", (4, 4)), retrain_epochs=1)
    raw = weights(tmp_path / "vanilla.pt")
    masks = kernel_group_masks(raw["features.conv3a.weight"].numpy(), (4, 4))
    per_group = masks.reshape(masks.shape[0], masks.shape[1], -1)
    assert (per_group.all(axis=2) | ~per_group.any(axis=2)).all()
    assert abs(report["flops"]["reduction"] - 2.6) / 2.6 < 0.02
    run_job(tmp_path, "spatial", scheme=SparsityScheme("kgs", (4, 4), "spatial"), retrain_epochs=1)
    masks = kernel_group_masks(weights(tmp_path / "spatial.pt")["features.conv3a.weight"].numpy(), (4, 4))
    assert (masks == masks[:, :, :1]).all()  # kept (kh, kw) run through the whole depth


def test_filter_and_unstructured_schemes_and_the_other_regularizers(tmp_path):
    report = run_job(tmp_path, "filter", scheme=SparsityScheme("filter"), regularizer="none",
                     retrain_epochs=1)
    assert report["regularizer"] == "none" and report["scheme"] == "filter"
    assert [h["penalty"] for h in report["history"] if h["phase"] == "reweight"] == [0.0, 0.0]
    raw = torch.load(tmp_path / "filter.pt", weights_only=True)
    assert raw["sparsity"]["scheme"] == "filter" and raw["sparsity"]["group_shape"] is None
    weight = raw["state_dict"]["features.conv3a.weight"].flatten(1)
    alive = weight.abs().sum(1) > 0
    assert 0 < int(alive.sum()) < len(alive) and bool(((weight != 0) | ~alive[:, None]).all())
    compile_checkpoint(tmp_path / "filter.pt", tmp_path / "filter.so")  # compiled as it is (dense kernels)
    result = cli(*CLI_ARGS[:CLI_ARGS.index("--scheme")], *CLI_ARGS[CLI_ARGS.index("--flops-reduction"):],
                 "--scheme", "unstructured", "--regularizer", "group-lasso", "--penalty-per", "weight",
                 "--channels-last", "--cache-data", "--retrain-epochs", "1",
                 "-o", str(tmp_path / "unstructured.pt"))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "unstructured.json") as f:
        report = json.load(f)
    assert report["regularizer"] == "group_lasso" and report["scheme"] == "unstructured"
    assert report["penalty_per"] == "weight" and report["penalty"] == 3e-7  # its own default lambda
    assert abs(report["flops"]["reduction"] - 2.6) / 2.6 < 0.02
    assert all(h["penalty"] > 0 for h in report["history"] if h["phase"] == "reweight")
    saved = torch.load(tmp_path / "unstructured.pt", weights_only=True)["state_dict"]
    assert all(t.is_contiguous() for t in saved.values())  # channels-last batches, plain weights
    # the same run without them: the same data, the same steps (the sums in another order)
    plain = run_job(tmp_path, "plain", scheme=SparsityScheme("unstructured"), regularizer="group_lasso",
                    penalty_per="weight", retrain_epochs=1)
    for ours, theirs in zip(report["history"], plain["history"], strict=True):
        assert abs(ours["loss"] - theirs["loss"]) < 1e-4 and ours["train_acc"] == theirs["train_acc"]
    with pytest.raises(ValueError, match="a latency target needs a scheme the compiler has kernels for"):
        run_job(tmp_path, "latency", scheme=SparsityScheme("filter"), flops_reduction=None,
                latency_reduction=2.0)


def test_cli_block_pruning_with_the_fc_layers_compiles(tmp_path):
    """rt3d-prune --scheme block --prune-linear: the convs and the FC layers lose whole columns of
    16 x 8 blocks (rows: filters or outputs); the checkpoint compiles, its convs' zeros recognized as
    kernel groups of 16 x 1, and computes what the pruned model does."""
    out = tmp_path / "block.pt"
    args = [a if a not in ("kgs", "4x4") else {"kgs": "block", "4x4": "16x8"}[a] for a in CLI_ARGS]
    result = cli(*args, "--prune-linear", "--retrain-epochs", "1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    raw = torch.load(out, weights_only=True)
    assert raw["sparsity"]["scheme"] == "block" and raw["sparsity"]["unit"] == "column"
    assert {"classifier.fc6", "classifier.fc7", "features.conv2a"} <= set(raw["sparsity"]["layers"])
    for key in ("features.conv3a.weight", "classifier.fc6.weight"):
        weight = raw["state_dict"][key]
        matrix = (weight.reshape(weight.shape[0], -1) != 0)[:16 * (weight.shape[0] // 16)]
        blocks = matrix.reshape(-1, 16, matrix.shape[1])
        assert bool((blocks == blocks[:, :1]).all()), key  # whole columns of 16 rows
        assert 0.2 < float(matrix.float().mean()) < 0.6, key
    with open(tmp_path / "block.json") as f:
        assert abs(json.load(f)["flops"]["reduction"] - 2.6) / 2.6 < 0.05
    compiled, x = compile_checkpoint(out, tmp_path / "block.so")
    # the pruned FC layers run as 1x1x1 conv kernels over their kept columns only
    compiled.set_profiling(True)
    compiled(x.numpy())
    profile = compiled.kernel_profile()
    convs = [p for p in profile if p.name.startswith("rt3d_conv")]
    assert not any(p.name.startswith("rt3d_matmul") for p in profile)
    assert len(convs) == 8 + 3  # C3D's convs, then fc6, fc7 and fc8
    assert all(p.flops < p.dense_flops for p in convs[-3:])


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN, "rt3d-prune"), *args], capture_output=True, text=True,
                          **kwargs)


def test_cli_interrupt_then_resume_matches_uninterrupted(reference, tmp_path):
    out = tmp_path / "cli.pt"
    process = subprocess.Popen(
        [os.path.join(BIN, "rt3d-prune"), *CLI_ARGS, "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    state = tmp_path / "cli.pt.work" / STATE_FILE
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if state.exists() and load_state_file(str(state))["phase"] != "dense":
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if process.returncode != 0:  # interrupted (it may also have finished first)
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "rt3d-prune: interrupted"
        assert not out.exists()
        load_state_file(str(state))  # the checkpoint is intact
        result = cli(*CLI_ARGS, "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert "resuming from" in result.stderr
    assert_same_weights(reference[0], out)


def test_cli_errors(tmp_path):
    result = cli("--flops-reduction", "0.5", "-o", str(tmp_path / "x.pt"))
    assert result.returncode == 2 and "must be >= 1" in result.stderr
    result = cli("-o", str(tmp_path / "x.pt"))
    assert result.returncode == 1 and "give --flops-reduction" in result.stderr
    result = cli("--arch", "vgg", "--flops-reduction", "2", "-o", str(tmp_path / "x.pt"))
    assert result.returncode == 1 and "unknown architecture" in result.stderr
    result = cli(*CLI_ARGS[:-2], "--seed", "1", "--data", "ucf101:/nonexistent", "-o", str(tmp_path / "x.pt"))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    mismatch = ("--arch", "unet", "--data", "detection:samples=8", "--flops-reduction", "2")
    result = cli(*mismatch, "--workers", "0", "-o", str(tmp_path / "x.pt"))
    assert result.returncode == 1 and "'unet' trains for segmentation" in result.stderr
    assert not any(tmp_path.iterdir())  # nothing written before the mismatch is found
    result = cli(*CLI_ARGS, "--flops-reduction", "50", "-o", str(tmp_path / "x.pt"))
    assert result.returncode == 1 and "out of reach" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.pt").exists()


def test_torchrun_two_processes_match_single_process_structure(reference, tmp_path):
    out = tmp_path / "ddp.pt"
    # Rank 1 starts late, as a slow rank does on a busy machine: rank 0 has
    # then already saved its first checkpoint when rank 1 looks for one, and
    # both must still agree that the run starts fresh.
    launcher = tmp_path / "late_rank1.py"
    launcher.write_text(
        "import os, sys, time\n"
        "if os.environ.get('RANK') == '1':\n"
        "    time.sleep(3)\n"
        "from rt3d_mlir.tools.prune import main\n"
        "sys.exit(main())\n"
    )
    result = subprocess.run(
        [os.path.join(BIN, "torchrun"), "--standalone", "--nproc_per_node=2",
         str(launcher), *CLI_ARGS, "-o", str(out)],
        capture_output=True, text=True, timeout=600,
        # Loopback only: gloo otherwise picks an interface from the host name.
        # A short collective timeout turns a desynchronised run into a failure, not a hang.
        env={**os.environ, "GLOO_SOCKET_IFNAME": "lo", "RT3D_DISTRIBUTED_TIMEOUT": "120"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "ddp.json") as f:
        ddp_report = json.load(f)
    assert ddp_report["world_size"] == 2
    single = torch.load(reference[0], weights_only=True)
    ddp = torch.load(out, weights_only=True)
    assert single["sparsity"]["scheme"] == ddp["sparsity"]["scheme"]
    assert single["sparsity"]["group_shape"] == ddp["sparsity"]["group_shape"]
    assert single["state_dict"].keys() == ddp["state_dict"].keys()
    for key, value in single["state_dict"].items():
        other = ddp["state_dict"][key]
        assert value.shape == other.shape, key
        if key.endswith(".weight") and value.dim() == 5:
            # Same kept fraction per layer, same group structure; trained differently.
            np.testing.assert_allclose(float((value != 0).float().mean()),
                                       float((other != 0).float().mean()), atol=1e-6)
            assert group_shape_fits(other.numpy(), (4, 4), tolerance=0.0)
    assert abs(ddp_report["flops"]["reduction"] - reference[1]["flops"]["reduction"]) < 1e-6


@pytest.mark.parametrize(
    "arch, data, metric",
    [("yolo", "detection:size=32:samples=16:val_samples=8", "mAP@0.5"),
     ("unet", "volumes:size=16:depth=8:samples=2:val_samples=1", "Dice")],
)
def test_2d_applications_prune_with_the_block_scheme_and_compile(arch, data, metric, tmp_path):
    """rt3d-prune's job on the detector (the detection set, mAP) and the U-Net (the volume slices,
    Dice): block-pruned to the FLOPs target, the checkpoint compiles and computes what it holds."""
    config = PruneJobConfig(
        arch=arch, data=data, output=str(tmp_path / f"{arch}.pt"), model_kwargs={"width": 0.25},
        scheme=SparsityScheme("block", (8, 8)), flops_reduction=2.0, dense_epochs=1, reweight_epochs=1,
        retrain_epochs=1, batch_size=4, workers=0, threads=1, seed=0,
    )
    report = PruneJob(config, log=quiet).run()
    assert report["metric"] == metric
    assert set(report["accuracy"]) == {"dense", "after_reweighting", "after_hard_prune", "final"}
    assert all(0.0 <= value <= 1.0 for value in report["accuracy"].values())
    assert abs(report["flops"]["reduction"] - 2.0) / 2.0 < 0.1
    raw = torch.load(tmp_path / f"{arch}.pt", weights_only=True)
    assert raw["sparsity"]["scheme"] == "block" and len(raw["input_shape"]) == 4
    so = tmp_path / f"{arch}.so"
    rt3d_mlir.compile(str(tmp_path / f"{arch}.pt"), output=so)
    model = load_model_file(tmp_path / f"{arch}.pt").module.eval()
    x = torch.randn(*raw["input_shape"])
    with torch.no_grad():
        expected = model(x).numpy()
    assert relative_error(rt3d_mlir.load(so)(x.numpy()), expected) <= REL_TOL
