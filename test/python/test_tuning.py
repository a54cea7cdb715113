"""Per-layer schedules chosen by measurement (``tune=True``, rt3d_mlir/backend/tuning.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import REL_TOL, compile_and_run, relative_error, torch_output
from test_cli import assert_one_line_error, run
from test_compile_numerics import PaddedChain
from torch import nn
from torch_mlir import ir

from rt3d_mlir.backend import tuning
from rt3d_mlir.backend.cpu import packing_pipeline
from rt3d_mlir.dialect import packed_conv3d_params
from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.frontend import import_to_linalg, save_checkpoint
from rt3d_mlir.ir_matchers import ops_named
from rt3d_mlir.models import build_model
from rt3d_mlir.passes import run_pipeline
from rt3d_mlir.passes.reorder_loops import Schedule, candidate_schedules, default_accumulators, rule_schedule
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.targets import get_target

HOST = get_target("host")


def _pruned_chain() -> tuple[nn.Module, torch.Tensor]:
    model = PaddedChain().eval()
    apply_random_masks(model, (2, 2), 0.5, "kgs", seed=4)
    return model, torch.randn(1, 3, 5, 9, 21)


def _packed(model: nn.Module, x: torch.Tensor, group_shape=(2, 2)) -> ir.Module:
    module = import_to_linalg(model, x)
    with module.context:
        run_pipeline(module, f"builtin.module({packing_pipeline(group_shape, 'host')})")
    return module


def test_candidates_start_with_the_rules_and_cover_both_vector_dims():
    model, x = _pruned_chain()
    module = _packed(model, x)
    with module.context:
        for op in ops_named(module.operation, "rt3d.packed_conv3d"):
            found = candidate_schedules(op, HOST, default_accumulators(HOST))
            assert found[0] == rule_schedule(op, HOST, default_accumulators(HOST))
            assert len(found) == len(set(found))
            # narrow blocks (2x2 groups): columns in the lanes, or filters times columns, too
            assert {s.vector_dim for s in found} == {"filters", "width", "interleaved"}
            assert {s.loop_order for s in found} == {"fdhw", "dfhw", "dhfw"}
            # half-length vectors are tried where a row fits them (W = 21 > 8: not here)
            assert all(s.vector_lanes == HOST.f32_lanes for s in found if s.vector_dim == "width")


def test_narrow_width_candidates_in_dhfw_order_come_with_and_without_channel_chunks():
    """Where a pass over all input channels outgrows L1 (128 channels x 3 depths x 3 rows x 130
    columns), "width" candidates in "dhfw" order are timed with the rules' chunks and without;
    candidates in other orders never carry a chunk."""
    model = nn.Sequential(nn.Conv3d(128, 8, 3, padding=1)).eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=3)
    module = _packed(model, torch.randn(1, 128, 3, 4, 128), group_shape=(4, 4))
    with module.context:
        (op,) = ops_named(module.operation, "rt3d.packed_conv3d")
        found = candidate_schedules(op, HOST, default_accumulators(HOST))
        assert found[0].channel_chunk and found[0].channel_chunk % 4 == 0
        dhfw_width = [s for s in found if s.vector_dim == "width" and s.loop_order == "dhfw"]
        assert {bool(s.channel_chunk) for s in dhfw_width} == {True, False}
        assert all(not s.channel_chunk for s in found if s not in dhfw_width)


def test_strided_convs_keep_filters_in_lanes():
    model = nn.Sequential(nn.Conv3d(4, 16, 3, stride=2, padding=1)).eval()
    module = _packed(model, torch.randn(1, 4, 4, 8, 8), group_shape=None)
    with module.context:
        (op,) = ops_named(module.operation, "rt3d.packed_conv3d")
        assert {s.vector_dim for s in candidate_schedules(op, HOST, 14)} == {"filters"}


def test_tuned_build_matches_torch_and_the_cache_is_reused(tmp_path, monkeypatch):
    model, x = _pruned_chain()
    cache = tmp_path / "schedules.json"
    got = compile_and_run(model, x, tmp_path / "tuned.so", group_shape=(2, 2), tune=True, tune_cache=cache)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL
    data = json.loads(cache.read_text())
    assert data["format"] == tuning.CACHE_FORMAT
    layers = data["layers"]
    assert len(layers) == 4  # the chain's four convs differ in shape
    for entry in layers.values():
        measured = entry["measured_ms"]
        chosen = Schedule(**{**entry["schedule"], "tile_sizes": tuple(entry["schedule"]["tile_sizes"])})
        assert measured[chosen.describe()] == min(measured.values())
        assert len(measured) >= 4 and all(ms > 0 for ms in measured.values())

    def no_timing(*_args, **_kwargs):
        raise AssertionError("every layer is cached: nothing should be timed")

    monkeypatch.setattr(tuning, "_time_candidates", no_timing)
    again = compile_and_run(model, x, tmp_path / "again.so", group_shape=(2, 2), tune=True, tune_cache=cache)
    assert relative_error(again, got) == 0.0


def test_16bit_builds_tune_their_own_kernels_and_cache_them_apart(tmp_path):
    # the candidates of a bf16 build are bf16 builds (AMX, vdpbf16ps or widened, as the build);
    # their times are cached under keys of their own, so fp32 and bf16 builds do not share them
    from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv3d(16, 16, 3, padding=1)).eval()
    x = torch.randn(1, 3, 4, 6, 20)
    cache = tmp_path / "schedules.json"
    compile_and_run(model, x, tmp_path / "fp32.so", tune=True, tune_cache=cache)
    fp32_keys = set(json.loads(cache.read_text())["layers"])
    got = compile_and_run(model, x, tmp_path / "bf16.so", tune=True, tune_cache=cache, precision="bf16")
    assert relative_error(got, torch_output(model, x)) <= MAX_RELATIVE_ERROR["bf16"]
    keys = set(json.loads(cache.read_text())["layers"])
    assert len(fp32_keys) == 2 and len(keys) == 4 and fp32_keys < keys


def test_int8_builds_tune_int8_kernels(tmp_path):
    """An int8 build's candidates are the schedules int8 kernels take (filters in the lanes, no
    channel chunks), timed as int8 builds; the build computes the scheme."""
    from test_int8 import INT8_TOL, _simulated

    from rt3d_mlir.quantization import calibrate

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(4, 16, 3, padding=1), nn.ReLU(), nn.Conv3d(16, 16, 3, padding=1)).eval()
    x = torch.randn(1, 4, 4, 6, 20)
    scales = calibrate(model, [x])
    cache = tmp_path / "schedules.json"
    got = compile_and_run(model, x, tmp_path / "int8.so", tune=True, tune_cache=cache, precision="int8",
                          int8_scales=scales)
    assert relative_error(got, _simulated(model, scales, x)) <= INT8_TOL
    layers = json.loads(cache.read_text())["layers"]
    assert len(layers) == 2  # under keys of their own (as for bf16, above)
    for entry in layers.values():
        assert entry["schedule"]["vector_dim"] == "filters" and not entry["schedule"]["channel_chunk"]
        assert len(entry["measured_ms"]) >= 2


def _identity() -> str:
    from rt3d_mlir.backend.cpu import require_toolchain

    toolchain = require_toolchain(HOST)
    return tuning.machine_identity(toolchain.cpu, toolchain.target.triple)


def test_cached_schedules_are_set_on_the_convs(tmp_path):
    """A cache entry decides the layer's schedule without any timing; the layer key includes the
    thread count."""
    model = nn.Sequential(nn.Conv3d(4, 8, 3, padding=1), nn.ReLU()).eval()
    module = _packed(model, torch.randn(1, 4, 4, 8, 8), group_shape=None)
    cache = tmp_path / "schedules.json"
    wanted = Schedule("filters", "dhfw", (2, 3), 8, 8)
    with module.context:
        (op,) = ops_named(module.operation, "rt3d.packed_conv3d")
        key = tuning.layer_key(op, _identity(), threads=3)
        cache.write_text(json.dumps({
            "format": tuning.CACHE_FORMAT,
            "layers": {key: {"schedule": {"vector_dim": "filters", "loop_order": "dhfw",
                                          "tile_sizes": [2, 3], "vector_lanes": 8,
                                          "tile_filters": 8, "block_group": 1}}},
        }))

        def no_build(*_args):
            raise AssertionError("the layer is cached")

        chosen = tuning.tune_schedules(module, HOST, _identity(), no_build, str(cache), threads=3)
        assert chosen == [wanted]
        params = packed_conv3d_params(op)
        assert (params.vector_dim, params.loop_order, params.tile_sizes) == ("filters", "dhfw", (2, 3))
        assert tuning.layer_key(op, _identity(), threads=2) != key


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "cannot read the schedule cache"),
        (json.dumps({"format": "something else", "layers": {}}), "is not an rt3d schedule cache"),
        (json.dumps({"format": tuning.CACHE_FORMAT}), "has no layers table"),
        (json.dumps({"format": tuning.CACHE_FORMAT, "layers": {"k": {"schedule": {"vector_dim": 1}}}}),
         "malformed schedule"),
        (json.dumps({"format": tuning.CACHE_FORMAT, "layers": {"k": {"schedule": {
            "vector_dim": "diagonal", "loop_order": "fdhw", "tile_sizes": [1, 1], "vector_lanes": 4,
            "tile_filters": 4, "block_group": 1}}}}),
         "invalid schedule"),
        (json.dumps({"format": tuning.CACHE_FORMAT, "layers": {"k": {"schedule": {
            "vector_dim": "width", "loop_order": "fdhw", "tile_sizes": [0, 1], "vector_lanes": 4,
            "tile_filters": 4, "block_group": 1}}}}),
         "invalid schedule"),
    ],
)
def test_bad_caches_are_refused(tmp_path, text, message):
    path = tmp_path / "schedules.json"
    path.write_text(text)
    with pytest.raises(Rt3dError, match=message):
        tuning.ScheduleCache.open(str(path)).schedule("k")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = build_model("c3d", width=1 / 16, input_size=(16, 16, 16)).eval()
    path = tmp_path_factory.mktemp("models") / "c3d.pt"
    save_checkpoint(path, "c3d", {"width": 1 / 16, "input_size": (16, 16, 16)}, model)
    return path


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--target", "aarch64", "--tune"], ["--tune times kernels on this machine", "not to aarch64"]),
        (["--target", "spirv", "--tune"], ["apply to CPU targets"]),
        (["--tune", "--reference-kernels"], ["exclude each other"]),
        (["--tune", "--tune-cache", "BAD"], ["is not an rt3d schedule cache"]),
        (["--target", "spirv", "--precision", "bf16"], ["precision 'bf16' is not available on spirv"]),
        (["--reference-kernels", "--precision", "bf16"], ["computes in fp32 only"]),
        (["--precision", "fp8"], ["invalid choice: 'fp8'"]),
        (["--precision", "int8"], ["precision int8 needs calibrated int8 input scales", "rt3d-prune --int8"]),
        (["--target", "spirv", "--precision", "int8"], ["precision int8 needs calibrated int8 input scales"]),
    ],
)
def test_compile_tune_and_precision_errors_are_one_line(model_file, tmp_path, extra, fragments):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    args = [str(bad) if a == "BAD" else a for a in extra]
    result = run("rt3d-compile", str(model_file), "-o", str(tmp_path / "m.so"), *args)
    assert_one_line_error(result, "rt3d-compile: error:", *fragments)
    assert not (tmp_path / "m.so").exists()


def test_bench_schedule_choices_are_checked():
    result = run("rt3d-bench", "--schedules", "fastest")
    assert_one_line_error(result, "rt3d-bench: error:", "--schedules takes rules and/or tuned")
    result = run("rt3d-bench", "--tune-cache", "x.json")
    assert_one_line_error(result, "rt3d-bench: error:", "--tune-cache applies to --schedules tuned")
    result = run("rt3d-bench", "--precisions", "fp32,int4")
    assert_one_line_error(result, "rt3d-bench: error:", "--precisions takes fp32, bf16")


def test_layers_of_one_key_are_judged_on_the_schedules_all_of_them_ran():
    a = Schedule("filters", "fdhw", (1, 14), 16, 16)
    b = Schedule("width", "dhfw", (3, 28), 16, 16)
    c = dataclasses.replace(a, block_group=2)  # only the first conv's blocks can share tiles
    candidates = {0: [a, c, b], 3: [a, b]}
    # build k ran candidate k (the rules' one, a, where a conv has fewer)
    times = [{0: 5.0, 3: 6.0}, {0: 3.0, 3: 6.1}, {0: 4.0, 3: 4.5}]
    totals = tuning._summed_times([0, 3], candidates, times)
    assert totals == pytest.approx({a: 11.0, b: 10.1})  # c: the second conv never ran it
    assert tuning._summed_times([0], candidates, times) == {a: 5.0, c: 3.0, b: 4.0}
