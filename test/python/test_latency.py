"""Latency-aware pruning: the measured table (rt3d_mlir.latency), the allocation of keep fractions
(rt3d_mlir.pruning.latency_budget) and rt3d-prune --latency-target / --latency-reduction.

No timing is asserted: the tests check what is measured and chosen, not how fast this VM is
(the prediction's accuracy is a benchmark: bench/RESULTS.md)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from test_prune_job import CLI_ARGS, cli, compile_checkpoint
from torch import nn

from rt3d_mlir import latency
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning.latency_budget import (
    LatencyTable,
    LayerLatency,
    allocate,
    check_reachable,
    importance_lost,
)
from rt3d_mlir.pruning.schemes import SparsityScheme
from rt3d_mlir.tools.cli import duration, reduction

SCHEME = SparsityScheme("kgs", (4, 4))
GRID = (0.25, 0.5, 1.0)


class Three(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(8, 8, 3)
        self.b = nn.Conv3d(8, 8, 3)
        self.c = nn.Conv3d(8, 8, 3)


def _table(seconds: dict[str, tuple[float, ...]], fixed: float = 1.0,
           wide: dict[str, tuple[float, ...]] | None = None) -> LatencyTable:
    """Times per layer for 4x4 groups (and, in ``wide``, for 8x8 groups)."""
    layers = {name: {(4, 4): LayerLatency(GRID, s)} for name, s in seconds.items()}
    for name, s in (wide or {}).items():
        layers[name][(8, 8)] = LayerLatency(GRID, s)
    dense = fixed + sum(s[-1] for s in seconds.values())
    return LatencyTable("host", 2, (4, 4), (1, 8, 5, 5, 5), dense, fixed, layers)


def test_layer_latency_interpolates_between_grid_points():
    layer = LayerLatency(GRID, (1.0, 2.0, 4.0))
    assert layer.at(1.0) == 4.0 and layer.at(0.25) == 1.0 and layer.at(0.1) == 1.0
    assert layer.at(0.75) == pytest.approx(3.0) and layer.at(0.375) == pytest.approx(1.5)


def test_allocation_meets_the_target_and_prunes_where_importance_is_cheap():
    torch.manual_seed(0)
    model = Three()
    with torch.no_grad():
        # b: a few large units and many tiny ones, so most of it goes for little importance
        model.b.weight.mul_(0.01)
        model.b.weight[:4, :4] = 1.0
    table = _table({"a": (1.0, 2.0, 4.0), "b": (1.0, 2.0, 4.0), "c": (1.0, 2.0, 4.0)})
    target = 10.0  # dense: 13
    allocation = allocate(model, SCHEME, table, ["a", "b", "c"], target)
    assert allocation.predicted_seconds == pytest.approx(target, rel=1e-6)
    assert allocation.keeps["b"] < allocation.keeps["a"] and allocation.keeps["b"] < allocation.keeps["c"]
    assert allocation.importance_lost["b"] < 0.01
    choices = {name: (allocation.group_shapes[name], keep) for name, keep in allocation.keeps.items()}
    assert table.predict(choices) == pytest.approx(target, rel=1e-6)
    assert set(allocation.group_shapes.values()) == {(4, 4)}
    assert importance_lost(model.a.weight, SCHEME, 1.0) == 0.0
    assert 0 < importance_lost(model.a.weight, SCHEME, 0.5) < importance_lost(model.a.weight, SCHEME, 0.25)


def test_a_grid_point_slower_than_a_sparser_one_is_jumped_over():
    torch.manual_seed(0)
    model = Three()
    # a at half its weights is slower than dense (another kernel); a quarter is fast
    table = _table({"a": (0.5, 5.0, 4.0), "b": (3.9, 3.95, 4.0), "c": (3.9, 3.95, 4.0)})
    allocation = allocate(model, SCHEME, table, ["a", "b", "c"], 11.0)
    assert allocation.keeps["a"] < 0.5 and allocation.predicted_seconds <= 11.0 + 1e-9


def test_a_layer_takes_the_group_shape_that_saves_more_per_importance_lost():
    torch.manual_seed(0)
    model = Three()
    # 8x8 groups run b four times faster at a quarter of its weights than 4x4 groups do
    table = _table({"a": (3.0, 3.5, 4.0), "b": (3.0, 3.5, 4.0), "c": (3.0, 3.5, 4.0)},
                   wide={"b": (0.75, 2.0, 4.0)})
    allocation = allocate(model, SCHEME, table, ["a", "b", "c"], 10.0)
    assert allocation.group_shapes["b"] == (8, 8) and allocation.keeps["b"] < 1.0
    assert allocation.group_shapes["a"] == (4, 4) and allocation.predicted_seconds <= 10.0 + 1e-9
    with pytest.raises(ValueError, match=r"group shapes 4x4, 8x8"):
        check_reachable(table, ["a", "b", "c"], 1.0)


def test_an_unreachable_target_is_refused_with_the_best_prediction():
    model = Three()
    table = _table({"a": (1.0, 2.0, 4.0), "b": (1.0, 2.0, 4.0), "c": (1.0, 2.0, 4.0)})
    with pytest.raises(ValueError, match=r"3000\.0 ms is out of reach on host: .* at best 4000\.0 ms"
                                         r"|out of reach on host: the model is predicted at 4000\.0 ms"):
        check_reachable(table, ["a", "b", "c"], 3.0)
    with pytest.raises(ValueError, match="out of reach"):
        allocate(model, SCHEME, table, ["a", "b", "c"], 3.0)
    with pytest.raises(ValueError, match="has no times for d"):
        allocate(model, SCHEME, table, ["a", "d"], 10.0)


def test_table_json_round_trips_and_bad_tables_are_refused():
    table = _table({"a": (1.0, 2.0, 4.0)})
    assert LatencyTable.from_json(json.loads(json.dumps(table.to_json()))) == table
    broken = table.to_json()
    broken["layers"]["a"]["4x4"]["keeps"] = [0.5, 0.25, 1.0]
    with pytest.raises(ValueError, match="invalid grid"):
        LatencyTable.from_json(broken)
    with pytest.raises(ValueError, match="not an rt3d latency table"):
        LatencyTable.from_json({"format": "other"})


def test_durations_and_factors_parse_as_a_user_writes_them():
    assert duration("150ms") == pytest.approx(0.15) and duration("0.2s") == pytest.approx(0.2)
    assert duration("40") == pytest.approx(0.04) and reduction("3x") == 3.0 and reduction("2.5") == 2.5
    for bad in ("-1ms", "0", "fast", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)
    for bad in ("1x", "0.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            reduction(bad)


PRUNED = ["features.conv2a", "features.conv3a", "features.conv3b", "features.conv4a"]


def test_measured_table_covers_the_layers_and_is_cached(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = build_model("c3d", width=0.125, input_size=(16, 32, 32), num_classes=4).eval()
    shape = (1, 3, 16, 32, 32)
    cache = str(tmp_path / "latency.json")
    table = latency.measure_table(model, shape, SCHEME, PRUNED, threads=1, keeps=(0.25, 0.5), rounds=2,
                                  cache=cache, progress=False)
    assert set(table.layers) == set(PRUNED) and table.threads == 1 and table.group_shape == (4, 4)
    assert all(set(shapes) == {(4, 4)} for shapes in table.layers.values())
    layers = [layer for shapes in table.layers.values() for layer in shapes.values()]
    assert all(layer.keeps == (0.25, 0.5, 1.0) and min(layer.seconds) > 0 for layer in layers)
    assert 0 < table.fixed_seconds < table.dense_seconds
    assert set(table.machine["walls"]) == {"dense", "4x4@0.25", "4x4@0.5"} and table.machine["fit_error"] >= 0

    def no_builds(*args, **kwargs):
        raise AssertionError("the cached table was measured again")

    monkeypatch.setattr(latency, "compile_model", no_builds)
    again = latency.measure_table(model, shape, SCHEME, PRUNED, threads=1, keeps=(0.25, 0.5), rounds=2,
                                  cache=cache, progress=False)
    assert again == table
    with pytest.raises(AssertionError, match="measured again"):  # another thread count: another key
        latency.measure_table(model, shape, SCHEME, PRUNED, threads=2, keeps=(0.25, 0.5), rounds=2,
                              cache=cache, progress=False)
    with pytest.raises(latency.LatencyError, match="not 'riscv'"):
        latency.measure_table(model, shape, SCHEME, PRUNED, target="riscv", cache=None)


LATENCY_ARGS = [a for a in CLI_ARGS if a not in ("--flops-reduction", "2.6")]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One latency cache for the rt3d-prune runs below: the same model measures its table once."""
    return tmp_path_factory.mktemp("latency-cache")


