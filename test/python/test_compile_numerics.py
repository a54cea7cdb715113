"""Whole models with kernel-group sparsity, compiled to host .so, against PyTorch."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    REL_TOL,
    compile_and_run,
    kernel_profile,
    randomize_batch_norms,
    relative_error,
    torch_output,
)
from torch import nn
from torch_mlir import ir

import rt3d_mlir
from rt3d_mlir.backend.cpu import kernel_pipeline, packing_pipeline
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.dialect import kgs_conv3d_params, packed_conv3d_params
from rt3d_mlir.frontend import import_to_linalg
from rt3d_mlir.ir_matchers import ops_named
from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR
from rt3d_mlir.models import build_model
from rt3d_mlir.passes import run_pipeline
from rt3d_mlir.pruning import apply_random_masks

TINY = {
    "c3d": (dict(width=1 / 16, input_size=(16, 16, 16)), (1, 3, 16, 16, 16)),
    "r2plus1d": (dict(width=1 / 16, input_size=(8, 16, 16)), (1, 3, 8, 16, 16)),
    "s3d": (dict(width=1 / 16, input_size=(8, 32, 32)), (1, 3, 8, 32, 32)),
}


def tiny(arch: str) -> tuple[nn.Module, torch.Tensor]:
    kwargs, shape = TINY[arch]
    model = build_model(arch, **kwargs)
    randomize_batch_norms(model)
    return model.eval(), torch.randn(*shape)


@pytest.mark.parametrize(
    "arch, scheme, group_shape, keep",
    [
        ("c3d", "kgs", (4, 4), 0.4),
        ("c3d", "kgs", (8, 4), 0.3),
        ("c3d", "vanilla", (4, 4), 0.5),
        ("r2plus1d", "kgs", (4, 4), 0.4),
        ("r2plus1d", "vanilla", (2, 4), 0.5),
        ("s3d", "kgs", (4, 4), 0.4),
        ("s3d", "vanilla", (4, 2), 0.5),
    ],
)
def test_pruned_model_matches_torch(arch, scheme, group_shape, keep, tmp_path):
    model, x = tiny(arch)
    apply_random_masks(model, group_shape, keep, scheme, seed=3)
    got = compile_and_run(model, x, tmp_path / f"{arch}.so", group_shape=group_shape)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


def test_dense_model_matches_torch(tmp_path):
    model, x = tiny("c3d")
    got = compile_and_run(model, x, tmp_path / "dense.so")
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


class OddConvNet(nn.Module):
    """Odd channel counts, stride 2, asymmetric padding, dilation, no bias."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ConstantPad3d((0, 2, 1, 0, 2, 1), 0.0)  # W, H, D: (low, high)
        self.conv1 = nn.Conv3d(5, 7, (3, 2, 3), stride=(1, 2, 2), dilation=(2, 1, 1))
        self.conv2 = nn.Conv3d(7, 6, 3, stride=2, padding=(1, 0, 1), bias=False)
        self.conv3 = nn.Conv3d(6, 9, (1, 3, 1), padding=(0, 1, 0), dilation=(1, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(self.pad(x)))
        return self.conv3(torch.relu(self.conv2(x)))


@pytest.mark.parametrize("group_shape", [(2, 2), (3, 2), (4, 4), (1, 3)])
def test_odd_shapes_match_torch(group_shape, tmp_path):
    model = OddConvNet().eval()
    apply_random_masks(model, group_shape, 0.45, "kgs", seed=5)
    x = torch.randn(1, 5, 9, 17, 14)
    got = compile_and_run(model, x, tmp_path / "odd.so", group_shape=group_shape)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


def _recognized(model: nn.Module, x: torch.Tensor, pipeline: str) -> list[dict]:
    module = import_to_linalg(model, x)
    with module.context:
        run_pipeline(module, pipeline)
        return [
            {"params": kgs_conv3d_params(op), "bias": len(list(op.operands)) == 3}
            for op in ops_named(module.operation, "rt3d.kgs_conv3d")
        ]


@pytest.mark.parametrize("arch", ["c3d", "r2plus1d", "s3d"])
def test_every_conv_becomes_a_kgs_conv_with_the_applied_masks(arch):
    model, x = tiny(arch)
    applied = apply_random_masks(model, (4, 4), 0.4, "kgs", seed=7)
    ops = _recognized(model, x, "builtin.module(rt3d-recognize-kgs{group-shape=4x4})")
    assert len(ops) == len(applied)
    recognized = sorted(op["params"].masks.tobytes() for op in ops)
    assert recognized == sorted(m.tobytes() for m in applied.values())


def test_group_shape_is_discovered_from_the_zeros():
    model, x = tiny("c3d")
    apply_random_masks(model, (8, 4), 0.3, "kgs", seed=1, skip=["features.conv1a"])
    ops = _recognized(model, x, "builtin.module(rt3d-recognize-kgs)")
    shapes = [op["params"].group_shape for op in ops]
    assert shapes[0] == (4, 3)  # dense first conv: the largest candidate, clipped to 4x3
    assert all(shape == (8, 4) for shape in shapes[1:]), shapes


def test_relu_and_bias_are_fused_and_batchnorm_folded():
    model, x = tiny("r2plus1d")
    ops = _recognized(model, x, "builtin.module(rt3d-recognize-kgs)")
    assert all(op["bias"] for op in ops)  # every BatchNorm folded into a bias
    assert sum(op["params"].activation == "relu" for op in ops) >= 1 + 4 * 2


def test_checkpoint_group_shape_reaches_the_compiler(tmp_path):
    from rt3d_mlir.frontend import save_checkpoint

    kwargs, shape = TINY["c3d"]
    model = build_model("c3d", **kwargs).eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=2)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, "c3d", kwargs, model, sparsity={"scheme": "kgs", "group_shape": [4, 4]})
    out = tmp_path / "m.so"
    keep = tmp_path / "build"
    compile_model(path, output=out, keep_intermediates=str(keep))
    assert out.exists()
    x = torch.randn(*shape)
    import rt3d_mlir

    got = rt3d_mlir.load(out)(x.numpy())
    assert relative_error(got, torch_output(model, x)) <= REL_TOL
    # Weights left the IR: the blob holds them (the convolutions' packed kept
    # weights plus index tables, the rest dense), the LLVM IR only declares them.
    dense = sum(p.numel() for p in model.parameters()) * 4
    nonzero = sum(int((p != 0).sum()) for p in model.parameters()) * 4
    assert nonzero <= (keep / "weights.bin").stat().st_size < dense
    llvm_ir = (keep / "model.ll").read_text()
    assert "@rt3d_weight_0 = external constant" in llvm_ir
    assert max(len(line) for line in llvm_ir.splitlines()) < 4096


