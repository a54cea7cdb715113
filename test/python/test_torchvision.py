"""torchvision's video models, which nobody here wrote: imported beside the CPU torch, compiled from
every file format, dense and pruned, on every target (small inputs: the weights are full size); the
transformers fail with one line naming the operator."""

from __future__ import annotations

import pytest
import torch
from conftest import REL_TOL, randomize_batch_norms, relative_error, torch_output
from test_cli import assert_one_line_error, run

import rt3d_mlir
from rt3d_mlir.contracts.checkpoint import save_checkpoint
from rt3d_mlir.models import build_model
from rt3d_mlir.models.torchvision_video import (
    import_torchvision,
    torchvision_installed,
    torchvision_video_model,
)
from rt3d_mlir.pruning import apply_random_masks

pytestmark = pytest.mark.skipif(not torchvision_installed(), reason="torchvision is a dev dependency")

SMALL = (1, 3, 4, 32, 32)  # N, C, D, H, W: every CNN's strides still leave a 1x1x1 map


def _model(name: str, pruned: bool = False) -> torch.nn.Module:
    model = build_model(f"tv:{name}", num_classes=10).eval()
    randomize_batch_norms(model)
    if pruned:
        apply_random_masks(model, (4, 4), 1 / 2.6, "kgs", seed=0)
    return model


def test_torchvision_imports_beside_the_cpu_torch():
    torchvision = import_torchvision()
    assert callable(torchvision.models.video.r2plus1d_18)
    assert torch._C._jit_get_schemas_for_operator("torchvision::nms")


def test_r2plus1d_from_pt2_matches_torch(tmp_path):
    model, x = _model("r2plus1d_18"), torch.randn(*SMALL)
    path = tmp_path / "r2plus1d.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    out = tmp_path / "r2plus1d.so"
    rt3d_mlir.compile(str(path), output=out)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


def test_pruned_r3d_from_a_pickled_module_needs_trust(tmp_path):
    """A pickled torchvision model loads only when trusted (and torchvision is importable); its
    Conv3DSimple layers take KGS like nn.Conv3d."""
    model, x = _model("r3d_18", pruned=True), torch.randn(*SMALL)
    path = tmp_path / "r3d.pt"
    torch.save(model, path)
    out = tmp_path / "r3d.so"
    shape = ("--input-shape", "1,3,4,32,32")
    assert_one_line_error(run("rt3d-compile", str(path), "-o", str(out), *shape), "--trust-pickle")
    trusted = ("--trust-pickle", "--group-shape", "4x4", "-q")
    result = run("rt3d-compile", str(path), "-o", str(out), *shape, *trusted)
    assert result.returncode == 0, result.stderr
    compiled = rt3d_mlir.load(out)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    compiled.set_profiling(True)
    compiled(x.numpy())
    convs = [p for p in compiled.kernel_profile() if p.name.startswith("rt3d_conv")]
    assert convs and sum(p.dense_flops for p in convs) / sum(p.flops for p in convs) > 2.0


@pytest.mark.parametrize(("name", "target"), [("mc3_18", "aarch64"), ("r3d_18", "spirv")])
def test_pruned_checkpoint_on_the_other_targets(name, target, tmp_path):
    model, x = _model(name, pruned=True), torch.randn(*SMALL)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, f"tv:{name}", {"num_classes": 10}, model)
    out = tmp_path / f"{name}.{target}"
    rt3d_mlir.compile(str(path), output=out, target=target, input_shape=SMALL)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


def test_video_transformers_fail_in_one_line(tmp_path):
    """Attention (a product of two activations) is refused at import, naming the operator and the
    line of torchvision's model (MViT-v2-S is refused the same way at its 16x224x224 input)."""
    model = torchvision_video_model("tv:swin3d_t", num_classes=10).eval()
    path = tmp_path / "swin3d_t.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 2, 32, 32),)), path)
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"))
    where = "torchvision/models/video/swin_transformer.py"
    assert_one_line_error(result, "unsupported operator 'aten.bmm'", where, "attention")
    assert not (tmp_path / "m.so").exists()


@pytest.mark.parametrize(
    "name, precision, target",
    [
        ("r3d_18", "bf16", "host"),
        ("r2plus1d_18", "bf16", "host"),
        ("s3d", "bf16", "host"),
        ("r2plus1d_18", "fp16", "host"),
        ("r2plus1d_18", "fp16", "aarch64"),
    ],
)
def test_16bit_builds_stay_within_their_tolerance(name, precision, target, tmp_path):
    # models nobody here wrote (and the built-in S3D, full width: its concats and padded pools),
    # dense, batch norms folded into 16-bit weights, residual adds in 16 bits; fp16 on AArch64
    # computes in f16 (each entry's channels summed in f16, under qemu)
    from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR

    if name == "s3d":  # torchvision's S3D needs 224x224 clips; ours takes small ones
        model = build_model("s3d", num_classes=10, input_size=(8, 32, 32)).eval()
        x = torch.randn(1, 3, 8, 32, 32)
        randomize_batch_norms(model)
    else:
        model, x = _model(name), torch.randn(*SMALL)
    out = tmp_path / f"{name}.{target}"
    rt3d_mlir.compile(model, x, output=out, precision=precision, target=target)
    error = relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x))
    # measured bf16 1.9e-3 to 5.5e-3, fp16 1.1e-3 (AArch64 1.4e-3); an f32 build would be near 1e-7
    assert MAX_RELATIVE_ERROR["fp32"] / 100 < error <= MAX_RELATIVE_ERROR[precision]