def test_rt3d_prune_to_a_latency_reduction_reports_predicted_and_measured(
    tmp_path, monkeypatch, shared_cache
):
    monkeypatch.setenv("RT3D_CACHE_DIR", str(shared_cache))
    out = tmp_path / "fast.pt"
    result = cli(*LATENCY_ARGS, "--latency-reduction", "1.3x", "--latency-group-shapes", "8x8",
                 "--latency-threads", "1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "latency on host: measured" in result.stderr
    # planned before the penalty epochs: the penalty pulls each layer toward its own group shape
    assert result.stderr.index("latency target") < result.stderr.index("phase reweight")
    report = json.loads((tmp_path / "fast.json").read_text())["latency"]
    assert report["target_reduction"] == 1.3
    assert report["predicted_ms"] <= report["target_ms"] * (1 + 1e-6)
    assert report["target_ms"] == pytest.approx(report["table"]["dense_ms"] / 1.3)
    assert report["measured_ms"] > 0 and report["dense_measured_ms"] > 0
    assert isinstance(report["prediction_error"], float)
    layers = report["layers"]
    assert layers and all(0 < entry["keep"] <= 1 and entry["measured_ms"] > 0 for entry in layers.values())
    assert any(entry["keep"] < 1 for entry in layers.values())
    kept = json.loads((tmp_path / "fast.json").read_text())["layers"]
    for entry in kept:  # the checkpoint's layers were pruned to the allocated keep fractions
        if entry["name"] in layers:
            assert entry["kept_weight_fraction"] == pytest.approx(layers[entry["name"]]["keep"], abs=0.1)
    assert (shared_cache / latency.CACHE_FILE).exists()
    assert report["table"]["group_shapes"] == [[4, 4], [8, 8]]
    assert all(entry["group_shape"] in ([4, 4], [8, 8]) for entry in layers.values())
    # the checkpoint compiles; with several group shapes it leaves each layer's to the compiler
    checkpoint = torch.load(out, weights_only=True)
    shapes = {tuple(e["group_shape"]) for e in layers.values() if e["keep"] < 1}
    if len(shapes | {(4, 4)}) > 1:
        assert checkpoint["sparsity"]["group_shape"] is None
        assert all("group_shape" in entry for entry in checkpoint["sparsity"]["layers"].values())
    else:
        assert checkpoint["sparsity"]["group_shape"] == [4, 4]
    compiled, x = compile_checkpoint(out, tmp_path / "fast.so")
    assert compiled(x.numpy()).shape[0] == 1


def test_rt3d_prune_refuses_an_unreachable_latency_before_training(tmp_path, monkeypatch, shared_cache):
    monkeypatch.setenv("RT3D_CACHE_DIR", str(shared_cache))
    out = tmp_path / "x.pt"
    result = cli(*LATENCY_ARGS, "--latency-target", "0.001ms", "--latency-group-shapes", "8x8",
                 "--latency-threads", "1", "-o", str(out))
    assert result.returncode == 1
    assert "out of reach on host" in result.stderr.strip().splitlines()[-1]
    assert not out.exists() and "epoch" not in result.stderr
    result = cli(*LATENCY_ARGS, "--latency-target", "10ms", "--flops-reduction", "2", "-o", str(out))
    assert result.returncode == 1 and "give one target" in result.stderr


def test_a_table_is_measured_on_lavapipe_too(tmp_path):
    """--target spirv: the kernels' times are the dispatches' GPU timestamps (lavapipe here)."""
    torch.manual_seed(0)
    model = build_model("c3d", width=0.125, input_size=(16, 32, 32), num_classes=4).eval()
    table = latency.measure_table(model, (1, 3, 16, 32, 32), SCHEME, PRUNED[:2], target="spirv", threads=1,
                                  keeps=(0.5,), rounds=2, cache=None, progress=False)
    assert table.target == "spirv" and set(table.layers) == set(PRUNED[:2])
    assert all(min(layer.seconds) > 0 for shapes in table.layers.values() for layer in shapes.values())
    assert 0 < table.fixed_seconds < table.dense_seconds


def test_an_aarch64_table_is_counted_under_qemu(tmp_path):
    """--target aarch64: each build runs once under qemu with the counting plugin; a layer's seconds
    are its kernels' instructions on the Cortex-A76 model, so they follow the work: half the weights,
    about half the time (no timing: the counts do not depend on this VM)."""
    from rt3d_mlir.runtime.emulated import CORE_MODEL

    torch.manual_seed(0)
    model = build_model("c3d", width=0.125, input_size=(16, 32, 32), num_classes=4).eval()
    table = latency.measure_table(model, (1, 3, 16, 32, 32), SCHEME, PRUNED[:2], target="aarch64",
                                  threads=2, keeps=(0.25, 0.5), cache=None, progress=False)
    assert table.target == "aarch64" and table.threads == 1 and CORE_MODEL["cpu"] in table.machine["cpu"]
    for shapes in table.layers.values():
        quarter, half, dense = shapes[(4, 4)].seconds
        assert 0 < quarter < half < dense
        assert 0.4 < half / dense < 0.65 and 0.15 < quarter / dense < 0.4
    assert 0 < table.fixed_seconds < table.dense_seconds
    assert table.machine["fit_error"] < 0.02  # counted parts add up to the counted whole


def test_a_job_with_several_group_shapes_prunes_each_layer_in_its_own_and_compiles(tmp_path):
    """A table (made up: no timing here) where 8x8 groups make the first pruned layer far faster:
    the job prunes that layer in 8x8 groups and the others in 4x4; the checkpoint then names each
    layer's shape and no global one, and compiles (the compiler finds each layer's groups)."""
    from test_prune_job import TINY, quiet

    from rt3d_mlir.pruning.job import PruneJob, PruneJobConfig
    from rt3d_mlir.sparsity import group_shape_fits

    chosen: list[str] = []

    def made_up(model, input_shape, pruned):
        chosen.extend(pruned)
        layers = {name: {(4, 4): LayerLatency(GRID, (3.0, 3.5, 4.0))} for name in pruned}
        layers[pruned[0]][(8, 8)] = LayerLatency(GRID, (0.5, 1.5, 4.0))
        return LatencyTable("host", 1, (4, 4), tuple(input_shape), 1.0 + 4.0 * len(pruned), 1.0, layers)

    config = PruneJobConfig(output=str(tmp_path / "mixed.pt"),
                            **{**TINY, "flops_reduction": None, "latency_reduction": 1.15})
    report = PruneJob(config, log=quiet, measure_latency=made_up).run()
    layers = report["latency"]["layers"]
    assert layers[chosen[0]]["group_shape"] == [8, 8] and layers[chosen[0]]["keep"] < 1
    assert report["latency"]["predicted_ms"] <= report["latency"]["target_ms"] * (1 + 1e-6)
    checkpoint = torch.load(tmp_path / "mixed.pt", weights_only=True)
    assert checkpoint["sparsity"]["group_shape"] is None
    assert checkpoint["sparsity"]["layers"][chosen[0]]["group_shape"] == [8, 8]
    weight = checkpoint["state_dict"][f"{chosen[0]}.weight"]
    assert group_shape_fits(weight.numpy(), (8, 8))  # pruned in whole 8x8 kernel groups
    compiled, x = compile_checkpoint(tmp_path / "mixed.pt", tmp_path / "mixed.so")
    assert compiled(x.numpy()).shape[0] == 1
