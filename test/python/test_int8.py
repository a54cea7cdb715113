"""int8 builds (``precision="int8"``): the int8 scheme of rt3d_mlir.quantization computed by the
compiled model, with int8 dot-product kernels where the CPU has them, and the errors around it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import bench_module, randomize_batch_norms, relative_error, torch_output
from torch import nn

import rt3d_mlir
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.contracts.checkpoint import save_checkpoint
from rt3d_mlir.errors import UnsupportedModelError
from rt3d_mlir.kernel_packing import INT8_QUAD, int8_quads, quantized_lanes
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.quantization import SCHEME, calibrate, quantize_weight, simulated_int8
from rt3d_mlir.runtime.emulated import counting_plugin
from rt3d_mlir.targets import get_target

# the dot products the int8 kernels call, by target (AArch64: the default cortex-a76 has dotprod)
DOTS = {"host": "llvm.x86.avx512.vpdpbusd.512", "aarch64": "llvm.aarch64.neon.sdot.v4i32.v16i8"}
# an int8 build against the scheme simulated in PyTorch, on one clip: the integer sums are exact,
# so the two differ by f32 rounding, and by whole quantization steps where that rounding moves a
# value across the midpoint between two grid points (measured 1e-7 on these C3Ds, 2e-3 on the
# R(2+1)D); MAX_RELATIVE_ERROR["int8"] bounds it over a whole data set (rt3d-demo, rt3d-bench)
INT8_TOL = 1e-2


def _tiny(arch: str) -> tuple[nn.Module, torch.Tensor]:
    model = build_model(arch, num_classes=5, width=0.25, input_size=(16, 32, 32)).eval()
    randomize_batch_norms(model)
    return model, torch.randn(1, 3, 16, 32, 32)


def _simulated(model: nn.Module, scales: dict[str, float], x: torch.Tensor) -> np.ndarray:
    with torch.no_grad(), simulated_int8(model, scales):
        return model(x).numpy()


def _vnni() -> bool:
    from rt3d_mlir.runtime.elf import cpu_features

    return "avx512_vnni" in (cpu_features() or set())


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("arch, groups", [("c3d", (16, 16)), ("c3d", (4, 4)), ("r2plus1d", (16, 16))])
def test_int8_builds_compute_the_int8_scheme(arch, groups, target, tmp_path):
    """Kernel groups run as int8 dot products in blocks of the target's lanes: 4 on NEON; 16 on
    AVX-512 VNNI, 4x4 groups widened to 16x16 (without VNNI they keep f32 kernels). Convs the int8
    kernels do not take (conv1a: 3 input channels) keep f32 kernels with their weights on the int8
    grid. Either way the build computes the scheme, and stays within its accuracy of the float
    model."""
    model, x = _tiny(arch)
    apply_random_masks(model, groups, 0.5, "kgs", seed=1)
    scales = calibrate(model, [torch.randn(2, 3, 16, 32, 32), x])
    ir_dir = tmp_path / "ir"
    output = tmp_path / f"m.{target}"
    compile_model(
        model, x, output=output, target=target, precision="int8", int8_scales=scales,
        group_shape=groups, keep_intermediates=str(ir_dir),
    )
    got = rt3d_mlir.load(output)(x.numpy())
    assert relative_error(got, _simulated(model, scales, x)) <= INT8_TOL
    # int8 against float: the scheme's own error (bench/RESULTS.md: top-1 unchanged after QAT)
    assert relative_error(got, torch_output(model, x)) <= 0.05
    ll = (ir_dir / "model.ll").read_text()
    assert (ll.count(DOTS[target]) > 0) == (target == "aarch64" or _vnni())
    if arch == "c3d":
        # int8 between convs: of the seven int8 convs, the four that read a conv alone (conv2 after
        # conv1's epilogue pool, 3b, 4b, 5b) get their int8 input from its epilogue; the three
        # after a 2x2x2 pool read it through a quantize kernel. The int8 kernels take groups that
        # fill the target's lanes (4x4 widened to 16x16 with VNNI; on AVX2's 8 lanes 16x16 only)
        int8_kernels = target == "aarch64" or _vnni() or groups[0] % get_target(target).f32_lanes == 0
        assert len(set(re.findall(r"@rt3d_quantize_dispatch_\d+", ll))) == (3 if int8_kernels else 0)


def test_int8_artifact_records_its_precision(tmp_path):
    from rt3d_mlir.runtime.shared_object import verify_artifact

    model, x = _tiny("c3d")
    scales = calibrate(model, [x])
    compile_model(model, x, output=tmp_path / "m.so", precision="int8", int8_scales=scales)
    assert verify_artifact(str(tmp_path / "m.so")).precision == "int8"


def test_quantized_lanes_are_the_schemes_per_channel_weights():
    """Packed weights quantized per lane give the integers and scales of quantize_weight on the
    layer's weight (per output channel), with each lane's integer sum."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((8, 8, 3, 1, 1)).astype(np.float32)  # 8 filters, 8 channels, 3 taps
    weight[2] = 0.0  # an empty filter: scale 1, integers 0
    q_ref, s_ref = quantize_weight(torch.from_numpy(weight))
    # pack as one block of 8 lanes, one entry per (tap, run of 8 channels): per entry U x B
    runs = weight.transpose(2, 1, 0, 3, 4).reshape(3, 8, 8)
    q, scales, sums = quantized_lanes(runs.reshape(-1), np.array([0, 3]), 8, 8)
    assert np.array_equal(scales, s_ref.numpy())
    assert np.array_equal(q.reshape(3, 8, 8), q_ref.numpy().transpose(2, 1, 0, 3, 4).reshape(3, 8, 8))
    assert np.array_equal(sums, q_ref.numpy().astype(np.int64).reshape(8, -1).sum(axis=1))
    quads = int8_quads(q, 8, 8).reshape(3, 8 // INT8_QUAD, 8, INT8_QUAD)
    # lane f of quad p holds channels 4p .. 4p+3 of filter f side by side
    assert np.array_equal(quads[1, 1, 5], q.reshape(3, 8, 8)[1, 4:8, 5])


def test_int8_needs_calibrated_scales(tmp_path):
    model, x = _tiny("c3d")
    with pytest.raises(UnsupportedModelError, match="needs calibrated int8 input scales"):
        compile_model(model, x, output=tmp_path / "m.so", precision="int8")
    with pytest.raises(UnsupportedModelError, match="int8 scale of layer 'nothing' matches no"):
        compile_model(model, x, output=tmp_path / "m.so", precision="int8", int8_scales={"nothing": 1.0})
    assert not (tmp_path / "m.so").exists()


def test_int8_checkpoint_compiles_from_the_command_line(tmp_path):
    from test_cli import run

    kwargs = {"num_classes": 5, "width": 0.25, "input_size": (16, 32, 32)}
    model, x = _tiny("c3d")
    scales = calibrate(model, [x])
    path = tmp_path / "c3d.pt"
    save_checkpoint(path, "c3d", kwargs, model, quantization={"scheme": SCHEME, "input_scales": scales})
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), "--precision", "int8")
    assert result.returncode == 0, result.stderr
    got = rt3d_mlir.load(tmp_path / "m.so")(x.numpy())
    assert relative_error(got, _simulated(model, scales, x)) <= INT8_TOL


