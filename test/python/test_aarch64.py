"""The AArch64 target: NEON kernels, the same C ABI, run under qemu-aarch64 through the harness."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from conftest import REL_TOL, bench_module, relative_error, torch_output
from test_cli import assert_one_line_error, run
from test_compile_numerics import tiny

import rt3d_mlir
from rt3d_mlir.backend.toolchain import CLANG, find_tool
from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.runtime import EmulatedModel
from rt3d_mlir.runtime.elf import read_elf
from rt3d_mlir.runtime.emulated import counting_plugin


@pytest.mark.parametrize(
    "arch, scheme, group_shape",
    [
        ("c3d", "kgs", (4, 4)),
        ("c3d", "vanilla", (4, 4)),
        ("r2plus1d", "kgs", (4, 4)),
        ("r2plus1d", "vanilla", (2, 4)),
        ("s3d", "kgs", (4, 4)),
        ("s3d", "vanilla", (4, 2)),
    ],
)
def test_aarch64_build_matches_torch_under_qemu(arch, scheme, group_shape, tmp_path):
    model, x = tiny(arch)
    apply_random_masks(model, group_shape, 0.4, scheme, seed=3)
    out = tmp_path / f"{arch}.so"
    rt3d_mlir.compile(model, x, output=out, target="aarch64", group_shape=group_shape)
    assert read_elf(str(out)).machine == "aarch64"
    compiled = rt3d_mlir.load(out)
    assert isinstance(compiled, EmulatedModel) and compiled.target == "aarch64"
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL


@pytest.fixture(scope="module")
def c3d_aarch64(tmp_path_factory):
    model, x = tiny("c3d")
    apply_random_masks(model, (16, 16), 0.4, "kgs", seed=4)
    work = tmp_path_factory.mktemp("aarch64")
    out = work / "c3d.so"
    rt3d_mlir.compile(model, x, output=out, target="aarch64", keep_intermediates=str(work / "build"))
    return model, x, out, work


def test_sparse_conv_kernels_use_neon_fused_multiply_adds(c3d_aarch64):
    _, _, _, work = c3d_aarch64
    clang = find_tool(CLANG, "aarch64")
    asm = work / "model.s"
    subprocess.run(
        [clang, "--target=aarch64-linux-gnu", "-mcpu=cortex-a76", "-O3", "-S", "-Wno-override-module",
         str(work / "build" / "model.ll"), "-o", str(asm)],
        check=True,
    )
    text = asm.read_text()
    kernel = re.search(r"^rt3d_conv_kernel_1:.*?^\.Lfunc_end", text, re.S | re.M)
    assert kernel is not None
    fmlas = re.findall(r"\bfmla\tv\d+\.4s, v\d+\.4s, v\d+\.(?:4s|s\[\d\])", kernel.group(0))
    assert len(fmlas) >= 16, "the conv kernel should issue NEON fmla on 4 x f32 vectors"
    assert "zmm" not in text and "ymm" not in text  # nothing host-specific


def test_aarch64_threads_and_cli(c3d_aarch64, tmp_path):
    model, x, out, _ = c3d_aarch64
    one = rt3d_mlir.load(out, threads=1)(x.numpy())
    two = rt3d_mlir.load(out, threads=2)(x.numpy())
    np.testing.assert_array_equal(one, two)  # the same tasks, on 1 or 2 threads
    assert relative_error(two, torch_output(model, x)) <= REL_TOL
    np.save(tmp_path / "x.npy", x.numpy())
    result = run("rt3d-run", str(out), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--threads", "2")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), two)


def test_running_aarch64_without_an_emulator_says_what_to_install(c3d_aarch64, tmp_path):
    _, x, out, _ = c3d_aarch64
    np.save(tmp_path / "x.npy", x.numpy())
    result = run("rt3d-run", str(out), "--input", str(tmp_path / "x.npy"),
                 env={"RT3D_QEMU_AARCH64": str(tmp_path / "no-qemu-here")})
    assert_one_line_error(result, "needs the qemu-aarch64 emulator", "apt-get install qemu-user")


def test_unknown_cpu_is_a_clear_error(tmp_path):
    model, x = tiny("c3d")
    with pytest.raises(rt3d_mlir.Rt3dError):
        rt3d_mlir.compile(model, x, output=tmp_path / "m.so", target="aarch64", cpu="not-a-cpu")
    assert not (tmp_path / "m.so").exists()


def test_qemu_plugin_counts_the_fmla_the_schedule_predicts(c3d_aarch64, tmp_path):
    """bench/aarch64_insn_counts.py's plugin, on a tiny build: measured fmla == static count."""
    model, x, out, _ = c3d_aarch64
    counter = bench_module("aarch64_insn_counts")
    counts = counter.per_inference(counting_plugin(), str(out), x.numpy(), str(tmp_path))
    conv, fc, _ = bench_module("aarch64_fma_counts").fmla_counts(model, x, None)
    assert counts["fmla"] == conv + fc > 0
    assert counts["instructions"] > counts["fmla"] + counts["memory"]


def test_kernel_profile_under_qemu_is_counted_per_kernel_in_call_order(c3d_aarch64, tmp_path):
    """An emulated artifact's profile: each kernel's instructions (the plugin's marks at the clock reads
    around it), in the order the model calls the kernels, as on the host; the same output."""
    from rt3d_mlir.pruning.flops import conv_flops
    from rt3d_mlir.runtime.emulated import modeled_seconds

    model, x, out, _ = c3d_aarch64
    emulated = EmulatedModel(out)
    with pytest.raises(ArtifactError, match="turn profiling on"):
        emulated.kernel_profile()
    plain = emulated(x.numpy())
    emulated.set_profiling(True)
    np.testing.assert_array_equal(emulated(x.numpy()), plain)
    profile = emulated.kernel_profile()
    assert profile and all(k.calls == 1 and k.seconds > 0 for k in profile)
    convs = [k.dense_flops for k in profile if k.name.startswith("rt3d_conv_kernel")]
    assert convs == [2 * layer.dense_macs for layer in conv_flops(model, tuple(x.shape))]  # model order
    kernels = sum(k.seconds for k in profile)
    assert kernels < emulated.seconds < 1.05 * kernels  # and the glue between them
    assert modeled_seconds(emulated.counts) <= emulated.seconds  # one bound for all is looser
    host = tmp_path / "host.so"
    rt3d_mlir.compile(model, x, output=host)
    compiled = rt3d_mlir.load(host)
    compiled.set_profiling(True)
    compiled(x.numpy())
    host_convs = [k.dense_flops for k in compiled.kernel_profile() if k.name.startswith("rt3d_conv_kernel")]
    assert host_convs == convs