def test_inputs_are_checked_by_the_loaded_model(tmp_path):
    model, x = tiny("c3d")
    path = tmp_path / "m.so"
    compile_model(model, x, output=path)
    import rt3d_mlir
    from rt3d_mlir.errors import ArtifactError

    compiled = rt3d_mlir.load(path)
    assert compiled.input_shape == (1, 3, 16, 16, 16)
    assert compiled.output_shape == (1, 101)
    with pytest.raises(ArtifactError, match="compiled for"):
        compiled(np.zeros((1, 3, 8, 16, 16), np.float32))
    # float64 input is converted, not rejected.
    assert compiled(x.numpy().astype(np.float64)).shape == (1, 101)


def test_imported_module_has_the_rt3d_dialect_loaded():
    model, x = tiny("c3d")
    module = import_to_linalg(model, x)
    assert module.context.is_dialect_loaded("rt3d")
    assert isinstance(module, ir.Module)


class PaddedChain(nn.Module):
    """Convs feeding convs that pad in D, H and W, and only W: each first conv writes into the next
    one's padded input (filters-in-lanes, and with 2x2 groups the width kernels); a conv whose output
    is used twice keeps the padded copy."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1))
        self.b = nn.Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0))
        self.c = nn.Conv3d(8, 6, 3, padding=(1, 2, 1))
        self.d = nn.Conv3d(6, 6, (1, 1, 3), padding=(0, 0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(torch.relu(self.b(torch.relu(self.a(x)))))
        return self.d(y) + y


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("group_shape", [None, (2, 2)])
def test_convs_write_into_the_next_convs_padded_input(target, group_shape, tmp_path):
    model = PaddedChain().eval()
    if group_shape:
        apply_random_masks(model, group_shape, 0.5, "kgs", seed=4)
    x = torch.randn(1, 3, 5, 9, 21)
    got = compile_and_run(model, x, tmp_path / f"chain.{target}", target=target, group_shape=group_shape)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize("tile_filters", [4, 3])
def test_width_tiles_with_a_few_of_a_blocks_filters_match_torch(tile_filters, tmp_path):
    """"width" kernels whose register tiles hold ``tile_filters`` of a block's filters at a time (a
    last, smaller group where the block does not divide)."""
    model, x = tiny("c3d")
    apply_random_masks(model, (8, 4), 0.5, "kgs", seed=5)
    schedule = f"vector-dim=width tile-filters={tile_filters}"
    got = compile_and_run(model, x, tmp_path / "m.so", group_shape=(8, 4), schedule=schedule)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("group_shape, loop_order", [(None, "fdhw"), (None, "dhfw"), ((8, 4), "dfhw")])
def test_blocks_sharing_a_register_tile_match_torch(target, group_shape, loop_order, tmp_path):
    """"filters" kernels whose tiles hold two blocks with the same entries (dense convs; with
    kernel groups only where the blocks happen to match, the others keep one block per tile)."""
    model, x = tiny("c3d")
    if group_shape:
        apply_random_masks(model, group_shape, 0.5, "kgs", seed=6)
    schedule = f"vector-dim=filters block-group=2 loop-order={loop_order}"
    got = compile_and_run(
        model, x, tmp_path / f"m.{target}", target=target, group_shape=group_shape, schedule=schedule
    )
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("group_shape, lanes", [((4, 4), 16), ((2, 2), 8), ((4, 2), 8)])
def test_interleaved_filters_and_columns_match_torch(target, group_shape, lanes, tmp_path):
    """"interleaved" kernels (a narrow block's filters times a run of columns in the lanes), rows
    of 16 and of 8 columns with a partial last run (2x2 groups, 8 lanes: runs of 4 columns)."""
    model, x = tiny("c3d")
    apply_random_masks(model, group_shape, 0.5, "kgs", seed=7)
    schedule = f"vector-dim=interleaved lanes={lanes}"
    got = compile_and_run(
        model, x, tmp_path / f"m.{target}", target=target, group_shape=group_shape, schedule=schedule
    )
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("loop_order", ["fdhw", "dfhw", "dhfw"])
def test_block_groups_with_a_last_partial_group_match_torch(target, loop_order, tmp_path):
    """Odd block counts (48 filters: 3 blocks of 16 on AVX-512; 20 filters: 5 blocks of 4 on
    NEON): pairs share a tile, the last block has one of its own."""
    model = nn.Sequential(
        nn.Conv3d(3, 20, 3, padding=1), nn.ReLU(), nn.Conv3d(20, 48, (1, 3, 3), padding=(0, 1, 1)),
        nn.ReLU(), nn.Conv3d(48, 20, (3, 1, 1), padding=(1, 0, 0)),
    ).eval()
    x = torch.randn(1, 3, 4, 9, 17)
    schedule = f"vector-dim=filters block-group=2 loop-order={loop_order}"
    got = compile_and_run(model, x, tmp_path / f"m.{target}", target=target, schedule=schedule)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("chunk", [4, 8])
def test_channel_chunked_width_kernels_match_torch(target, chunk, tmp_path):
    """"width" kernels in "dhfw" order taking the input channels ``chunk`` at a time (12 and 20
    channels: a last, smaller chunk), partial sums in the output: with ReLU, without (the last
    conv), writing into the next conv's padded input, rows with a masked tail (W 13)."""
    model = nn.Sequential(
        nn.Conv3d(3, 12, 3, padding=1), nn.ReLU(), nn.Conv3d(12, 20, (1, 3, 3), padding=(0, 1, 1)),
        nn.ReLU(), nn.Conv3d(20, 8, (3, 1, 1), padding=(1, 0, 0)),
    ).eval()
    apply_random_masks(model, (4, 4), 0.5, "kgs", seed=8)
    x = torch.randn(1, 3, 4, 7, 13)
    schedule = f"vector-dim=width loop-order=dhfw channel-chunk={chunk}"
    got = compile_and_run(
        model, x, tmp_path / f"m.{target}", target=target, group_shape=(4, 4), schedule=schedule
    )
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


class BlockedChain(nn.Module):
    """Convs of 16-multiple channels feeding each other (padded and not), a conv output read by a
    conv and a residual add, and the add's result the model's output."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(3, 32, 3, padding=1)
        self.b = nn.Conv3d(32, 32, (1, 3, 3), padding=(0, 1, 1))
        self.c = nn.Conv3d(32, 48, (3, 1, 1), padding=(1, 0, 0))
        self.d = nn.Conv3d(48, 16, 1)
        self.e = nn.Conv3d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.d(torch.relu(self.c(torch.relu(self.b(torch.relu(self.a(x)))))))
        return self.e(y) + y


class BlockedPools(nn.Module):
    """Max pools between convs (window and stride 1x2x2 and 2x2x2, odd output widths) and a padded
    pool reading the last conv."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(3, 32, 3, padding=1)
        self.b = nn.Conv3d(32, 32, 3, padding=1)
        self.c = nn.Conv3d(32, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.max_pool3d(torch.relu(self.a(x)), (1, 2, 2))
        y = F.max_pool3d(torch.relu(self.b(y)), 2)
        return F.max_pool3d(self.c(y), 2, padding=(0, 1, 1))


class BlockedInception(nn.Module):
    """Inception-style branches (1x1, 3x3x3, padded 3x3x3 max pool + 1x1) concatenated along the
    channels and read by a conv; the concat's output also feeds the next block's pool."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, 32, 3, padding=1)
        self.b1 = nn.Conv3d(32, 16, 1)
        self.b2 = nn.Conv3d(32, 16, 3, padding=1)
        self.b3 = nn.Conv3d(32, 16, 1)
        self.head = nn.Conv3d(48, 16, 3, padding=1)
        self.tail = nn.Conv3d(48, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        pooled = F.max_pool3d(y, 3, 1, 1)
        y = torch.cat([torch.relu(self.b1(y)), torch.relu(self.b2(y)), torch.relu(self.b3(pooled))], 1)
        return self.head(y) + self.tail(F.max_pool3d(y, 3, 1, 1))


def _layouts(model: nn.Module, x: torch.Tensor, target: str, group_shape) -> list[tuple[str, str]]:
    module = import_to_linalg(model, x)
    with module.context:
        pipeline = (
            f"{packing_pipeline(group_shape, target)}, rt3d-reorder-loops{{target={target}}}, "
            f"rt3d-propagate-layout{{target={target}}}"
        )
        run_pipeline(module, f"builtin.module({pipeline})")
        params = [packed_conv3d_params(op) for op in ops_named(module.operation, "rt3d.packed_conv3d")]
    return [(p.input_layout, p.output_layout) for p in params]


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("group_shape", [None, (16, 16)])
def test_convs_keep_the_blocked_layout_between_them_and_match_torch(target, group_shape, tmp_path):
    x = torch.randn(1, 3, 4, 9, 11)
    layouts = _blocked_model_matches(BlockedChain(), x, target, group_shape, tmp_path)
    # every activation between convs blocked, the residual add computed blocked; the model's
    # input is read plain and its output converted back
    assert layouts == [("plain", "blocked")] + [("blocked", "blocked")] * 4


class OddChannels(nn.Module):
    """R(2+1)D's kind of channel counts between convs: 45 (its stem) and 60 (blocks of 16 do not
    divide them)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(3, 45, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn = nn.BatchNorm3d(45)
        self.b = nn.Conv3d(45, 32, (3, 1, 1), padding=(1, 0, 0))
        self.c = nn.Conv3d(32, 60, (1, 3, 3), padding=(0, 1, 1))
        self.d = nn.Conv3d(60, 16, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.b(torch.relu(self.bn(self.a(x)))))
        return self.d(torch.relu(self.c(x)))


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("group_shape", [None, (16, 16), (4, 4)])
def test_odd_channel_counts_are_padded_to_blocks_and_match_torch(target, group_shape, tmp_path):
    """rt3d-pad-channels: 45 and 60 channels become 48 and 64 (on AArch64's blocks of 4: 48 and
    60), so every activation between the convs is blocked; zeros padded, the results exact."""
    model = OddChannels()
    randomize_batch_norms(model)
    x = torch.randn(1, 3, 4, 9, 11)
    layouts = _blocked_model_matches(model, x, target, group_shape, tmp_path)
    if group_shape == (4, 4) and target == "host":  # blocks of 4 filters: "width" kernels, plain
        assert layouts == [("plain", "plain")] * 4
    else:
        assert layouts == [("plain", "blocked"), *[("blocked", "blocked")] * 2, ("blocked", "plain")]


def _blocked_model_matches(model: nn.Module, x: torch.Tensor, target: str, group_shape, tmp_path):
    """Compile ``model`` (random KGS masks of ``group_shape`` keeping half, if given), check it
    against torch; the convs' (input, output) layouts."""
    model = model.eval()
    if group_shape:
        apply_random_masks(model, group_shape, 0.5, "kgs", seed=9)
    layouts = _layouts(model, x, target, group_shape)
    got = compile_and_run(model, x, tmp_path / f"m.{target}", target=target, group_shape=group_shape)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL
    return layouts


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("group_shape", [None, (16, 16)])
def test_concats_and_padded_pools_keep_the_blocked_layout_and_match_torch(target, group_shape, tmp_path):
    x = torch.randn(1, 3, 4, 6, 9)
    layouts = _blocked_model_matches(BlockedInception(), x, target, group_shape, tmp_path)
    # every conv reads blocked activations, through the concat and the padded pools (the stem
    # reads the plain input; the two last convs' sum, the output, no conv reads: it stays plain)
    assert layouts[0] == ("plain", "blocked") and set(layouts[1:4]) == {("blocked", "blocked")}
    assert set(layouts[4:]) == {("blocked", "plain")}


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("group_shape", [None, (16, 16)])
def test_max_pools_keep_the_blocked_layout_and_match_torch(target, group_shape, tmp_path):
    x = torch.randn(1, 3, 4, 10, 22)
    layouts = _blocked_model_matches(BlockedPools(), x, target, group_shape, tmp_path)
    # the pools between convs compute blocked; the padded pool after the last conv, which no conv
    # reads, stays plain
    assert layouts == [("plain", "blocked"), ("blocked", "blocked"), ("blocked", "plain")]


def _kernel_calls(model: nn.Module, x: torch.Tensor, target: str, group_shape=None) -> list[str]:
    """The dispatches the model's forward calls, in order, after the kernel passes."""
    module = import_to_linalg(model, x)
    with module.context:
        pipeline = f"{packing_pipeline(group_shape, target)}, {kernel_pipeline(target)}"
        run_pipeline(module, f"builtin.module({pipeline})")
        forward = next(op for op in ops_named(module.operation, "func.func")
                       if ir.StringAttr(op.attributes["sym_name"]).value == "forward")
        return [ir.FlatSymbolRefAttr(op.attributes["callee"]).value for op in ops_named(forward, "func.call")]


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("model", ["blocked", "plain"])
def test_non_overlapping_row_column_pools_run_in_the_conv_epilogue(target, model):
    # blocked: conv a's (1,2,2) pool is computed by conv a's kernel; the (2,2,2) pool and the
    # padded pool are not (depth window, padding). plain: 18 channels (not whole channel blocks:
    # plain layout), the same for the (1,2,2) pool; the (2,2,2) pool with depth stride 1 overlaps
    # and keeps its kernel
    if model == "blocked":
        net, x = BlockedPools().eval(), torch.randn(1, 3, 4, 10, 22)
    else:
        net, x = _plain_pools(18), torch.randn(1, 3, 4, 10, 14)
    calls = [c.rsplit("_", 2)[0] for c in _kernel_calls(net, x, target) if not c.startswith("rt3d_pad")]
    expected = {
        "blocked": ["rt3d_conv", "rt3d_conv", "rt3d_pool", "rt3d_conv", "rt3d_pool"],
        "plain": ["rt3d_conv", "rt3d_conv", "rt3d_pool", "rt3d_conv"],
    }[model]
    assert calls == expected


def _plain_pools(channels: int = 6) -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(3, channels, 3, padding=1), nn.MaxPool3d((1, 2, 2)),
        nn.Conv3d(channels, 8, 3, padding=(1, 2, 1)),
        nn.MaxPool3d(2, stride=(1, 2, 2)), nn.Conv3d(8, 4, (1, 3, 3), padding=(0, 1, 1)),
    ).eval()


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("width", [9, 37, 68])
def test_plain_strided_max_pools_match_torch(target, width, tmp_path):
    # W stride 2 (two loads and an even-lane shuffle per window column; windows of 2 and 3, rows
    # of one or several vectors with a masked tail) and W stride 3 (strided gathers)
    class Pools(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = F.max_pool3d(x, (1, 3, 3), (1, 2, 2))
            b = F.max_pool3d(x, (2, 2, 2), (1, 2, 2))
            c = F.max_pool3d(x, (1, 1, 3), (1, 1, 3))
            return torch.cat([a.flatten(), b.flatten(), c.flatten()])

    model = Pools().eval()
    x = torch.randn(1, 6, 3, 7, width)
    got = compile_and_run(model, x, tmp_path / f"m.{target}", target=target)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("width", [14, 38])
def test_width_kernels_compute_the_pool_after_them(target, width, tmp_path):
    # 4x4 kernel groups: "width" kernels (columns in the lanes); the (1,2,2) pool after the first
    # conv is computed in its epilogue (pairs of columns from one or two vectors, a masked tail)
    model = _plain_pools(16)
    apply_random_masks(model, (4, 4), 0.5, "kgs", seed=3)
    x = torch.randn(1, 3, 4, 10, width)
    calls = _kernel_calls(model, x, target, (4, 4))
    calls = [c.rsplit("_", 2)[0] for c in calls if not c.startswith("rt3d_pad")]
    assert calls == ["rt3d_conv", "rt3d_conv", "rt3d_pool", "rt3d_conv"]
    got = compile_and_run(model, x, tmp_path / f"m.{target}", target=target, group_shape=(4, 4))
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize("channels", [6, 18])
def test_plain_max_pools_write_the_padded_input_of_the_next_conv(target, channels, tmp_path):
    # the pools stay plain; each pool's only user is a conv that pads its input (with 18 channels
    # the first pool is computed in the first conv's epilogue)
    model = _plain_pools(channels)
    x = torch.randn(1, 3, 4, 10, 14)
    got = compile_and_run(model, x, tmp_path / f"m.{target}", target=target)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


HALF_TYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# native f16 (AArch64 +fullfp16) sums each entry's run of up to 8 channels in f16 before adding it to
# the f32 accumulators: against the reference that rounds only what is stored (measured 8e-4)
F16_SUMS_REL_TOL = 2e-3


def _rounded(t: torch.Tensor, precision: str) -> torch.Tensor:
    """``t`` rounded to ``precision``'s 16-bit type (to nearest even), as float32."""
    return t.to(HALF_TYPES[precision]).to(torch.float32)


def _ulps_apart(got: np.ndarray, want: np.ndarray, precision: str) -> float:
    """The largest difference of ``got`` from ``want`` (both rounded to ``precision``'s 16-bit type)
    in units in the last place of ``want``, beyond f32 noise (REL_TOL of the largest value): a sum
    that differs in its last f32 bits may round to the neighbouring 16-bit value."""
    mantissa = {"bf16": 7, "fp16": 10}[precision]
    magnitude = np.maximum(np.abs(want), np.finfo(np.float32).tiny)
    ulp = 2.0 ** (np.floor(np.log2(magnitude)) - mantissa)
    excess = np.maximum(np.abs(got - want) - REL_TOL * np.abs(want).max(), 0.0)
    return float((excess / ulp).max())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_16bit_activations_compute_what_a_rounded_reference_does(target, precision, tmp_path):
    model = BlockedPools().eval()
    x = torch.randn(1, 3, 4, 10, 22)
    path = tmp_path / f"m.{target}"
    got = compile_and_run(model, x, path, target=target, precision=precision)
    # the reference rounds what the build stores in 16 bits: the blocked activations read by the
    # convs b and c (a's pooled output, b's) and those convs' weights; a reads the f32 input with
    # f32 weights, c's result (read by no conv) stays f32; accumulation is f32 throughout (native
    # f16 on AArch64: f16 sums of each entry's channels, F16_SUMS_REL_TOL)
    def r(t: torch.Tensor) -> torch.Tensor:
        return _rounded(t, precision)

    with torch.no_grad():
        y = r(F.max_pool3d(torch.relu(model.a(x)), (1, 2, 2)))
        y = r(F.max_pool3d(torch.relu(F.conv3d(y, r(model.b.weight), model.b.bias, padding=1)), 2))
        want = F.max_pool3d(F.conv3d(y, r(model.c.weight), model.c.bias), 2, padding=(0, 1, 1))
    native_f16 = target == "aarch64" and precision == "fp16"
    assert relative_error(got, want.numpy()) <= (F16_SUMS_REL_TOL if native_f16 else REL_TOL)
    assert relative_error(got, torch_output(model, x)) <= MAX_RELATIVE_ERROR[precision]
    from rt3d_mlir.runtime.shared_object import verify_artifact

    assert verify_artifact(str(path)).precision == precision


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_16bit_residual_adds_widen_and_round_once(precision, tmp_path):
    # BlockedChain: every activation between its convs is 16-bit, d's output too, which e and the
    # residual add read; the add computes in f32 from the two 16-bit values and rounds its result
    # (the model's output, widened back to f32 as it leaves the blocked layout)
    model, x = BlockedChain().eval(), torch.randn(1, 3, 4, 6, 9)
    got = compile_and_run(model, x, tmp_path / "m.so", precision=precision)

    def r(t: torch.Tensor) -> torch.Tensor:
        return _rounded(t, precision)

    with torch.no_grad():
        y = r(torch.relu(model.a(x)))
        y = r(torch.relu(F.conv3d(y, r(model.b.weight), model.b.bias, padding=(0, 1, 1))))
        y = r(torch.relu(F.conv3d(y, r(model.c.weight), model.c.bias, padding=(1, 0, 0))))
        y = r(F.conv3d(y, r(model.d.weight), model.d.bias))
        want = r(r(F.conv3d(y, r(model.e.weight), model.e.bias, padding=1)) + y)
    # the result is rounded twice (e's output, the sum): at most one unit in the last place each
    assert _ulps_apart(got, want.numpy(), precision) <= 2
    assert relative_error(got, torch_output(model, x)) <= MAX_RELATIVE_ERROR[precision]


def test_bf16_convs_use_the_fastest_instructions_this_cpu_has(tmp_path):
    # AMX tile products where the CPU has AMX-BF16; else vdpbf16ps where it has AVX-512 BF16; else
    # widened FMAs (numerics: the tests above, on whichever this machine runs)
    from rt3d_mlir.runtime.elf import cpu_features

    features = cpu_features() or set()
    model, x = BlockedPools().eval(), torch.randn(1, 3, 4, 10, 22)
    ir_dir = tmp_path / "ir"
    compile_model(model, x, output=tmp_path / "m.so", precision="bf16", keep_intermediates=str(ir_dir))
    llvm_ir = (ir_dir / "model.ll").read_text()
    amx, dot = "llvm.x86.tdpbf16ps.internal" in llvm_ir, "llvm.x86.avx512bf16.dpbf16ps.512" in llvm_ir
    if {"amx_tile", "amx_bf16"} <= features:
        assert amx and not dot
    elif "avx512_bf16" in features:
        assert dot and not amx
    else:
        assert not amx and not dot
    # f32 -> bf16 by the CPU where it can, else by integer vector operations: not by a call to
    # __truncsfbf2 for each value, which GCC 12's libgcc lacks (the link failed on an AVX2 CPU)
    if not {"avx512_bf16", "avx_ne_convert"} & features:
        assert not re.findall(r"fptrunc [^\n]* to (?:<\d+ x )?bfloat", llvm_ir)


def test_bf16_narrow_kernel_groups_are_computed_as_16_filters_on_amx(tmp_path):
    """4x4 kernel groups in a bf16 build: on an AMX CPU they are widened to 16x16 groups (the union
    of their masks) so that the convs run as AMX tile products; elsewhere they stay 4x4. Either way
    the build matches torch within bf16's tolerance."""
    from rt3d_mlir.backend.cpu import widened_group_shape
    from rt3d_mlir.runtime.elf import cpu_features
    from rt3d_mlir.targets import get_target

    host = get_target("host")
    assert widened_group_shape(host, "bf16", True) == (host.f32_lanes, host.f32_lanes)
    assert widened_group_shape(host, "bf16", False) is None
    assert widened_group_shape(host, "fp32", True) is None
    assert widened_group_shape(host, "int8", False, "vnni") == (host.f32_lanes, host.f32_lanes)
    assert widened_group_shape(host, "int8", True, "") is None
    model = BlockedPools().eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=3)
    x = torch.randn(1, 3, 4, 10, 22)
    ir_dir, output = tmp_path / "ir", tmp_path / "m.so"
    keep = str(ir_dir)
    compile_model(model, x, output=output, precision="bf16", group_shape=(4, 4), keep_intermediates=keep)
    got = rt3d_mlir.load(output)(x.numpy())
    assert relative_error(got, torch_output(model, x)) <= MAX_RELATIVE_ERROR["bf16"]
    amx = "llvm.x86.tdpbf16ps.internal" in (ir_dir / "model.ll").read_text()
    assert amx == ({"amx_tile", "amx_bf16"} <= (cpu_features() or set()))


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_fp16_convs_compute_in_f16_where_the_target_has_it(target, tmp_path):
    # AArch64 (cortex-a76: +fullfp16): blocks of 8 filters, each entry's channels summed by f16
    # FMAs on 8 halves (one fmla.8h per channel and position); the host widens f16 to f32 FMAs
    model, x = BlockedPools().eval(), torch.randn(1, 3, 4, 10, 22)
    ir_dir = tmp_path / "ir"
    output, keep = tmp_path / f"m.{target}", str(ir_dir)
    compile_model(model, x, output=output, target=target, precision="fp16", keep_intermediates=keep)
    llvm_ir = (ir_dir / "model.ll").read_text()
    products = r"fmul (?:contract )?<(\d+) x half>|@llvm\.(?:fma|fmuladd)\.v(\d+)f16"
    half_products = re.findall(products, llvm_ir)
    if target == "aarch64":
        assert half_products and all("8" in widths for widths in half_products)
    else:
        assert not half_products


class ConvLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 2 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_16bit_fully_connected_weights_are_rounded_once(precision, tmp_path):
    # the FC layer streams 16-bit weights (half the bytes) and computes in f32 from the f32 input
    model, x = ConvLinear().eval(), torch.randn(1, 3, 2, 4, 4)
    got = compile_and_run(model, x, tmp_path / "m.so", precision=precision)
    with torch.no_grad():
        weight = _rounded(model.fc.weight, precision)
        want = F.linear(torch.relu(model.conv(x)).flatten(1), weight, model.fc.bias)
    assert relative_error(got, want.numpy()) <= REL_TOL
    assert relative_error(got, torch_output(model, x)) <= MAX_RELATIVE_ERROR[precision]


class BandedChain(nn.Module):
    """2D convs (a 2D model: one output depth, few filter blocks) whose rows are split into bands,
    each its own task: 11 rows in tiles of 2 rows are 6 row groups, the last partial; a max pool in
    the first conv's epilogue; odd widths."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 20, 3, padding=1)
        self.c = nn.Conv2d(20, 8, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.max_pool2d(torch.relu(self.a(x)), 2)
        return self.c(torch.relu(self.b(y)))


@pytest.mark.parametrize("target", ["host", "aarch64"])
@pytest.mark.parametrize(
    "schedule, group_shape",
    [
        ("vector-dim=filters tile-rows=2 row-bands=3", None),
        ("vector-dim=filters tile-rows=2 loop-order=dhfw row-bands=4", None),
        ("vector-dim=width tile-rows=2 loop-order=dhfw channel-chunk=4 row-bands=3", (4, 4)),
        ("vector-dim=interleaved tile-rows=2 row-bands=2", (4, 4)),
    ],
)
def test_row_bands_match_torch(target, schedule, group_shape, tmp_path):
    model = BandedChain().eval()
    if group_shape:
        apply_random_masks(model, group_shape, 0.5, "kgs", seed=9)
    x = torch.randn(1, 3, 22, 13)
    got = compile_and_run(
        model, x, tmp_path / f"m.{target}", target=target, group_shape=group_shape, schedule=schedule
    )
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


class Activations(nn.Module):
    """Convs ending in SiLU (one followed by a max pool, which the conv computes in its epilogue
    after the SiLU), a depthwise conv ending in SiLU, and a conv ending in a sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(3, 16, 3, padding=1)
        self.b = nn.Conv3d(16, 16, (1, 3, 3), padding=(0, 1, 1), groups=16)
        self.c = nn.Conv3d(16, 32, 3, padding=1)
        self.d = nn.Conv3d(32, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.max_pool3d(F.silu(self.a(x)), (1, 2, 2))
        y = F.silu(self.c(F.silu(self.b(y))))
        return torch.sigmoid(self.d(y))


CHUNKED_WIDTH = "vector-dim=width loop-order=dhfw channel-chunk=4"


@pytest.mark.parametrize(
    "target, schedule, group_shape",
    [(t, "", None) for t in ("host", "aarch64", "spirv")]
    + [(t, CHUNKED_WIDTH, (4, 4)) for t in ("host", "aarch64")],
)
def test_silu_and_sigmoid_run_in_the_conv_epilogue(target, schedule, group_shape, tmp_path):
    """The activations are fused into the convs (no elementwise kernel is left on the host), with
    the CPU conv's schedules: "filters", and "width" taking the channels in chunks (the SiLU
    applied after the last chunk only)."""
    torch.manual_seed(0)
    model = Activations().eval()
    if group_shape:
        apply_random_masks(model, group_shape, 0.5, "kgs", seed=10)
    x = torch.randn(1, 3, 4, 12, 18)
    out = tmp_path / f"m.{target}"
    rt3d_mlir.compile(model, x, output=out, target=target, group_shape=group_shape, schedule=schedule)
    compiled = rt3d_mlir.load(out)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    if target == "host":
        assert not [p.name for p in kernel_profile(compiled, x) if "elementwise" in p.name]
