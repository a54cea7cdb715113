"""Build one side of a before/after comparison with the code checked out now.

    .venv/bin/python bench/ab_build.py TAG DIR MODEL@VARIANT[@PRECISION] [...]

Writes DIR/TAG-MODEL-VARIANT[-PRECISION].so for each (full size, 1x3x16x112x112, the bench's seeds and
random masks; VARIANT as for ``rt3d-bench``, PRECISION as for ``rt3d-compile``, default fp32; int8
with scales calibrated on the example clip: they change the numbers, not the work). MODEL ``yolo``
or ``unet``: the 2D nets of ``bench/block_2d.py`` at its sizes, VARIANT ``dense`` or
``blockRxC:RATE`` (``hard_prune`` as that bench prunes them).
Build the "old" side at one commit (``git checkout REV --
rt3d_mlir``), the "new" side at another, then time both in one interleaved run with
``bench/ab_time.py DIR``.
"""

from __future__ import annotations

import os
import sys

import torch

from rt3d_mlir.benchmarking import Variant, sparse_variant
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.models import build_model
from rt3d_mlir.quantization import calibrate
from rt3d_mlir.sparsity import parse_group_shape

NETS_2D = ("yolo", "unet")


def net_2d(name: str, variant: str) -> tuple[torch.nn.Module, torch.Tensor, tuple[int, int] | None]:
    """One of bench/block_2d.py's nets, dense or block-pruned (``blockRxC:RATE``), its input and the
    group shape it compiles with."""
    from block_2d import nets, pruned  # bench/ is this script's directory

    dense, x = nets()[name]
    if variant == "dense":
        return dense, x, None
    shape, rate = variant.removeprefix("block").split(":")
    block = parse_group_shape(shape)
    return pruned(dense, block, float(rate)), x, (block[0], 1)


def main() -> None:
    tag, out = sys.argv[1], sys.argv[2]
    for spec in sys.argv[3:]:
        model_name, variant_text, *precision = spec.split("@")
        if model_name in NETS_2D:
            pruned, x, group_shape = net_2d(model_name, variant_text)
        else:
            variant = Variant.parse(variant_text)
            torch.manual_seed(0)
            model = build_model(model_name).eval()
            x = torch.randn(1, 3, 16, 112, 112)
            pruned = sparse_variant(model, variant, seed=0)
            group_shape = variant.group_shape
        suffix = f"-{precision[0]}" if precision else ""
        path = os.path.join(out, f"{tag}-{model_name}-{variant_text.replace(':', '_')}{suffix}.so")
        options = {"precision": precision[0]} if precision else {}
        if precision == ["int8"]:
            options["int8_scales"] = calibrate(pruned, [x])
        compile_model(pruned, x, output=path, group_shape=group_shape, **options)
        print("built", path, flush=True)


if __name__ == "__main__":
    main()