def test_qemu_plugin_counts_one_sdot_per_quad_of_channels_four_filters_and_position(tmp_path):
    """An AArch64 int8 build executes, per int8 conv, one sdot for each block of 4 filters, quad
    of 4 input channels, kernel tap and output position (dense weights: MACs / 16); conv1a (3
    input channels) keeps f32 fmla (bench/aarch64_insn_counts.py's plugin)."""
    model = build_model("c3d", num_classes=4, width=0.125, input_size=(16, 32, 32)).eval()
    x = torch.randn(1, 3, 16, 32, 32)
    expected = 0
    hooks = []

    def count(module, inputs, output):
        nonlocal expected
        c_in = inputs[0].shape[1]
        if c_in % INT8_QUAD == 0:
            taps = int(np.prod(module.kernel_size))
            expected += -(-module.out_channels // 4) * (c_in // INT8_QUAD) * taps * output[0, 0].numel()

    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            hooks.append(module.register_forward_hook(count))
    scales = calibrate(model, [x])
    for hook in hooks:
        hook.remove()
    output = tmp_path / "m.aarch64"
    compile_model(model, x, output=output, target="aarch64", precision="int8", int8_scales=scales)
    counter = bench_module("aarch64_insn_counts")
    counts = counter.per_inference(counting_plugin(), str(output), x.numpy(), str(tmp_path))
    assert counts["sdot"] == expected > 0
    assert counts["fmla"] > 0  # conv1a and the FC layers


def test_int8_artifacts_store_int8_weights(tmp_path):
    """The issue's "quartering the weight bytes": conv weights as int8 quads, the FC layers' as int8
    with one scale per output (their kernel converts each weight vector as it streams it); what
    stays 32-bit is conv1a's weights (3 input channels: an f32 kernel), biases, scales and tables."""
    model = build_model("c3d", num_classes=5, width=0.5, input_size=(16, 32, 32)).eval()
    x = torch.randn(1, 3, 16, 32, 32)
    scales = calibrate(model, [x])
    sizes = {}
    for precision in ("fp32", "int8"):
        ir_dir = tmp_path / precision
        compile_model(
            model, x, output=tmp_path / f"{precision}.so", precision=precision,
            int8_scales=scales if precision == "int8" else None, keep_intermediates=str(ir_dir),
        )
        sizes[precision] = (ir_dir / "weights.bin").stat().st_size
    lanes = get_target("host").f32_lanes  # the FC kernels convert a vector of int8 weights at a time
    assert f"sitofp <{lanes} x i8>" in (tmp_path / "int8" / "model.ll").read_text()
    assert sizes["int8"] < 0.3 * sizes["fp32"]
    got = rt3d_mlir.load(tmp_path / "int8.so")(x.numpy())
    assert relative_error(got, _simulated(model, scales, x)) <= INT8_TOL
