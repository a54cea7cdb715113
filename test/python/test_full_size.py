"""Full-size C3D (78 M parameters) goes through the compiler without weights in IR text."""

from __future__ import annotations

import os
import subprocess
import sys

import rt3d_mlir
from rt3d_mlir.frontend import save_checkpoint
from rt3d_mlir.kernel_packing import pack_kernel_groups
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.sparsity import DEFAULT_GROUP_SHAPE_CANDIDATES, choose_group_shape, kernel_group_masks
from rt3d_mlir.targets import host_target

# Peak resident memory allowed for compiling full C3D (weights are 314 MB).
MAX_COMPILE_RSS_GIB = 4.0


def test_full_c3d_compiles_within_memory_bounds(tmp_path):
    model = build_model("c3d").eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=0, skip=["features.conv1a"])
    path = tmp_path / "c3d.pt"
    save_checkpoint(path, "c3d", {}, model)
    out = tmp_path / "c3d.so"
    script = (
        "import resource, sys, rt3d_mlir\n"
        f"rt3d_mlir.compile({str(path)!r}, output={str(out)!r})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    peak_gib = int(result.stdout.strip().splitlines()[-1]) / 2**20
    assert peak_gib < MAX_COMPILE_RSS_GIB, peak_gib
    compiled = rt3d_mlir.load(out)
    assert compiled.input_shape == (1, 3, 16, 112, 112)
    assert compiled.output_shape == (1, 101)
    # The weights are inside the artifact, byte for byte, as packed by
    # rt3d-pack-kernel-groups (only the kept weights, in lane order).
    weight = model.features.conv5b.weight.detach().numpy()
    group = choose_group_shape(weight, DEFAULT_GROUP_SHAPE_CANDIDATES)
    lanes = host_target().f32_lanes
    block = group[0] if group[0] < lanes else lanes  # narrow groups: one per block (W stride 1)
    packed = pack_kernel_groups(
        weight, kernel_group_masks(weight, group), group, None, (4, 9, 9), (1, 1, 1), block
    )
    assert packed.weights.size < weight.size
    blob = out.read_bytes()
    assert blob.find(packed.weights.tobytes()[:4096]) >= 0
    # Every kept weight is in it; the pruned ones are not (the FC layers dominate).
    kept = sum(int((p != 0).sum()) for p in model.parameters()) * 4
    dense = sum(p.numel() for p in model.parameters()) * 4
    assert kept < os.path.getsize(out) < dense
