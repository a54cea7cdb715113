"""The generated kernels: against the reference lowering, across thread counts, profiled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REL_TOL, relative_error, torch_output
from torch import nn

import rt3d_mlir
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks


@pytest.fixture(scope="module")
def pruned_c3d(tmp_path_factory):
    model = build_model("c3d", width=1 / 8, input_size=(16, 16, 16)).eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=5)
    x = torch.randn(1, 3, 16, 16, 16)
    out = tmp_path_factory.mktemp("codegen") / "c3d.so"
    rt3d_mlir.compile(model, x, output=out, group_shape=(4, 4))
    return model, x, out


def test_generated_kernels_agree_with_the_reference_lowering(pruned_c3d, tmp_path):
    model, x, out = pruned_c3d
    reference = tmp_path / "reference.so"
    rt3d_mlir.compile(model, x, output=reference, group_shape=(4, 4), reference_kernels=True)
    fast = rt3d_mlir.load(out)(x.numpy())
    slow = rt3d_mlir.load(reference)(x.numpy())
    assert relative_error(fast, slow) <= 1e-5
    assert relative_error(fast, torch_output(model, x)) <= REL_TOL


def test_thread_counts_give_identical_outputs(pruned_c3d):
    _, x, out = pruned_c3d
    model = rt3d_mlir.load(out, threads=1)
    assert model.threads == 1
    one = model(x.numpy())
    model.threads = 2
    assert model.threads == 2
    two = model(x.numpy())
    # Tasks own disjoint outputs and each sums in a fixed order: bit-identical.
    np.testing.assert_array_equal(one, two)
    with pytest.raises(rt3d_mlir.Rt3dError, match="between 1 and"):
        model.threads = 0
    # the same file loaded again shares the library: each model still runs on its own count
    other = rt3d_mlir.load(out, threads=1)
    model(x.numpy())
    assert model.threads == 2 and other.threads == 1
    other(x.numpy())
    assert other._lib.rt3d_num_threads() == 1
    model(x.numpy())
    assert model._lib.rt3d_num_threads() == 2


def test_kernel_profile_names_every_kernel(pruned_c3d):
    _, x, out = pruned_c3d
    model = rt3d_mlir.load(out)
    model.set_profiling(True)
    model(x.numpy())
    model(x.numpy())
    profile = model.kernel_profile()
    model.set_profiling(False)
    convs = [p for p in profile if p.name.startswith("rt3d_conv_kernel_")]
    matmuls = [p for p in profile if p.name.startswith("rt3d_matmul_kernel_")]
    assert len(convs) == 8 and len(matmuls) == 3  # C3D's eight convs and three FC layers
    assert all(p.calls == 2 and p.seconds > 0 for p in profile)
    assert all(p.gflops_per_second > 0 for p in convs + matmuls)
    # Pools, pads and elementwise ops run as kernels too.
    kinds = {p.name.rsplit("_kernel_", 1)[0] for p in profile}
    assert kinds == {"rt3d_conv", "rt3d_matmul", "rt3d_pool", "rt3d_pad"}, kinds
    # FLOPs per call: 2 x (kept weights) x (output positions), layer by layer.
    model, x, _ = pruned_c3d
    positions = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: positions.append(out[0, 0].numel()))
        for m in model.modules()
        if isinstance(m, torch.nn.Conv3d)
    ]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    convs_in_order = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    kept = [2 * int((m.weight != 0).sum()) * n for m, n in zip(convs_in_order, positions, strict=True)]
    dense = [2 * m.weight.numel() * n for m, n in zip(convs_in_order, positions, strict=True)]
    assert [p.flops for p in convs] == kept
    assert [p.dense_flops for p in convs] == dense
    assert all(p.flops < p.dense_flops for p in convs)


class PoolNet(nn.Module):
    """Every max-pool form the models use: (1,2,2)/2, (2,2,2)/2 with H/W padding, 3/1 padded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 5, 3, padding=1)
        self.pools = nn.Sequential(
            nn.MaxPool3d((1, 2, 2), (1, 2, 2)),
            nn.MaxPool3d((2, 2, 2), (2, 2, 2), padding=(0, 1, 1)),
            nn.MaxPool3d(3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pools(self.conv(x))


def test_pools_become_vector_kernels_and_match_torch(tmp_path):
    model = PoolNet().eval()
    x = torch.randn(1, 3, 6, 38, 22)  # odd rows: full and masked vectors
    out = tmp_path / "pool.so"
    rt3d_mlir.compile(model, x, output=out, keep_intermediates=str(tmp_path / "build"))
    compiled = rt3d_mlir.load(out)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    compiled.set_profiling(True)
    compiled(x.numpy())
    names = [p.name for p in compiled.kernel_profile()]
    # the (1,2,2) pool reads the conv alone: the conv's kernel computes it in its epilogue; the
    # padded pools keep kernels of their own
    assert sum(n.startswith("rt3d_pool_kernel_") for n in names) == 2
    assert sum(n.startswith("rt3d_conv_kernel_") for n in names) == 1


def test_constant_array_keeps_a_splat_constants_element_type():
    from torch_mlir import ir

    from rt3d_mlir.ir_matchers import constant_array

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(
            "func.func @f() -> (tensor<4xi16>, tensor<3xi32>, tensor<2xf32>) {\n"
            "  %a = arith.constant dense<16128> : tensor<4xi16>\n"
            "  %b = arith.constant dense<[1, 2, 3]> : tensor<3xi32>\n"
            "  %c = arith.constant dense<0.5> : tensor<2xf32>\n"
            "  return %a, %b, %c : tensor<4xi16>, tensor<3xi32>, tensor<2xf32>\n}"
        )
        ret = module.body.operations[0].regions[0].blocks[0].operations[3]
        a, b, c = (constant_array(v) for v in ret.operands)
    assert a.dtype == np.int16 and a.tolist() == [16128] * 4
    assert b.tolist() == [1, 2, 3]
    assert c.dtype == np.float32 and c.tolist() == [0.5, 0.5]
