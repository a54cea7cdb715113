"""The SPIR-V target: GPU kernels for whole models, valid SPIR-V, run on lavapipe through Vulkan."""

from __future__ import annotations

import json
import subprocess
import zipfile

import numpy as np
import pytest
import torch
from conftest import REL_TOL, relative_error, torch_output
from test_cli import assert_one_line_error, run
from test_compile_numerics import tiny

import rt3d_mlir
from rt3d_mlir.pruning import apply_random_masks


def spirv_val(artifact, tmp_path) -> None:
    """Every kernel of the artifact passes spirv-val for the Vulkan 1.1 environment."""
    with zipfile.ZipFile(artifact) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == "rt3d-spirv" and manifest["target_env"] == "vulkan1.1"
        for kernel in manifest["kernels"]:
            path = tmp_path / f"{kernel['name']}.spv"
            path.write_bytes(archive.read(kernel["module"]))
            result = subprocess.run(
                ["spirv-val", "--target-env", "vulkan1.1", str(path)], capture_output=True, text=True
            )
            assert result.returncode == 0, (kernel["name"], result.stderr)


@pytest.mark.parametrize(
    "arch, scheme, group_shape",
    [
        ("c3d", "kgs", (4, 4)),
        ("c3d", "kgs", (16, 4)),
        ("c3d", "vanilla", (4, 4)),
        ("c3d", None, None),
        ("r2plus1d", "kgs", (4, 4)),
        ("r2plus1d", "vanilla", (2, 4)),
        ("s3d", "kgs", (4, 4)),
        ("s3d", "vanilla", (4, 2)),
    ],
)
def test_spirv_build_matches_torch_on_lavapipe(arch, scheme, group_shape, tmp_path):
    model, x = tiny(arch)
    if scheme is not None:
        apply_random_masks(model, group_shape, 0.4, scheme, seed=3)
    out = tmp_path / f"{arch}.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv", group_shape=group_shape)
    spirv_val(out, tmp_path)
    compiled = rt3d_mlir.load(out)
    assert compiled.input_shape == tuple(x.shape)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    if scheme == "kgs":
        assert manifest["flops"] < manifest["dense_flops"]  # only kept entries are visited


@pytest.fixture(scope="module")
def tiny_c3d_file(tmp_path_factory):
    model, x = tiny("c3d")
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=3)
    path = tmp_path_factory.mktemp("spirv") / "model.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    return model, x, path


def test_spirv_cli_compile_and_run(tiny_c3d_file, tmp_path):
    model, x, checkpoint = tiny_c3d_file
    out, shape = tmp_path / "model.spv", ",".join(map(str, x.shape))
    result = run("rt3d-compile", str(checkpoint), "-o", str(out), "--target", "spirv", "--input-shape", shape)
    assert result.returncode == 0, result.stderr
    np.save(tmp_path / "x.npy", x.numpy())
    x_path, y = tmp_path / "x.npy", tmp_path / "y.npy"
    result = run("rt3d-run", str(out), "--input", str(x_path), "--output", str(y), "--device", "0")
    assert result.returncode == 0, result.stderr
    assert relative_error(np.load(y), torch_output(model, x)) <= REL_TOL


def test_spirv_rejects_cpu_options(tiny_c3d_file, tmp_path):
    _, x, checkpoint = tiny_c3d_file
    out, shape = tmp_path / "model.spv", ",".join(map(str, x.shape))
    result = run(
        "rt3d-compile",
        str(checkpoint),
        "-o",
        str(out),
        "--target",
        "spirv",
        "--cpu",
        "cortex-a76",
        "--input-shape",
        shape,
    )
    assert_one_line_error(result, "spirv")
    assert not out.exists()


def test_conv_tiles_with_a_partial_last_tile(tmp_path):
    """1000 output positions: 8 per invocation, the second 512-position tile only partly valid."""
    from rt3d_mlir.backend.spirv_kernels import positions_per_invocation

    assert [positions_per_invocation(n) for n in (1000, 784, 32)] == [8, 2, 1]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(4, 8, 3, padding=1), torch.nn.ReLU()).eval()
    x = torch.randn(1, 4, 10, 10, 10)
    out = tmp_path / "conv.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv")
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


def test_conv_feeding_a_conv_writes_its_padded_output_in_place(tmp_path):
    """Pad elision: only the model input is padded by a dispatch; conv1 writes into conv2's padded input."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv3d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 8, 3, padding=(0, 1, 1))
    ).eval()
    x = torch.randn(1, 4, 6, 9, 9)
    out = tmp_path / "convs.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv")
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    labels = [d["label"] for d in manifest["dispatches"]]
    assert labels == ["pad1", "conv1", "conv2"]
    assert [b["init"] for b in manifest["buffers"]].count("zero") == 1
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize(
    "layers",
    [
        # average pool, FC, softmax (a max/argmax generic with an unused second result, math.exp)
        lambda: [
            torch.nn.Conv3d(3, 8, 3, padding=1),
            torch.nn.AvgPool3d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(8 * 4 * 4 * 4, 5),
            torch.nn.Softmax(dim=1),
        ],
        # BatchNorm (folded), sigmoid, global average pool (output maps with constant indices)
        lambda: [
            torch.nn.Conv3d(3, 8, 3, padding=1),
            torch.nn.BatchNorm3d(8),
            torch.nn.Sigmoid(),
            torch.nn.AdaptiveAvgPool3d(1),
            torch.nn.Flatten(),
        ],
        # strided conv, max pool with -inf padding
        lambda: [
            torch.nn.Conv3d(3, 8, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool3d(3, 2, padding=1),
        ],
    ],
    ids=["avgpool-softmax", "bn-sigmoid-globalpool", "stride-maxpool-pad"],
)
def test_spirv_layers_beyond_the_three_models(layers, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(*layers()).eval()
    x = torch.randn(1, 3, 8, 8, 8)
    out = tmp_path / "m.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv")
    spirv_val(out, tmp_path)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL
